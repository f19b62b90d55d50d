// CollectionIndex: a collection's SPANN index over its life — the background build once the
// collection reaches spann_config.indexing_threshold, opening it again at restart, and the side
// structures kept beside it: per-posting-list payload summaries with their dirty-row log
// (list_summary.h) and the per-row codes of the filtered code scan (row_codes.h). Its jobs run on
// the database's JobScheduler. docs/spann.md.
//
// Locking: the part shares its collection's two locks (IndexHost): its RAM state is read under
// the collection's shared `mu` and changed under `write_mu` + exclusive `mu`, so that a search sees
// the index, its summaries and the collection's RAM rows as one consistent state.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <roaring/roaring.hh>
#include <shared_mutex>
#include <string>
#include <vector>

#include "src/jobs/job_scheduler.h"
#include "vectord/collection.h"
#include "vectord/status.h"

namespace vectord {

class DirtyLog;
class ListSummaries;
class SpannIndex;
class SpannUpdater;
class ThreadPool;
class VectorStore;
struct SearchSources;

// What the index part needs from its collection.
class IndexHost {
 public:
  virtual ~IndexHost() = default;
  virtual const std::string& name() const = 0;
  // Writers serialize on write_mu(); mu() guards the RAM state readers see (collection.h).
  virtual std::mutex& write_mu() = 0;
  virtual std::shared_mutex& mu() = 0;
  // With write_mu() held: writes the collection's catalog entry (the index manifest included).
  virtual Status CommitCatalog() = 0;
  // With write_mu() and mu() (exclusive) held: rows below `rows` are served by the index now.
  virtual void OnIndexInstalled(uint64_t rows) = 0;
  // With mu() held (shared or exclusive): the fields that have a payload index (summarized).
  virtual std::vector<std::string> PayloadIndexFields() const = 0;
  // With mu() held (shared or exclusive): the payloads of `rows` (null = none).
  virtual Status ReadPayloads(const std::vector<uint32_t>& rows, std::vector<Json>* out) const = 0;
  // With mu() held: live points (the build threshold counts these).
  virtual uint64_t LivePoints() const = 0;
  // With mu() held (shared or exclusive): a copy of the live rows (the updater drops dead
  // entries when it rewrites a list).
  virtual Roaring LiveRows() const = 0;
  // With mu() held exclusively: rows below `rows` are held by the index now (the living index
  // assigned them to lists); their RAM copy may go.
  virtual void OnRowsAssigned(uint64_t rows) = 0;
};

class CollectionIndex {
 public:
  // `vectors` is the collection's vector store (its file is what the index covers); `dir` the
  // collection directory (index generations live in dir/spann-<gen>).
  CollectionIndex(IndexHost* host, const CollectionConfig& config, const VectorStore* vectors,
                  std::string dir, ThreadPool* pool, JobSet* jobs);
  ~CollectionIndex();
  CollectionIndex(const CollectionIndex&) = delete;
  CollectionIndex& operator=(const CollectionIndex&) = delete;

  // At open, before any reader: opens the index named by the catalog's manifest (`spann_index`,
  // may be null) and its summaries, removes directories of other generations. Rows below the
  // returned count are served by the index (the rest belong in RAM). An index that cannot be
  // opened leaves the collection red, served exactly from the vector file (returns 0 then).
  Result<uint64_t> Restore(const Json& manifest, uint64_t rows);
  // At open, once the collection's points are loaded: the side structures that read payloads
  // (list summaries, rebuilt when missing or damaged).
  Status RestoreSideData();
  // {"gen", "rows"} of the installed index for the catalog, null when none. mu() held.
  Json Manifest() const;

  // With write_mu() held, after a write was applied: starts the build when it is due, the row
  // codes when a payload index wants them, the summary refresh when many rows changed.
  void MaybeStartWork();
  // Back-pressure of the living index: waits (no lock held) while the delta — rows written and
  // not yet in posting lists on SSD — would pass spann_config.max_delta_points with `incoming`
  // more (a batch larger than the bound waits for an empty delta). Returns at once when the
  // updater is not running (no index yet, a failure: the delta then grows in RAM).
  void WaitForRoom(uint64_t incoming);
  // After a write was applied (mu() exclusive): the collection's rows, and the rows deleted
  // among those in posting lists (the updater's sweep reclaims their entries).
  void OnRowsWritten(uint64_t rows) { rows_.store(rows); }
  void OnRowsDeleted(const std::vector<InternalId>& rows);
  // Payload changes of `rows` (write_mu() held): logged before the commit so that summaries never
  // hide a committed change (Before...), then marked under the exclusive mu() (After...).
  Status BeforePayloadCommit(const std::vector<InternalId>& rows, bool sync);
  void AfterPayloadApply(const std::vector<InternalId>& rows);

  // Reads, mu() held.
  bool has_index() const { return index_ != nullptr; }
  // Rows the index serves (assigned to lists; the rest are scanned exactly from RAM).
  uint64_t indexed_rows() const;
  // Rows whose entries are in posting lists on SSD.
  uint64_t durable_rows() const;
  const SpannIndex* index() const { return index_.get(); }
  // Fills the index fields of `s` (index, indexed rows, summaries, dirty rows, defaults).
  void FillSources(SearchSources* s) const;
  // status ("green", "yellow" while a build or other index work runs, "red" after a failure),
  // the last error, build progress; RAM held by the index and its side structures.
  void FillInfo(CollectionInfo* info) const;
  uint64_t SummaryDirtyRows() const;
  // Stops work in flight (the collection is closing or being dropped).
  void Cancel();
  // RAM held by the index (centroids, directory, versions, pending entries, row codes, cache)
  // and by the summaries. mu() held.
  void FillMemory(std::vector<std::pair<std::string, uint64_t>>* out) const;

 private:
  void BuildJob(Job& job);
  void AssignJob(Job& job);
  void UpdateJob(Job& job);
  // With mu() exclusive: makes the updater of a newly opened or installed index.
  void StartUpdater();
  // The collection's shared / exclusive lock as the updater takes them.
  std::shared_ptr<void> LockShared();
  std::shared_ptr<void> LockExclusive();
  void RowCodesJob(Job& job);
  void SummariesJob(Job& job);
  // Summaries of `index`'s posting lists from the current payloads (mu() taken per list unless
  // `locked`), `dirty` recorded as the rows changed during the build, `lists_written` the
  // index's updater counter read before the first list (ListSummaries::lists_written).
  Result<std::unique_ptr<ListSummaries>> BuildSummaries(const SpannIndex& index, bool locked,
                                                        Roaring dirty,
                                                        uint64_t lists_written) const;
  // Restore: the summaries of index_ (file + dirty log), rebuilt when missing or damaged.
  void LoadSummaries();
  std::string GenDir(uint64_t gen) const { return dir_ + "/spann-" + std::to_string(gen); }
  bool RowCodesWanted() const;  // mu() held

  IndexHost* const host_;
  const CollectionConfig& config_;
  const VectorStore* const vectors_;
  const std::string dir_;
  ThreadPool* const pool_;
  std::atomic<bool> cancel_{false};
  Job* build_job_ = nullptr;
  Job* row_codes_job_ = nullptr;
  Job* summaries_job_ = nullptr;
  Job* assign_job_ = nullptr;
  Job* update_job_ = nullptr;
  // Back-pressure: rows written, rows in SSD lists (atomics: WaitForRoom reads them unlocked).
  std::atomic<uint64_t> rows_{0};
  std::atomic<uint64_t> durable_{0};
  std::atomic<bool> updating_{false};  // an updater runs (WaitForRoom waits only then)
  std::mutex room_mu_;
  std::condition_variable room_cv_;  // the delta shrank, or the updater stopped
  double recent_rate_ = 0;           // points made durable per second, last cycles; mu()

  // Guarded by write_mu (changes) and mu (reads): see the file comment.
  std::shared_ptr<SpannIndex> index_;
  std::unique_ptr<SpannUpdater> updater_;  // with index_ (made under write_mu + exclusive mu)
  uint64_t gen_ = 0;  // generation of index_ (0: none yet); the next build uses gen_ + 1
  Json manifest_;     // {"gen", "rows"} of the installed index (or of one that failed to open)
  bool build_failed_ = false;
  bool building_ = false;
  uint64_t build_rows_ = 0;  // rows the build in flight covers
  std::string error_;        // why the index is red
  std::shared_ptr<const ListSummaries> summaries_;
  Roaring summary_dirty_;          // rows changed since summaries_ were built
  Roaring summary_stale_;          // lists rewritten before the summaries job in flight took them
  bool summary_tracking_ = false;  // a build of summaries is running: collect its dirty rows
  Roaring summary_pending_dirty_;
  std::unique_ptr<DirtyLog> dirty_log_;  // of summaries_
};

}  // namespace vectord
