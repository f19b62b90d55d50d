// SpannIndex: search over a SPANN index (spann_builder.h builds it) that lives on: centroids with
// their navigation structure, the PQ codebooks, the posting-list directory and each row's replica
// version live in RAM; posting lists are read from SSD with one IoReader batch per query (io_uring,
// O_DIRECT); PQ candidates are re-ranked with exact distances read from the collection's vector
// file in one more batch. docs/spann.md.
//
// Living index (SPFresh's LIRE, docs/spann.md "Living index"): rows written after the build are
// assigned to posting lists by the updater (spann_updater.h); until their lists are rewritten on
// SSD they wait in RAM as pending entries of those lists, which searches scan with the lists. A
// list entry is valid while its version is its row's current version (a reassigned row gets a new
// one, which makes its old replicas stale). The list directory, versions and centroid edits are
// made durable by a journal (index.log) and checkpoints (index.ckpt) in the index directory; the
// posting file is block-allocated (storage/posting_store.h).
//
// Thread safety: any number of concurrent searches. The updater changes the RAM state only in its
// Apply steps, which need the caller's exclusive lock against searches (the collection's mu_);
// searches hold the same lock shared. Its work between them (I/O, clustering) reads only state
// that no one else changes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "index/flat_search.h"
#include "src/spann/row_codes.h"
#include "src/spann/spann_journal.h"
#include "src/spann/spann_meta.h"
#include "src/vectors/row_buffer.h"
#include "storage/posting_file.h"
#include "vectord/status.h"

namespace vectord {
namespace storage {
class PostingStore;
class RecordLog;
}  // namespace storage

class SpannUpdater;

struct SpannOpenOptions {
  // The vector file whose rows were indexed (docs/formats.md "Vector file"); re-ranking of PQ
  // layouts reads it. Required for kPq4/kPq8, unused for kFull.
  std::string vector_file;
  // RAM for hot posting lists, bytes (default 0 = none). Lists are picked once at Open by their
  // build-time probe counts per page (a static cache: no locks on the search path); a list that
  // the updater rewrites leaves the cache.
  size_t cache_bytes = 0;
  // Use buffered reads instead of O_DIRECT (tests; the page cache then hides SSD reads).
  bool force_buffered = false;
  // Use the pread thread pool even where io_uring works (tests, benchmarks).
  bool force_pread = false;
};

struct SpannSearchParams {
  // Most posting lists probed (default 32).
  uint32_t nprobe = 32;
  // Query-aware pruning: keep list i while dist(q, c_i) <= (1 + eps) * dist(q, c_1), non-squared
  // L2 (default 0.6; <= 0 disables the rule).
  float eps = 0.6f;
  // PQ layouts: candidates re-ranked with exact distances (default 64; at least k).
  uint32_t rerank = 64;
  // PQ layouts: false returns the best k by their PQ distances, with those approximate scores,
  // and reads no vector (for a caller that scores the rows itself: MUVERA's candidate stage).
  bool exact_rerank = true;
  // Page budget for posting lists: lists are dropped (farthest first) once their pages would pass
  // it (default 0 = no budget).
  uint32_t max_pages = 0;
  // Rows that may be returned (deleted rows are excluded the same way). Null = all.
  const index::RowFilter* filter = nullptr;
  std::function<bool(InternalId)> accept;  // checked after `filter` when set
  index::CentroidSearchParams navigation;
};

struct SpannSearchStats {
  uint32_t lists_probed = 0;
  uint32_t lists_cached = 0;  // of lists_probed, served from the RAM cache
  uint64_t pages_read = 0;    // 4 KiB pages: posting lists + re-rank reads
  uint64_t rerank_pages = 0;
  uint64_t candidates = 0;  // entries scanned (replicas included; pending entries included)
  uint64_t pending = 0;     // of candidates, entries still waiting in RAM for their list
  uint64_t distances = 0;   // exact distance computations (centroids excluded)
  double us_navigate = 0, us_io = 0, us_scan = 0, us_rerank = 0, us_total = 0;
  void Add(const SpannSearchStats& o);
};

// SearchAdaptive (the query planner's filtered plan, src/search/query_planner.h): posting lists are
// read in rounds, nearest first, until enough allowed rows are found or a budget is spent.
struct SpannAdaptiveParams {
  uint32_t first_lists = 24;  // lists read in the first round
  uint32_t max_lists = 1024;  // most lists over all rounds
  uint64_t max_pages = 0;     // posting-list page budget over all rounds (0 = none)
  // A round after the first reads as many lists as all rounds before it while fewer than k allowed
  // rows are found; once k are found, one more round of check_lists lists (0 = max(4,
  // first_lists / 2)) checks the top k; the search stops when such a round changes nothing in it.
  uint32_t check_lists = 0;
  // L2 only: besides the check round, stop only once the next unread list's centroid is farther
  // from q than r_k + distance_slack * d(q, c_1) (r_k the k-th result's distance, c_1 the nearest
  // centroid), so that closer matches in farther lists are not missed when the filter's matches
  // lie far from the query (filters correlated with the vectors).
  bool distance_stop = false;
  float distance_slack = 0;
  // With distance_stop: once k are found, a round reads at least every unread list the distance
  // rule would still require (fewer rounds, each an I/O round trip).
  bool batch_distance_round = false;
  // Lists that may hold an allowed row (ListSummaries::Candidates, src/spann/list_summary.h);
  // null = every list. Other lists are skipped without I/O; max_lists counts the lists read.
  const Roaring* candidate_lists = nullptr;
  // The first round reads at least the nearest lists that hold about first_rows rows (their
  // entries over the index's mean replicas per row; 0 = first_lists alone decides).
  uint64_t first_rows = 0;
  // Stop as soon as k allowed rows are found, without a check round: for a caller that wants k
  // good candidates rather than the exact top k (MUVERA's candidate stage).
  bool stop_at_k = false;
};

struct SpannAdaptiveStats {
  uint32_t rounds = 0;
  bool budget_hit = false;  // stopped by max_lists / max_pages before the stopping rule
};

// What the living index has done and holds (GET /collections/{c}, /metrics).
struct SpannLiveStats {
  uint64_t durable_rows = 0;   // rows [0, durable_rows) are in posting lists on SSD
  uint64_t assigned_rows = 0;  // rows [durable_rows, assigned_rows) wait as pending entries
  uint64_t pending_entries = 0;
  uint32_t lists = 0;  // alive posting lists
  uint64_t list_entries = 0;
  uint64_t splits = 0, merges = 0, reassigned = 0, lists_written = 0, cycles = 0;
  uint64_t bytes_written = 0;  // posting pages written by the updater
  uint64_t gc_lists = 0;       // lists rewritten to drop dead or stale entries
  double cpu_seconds = 0;      // updater CPU time
  uint64_t posting_file_bytes = 0, free_bytes = 0;
};

class SpannIndex {
 public:
  static Result<std::unique_ptr<SpannIndex>> Open(const std::string& dir,
                                                  const SpannOpenOptions& options);
  ~SpannIndex();
  SpannIndex(const SpannIndex&) = delete;
  SpannIndex& operator=(const SpannIndex&) = delete;

  // Top-k rows best-first with Qdrant scores (Euclid: L2 distance; Dot/Cosine: inner product).
  // `query` has dim() floats (normalized for Cosine). Corruption when a page or record checksum
  // fails: never results from bad bytes. Rows at or past assigned_rows() are not in the index
  // (the caller scans them).
  Result<std::vector<index::Neighbor>> Search(const float* query, uint32_t k,
                                              const SpannSearchParams& params,
                                              SpannSearchStats* stats = nullptr) const;

  // Filtered search in rounds (SpannAdaptiveParams). params.nprobe and params.eps are ignored (the
  // rounds decide which lists are read); params.filter / accept / rerank / navigation apply.
  // `stats` accumulates over the rounds.
  Result<std::vector<index::Neighbor>> SearchAdaptive(const float* query, uint32_t k,
                                                      const SpannSearchParams& params,
                                                      const SpannAdaptiveParams& adaptive,
                                                      SpannSearchStats* stats = nullptr,
                                                      SpannAdaptiveStats* astats = nullptr) const;
  // Rows of the valid entries of posting list `list` on SSD (replicas included; stale entries
  // left out), buffered reads (building list summaries). Corruption on a bad page checksum.
  Status ListRows(uint32_t list, std::vector<uint32_t>* rows) const;
  // Reads the vectors of `rows` (ascending, < assigned_rows()) from the vector file with
  // O_DIRECT, one IoReader batch per 16 MiB of runs (rows about a page apart share a read),
  // checks their record checksums and stores row rows[i]'s bytes at out + i * dim * element size.
  // *pages (may be null) += 4 KiB pages read. FailedPrecondition when opened without
  // options.vector_file.
  Status ReadRows(const std::vector<uint32_t>& rows, uint8_t* out, uint64_t* pages) const;
  // Mean entries (replicas included) and 4 KiB pages per alive posting list.
  double MeanListEntries() const { return mean_entries_; }
  double MeanListPages() const { return mean_pages_; }
  // Posting lists the updater has rewritten so far (SpannLiveStats::lists_written).
  uint64_t lists_written() const { return live_.lists_written; }
  // Mean list entries per indexed row (the replicas a row has, stale entries included); >= 1.
  double MeanReplicas() const;

  uint32_t dim() const { return meta_.dim; }
  // Rows the index serves: [0, assigned_rows()), the last of them maybe still pending in RAM.
  uint64_t rows() const { return assigned_rows_; }
  uint64_t assigned_rows() const { return assigned_rows_; }
  uint64_t durable_rows() const { return durable_rows_; }
  // List ids are [0, num_lists()); removed ones (split or merged lists) are empty.
  uint32_t num_lists() const { return nav_->size(); }
  uint32_t alive_lists() const { return nav_->alive_count(); }
  index::PostingLayout layout() const { return meta_.layout; }
  const SpannMeta& meta() const { return meta_; }
  const index::CentroidIndex& navigation() const { return *nav_; }
  const storage::PostingListInfo& list_info(uint32_t list) const { return dir_[list]; }
  const storage::PostingStore& store() const { return *store_; }
  const index::PostingCodec& codec() const { return *codec_; }
  uint8_t version(uint32_t row) const { return versions_[row]; }
  // The per-row PQ codes of the filtered code scan (src/spann/row_codes.h); null when the index
  // has none (built with row_code_bytes 0, or before they existed) or its file failed its checks.
  const RowCodes* row_codes() const { return row_codes_.load(std::memory_order_acquire); }
  // Installs codes built after the index (for its rows() at the time); false when it already has
  // some. Once installed they stay for the index's lifetime, so a pointer from row_codes() stays
  // valid; the updater extends them with the rows it assigns.
  bool InstallRowCodes(std::unique_ptr<RowCodes> codes) const;
  // RAM of the resident part: centroids + navigation + PQ + per-list directory + versions + row
  // codes + pending entries and their vectors (excluding the cache).
  size_t ResidentBytes() const;
  size_t CacheBytes() const { return cache_bytes_; }
  uint64_t PostingFileBytes() const;
  bool direct_io() const;
  SpannLiveStats LiveStats() const;
  const std::string& dir() const { return dir_path_; }

 private:
  friend class SpannUpdater;
  SpannIndex() = default;
  Status ReadAndScan(const float* q, uint32_t k, const SpannSearchParams& params,
                     const std::vector<uint32_t>& probe, SpannSearchStats* st,
                     std::vector<index::Neighbor>* out) const;
  // Vector bytes of pending row `row` (in [durable_rows_, assigned_rows_)).
  const uint8_t* PendingVector(uint32_t row) const {
    return pending_vectors_.data() + (uint64_t{row} - durable_rows_) * record_bytes_;
  }
  void RecomputeListMeans();
  // Open: applies one journal record to the state read from the checkpoint (or the build).
  Status ReplayEdit(const SpannEdit& e);
  // Appends the codes of rows [codes->rows(), rows), read from the vector file.
  Status CatchUpRowCodes(RowCodes* codes, uint64_t rows) const;

  std::string dir_path_;
  SpannMeta meta_;  // meta_.centroids is moved into nav_ at Open
  std::unique_ptr<storage::PostingStore> store_;
  std::unique_ptr<index::PostingCodec> codec_;
  SpannOpenOptions options_;
  int vec_fd_ = -1;  // O_DIRECT (or buffered) descriptor of the vector file, PQ layouts
  // Buffered descriptor for records whose page span passes the end of the file (the last page).
  int vec_tail_fd_ = -1;
  uint64_t vec_file_bytes_ = 0;  // bytes of the vector file known complete (rows < assigned)
  uint32_t record_bytes_ = 0;

  // The living state: changed only by SpannUpdater's Apply steps (see the file comment).
  std::shared_ptr<const index::CentroidIndex> nav_;
  std::vector<storage::PostingListInfo> dir_;  // by list id
  std::vector<uint8_t> versions_;              // by row, rows < assigned_rows_
  // Rows [0, durable_rows_) have every entry on SSD; rows [durable_rows_, assigned_rows_) some
  // or none (the rest pending). Entries of rows past versions_ are stale (a crashed run's).
  uint64_t durable_rows_ = 0;
  uint64_t assigned_rows_ = 0;
  uint8_t assign_version_ = 0;  // version of the rows assigned since this open (SpannEdit)
  // Entries assigned to a list and not yet in its SSD copy: list -> rows (their version is the
  // row's current one); the rows' vectors, rows [durable_rows_, assigned_rows_), back to back.
  std::unordered_map<uint32_t, std::vector<uint32_t>> pending_;
  uint64_t pending_entries_ = 0;
  RowBuffer pending_vectors_;
  double mean_entries_ = 0, mean_pages_ = 0;
  std::unique_ptr<storage::RecordLog> journal_;  // opened by Open, appended by the updater
  uint64_t journal_next_seq_ = 0;                // first journal record not in index.ckpt

  std::vector<std::vector<uint8_t>> cache_;  // decoded payload per cached list, else empty
  size_t cache_bytes_ = 0;
  mutable std::mutex row_codes_mu_;
  mutable std::unique_ptr<RowCodes> row_codes_owned_;  // guarded by row_codes_mu_
  mutable std::atomic<const RowCodes*> row_codes_{nullptr};
  SpannLiveStats live_;  // counters the updater keeps (its Apply steps)
};

}  // namespace vectord
