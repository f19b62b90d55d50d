// Query planner for filtered search: cost model, plan counters, explain output (query_planner.h).
#include "src/query_planner.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>

#include "index/filter.h"
#include "index/payload_index.h"
#include "src/collection_impl.h"

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
  }
  return "unknown";
}

// Calibrated with `build-planner/bench/bench_filtered --reuse 1 --calibrate 1 --queries 200`
// (mate/sift, 258,473 x 128 uint8, SPANN full layout, 7,182 lists of ~122 entries / ~5.5 pages;
// payload index on angle; 2-core AMD EPYC dev VM at load ~4, posting lists read with O_DIRECT,
// the vector file from the page cache). It forces each plan on angle filters of 0.01% .. 50% and
// prints the median time per filter (2026-11-25 14:05):
//   brute force: 31 rows 14.3 us, 262 rows 104 us, 2,591 rows 931 us (sparse: 0.35-0.46 us/row),
//                25,853 rows 5,174 us, 129,245 rows 7,717 us (dense: solved for scan + per row:
//                0.0176 us per SPANN row + 0.0246 us per matching row);
//   SPANN filtered: 652 lists 18.8 ms, 4,123 lists 97.0 ms (23-29 us per list; least-squares fit
//                over all filters: 23.2 us/list); unfiltered SPANN p50 0.60 ms at 20 lists, and a
//                filtered search reads two rounds (two I/O round trips): fixed ~300 us.
const PlannerCosts& DefaultPlannerCosts() {
  static const PlannerCosts c = {
      /*brute_sparse_row_us=*/0.40,
      /*brute_scan_row_us=*/0.0176,
      /*brute_dense_row_us=*/0.0246,
      /*spann_fixed_us=*/300.0,
      /*list_us=*/25.0,
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
  };
  return c;
}

PlanChoice ChoosePlan(const PlanInput& in, const PlannerCosts& c) {
  PlanChoice out;
  const double s = in.indexed_live > 0 ? double(in.matches) / double(in.indexed_live) : 0;
  out.selectivity = s;
  const double m = double(in.matches);
  out.est_brute_us =
      std::min(c.brute_sparse_row_us * m,
               c.brute_scan_row_us * double(in.indexed_live) + c.brute_dense_row_us * m);
  const uint32_t nprobe = std::max<uint32_t>(1, in.nprobe);
  const double per_list = std::max(1e-9, in.mean_list_entries * s);
  double lists = std::max<double>(nprobe, c.match_factor * in.k / per_list);
  lists = std::min<double>(lists, std::max<uint32_t>(1, in.num_lists));
  out.est_lists = static_cast<uint32_t>(std::ceil(lists));
  // The adaptive search reads its first round, then at least one check round.
  out.est_spann_us = c.spann_fixed_us + c.list_us * lists * (1 + c.check_factor);
  if (in.matches == 0 || in.num_lists == 0) {
    out.plan = SearchPlan::kBruteForce;
    return out;
  }
  if (s >= c.wide_pool_selectivity) {
    out.pool_factor = 1.0 / s;
    out.first_lists = static_cast<uint32_t>(std::ceil(nprobe * out.pool_factor));
    out.est_spann_us = c.spann_fixed_us + c.list_us * out.first_lists;
    out.plan =
        out.est_brute_us < out.est_spann_us ? SearchPlan::kBruteForce : SearchPlan::kSpannWidePool;
    return out;
  }
  if (out.est_brute_us <= out.est_spann_us) {
    out.plan = SearchPlan::kBruteForce;
    return out;
  }
  out.plan = SearchPlan::kSpannFiltered;
  out.first_lists = std::min(out.est_lists, std::max<uint32_t>(1, in.num_lists));
  out.check_lists =
      std::max<uint32_t>(4, static_cast<uint32_t>(std::ceil(out.first_lists * c.check_factor)));
  // List budget: what the brute-force plan's cost would buy, so that no query costs much more
  // than the plan (a) the model rejected (no latency cliff).
  const double budget = (c.budget_factor * out.est_brute_us - c.spann_fixed_us) / c.list_us;
  out.max_lists = static_cast<uint32_t>(std::clamp<double>(
      budget, out.first_lists * (1 + c.check_factor), std::max<uint32_t>(1, in.num_lists)));
  return out;
}

Json QueryExplain::ToJson() const {
  Json j = {{"plan", SearchPlanName(plan)}, {"filtered", filtered},
            {"matches", matches},           {"selectivity", selectivity},
            {"lists_probed", lists_probed}, {"rounds", rounds},
            {"pages_read", pages_read},     {"rows_scored", rows_scored},
            {"fallback", fallback},         {"est_brute_force_us", est_brute_us},
            {"est_spann_us", est_spann_us}, {"select_us", us_select},
            {"search_us", us_search}};
  if (filtered) j["count_source"] = count_source;
  if (!multivector.empty()) {
    j["multivector"] = {{"mode", multivector},
                        {"candidates", muvera_candidates},
                        {"chamfer_docs", chamfer_docs},
                        {"token_pages", token_pages}};
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

Result<std::vector<ScoredPoint>> SearchExplained(const Collection& c, const SearchRequest& req,
                                                 QueryExplain* explain) {
  if (const auto* impl = dynamic_cast<const CollectionImpl*>(&c)) {
    return impl->SearchWithExplain(req, explain);
  }
  return c.Search(req);
}

}  // namespace vectord
