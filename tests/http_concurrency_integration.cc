// Concurrent clients against a real vectord, checked against a model of what was sent: several
// writers upsert, update and delete their own points while readers query, on an exact and on an
// indexed (living SPANN) collection. During the run every answer must be consistent with some
// state of the model (each returned score is the distance to a vector that id has had, filters
// hold, answers are complete and ordered, a writer reads its own acknowledged writes); once the
// clients stop, the collection equals the model exactly and search matches brute force (exact) or
// reaches a recall floor (index). Also: multi-vector queries served by the SPANN index over
// MUVERA FDEs over HTTP, with filters and deletes, against exact Chamfer.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/itest_points.h"
#include "tests/test_server.h"

namespace vectord {
namespace {

using namespace itest;  // NOLINT: the shared point-model helpers (itest_points.h)

constexpr int kVecDim = 8;

float L2(const std::vector<float>& a, const std::vector<float>& b) {
  float s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s);
}

// Every vector an id has been sent with (before the request was sent), and its current state in
// the model once a request is acknowledged. Shared by writers (each owns its ids) and readers.
class Registry {
 public:
  void Sent(uint64_t id, const std::vector<float>& v) {
    std::lock_guard<std::mutex> l(mu_);
    versions_[id].push_back(v);
  }
  // True if `score` is the distance from q to some vector id has had.
  bool ScoreMatchesAVersion(uint64_t id, const std::vector<float>& q, float score) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = versions_.find(id);
    if (it == versions_.end()) return false;
    for (const auto& v : it->second) {
      if (std::abs(L2(q, v) - score) <= 1e-4f * std::max(1.0f, score)) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mu_;
  std::map<uint64_t, std::vector<std::vector<float>>> versions_;
};

struct Counters {
  std::atomic<int> searches{0}, filtered{0}, writes{0}, deletes{0}, own_reads{0};
};

void ConcurrentClients(bool indexed) {
  const std::string name = "cc";
  TestServer server;
  ASSERT_TRUE(server.Start());
  const std::string config = indexed ? R"({"vectors":{"size":8,"distance":"Euclid"},
                   "spann_config":{"indexing_threshold":2000,"max_delta_points":400,
                                   "target_list_entries":32,"nprobe":64}})"
                                     : R"({"vectors":{"size":8,"distance":"Euclid"}})";
  CreateCollection(server, name, config);
  Registry registry;
  std::mt19937_64 seed_rng(17);
  // Seed points (thread -1, never deleted): at least `limit` points always match a query.
  std::map<uint64_t, SentPoint> model;
  {
    std::vector<SentPoint> seed;
    for (uint64_t id = 0; id < 3000; ++id) {
      seed.push_back({id, RandomVector(seed_rng, kVecDim), {{"t", -1}, {"i", id}}});
      registry.Sent(id, seed.back().vector);
      model[id] = seed.back();
    }
    HttpReply r = server.Request("PUT", "/collections/" + name + "/points?wait=true",
                                 UpsertBody(seed).dump());
    ASSERT_EQ(r.status, 200) << r.error << r.body;
  }
  if (indexed) {
    Json info = WaitInfo(server, name, [](const Json& i) {
      return i["status"] == "green" && i.value("indexed_vectors_count", 0) > 0;
    });
    ASSERT_EQ(info["status"], "green") << info.dump();
  }

  constexpr int kWriters = 3, kReaders = 2, kOps = 60;
  Counters n;
  std::atomic<int> writers_left{kWriters};
  std::vector<std::map<uint64_t, SentPoint>> live(kWriters);  // each writer's own model
  std::vector<std::set<uint64_t>> gone(kWriters);
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(100 + t);
      uint64_t next = 1'000'000ull * (t + 1);
      for (int op = 0; op < kOps; ++op) {
        if (op % 4 == 3 && live[t].size() > 20) {
          // Delete 10 of this writer's points.
          Json ids = Json::array();
          std::vector<uint64_t> del;
          for (int i = 0; i < 10; ++i) {
            auto it = live[t].begin();
            std::advance(it, static_cast<long>(rng() % live[t].size()));
            del.push_back(it->first);
            ids.push_back(it->first);
            gone[t].insert(it->first);
            live[t].erase(it);
          }
          HttpReply r = server.Request("POST", "/collections/" + name + "/points/delete?wait=true",
                                       Json{{"points", ids}}.dump());
          ASSERT_EQ(r.status, 200) << r.error << r.body;
          ++n.deletes;
          // Read-your-writes: none of them can be retrieved any more.
          EXPECT_TRUE(Retrieve(server, name, del).empty()) << "writer " << t << " op " << op;
          ++n.own_reads;
          continue;
        }
        // Upsert 20: new ids, and every third an update (new vector, new payload) of one of
        // this writer's live points.
        std::vector<SentPoint> batch;
        std::set<uint64_t> in_batch;
        for (int i = 0; i < 20; ++i) {
          uint64_t id = next++;
          if (i % 3 == 0 && !live[t].empty()) {
            auto it = live[t].begin();
            std::advance(it, static_cast<long>(rng() % live[t].size()));
            if (!in_batch.count(it->first)) id = it->first;
          }
          in_batch.insert(id);
          batch.push_back({id, RandomVector(rng, kVecDim), {{"t", t}, {"op", op}}});
          registry.Sent(id, batch.back().vector);
        }
        HttpReply r = server.Request("PUT", "/collections/" + name + "/points?wait=true",
                                     UpsertBody(batch).dump());
        ASSERT_EQ(r.status, 200) << r.error << r.body;
        ++n.writes;
        std::vector<uint64_t> ids;
        for (const SentPoint& p : batch) {
          live[t][p.id] = p;
          gone[t].erase(p.id);
          ids.push_back(p.id);
        }
        // Read-your-writes: the batch comes back exactly, and an exact search for one of its
        // vectors finds that point at distance 0.
        std::map<uint64_t, Json> got = Retrieve(server, name, ids);
        ASSERT_EQ(got.size(), batch.size()) << "writer " << t << " op " << op;
        for (const SentPoint& p : batch) ExpectSame(p, got[p.id]);
        const SentPoint& probe = batch[rng() % batch.size()];
        r = server.Request(
            "POST", "/collections/" + name + "/points/query",
            Json{{"query", probe.vector}, {"limit", 1}, {"params", {{"exact", true}}}}.dump());
        ASSERT_EQ(r.status, 200) << r.error << r.body;
        const Json top = Parse(r)["result"]["points"];
        ASSERT_EQ(top.size(), 1u) << r.body;
        EXPECT_EQ(top[0]["id"].get<uint64_t>(), probe.id) << r.body;
        EXPECT_EQ(top[0]["score"].get<float>(), 0.0f) << r.body;
        ++n.own_reads;
      }
      --writers_left;
    });
  }
  for (int t = 0; t < kReaders; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(500 + t);
      while (writers_left.load() > 0) {
        const std::vector<float> q = RandomVector(rng, kVecDim);
        const bool filter = rng() % 2 == 0;
        const int owner = static_cast<int>(rng() % (kWriters + 1)) - 1;  // -1: the seed points
        Json req = {{"query", q}, {"limit", 10}, {"with_payload", true}};
        if (filter) req["filter"] = MatchFilter("t", owner);
        HttpReply r = server.Request("POST", "/collections/" + name + "/points/query", req.dump());
        ASSERT_EQ(r.status, 200) << r.error << r.body;
        const Json pts = Parse(r)["result"]["points"];
        // The seed points alone fill any answer; a writer's own points may still be few.
        if (!filter || owner == -1) {
          EXPECT_EQ(pts.size(), 10u) << r.body;
        }
        float last = -1;
        for (const Json& p : pts) {
          const uint64_t id = p["id"].get<uint64_t>();
          const float score = p["score"].get<float>();
          EXPECT_GE(score, last) << "answer out of order: " << r.body;
          last = score;
          EXPECT_TRUE(registry.ScoreMatchesAVersion(id, q, score))
              << "point " << id << " scored " << score << ", the distance to none of its vectors";
          if (filter) {
            EXPECT_EQ(p["payload"]["t"], owner) << r.body;
          }
        }
        ++(filter ? n.filtered : n.searches);
      }
    });
  }
  for (auto& th : threads) th.join();
  if (::testing::Test::HasFatalFailure()) return;
  std::printf("%s: %d upserts, %d deletes, %d own-write checks, %d searches, %d filtered\n",
              indexed ? "indexed" : "exact", n.writes.load(), n.deletes.load(), n.own_reads.load(),
              n.searches.load(), n.filtered.load());
  EXPECT_GT(n.searches.load() + n.filtered.load(), 0);

  // Quiescent: the collection is the model.
  std::vector<uint64_t> all;
  for (int t = 0; t < kWriters; ++t) {
    for (auto& [id, p] : live[t]) model[id] = p;
    all.insert(all.end(), gone[t].begin(), gone[t].end());
  }
  for (const auto& [id, p] : model) all.push_back(id);
  std::map<uint64_t, Json> got = Retrieve(server, name, all);
  EXPECT_EQ(got.size(), model.size());
  for (const auto& [id, p] : model) {
    auto it = got.find(id);
    ASSERT_NE(it, got.end()) << "acknowledged point " << id << " missing";
    ExpectSame(p, it->second);
  }
  EXPECT_EQ(PointsCount(server, name), model.size());
  if (indexed) {
    // The updater catches up (green, nothing queued), then every point is in the index.
    Json info = WaitInfo(server, name, [](const Json& i) {
      return i["status"] == "green" && i["index_updates"].value("delta_points", 1) == 0;
    });
    ASSERT_EQ(info["status"], "green") << info.dump();
    EXPECT_EQ(info["indexed_vectors_count"].get<uint64_t>(), model.size()) << info.dump();
  }
  std::mt19937_64 rng(900);
  size_t hits = 0;
  constexpr int kQueries = 50;
  for (int i = 0; i < kQueries; ++i) {
    const std::vector<float> q = RandomVector(rng, kVecDim);
    std::vector<std::pair<float, uint64_t>> truth;
    for (const auto& [id, p] : model) truth.emplace_back(L2(q, p.vector), id);
    std::partial_sort(truth.begin(), truth.begin() + 10, truth.end());
    for (bool exact : {true, false}) {
      HttpReply r =
          server.Request("POST", "/collections/" + name + "/points/query",
                         Json{{"query", q}, {"limit", 10}, {"params", {{"exact", exact}}}}.dump());
      ASSERT_EQ(r.status, 200) << r.error << r.body;
      const Json pts = Parse(r)["result"]["points"];
      ASSERT_EQ(pts.size(), 10u);
      for (size_t k = 0; k < 10; ++k) {
        const uint64_t id = pts[k]["id"].get<uint64_t>();
        if (exact) {
          EXPECT_EQ(id, truth[k].second) << "query " << i << " rank " << k;
        } else {
          for (size_t j = 0; j < 10; ++j) hits += truth[j].second == id;
        }
      }
    }
  }
  const double recall = static_cast<double>(hits) / (kQueries * 10);
  std::printf("%s: recall@10 after the run %.3f\n", indexed ? "indexed" : "exact", recall);
  EXPECT_GE(recall, indexed ? 0.9 : 1.0);
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
}

TEST(HttpConcurrency, WritersAndReadersAgainstModelOnExactCollection) { ConcurrentClients(false); }

TEST(HttpConcurrency, WritersAndReadersAgainstModelOnIndexedCollection) { ConcurrentClients(true); }

// Documents are sets of 2..6 unit vectors around one of 30 topics; a query is a perturbed subset
// of a document's vectors. Scores are Chamfer sums of inner products.
struct MultiCorpus {
  static constexpr int kDimM = 16;
  std::mt19937_64 rng{29};
  std::vector<std::vector<float>> topics;
  MultiCorpus() {
    for (int t = 0; t < 30; ++t) topics.push_back(Unit(Noise(std::vector<float>(kDimM, 0), 1.0f)));
  }
  std::vector<float> Noise(std::vector<float> v, float sigma) {
    std::normal_distribution<float> g(0, sigma);
    for (float& x : v) x += g(rng);
    return v;
  }
  static std::vector<float> Unit(std::vector<float> v) {
    float n = 0;
    for (float x : v) n += x * x;
    n = std::sqrt(n);
    for (float& x : v) x /= n;
    return v;
  }
  std::vector<std::vector<float>> Doc() {
    const auto& topic = topics[rng() % topics.size()];
    std::vector<std::vector<float>> set(2 + rng() % 5);
    for (auto& v : set) v = Unit(Noise(topic, 0.35f));
    return set;
  }
  std::vector<std::vector<float>> Query(const std::vector<std::vector<float>>& doc) {
    std::vector<std::vector<float>> q;
    for (const auto& v : doc) q.push_back(Unit(Noise(v, 0.15f)));
    return q;
  }
  static float Chamfer(const std::vector<std::vector<float>>& q,
                       const std::vector<std::vector<float>>& d) {
    float s = 0;
    for (const auto& a : q) {
      float best = -1e30f;
      for (const auto& b : d) {
        float ip = 0;
        for (int k = 0; k < kDimM; ++k) ip += a[k] * b[k];
        best = std::max(best, ip);
      }
      s += best;
    }
    return s;
  }
};

TEST(HttpConcurrency, MultiVectorQueriesThroughSpannOverFdesWithFiltersAndDeletes) {
  const std::string name = "mvs";
  TestServer server;
  ASSERT_TRUE(server.Start());
  CreateCollection(server, name,
                   R"({"vectors":{"size":16,"distance":"Cosine",
                                  "multivector_config":{"comparator":"max_sim"}},
                       "muvera_config":{"k_sim":4,"d_proj":8,"r_reps":10,"candidates":200,
                                        "fde_pq_max_rows":0},
                       "spann_config":{"indexing_threshold":1500,"nprobe":32}})");
  MultiCorpus corpus;
  std::map<uint64_t, std::vector<std::vector<float>>> docs;
  for (uint64_t b = 0; b < 4; ++b) {
    std::vector<SentPoint> batch;
    for (uint64_t id = b * 500; id < (b + 1) * 500; ++id) {
      SentPoint p{id, {}, {{"g", static_cast<int>(id % 3)}}};
      p.multi = corpus.Doc();
      docs[id] = p.multi;
      batch.push_back(p);
    }
    HttpReply r = server.Request("PUT", "/collections/" + name + "/points?wait=true",
                                 UpsertBody(batch).dump());
    ASSERT_EQ(r.status, 200) << r.error << r.body;
  }
  Json info = WaitInfo(server, name, [](const Json& i) {
    return i["status"] == "green" && i.value("indexed_vectors_count", 0) > 0;
  });
  ASSERT_EQ(info["status"], "green") << info.dump();
  // Delete every 7th document (acknowledged), then query: deleted documents never come back.
  Json del = Json::array();
  std::set<uint64_t> deleted;
  for (uint64_t id = 0; id < 2000; id += 7) {
    del.push_back(id);
    deleted.insert(id);
  }
  HttpReply r = server.Request("POST", "/collections/" + name + "/points/delete?wait=true",
                               Json{{"points", del}}.dump());
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  for (uint64_t id : deleted) docs.erase(id);

  std::mt19937_64 rng(31);
  double recall = 0, recall_f = 0;
  constexpr int kQueries = 40;
  for (int t = 0; t < kQueries; ++t) {
    auto it = docs.begin();
    std::advance(it, static_cast<long>(rng() % docs.size()));
    const auto q = corpus.Query(it->second);
    const int g = static_cast<int>(rng() % 3);
    for (bool filtered : {false, true}) {
      // Exact Chamfer over the live (matching) documents: the model's answer.
      std::vector<std::pair<float, uint64_t>> truth;
      for (const auto& [id, d] : docs) {
        if (!filtered || static_cast<int>(id % 3) == g) {
          truth.emplace_back(-MultiCorpus::Chamfer(q, d), id);
        }
      }
      std::partial_sort(truth.begin(), truth.begin() + 10, truth.end());
      Json req = {
          {"query", q}, {"limit", 10}, {"with_payload", true}, {"params", {{"explain", true}}}};
      if (filtered) req["filter"] = MatchFilter("g", g);
      r = server.Request("POST", "/collections/" + name + "/points/query", req.dump());
      ASSERT_EQ(r.status, 200) << r.error << r.body;
      const Json body = Parse(r);
      const Json& pts = body["result"]["points"];
      ASSERT_EQ(pts.size(), 10u) << r.body;
      // Served through MUVERA candidates from the SPANN index over the FDEs.
      const Json& ex = body["result"]["explain"];
      EXPECT_EQ(ex["multivector"]["mode"], "fde") << ex.dump();
      // The candidates asked are delivered, the unfiltered ones by lists read until they hold
      // them.
      EXPECT_EQ(ex["multivector"]["candidates"], 200) << ex.dump();
      EXPECT_EQ(ex["multivector"]["candidates_delivered"], 200) << ex.dump();
      if (!filtered) {
        EXPECT_EQ(ex["plan"], "spann") << ex.dump();
        EXPECT_GT(ex.value("lists_probed", 0), 0) << ex.dump();
        EXPECT_GT(ex.value("pages_read", 0), 0) << ex.dump();
      }
      size_t hits = 0;
      for (const Json& p : pts) {
        const uint64_t id = p["id"].get<uint64_t>();
        EXPECT_EQ(deleted.count(id), 0u) << "deleted document " << id << " returned";
        if (filtered) {
          EXPECT_EQ(p["payload"]["g"], g) << r.body;
        }
        for (size_t j = 0; j < 10; ++j) hits += truth[j].second == id;
        // The returned score is the exact Chamfer similarity of that document.
        auto d = docs.find(id);
        ASSERT_NE(d, docs.end());
        EXPECT_NEAR(p["score"].get<float>(), MultiCorpus::Chamfer(q, d->second), 1e-3);
      }
      (filtered ? recall_f : recall) += hits / 10.0 / kQueries;
    }
  }
  std::printf("multi-vector through SPANN over FDEs: recall@10 %.3f, filtered %.3f\n", recall,
              recall_f);
  // Floors below the measured 0.93 unfiltered and 0.98 filtered on this corpus (2026-12-07).
  EXPECT_GE(recall, 0.85);
  EXPECT_GE(recall_f, 0.9);
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
}

}  // namespace
}  // namespace vectord
