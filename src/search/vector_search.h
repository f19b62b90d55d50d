// Single-vector search over a collection's parts: the exact scans (all rows in RAM, or every row
// with params.exact), SPANN over the indexed rows with the exact scan of the RAM delta beside it,
// and for filtered searches the plan the query planner (query_planner.h) picks — brute force over
// the matching rows, SPANN with the filter in the scan, SPANN with a wider pool, or the code scan.
// It reads the parts through SearchSources, never the collection itself. docs/filters.md.
#pragma once

#include <cstdint>
#include <roaring/roaring.hh>
#include <vector>

#include "index/flat_search.h"
#include "vectord/collection.h"
#include "vectord/explain.h"
#include "vectord/status.h"

namespace vectord {

class VectorStore;
class SpannIndex;
class ListSummaries;
class RowCodes;

// What a search reads, consistent and valid while the collection's shared lock is held.
struct SearchSources {
  const VectorStore* vectors = nullptr;  // required
  const Roaring* live = nullptr;         // required: the live rows
  const uint64_t* live_bits = nullptr;   // required: the same as a bitset
  // The SPANN index, null when the collection has none (exact search). Rows [0, indexed_rows) are
  // served by it; rows [indexed_rows, vectors->rows()) are in RAM and scanned exactly.
  const SpannIndex* index = nullptr;
  uint64_t indexed_rows = 0;
  // Per-list summaries of the index (null: none) and the rows changed since they were built.
  const ListSummaries* summaries = nullptr;
  const Roaring* summary_dirty = nullptr;
  // Lists the summaries do not describe (rewritten since they were built; may be null), and the
  // first row in no summarized list: rows from it on are checked apart, like changed rows.
  const Roaring* stale_lists = nullptr;
  const Roaring* stale_lists_too = nullptr;
  uint64_t unsummarized_from = ~uint64_t{0};
  const SpannConfig* spann = nullptr;  // search defaults; required with `index`
};

// A candidate search (Run's `fill`): k is a number of candidates the caller scores itself (MUVERA's
// FDE stage), so the SPANN plans must deliver k rows (up to the matching rows) rather than stop at
// what nprobe lists hold, and need not re-rank PQ distances exactly.
struct CandidateFill {
  // The first round reads the nearest lists that hold spread x k rows; the best k of them by
  // the index's distances are delivered (more lists read: better candidates, more pages).
  double spread = 2;
};

class VectorSearch {
 public:
  explicit VectorSearch(const SearchSources& sources);
  // Top-k rows for the prepared query `q` (dim floats, unit length for Cosine) under the request's
  // filter (`allowed`: the matching live rows; null = every live row) and parameters. With `fill`
  // the SPANN plans read lists until they hold k allowed rows (CandidateFill); a PQ layout then
  // returns its approximate distances as scores.
  Result<std::vector<index::Neighbor>> Run(const float* q, size_t k, const SearchRequest& req,
                                           const Roaring* allowed, QueryExplain* ex,
                                           const CandidateFill* fill = nullptr) const;

 private:
  // Exact top-k over the rows of `allowed` below the index's end, read with O_DIRECT in runs of
  // nearby rows; *scored += rows scored, *pages += 4 KiB pages read.
  Result<std::vector<index::Neighbor>> BruteForceRows(const float* q, size_t k,
                                                      const Roaring& allowed, uint64_t* scored,
                                                      uint64_t* pages) const;
  // The planner's code scan: every row of `allowed` below the index's end scored from `codes`, the
  // best r re-ranked exactly (in two rounds, PlannerCosts::code_first_round).
  Result<std::vector<index::Neighbor>> CodeScan(const float* q, size_t k, const Roaring& allowed,
                                                const RowCodes& codes, size_t r, QueryExplain* ex,
                                                uint64_t* pages) const;

  const VectorStore& vectors_;
  const Roaring& live_;
  const uint64_t* const live_bits_;
  const SpannIndex* const spann_;
  const ListSummaries* const summaries_;
  const Roaring& summary_dirty_;
  const Roaring* const stale_lists_;
  const Roaring* const stale_lists_too_;
  const uint64_t unsummarized_from_;
  const SpannConfig* const spann_config_;
  const uint32_t vdim_;
  const DataType vtype_;
  const Distance vdist_;
  const uint32_t row_bytes_;
  const uint64_t ram_base_;  // the index's end: rows below are served by spann_
  const uint64_t rows_;
};

}  // namespace vectord
