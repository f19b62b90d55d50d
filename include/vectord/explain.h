// What one search did: the query plan chosen and what it cost (vectord's extension of the query
// response, "params": {"explain": true}; docs/filters.md "Explain"). Filled by Collection::Search
// when asked for.
#pragma once

#include <cstdint>
#include <string>

#include "vectord/types.h"

namespace vectord {

enum class SearchPlan : uint8_t {
  kExactRam = 0,       // every row in RAM (no SPANN rows): one exact scan, filter included
  kExact = 1,          // params.exact or no SPANN index yet: exact scan of every row
  kUnfiltered = 2,     // SPANN without a filter
  kBruteForce = 3,     // (a) exact distances to the matching rows only, read in runs
  kSpannFiltered = 4,  // (b) SPANN, filter in the scan, lists read in rounds (SearchAdaptive)
  kSpannWidePool = 5,  // (c) SPANN with nprobe / rerank scaled by 1 / selectivity
  kCodeScan = 6,       // (d) the matching rows' PQ codes in RAM, best R re-ranked exactly
};
inline constexpr int kNumSearchPlans = 7;
const char* SearchPlanName(SearchPlan p);

// What one search did (vectord extension of the query response, "params": {"explain": true}).
struct QueryExplain {
  SearchPlan plan = SearchPlan::kUnfiltered;
  bool filtered = false;
  // How the matching rows were counted: "payload_index" when every condition was answered from
  // payload indexes (cheap), "payload_scan" when some had to be evaluated on payloads row by row.
  std::string count_source;
  uint64_t matches = 0;    // exact number of live rows matching the filter (all rows if none)
  double selectivity = 1;  // matches / live rows
  double est_brute_us = 0, est_spann_us = 0, est_code_us = 0;
  uint64_t code_rows = 0;  // plan (d): rows scored from their codes (those re-ranked: rows_scored)
  double us_codes = 0;     // plan (d): scoring the codes (the re-rank reads follow)
  uint32_t lists_probed = 0;
  uint32_t candidate_lists = 0;  // lists the summaries leave for the filter (all without them)
  uint32_t rounds = 0;
  uint64_t pages_read = 0;
  uint64_t rows_scored = 0;  // exact distances outside SPANN (brute force and the RAM delta)
  bool fallback = false;     // plan (b)/(c) found fewer than k matches: brute force finished it
  double us_select = 0, us_search = 0;
  // Multi-vector collections: the mode — "fde" (MUVERA candidates from the FDE index: exact scan
  // or SPANN), "fde_pq4" (from the FDE PQ in RAM), "all" (every matching document a candidate:
  // there are no more than the candidates asked) or "exact" Chamfer; the candidate documents asked
  // and those delivered, documents scored by Chamfer and their pages read.
  std::string multivector;
  uint32_t muvera_candidates = 0;
  uint64_t candidates_delivered = 0;
  // The cost model's estimates (µs) of scoring every matching document ("all") and of the FDE
  // search plus its candidates; with the default candidates the cheaper one runs.
  double est_all_us = 0, est_fde_us = 0;
  uint64_t chamfer_docs = 0, token_pages = 0;
  uint64_t prefilter_docs = 0;  // candidates ranked by the partial (first-pass) Chamfer
  // Two-stage re-rank: candidates scored by the 8-bit Chamfer (0 = stage skipped), and the
  // stages' times in microseconds (candidates = query FDE + candidate search).
  uint64_t int8_docs = 0;
  double candidates_us = 0, int8_us = 0, chamfer_us = 0;
  Json ToJson() const;
};

}  // namespace vectord
