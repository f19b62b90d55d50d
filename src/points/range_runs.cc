// RangeRuns: see range_runs.h and docs/storage.md "Point store".
#include "src/points/range_runs.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <queue>

namespace vectord::points {
namespace {

std::atomic<uint64_t> g_next_uid{1};

size_t RoaringBytes(const Roaring& r) { return sizeof(Roaring) + r.getSizeInBytes(false); }

// Size class of a run: a factor of 4 in entries per class.
int Tier(uint64_t entries) {
  int t = 0;
  while (entries >= 4) {
    entries >>= 2;
    ++t;
  }
  return t;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// RunFiles

uint64_t RunFiles::NewId() {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t id = next_id_++;
  in_use_.insert(id);
  return id;
}

std::string RunFiles::FileName(uint64_t id) { return "range-" + std::to_string(id) + ".vdr"; }

bool RunFiles::ParseFileName(const std::string& name, uint64_t* id) {
  const std::string prefix = "range-", suffix = ".vdr";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, prefix.size(), prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return false;
  }
  const std::string digits =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 19 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  *id = std::stoull(digits);
  return true;
}

std::string RunFiles::Path(uint64_t id) const { return dir_ + "/" + FileName(id); }

void RunFiles::Retain(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  in_use_.insert(id);
  next_id_ = std::max(next_id_, id + 1);
}

void RunFiles::Release(uint64_t id) {
  std::lock_guard<std::mutex> l(mu_);
  in_use_.erase(id);
  MaybeDelete(id);
}

void RunFiles::SetCheckpointed(std::set<uint64_t> ids) {
  std::lock_guard<std::mutex> l(mu_);
  std::set<uint64_t> before;
  before.swap(checkpointed_);
  checkpointed_ = std::move(ids);
  for (uint64_t id : before) MaybeDelete(id);
}

void RunFiles::MaybeDelete(uint64_t id) {
  if (in_use_.count(id) == 0 && checkpointed_.count(id) == 0) ::unlink(Path(id).c_str());
}

void RunFiles::Sweep() {
  std::lock_guard<std::mutex> l(mu_);
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    uint64_t id;
    const bool tmp = name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0 &&
                     name.compare(0, 6, "range-") == 0;
    if (tmp ||
        (ParseFileName(name, &id) && in_use_.count(id) == 0 && checkpointed_.count(id) == 0)) {
      std::filesystem::remove(e.path(), ec);
    }
  }
}

uint64_t RunFiles::next_id() const {
  std::lock_guard<std::mutex> l(mu_);
  return next_id_;
}

RunData::~RunData() {
  if (files != nullptr && id != 0) files->Release(id);
}

// ---------------------------------------------------------------------------------------------
// Merging

Result<std::shared_ptr<const RunData>> MergeRuns(
    RunFiles* files, const std::vector<std::shared_ptr<const RunData>>& inputs,
    const std::vector<const Roaring*>& dead) {
  // Cursors over the inputs: an in-RAM run by index, a file through its sequential reader.
  struct Cursor {
    const RunData* run;
    size_t pos = 0;
    std::unique_ptr<storage::SortedRunFile::Reader> reader;
    const Roaring* dead;
    bool Valid() const { return reader ? reader->Valid() : pos < run->mem.size(); }
    const storage::RunEntry& entry() const { return reader ? reader->entry() : run->mem[pos]; }
    Status Next() {
      if (reader) return reader->Next();
      ++pos;
      return Status::OK();
    }
    // Steps over entries of dead rows.
    Status Skip() {
      while (Valid() && dead != nullptr && dead->contains(entry().row)) {
        VECTORD_RETURN_IF_ERROR(Next());
      }
      return Status::OK();
    }
  };
  std::vector<Cursor> cursors(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    cursors[i].run = inputs[i].get();
    cursors[i].dead =
        i < dead.size() && dead[i] != nullptr && !dead[i]->isEmpty() ? dead[i] : nullptr;
    if (inputs[i]->file) {
      VECTORD_ASSIGN_OR_RETURN(cursors[i].reader, inputs[i]->file->NewReader());
    }
    VECTORD_RETURN_IF_ERROR(cursors[i].Skip());
  }
  auto later = [&](size_t a, size_t b) { return cursors[b].entry() < cursors[a].entry(); };
  std::priority_queue<size_t, std::vector<size_t>, decltype(later)> heap(later);
  for (size_t i = 0; i < cursors.size(); ++i) {
    if (cursors[i].Valid()) heap.push(i);
  }
  auto data = std::make_shared<RunData>();
  data->id = files->NewId();
  data->files = files;  // from here on the file is released (deleted) if this run is dropped
  const std::string path = files->Path(data->id);
  VECTORD_ASSIGN_OR_RETURN(auto writer, storage::SortedRunWriter::Create(path));
  while (!heap.empty()) {
    const size_t i = heap.top();
    heap.pop();
    VECTORD_RETURN_IF_ERROR(writer->Add(cursors[i].entry()));
    VECTORD_RETURN_IF_ERROR(cursors[i].Next());
    VECTORD_RETURN_IF_ERROR(cursors[i].Skip());
    if (cursors[i].Valid()) heap.push(i);
  }
  if (writer->entries() == 0) return std::shared_ptr<const RunData>();
  VECTORD_RETURN_IF_ERROR(writer->Finish());
  VECTORD_ASSIGN_OR_RETURN(data->file, storage::SortedRunFile::Open(path));
  data->entries = data->file->entries();
  data->min_row = data->file->min_row();
  data->max_row = data->file->max_row();
  return std::shared_ptr<const RunData>(std::move(data));
}

Result<std::shared_ptr<const RunData>> OpenRun(RunFiles* files, uint64_t id) {
  auto data = std::make_shared<RunData>();
  VECTORD_ASSIGN_OR_RETURN(data->file, storage::SortedRunFile::Open(files->Path(id)));
  files->Retain(id);
  data->id = id;
  data->files = files;
  data->entries = data->file->entries();
  data->min_row = data->file->min_row();
  data->max_row = data->file->max_row();
  return std::shared_ptr<const RunData>(std::move(data));
}

// ---------------------------------------------------------------------------------------------
// RangeRuns

RangeRuns::RangeRuns(RunFiles* files, RangeRunsOptions options)
    : files_(files), options_(options), uid_(g_next_uid.fetch_add(1)) {}

RangeRuns::~RangeRuns() = default;

void RangeRuns::Insert(double value, InternalId row) {
  if (bulk_) {
    bulk_buf_.push_back(storage::RunEntry{value, row});
    if (bulk_buf_.size() >= options_.build_chunk_entries && bulk_status_.ok()) {
      bulk_status_ = WriteBulkChunk();
    }
    return;
  }
  tail_.Insert(value, row);
  if (tail_.size() >= options_.tail_entries) FreezeTail();
}

void RangeRuns::MarkDead(InternalId row) {
  for (Run& r : runs_) {
    if (row >= r.data->min_row && row <= r.data->max_row) r.dead.add(row);
  }
}

void RangeRuns::MarkDead(const Roaring& rows) {
  if (rows.isEmpty()) return;
  const uint32_t lo = rows.minimum(), hi = rows.maximum();
  for (Run& r : runs_) {
    if (hi >= r.data->min_row && lo <= r.data->max_row) r.dead |= rows;
  }
}

void RangeRuns::Erase(double value, InternalId row) {
  // All values of a row are inserted together, so they sit together: in the tail, or in one run.
  if (!tail_.EraseEntry(value, row)) MarkDead(row);
}

void RangeRuns::EraseRows(const Roaring& rows) {
  tail_.EraseRows(rows);
  MarkDead(rows);
}

Status RangeRuns::CollectRange(const Range& range, std::vector<uint32_t>* rows) const {
  double lo = -std::numeric_limits<double>::infinity(), hi = -lo;
  if (range.gt) lo = std::max(lo, *range.gt);
  if (range.gte) lo = std::max(lo, *range.gte);
  if (range.lt) hi = std::min(hi, *range.lt);
  if (range.lte) hi = std::min(hi, *range.lte);
  VECTORD_RETURN_IF_ERROR(tail_.CollectRange(range, rows));
  if (!(lo <= hi)) return Status::OK();
  // Open ends: gt / lt bounds that are the binding ones.
  const bool lo_open = range.gt && *range.gt == lo && !(range.gte && *range.gte > lo);
  const bool hi_open = range.lt && *range.lt == hi && !(range.lte && *range.lte < hi);
  for (const Run& r : runs_) {
    const Roaring* dead = r.dead.isEmpty() ? nullptr : &r.dead;
    auto take = [&](std::span<const storage::RunEntry> entries) {
      for (const storage::RunEntry& e : entries) {
        if (range.Contains(e.value) && (dead == nullptr || !dead->contains(e.row))) {
          rows->push_back(e.row);
        }
      }
    };
    if (r.data->file) {
      const size_t at = rows->size();
      VECTORD_RETURN_IF_ERROR(r.data->file->CollectRows(lo, lo_open, hi, hi_open, rows));
      if (dead != nullptr) {
        // Rows whose entries in this run no longer count (the row was rewritten or deleted).
        auto keep = std::remove_if(rows->begin() + static_cast<std::ptrdiff_t>(at), rows->end(),
                                   [dead](uint32_t row) { return dead->contains(row); });
        rows->erase(keep, rows->end());
      }
    } else {
      const auto& mem = r.data->mem;
      auto begin = std::partition_point(mem.begin(), mem.end(),
                                        [lo](const storage::RunEntry& e) { return e.value < lo; });
      auto end = std::partition_point(begin, mem.end(),
                                      [hi](const storage::RunEntry& e) { return e.value <= hi; });
      take(std::span<const storage::RunEntry>(mem.data() + (begin - mem.begin()),
                                              static_cast<size_t>(end - begin)));
    }
  }
  return Status::OK();
}

void RangeRuns::BeginBulk() { bulk_ = true; }

Status RangeRuns::WriteBulkChunk() {
  if (bulk_buf_.empty()) return Status::OK();
  std::sort(bulk_buf_.begin(), bulk_buf_.end());
  auto chunk = std::make_shared<RunData>();
  chunk->mem.swap(bulk_buf_);
  chunk->entries = chunk->mem.size();
  VECTORD_ASSIGN_OR_RETURN(auto run, MergeRuns(files_, {chunk}, {}));
  if (run) runs_.push_back(Run{std::move(run), Roaring()});
  return Status::OK();
}

Status RangeRuns::EndBulk() {
  bulk_ = false;
  if (bulk_status_.ok()) bulk_status_ = WriteBulkChunk();
  bulk_buf_ = std::vector<storage::RunEntry>();
  if (bulk_status_.ok() && runs_.size() > 1) {
    std::vector<std::shared_ptr<const RunData>> inputs;
    for (const Run& r : runs_) inputs.push_back(r.data);
    auto merged = MergeRuns(files_, inputs, {});
    if (merged.ok()) {
      runs_.clear();
      if (*merged) runs_.push_back(Run{std::move(merged).value(), Roaring()});
    } else {
      bulk_status_ = merged.status();
    }
  }
  return bulk_status_;
}

size_t RangeRuns::MemoryBytes() const {
  size_t n = sizeof(*this) + tail_.MemoryBytes() + runs_.capacity() * sizeof(Run) +
             bulk_buf_.capacity() * sizeof(storage::RunEntry);
  for (const Run& r : runs_) {
    n += sizeof(RunData) + RoaringBytes(r.dead);
    n += r.data->file ? r.data->file->MemoryBytes()
                      : r.data->mem.capacity() * sizeof(storage::RunEntry);
  }
  return n;
}

void RangeRuns::AddRestoredRun(std::shared_ptr<const RunData> run, Roaring dead) {
  runs_.push_back(Run{std::move(run), std::move(dead)});
}

std::vector<RangeRuns::FileRun> RangeRuns::FileRuns() const {
  std::vector<FileRun> out;
  for (const Run& r : runs_) {
    if (r.data->file) out.push_back(FileRun{r.data->id, r.data->entries, &r.dead});
  }
  return out;
}

void RangeRuns::FreezeTail() {
  if (tail_.size() == 0) return;
  auto data = std::make_shared<RunData>();
  for (const auto& e : tail_.TakeSorted()) data->mem.push_back(storage::RunEntry{e.value, e.row});
  data->entries = data->mem.size();
  for (const auto& e : data->mem) {
    data->min_row = std::min(data->min_row, e.row);
    data->max_row = std::max(data->max_row, e.row);
  }
  runs_.push_back(Run{std::move(data), Roaring()});
}

std::vector<std::vector<size_t>> RangeRuns::MaintenanceGroups() const {
  std::vector<std::vector<size_t>> groups;
  std::vector<size_t> in_ram;
  std::map<int, std::vector<size_t>> tiers;
  for (size_t i = 0; i < runs_.size(); ++i) {
    if (!runs_[i].data->file) {
      in_ram.push_back(i);
    } else {
      tiers[Tier(runs_[i].data->entries)].push_back(i);
    }
  }
  // The in-RAM runs (frozen tails) are written out as one file, their dead entries dropped.
  if (!in_ram.empty()) groups.push_back(in_ram);
  for (auto& [tier, runs] : tiers) {
    if (runs.size() >= options_.merge_width) {
      groups.push_back(runs);
      continue;
    }
    for (size_t i : runs) {
      // A run a quarter dead is rewritten without its dead entries (the dead bitmap may also
      // name rows the run never held: such a rewrite then only empties the bitmap).
      if (runs_[i].dead.cardinality() * 4 > runs_[i].data->entries) groups.push_back({i});
    }
  }
  return groups;
}

RangeRuns::Job RangeRuns::PlanMaintenance() const {
  Job job;
  job.uid = uid_;
  for (const auto& group : MaintenanceGroups()) {
    Job::Merge m;
    for (size_t i : group) {
      m.inputs.push_back(runs_[i].data);
      m.dead.push_back(runs_[i].dead);
    }
    job.merges.push_back(std::move(m));
  }
  return job;
}

bool RangeRuns::NeedsMaintenance() const { return !MaintenanceGroups().empty(); }

Status RangeRuns::RunJob(RunFiles* files, Job* job) {
  for (Job::Merge& m : job->merges) {
    std::vector<const Roaring*> dead;
    for (const Roaring& d : m.dead) dead.push_back(&d);
    VECTORD_ASSIGN_OR_RETURN(m.output, MergeRuns(files, m.inputs, dead));
    m.done = true;
  }
  return Status::OK();
}

void RangeRuns::Install(Job&& job) {
  if (job.uid != uid_) return;
  for (Job::Merge& m : job.merges) {
    if (!m.done) continue;
    std::vector<size_t> at;
    for (const auto& in : m.inputs) {
      for (size_t i = 0; i < runs_.size(); ++i) {
        if (runs_[i].data == in) at.push_back(i);
      }
    }
    if (at.size() != m.inputs.size()) continue;  // an input is gone: the output is dropped
    Roaring delta;                               // rows erased while the merge ran
    for (size_t j = 0; j < at.size(); ++j) delta |= runs_[at[j]].dead - m.dead[j];
    std::sort(at.rbegin(), at.rend());
    for (size_t i : at) runs_.erase(runs_.begin() + static_cast<ptrdiff_t>(i));
    if (m.output) runs_.push_back(Run{std::move(m.output), std::move(delta)});
  }
}

}  // namespace vectord::points
