// Helpers shared by the integration tests that drive a real server with points and compare it
// with a model of what was sent: filters, collection info, exact counts, retrieval in chunks,
// exact comparison of vectors and payloads, upsert bodies, random vectors.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_server.h"

namespace vectord::itest {

using Json = nlohmann::json;

constexpr int kDim = 16;

// Filter {"must":[{"key":key,"match":{"value":value}}]}.
inline Json MatchFilter(const std::string& key, const Json& value) {
  Json cond = {{"key", key}, {"match", {{"value", value}}}};
  Json must = Json::array();
  must.push_back(cond);
  return Json{{"must", must}};
}

// Parses a reply body; a JSON null if it is not JSON (the assertion then shows the body).
inline Json Parse(const HttpReply& r) {
  return Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
}

inline void CreateCollection(
    TestServer& server, const std::string& name,
    const std::string& body = R"({"vectors":{"size":16,"distance":"Euclid"}})") {
  HttpReply r = server.Request("PUT", "/collections/" + name, body);
  ASSERT_EQ(r.status, 200) << r.error << r.body;
}

inline uint64_t PointsCount(TestServer& server, const std::string& name) {
  HttpReply r = server.Request("GET", "/collections/" + name);
  EXPECT_EQ(r.status, 200) << r.error << r.body;
  Json j = Parse(r);
  if (!j.is_object() || !j.contains("result") || !j["result"].contains("points_count")) {
    ADD_FAILURE() << "collection info without result.points_count: " << r.body;
    return 0;
  }
  return j["result"]["points_count"].get<uint64_t>();
}

inline uint64_t ExactCount(TestServer& server, const std::string& name,
                           const Json& filter = nullptr) {
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
inline std::map<uint64_t, Json> Retrieve(TestServer& server, const std::string& name,
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
inline void ExpectSame(const SentPoint& sent, const Json& got) {
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

inline Json UpsertBody(const std::vector<SentPoint>& points) {
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

// kDim uniform components in [-1, 1).
inline std::vector<float> RandomVector(std::mt19937_64& rng, int dim = kDim) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(dim);
  for (float& x : v) x = u(rng);
  return v;
}

// Polls GET /collections/{name} until `done(result)` or the deadline (a guard against a hang,
// not a timing assumption). Returns the last result.
template <typename Pred>
Json WaitInfo(TestServer& server, const std::string& name, Pred done, int seconds = 300) {
  Json info;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
       std::chrono::steady_clock::now() < deadline;) {
    info = Parse(server.Request("GET", "/collections/" + name))["result"];
    if (info.is_object() && done(info)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return info;
}

}  // namespace vectord::itest
