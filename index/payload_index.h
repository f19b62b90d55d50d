// Payload indexes: per indexed field, keyword / integer / bool values -> Roaring bitmap of rows,
// and for integer / float fields a sorted (value, row) array that answers ranges. Index/filter.cc
// uses them to answer filter conditions without reading payloads.
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

// The index of one field. A row's values are those JsonPath::ResolveFlat finds at the field;
// values of the field's type are indexed, every other non-null value marks the row "uncovered"
// (a condition the index answers must be re-checked on the payloads of uncovered rows).
class FieldIndex {
 public:
  FieldIndex(JsonPath path, PayloadSchemaType type);

  const std::string& field() const { return path_.text; }
  const JsonPath& path() const { return path_; }
  PayloadSchemaType type() const { return type_; }

  // `payload` must be the row's payload as indexed; a row is inserted at most once until erased.
  void Insert(InternalId row, const Json& payload);
  void Erase(InternalId row, const Json& payload);
  // Folds pending range entries into the sorted array and drops erased ones (also done on its own
  // as inserts and erases accumulate).
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
  // Rows with a numeric value in `range` (integer and float indexes; compared as double).
  Roaring RangeRows(const Range& range) const;
  bool has_range() const {
    return type_ == PayloadSchemaType::kInteger || type_ == PayloadSchemaType::kFloat;
  }

 private:
  struct Entry {
    double value;
    InternalId row;
    bool dead;
    bool operator<(const Entry& o) const {
      return value < o.value || (value == o.value && row < o.row);
    }
  };
  // Which of the row's values this index takes; returns whether any other non-null value exists.
  bool ForEachIndexed(const Json& payload, const std::function<void(const Json&)>& fn) const;
  void MaybeCompact();
  friend class PayloadIndexSet;  // bulk builds defer compaction

  JsonPath path_;
  PayloadSchemaType type_;
  Roaring indexed_;
  Roaring uncovered_;
  std::unordered_map<std::string, Roaring> keywords_;
  std::map<int64_t, Roaring> integers_;
  Roaring bools_[2];
  // Range structure: sorted_ is ordered by (value, row); erased entries are marked dead in place;
  // new entries wait unsorted in pending_ until the next compaction.
  std::vector<Entry> sorted_;
  std::vector<Entry> pending_;
  size_t dead_ = 0;
  bool bulk_ = false;  // while PayloadIndexSet::Create feeds rows: no compaction until the end
};

struct PayloadIndexInfo {
  std::string field;
  PayloadSchemaType type;
  uint64_t points = 0;  // rows with at least one indexed value
};

// All payload indexes of one collection. Not internally synchronized: the owner serializes writers
// against each other and against readers (const methods may run concurrently with each other).
class PayloadIndexSet {
 public:
  // Calls emit(row, payload) for every live row that has a payload.
  using RowSource = std::function<void(const std::function<void(InternalId, const Json&)>& emit)>;

  // Builds (or rebuilds, replacing any index on `field`) an index from `rows` (may be empty).
  // Fails with InvalidArgument when `field` is not a valid key path.
  Status Create(const std::string& field, PayloadSchemaType type, const RowSource& rows);
  // Returns whether an index on `field` existed.
  bool Drop(const std::string& field);

  // Keep every index up to date: Insert a new row, Erase a row with the payload it was indexed
  // with, Update = Erase(old) + Insert(new) on the same row.
  void Insert(InternalId row, const Json& payload);
  void Erase(InternalId row, const Json& payload);
  void Update(InternalId row, const Json& old_payload, const Json& new_payload);

  const FieldIndex* Get(const std::string& field) const;
  std::vector<PayloadIndexInfo> List() const;  // sorted by field
  bool empty() const { return fields_.empty(); }

 private:
  std::map<std::string, std::unique_ptr<FieldIndex>> fields_;
};

}  // namespace vectord::index
