// Per-posting-list summaries (src/list_summary.h): randomized filters of every condition type the
// summaries answer (match value / any / except on strings, integers and bools, ranges, nested
// must / should / must_not / min_should, conditions on other fields) never drop a list that holds
// a match; the file round trip, its corruption checks and the dirty log. Then on a SPANN
// collection: payloads changed after the build, a payload index created after it, a restart and a
// corrupted summary file, against exact filtered search (exact counts, recall floors).
#include "src/spann/list_summary.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "index/filter.h"
#include "src/collection/collection.h"
#include "src/search/query_planner.h"
#include "tests/test_db.h"
#include "vectord/database.h"
#include "vectord/filter.h"

namespace vectord {
namespace {

const std::vector<std::string> kFields = {"k", "n", "b", "f", "o.x"};

// A random payload; `group` biases the values so that lists differ (as correlated data does).
Json RandomPayload(std::mt19937& rng, int group) {
  Json p = Json::object();
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  switch (pick(10)) {  // "k": mostly one string of the group, sometimes arrays or other types
    case 0:
      p["k"] = Json::array({"k" + std::to_string(group), "k" + std::to_string(pick(20))});
      break;
    case 1:
      p["k"] = pick(20);
      break;
    case 2:
      p["k"] = 1.5;
      break;
    case 3:
      break;
    case 4:
      p["k"] = nullptr;
      break;
    default:
      p["k"] = "k" + std::to_string((group + pick(2)) % 20);
  }
  if (pick(8) != 0) p["n"] = group * 10 + pick(10);
  if (pick(20) == 0) p["n"] = 2.5;
  if (pick(5) != 0) p["b"] = (group + pick(3)) % 2 == 0;
  if (pick(6) != 0) p["f"] = group * 1.0 + pick(1000) / 1000.0;
  if (pick(3) == 0) p["o"] = Json{{"x", "x" + std::to_string(group % 5)}};
  if (pick(4) == 0) p["z"] = pick(3);
  return p;
}

Json RandomCondition(std::mt19937& rng, int depth) {
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const int kind = pick(depth < 2 ? 10 : 8);
  auto strings = [&](int n) {
    Json a = Json::array();
    for (int i = 0; i < n; ++i) a.push_back("k" + std::to_string(pick(22)));
    return a;
  };
  auto ints = [&](int n) {
    Json a = Json::array();
    for (int i = 0; i < n; ++i) a.push_back(pick(220));
    return a;
  };
  switch (kind) {
    case 0:
      return {{"key", "k"}, {"match", {{"value", "k" + std::to_string(pick(22))}}}};
    case 1:
      return {{"key", pick(2) ? "k" : "n"}, {"match", {{"any", pick(2) ? strings(3) : ints(3)}}}};
    case 2:
      return {{"key", pick(2) ? "k" : "n"},
              {"match", {{"except", pick(2) ? strings(pick(20) + 1) : ints(pick(3) + 1)}}}};
    case 3:
      return {{"key", "n"}, {"match", {{"value", pick(220)}}}};
    case 4:
      return {{"key", "b"}, {"match", {{"value", pick(2) == 0}}}};
    case 5: {
      const double lo = pick(220) / 10.0;
      Json r = {{pick(2) ? "gte" : "gt", lo}};
      if (pick(2)) r[pick(2) ? "lt" : "lte"] = lo + pick(30) / 10.0;
      return {{"key", pick(2) ? "f" : "n"}, {"range", r}};
    }
    case 6:
      return {{"key", "o.x"}, {"match", {{"value", "x" + std::to_string(pick(6))}}}};
    case 7:
      return {{"key", "z"}, {"match", {{"value", pick(3)}}}};  // not summarized
    default: {
      Json f = Json::object();
      const char* parts[] = {"must", "should", "must_not"};
      for (const char* part : parts) {
        if (pick(2)) continue;
        Json a = Json::array();
        for (int i = pick(3) + 1; i > 0; --i) a.push_back(RandomCondition(rng, depth + 1));
        f[part] = a;
      }
      if (pick(4) == 0) {
        Json a = Json::array();
        for (int i = 0; i < 3; ++i) a.push_back(RandomCondition(rng, depth + 1));
        f["min_should"] = {{"conditions", a}, {"min_count", pick(2) + 1}};
      }
      return f;
    }
  }
}

FilterPtr RandomFilter(std::mt19937& rng) {
  Json f = Json::object();
  f["must"] = Json::array({RandomCondition(rng, 0)});
  if (rng() % 2) f["must"].push_back(RandomCondition(rng, 0));
  if (rng() % 4 == 0) f["should"] = Json::array({RandomCondition(rng, 1), RandomCondition(rng, 1)});
  if (rng() % 4 == 0) f["must_not"] = Json::array({RandomCondition(rng, 1)});
  auto p = ParseFilter(f);
  EXPECT_TRUE(p.ok()) << p.status().ToString() << " " << f.dump();
  return p.ok() ? *p : nullptr;
}

struct Lists {
  std::vector<std::vector<Json>> payloads;  // per list, per entry (null = no payload)
};

Lists RandomLists(std::mt19937& rng, uint32_t n) {
  Lists l;
  l.payloads.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    const int group = static_cast<int>(i % 20);
    const int rows = static_cast<int>(rng() % 40);
    // Some lists have many distinct values: their value sets overflow.
    const bool wide = rng() % 10 == 0;
    for (int r = 0; r < rows; ++r) {
      Json p = RandomPayload(rng, wide ? static_cast<int>(rng() % 20) : group);
      if (wide) p["n"] = static_cast<int>(rng() % 220);
      l.payloads[i].push_back(rng() % 15 == 0 ? Json() : p);
    }
  }
  return l;
}

std::unique_ptr<ListSummaries> Summarize(const Lists& l, const std::vector<std::string>& fields) {
  ListSummaries::Builder b(fields, static_cast<uint32_t>(l.payloads.size()));
  EXPECT_TRUE(b.status().ok());
  // Lists in a shuffled order: the builder accepts any order.
  std::vector<uint32_t> order(l.payloads.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = (i * 7919u) % order.size();
  for (uint32_t i : order) {
    b.BeginList(i);
    for (const Json& p : l.payloads[i]) b.Add(p.is_null() ? nullptr : &p);
  }
  Roaring dirty;
  dirty.add(42);
  return b.Finish(dirty);
}

TEST(ListSummaries, RandomFiltersNeverDropAListWithAMatch) {
  std::mt19937 rng(7);
  constexpr uint32_t kLists = 160;  // coprime with 7919
  const Lists lists = RandomLists(rng, kLists);
  auto s = Summarize(lists, kFields);
  EXPECT_EQ(s->build_dirty().cardinality(), 1u);
  size_t pruned = 0, constrained = 0, nonempty = 0;
  for (int t = 0; t < 1500; ++t) {
    FilterPtr f = RandomFilter(rng);
    ASSERT_TRUE(f);
    auto cand = s->Candidates(*f);
    Roaring truth;
    for (uint32_t l = 0; l < kLists; ++l) {
      for (const Json& p : lists.payloads[l]) {
        if (index::MatchesPayload(*f, p.is_null() ? nullptr : &p, nullptr)) {
          truth.add(l);
          break;
        }
      }
    }
    nonempty += !truth.isEmpty();
    if (!cand) continue;
    ++constrained;
    pruned += kLists - cand->cardinality();
    ASSERT_TRUE(truth.isSubset(*cand))
        << "filter #" << t << " drops lists " << (truth - *cand).toString();
  }
  // The summaries do constrain most filters and skip lists.
  EXPECT_GT(constrained, 1000u);
  EXPECT_GT(pruned, constrained * 20);
  EXPECT_GT(nonempty, 300u);
}

TEST(ListSummaries, OnlySummarizedFieldsConstrain) {
  std::mt19937 rng(8);
  const Lists lists = RandomLists(rng, 50);
  auto s = Summarize(lists, {"k"});
  EXPECT_EQ(s->fields(), std::vector<std::string>{"k"});
  auto f = ParseFilter(Json{{"must", {{{"key", "n"}, {"match", {{"value", 3}}}}}}}).value();
  EXPECT_FALSE(s->Candidates(*f).has_value());
  f = ParseFilter(Json{{"must", {{{"key", "k"}, {"match", {{"value", "nope"}}}}}}}).value();
  auto c = s->Candidates(*f);
  ASSERT_TRUE(c.has_value());
  // Only lists whose "k" value set overflowed may hold a value never seen.
  for (uint32_t l : *c) EXPECT_LT(l, 50u);
  f = ParseFilter(Json{{"must_not", {{{"key", "k"}, {"match", {{"value", "k1"}}}}}}}).value();
  EXPECT_FALSE(s->Candidates(*f).has_value());
  EXPECT_GT(s->MemoryBytes(), 0u);
}

std::string TempFile(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + "_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name()))
      .string();
}

TEST(ListSummaries, FileRoundTripAndCorruption) {
  std::mt19937 rng(9);
  const Lists lists = RandomLists(rng, 100);
  auto s = Summarize(lists, kFields);
  const std::string path = TempFile("summaries.vds");
  Roaring dirty;
  dirty.addRange(5, 9);
  ASSERT_TRUE(s->Write(path, dirty).ok());
  auto r = ListSummaries::Read(path, 100);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->build_dirty(), dirty);
  EXPECT_EQ((*r)->fields(), kFields);
  for (int t = 0; t < 300; ++t) {
    FilterPtr f = RandomFilter(rng);
    auto a = s->Candidates(*f), b = (*r)->Candidates(*f);
    ASSERT_EQ(a.has_value(), b.has_value());
    if (a) {
      EXPECT_EQ(*a, *b);
    }
  }
  EXPECT_EQ((*r)->lists_written(), 0u);
  // An index with more lists (split off after the summaries): read, the extra lists are the
  // caller's to treat as stale; one with fewer is corruption.
  auto more = ListSummaries::Read(path, 101);
  ASSERT_TRUE(more.ok()) << more.status().ToString();
  EXPECT_EQ((*more)->num_lists(), 100u);
  EXPECT_EQ(ListSummaries::Read(path, 99).status().code(), Status::Code::kCorruption);
  s->set_lists_written(12345);
  ASSERT_TRUE(s->Write(path, dirty).ok());
  EXPECT_EQ(ListSummaries::Read(path, 100).value()->lists_written(), 12345u);
  EXPECT_EQ(ListSummaries::Read(path + ".none", 100).status().code(), Status::Code::kNotFound);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t pos : {size_t{0}, size_t{9}, bytes.size() / 2, bytes.size() - 20, bytes.size() - 6}) {
    std::string bad = bytes;
    bad[pos] ^= 0x10;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bad;
    auto st = ListSummaries::Read(path, 100).status();
    EXPECT_EQ(st.code(), Status::Code::kCorruption) << "byte " << pos << ": " << st.ToString();
  }
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 30);
  EXPECT_EQ(ListSummaries::Read(path, 100).status().code(), Status::Code::kCorruption);
  std::filesystem::remove(path);
}

TEST(DirtyLog, AppendReopenTornTailAndCorruption) {
  const std::string path = TempFile("dirty.log");
  std::filesystem::remove(path);
  {
    Roaring rows;
    auto log = DirtyLog::Open(path, &rows);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    EXPECT_TRUE(rows.isEmpty());
    ASSERT_TRUE((*log)->Append({3, 7, 1000000}, true).ok());
    ASSERT_TRUE((*log)->Append({}, false).ok());
    ASSERT_TRUE((*log)->Append({7, 12}, false).ok());
  }
  Roaring rows;
  {
    auto log = DirtyLog::Open(path, &rows);
    ASSERT_TRUE(log.ok());
    EXPECT_EQ(rows.toString(), "{3,7,12,1000000}");
    ASSERT_TRUE((*log)->Append({99}, false).ok());
  }
  // A torn last record is dropped; the log stays usable.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
  rows = Roaring();
  {
    auto log = DirtyLog::Open(path, &rows);
    ASSERT_TRUE(log.ok());
    EXPECT_EQ(rows.toString(), "{3,7,12,1000000}");
    ASSERT_TRUE((*log)->Append({5}, false).ok());
  }
  rows = Roaring();
  ASSERT_TRUE(DirtyLog::Open(path, &rows).ok());
  EXPECT_EQ(rows.toString(), "{3,5,7,12,1000000}");
  // A damaged record in the middle is corruption.
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(8 + 8 + 1);
    f.put('\x55');
  }
  rows = Roaring();
  EXPECT_EQ(DirtyLog::Open(path, &rows).status().code(), Status::Code::kCorruption);
  std::filesystem::remove(path);
}

// ---------------------------------------------------------------------------------------------
// On a SPANN collection.

constexpr uint32_t kDim = 16;
constexpr int kRows = 8000;
constexpr int kCenters = 30;

class SummarySpannTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = vectord::testing::TestDataDir("list_summary");
    Open();
    ASSERT_TRUE(db_->CreateCollection("s", vectord::testing::SpannU8Config(kDim, kRows, 8)).ok());
    auto coll = db_->GetCollection("s").value();
    ASSERT_TRUE(coll->CreatePayloadIndex("c", PayloadSchemaType::kKeyword, false).ok());
    ASSERT_TRUE(coll->CreatePayloadIndex("u", PayloadSchemaType::kInteger, false).ok());
    ASSERT_TRUE(coll->CreatePayloadIndex("f", PayloadSchemaType::kFloat, false).ok());
    ASSERT_TRUE(coll->CreatePayloadIndex("flag", PayloadSchemaType::kBool, false).ok());
    std::mt19937 rng(3);
    std::vector<std::vector<float>> centers;
    for (int c = 0; c < kCenters; ++c) {
      std::vector<float> v(kDim);
      for (auto& x : v) x = float(rng() % 200 + 20);
      centers.push_back(v);
    }
    std::normal_distribution<float> noise(0, 5);
    std::vector<PointStruct> batch;
    for (int i = 0; i < kRows; ++i) {
      const int c = static_cast<int>(rng() % kCenters);
      std::vector<float> v(kDim);
      for (uint32_t d = 0; d < kDim; ++d) {
        v[d] = std::clamp(std::round(centers[c][d] + noise(rng)), 0.f, 255.f);
      }
      vectors_.push_back(v);
      cluster_.push_back(c);
      // c: the cluster (correlated with the vectors); u, f: by cluster too, plus noise.
      payloads_.push_back(Json{{"c", "c" + std::to_string(c)},
                               {"u", c * 100 + static_cast<int>(rng() % 100)},
                               {"f", c + (rng() % 1000) / 1000.0},
                               {"flag", c % 3 == 0}});
      batch.push_back({PointId::Num(i), v, payloads_.back()});
      if (batch.size() == 2000) {
        ASSERT_TRUE(coll->Upsert(std::move(batch), false).ok());
        batch.clear();
      }
    }
    ASSERT_TRUE(testing::WaitForIndex(*coll, 120));
  }
  void TearDown() override {
    SetForcedSearchPlan(std::nullopt);
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    db_.reset();
    db_ = std::move(vectord::testing::OpenTestDatabase(dir_)).value();
  }

  // Payload changes after the build, mirrored into payloads_.
  void ChangePayloads(std::mt19937& rng) {
    auto coll = db_->GetCollection("s").value();
    for (int t = 0; t < 60; ++t) {
      const int row = static_cast<int>(rng() % kRows);
      PointSelector sel;
      sel.ids = {PointId::Num(row)};
      Json& p = payloads_[row];
      switch (t % 4) {
        case 0: {  // move to a value no list summary has seen, or to another cluster's
          Json set = {{"c", t % 8 == 0 ? "moved" : "c" + std::to_string(rng() % kCenters)},
                      {"u", 5000 + t},
                      {"flag", true}};
          ASSERT_TRUE(coll->SetPayload(sel, set, std::nullopt, false).ok());
          for (auto it = set.begin(); it != set.end(); ++it) p[it.key()] = it.value();
          break;
        }
        case 1: {
          Json over = {{"c", "moved"}, {"f", 99.5}, {"late", t}};
          ASSERT_TRUE(coll->OverwritePayload(sel, over, false).ok());
          p = over;
          break;
        }
        case 2:
          ASSERT_TRUE(coll->DeletePayloadKeys(sel, {"c", "u"}, false).ok());
          if (p.is_object()) {
            p.erase("c");
            p.erase("u");
          }
          break;
        default:
          ASSERT_TRUE(coll->ClearPayload(sel, false).ok());
          p = Json::object();
      }
    }
  }

  FilterPtr CollectionFilter(std::mt19937& rng, Json* json) {
    auto pick = [&](int n) { return static_cast<int>(rng() % n); };
    auto cond = [&]() -> Json {
      switch (pick(7)) {
        case 0:
          return {
              {"key", "c"},
              {"match",
               {{"value", pick(6) ? "c" + std::to_string(pick(kCenters)) : std::string("moved")}}}};
        case 1:
          return {{"key", "c"},
                  {"match", {{"any", {"c" + std::to_string(pick(kCenters)), "moved"}}}}};
        case 2: {
          Json ex = Json::array();
          for (int c = 0; c < kCenters; ++c) {
            if (c != pick(kCenters)) ex.push_back("c" + std::to_string(c));
          }
          return {{"key", "c"}, {"match", {{"except", ex}}}};
        }
        case 3: {
          const int lo = pick(3000);
          return {{"key", "u"}, {"range", {{"gte", lo}, {"lt", lo + pick(400) + 1}}}};
        }
        case 4:
          return {{"key", "f"}, {"range", {{"gt", pick(31)}, {"lte", pick(31) + 2.5}}}};
        case 5:
          return {{"key", "late"}, {"range", {{"gte", 0}}}};
        default:
          return {{"key", "flag"}, {"match", {{"value", pick(2) == 0}}}};
      }
    };
    Json f = {{"must", {cond()}}};
    if (pick(3) == 0) f["should"] = {cond(), cond()};
    if (pick(4) == 0) f["must_not"] = {cond()};
    if (pick(4) == 0) f["must"].push_back({{"must", {cond()}}, {"must_not", {cond()}}});
    *json = f;
    return ParseFilter(f).value();
  }

  // Random filters, plan (b) forced: exact counts, results only matching rows, recall.
  double Check(uint32_t seed, int queries, int* dirty_only_checked) {
    auto coll = db_->GetCollection("s").value();
    SetForcedSearchPlan(SearchPlan::kSpannFiltered);
    std::mt19937 rng(seed);
    size_t hit = 0, total = 0;
    for (int i = 0; i < queries; ++i) {
      Json fj;
      FilterPtr f = CollectionFilter(rng, &fj);
      uint64_t matches = 0;
      for (const auto& p : payloads_) matches += index::MatchesPayload(*f, &p, nullptr);
      EXPECT_EQ(coll->Count(f).value(), matches) << fj.dump();
      SearchRequest req;
      req.vector = vectors_[rng() % kRows];
      for (auto& x : req.vector) x = std::clamp(x + float(int(rng() % 7) - 3), 0.f, 255.f);
      req.limit = 10;
      req.filter = f;
      QueryExplain ex;
      auto approx = SearchExplained(*coll, req, &ex);
      req.exact = true;
      auto exact = coll->Search(req);
      EXPECT_TRUE(approx.ok() && exact.ok());
      if (!approx.ok() || !exact.ok()) continue;
      EXPECT_EQ(ex.plan, SearchPlan::kSpannFiltered);
      EXPECT_EQ(approx->size(), std::min<uint64_t>(10, matches)) << fj.dump();
      std::set<uint64_t> truth;
      for (const auto& p : *exact) truth.insert(p.id.num());
      for (const auto& p : *approx) {
        EXPECT_TRUE(index::MatchesPayload(*f, &payloads_[p.id.num()], nullptr))
            << "row " << p.id.num() << " does not match " << fj.dump();
        hit += truth.count(p.id.num());
      }
      total += truth.size();
    }
    // Filters whose matches are all rows changed after the build (no summary knows them):
    // the results must be exactly the exact ones.
    for (const Json& fj : {Json{{"must", {{{"key", "c"}, {"match", {{"value", "moved"}}}}}}},
                           Json{{"must", {{{"key", "u"}, {"range", {{"gte", 5000}}}}}}}}) {
      SearchRequest req;
      req.vector = vectors_[rng() % kRows];
      req.limit = 10;
      req.filter = ParseFilter(fj).value();
      QueryExplain ex;
      auto approx = SearchExplained(*coll, req, &ex);
      req.exact = true;
      auto exact = coll->Search(req);
      EXPECT_TRUE(approx.ok() && exact.ok());
      if (!approx.ok() || !exact.ok()) continue;
      EXPECT_EQ(approx->size(), exact->size()) << fj.dump();
      for (size_t j = 0; j < std::min(approx->size(), exact->size()); ++j) {
        EXPECT_EQ((*approx)[j].id.num(), (*exact)[j].id.num()) << fj.dump();
      }
      ++*dirty_only_checked;
    }
    // A row moved to a value no summary knows, searched by its own vector with a filter whose
    // other matches lie in a far cluster: the row's lists are skipped, only the changed-row path
    // finds it.
    int moved = 0;
    for (int r = 0; r < kRows && moved < 5; ++r) {
      const Json& p = payloads_[r];
      if (!p.is_object() || p.value("c", Json()) != "moved") continue;
      ++moved;
      const std::string other = "c" + std::to_string((cluster_[r] + 1) % kCenters);
      SearchRequest req;
      req.vector = vectors_[r];
      req.limit = 10;
      req.filter =
          ParseFilter(Json{{"must", {{{"key", "c"}, {"match", {{"any", {"moved", other}}}}}}}})
              .value();
      auto approx = coll->Search(req);
      EXPECT_TRUE(approx.ok() && !approx->empty());
      if (!approx.ok() || approx->empty()) continue;
      EXPECT_EQ((*approx)[0].id.num(), uint64_t(r));
    }
    moved_checked_ += moved;
    return total ? double(hit) / total : 1.0;
  }

  std::string SummaryFile() const {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
      if (e.path().filename() == kListSummaryFile) return e.path().string();
    }
    return "";
  }

  std::string dir_;
  std::unique_ptr<Database> db_;
  std::vector<std::vector<float>> vectors_;
  std::vector<int> cluster_;
  int moved_checked_ = 0;
  std::vector<Json> payloads_;
};

TEST_F(SummarySpannTest, UpdatesLateIndexRestartAndCorruption) {
  auto coll = db_->GetCollection("s").value();
  ASSERT_FALSE(SummaryFile().empty());
  // A correlated filter: the summaries leave a fraction of the lists.
  {
    SearchRequest req;
    req.vector = vectors_[0];
    req.limit = 10;
    req.filter =
        ParseFilter(Json{{"must", {{{"key", "c"}, {"match", {{"value", "c3"}}}}}}}).value();
    QueryExplain all, one;
    SetForcedSearchPlan(SearchPlan::kSpannFiltered);
    ASSERT_TRUE(SearchExplained(*coll, req, &one).ok());
    req.filter = ParseFilter(Json{{"must", {{{"key", "c"}, {"is_empty", false}}}}}).value();
    ASSERT_TRUE(SearchExplained(*coll, req, &all).ok());
    EXPECT_GT(one.candidate_lists, 0u);
    EXPECT_LT(one.candidate_lists * 4, all.candidate_lists);
    EXPECT_LE(one.lists_probed, one.candidate_lists);
  }
  int dirty_checked = 0;
  EXPECT_GE(Check(1, 60, &dirty_checked), 0.95);
  std::mt19937 rng(17);
  ChangePayloads(rng);
  // A payload index created after the build: its field has no summary.
  ASSERT_TRUE(coll->CreatePayloadIndex("late", PayloadSchemaType::kInteger, false).ok());
  EXPECT_GE(Check(2, 80, &dirty_checked), 0.95);
  // Restart: the summary file and the dirty log bring the changed rows back.
  coll.reset();
  Open();
  EXPECT_GE(Check(3, 60, &dirty_checked), 0.95);
  ChangePayloads(rng);
  EXPECT_GE(Check(4, 40, &dirty_checked), 0.95);
  // A damaged summary file is rebuilt from the payloads at the next open, never trusted.
  coll.reset();
  db_.reset();
  const std::string file = SummaryFile();
  ASSERT_FALSE(file.empty());
  {
    std::fstream f(file, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(40);
    f.put('\x7f');
  }
  Open();
  {
    // Rebuilt: valid again (its list count is the u32 at offset 8).
    std::ifstream in(file, std::ios::binary);
    uint32_t header[3] = {0, 0, 0};
    in.read(reinterpret_cast<char*>(header), sizeof(header));
    auto r = ListSummaries::Read(file, header[2]);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_GE(Check(5, 60, &dirty_checked), 0.95);
  EXPECT_EQ(dirty_checked, 10);
  EXPECT_GE(moved_checked_, 15);
}

// Points written after the summaries reach posting lists through the updater; the summary file
// on disk does not know them. After a restart a filtered search must not trust the file for the
// rewritten lists: 200 points near cluster 0 carry cluster 5's value, and a search for that value
// near cluster 0 must find them through the SPANN plan, not cluster 5's far points.
TEST_F(SummarySpannTest, ListsRewrittenAfterTheSummariesAreNotSkippedAfterARestart) {
  auto coll = db_->GetCollection("s").value();
  std::mt19937 rng(23);
  std::normal_distribution<float> noise(0, 2);
  std::vector<PointStruct> batch;
  for (int i = 0; i < 200; ++i) {
    std::vector<float> v = vectors_[0];
    for (float& x : v) x = std::clamp(std::round(x + noise(rng)), 0.f, 255.f);
    batch.push_back({PointId::Num(kRows + i), v,
                     Json{{"c", "c" + std::to_string((cluster_[0] + 5) % kCenters)}}});
  }
  const std::string value = batch[0].payload["c"].get<std::string>();
  ASSERT_TRUE(coll->Upsert(std::move(batch), true).ok());
  // The updater appends them to cluster 0's lists (and is idle again).
  ASSERT_TRUE(coll->WaitIdle(120000));
  ASSERT_EQ(coll->Info().index_updates->delta_points, 0u);
  ASSERT_GT(coll->Info().index_updates->lists_written, 0u);
  auto search = [&](Collection& c) {
    SearchRequest req;
    req.vector = vectors_[0];
    req.limit = 10;
    req.filter =
        ParseFilter(Json{{"must", {{{"key", "c"}, {"match", {{"value", value}}}}}}}).value();
    SetForcedSearchPlan(SearchPlan::kSpannFiltered);
    auto got = c.Search(req);
    SetForcedSearchPlan(std::nullopt);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    size_t new_points = 0;
    if (got.ok()) {
      for (const auto& p : *got) new_points += p.id.num() >= static_cast<uint64_t>(kRows);
    }
    return new_points;
  };
  EXPECT_EQ(search(*coll), 10u);  // the updater's changed lists are stale while it runs
  coll.reset();
  Open();
  coll = db_->GetCollection("s").value();
  EXPECT_EQ(search(*coll), 10u) << "a rewritten list was skipped on the summary file's word";
  // Once the summaries are rebuilt (in the background), they know the new points.
  ASSERT_TRUE(coll->WaitIdle(120000));
  EXPECT_EQ(search(*coll), 10u);
}

TEST_F(SummarySpannTest, ManyChangesRefreshTheSummariesAndEmptyTheLog) {
  // Past max(256, rows / 32) changed rows the summaries are rebuilt in the background: searches
  // stop checking those rows one by one and the dirty log starts again from empty; results stay
  // exact for the changed rows, before and after a restart.
  auto coll = db_->GetCollection("s").value();
  auto* impl = dynamic_cast<CollectionImpl*>(coll.get());
  ASSERT_NE(impl, nullptr);
  std::string log;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir_)) {
    if (e.path().filename() == kListSummaryDirtyLog) log = e.path().string();
  }
  ASSERT_FALSE(log.empty());
  std::mt19937 rng(29);
  ChangePayloads(rng);
  ASSERT_TRUE(coll->WaitIdle(600000));
  const uint64_t few = impl->SummaryDirtyRows();
  EXPECT_GT(few, 0u);
  EXPECT_LT(few, 256u);  // below the threshold: not refreshed yet
  EXPECT_GT(std::filesystem::file_size(log), 8u);
  int dirty_checked = 0;
  uint64_t most = few;
  for (int round = 0; round < 8; ++round) {
    ChangePayloads(rng);
    most = std::max(most, impl->SummaryDirtyRows());
  }
  ASSERT_TRUE(coll->WaitIdle(600000));
  EXPECT_LT(impl->SummaryDirtyRows(), 256u);
  EXPECT_LT(impl->SummaryDirtyRows(), most);
  EXPECT_LT(std::filesystem::file_size(log), 8u + 8u * 256);
  EXPECT_GE(Check(6, 60, &dirty_checked), 0.95);
  coll.reset();
  Open();
  EXPECT_GE(Check(7, 60, &dirty_checked), 0.95);
  EXPECT_EQ(dirty_checked, 4);
}

}  // namespace
}  // namespace vectord
