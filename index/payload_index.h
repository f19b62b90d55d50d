// Payload indexes: per indexed field, keyword / integer / bool values -> Roaring bitmap of rows,
// and for integer / float fields a numeric range structure of (value, row) pairs. The range
// structure is pluggable (NumericRangeIndex): in RAM here (MemoryRangeIndex), or on disk in sorted
// runs (the engine's point store, src/points/range_runs.h). Index/filter.cc uses them to answer
// filter conditions without reading payloads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <roaring/roaring.hh>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/filter.h"
#include "vectord/collection.h"
#include "vectord/types.h"

namespace vectord::index {

// The numeric side of an integer or float index: a multiset of (value, row) pairs that answers
// value ranges. Values are finite doubles (integers converted). Not internally synchronized: the
// owner serializes writers against each other and against readers.
class NumericRangeIndex {
 public:
  virtual ~NumericRangeIndex() = default;
  virtual void Insert(double value, InternalId row) = 0;
  // Removes one pair (value, row) inserted before. Every pair of a row is inserted, and erased,
  // together (one payload's values).
  virtual void Erase(double value, InternalId row) = 0;
  // Removes every pair of these rows (when their old values are not known).
  virtual void EraseRows(const Roaring& rows) = 0;
  // Appends (in any order, possibly repeated) the rows having a value in `range`.
  virtual Status CollectRange(const Range& range, std::vector<uint32_t>* rows) const = 0;
  // A bulk build brackets its inserts with these (the structure may defer its upkeep).
  virtual void BeginBulk() {}
  virtual Status EndBulk() { return Status::OK(); }
  virtual size_t MemoryBytes() const = 0;
};

// (value, row) pairs in RAM: a sorted array with erased entries marked dead in place, and new
// entries waiting unsorted until the next compaction.
class MemoryRangeIndex : public NumericRangeIndex {
 public:
  struct Entry {
    double value;
    InternalId row;
    bool dead;
    bool operator<(const Entry& o) const {
      return value < o.value || (value == o.value && row < o.row);
    }
  };

  void Insert(double value, InternalId row) override;
  void Erase(double value, InternalId row) override { EraseEntry(value, row); }
  // Erase reporting whether the pair was found.
  bool EraseEntry(double value, InternalId row);
  void EraseRows(const Roaring& rows) override;
  Status CollectRange(const Range& range, std::vector<uint32_t>* rows) const override;
  void BeginBulk() override { bulk_ = true; }
  Status EndBulk() override;
  size_t MemoryBytes() const override;

  // Folds pending entries into the sorted array and drops dead ones.
  void Compact();
  size_t size() const { return sorted_.size() - dead_ + pending_.size(); }
  // Every live pair in (value, row) order (compacts first).
  std::vector<Entry> TakeSorted();

 private:
  void MaybeCompact();

  std::vector<Entry> sorted_;  // ordered by (value, row)
  std::vector<Entry> pending_;
  size_t dead_ = 0;
  bool bulk_ = false;  // during a bulk build: no compaction until EndBulk
};

// The index of one field. A row's values are those JsonPath::ResolveFlat finds at the field;
// values of the field's type are indexed, every other non-null value marks the row "uncovered"
// (a condition the index answers must be re-checked on the payloads of uncovered rows).
class FieldIndex {
 public:
  // `range` answers ranges of integer and float fields (null: a MemoryRangeIndex); ignored for
  // keyword and bool fields.
  FieldIndex(JsonPath path, PayloadSchemaType type,
             std::unique_ptr<NumericRangeIndex> range = nullptr);

  // Calls emit(row, payload) for every live row that has a payload.
  using RowSource = std::function<void(const std::function<void(InternalId, const Json&)>& emit)>;
  // A new index of `field` over `rows` (may be empty). InvalidArgument when `field` is not a valid
  // key path; the range structure's bulk-build errors otherwise.
  static Result<std::unique_ptr<FieldIndex>> Build(
      const std::string& field, PayloadSchemaType type, const RowSource& rows,
      std::unique_ptr<NumericRangeIndex> range = nullptr);

  const std::string& field() const { return path_.text; }
  const JsonPath& path() const { return path_; }
  PayloadSchemaType type() const { return type_; }

  // `payload` must be the row's payload as indexed; a row is inserted at most once until erased.
  void Insert(InternalId row, const Json& payload);
  void Erase(InternalId row, const Json& payload);
  // Removes the rows whatever their indexed values were (O(distinct values) bitmap operations).
  void EraseRows(const Roaring& rows);
  // Folds pending range entries of an in-RAM range structure (also done on its own).
  void Compact();

  // Rows with at least one indexed value (Qdrant's "points" of a payload index).
  const Roaring& indexed() const { return indexed_; }
  // Rows with at least one non-null value the index did not take (wrong type, nested array, ...).
  const Roaring& uncovered() const { return uncovered_; }

  // Rows having this exact value; nullptr when none (or the index is of another type).
  const Roaring* FindKeyword(const std::string& v) const;
  const Roaring* FindInteger(int64_t v) const;
  const Roaring* FindBool(bool v) const;
  // Calls fn for every distinct keyword / integer value with its rows.
  void ForEachKeyword(const std::function<void(const std::string&, const Roaring&)>& fn) const;
  void ForEachInteger(const std::function<void(int64_t, const Roaring&)>& fn) const;
  // Rows with a numeric value in `range` (integer and float indexes; compared as double). A range
  // structure on disk may fail to read: the error goes to *error (when given) and the rows found
  // so far are returned.
  Roaring RangeRows(const Range& range, Status* error = nullptr) const;
  bool has_range() const {
    return type_ == PayloadSchemaType::kInteger || type_ == PayloadSchemaType::kFloat;
  }
  NumericRangeIndex* range_index() const { return range_.get(); }

  // The value bitmaps as a whole, for checkpoints: restoring them (with a range structure that
  // holds the same pairs) gives back the same index.
  struct Values {
    Roaring indexed, uncovered;
    std::map<std::string, Roaring> keywords;
    std::map<int64_t, Roaring> integers;
    Roaring bools[2];
  };
  Values ExportValues() const;
  void RestoreValues(Values v);

  // Heap bytes of the bitmaps (and the in-RAM part of the range structure).
  size_t MemoryBytes() const;

 private:
  // Which of the row's values this index takes; returns whether any other non-null value exists.
  bool ForEachIndexed(const Json& payload, const std::function<void(const Json&)>& fn) const;

  JsonPath path_;
  PayloadSchemaType type_;
  Roaring indexed_;
  Roaring uncovered_;
  std::unordered_map<std::string, Roaring> keywords_;
  std::map<int64_t, Roaring> integers_;
  Roaring bools_[2];
  std::unique_ptr<NumericRangeIndex> range_;  // integer and float fields
};

struct PayloadIndexInfo {
  std::string field;
  PayloadSchemaType type;
  uint64_t points = 0;        // rows with at least one indexed value
  uint64_t memory_bytes = 0;  // FieldIndex::MemoryBytes()
};

// All payload indexes of one collection. Not internally synchronized: the owner serializes writers
// against each other and against readers (const methods may run concurrently with each other).
class PayloadIndexSet {
 public:
  using RowSource = FieldIndex::RowSource;
  // Makes the range structure of a new integer / float index (unset: in RAM).
  using RangeFactory = std::function<std::unique_ptr<NumericRangeIndex>(const std::string& field,
                                                                        PayloadSchemaType)>;

  void set_range_factory(RangeFactory f) { range_factory_ = std::move(f); }
  std::unique_ptr<NumericRangeIndex> MakeRange(const std::string& field,
                                               PayloadSchemaType type) const;

  // Builds (or rebuilds, replacing any index on `field`) an index from `rows` (may be empty).
  // Fails with InvalidArgument when `field` is not a valid key path.
  Status Create(const std::string& field, PayloadSchemaType type, const RowSource& rows);
  // Adds (or replaces) an index built elsewhere (FieldIndex::Build).
  void Install(std::unique_ptr<FieldIndex> index);
  // Returns whether an index on `field` existed.
  bool Drop(const std::string& field);

  // Keep every index up to date: Insert a new row, Erase a row with the payload it was indexed
  // with, Update = Erase(old) + Insert(new) on the same row.
  void Insert(InternalId row, const Json& payload);
  void Erase(InternalId row, const Json& payload);
  void Update(InternalId row, const Json& old_payload, const Json& new_payload);
  void EraseRows(const Roaring& rows);  // FieldIndex::EraseRows on every index

  const FieldIndex* Get(const std::string& field) const;
  FieldIndex* GetMutable(const std::string& field);
  std::vector<PayloadIndexInfo> List() const;  // sorted by field
  std::vector<std::string> Fields() const;     // sorted
  bool empty() const { return fields_.empty(); }

 private:
  std::map<std::string, std::unique_ptr<FieldIndex>> fields_;
  RangeFactory range_factory_;
};

// A Roaring bitmap of `rows` (any order, repeats allowed; the vector is reordered). Large sets go
// through a bitset of max(rows) + 1 bits and whole containers, several times faster than sorting.
Roaring RowsToRoaring(std::vector<uint32_t>* rows);

}  // namespace vectord::index
