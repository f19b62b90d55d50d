// The on-disk numeric range index of one payload field (an index::NumericRangeIndex): sorted
// (value, row) runs in files (storage/sorted_run_file.h), each with a dead-rows bitmap of rows
// whose entries in it no longer count, plus a small in-RAM tail of recent inserts. A range query
// binary-searches each run's fence array and preads the slice. Tails are frozen into runs and
// written out, and runs merged size-tiered (four runs of one size class become one), by the
// point store's background checkpoint: PlanMaintenance under the owner's exclusive lock, RunJob
// with no lock, Install under the exclusive lock again. What an indexed float field costs in
// RAM: the fences (8 bytes per 340 entries), the dead bitmaps and the tail.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <roaring/roaring.hh>
#include <set>
#include <string>
#include <vector>

#include "index/payload_index.h"
#include "storage/sorted_run_file.h"

namespace vectord::points {

// The run files of one store directory: unique names (`range-<id>.vdr`), and deletion of a file
// once no run in RAM uses it and the durable checkpoint does not name it. Thread-safe.
class RunFiles {
 public:
  RunFiles(std::string dir, uint64_t next_id) : dir_(std::move(dir)), next_id_(next_id) {}
  // A new file id, in use until Release.
  uint64_t NewId();
  std::string Path(uint64_t id) const;
  static std::string FileName(uint64_t id);
  // Parses a run file name; false for other names.
  static bool ParseFileName(const std::string& name, uint64_t* id);
  // A run in RAM opened (restored) file `id`: in use until Release.
  void Retain(uint64_t id);
  void Release(uint64_t id);
  // The durable checkpoint now names exactly `ids`: files neither named nor in use are deleted.
  void SetCheckpointed(std::set<uint64_t> ids);
  // Deletes every run file (and temporary file) of the directory that is neither in use nor
  // checkpointed: left over from a crash. Only while no run is being written (at open).
  void Sweep();
  uint64_t next_id() const;

 private:
  void MaybeDelete(uint64_t id);  // mu_ held
  const std::string dir_;
  mutable std::mutex mu_;
  uint64_t next_id_;                 // guarded by mu_
  std::set<uint64_t> in_use_;        // guarded by mu_
  std::set<uint64_t> checkpointed_;  // guarded by mu_
};

// One sorted run: a file, or (a frozen tail not yet written) entries in RAM. Immutable; shared
// between the index and a maintenance job.
struct RunData {
  ~RunData();
  uint64_t id = 0;  // file id; 0 for a run in RAM
  std::unique_ptr<storage::SortedRunFile> file;
  std::vector<storage::RunEntry> mem;  // sorted, when file is null
  uint64_t entries = 0;
  uint32_t min_row = ~0u, max_row = 0;
  RunFiles* files = nullptr;  // released on destruction when set
};

struct RangeRunsOptions {
  // Tail entries before the tail is frozen into an in-RAM run (16 bytes each).
  size_t tail_entries = size_t{1} << 18;
  // During a bulk build: entries sorted in RAM before they are written as a run (16 bytes each).
  size_t build_chunk_entries = size_t{1} << 22;
  // Runs in one size class (a factor of 4 in entries) that are merged into one.
  size_t merge_width = 4;
};

class RangeRuns : public index::NumericRangeIndex {
 public:
  RangeRuns(RunFiles* files, RangeRunsOptions options);
  ~RangeRuns() override;

  // A unique number of this object (maintenance jobs check that they install into the index
  // they were planned on).
  uint64_t uid() const { return uid_; }

  void Insert(double value, InternalId row) override;
  void Erase(double value, InternalId row) override;
  void EraseRows(const Roaring& rows) override;
  Status CollectRange(const Range& range, std::vector<uint32_t>* rows) const override;
  void BeginBulk() override;
  Status EndBulk() override;
  size_t MemoryBytes() const override;

  // A run from a checkpoint (its file opened) with its dead rows.
  void AddRestoredRun(std::shared_ptr<const RunData> run, Roaring dead);
  // Every run file with its dead rows (the in-RAM runs are not listed).
  struct FileRun {
    uint64_t id;
    uint64_t entries;
    const Roaring* dead;
  };
  std::vector<FileRun> FileRuns() const;
  size_t num_runs() const { return runs_.size(); }
  size_t tail_size() const { return tail_.size(); }

  // ---- Maintenance ----
  struct Job {
    uint64_t uid = 0;
    struct Merge {
      // Inputs with their dead rows as planned: entries of those rows are dropped.
      std::vector<std::shared_ptr<const RunData>> inputs;
      std::vector<Roaring> dead;
      std::shared_ptr<const RunData> output;  // null: every entry was dead
      bool done = false;
    };
    std::vector<Merge> merges;
  };
  // Moves the tail into an in-RAM run (owner's exclusive lock).
  void FreezeTail();
  // Whether in-RAM runs wait to be written or runs to be merged.
  bool NeedsMaintenance() const;
  // The in-RAM runs written as one file, size-tiered merges, and rewrites of runs that are a
  // quarter dead (owner's lock held, shared is enough). A merge's output may fill the next size
  // class: plan again until NeedsMaintenance() is false.
  Job PlanMaintenance() const;
  // Executes the merges (no lock: the inputs are immutable).
  static Status RunJob(RunFiles* files, Job* job);
  // Replaces each merge's inputs by its output; rows erased since planning stay dead in it
  // (owner's exclusive lock).
  void Install(Job&& job);

 private:
  struct Run {
    std::shared_ptr<const RunData> data;
    Roaring dead;  // rows whose entries in this run do not count
  };
  // Indexes into runs_ of the runs each maintenance merge takes.
  std::vector<std::vector<size_t>> MaintenanceGroups() const;
  // Writes the bulk buffer, sorted, as a run file (bulk builds).
  Status WriteBulkChunk();
  void MarkDead(InternalId row);
  void MarkDead(const Roaring& rows);

  RunFiles* const files_;
  const RangeRunsOptions options_;
  const uint64_t uid_;
  index::MemoryRangeIndex tail_;
  std::vector<Run> runs_;
  bool bulk_ = false;
  std::vector<storage::RunEntry> bulk_buf_;
  Status bulk_status_;
};

// Merges `inputs` (dropping entries of their dead rows) into a new run file; null when nothing
// is left.
Result<std::shared_ptr<const RunData>> MergeRuns(
    RunFiles* files, const std::vector<std::shared_ptr<const RunData>>& inputs,
    const std::vector<const Roaring*>& dead);
// Opens run file `id` for a restored index.
Result<std::shared_ptr<const RunData>> OpenRun(RunFiles* files, uint64_t id);

}  // namespace vectord::points
