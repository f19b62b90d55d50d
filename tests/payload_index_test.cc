// Tests for index/payload_index.h: building, insert/erase/update, value look-ups and range queries
// of keyword / integer / float / bool indexes against brute force over the same payloads.
#include "index/payload_index.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace vectord::index {
namespace {

using T = PayloadSchemaType;

PayloadIndexSet::RowSource Rows(const std::map<InternalId, Json>& rows) {
  return [&rows](const std::function<void(InternalId, const Json&)>& emit) {
    for (const auto& [r, p] : rows) emit(r, p);
  };
}

Roaring Of(std::initializer_list<uint32_t> v) {
  Roaring r;
  for (uint32_t x : v) r.add(x);
  return r;
}

TEST(PayloadIndexTest, BuildAndLookups) {
  std::map<InternalId, Json> rows = {
      {0, Json::parse(R"({"c": "red", "n": 3, "f": 1.5, "b": true})")},
      {1, Json::parse(R"({"c": ["red", "blue"], "n": [1, 3], "f": 2, "b": [false, true]})")},
      {2, Json::parse(R"({"c": 7, "n": 3.5, "f": "x", "b": "no"})")},
      {3, Json::parse(R"({"c": null, "n": null})")},
      {4, Json::parse(R"({"other": 1})")},
      {5, Json::parse(R"({"c": [["red"]], "n": 18446744073709551615})")},
  };
  PayloadIndexSet set;
  ASSERT_TRUE(set.Create("c", T::kKeyword, Rows(rows)).ok());
  ASSERT_TRUE(set.Create("n", T::kInteger, Rows(rows)).ok());
  ASSERT_TRUE(set.Create("f", T::kFloat, Rows(rows)).ok());
  ASSERT_TRUE(set.Create("b", T::kBool, Rows(rows)).ok());

  const FieldIndex* c = set.Get("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(*c->FindKeyword("red"), Of({0, 1}));
  EXPECT_EQ(*c->FindKeyword("blue"), Of({1}));
  EXPECT_EQ(c->FindKeyword("green"), nullptr);
  EXPECT_EQ(c->indexed(), Of({0, 1}));
  EXPECT_EQ(c->uncovered(), Of({2, 5}));  // 7 and a nested array; null is not a value

  const FieldIndex* n = set.Get("n");
  EXPECT_EQ(*n->FindInteger(3), Of({0, 1}));
  EXPECT_EQ(*n->FindInteger(1), Of({1}));
  EXPECT_EQ(n->uncovered(), Of({2, 5}));  // 3.5 and a value beyond int64
  Range r;
  r.gte = 2;
  EXPECT_EQ(n->RangeRows(r), Of({0, 1}));

  const FieldIndex* f = set.Get("f");
  r = Range();
  r.gt = 1.5;
  EXPECT_EQ(f->RangeRows(r), Of({1}));
  r.gt.reset();
  r.gte = 1.5;
  EXPECT_EQ(f->RangeRows(r), Of({0, 1}));
  EXPECT_EQ(f->uncovered(), Of({2}));

  const FieldIndex* b = set.Get("b");
  EXPECT_EQ(*b->FindBool(true), Of({0, 1}));
  EXPECT_EQ(*b->FindBool(false), Of({1}));
  EXPECT_EQ(b->uncovered(), Of({2}));

  auto list = set.List();
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].field, "b");
  EXPECT_EQ(list[1].field, "c");
  EXPECT_EQ(list[1].type, T::kKeyword);
  EXPECT_EQ(list[1].points, 2u);
  EXPECT_EQ(list[2].field, "f");
  EXPECT_EQ(list[2].points, 2u);
  EXPECT_EQ(list[3].points, 2u);

  EXPECT_TRUE(set.Drop("c"));
  EXPECT_FALSE(set.Drop("c"));
  EXPECT_EQ(set.Get("c"), nullptr);
  EXPECT_EQ(set.List().size(), 3u);
}

TEST(PayloadIndexTest, RejectsBadFieldPath) {
  PayloadIndexSet set;
  Status s = set.Create("a..b", T::kKeyword, nullptr);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("a..b"), std::string::npos) << s.message();
  EXPECT_TRUE(set.empty());
}

TEST(PayloadIndexTest, NestedPaths) {
  std::map<InternalId, Json> rows = {
      {0, Json::parse(R"({"a": {"b": [{"c": "x"}, {"c": ["y", "z"]}]}})")},
      {1, Json::parse(R"({"a": {"b": {"c": "x"}}})")},
  };
  PayloadIndexSet set;
  ASSERT_TRUE(set.Create("a.b[].c", T::kKeyword, Rows(rows)).ok());
  EXPECT_EQ(*set.Get("a.b[].c")->FindKeyword("z"), Of({0}));
  EXPECT_EQ(*set.Get("a.b[].c")->FindKeyword("x"), Of({0}));  // row 1's b is not an array
}

// Random inserts, erases and updates; every look-up and range query against brute force.
TEST(PayloadIndexTest, RandomizedAgainstBruteForce) {
  std::mt19937 rng(7);
  auto rnd = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto value = [&]() -> Json {
    switch (rnd(0, 5)) {
      case 0:
        return "k" + std::to_string(rnd(0, 20));
      case 1:
      case 2:
        return rnd(-50, 50);
      case 3:
        return rnd(-200, 200) / 4.0;
      case 4:
        return rnd(0, 1) == 1;
      default:
        return nullptr;
    }
  };
  auto payload = [&]() {
    Json p = Json::object();
    if (rnd(0, 9) < 8) {
      if (rnd(0, 3) == 0) {
        Json a = Json::array();
        for (int i = rnd(0, 3); i > 0; --i) a.push_back(value());
        p["v"] = a;
      } else {
        p["v"] = value();
      }
    }
    return p;
  };
  std::map<InternalId, Json> rows;
  for (InternalId r = 0; r < 3000; ++r) rows[r] = payload();
  // One set per type, all indexing the same field "v".
  PayloadIndexSet kw, in, fl, bo;
  ASSERT_TRUE(kw.Create("v", T::kKeyword, Rows(rows)).ok());
  ASSERT_TRUE(in.Create("v", T::kInteger, Rows(rows)).ok());
  ASSERT_TRUE(fl.Create("v", T::kFloat, Rows(rows)).ok());
  ASSERT_TRUE(bo.Create("v", T::kBool, Rows(rows)).ok());
  std::vector<PayloadIndexSet*> sets = {&kw, &in, &fl, &bo};
  InternalId next_row = 3000;

  auto values_of = [](const Json& p) {
    std::vector<Json> out;
    if (!p.contains("v")) return out;
    if (p["v"].is_array()) {
      for (const Json& e : p["v"]) out.push_back(e);
    } else {
      out.push_back(p["v"]);
    }
    return out;
  };

  for (int round = 0; round < 40; ++round) {
    // Mutations: updates in place, erases, and new rows.
    for (int m = 0; m < 300; ++m) {
      int op = rnd(0, 2);
      if (op == 0 && !rows.empty()) {
        auto it = rows.lower_bound(static_cast<InternalId>(rnd(0, next_row)));
        if (it == rows.end()) continue;
        Json np = payload();
        for (auto* s : sets) s->Update(it->first, it->second, np);
        it->second = np;
      } else if (op == 1 && !rows.empty()) {
        auto it = rows.lower_bound(static_cast<InternalId>(rnd(0, next_row)));
        if (it == rows.end()) continue;
        for (auto* s : sets) s->Erase(it->first, it->second);
        rows.erase(it);
      } else {
        Json np = payload();
        for (auto* s : sets) s->Insert(next_row, np);
        rows[next_row++] = np;
      }
    }
    // Brute force.
    std::map<std::string, Roaring> want_kw;
    std::map<int64_t, Roaring> want_int;
    Roaring want_bool[2], want_indexed[4], want_uncovered[4];
    std::vector<std::pair<double, InternalId>> nums, ints;
    for (const auto& [r, p] : rows) {
      for (const Json& v : values_of(p)) {
        if (v.is_null()) continue;
        bool is_str = v.is_string(), is_int = v.is_number_integer(), is_num = v.is_number(),
             is_bool = v.is_boolean();
        if (is_str) want_kw[v.get<std::string>()].add(r);
        if (is_int) {
          want_int[v.get<int64_t>()].add(r);
          ints.emplace_back(v.get<double>(), r);
        }
        if (is_num) nums.emplace_back(v.get<double>(), r);
        if (is_bool) want_bool[v.get<bool>()].add(r);
        bool taken[4] = {is_str, is_int, is_num, is_bool};
        for (int t = 0; t < 4; ++t) (taken[t] ? want_indexed[t] : want_uncovered[t]).add(r);
      }
    }
    for (int t = 0; t < 4; ++t) {
      const FieldIndex* idx = sets[t]->Get("v");
      ASSERT_EQ(idx->indexed(), want_indexed[t]) << "type " << t << " round " << round;
      ASSERT_EQ(idx->uncovered(), want_uncovered[t]) << "type " << t << " round " << round;
      ASSERT_EQ(sets[t]->List()[0].points, want_indexed[t].cardinality());
    }
    size_t kw_count = 0;
    kw.Get("v")->ForEachKeyword([&](const std::string& k, const Roaring& r) {
      ++kw_count;
      ASSERT_TRUE(want_kw.count(k)) << k;
      ASSERT_EQ(r, want_kw[k]) << k;
    });
    EXPECT_EQ(kw_count, want_kw.size());
    size_t int_count = 0;
    in.Get("v")->ForEachInteger([&](int64_t k, const Roaring& r) {
      ++int_count;
      ASSERT_EQ(r, want_int[k]) << k;
    });
    EXPECT_EQ(int_count, want_int.size());
    for (int b = 0; b < 2; ++b) ASSERT_EQ(*bo.Get("v")->FindBool(b == 1), want_bool[b]);

    for (int q = 0; q < 30; ++q) {
      Range range;
      if (rnd(0, 2) > 0) (rnd(0, 1) ? range.gt : range.gte) = rnd(-220, 220) / 4.0;
      if (rnd(0, 2) > 0) (rnd(0, 1) ? range.lt : range.lte) = rnd(-220, 220) / 4.0;
      for (auto [idx, data] : {std::pair{fl.Get("v"), &nums}, std::pair{in.Get("v"), &ints}}) {
        Roaring want;
        for (const auto& [v, r] : *data) {
          if (range.Contains(v)) want.add(r);
        }
        ASSERT_EQ(idx->RangeRows(range), want) << "round " << round;
      }
    }
  }
}

TEST(PayloadIndexTest, DuplicateValuesInOneRow) {
  PayloadIndexSet set;
  ASSERT_TRUE(set.Create("v", T::kFloat, nullptr).ok());
  Json p = Json::parse(R"({"v": [2.5, 2.5, 1]})");
  set.Insert(9, p);
  Range r;
  r.gte = 2;
  EXPECT_EQ(set.Get("v")->RangeRows(r), Of({9}));
  set.Erase(9, p);
  EXPECT_TRUE(set.Get("v")->RangeRows(r).isEmpty());
  EXPECT_TRUE(set.Get("v")->indexed().isEmpty());
  set.Insert(9, Json::parse(R"({"v": 3})"));
  EXPECT_EQ(set.Get("v")->RangeRows(r), Of({9}));
}

TEST(PayloadIndexTest, WideRangesOverManyContainers) {
  // 300k rows (five 65,536-row Roaring chunks): ranges from a few rows to nearly all, so that the
  // result is built from sparse (array) and dense (bitset) chunks, with gaps and a partial last
  // chunk; each against brute force.
  constexpr uint32_t kN = 300000;
  std::mt19937 rng(17);
  std::vector<double> value(kN);
  for (uint32_t r = 0; r < kN; ++r) {
    // Rows 70,000..140,000 hold values far above the rest: one chunk is nearly empty in most
    // ranges and full in others.
    value[r] = (r >= 70000 && r < 140000 ? 1000.0 : 0.0) + double(rng() % 100000) / 100.0;
  }
  // Most rows through the build (the sorted array), the last 1,000 inserted after it (pending).
  PayloadIndexSet set;
  ASSERT_TRUE(set.Create("v", T::kFloat,
                         [&](const std::function<void(InternalId, const Json&)>& emit) {
                           for (uint32_t r = 0; r + 1000 < kN; ++r) emit(r, Json{{"v", value[r]}});
                         })
                  .ok());
  for (uint32_t r = kN - 1000; r < kN; ++r) set.Insert(r, Json{{"v", value[r]}});
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{
           {0, 0.05}, {10, 20}, {0, 500}, {0, 999}, {500, 1500}, {1000, 2000}, {-1, 3000}}) {
    Range range;
    range.gte = lo;
    range.lt = hi;
    Roaring want;
    for (uint32_t r = 0; r < kN; ++r) {
      if (value[r] >= lo && value[r] < hi) want.add(r);
    }
    const Roaring got = set.Get("v")->RangeRows(range);
    EXPECT_EQ(got.cardinality(), want.cardinality()) << lo << ".." << hi;
    EXPECT_TRUE(got == want) << lo << ".." << hi;
  }
}

}  // namespace
}  // namespace vectord::index
