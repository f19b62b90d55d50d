// The query planner (src/query_planner.h) on a SPANN collection: randomized filters from 100% to
// 0.01% of the points, correlated with the vectors (cluster keyword) and not (uniform integer),
// against exact filtered search: recall@10 floors, result counts, exact counts, explain output,
// and every plan exercised, chosen by the planner and forced.
#include "src/search/query_planner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "index/filter.h"
#include "tests/test_db.h"
#include "vectord/database.h"
#include "vectord/filter.h"

namespace vectord {
namespace {

constexpr uint32_t kDim = 16;
constexpr int kRows = 20000;
constexpr int kDelta = 300;  // rows written after the build: the living index takes them in
constexpr int kCenters = 40;
constexpr int kUniverse = 100000;  // "u" is uniform in [0, kUniverse)

struct Row {
  std::vector<float> v;
  int center;
  int u;
};

class QueryPlannerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = vectord::testing::TestDataDir("query_planner");
    db_ = std::move(vectord::testing::OpenTestDatabase(dir_)).value();
    const CollectionConfig cfg = vectord::testing::SpannU8Config(kDim, kRows, 16);
    ASSERT_TRUE(db_->CreateCollection("p", cfg).ok());
    auto coll = db_->GetCollection("p").value();
    ASSERT_TRUE(coll->CreatePayloadIndex("c", PayloadSchemaType::kKeyword, false).ok());
    ASSERT_TRUE(coll->CreatePayloadIndex("u", PayloadSchemaType::kInteger, false).ok());
    std::mt19937 rng(11);
    for (int c = 0; c < kCenters; ++c) {
      std::vector<float> v(kDim);
      for (auto& x : v) x = float(rng() % 200 + 20);
      centers_.push_back(v);
    }
    auto upsert = [&](int from, int to) {
      std::vector<PointStruct> batch;
      for (int i = from; i < to; ++i) {
        rows_.push_back(RandomRow(rng));
        const Row& r = rows_.back();
        batch.push_back(
            {PointId::Num(i), r.v, Json{{"c", "c" + std::to_string(r.center)}, {"u", r.u}}});
        if (batch.size() == 2000 || i + 1 == to) {
          ASSERT_TRUE(coll->Upsert(std::move(batch), false).ok());
          batch.clear();
        }
      }
    };
    upsert(0, kRows);
    ASSERT_TRUE(testing::WaitForIndex(*coll, 120));
    upsert(kRows, kRows + kDelta);
    ASSERT_TRUE(coll->WaitIdle(120000));  // the updater has put them into their lists
  }
  static void TearDownTestSuite() {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { SetForcedSearchPlan(std::nullopt); }

  static Row RandomRow(std::mt19937& rng) {
    std::normal_distribution<float> noise(0, 6);
    Row r;
    r.center = static_cast<int>(rng() % kCenters);
    r.v.resize(kDim);
    for (uint32_t i = 0; i < kDim; ++i) {
      r.v[i] = std::clamp(std::round(centers_[r.center][i] + noise(rng)), 0.f, 255.f);
    }
    r.u = static_cast<int>(rng() % kUniverse);
    return r;
  }

  // A filter matching about `share` of the rows: uncorrelated (u < share * kUniverse) or
  // correlated (some clusters, then a u range to go below one cluster's share). `match` is the
  // model of the filter.
  static FilterPtr MakeFilter(double share, bool correlated, std::mt19937& rng,
                              std::function<bool(const Row&)>* match) {
    Json j;
    if (!correlated) {
      const int lo = static_cast<int>(rng() % kUniverse);
      const int width = std::max(1, static_cast<int>(share * kUniverse));
      // A window [lo, lo + width) wrapping around: two ranges in a should when it wraps.
      const int hi = lo + width;
      if (hi <= kUniverse) {
        j = {{"must", {{{"key", "u"}, {"range", {{"gte", lo}, {"lt", hi}}}}}}};
        *match = [lo, hi](const Row& r) { return r.u >= lo && r.u < hi; };
      } else {
        j = {{"should",
              {{{"key", "u"}, {"range", {{"gte", lo}}}},
               {{"key", "u"}, {"range", {{"lt", hi - kUniverse}}}}}}};
        *match = [lo, hi](const Row& r) { return r.u >= lo || r.u < hi - kUniverse; };
      }
    } else {
      const int clusters = std::max(1, static_cast<int>(std::lround(share * kCenters)));
      std::set<int> chosen;
      while (static_cast<int>(chosen.size()) < clusters) chosen.insert(rng() % kCenters);
      Json any = Json::array();
      for (int c : chosen) any.push_back("c" + std::to_string(c));
      const double within = std::min(1.0, share * kCenters / clusters);
      const int width = std::max(1, static_cast<int>(within * kUniverse));
      j = {{"must",
            {{{"key", "c"}, {"match", {{"any", any}}}},
             {{"key", "u"}, {"range", {{"lt", width}}}}}}};
      *match = [chosen, width](const Row& r) { return chosen.count(r.center) && r.u < width; };
    }
    auto f = ParseFilter(j);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.value();
  }

  struct Outcome {
    double recall = 0;
    std::map<std::string, int> plans;
  };
  // Runs `queries` queries with one random filter each of about `share`; checks counts.
  static Outcome Run(double share, bool correlated, int queries, uint32_t seed) {
    auto coll = db_->GetCollection("p").value();
    std::mt19937 rng(seed);
    Outcome o;
    size_t hit = 0, total = 0;
    for (int i = 0; i < queries; ++i) {
      std::function<bool(const Row&)> match;
      FilterPtr f = MakeFilter(share, correlated, rng, &match);
      uint64_t matches = 0;
      for (const auto& r : rows_) matches += match(r);
      EXPECT_EQ(coll->Count(f).value(), matches);
      SearchRequest req;
      req.vector = RandomRow(rng).v;
      req.limit = 10;
      req.filter = f;
      QueryExplain ex;
      auto approx = SearchExplained(*coll, req, &ex);
      req.exact = true;
      auto exact = coll->Search(req);
      EXPECT_TRUE(approx.ok() && exact.ok());
      if (!approx.ok() || !exact.ok()) continue;
      EXPECT_EQ(ex.matches, matches);
      EXPECT_TRUE(ex.filtered);
      EXPECT_EQ(ex.count_source, "payload_index");
      EXPECT_EQ(exact->size(), std::min<uint64_t>(10, matches));
      // Never more results than matches; never fewer than k when k exist (fallback included).
      EXPECT_EQ(approx->size(), std::min<uint64_t>(10, matches))
          << "plan " << SearchPlanName(ex.plan) << " share " << share;
      std::set<uint64_t> truth;
      for (const auto& p : *exact) truth.insert(p.id.num());
      for (const auto& p : *approx) {
        EXPECT_TRUE(match(rows_[p.id.num()])) << "row " << p.id.num() << " does not match";
        hit += truth.count(p.id.num());
      }
      total += truth.size();
      o.plans[SearchPlanName(ex.plan)]++;
    }
    o.recall = total ? double(hit) / total : 1.0;
    return o;
  }

  static inline std::string dir_;
  static inline std::unique_ptr<Database> db_;
  static inline std::vector<std::vector<float>> centers_;
  static inline std::vector<Row> rows_;
};

const double kShares[] = {1.0, 0.5, 0.2, 0.1, 0.01, 0.001, 0.0001};

TEST_F(QueryPlannerTest, PlannerKeepsRecallAtEverySelectivity) {
  std::map<std::string, int> plans;
  for (bool correlated : {false, true}) {
    for (double share : kShares) {
      if (correlated && share < 0.01) continue;  // the cluster filter adds a u range: same as u
      Outcome o = Run(share, correlated, 25, static_cast<uint32_t>(share * 1e6) + correlated);
      EXPECT_GE(o.recall, 0.95) << "share " << share << " correlated " << correlated;
      for (const auto& [p, n] : o.plans) plans[p] += n;
    }
  }
  // On a collection this small (333 pages of vectors) reading the matching rows is about as cheap
  // as any SPANN search (the cost model says so; ChoosePlanFollowsTheCostModel checks every plan
  // on SIFT's shape). EveryPlanForcedKeepsRecall runs the rounds and the wide pool.
  EXPECT_GT(plans["brute_force"], 0);
  EXPECT_GT(SearchPlanCount(SearchPlan::kBruteForce), 0u);
  std::string metrics;
  AppendSearchPlanMetrics(&metrics);
  EXPECT_NE(metrics.find("vectord_query_plan_total{plan=\"spann_filtered\"}"), std::string::npos);
}

TEST_F(QueryPlannerTest, EveryPlanForcedKeepsRecall) {
  for (SearchPlan p : {SearchPlan::kBruteForce, SearchPlan::kSpannFiltered,
                       SearchPlan::kSpannWidePool, SearchPlan::kCodeScan}) {
    SetForcedSearchPlan(p);
    // Filtered rounds are meant for middling shares, the wide pool for large ones; below those
    // both fall back to brute force when they find fewer than k matches. The code scan serves
    // every share (it re-ranks at most 60 rows: with fewer matches it is brute force).
    const std::vector<double> shares =
        p == SearchPlan::kSpannFiltered ? std::vector<double>{0.3, 0.1, 0.01, 0.001}
        : p == SearchPlan::kCodeScan    ? std::vector<double>{1.0, 0.5, 0.1, 0.01}
                                        : std::vector<double>{1.0, 0.5, 0.001};
    for (bool correlated : {false, true}) {
      if (correlated && p != SearchPlan::kCodeScan) continue;
      for (double share : shares) {
        Outcome o = Run(share, correlated, 15, 99);
        EXPECT_GE(o.recall, p == SearchPlan::kBruteForce ? 1.0 : 0.95)
            << SearchPlanName(p) << " share " << share << " correlated " << correlated;
        EXPECT_EQ(o.plans[SearchPlanName(p)], 15) << SearchPlanName(p);
      }
    }
  }
  SetForcedSearchPlan(std::nullopt);
}

TEST_F(QueryPlannerTest, CodeScanScoresEveryMatchAndRereadsFew) {
  // The collection had payload indexes when its index was built: row codes ("auto").
  auto coll = db_->GetCollection("p").value();
  std::mt19937 rng(21);
  SetForcedSearchPlan(SearchPlan::kCodeScan);
  for (double share : {0.5, 0.05}) {
    std::function<bool(const Row&)> match;
    FilterPtr f = MakeFilter(share, false, rng, &match);
    uint64_t indexed_matches = 0;
    for (int i = 0; i < kRows + kDelta; ++i) indexed_matches += match(rows_[i]);
    SearchRequest req;
    req.vector = RandomRow(rng).v;
    req.limit = 10;
    req.filter = f;
    QueryExplain ex;
    ASSERT_TRUE(SearchExplained(*coll, req, &ex).ok());
    EXPECT_EQ(ex.plan, SearchPlan::kCodeScan);
    EXPECT_EQ(ex.code_rows, indexed_matches);  // every indexed match scored from its code
    // Exact distances: the re-ranked rows (60 at k 10); no delta once the updater is idle.
    EXPECT_LE(ex.rows_scored, 60u);
    EXPECT_GT(ex.est_code_us, 0);
    EXPECT_EQ(ex.ToJson()["plan"], "code_scan");
  }
  SetForcedSearchPlan(std::nullopt);
}

// The shape of bench_filtered's SIFT collection: 258k rows, 7,182 lists of ~122 entries.
PlanInput SiftShape() {
  PlanInput in;
  in.indexed_live = 258473;
  in.nprobe = 24;
  in.mean_list_entries = 122;
  in.mean_list_pages = 5.5;
  in.num_lists = 7182;
  in.file_pages = 8330;
  return in;
}

TEST(ChoosePlan, FollowsTheCostModel) {
  PlanInput in = SiftShape();
  SearchPlan last = SearchPlan::kBruteForce;
  std::map<SearchPlan, int> seen;
  for (double s : {0.0001, 0.001, 0.01, 0.02, 0.05, 0.1, 0.3, 0.5, 0.9, 1.0}) {
    in.matches = static_cast<uint64_t>(s * in.indexed_live);
    const PlanChoice c = ChoosePlan(in);
    // Plans only move from (a) to (b) to (c) as the selectivity grows.
    EXPECT_GE(static_cast<int>(c.plan), static_cast<int>(last)) << s;
    last = c.plan;
    seen[c.plan]++;
    EXPECT_NEAR(c.selectivity, s, 1e-4);
    if (c.plan == SearchPlan::kSpannFiltered) {
      EXPECT_GE(c.first_lists, in.nprobe);
      EXPECT_GE(c.max_lists, c.first_lists);
      EXPECT_LE(c.est_spann_us, c.est_brute_us);
    }
    if (c.plan == SearchPlan::kSpannWidePool) {
      EXPECT_NEAR(c.pool_factor, 1 / s, 1e-3);
    }
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(ChoosePlan(PlanInput{}).plan, SearchPlan::kBruteForce);  // nothing matches

  // List summaries: matches concentrated in fewer lists need fewer lists read, never more than
  // the candidates; no candidate list at all (only changed rows can match) reads none.
  in.matches = static_cast<uint64_t>(0.05 * in.indexed_live);
  const PlanChoice plain = ChoosePlan(in);
  in.summaries = true;
  in.candidate_lists = in.num_lists;
  EXPECT_EQ(ChoosePlan(in).est_lists, plain.est_lists);
  in.candidate_lists = 500;
  const PlanChoice fewer = ChoosePlan(in);
  EXPECT_LE(fewer.est_lists, 500u);
  EXPECT_LE(fewer.est_spann_us, plain.est_spann_us);
  if (fewer.plan == SearchPlan::kSpannFiltered) {
    EXPECT_LE(fewer.max_lists, 500u);
  }
  in.candidate_lists = 10;
  EXPECT_LE(ChoosePlan(in).est_lists, 10u);
  in.candidate_lists = 0;
  EXPECT_EQ(ChoosePlan(in).plan, SearchPlan::kBruteForce);
}

TEST(ChoosePlan, CodeScanWhereItIsCheapest) {
  PlanInput in = SiftShape();
  in.row_codes = true;
  const PlannerCosts& c = DefaultPlannerCosts();
  std::map<SearchPlan, int> seen;
  for (double s : {0.0001, 0.001, 0.01, 0.1, 0.5, 1.0}) {
    in.matches = static_cast<uint64_t>(s * in.indexed_live);
    const PlanChoice p = ChoosePlan(in);
    seen[p.plan]++;
    const double r = std::min<double>(in.matches, std::ceil(c.code_rerank_factor * in.k));
    EXPECT_EQ(p.code_rerank, static_cast<uint32_t>(r)) << s;
    EXPECT_NEAR(
        p.est_code_us,
        c.code_fixed_us + c.code_row_us * in.matches + c.brute_page_us * c.code_reread_share * r,
        1e-6);
    if (p.plan == SearchPlan::kCodeScan) {
      EXPECT_LT(p.code_rerank, in.matches);  // otherwise it is brute force
      EXPECT_LT(p.est_code_us, p.est_brute_us);
      EXPECT_LT(p.est_code_us, p.est_spann_us);
    }
  }
  // A handful of matches: reading them all is exact and as cheap; middling shares: the codes.
  in.matches = 30;
  EXPECT_EQ(ChoosePlan(in).plan, SearchPlan::kBruteForce);
  in.matches = 2600;
  EXPECT_EQ(ChoosePlan(in).plan, SearchPlan::kCodeScan);
  in.matches = 26000;
  EXPECT_EQ(ChoosePlan(in).plan, SearchPlan::kCodeScan);
  EXPECT_GE(seen[SearchPlan::kCodeScan], 2);
  // Without codes the same inputs never pick it.
  in.row_codes = false;
  EXPECT_NE(ChoosePlan(in).plan, SearchPlan::kCodeScan);
  EXPECT_EQ(ChoosePlan(in).est_code_us, 0);
}

TEST_F(QueryPlannerTest, ExplainWithoutFilterAndPayloadScan) {
  auto coll = db_->GetCollection("p").value();
  std::mt19937 rng(5);
  SearchRequest req;
  req.vector = RandomRow(rng).v;
  req.limit = 10;
  QueryExplain ex;
  ASSERT_TRUE(SearchExplained(*coll, req, &ex).ok());
  EXPECT_EQ(ex.plan, SearchPlan::kUnfiltered);
  EXPECT_EQ(ex.matches, uint64_t{kRows + kDelta});
  EXPECT_GT(ex.lists_probed, 0u);
  EXPECT_EQ(ex.ToJson()["plan"], "spann");
  // A field without an index: counted by a payload scan, and the explain says so.
  req.filter = ParseFilter(Json{{"must", {{{"key", "nope"}, {"is_empty", true}}}}}).value();
  ASSERT_TRUE(SearchExplained(*coll, req, &ex).ok());
  EXPECT_EQ(ex.count_source, "payload_scan");
  EXPECT_EQ(ex.matches, uint64_t{kRows + kDelta});
}

}  // namespace
}  // namespace vectord
