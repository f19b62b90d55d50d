// Per-posting-list summaries of payload fields (issue 4, docs/filters.md "Per-posting-list
// summaries"). For each posting list of a SPANN index and each summarized field: the exact set of
// string / integer / bool values present (up to kMaxSummaryValues per list), whether other non-null
// values are present, and the min/max of its numbers. From a filter they give the lists that may
// hold a matching row (never fewer): the filtered SPANN scan reads only those, and the query
// planner counts them to estimate how many lists it must read.
//
// Summaries describe the payloads as they were when they were built. Payloads that change later
// are the owner's business: it keeps the changed rows ("dirty") and checks them by brute force; the
// summary file stores the rows that changed while it was being built, the log file (DirtyLog) those
// changed after it was installed. Formats: docs/formats.md "List summaries".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <roaring/roaring.hh>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/filter.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord {

inline constexpr char kListSummaryFile[] = "summaries.vds";
inline constexpr char kListSummaryDirtyLog[] = "summary-dirty.log";
// A list with more distinct string / integer / bool values in one field keeps no value set for it
// (its min/max stay): any match condition on that field may match there.
inline constexpr uint32_t kMaxSummaryValues = 32;

class ListSummaries {
 public:
  // Collects summaries list by list: BeginList(l) (lists in any order, each once), then Add the
  // payload (null: none) of every row of the list.
  class Builder {
   public:
    Builder(const std::vector<std::string>& fields, uint32_t num_lists);
    // InvalidArgument when a field is not a valid key path.
    Status status() const { return status_; }
    void BeginList(uint32_t list);
    void Add(const Json* payload);
    // `dirty`: rows whose payload changed while the summaries were being built.
    std::unique_ptr<ListSummaries> Finish(Roaring dirty);

   private:
    void EndList();
    std::unique_ptr<ListSummaries> out_;
    Status status_;
    uint32_t list_ = ~0u;
    std::vector<std::vector<uint32_t>> ids_;  // per field: value ids of the current list
    std::vector<bool> overflow_;              // per field: current list past kMaxSummaryValues
    std::vector<const Json*> values_;
  };

  // Reads `path`; Corruption (naming the file and what is wrong) on a bad magic, version,
  // checksum or structure, or when it describes more than `num_lists` lists. It may describe
  // fewer (lists split off after it was built): the caller treats lists past num_lists() as
  // stale, like every list when lists_written() is not the index's counter.
  static Result<std::unique_ptr<ListSummaries>> Read(const std::string& path, uint32_t num_lists);
  // Writes the summaries and `dirty` (rows changed since they were built) to `path` atomically
  // (temporary file, fsync, rename).
  Status Write(const std::string& path, const Roaring& dirty) const;

  // Lists that may hold a row matching `filter` (a superset of those that do, for the payloads the
  // summaries were built from); nullopt when the summaries constrain nothing (every list may).
  std::optional<Roaring> Candidates(const Filter& filter) const;

  uint32_t num_lists() const { return num_lists_; }
  // The index's count of posting lists written by its updater (SpannLiveStats::lists_written)
  // when the summaries began reading the lists: if the index's count is another at open, some
  // lists were rewritten after, and none is vouched for until the summaries are rebuilt.
  // kUnknownListsWritten for a file that predates the counter.
  static constexpr uint64_t kUnknownListsWritten = ~uint64_t{0};
  uint64_t lists_written() const { return lists_written_; }
  void set_lists_written(uint64_t n) { lists_written_ = n; }
  std::vector<std::string> fields() const;
  size_t num_fields() const { return fields_.size(); }
  // Rows recorded as changed during the build (Finish / the file).
  const Roaring& build_dirty() const { return build_dirty_; }
  // RAM held (value sets, bitmaps, bounds, dictionaries).
  size_t MemoryBytes() const;

 private:
  struct Field {
    JsonPath path;
    // Distinct values, typed: "s" + string, "i" + 8 bytes little-endian int64, "b0" / "b1".
    std::vector<std::string> values;
    std::unordered_map<std::string, uint32_t> ids;
    std::vector<Roaring> lists;  // per value: lists holding it
    Roaring overflow;            // lists whose value set passed kMaxSummaryValues
    Roaring other;               // lists with a non-null value that is no string / int64 / bool
    // Per list: bounds of its numbers (rounded outwards to float); min > max when it has none.
    // Empty when no list has a number.
    std::vector<float> min, max;
  };
  ListSummaries() = default;
  std::optional<Roaring> ConditionCandidates(const Condition& c) const;
  std::optional<Roaring> FilterCandidates(const Filter& f) const;
  Roaring ConditionCandidatesSlow(const Field& f, const Range& r) const;  // both gt and gte, ...
  const Field* FieldFor(const JsonPath& key) const;

  uint32_t num_lists_ = 0;
  uint64_t lists_written_ = 0;
  std::vector<Field> fields_;
  Roaring build_dirty_;
};

// Append-only log of rows whose payload changed after the summaries were built. A batch is
// appended (and synced when asked) before the payload change is committed, so a change that was
// committed is always in the log; a torn last record (a crash mid-append, before the commit) is
// ignored.
class DirtyLog {
 public:
  // Opens or creates `path`. *rows receives the logged rows; Corruption when a whole record fails
  // its checksum or the header is wrong.
  static Result<std::unique_ptr<DirtyLog>> Open(const std::string& path, Roaring* rows);
  ~DirtyLog();
  DirtyLog(const DirtyLog&) = delete;
  DirtyLog& operator=(const DirtyLog&) = delete;
  Status Append(const std::vector<uint32_t>& rows, bool sync);

 private:
  DirtyLog(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_;
  uint64_t size_;
};

// Writes `summaries` (with `dirty` as their build-dirty rows) to dir/summaries.vds, then an empty
// dirty log renamed over dir/summary-dirty.log, and returns that log. The order keeps a crash safe:
// until the rename, the old log (a superset of what is still dirty) stays in place.
Result<std::unique_ptr<DirtyLog>> WriteSummariesAndEmptyLog(const ListSummaries& summaries,
                                                            const Roaring& dirty,
                                                            const std::string& dir);

}  // namespace vectord
