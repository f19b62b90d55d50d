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

#include "tests/itest_points.h"
#include "tests/test_server.h"

namespace vectord {
namespace {

using itest::HttpReply;
using itest::TestServer;
using namespace itest;  // NOLINT: the shared point-model helpers (itest_points.h)

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
    std::atomic<int> acked_this_cycle{0};
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
            ++acked_this_cycle;
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
    // Kill once every writer has had batches acknowledged on average (the writers keep going,
    // so the kill lands among requests in flight); the deadline only guards a hung server.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (acked_this_cycle.load() < 10 * kThreads && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    server.Kill9();
    stop = true;
    for (auto& th : threads) th.join();
    for (const auto& u : unexpected) ADD_FAILURE() << "cycle " << cycle << ": " << u;

    size_t acked_now = 0, in_flight_now = 0;
    for (const Batch& b : batches) {
      acked_now += b.state == Batch::State::kAcked;
      in_flight_now += b.state == Batch::State::kInFlight;
    }
    ASSERT_GE(acked_this_cycle.load(), 10 * kThreads)
        << "cycle " << cycle << ": batches acknowledged before the 120 s guard";
    ASSERT_GT(acked_now, 0u);

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
  const Json built =
      WaitInfo(server, name, [](const Json& i) { return i.value("indexed_vectors_count", 0) > 0; });
  ASSERT_GT(built.value("indexed_vectors_count", 0), 0) << "no index built within 300 s";
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

// kill -9 of a server with a SPANN index: first while the background build runs (status yellow,
// rows being assigned), then three times while clients query and write the indexed collection.
// After each crash `vectorctl check` finds the index consistent, the server comes back, the build
// finishes, every acknowledged point is there exactly, no deleted one is, and the index finds
// points by their own vectors.
TEST(CrashIntegration, Kill9DuringBuildAndWhileServingAnIndexedCollection) {
  const std::string name = "built";
  TestServer server;
  ASSERT_TRUE(server.Start());
  CreateCollection(server, name,
                   R"({"vectors":{"size":16,"distance":"Euclid"},
                       "spann_config":{"indexing_threshold":20000,"nprobe":64}})");
  std::mt19937_64 rng(41);
  std::map<uint64_t, SentPoint> live;
  std::set<uint64_t> deleted;
  for (uint64_t b = 0; b < 4; ++b) {
    std::vector<SentPoint> batch;
    for (uint64_t id = b * 5000; id < (b + 1) * 5000; ++id) {
      batch.push_back({id, RandomVector(rng), {{"i", static_cast<int64_t>(id)}}});
    }
    HttpReply r = server.Request("PUT", "/collections/" + name + "/points?wait=true",
                                 UpsertBody(batch).dump(), 60000);
    ASSERT_EQ(r.status, 200) << r.error << r.body;
    for (SentPoint& p : batch) live[p.id] = std::move(p);
  }
  // The last batch crossed the threshold: the build runs in the background. Kill it once the
  // collection reports the build under way.
  bool building = false;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
       !building && std::chrono::steady_clock::now() < deadline;) {
    const Json info = Parse(server.Request("GET", "/collections/" + name))["result"];
    building = info.value("status", "") == "yellow";
    ASSERT_EQ(info.value("indexed_vectors_count", 0), 0) << "the build finished before the kill";
  }
  ASSERT_TRUE(building);
  server.Kill9();

  // Requests sent but not acknowledged when the server died: applied or not, whole.
  std::vector<SentPoint> pending_upsert;
  std::vector<uint64_t> pending_delete;
  auto check_after_crash = [&](const std::string& when) {
    std::vector<Json> report = CheckDataDir(server.data_dir());
    ASSERT_EQ(report.size(), 1u) << when;
    EXPECT_TRUE(report[0].value("ok", false)) << when << ": " << report[0].dump();
    ASSERT_TRUE(server.Start()) << "restart " << when;
    // Settle the unacknowledged request from what the server holds; all-or-nothing.
    if (!pending_upsert.empty()) {
      std::vector<uint64_t> ids;
      for (const SentPoint& p : pending_upsert) ids.push_back(p.id);
      const size_t present = Retrieve(server, name, ids).size();
      ASSERT_TRUE(present == 0 || present == ids.size()) << when << ": partial upsert";
      if (present > 0) {
        for (SentPoint& p : pending_upsert) live[p.id] = std::move(p);
      }
    }
    if (!pending_delete.empty()) {
      const size_t present = Retrieve(server, name, pending_delete).size();
      ASSERT_TRUE(present == 0 || present == pending_delete.size()) << when << ": partial delete";
      if (present == 0) {
        for (uint64_t id : pending_delete) {
          live.erase(id);
          deleted.insert(id);
        }
      }
    }
    pending_upsert.clear();
    pending_delete.clear();
    // The build (re)runs to green and covers every point.
    const Json info = WaitInfo(server, name, [&](const Json& i) {
      return i.value("status", "") == "green" &&
             i.value("indexed_vectors_count", uint64_t{0}) == live.size();
    });
    ASSERT_EQ(info.value("status", ""), "green") << when << ": " << info.dump();
    EXPECT_EQ(info.value("indexed_vectors_count", uint64_t{0}), live.size()) << when;
    std::vector<uint64_t> ids;
    for (const auto& [id, p] : live) ids.push_back(id);
    ids.insert(ids.end(), deleted.begin(), deleted.end());
    std::map<uint64_t, Json> found = Retrieve(server, name, ids);
    for (const auto& [id, p] : live) {
      auto it = found.find(id);
      ASSERT_NE(it, found.end()) << when << ": acknowledged point " << id << " lost";
      ExpectSame(p, it->second);
    }
    for (uint64_t id : deleted) {
      EXPECT_EQ(found.count(id), 0u) << when << ": deleted point " << id << " is back";
    }
    EXPECT_EQ(PointsCount(server, name), live.size()) << when;
    // The index finds points by their own vectors (30 spread over the id range).
    for (size_t i = 0; i < 30; ++i) {
      const SentPoint& p = live[ids[i * (live.size() / 30)]];
      HttpReply r = server.Request("POST", "/collections/" + name + "/points/search",
                                   Json{{"vector", p.vector}, {"limit", 1}}.dump());
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(Parse(r)["result"][0]["id"].get<uint64_t>(), p.id) << when;
    }
  };
  check_after_crash("after kill -9 during the build");
  if (::testing::Test::HasFatalFailure()) return;

  uint64_t next_id = 100000;
  for (int cycle = 0; cycle < 3; ++cycle) {
    // One writer (upserts and deletes, wait=true) and two readers; the kill comes once the
    // writer has had 8 requests acknowledged, with the readers still querying.
    std::atomic<bool> stop{false};
    std::atomic<int> acked{0}, queries{0}, query_errors{0};
    std::mutex mu;  // guards live, deleted and the pending requests while the writer runs
    std::thread writer([&] {
      std::mt19937_64 wr(700 + cycle);
      while (!stop) {
        const bool del = wr() % 3 == 0 && live.size() > 100;
        if (del) {
          std::vector<uint64_t> ids;
          {
            std::lock_guard<std::mutex> l(mu);
            auto it = live.begin();
            std::advance(it, static_cast<long>(wr() % (live.size() - 50)));
            for (int i = 0; i < 50; ++i, ++it) ids.push_back(it->first);
          }
          pending_delete = ids;
          HttpReply r = server.Request("POST", "/collections/" + name + "/points/delete?wait=true",
                                       Json{{"points", ids}}.dump(), 10000);
          if (r.status != 200) return;  // the server is gone: settled after the restart
          std::lock_guard<std::mutex> l(mu);
          pending_delete.clear();
          for (uint64_t id : ids) {
            live.erase(id);
            deleted.insert(id);
          }
        } else {
          std::vector<SentPoint> batch;
          for (int i = 0; i < 100; ++i) {
            batch.push_back({next_id++, RandomVector(wr), {{"c", cycle}}});
          }
          pending_upsert = batch;
          HttpReply r = server.Request("PUT", "/collections/" + name + "/points?wait=true",
                                       UpsertBody(batch).dump(), 10000);
          if (r.status != 200) return;  // the server is gone: settled after the restart
          std::lock_guard<std::mutex> l(mu);
          pending_upsert.clear();
          for (SentPoint& p : batch) live[p.id] = std::move(p);
        }
        ++acked;
      }
    });
    std::vector<std::thread> readers;
    for (int t = 0; t < 2; ++t) {
      readers.emplace_back([&, t] {
        std::mt19937_64 qr(900 + t);
        while (!stop) {
          HttpReply r =
              server.Request("POST", "/collections/" + name + "/points/search",
                             Json{{"vector", RandomVector(qr)}, {"limit", 10}}.dump(), 10000);
          if (r.status == 0) return;  // the server is gone
          if (r.status != 200 || Parse(r)["result"].size() != 10) ++query_errors;
          ++queries;
        }
      });
    }
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
         acked.load() < 8 && std::chrono::steady_clock::now() < deadline;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    server.Kill9();
    stop = true;
    writer.join();
    for (auto& th : readers) th.join();
    ASSERT_GE(acked.load(), 8) << "cycle " << cycle;
    EXPECT_GT(queries.load(), 0) << "cycle " << cycle;
    EXPECT_EQ(query_errors.load(), 0) << "cycle " << cycle;
    check_after_crash("after kill -9 in cycle " + std::to_string(cycle));
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_EQ(server.Terminate(), 0) << server.last_exit() << "\n" << server.LogTail();
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
