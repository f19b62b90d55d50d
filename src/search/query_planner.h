// Query planner for filtered search (issue 4, docs/filters.md "Filtered search: planner and
// results"). From the exact number of rows a filter matches (index::Select's bitmap) and costs
// measured on this machine it picks, per query, brute force over the matching rows, SPANN with the
// filter inside the posting-list scan and an adaptive list budget, or SPANN with a wider candidate
// pool. The choice and what it cost are reported through QueryExplain (the HTTP layer returns it
// for "params": {"explain": true}) and counted per plan for /metrics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vectord/collection.h"
#include "vectord/explain.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord {

namespace index {
class PayloadIndexSet;
}
struct Filter;

// Costs of this machine, microseconds, from `bench_filtered --calibrate` (see query_planner.cc).
struct PlannerCosts {
  // Plan (a), per query: min(page_us * pages, scan_page_us * file_pages) + row_us * m for m
  // matching rows on `pages` distinct 4 KiB pages of a vector file of file_pages pages, read with
  // O_DIRECT in one batch: sparse matches cost a random page read each; dense ones are read in
  // long runs, as a scan of the file.
  double brute_page_us;
  double brute_scan_page_us;
  double brute_row_us;
  double spann_fixed_us;  // per query of plan (b): navigation, its rounds' I/O latencies, heap
  double wide_fixed_us;   // per query of plan (c): navigation, one batch's I/O latency, heap
  double list_us;         // per posting list read and scanned (filter checks included)
  // Matches the scanned lists must hold for the top k: lists = match_factor * k / (E * s), E the
  // mean list entries, s the selectivity.
  double match_factor;
  double wide_pool_selectivity;  // plan (c) at or above this selectivity
  double check_factor;           // plan (b): check rounds read check_factor x the first round
  double distance_slack;         // plan (b): SpannAdaptiveParams::distance_slack (L2)
  double budget_factor;          // plan (b): list budget = budget_factor x brute-force cost
  double max_list_factor;        // plan (b): ... and at most max_list_factor x the expected lists
  // plan (b): SpannAdaptiveParams::batch_distance_round (read what the distance rule still needs
  // in one round)
  bool batch_distance_round;
  // Plan (d), per query: code_fixed_us + code_row_us * m for m matching rows scored from their
  // codes, + brute_page_us per re-read row (a random page each) for code_reread_share x R of the
  // R = min(m, code_rerank_factor * k) rows it may re-rank (the second round reads only some).
  double code_fixed_us;
  double code_row_us;
  double code_reread_share;
  double code_rerank_factor;
  // Plan (d) re-ranks in two rounds when code_first_round > 0: the best code_first_round * k rows
  // first; then, of the other R, only those whose code distance is within the k-th exact distance
  // plus code_round_slack x the largest underestimate the codes made in the first round.
  double code_first_round;
  double code_round_slack;
};
const PlannerCosts& DefaultPlannerCosts();

struct PlanInput {
  uint64_t matches = 0;       // matching rows in the SPANN index (rows below its end)
  uint64_t indexed_live = 0;  // live rows in the SPANN index
  // Vector file pages of the SPANN rows, and the distinct ones holding the matching rows (0 =
  // unknown: estimated as for rows spread uniformly).
  uint64_t file_pages = 0;
  uint64_t match_pages = 0;
  uint32_t k = 10;
  uint32_t nprobe = 32;  // the collection's unfiltered nprobe
  double mean_list_entries = 0;
  double mean_list_pages = 0;
  uint32_t num_lists = 0;
  // Per-posting-list summaries (src/list_summary.h): when `summaries`, only candidate_lists of
  // the num_lists lists may hold matches; the matches are taken to be spread over those.
  bool summaries = false;
  uint32_t candidate_lists = 0;
  // Plan (d) is possible: the SPANN index keeps a PQ code per row in RAM (src/row_codes.h).
  bool row_codes = false;
};

struct PlanChoice {
  SearchPlan plan = SearchPlan::kBruteForce;
  double selectivity = 0;
  double est_brute_us = 0, est_spann_us = 0;
  uint32_t est_lists = 0;    // lists plan (b) is expected to read
  uint32_t first_lists = 0;  // plan (b): first round; plan (c): nprobe
  uint32_t max_lists = 0;    // plan (b): list budget (past it: fall back to brute force)
  uint32_t check_lists = 0;  // plan (b): lists of each check round once k matches are found
  double pool_factor = 1;    // plan (c): nprobe and rerank multiplier
  double est_code_us = 0;    // plan (d) (0 when not possible)
  uint32_t code_rerank = 0;  // plan (d): rows re-ranked exactly
};
PlanChoice ChoosePlan(const PlanInput& in, const PlannerCosts& costs = DefaultPlannerCosts());

// Whether evaluating `filter` needs a row-by-row payload pass (some condition not answered by an
// index in `indexes`, or has_id). Conservative: true when unsure.
bool FilterNeedsPayloadScan(const Filter& filter, const index::PayloadIndexSet& indexes);

// Per-plan query counters (process-wide) for /metrics.
void RecordSearchPlan(SearchPlan p);
uint64_t SearchPlanCount(SearchPlan p);
// Appends `vectord_query_plan_total{plan="..."} n` lines (Prometheus text format).
void AppendSearchPlanMetrics(std::string* out);

// Tests and calibration only: forces a plan among kBruteForce / kSpannFiltered / kSpannWidePool /
// kCodeScan (the last only where the index has row codes)
// for filtered searches on SPANN collections (nullopt = the planner decides). Process-wide.
void SetForcedSearchPlan(std::optional<SearchPlan> p);
std::optional<SearchPlan> ForcedSearchPlan();

}  // namespace vectord
