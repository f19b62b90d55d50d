// Crash-recovery tests against the real vectord binary: kill -9 during concurrent acknowledged
// upserts (every acknowledged batch survives with exact vectors and payloads, and every batch is
// all-or-nothing), kill -9 while the living SPANN index absorbs writes, deletes and updates
// (appends, splits, merges, reassignments: `vectorctl check` finds the index consistent, every
// acknowledged point is there and reachable, no deleted point comes back), durability of deletes
// and payload updates across kill -9, and a clean SIGTERM shutdown that keeps all data.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_server.h"

namespace vectord {
namespace {

using Json = nlohmann::json;
using itest::HttpReply;
using itest::TestServer;

constexpr int kDim = 16;

// Filter {"must":[{"key":key,"match":{"value":value}}]}.
Json MatchFilter(const std::string& key, const Json& value) {
  Json cond = {{"key", key}, {"match", {{"value", value}}}};
  Json must = Json::array();
  must.push_back(cond);
  return Json{{"must", must}};
}

// Parses a reply body; a JSON null if it is not JSON (the assertion then shows the body).
Json Parse(const HttpReply& r) { return Json::parse(r.body, nullptr, /*allow_exceptions=*/false); }

void CreateCollection(TestServer& server, const std::string& name,
                      const std::string& body = R"({"vectors":{"size":16,"distance":"Euclid"}})") {
  HttpReply r = server.Request("PUT", "/collections/" + name, body);
  ASSERT_EQ(r.status, 200) << r.error << r.body;
}

uint64_t PointsCount(TestServer& server, const std::string& name) {
  HttpReply r = server.Request("GET", "/collections/" + name);
  EXPECT_EQ(r.status, 200) << r.error << r.body;
  Json j = Parse(r);
  if (!j.is_object() || !j.contains("result") || !j["result"].contains("points_count")) {
    ADD_FAILURE() << "collection info without result.points_count: " << r.body;
    return 0;
  }
  return j["result"]["points_count"].get<uint64_t>();
}

uint64_t ExactCount(TestServer& server, const std::string& name, const Json& filter = nullptr) {
  Json req = {{"exact", true}};
  if (!filter.is_null()) req["filter"] = filter;
  HttpReply r = server.Request("POST", "/collections/" + name + "/points/count", req.dump());
  EXPECT_EQ(r.status, 200) << r.error << r.body;
  Json j = Parse(r);
  if (!j.is_object() || !j.contains("result")) return 0;
  return j["result"].value("count", uint64_t{0});
}

// A point as the test sent it.
struct SentPoint {
  uint64_t id;
  std::vector<float> vector;
  Json payload;
  std::vector<std::vector<float>> multi = {};  // multi-vector collections: the set sent instead
};

// Fetches the given ids (with vector and payload) in chunks; returns id -> record JSON.
std::map<uint64_t, Json> Retrieve(TestServer& server, const std::string& name,
                                  const std::vector<uint64_t>& ids) {
  std::map<uint64_t, Json> out;
  for (size_t begin = 0; begin < ids.size(); begin += 1000) {
    Json req = {{"ids", Json::array()}, {"with_payload", true}, {"with_vector", true}};
    for (size_t i = begin; i < std::min(ids.size(), begin + 1000); ++i)
      req["ids"].push_back(ids[i]);
    HttpReply r = server.Request("POST", "/collections/" + name + "/points", req.dump());
    EXPECT_EQ(r.status, 200) << r.error << r.body.substr(0, 500);
    Json j = Parse(r);
    if (!j.is_object() || !j.contains("result") || !j["result"].is_array()) {
      ADD_FAILURE() << "retrieve reply without result array: " << r.body.substr(0, 500);
      return out;
    }
    for (const Json& p : j["result"]) out[p["id"].get<uint64_t>()] = p;
  }
  return out;
}

// Checks that a retrieved record has exactly the vector and payload that were sent.
void ExpectSame(const SentPoint& sent, const Json& got) {
  ASSERT_TRUE(got.contains("vector") && got["vector"].is_array()) << got.dump();
  if (!sent.multi.empty()) {
    const Json& sets = got["vector"];
    ASSERT_EQ(sets.size(), sent.multi.size()) << "point " << sent.id;
    for (size_t j = 0; j < sent.multi.size(); ++j) {
      ASSERT_EQ(sets[j].size(), sent.multi[j].size()) << "point " << sent.id;
      for (size_t i = 0; i < sent.multi[j].size(); ++i) {
        ASSERT_EQ(static_cast<float>(sets[j][i].get<double>()), sent.multi[j][i])
            << "point " << sent.id << " vector " << j << " component " << i;
      }
    }
    EXPECT_EQ(got.value("payload", Json()), sent.payload) << "point " << sent.id;
    return;
  }
  const Json& v = got["vector"];
  ASSERT_EQ(v.size(), sent.vector.size()) << "point " << sent.id;
  for (size_t i = 0; i < sent.vector.size(); ++i) {
    // float -> JSON -> float round-trips exactly.
    ASSERT_EQ(static_cast<float>(v[i].get<double>()), sent.vector[i])
        << "point " << sent.id << " component " << i;
  }
  EXPECT_EQ(got.value("payload", Json()), sent.payload) << "point " << sent.id;
}

Json UpsertBody(const std::vector<SentPoint>& points) {
  Json body = {{"points", Json::array()}};
  for (const SentPoint& p : points) {
    if (!p.multi.empty()) {
      body["points"].push_back({{"id", p.id}, {"vector", p.multi}, {"payload", p.payload}});
    } else {
      body["points"].push_back({{"id", p.id}, {"vector", p.vector}, {"payload", p.payload}});
    }
  }
  return body;
}

std::vector<float> RandomVector(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(kDim);
  for (float& x : v) x = u(rng);
  return v;
}

// One upsert batch of the crash test and what is known about it.
struct Batch {
  enum class State {
    kInFlight,  // sent, no reply (the server died): may or may not have been applied
    kAcked,     // 200 reply: must survive every later crash
    kPresent,   // recovered in full after a crash (acked or not): must stay
    kAbsent,    // absent in full after a crash: must stay absent
  };
  int thread = 0;
  int number = 0;
  std::vector<SentPoint> points;
  State state = State::kInFlight;
};

// Kill -9 cycles under 4 concurrent writers (wait=true): every acknowledged batch survives whole,
// no batch is ever partial, counts match. `multi`: a multi-vector collection (token files +
// FDE rows + metadata must agree after the crash).
void Kill9Cycles(bool multi) {
  constexpr int kThreads = 4;
  constexpr int kBatchSize = 20;
  constexpr int kCycles = 3;
  const std::string name = multi ? "crash_multi" : "crash";
  TestServer server;
  ASSERT_TRUE(server.Start());
  if (multi) {
    CreateCollection(server, name,
                     R"({"vectors":{"size":16,"distance":"Dot",
                                    "multivector_config":{"comparator":"max_sim"}},
                         "muvera_config":{"k_sim":3,"d_proj":4,"r_reps":4}})");
  } else {
    CreateCollection(server, name);
  }

  std::vector<Batch> batches;  // all batches of all cycles; guarded by mu while threads run
  std::mutex mu;
  std::vector<int> next_batch(kThreads, 0);

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    std::atomic<bool> stop{false};
    std::vector<std::string> unexpected;  // guarded by mu
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937_64 rng(1000 * cycle + t);
        while (!stop.load()) {
          Batch b;
          b.thread = t;
          b.number = next_batch[t]++;
          for (int j = 0; j < kBatchSize; ++j) {
            uint64_t id = static_cast<uint64_t>(t) * 10'000'000 +
                          static_cast<uint64_t>(b.number) * kBatchSize + j;
            b.points.push_back({id, RandomVector(rng), {{"t", t}, {"b", b.number}}});
            if (multi) {
              const size_t n = 1 + rng() % 4;
              for (size_t v = 0; v < n; ++v) b.points.back().multi.push_back(RandomVector(rng));
            }
          }
          std::string body = UpsertBody(b.points).dump();
          HttpReply r =
              server.Request("PUT", "/collections/" + name + "/points?wait=true", body, 10000);
          std::lock_guard<std::mutex> lock(mu);
          if (r.status == 200) {
            b.state = Batch::State::kAcked;
            batches.push_back(std::move(b));
            continue;
          }
          batches.push_back(std::move(b));  // kInFlight: fate unknown
          if (r.status != 0) {
            unexpected.push_back("upsert got HTTP " + std::to_string(r.status) + ": " + r.body);
          }
          return;  // the server is gone (or misbehaving): this thread is done for the cycle
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    server.Kill9();
    stop = true;
    for (auto& th : threads) th.join();
    for (const auto& u : unexpected) ADD_FAILURE() << "cycle " << cycle << ": " << u;

    size_t acked_now = 0, in_flight_now = 0;
    for (const Batch& b : batches) {
      acked_now += b.state == Batch::State::kAcked;
      in_flight_now += b.state == Batch::State::kInFlight;
    }
    ASSERT_GT(acked_now, 0u) << "cycle " << cycle << ": no batch was acknowledged in 1.5 s";

    ASSERT_TRUE(server.Start()) << "restart after kill -9, cycle " << cycle;
    std::vector<uint64_t> ids;
    for (const Batch& b : batches) {
      for (const SentPoint& p : b.points) ids.push_back(p.id);
    }
    std::map<uint64_t, Json> found = Retrieve(server, name, ids);
    uint64_t expected_total = 0;
    size_t in_flight_recovered = 0;
    for (Batch& b : batches) {
      size_t present = 0;
      for (const SentPoint& p : b.points) {
        auto it = found.find(p.id);
        if (it == found.end()) continue;
        ++present;
        ExpectSame(p, it->second);
      }
      const bool whole = present == b.points.size();
      ASSERT_TRUE(present == 0 || whole)
          << "cycle " << cycle << ": batch " << b.number << " of thread " << b.thread
          << " is partial after kill -9: " << present << " of " << b.points.size() << " points";
      switch (b.state) {
        case Batch::State::kAcked:
        case Batch::State::kPresent:
          ASSERT_TRUE(whole) << "cycle " << cycle << ": acknowledged batch " << b.number
                             << " of thread " << b.thread << " lost after kill -9";
          b.state = Batch::State::kPresent;
          break;
        case Batch::State::kAbsent:
          ASSERT_EQ(present, 0u) << "cycle " << cycle << ": batch " << b.number << " of thread "
                                 << b.thread << " was absent after an earlier crash, now back";
          break;
        case Batch::State::kInFlight:
          b.state = whole ? Batch::State::kPresent : Batch::State::kAbsent;
          in_flight_recovered += whole;
          break;
      }
      if (b.state == Batch::State::kPresent) expected_total += b.points.size();
    }
    EXPECT_EQ(PointsCount(server, name), expected_total) << "cycle " << cycle;
    EXPECT_EQ(ExactCount(server, name), expected_total) << "cycle " << cycle;
    std::printf(
        "cycle %d: %zu batches acknowledged, %zu in flight at kill -9 (%zu of them recovered), "
        "%llu points live\n",
        cycle, acked_now, in_flight_now, in_flight_recovered,
        static_cast<unsigned long long>(expected_total));
  }
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
}

TEST(CrashIntegration, Kill9DuringConcurrentUpsertsKeepsAcknowledgedBatchesWhole) {
  Kill9Cycles(false);
}

TEST(CrashIntegration, Kill9KeepsMultiVectorBatchesWhole) { Kill9Cycles(true); }

// Runs `vectorctl check` on the data directory (no server on it); its JSON lines.
std::vector<Json> CheckDataDir(const std::string& data_dir) {
  const std::string cmd =
      std::string(VECTORD_BIN_DIR) + "/vectorctl check --data-dir " + data_dir + " 2>&1";
  std::vector<Json> out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  char line[1 << 16];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object()) out.push_back(j);
  }
  ::pclose(f);
  return out;
}

TEST(CrashIntegration, Kill9DuringIndexUpdatesKeepsTheIndexConsistent) {
  // Small lists and a small delta: the updater splits, merges and reassigns all the time.
  const std::string name = "living";
  TestServer server;
  ASSERT_TRUE(server.Start());
  CreateCollection(server, name,
                   R"({"vectors":{"size":16,"distance":"Euclid"},
                       "spann_config":{"indexing_threshold":1500,"target_list_entries":16,
                                       "max_delta_points":600,"nprobe":64}})");
  std::mt19937_64 rng(5);
  std::map<uint64_t, SentPoint> live;  // acknowledged and not deleted
  std::set<uint64_t> deleted;          // acknowledged deletes
  uint64_t next_id = 0;
  auto upsert = [&](int n, bool replace) {
    std::vector<SentPoint> pts;
    for (int i = 0; i < n; ++i) {
      uint64_t id = next_id++;
      if (replace && !live.empty() && rng() % 4 == 0) {  // an update moves a point
        auto it = live.begin();
        std::advance(it, static_cast<long>(rng() % live.size()));
        id = it->first;
        --next_id;
      }
      pts.push_back({id, RandomVector(rng), {{"i", static_cast<int64_t>(id)}}});
    }
    HttpReply r = server.Request("PUT", "/collections/" + name + "/points?wait=true",
                                 UpsertBody(pts).dump(), 20000);
    if (r.status != 200) return false;
    for (auto& p : pts) {
      deleted.erase(p.id);
      live[p.id] = p;
    }
    return true;
  };
  auto remove = [&](int n) {
    Json ids = Json::array();
    for (int i = 0; i < n && !live.empty(); ++i) {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      ids.push_back(it->first);
    }
    HttpReply r = server.Request("POST", "/collections/" + name + "/points/delete?wait=true",
                                 Json{{"points", ids}}.dump(), 20000);
    if (r.status != 200) return false;
    for (const auto& id : ids) {
      live.erase(id.get<uint64_t>());
      deleted.insert(id.get<uint64_t>());
    }
    return true;
  };
  // The index is built (status waits for it), then every round writes while the updater works
  // and is killed at a different moment.
  ASSERT_TRUE(upsert(2000, false));
  for (int i = 0; i < 600; ++i) {
    HttpReply r = server.Request("GET", "/collections/" + name);
    if (Parse(r)["result"].value("indexed_vectors_count", 0) > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (int round = 0; round < 6; ++round) {
    const int writes = 3 + static_cast<int>(rng() % 8);
    for (int w = 0; w < writes; ++w) {
      if (!upsert(200 + static_cast<int>(rng() % 400), true)) break;
      if (rng() % 3 == 0 && !remove(50 + static_cast<int>(rng() % 150))) break;
    }
    server.Kill9();
    // Offline: the index as the crash left it is consistent.
    std::vector<Json> report = CheckDataDir(server.data_dir());
    ASSERT_EQ(report.size(), 1u) << "round " << round;
    EXPECT_TRUE(report[0].value("ok", false)) << "round " << round << ": " << report[0].dump();
    ASSERT_TRUE(server.Start()) << "restart, round " << round;
    // Every acknowledged point is there, exactly; no deleted point is.
    std::vector<uint64_t> ids;
    for (const auto& [id, p] : live) ids.push_back(id);
    ids.insert(ids.end(), deleted.begin(), deleted.end());
    std::map<uint64_t, Json> found = Retrieve(server, name, ids);
    for (const auto& [id, p] : live) {
      auto it = found.find(id);
      ASSERT_NE(it, found.end()) << "round " << round << ": acknowledged point " << id << " lost";
      ExpectSame(p, it->second);
    }
    for (uint64_t id : deleted) {
      EXPECT_EQ(found.count(id), 0u) << "round " << round << ": deleted point " << id << " is back";
    }
    EXPECT_EQ(PointsCount(server, name), live.size()) << "round " << round;
    // Reachable through the index: a search for a point's own vector finds it; a search for a
    // deleted point's old vector does not return it.
    int checked = 0;
    for (auto it = live.begin(); it != live.end() && checked < 40; ++it, ++checked) {
      Json q = {{"vector", it->second.vector}, {"limit", 1}};
      HttpReply r = server.Request("POST", "/collections/" + name + "/points/search", q.dump());
      Json j = Parse(r);
      ASSERT_EQ(r.status, 200) << r.body;
      ASSERT_EQ(j["result"].size(), 1u) << r.body;
      EXPECT_EQ(j["result"][0]["id"].get<uint64_t>(), it->first) << "round " << round;
    }
  }
  // The updater split lists and moved points along the way (its counters survive restarts).
  const Json updates =
      Parse(server.Request("GET", "/collections/" + name))["result"]["index_updates"];
  std::printf("index updates after the rounds: %s\n", updates.dump().c_str());
  EXPECT_GT(updates.value("splits", 0), 0);
  EXPECT_GT(updates.value("reassigned_points", 0), 0);
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
  std::vector<Json> report = CheckDataDir(server.data_dir());
  ASSERT_EQ(report.size(), 1u);
  EXPECT_TRUE(report[0].value("ok", false)) << report[0].dump();
  EXPECT_EQ(report[0]["index"].value("unreachable_points", 1), 0);
}

// Upserts `n` points with ids 0..n-1 and payload {"g": id % 4, "i": id}.
std::vector<SentPoint> UpsertPoints(TestServer& server, const std::string& name, int n,
                                    uint64_t seed, bool wait = true) {
  std::mt19937_64 rng(seed);
  std::vector<SentPoint> points;
  for (int i = 0; i < n; ++i) {
    points.push_back({static_cast<uint64_t>(i), RandomVector(rng), {{"g", i % 4}, {"i", i}}});
  }
  HttpReply r =
      server.Request("PUT", "/collections/" + name + "/points" + (wait ? "?wait=true" : ""),
                     UpsertBody(points).dump());
  EXPECT_EQ(r.status, 200) << r.error << r.body;
  return points;
}

TEST(CrashIntegration, DeletesAndPayloadUpdatesSurviveKill9) {
  const std::string name = "deletes";
  TestServer server;
  ASSERT_TRUE(server.Start());
  CreateCollection(server, name);
  std::vector<SentPoint> points = UpsertPoints(server, name, 200, 7);
  std::map<uint64_t, SentPoint> model;
  for (const SentPoint& p : points) model[p.id] = p;

  // Delete 0..29 by id and every point with g == 1 by filter.
  Json by_ids = {{"points", Json::array()}};
  for (uint64_t id = 0; id < 30; ++id) {
    by_ids["points"].push_back(id);
    model.erase(id);
  }
  HttpReply r =
      server.Request("POST", "/collections/" + name + "/points/delete?wait=true", by_ids.dump());
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  Json by_filter = {{"filter", MatchFilter("g", 1)}};
  r = server.Request("POST", "/collections/" + name + "/points/delete?wait=true", by_filter.dump());
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  for (auto it = model.begin(); it != model.end();) {
    it = it->second.payload["g"] == 1 ? model.erase(it) : std::next(it);
  }
  // Payload update on the g == 2 points; then re-insert one deleted id with a new vector.
  Json set = {{"payload", {{"tag", "kept"}}}, {"filter", MatchFilter("g", 2)}};
  r = server.Request("POST", "/collections/" + name + "/points/payload?wait=true", set.dump());
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  for (auto& [id, p] : model) {
    if (p.payload["g"] == 2) p.payload["tag"] = "kept";
  }
  std::mt19937_64 rng(99);
  SentPoint back{5, RandomVector(rng), {{"g", 0}, {"i", 5}, {"again", true}}};
  r = server.Request("PUT", "/collections/" + name + "/points?wait=true",
                     UpsertBody({back}).dump());
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  model[back.id] = back;
  ASSERT_EQ(ExactCount(server, name), model.size());

  server.Kill9();
  ASSERT_TRUE(server.Start());

  EXPECT_EQ(PointsCount(server, name), model.size());
  EXPECT_EQ(ExactCount(server, name), model.size());
  std::vector<uint64_t> all_ids;
  for (int i = 0; i < 200; ++i) all_ids.push_back(static_cast<uint64_t>(i));
  std::map<uint64_t, Json> found = Retrieve(server, name, all_ids);
  EXPECT_EQ(found.size(), model.size());
  for (const auto& [id, p] : model) {
    auto it = found.find(id);
    ASSERT_NE(it, found.end()) << "point " << id << " lost after kill -9";
    ExpectSame(p, it->second);
  }
  for (const auto& [id, rec] : found) {
    EXPECT_TRUE(model.count(id)) << "deleted point " << id << " is back after kill -9";
  }
  EXPECT_EQ(ExactCount(server, name, MatchFilter("g", 1)), 0u);
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
}

TEST(CrashIntegration, SigtermShutsDownCleanlyAndKeepsData) {
  // Several I/O threads: the accept loop and the signal handler run on different threads unless
  // the server serializes them (a SIGTERM right after a request once crashed it this way).
  const std::vector<std::string> kArgs = {"--io-threads", "4"};
  TestServer server;
  ASSERT_TRUE(server.Start(kArgs));
  CreateCollection(server, "clean");
  HttpReply r = server.Request("PUT", "/collections/clean/index",
                               R"({"field_name":"g","field_schema":"integer"})");
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  // Half acknowledged with wait=true; half without wait, which a clean shutdown must still keep.
  std::vector<SentPoint> points = UpsertPoints(server, "clean", 100, 11, /*wait=*/true);
  std::mt19937_64 rng(12);
  std::vector<SentPoint> more;
  for (uint64_t id = 100; id < 150; ++id) {
    more.push_back({id, RandomVector(rng), {{"g", 9}, {"nested", {{"a", {1, 2, 3}}}}}});
  }
  r = server.Request("PUT", "/collections/clean/points", UpsertBody(more).dump());
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  points.insert(points.end(), more.begin(), more.end());

  ASSERT_EQ(server.Terminate(), 0) << "SIGTERM shutdown: " << server.last_exit() << "\n"
                                   << server.LogTail();
  ASSERT_TRUE(server.Start(kArgs));

  r = server.Request("GET", "/collections/clean");
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  Json info = Parse(r)["result"];
  EXPECT_EQ(info["points_count"], points.size()) << info.dump();
  EXPECT_EQ(info["config"]["params"]["vectors"]["size"], kDim) << info.dump();
  EXPECT_EQ(info["config"]["params"]["vectors"]["distance"], "Euclid") << info.dump();
  EXPECT_EQ(info["payload_schema"]["g"]["data_type"], "integer") << info.dump();

  std::vector<uint64_t> ids;
  for (const SentPoint& p : points) ids.push_back(p.id);
  std::map<uint64_t, Json> found = Retrieve(server, "clean", ids);
  ASSERT_EQ(found.size(), points.size());
  for (const SentPoint& p : points) ExpectSame(p, found[p.id]);
  EXPECT_EQ(ExactCount(server, "clean", MatchFilter("g", 9)), 50u);

  // A second clean shutdown/restart cycle, still intact.
  ASSERT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
  ASSERT_TRUE(server.Start(kArgs));
  EXPECT_EQ(ExactCount(server, "clean"), points.size());
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();

  // Quick cycles: SIGTERM right after an unacknowledged (no wait) upsert, every time.
  for (uint64_t cycle = 0; cycle < 8; ++cycle) {
    ASSERT_TRUE(server.Start(kArgs));
    EXPECT_EQ(ExactCount(server, "clean"), points.size()) << "cycle " << cycle;
    SentPoint p{1000 + cycle, RandomVector(rng), {{"g", 9}}};
    r = server.Request("PUT", "/collections/clean/points", UpsertBody({p}).dump());
    ASSERT_EQ(r.status, 200) << r.error << r.body;
    points.push_back(p);
    ASSERT_EQ(server.Terminate(), 0) << "cycle " << cycle << ": " << server.last_exit() << "\n"
                                     << server.LogTail();
  }
  ASSERT_TRUE(server.Start(kArgs));
  EXPECT_EQ(ExactCount(server, "clean"), points.size());
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
}

}  // namespace
}  // namespace vectord
