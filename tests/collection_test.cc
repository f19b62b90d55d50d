// Engine (Database/Collection) against a simple in-memory model: random upserts, updates,
// deletes, payload operations and restarts; every search checked against brute force on the
// model, every count and scroll against the model.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>

#include "tests/test_db.h"
#include "vectord/database.h"

namespace vectord {
namespace {

struct ModelPoint {
  std::vector<float> v;
  Json payload;
};

class CollectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = vectord::testing::TestDataDir("coll_test");
    Reopen();
  }
  void TearDown() override {
    db_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    db_.reset();
    auto db = vectord::testing::OpenTestDatabase(dir_);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    db_ = std::move(db).value();
  }
  std::shared_ptr<Collection> Get(const std::string& name) {
    auto c = db_->GetCollection(name);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c.value() : nullptr;
  }
  std::string dir_;
  std::unique_ptr<Database> db_;
};

FilterPtr F(const std::string& text) {
  auto f = ParseFilter(Json::parse(text));
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? f.value() : nullptr;
}

TEST_F(CollectionTest, RejectsBadNamesAndConfigs) {
  CollectionConfig c;
  c.dim = 4;
  c.distance = Distance::kEuclid;
  for (const char* bad : {"", ".", "..", "../x", "a/b", "a b", "x\\y"}) {
    EXPECT_EQ(db_->CreateCollection(bad, c).code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(db_->CreateCollection("ok.name-1_x", c).ok());
  EXPECT_EQ(db_->CreateCollection("ok.name-1_x", c).code(), Status::Code::kAlreadyExists);
  c.dim = 0;
  EXPECT_EQ(db_->CreateCollection("zero", c).code(), Status::Code::kInvalidArgument);
  c.dim = 4;
  c.distance = Distance::kCosine;
  c.datatype = DataType::kUint8;
  EXPECT_EQ(db_->CreateCollection("cos8", c).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(db_->DropCollection("missing").code(), Status::Code::kNotFound);
  EXPECT_EQ(db_->GetCollection("missing").status().code(), Status::Code::kNotFound);
}

TEST_F(CollectionTest, BadBatchChangesNothing) {
  CollectionConfig c;
  c.dim = 3;
  c.distance = Distance::kDot;
  c.datatype = DataType::kUint8;
  ASSERT_TRUE(db_->CreateCollection("u8", c).ok());
  auto coll = Get("u8");
  std::vector<PointStruct> good = {{PointId::Num(1), {1, 2, 3}, Json::object()}};
  ASSERT_TRUE(coll->Upsert(good, true).ok());
  auto try_bad = [&](std::vector<float> v, const std::string& needle) {
    std::vector<PointStruct> batch = {{PointId::Num(2), {4, 5, 6}, Json()},
                                      {PointId::Num(3), std::move(v), Json()}};
    auto r = coll->Upsert(batch, true);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
    EXPECT_EQ(coll->Info().points_count, 1u);
  };
  try_bad({1, 2}, "point 1: vector has 2 dimensions, collection 'u8' expects 3");
  try_bad({1, NAN, 3}, "not a finite number");
  try_bad({1, 256, 3}, "not an integer in [0, 255]");
  try_bad({1, 2.5f, 3}, "not an integer");
  std::vector<PointStruct> bad_payload = {{PointId::Num(9), {1, 1, 1}, Json::array()}};
  EXPECT_FALSE(coll->Upsert(bad_payload, true).ok());
  Reopen();
  EXPECT_EQ(Get("u8")->Info().points_count, 1u);
}

// Randomized: the collection must agree with the model after every step and after reopening.
TEST_F(CollectionTest, RandomizedAgainstModelWithRestarts) {
  for (DataType dt : {DataType::kFloat32, DataType::kUint8}) {
    for (Distance dist : {Distance::kEuclid, Distance::kDot, Distance::kCosine}) {
      if (dt == DataType::kUint8 && dist == Distance::kCosine) continue;
      const std::string name = std::string("c_") + DataTypeName(dt) + "_" + DistanceName(dist);
      CollectionConfig cfg;
      cfg.dim = 8;
      cfg.distance = dist;
      cfg.datatype = dt;
      cfg.fsync = false;
      ASSERT_TRUE(db_->CreateCollection(name, cfg).ok());
      std::mt19937 rng(42 + static_cast<int>(dt) * 10 + static_cast<int>(dist));
      std::map<PointId, ModelPoint> model;
      const char* colors[] = {"red", "green", "blue"};
      auto random_vec = [&] {
        std::vector<float> v(8);
        for (auto& x : v) {
          x = dt == DataType::kUint8 ? float(rng() % 256) : float(int(rng() % 2001) - 1000) / 100;
        }
        return v;
      };
      auto random_id = [&] {
        if (rng() % 5 == 0) {
          std::array<uint8_t, 16> b{};
          b[15] = static_cast<uint8_t>(rng() % 40);
          return PointId::Uuid(b);
        }
        return PointId::Num(rng() % 200);
      };
      for (int step = 0; step < 60; ++step) {
        auto coll = Get(name);
        ASSERT_NE(coll, nullptr);
        const int op = rng() % 10;
        if (op < 5) {
          std::vector<PointStruct> batch;
          for (int i = 0, n = 1 + rng() % 20; i < n; ++i) {
            Json payload = {{"color", colors[rng() % 3]}, {"n", int(rng() % 100)}};
            batch.push_back({random_id(), random_vec(), payload});
          }
          ASSERT_TRUE(coll->Upsert(batch, rng() % 2).ok());
          for (auto& p : batch) model[p.id] = {p.vector, p.payload};
        } else if (op == 5) {
          PointSelector sel;
          for (int i = 0; i < 5; ++i) sel.ids.push_back(random_id());
          ASSERT_TRUE(coll->Delete(sel, true).ok());
          for (auto& id : sel.ids) model.erase(id);
        } else if (op == 6) {
          PointSelector sel;
          sel.filter = F(R"({"must":[{"key":"color","match":{"value":"red"}},
                                       {"key":"n","range":{"lt":30}}]})");
          ASSERT_TRUE(coll->Delete(sel, false).ok());
          std::erase_if(model, [](const auto& kv) {
            return kv.second.payload.value("color", "") == "red" &&
                   kv.second.payload.value("n", 0) < 30;
          });
        } else if (op == 7) {
          PointSelector sel;
          sel.filter = F(R"({"must":{"key":"color","match":{"value":"green"}}})");
          ASSERT_TRUE(coll->SetPayload(sel, Json{{"tag", step}}, std::nullopt, true).ok());
          for (auto& [id, p] : model) {
            if (p.payload.value("color", "") == "green") p.payload["tag"] = step;
          }
        } else if (op == 8) {
          if (step % 3 == 0) {
            ASSERT_TRUE(coll->CreatePayloadIndex("color", PayloadSchemaType::kKeyword, true).ok());
            ASSERT_TRUE(coll->CreatePayloadIndex("n", PayloadSchemaType::kInteger, true).ok());
          }
          coll.reset();
          Reopen();
          continue;
        }
        // Checks: count, filtered count, scroll order, search against brute force.
        ASSERT_EQ(coll->Info().points_count, model.size()) << name << " step " << step;
        auto filter = F(R"({"should":[{"key":"color","match":{"any":["red","blue"]}}],
                             "must_not":[{"key":"n","range":{"gte":50}}]})");
        size_t expect_count = 0;
        for (auto& [id, p] : model) {
          const auto col = p.payload.value("color", "");
          if ((col == "red" || col == "blue") && p.payload.value("n", 0) < 50) ++expect_count;
        }
        ASSERT_EQ(coll->Count(filter).value(), expect_count);
        ScrollRequest sr;
        sr.limit = 7;
        std::vector<PointId> scrolled;
        for (;;) {
          auto page = coll->Scroll(sr);
          ASSERT_TRUE(page.ok());
          for (auto& r : page->points) {
            scrolled.push_back(r.id);
            ASSERT_EQ(*r.payload, model[r.id].payload);
          }
          if (!page->next_page_offset) break;
          sr.offset = page->next_page_offset;
        }
        std::vector<PointId> expect_ids;
        for (auto& [id, p] : model) expect_ids.push_back(id);
        ASSERT_EQ(scrolled, expect_ids);

        SearchRequest req;
        req.vector = random_vec();
        req.limit = 5;
        req.with_vector = true;
        auto res = coll->Search(req);
        ASSERT_TRUE(res.ok()) << res.status().ToString();
        std::vector<std::pair<double, PointId>> truth;
        std::vector<float> q = req.vector;
        double qn = 0;
        for (float x : q) qn += double{x} * x;
        for (auto& [id, p] : model) {
          double s = 0, l2 = 0, pn = 0;
          for (size_t i = 0; i < q.size(); ++i) {
            s += double{q[i]} * p.v[i];
            l2 += (double{q[i]} - p.v[i]) * (double{q[i]} - p.v[i]);
            pn += double{p.v[i]} * p.v[i];
          }
          double score = dist == Distance::kEuclid ? std::sqrt(l2)
                         : dist == Distance::kDot  ? -s
                                                   : -(s / std::sqrt(qn * pn));
          truth.emplace_back(score, id);
        }
        std::sort(truth.begin(), truth.end());
        ASSERT_EQ(res->size(), std::min<size_t>(5, model.size()));
        for (size_t i = 0; i < res->size(); ++i) {
          const double got = dist == Distance::kEuclid ? (*res)[i].score : -(*res)[i].score;
          ASSERT_NEAR(got, truth[i].first, 1e-3 * (1 + std::fabs(truth[i].first)))
              << name << " rank " << i;
          ASSERT_TRUE(model.count((*res)[i].id));
          if (dist != Distance::kCosine) {
            ASSERT_EQ(*(*res)[i].vector, model[(*res)[i].id].v);
          }
        }
      }
    }
  }
}

TEST_F(CollectionTest, PayloadOperationsAndDrop) {
  CollectionConfig c;
  c.dim = 2;
  c.distance = Distance::kEuclid;
  ASSERT_TRUE(db_->CreateCollection("p", c).ok());
  auto coll = Get("p");
  std::vector<PointStruct> pts = {{PointId::Num(1), {0, 0}, Json{{"a", 1}, {"b", {{"c", 2}}}}},
                                  {PointId::Num(2), {1, 1}, Json()}};
  ASSERT_TRUE(coll->Upsert(pts, true).ok());
  PointSelector one{{PointId::Num(1)}, nullptr};
  ASSERT_TRUE(coll->SetPayload(one, Json{{"d", 4}}, std::string("b"), true).ok());
  auto r = coll->Retrieve({PointId::Num(1), PointId::Num(2), PointId::Num(3)}, true, true);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ(*(*r)[0].payload, (Json{{"a", 1}, {"b", {{"c", 2}, {"d", 4}}}}));
  EXPECT_EQ(*(*r)[1].payload, Json::object());
  ASSERT_TRUE(coll->DeletePayloadKeys(one, {"b.c", "a"}, true).ok());
  EXPECT_EQ(*coll->Retrieve({PointId::Num(1)}, true, false)->at(0).payload,
            (Json{{"b", {{"d", 4}}}}));
  ASSERT_TRUE(coll->OverwritePayload(one, Json{{"z", true}}, true).ok());
  EXPECT_EQ(coll->Info().open_replayed_rows, 0u);  // a new collection: nothing to read at open
  EXPECT_FALSE(coll->Info().open_full_scan);
  Reopen();
  coll = Get("p");
  // A clean close checkpoints the point store: the open replays nothing and scans nothing.
  EXPECT_EQ(coll->Info().open_replayed_rows, 0u);
  EXPECT_FALSE(coll->Info().open_full_scan);
  EXPECT_EQ(*coll->Retrieve({PointId::Num(1)}, true, false)->at(0).payload, (Json{{"z", true}}));
  ASSERT_TRUE(coll->ClearPayload(one, true).ok());
  EXPECT_EQ(coll->Count(F(R"({"must":{"is_empty":{"key":"z"}}})")).value(), 2u);
  EXPECT_EQ(coll->DeletePayloadIndex("nope", true).status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(db_->DropCollection("p").ok());
  EXPECT_FALSE(coll->Upsert(pts, true).ok());  // dropped: writes refused
  Reopen();
  EXPECT_TRUE(db_->ListCollections().empty());
  ASSERT_TRUE(db_->CreateCollection("p", c).ok());
  EXPECT_EQ(Get("p")->Info().points_count, 0u);
}

}  // namespace
}  // namespace vectord
