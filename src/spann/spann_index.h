// SpannIndex: search over a built SPANN index (spann_builder.h). Centroids, their navigation
// structure and the PQ codebooks live in RAM; posting lists are read from SSD with one IoReader
// batch per query (io_uring, O_DIRECT); PQ candidates are re-ranked with exact distances read
// from the collection's vector file in one more batch. Thread-safe: any number of concurrent
// Search calls (each thread keeps its own IoReader and buffers).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "index/flat_search.h"
#include "src/spann/row_codes.h"
#include "src/spann/spann_meta.h"
#include "vectord/status.h"

namespace vectord {
namespace storage {
class PostingFile;
}

struct SpannOpenOptions {
  // The vector file whose rows were indexed (docs/formats.md "Vector file"); re-ranking of PQ
  // layouts reads it. Required for kPq4/kPq8, unused for kFull.
  std::string vector_file;
  // RAM for hot posting lists, bytes (default 0 = none). Lists are picked once at Open by their
  // build-time probe counts per page (a static cache: no locks on the search path).
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
  uint64_t candidates = 0;  // entries scanned (replicas included)
  uint64_t distances = 0;   // exact distance computations (centroids excluded)
  double us_navigate = 0, us_io = 0, us_scan = 0, us_rerank = 0, us_total = 0;
  void Add(const SpannSearchStats& o);
};

// SearchAdaptive (the query planner's filtered plan, src/query_planner.h): posting lists are read
// in rounds, nearest first, until enough allowed rows are found or a budget is spent.
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
  // Lists that may hold an allowed row (ListSummaries::Candidates, src/list_summary.h); null =
  // every list. Other lists are skipped without I/O; max_lists counts the lists read.
  const Roaring* candidate_lists = nullptr;
};

struct SpannAdaptiveStats {
  uint32_t rounds = 0;
  bool budget_hit = false;  // stopped by max_lists / max_pages before the stopping rule
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
  // fails: never results from bad bytes.
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
  // Row ids of posting list `list` (< num_lists()) as stored, replicas included; buffered reads
  // (building list summaries). Corruption on a bad page checksum.
  Status ListRows(uint32_t list, std::vector<uint32_t>* rows) const;
  // Reads the vectors of `rows` (ascending, < rows()) from the vector file with O_DIRECT, one
  // IoReader batch per 16 MiB of runs (rows about a page apart share a read), checks their record
  // checksums and stores row rows[i]'s bytes at out + i * dim * element size. *pages (may be null)
  // += 4 KiB pages read. FailedPrecondition when opened without options.vector_file.
  Status ReadRows(const std::vector<uint32_t>& rows, uint8_t* out, uint64_t* pages) const;
  // Mean entries (replicas included) and 4 KiB pages per posting list.
  double MeanListEntries() const;
  double MeanListPages() const;

  uint32_t dim() const { return meta_.dim; }
  uint64_t rows() const { return meta_.rows; }
  uint32_t num_lists() const { return meta_.num_lists(); }
  index::PostingLayout layout() const { return meta_.layout; }
  const SpannMeta& meta() const { return meta_; }
  // The per-row PQ codes of the filtered code scan (src/row_codes.h); null when the index has
  // none (built with row_code_bytes 0, or before they existed) or its file failed its checks.
  const RowCodes* row_codes() const { return row_codes_.load(std::memory_order_acquire); }
  // Installs codes built after the index (for its rows()); false when it already has some. Once
  // installed they stay for the index's lifetime, so a pointer from row_codes() stays valid.
  bool InstallRowCodes(std::unique_ptr<RowCodes> codes) const;
  // RAM of the resident part: centroids + navigation + PQ + per-list directory + row codes
  // (excluding the cache).
  size_t ResidentBytes() const;
  size_t CacheBytes() const { return cache_bytes_; }
  uint64_t PostingFileBytes() const;
  bool direct_io() const;

 private:
  SpannIndex() = default;
  Status ReadAndScan(const float* q, uint32_t k, const SpannSearchParams& params,
                     const std::vector<uint32_t>& probe, SpannSearchStats* st,
                     std::vector<index::Neighbor>* out) const;

  SpannMeta meta_;
  std::unique_ptr<storage::PostingFile> postings_;
  std::unique_ptr<index::PostingCodec> codec_;
  SpannOpenOptions options_;
  int vec_fd_ = -1;  // O_DIRECT (or buffered) descriptor of the vector file, PQ layouts
  // Buffered descriptor for records whose page span passes the end of the file (the last page).
  int vec_tail_fd_ = -1;
  uint64_t vec_file_bytes_ = 0;
  uint32_t record_bytes_ = 0;
  std::vector<std::vector<uint8_t>> cache_;  // decoded payload per cached list, else empty
  size_t cache_bytes_ = 0;
  mutable std::mutex row_codes_mu_;
  mutable std::unique_ptr<RowCodes> row_codes_owned_;  // guarded by row_codes_mu_
  mutable std::atomic<const RowCodes*> row_codes_{nullptr};
  // MeanListEntries / MeanListPages, computed on first use.
  mutable std::once_flag list_means_once_;
  mutable double mean_entries_ = 0, mean_pages_ = 0;
};

}  // namespace vectord
