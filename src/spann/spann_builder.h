// Offline SPANN build, memory-bounded and streaming (DESIGN.md "Index: SPANN with PQ"):
// sample -> hierarchical balanced k-means -> centroid navigation -> PQ training -> one pass over
// all rows assigning each to up to 8 lists (closure + RNG rules) -> external sort by list ->
// posting file. Build RAM = centroids + navigation + PQ + fixed buffers; docs/spann.md has the
// formula and the file formats.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "index/centroid_graph.h"
#include "index/posting_codec.h"
#include "index/spann_assign.h"
#include "src/vectors/vector_source.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord {

struct SpannBuildParams {
  // Kernel of the collection. Cosine rows must already be normalized (scored as Dot).
  Distance metric = Distance::kEuclid;
  // Posting payload: PQ 4-bit fast-scan codes + re-rank (default), 8-bit PQ, or full vectors.
  index::PostingLayout layout = index::PostingLayout::kPq4;
  // PQ subquantizers (0 = auto: dim / 2 for kPq4, dim / 4 for kPq8; dim must be divisible).
  uint32_t pq_m = 0;
  // Posting-list entries aimed at on average, replicas included (default 0 = auto: what fills
  // four 4 KiB pages for kFull, two for kPq4/kPq8, at least 16).
  uint32_t target_list_entries = 0;
  // Lists bigger than this (estimated from the sample) are split again (0 = 4 x target).
  uint32_t max_list_entries = 0;
  // Average lists per row assumed when sizing C = rows * expected_replicas / target (default 3.4,
  // what the default closure_eps 0.5 + rng_factor 1.2 give on SIFT: 3.39 at 260k).
  float expected_replicas = 3.4f;
  // Replica rules of the assignment pass.
  index::AssignParams assign;
  // Candidate centroids looked at per row during assignment (default 24).
  uint32_t assign_candidates = 24;
  // Navigation structure over the centroids (default tree: docs/spann.md "Centroid navigation").
  index::CentroidIndexKind navigation = index::CentroidIndexKind::kTree;
  // Centroids in RAM and in spann.vdc as float32 or IEEE half (default: half, 2 bytes a
  // dimension; docs/spann.md "Centroid precision"). HNSW navigation keeps float32.
  index::CentroidPrecision centroid_precision = index::CentroidPrecision::kF16;
  // Clustering sample rows, streamed through an external sort, never all in RAM (0 = auto:
  // min(N, max(100000, 20 * C))); the top level and PQ train on a subset of max(65536, 256 * √C).
  uint64_t sample_rows = 0;
  int kmeans_iters = 10;
  uint64_t seed = 1234;
  // Threads of the assignment pass (0 = hardware concurrency).
  unsigned threads = 0;
  // External-sort run buffer (bytes, default 256 MiB) and rows read per chunk (default 16384).
  size_t sort_buffer_bytes = size_t{256} << 20;
  uint32_t chunk_rows = 16384;
  // Bytes of the 8-bit PQ code kept in RAM per row for the filtered code scan (src/row_codes.h;
  // rounded down to a divisor of dim; 0 = none, the default here: collections decide).
  uint32_t row_code_bytes = 0;
  // When set and true, the build stops at the next chunk with Status::Unavailable (shutdown).
  const std::atomic<bool>* cancel = nullptr;
};

struct SpannBuildStats {
  uint64_t rows = 0;
  uint32_t lists = 0;
  uint64_t entries = 0;  // replicas included
  double avg_replicas = 0;
  uint32_t list_min = 0, list_max = 0, list_p99 = 0;
  double list_mean = 0;
  uint64_t posting_pages = 0;  // list pages (header/directory excluded)
  uint64_t posting_file_bytes = 0;
  uint64_t centroid_file_bytes = 0;
  uint64_t row_code_file_bytes = 0;  // rowcodes.vdc (0 = none)
  uint32_t row_code_bytes = 0;       // per row
  uint64_t sort_runs = 0;            // spilled runs (0 = sorted in RAM)
  uint64_t sample_rows = 0;
  // Build RAM by the formula (docs/spann.md) and the process's peak RSS after the build.
  uint64_t ram_formula_bytes = 0;
  uint64_t peak_rss_bytes = 0;
  double seconds_sample = 0, seconds_kmeans = 0, seconds_navigation = 0, seconds_pq = 0,
         seconds_assign = 0, seconds_write = 0, seconds_row_codes = 0, seconds_total = 0;
  std::string ToJson() const;
};

// Called with (rows assigned, total rows) after each chunk, from the building thread.
using SpannProgress = std::function<void(uint64_t, uint64_t)>;

// Builds the index of all rows of `source` into directory `dir` (created if missing; an index
// already there is replaced). Temporary sort runs go to `dir` and are removed.
Result<SpannBuildStats> BuildSpannIndex(const VectorSource& source, const std::string& dir,
                                        const SpannBuildParams& params,
                                        const SpannProgress& progress = nullptr);

}  // namespace vectord
