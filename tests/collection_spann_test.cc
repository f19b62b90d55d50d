// A collection with "spann_config": background build at the threshold, searches during the
// build, the in-RAM delta, tombstones, filters on the SPANN path, restart with a built index.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <thread>

#include "src/search/query_planner.h"
#include "src/spann/row_codes.h"
#include "tests/test_db.h"
#include "vectord/database.h"
#include "vectord/filter.h"

namespace vectord {
namespace {

constexpr uint32_t kDim = 16;

std::vector<float> RandomClustered(std::mt19937& rng, const std::vector<std::vector<float>>& ctr) {
  std::normal_distribution<float> noise(0, 4);
  const auto& c = ctr[rng() % ctr.size()];
  std::vector<float> v(kDim);
  for (uint32_t i = 0; i < kDim; ++i) v[i] = std::clamp(std::round(c[i] + noise(rng)), 0.f, 255.f);
  return v;
}

class CollectionSpannTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = vectord::testing::TestDataDir("coll_spann");
    Open();
    std::mt19937 rng(7);
    for (int c = 0; c < 40; ++c) {
      std::vector<float> v(kDim);
      for (auto& x : v) x = float(rng() % 200 + 20);
      centers_.push_back(v);
    }
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    db_.reset();
    auto db = vectord::testing::OpenTestDatabase(dir_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }
  std::shared_ptr<Collection> Coll() { return db_->GetCollection("s").value(); }
  ::testing::AssertionResult WaitGreen(int seconds) {
    return vectord::testing::WaitForIndex(*Coll(), seconds);
  }

  // recall@10 of the default (SPANN) search against params.exact over `queries`.
  double Recall(const std::vector<std::vector<float>>& queries, const FilterPtr& filter = nullptr) {
    size_t hit = 0, total = 0;
    for (const auto& q : queries) {
      SearchRequest r;
      r.vector = q;
      r.limit = 10;
      r.filter = filter;
      auto approx = Coll()->Search(r);
      r.exact = true;
      auto exact = Coll()->Search(r);
      EXPECT_TRUE(approx.ok() && exact.ok());
      std::set<uint64_t> truth;
      if (!approx.ok() || !exact.ok()) continue;
      for (const auto& p : exact.value()) truth.insert(p.id.num());
      for (const auto& p : approx.value()) hit += truth.count(p.id.num());
      total += truth.size();
    }
    return total ? double(hit) / total : 1.0;
  }
  // n points (ids 0..n-1) within +-10 of random centers, payload {"u": id % 10}.
  std::vector<PointStruct> PointsNearCenters(int n, std::mt19937* rng) {
    std::vector<PointStruct> pts;
    for (int i = 0; i < n; ++i) {
      const auto& c = centers_[(*rng)() % centers_.size()];
      std::vector<float> v(kDim);
      for (uint32_t j = 0; j < kDim; ++j) {
        v[j] = std::clamp(c[j] + float((*rng)() % 21) - 10, 0.f, 255.f);
      }
      pts.push_back({PointId::Num(i), v, Json{{"u", i % 10}}});
    }
    return pts;
  }
  std::string dir_;
  std::unique_ptr<Database> db_;
  std::vector<std::vector<float>> centers_;
};

TEST_F(CollectionSpannTest, BuildsInBackgroundAndServesDeltaDeletesFiltersRestart) {
  const CollectionConfig cfg = vectord::testing::SpannU8Config(kDim, 6000, 16);
  ASSERT_TRUE(db_->CreateCollection("s", cfg).ok());
  std::mt19937 rng(1);
  std::vector<std::vector<float>> data;
  auto upsert = [&](uint64_t from, uint64_t to) {
    std::vector<PointStruct> batch;
    for (uint64_t i = from; i < to; ++i) {
      data.push_back(RandomClustered(rng, centers_));
      batch.push_back({PointId::Num(i), data.back(), Json{{"g", int(i % 10)}}});
      if (batch.size() == 1000 || i + 1 == to) {
        ASSERT_TRUE(Coll()->Upsert(std::move(batch), false).ok());
        batch.clear();
      }
    }
  };
  upsert(0, 5000);
  EXPECT_EQ(Coll()->Info().status, "green");
  EXPECT_EQ(Coll()->Info().indexed_vectors_count, 0u);
  upsert(5000, 8000);  // crosses the threshold: the build starts in the background

  // Queries keep working (exactly) while the index builds.
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 50; ++i) queries.push_back(RandomClustered(rng, centers_));
  EXPECT_GE(Recall(queries), 0.8);  // exact while building, approximate once installed
  ASSERT_TRUE(WaitGreen(120));
  auto info = Coll()->Info();
  EXPECT_EQ(info.points_count, 8000u);
  // The build covers the rows present when it started; the living index took in the rows written
  // during the build: green means every point is in the SSD index.
  const uint64_t indexed = info.indexed_vectors_count;
  EXPECT_EQ(indexed, 8000u);
  ASSERT_TRUE(info.index_updates.has_value());
  EXPECT_EQ(info.index_updates->delta_points, 0u);
  EXPECT_GE(Recall(queries), 0.9);

  // The delta: points written after the build are found at once.
  upsert(8000, 8300);
  SearchRequest r;
  r.vector = data[8123];
  r.limit = 1;
  auto res = Coll()->Search(r);
  ASSERT_TRUE(res.ok());
  ASSERT_EQ(res->size(), 1u);
  EXPECT_EQ((*res)[0].score, 0.f);
  EXPECT_GE(Coll()->Info().indexed_vectors_count, indexed);
  EXPECT_EQ(Coll()->Info().points_count, 8300u);

  // Tombstones: a deleted indexed point is never returned; retrieve reads SSD rows.
  PointSelector del{{PointId::Num(77)}, nullptr};
  ASSERT_TRUE(Coll()->Delete(del, true).ok());
  r.vector = data[77];
  r.limit = 10;
  auto del_res = Coll()->Search(r);
  ASSERT_TRUE(del_res.ok());
  for (const auto& p : del_res.value()) EXPECT_NE(p.id.num(), 77u);
  auto rec = Coll()->Retrieve({PointId::Num(78)}, true, true);
  ASSERT_TRUE(rec.ok());
  ASSERT_EQ(rec->size(), 1u);
  EXPECT_EQ(*(*rec)[0].vector, data[78]);

  // Filters on the SPANN path.
  auto filter = ParseFilter(Json::parse(R"({"must":[{"key":"g","match":{"value":3}}]})")).value();
  r.filter = filter;
  r.with_payload = true;
  r.vector = queries[0];
  auto fres = Coll()->Search(r);
  ASSERT_TRUE(fres.ok());
  EXPECT_FALSE(fres->empty());
  for (auto& p : *fres) EXPECT_EQ((*p.payload)["g"], 3);
  EXPECT_GE(Recall(queries, filter), 0.8);

  // Restart: the index is reopened, not rebuilt, with every point the updater put in it.
  ASSERT_TRUE(WaitGreen(120));
  EXPECT_EQ(Coll()->Info().indexed_vectors_count, 8299u);
  std::vector<std::vector<ScoredPoint>> before;
  r.filter = nullptr;
  r.with_payload = false;
  for (auto& q : queries) {
    r.vector = q;
    auto b = Coll()->Search(r);
    ASSERT_TRUE(b.ok());
    before.push_back(b.value());
  }
  Open();
  info = Coll()->Info();
  EXPECT_EQ(info.status, "green");
  EXPECT_EQ(info.points_count, 8299u);
  EXPECT_EQ(info.indexed_vectors_count, 8299u);
  for (size_t i = 0; i < queries.size(); ++i) {
    r.vector = queries[i];
    auto after_res = Coll()->Search(r);
    ASSERT_TRUE(after_res.ok());
    const auto& after = after_res.value();
    ASSERT_EQ(after.size(), before[i].size());
    for (size_t j = 0; j < after.size(); ++j) EXPECT_EQ(after[j].id, before[i][j].id);
  }
}

// Searches and upserts run concurrently with the build: a reader thread searches for stored
// points from before the build starts until it ends, and the main thread writes and reads its own
// writes. Every search succeeds with a full, ordered answer; stored points are found; searches
// provably overlapped the build (the collection was yellow before and after them).
TEST_F(CollectionSpannTest, ConcurrentQueriesAndWritesDuringBuild) {
  const CollectionConfig cfg = vectord::testing::SpannU8Config(kDim, 30000);
  ASSERT_TRUE(db_->CreateCollection("s", cfg).ok());
  std::mt19937 rng(3);
  std::vector<PointStruct> batch;
  for (uint64_t i = 0; i < 30000; ++i) {
    batch.push_back({PointId::Num(i), RandomClustered(rng, centers_), Json()});
  }
  const std::vector<PointStruct> stored(batch.begin(), batch.begin() + 1000);
  auto coll = Coll();
  // The reader starts on the first 1000 points, searched exactly; the rest cross the threshold.
  ASSERT_TRUE(
      coll->Upsert(std::vector<PointStruct>(batch.begin(), batch.begin() + 1000), true).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> searches{0}, failures{0}, found{0}, during_build{0};
  std::thread reader([&] {
    for (size_t q = 0; !stop; ++q) {
      const PointStruct& p = stored[q % stored.size()];
      const bool yellow_before = coll->Info().status == "yellow";
      SearchRequest r;
      r.vector = p.vector;
      r.limit = 5;
      auto res = coll->Search(r);
      const bool yellow_after = coll->Info().status == "yellow";
      ++searches;
      if (!res.ok() || res->size() != 5) {
        ++failures;
        continue;
      }
      for (size_t j = 1; j < res->size(); ++j) failures += (*res)[j - 1].score > (*res)[j].score;
      found += (*res)[0].score == 0.f;
      during_build += yellow_before && yellow_after;
    }
  });
  // Joins the reader however this test ends (an ASSERT below returns early).
  struct Joiner {
    std::atomic<bool>* stop;
    std::thread* t;
    ~Joiner() {
      *stop = true;
      if (t->joinable()) t->join();
    }
  } joiner{&stop, &reader};
  ASSERT_TRUE(
      coll->Upsert(std::vector<PointStruct>(batch.begin() + 1000, batch.end()), false).ok());
  int own_during_build = 0;
  for (uint64_t i = 30000; i < 30200; ++i) {
    std::vector<float> v = RandomClustered(rng, centers_);
    const bool yellow_before = coll->Info().status == "yellow";
    ASSERT_TRUE(coll->Upsert({{PointId::Num(i), v, Json()}}, false).ok());
    SearchRequest r;
    r.vector = v;
    r.limit = 1;
    auto res = coll->Search(r);
    ASSERT_TRUE(res.ok()) << res.status().ToString();
    ASSERT_FALSE(res->empty());
    EXPECT_EQ((*res)[0].score, 0.f) << "point " << i << " not found right after its upsert";
    own_during_build += yellow_before && coll->Info().status == "yellow";
  }
  ASSERT_TRUE(WaitGreen(120));
  stop = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(during_build.load() + own_during_build, 0)
      << "no search ran while the build did (" << searches.load() << " searches)";
  // Stored points come back as their own nearest neighbour (the delta is exact; the index finds
  // a point in its nearest list nearly always).
  EXPECT_GE(found.load(), searches.load() * 9 / 10) << found.load() << " of " << searches.load();
  EXPECT_EQ(coll->Info().points_count, 30200u);
}

TEST_F(CollectionSpannTest, RowCodesBuiltPersistedAndDamageTolerated) {
  // "on": built without a payload index; the code scan serves a filter; restart loads them; a
  // damaged file is reported and rebuilt in the background from the vector file.
  CollectionConfig cfg = vectord::testing::SpannU8Config(kDim, 3000, 16);
  cfg.spann->row_codes = "on";
  ASSERT_TRUE(db_->CreateCollection("s", cfg).ok());
  std::mt19937 rng(3);
  std::vector<PointStruct> pts = PointsNearCenters(3000, &rng);
  ASSERT_TRUE(Coll()->Upsert(pts, true).ok());
  ASSERT_TRUE(WaitGreen(120));
  const std::string codes = dir_ + "/collections";
  std::string file;
  for (const auto& e : std::filesystem::recursive_directory_iterator(codes)) {
    if (e.path().filename() == kRowCodesFile) file = e.path().string();
  }
  ASSERT_FALSE(file.empty()) << "no " << kRowCodesFile << " under " << codes;
  FilterPtr f = ParseFilter(Json{{"must", {{{"key", "u"}, {"match", {{"value", 3}}}}}}}).value();
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 20; ++i) queries.push_back(pts[rng() % pts.size()].vector);
  auto search = [&](const std::vector<float>& q, SearchPlan* plan) {
    SearchRequest r;
    r.vector = q;
    r.limit = 10;
    r.filter = f;
    QueryExplain ex;
    auto res = SearchExplained(*Coll(), r, &ex);
    EXPECT_TRUE(res.ok());
    *plan = ex.plan;
  };
  SetForcedSearchPlan(SearchPlan::kCodeScan);
  for (int round = 0; round < 3; ++round) {
    // Round 2 opens a damaged file: it is reported, rebuilt in the background from the vector
    // file, and used once installed.
    vectord::testing::WaitForRowCodes(*Coll());
    SearchPlan plan;
    search(queries[0], &plan);
    EXPECT_EQ(plan, SearchPlan::kCodeScan) << round;
    EXPECT_GE(Recall(queries, f), 0.95) << round;
    EXPECT_TRUE(RowCodes::Read(file, 3000).ok()) << round;
    if (round == 1) {
      db_.reset();
      std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
      io.seekp(static_cast<std::streamoff>(std::filesystem::file_size(file) / 2));
      io.put('\x5a');
      io.close();
      EXPECT_EQ(RowCodes::Read(file, 3000).status().code(), Status::Code::kCorruption);
    }
    if (round < 2) Open();
  }
  SetForcedSearchPlan(std::nullopt);
  // "off": no file for the next build.
  EXPECT_EQ(ParseSpannConfig(Json{{"row_codes", "off"}})->row_codes, "off");
  EXPECT_FALSE(ParseSpannConfig(Json{{"row_codes", "yes"}}).ok());
  EXPECT_FALSE(ParseSpannConfig(Json{{"row_code_bytes", 0}}).ok());
  EXPECT_EQ(SpannConfigToJson(*ParseSpannConfig(Json{{"row_code_bytes", 8}}))["row_code_bytes"], 8);
}

TEST_F(CollectionSpannTest, RowCodesFollowAPayloadIndexCreatedAfterTheBuild) {
  // "auto" without a payload index: the build makes no codes and filters cannot use the code
  // scan; the first payload index builds them in the background.
  ASSERT_TRUE(db_->CreateCollection("s", vectord::testing::SpannU8Config(kDim, 2000, 16)).ok());
  std::mt19937 rng(5);
  std::vector<PointStruct> pts = PointsNearCenters(2000, &rng);
  ASSERT_TRUE(Coll()->Upsert(pts, true).ok());
  ASSERT_TRUE(WaitGreen(120));
  FilterPtr f = ParseFilter(Json{{"must", {{{"key", "u"}, {"match", {{"value", 3}}}}}}}).value();
  auto plan_of = [&] {
    SearchRequest r;
    r.vector = pts[7].vector;
    r.limit = 10;
    r.filter = f;
    QueryExplain ex;
    EXPECT_TRUE(SearchExplained(*Coll(), r, &ex).ok());
    return ex.plan;
  };
  SetForcedSearchPlan(SearchPlan::kCodeScan);
  vectord::testing::WaitForRowCodes(*Coll());
  EXPECT_EQ(plan_of(), SearchPlan::kBruteForce);  // no codes
  ASSERT_TRUE(Coll()->CreatePayloadIndex("u", PayloadSchemaType::kInteger, true).ok());
  vectord::testing::WaitForRowCodes(*Coll());
  EXPECT_EQ(plan_of(), SearchPlan::kCodeScan);
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 20; ++i) queries.push_back(pts[rng() % pts.size()].vector);
  EXPECT_GE(Recall(queries, f), 0.95);
  // Persisted with the index: loaded at the next open.
  Open();
  EXPECT_EQ(plan_of(), SearchPlan::kCodeScan);
  SetForcedSearchPlan(std::nullopt);
}

TEST_F(CollectionSpannTest, DeltaStaysWithinItsBoundUnderAFasterWriter) {
  // One writer upserting as fast as it can: the updater (I/O per cycle) cannot keep up, so writes
  // wait for room and the delta — points not yet in posting lists on SSD — never passes
  // max_delta_points.
  CollectionConfig cfg = vectord::testing::SpannU8Config(kDim, 2000);
  cfg.spann->max_delta_points = 800;
  ASSERT_TRUE(db_->CreateCollection("s", cfg).ok());
  std::mt19937 rng(3);
  uint64_t id = 0;
  auto batch = [&](size_t n) {
    std::vector<PointStruct> pts;
    for (size_t i = 0; i < n; ++i)
      pts.push_back({PointId::Num(id++), RandomClustered(rng, centers_), Json()});
    return pts;
  };
  ASSERT_TRUE(Coll()->Upsert(batch(2000), false).ok());
  ASSERT_TRUE(WaitGreen(120));
  uint64_t max_delta = 0;
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(Coll()->Upsert(batch(100), false).ok());
    const CollectionInfo info = Coll()->Info();
    ASSERT_TRUE(info.index_updates.has_value());
    max_delta = std::max(max_delta, info.index_updates->delta_points);
    ASSERT_LE(info.index_updates->delta_points, 800u) << "after upsert " << i;
  }
  std::printf("largest delta seen: %llu points (bound 800)\n",
              static_cast<unsigned long long>(max_delta));
  EXPECT_GE(max_delta, 400u);  // the writer did outrun the updater: the bound was what held it
  ASSERT_TRUE(WaitGreen(120));
  EXPECT_EQ(Coll()->Info().indexed_vectors_count, id);
  auto report = Coll()->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->value("ok", false)) << report->dump();
}

TEST_F(CollectionSpannTest, RejectsBadSpannConfig) {
  EXPECT_FALSE(ParseSpannConfig(Json{{"layout", "hnsw"}}).ok());
  EXPECT_FALSE(ParseSpannConfig(Json{{"nprobe", -1}}).ok());
  EXPECT_FALSE(ParseSpannConfig(Json{{"indexing_treshold", 10}}).ok());
  auto ok = ParseSpannConfig(Json{{"indexing_threshold", 10}, {"layout", "pq4"}});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->indexing_threshold, 10u);
  EXPECT_EQ(ok->layout, "pq4");
  EXPECT_EQ(ParseSpannConfig(SpannConfigToJson(*ok))->layout, "pq4");
}

}  // namespace
}  // namespace vectord
