// Query planner for filtered search: cost model, plan counters, explain output (query_planner.h).
#include "src/search/query_planner.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>

#include "index/filter.h"
#include "index/payload_index.h"

namespace vectord {
namespace {

std::array<std::atomic<uint64_t>, kNumSearchPlans> g_plan_counts{};
std::atomic<int> g_forced_plan{-1};

bool ConditionNeedsScan(const Condition& c, const index::PayloadIndexSet& idx);

bool NeedsScan(const Filter& f, const index::PayloadIndexSet& idx) {
  auto any = [&](const std::vector<Condition>& cs) {
    for (const auto& c : cs) {
      if (ConditionNeedsScan(c, idx)) return true;
    }
    return false;
  };
  return any(f.must) || any(f.should) || any(f.must_not) ||
         (f.min_should && any(f.min_should->conditions));
}

bool ConditionNeedsScan(const Condition& c, const index::PayloadIndexSet& idx) {
  switch (c.kind) {
    case Condition::Kind::kHasId:
      return false;  // answered through the id map
    case Condition::Kind::kFilter:
      return c.filter == nullptr || NeedsScan(*c.filter, idx);
    case Condition::Kind::kRange: {
      const index::FieldIndex* f = idx.Get(c.key.text);
      return f == nullptr || !f->has_range();
    }
    case Condition::Kind::kMatch: {
      const index::FieldIndex* f = idx.Get(c.key.text);
      if (f == nullptr || c.match.kind == Match::Kind::kText) return true;
      // A float index cannot answer integer matches (3 vs 3.0): those read payloads.
      return f->type() == PayloadSchemaType::kFloat;
    }
    default:
      return true;
  }
}

}  // namespace

const char* SearchPlanName(SearchPlan p) {
  switch (p) {
    case SearchPlan::kExactRam:
      return "exact_ram";
    case SearchPlan::kExact:
      return "exact";
    case SearchPlan::kUnfiltered:
      return "spann";
    case SearchPlan::kBruteForce:
      return "brute_force";
    case SearchPlan::kSpannFiltered:
      return "spann_filtered";
    case SearchPlan::kSpannWidePool:
      return "spann_wide_pool";
    case SearchPlan::kCodeScan:
      return "code_scan";
  }
  return "unknown";
}

// Calibrated with `build/bench/bench_filtered --reuse 1 --calibrate 1 --queries 100 --faiss 0`
// (mate/sift, 258,473 x 128 uint8, SPANN full layout, 7,163 lists of ~122 entries / ~5.4 pages;
// payload index on angle; 2-core dev VM at load ~8, posting lists and brute-force rows both read
// with O_DIRECT). It forces each plan on angle filters of 0.01% .. 50% and prints the median time
// per filter (2026-11-25 15:32):
//   brute force: 31 rows / 33 pages 364 us, 262 / 259 pages 2,535 us, 2,591 / 2,049 pages
//                24,109 us (9.3-11.8 us per random page: the SSD's ~100k reads/s), 129,245 rows
//                (the whole 8,330-page file in long runs) 39,274 us (4.7 us per page);
//   SPANN filtered: 48 lists 1.9 ms, 231 lists 11.9 ms, 1,548 lists 72.8 ms, 4,137 lists 184 ms
//                (least squares: 781 us + 44.7 us per list).
// (The earlier calibration, brute force from the page cache at load ~4, gave 300 us + 25 us per
// list and 0.40 us per sparse row.)
const PlannerCosts& DefaultPlannerCosts() {
  static const PlannerCosts c = {
      /*brute_page_us=*/9.5,
      /*brute_scan_page_us=*/4.7,
      /*brute_row_us=*/0.03,
      // Plans (b)/(c), recalibrated for 2-page lists (2026-12-07 04:41, load ~0.5,
      // 16,313 lists): plan (b) forced on the angle filters, 48 .. 8,887 lists read: least squares
      // 1,530 us + 9.1 us per list (several rounds, each an I/O latency); plan (c) is one batch:
      // the unfiltered search's 26.7 lists in 384 us (mean) less 26.7 x 9.1 us leaves ~140 us.
      // (The 2-page lists cost 9 us each where the 5-page ones cost 45.)
      /*spann_fixed_us=*/1530.0,
      /*wide_fixed_us=*/140.0,
      /*list_us=*/9.1,
      // Design constants (not timings): 4 x k matches in the scanned lists reached recall@10 >=
      // 0.95 in tests/query_planner_test and bench_filtered; plan (c) from 50% (pool <= 2x).
      /*match_factor=*/4.0,
      /*wide_pool_selectivity=*/0.5,
      // Stopping rule of plan (b), from bench_filtered on "image 10%" / "angle 10%" (recall@10,
      // mean lists): check round only 0.912 / 0.984 (69 / 59); + distance rule with slack 0:
      // 0.979 / 0.989 (110 / 63); slack -0.07: 0.947 / 0.984; slack 0.1: 0.994 / 0.999 (178 / 104).
      /*check_factor=*/1.0,
      /*distance_slack=*/0.0,
      // A query out of list budget keeps what it found (brute force only when < k matches): the
      // budget bounds its latency at about the brute-force plan's.
      /*budget_factor=*/1.0,
      // With brute force read from SSD (O_DIRECT) its cost no longer bounds the tail: image 10%
      // read 112 lists on average, p99 21 ms, with the budget alone; a cap of 8 x the expected
      // lists bounds the tail queries that the stopping rule would keep reading.
      /*max_list_factor=*/8.0,
      /*batch_distance_round=*/true,
      // Plan (d), same calibration run (2026-11-25 17:55, load ~1.5, two re-rank rounds): angle
      // 0.01% .. 50% = 31 .. 129,245 rows scored: 283, 414, 518, 891, 1,300 us; least squares
      // 465 us + 0.0069 us per row. The fixed part is mostly the re-rank reads (23-52 pages):
      // modelled as code_fixed_us + code_reread_share x R pages at brute_page_us.
      // Recalibrated (same run as plans (b)/(c) above): angle 0.01% .. 50% = 31 ..
      // 129,245 rows: 127, 284, 381, 646, 1,036 us; least squares 307 us + 0.0059 us per row;
      // the re-read share now 0.45 (60 + 0.45 x 60 x 9.5 = 317 us fixed).
      /*code_fixed_us=*/60.0,
      /*code_row_us=*/0.0059,
      /*code_reread_share=*/0.45,
      // Re-rank size from `bench_pq_recall --configs 8:8,8:16,8:32` on mate/sift: recall@10 of
      // the best R of all 258k rows by their codes, re-ranked exactly: 8 bytes R 50 / 100 / 200:
      // 0.842 / 0.930 / 0.975; 16 bytes: 0.969 / 0.992 / 0.999; 32 bytes: 0.999 at 50. A filter
      // correlated with the query (image) leaves as many close competitors as no filter does, so
      // R does not shrink with the selectivity (8 bytes, R = 400 s: image 1% recall 0.84).
      /*code_rerank_factor=*/6.0,
      /*code_first_round=*/2.0,
      // Slack from bench_filtered (recall@10 / pages per query, image 10% and angle 1%): one round
      // of 60 rows 0.979 / 50, 0.997 / 59; two rounds, slack 1: 0.953 / 33, 0.980 / 26; slack 2:
      // 0.968 / 42, 0.992 / 36; slack 3: 0.973 / 45, 0.996 / 44.
      /*code_round_slack=*/2.0,
  };
  return c;
}

PlanChoice ChoosePlan(const PlanInput& in, const PlannerCosts& c) {
  PlanChoice out;
  const double s = in.indexed_live > 0 ? double(in.matches) / double(in.indexed_live) : 0;
  out.selectivity = s;
  const double m = double(in.matches);
  // Pages holding the matches: given, or expected for uniformly spread rows.
  const double file_pages = double(std::max<uint64_t>(1, in.file_pages));
  const double pages =
      in.match_pages > 0 ? double(in.match_pages) : file_pages * (1 - std::exp(-m / file_pages));
  out.est_brute_us =
      std::min(c.brute_page_us * pages, c.brute_scan_page_us * file_pages) + c.brute_row_us * m;
  // Lists that may hold matches: all, or those the summaries leave. Matching entries per such
  // list: E * s * num_lists / candidates (the matches are concentrated in the candidates).
  const uint32_t cand = std::max<uint32_t>(
      1, in.summaries ? std::min(in.candidate_lists, in.num_lists) : in.num_lists);
  const uint32_t nprobe = std::min(cand, std::max<uint32_t>(1, in.nprobe));
  const double per_list =
      std::max(1e-9, in.mean_list_entries * s * std::max<uint32_t>(1, in.num_lists) / cand);
  double lists = std::max<double>(nprobe, c.match_factor * in.k / per_list);
  lists = std::min<double>(lists, cand);
  out.est_lists = static_cast<uint32_t>(std::ceil(lists));
  // The adaptive search reads its first round, then at least one check round.
  out.est_spann_us = c.spann_fixed_us + c.list_us * lists * (1 + c.check_factor);
  // Plan (d): the codes of every match, then R exact rows.
  if (in.row_codes) {
    const double k = std::max<uint32_t>(1, in.k);
    const double r = std::min(m, std::ceil(c.code_rerank_factor * k));
    out.code_rerank = static_cast<uint32_t>(r);
    out.est_code_us =
        c.code_fixed_us + c.code_row_us * m + c.brute_page_us * c.code_reread_share * r;
  }
  // Plan (d) when it beats `other` (and the exact brute force).
  auto code_wins = [&](double other) {
    return in.row_codes && out.code_rerank < in.matches && out.est_code_us < other &&
           out.est_code_us < out.est_brute_us;
  };
  if (in.matches == 0 || in.num_lists == 0 || (in.summaries && in.candidate_lists == 0)) {
    out.plan = SearchPlan::kBruteForce;
    return out;
  }
  if (s >= c.wide_pool_selectivity) {
    out.pool_factor = 1.0 / s;
    out.first_lists = static_cast<uint32_t>(std::ceil(nprobe * out.pool_factor));
    out.est_spann_us = c.wide_fixed_us + c.list_us * out.first_lists;
    out.plan =
        out.est_brute_us < out.est_spann_us ? SearchPlan::kBruteForce : SearchPlan::kSpannWidePool;
    if (code_wins(out.est_spann_us)) out.plan = SearchPlan::kCodeScan;
    return out;
  }
  if (code_wins(out.est_spann_us)) {
    out.plan = SearchPlan::kCodeScan;
    return out;
  }
  if (out.est_brute_us <= out.est_spann_us) {
    out.plan = SearchPlan::kBruteForce;
    return out;
  }
  out.plan = SearchPlan::kSpannFiltered;
  out.first_lists = std::min(out.est_lists, cand);
  out.check_lists =
      std::max<uint32_t>(4, static_cast<uint32_t>(std::ceil(out.first_lists * c.check_factor)));
  // List budget: what the brute-force plan's cost would buy, so that no query costs much more
  // than the plan (a) the model rejected (no latency cliff).
  const double budget =
      std::min((c.budget_factor * out.est_brute_us - c.spann_fixed_us) / c.list_us,
               c.max_list_factor * out.est_lists);
  out.max_lists = static_cast<uint32_t>(
      std::clamp<double>(budget, std::min<double>(cand, out.first_lists * (1 + c.check_factor)),
                         std::max<uint32_t>(1, cand)));
  return out;
}

Json QueryExplain::ToJson() const {
  Json j = {{"plan", SearchPlanName(plan)},
            {"filtered", filtered},
            {"matches", matches},
            {"selectivity", selectivity},
            {"lists_probed", lists_probed},
            {"candidate_lists", candidate_lists},
            {"rounds", rounds},
            {"pages_read", pages_read},
            {"rows_scored", rows_scored},
            {"fallback", fallback},
            {"est_brute_force_us", est_brute_us},
            {"est_spann_us", est_spann_us},
            {"est_code_scan_us", est_code_us},
            {"code_rows", code_rows},
            {"code_scan_us", us_codes},
            {"select_us", us_select},
            {"search_us", us_search}};
  if (filtered) j["count_source"] = count_source;
  if (!multivector.empty()) {
    j["multivector"] = {{"mode", multivector},
                        {"candidates", muvera_candidates},
                        {"candidates_delivered", candidates_delivered},
                        {"est_all_us", est_all_us},
                        {"est_fde_us", est_fde_us},
                        {"chamfer_docs", chamfer_docs},
                        {"prefilter_docs", prefilter_docs},
                        {"int8_docs", int8_docs},
                        {"token_pages", token_pages},
                        {"candidates_us", candidates_us},
                        {"int8_us", int8_us},
                        {"chamfer_us", chamfer_us}};
  }
  return j;
}

bool FilterNeedsPayloadScan(const Filter& filter, const index::PayloadIndexSet& indexes) {
  return NeedsScan(filter, indexes);
}

void RecordSearchPlan(SearchPlan p) {
  g_plan_counts[static_cast<size_t>(p)].fetch_add(1, std::memory_order_relaxed);
}

uint64_t SearchPlanCount(SearchPlan p) {
  return g_plan_counts[static_cast<size_t>(p)].load(std::memory_order_relaxed);
}

void AppendSearchPlanMetrics(std::string* out) {
  *out += "# HELP vectord_query_plan_total Searches by the plan the query planner chose.\n";
  *out += "# TYPE vectord_query_plan_total counter\n";
  for (int i = 0; i < kNumSearchPlans; ++i) {
    const auto p = static_cast<SearchPlan>(i);
    *out += "vectord_query_plan_total{plan=\"" + std::string(SearchPlanName(p)) + "\"} " +
            std::to_string(SearchPlanCount(p)) + "\n";
  }
}

void SetForcedSearchPlan(std::optional<SearchPlan> p) {
  g_forced_plan.store(p ? static_cast<int>(*p) : -1);
}

std::optional<SearchPlan> ForcedSearchPlan() {
  const int v = g_forced_plan.load(std::memory_order_relaxed);
  if (v < 0) return std::nullopt;
  return static_cast<SearchPlan>(v);
}

}  // namespace vectord
