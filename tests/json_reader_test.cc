// Tests of server/json_reader: the strict request-body JSON reader and the upsert fast path,
// randomized against nlohmann::json as the model, plus every rejection it promises.
#include "server/json_reader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

namespace vectord::server {
namespace {

Json RandomValue(std::mt19937& rng, int depth) {
  std::uniform_int_distribution<int> kind(0, depth > 4 ? 5 : 7);
  switch (kind(rng)) {
    case 0:
      return nullptr;
    case 1:
      return rng() % 2 == 0;
    case 2:
      return static_cast<uint64_t>(rng()) << (rng() % 32);
    case 3:
      return -static_cast<int64_t>(rng() % 1000000) - 1;
    case 4:
      return std::ldexp(static_cast<double>(rng()) - 2e9, static_cast<int>(rng() % 80) - 40);
    case 5: {
      std::string s;
      const char* pieces[] = {"a", "Z", "\"", "\\", "/", "\n", "\t", "\x01", "é", "日本", "😀", " "};
      for (int i = rng() % 8; i > 0; --i) s += pieces[rng() % 12];
      return s;
    }
    case 6: {
      Json a = Json::array();
      for (int i = rng() % 5; i > 0; --i) a.push_back(RandomValue(rng, depth + 1));
      return a;
    }
    default: {
      Json o = Json::object();
      for (int i = rng() % 5; i > 0; --i) {
        o["k" + std::to_string(rng() % 10)] = RandomValue(rng, depth + 1);
      }
      return o;
    }
  }
}

TEST(JsonReaderTest, RandomDocumentsRoundTripLikeNlohmann) {
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    Json doc = RandomValue(rng, 0);
    std::string text = doc.dump(i % 2 ? 2 : -1);
    auto parsed = ParseJson(text);
    ASSERT_TRUE(parsed.ok()) << text << " -> " << parsed.status().ToString();
    EXPECT_EQ(*parsed, Json::parse(text)) << text;
  }
}

TEST(JsonReaderTest, RejectsWhatIsNotStrictJson) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"", "end of input"},
      {"{\"a\":1,}", "string key"},
      {"[1,2", "byte 4"},
      {"{\"a\" 1}", "expected ':'"},
      {"NaN", "NaN"},
      {"[Infinity]", "NaN and Infinity"},
      {"[-Infinity]", "invalid number"},
      {"1e999", "out of range"},
      {"-1e400", "out of range"},
      {"01", "after the JSON value"},
      {"1.", "digit expected"},
      {".5", "unexpected character"},
      {"\"abc", "unterminated"},
      {"\"a\x01\"", "control character"},
      {"\"\\x\"", "invalid escape"},
      {"\"\\ud800\"", "surrogate"},
      {"\"\\udc00x\"", "surrogate"},
      {"\"\xff\"", "UTF-8"},
      {"\"\xc0\xaf\"", "UTF-8"},      // overlong '/'
      {"\"\xed\xa0\x80\"", "UTF-8"},  // encoded surrogate
      {"\"\xe6\x97\"", "UTF-8"},      // truncated
      {"{\"a\":1} {}", "after the JSON value"},
      {"tru", "invalid literal"},
  };
  for (const auto& c : cases) {
    auto r = ParseJson(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.error), std::string::npos)
        << c.text << " -> " << r.status().message();
  }
}

TEST(JsonReaderTest, DepthLimitWithoutRecursionBlowup) {
  std::string deep(1000000, '[');
  auto r = ParseJson(deep, 64);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting deeper than 64"), std::string::npos);
  std::string ok = std::string(64, '[') + std::string(64, ']');
  EXPECT_TRUE(ParseJson(ok, 64).ok());
  std::string over = std::string(65, '[') + std::string(65, ']');
  EXPECT_FALSE(ParseJson(over, 64).ok());
}

TEST(JsonReaderTest, NumbersKeepTheirKinds) {
  auto r = ParseJson(
      "[0, 18446744073709551615, -9223372036854775808, 18446744073709551616, 1.5, "
      "-0.0, 1e-400]");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE((*r)[0].is_number_unsigned());
  EXPECT_EQ((*r)[1].get<uint64_t>(), 18446744073709551615ull);
  EXPECT_EQ((*r)[2].get<int64_t>(), INT64_MIN);
  EXPECT_TRUE((*r)[3].is_number_float());  // too large for an integer id
  EXPECT_EQ((*r)[4].get<double>(), 1.5);
  EXPECT_EQ((*r)[6].get<double>(), 0.0);  // underflow rounds to zero
}

TEST(JsonReaderTest, UpsertBodyMatchesModel) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-10, 10);
  for (int round = 0; round < 50; ++round) {
    Json pts = Json::array();
    std::vector<std::vector<float>> vecs;
    size_t n = 1 + rng() % 20, dim = 1 + rng() % 16;
    for (size_t i = 0; i < n; ++i) {
      std::vector<float> v(dim);
      for (auto& x : v) x = d(rng);
      vecs.push_back(v);
      Json p = {{"vector", v}, {"id", i * 3}};
      if (i % 2) p["payload"] = RandomValue(rng, 5).is_object() ? Json{{"x", i}} : Json(nullptr);
      pts.push_back(p);
    }
    bool batch = round % 2;
    std::string text;
    if (batch) {
      Json ids = Json::array(), payloads = Json::array();
      for (const auto& p : pts) {
        ids.push_back(p["id"]);
        payloads.push_back(p.contains("payload") ? p["payload"] : Json(nullptr));
      }
      text = Json{{"batch", {{"ids", ids}, {"vectors", vecs}, {"payloads", payloads}}}}.dump();
    } else {
      text = Json{{"points", pts}, {"shard_key", nullptr}}.dump();
    }
    auto r = ParseUpsertBody(text, 1000);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->points.size(), n);
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(r->points[i].id, PointId::Num(i * 3));
      EXPECT_EQ(r->points[i].vector, vecs[i]);  // float -> text -> float is exact
      Json want = pts[i].contains("payload") ? pts[i]["payload"] : Json(nullptr);
      EXPECT_EQ(r->points[i].payload, want);
    }
  }
}

TEST(JsonReaderTest, UpsertBodyErrorsNameThePoint) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {R"({"points":[{"id":1,"vector":[1]},{"id":-2,"vector":[1]}]})", "points[1].id"},
      {R"({"points":[{"id":1.5,"vector":[1]}]})", "not an integer"},
      {R"({"points":[{"id":"zz","vector":[1]}]})", "zz"},
      {R"({"points":[{"id":1,"vector":[1,"a"]}]})", "points[0].vector: element 1 is not a number"},
      {R"({"points":[{"id":1,"vector":[3.5e38]}]})", "out of float32 range"},
      {R"({"points":[{"id":1,"vector":{"dense":[1]}}]})", "not supported"},
      {R"({"points":[{"id":1,"vector":[1],"payload":3}]})", "points[0].payload"},
      {R"({"points":[{"vector":[1]}]})", "missing field 'id'"},
      {R"({"points":[{"id":1,"vector":[1],"extra":0}]})", "unknown field 'extra'"},
      {R"({"batch":{"ids":[1],"vectors":[[1],[2]]}})", "1 ids but 2 vectors"},
      {R"({"batch":{"ids":[1],"vectors":[[1]],"payloads":[1]}})", "batch.payloads[0]"},
      {R"({"points":[],"batch":{}})", "either points or batch"},
      {R"({"update_filter":{"must":[]},"points":[]})", "not supported"},
      {R"({"pts":[]})", "pts"},
      {R"({})", "missing field 'points'"},
      {R"({"points":[{"id":1,"vector":[1]},{"id":2,"vector":[1]},{"id":3,"vector":[1]}]})",
       "more than 2 points"},
  };
  for (const auto& c : cases) {
    auto r = ParseUpsertBody(c.text, 2);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_NE(r.status().message().find(c.error), std::string::npos)
        << c.text << " -> " << r.status().message();
  }
}

TEST(JsonReaderTest, PointIds) {
  EXPECT_EQ(*PointIdFromJson(Json(7u), "id"), PointId::Num(7));
  auto u = PointIdFromJson(Json("550E8400-E29B-41D4-A716-446655440000"), "id");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->ToString(), "550e8400-e29b-41d4-a716-446655440000");
  EXPECT_FALSE(PointIdFromJson(Json(-1), "id").ok());
  EXPECT_FALSE(PointIdFromJson(Json(true), "id").ok());
  EXPECT_NE(PointIdFromJson(Json(nullptr), "points[4]").status().message().find("points[4]"),
            std::string::npos);
}

}  // namespace
}  // namespace vectord::server
