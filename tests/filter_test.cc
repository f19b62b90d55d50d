// Tests for index/filter.h: ParseFilter errors (with JSON paths), the semantics of every condition
// on hand-written payloads, and Select() with and without payload indexes against a reference
// evaluator written here directly over the filter JSON.
#include "index/filter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "index/payload_index.h"
#include "tests/filter_reference.h"

namespace vectord {
namespace {

using filter_ref::RandomData;
using filter_ref::RefFilter;
using filter_ref::ToPointId;
using index::FilterContext;
using index::PayloadIndexSet;

FilterPtr MustParse(const std::string& text) {
  auto f = ParseFilter(Json::parse(text));
  EXPECT_TRUE(f.ok()) << text << " -> " << f.status().ToString();
  return f.ok() ? f.value() : nullptr;
}

bool M(const std::string& filter, const std::string& payload) {
  FilterPtr f = MustParse(filter);
  if (!f) return false;
  Json p = Json::parse(payload);
  return index::MatchesPayload(*f, &p, nullptr);
}

// ------------------------------------------------------------------------------------------------
// Parse errors

struct BadCase {
  const char* json;
  const char* message;  // must appear in the error
};

TEST(FilterParseTest, ErrorsNameThePath) {
  const BadCase cases[] = {
      {R"([1])", "filter: expected a filter object, got [1]"},
      {R"({"must": [], "foo": 1})", "filter.foo: unknown field"},
      {R"({"must": 5})", "filter.must: expected a condition object, got 5"},
      {R"({"must": [{"key": "a", "match": {"value": 1}}, {"key": "a", "range": {"gt": "x"}}]})",
       "filter.must[1].range.gt: expected a finite number, got \"x\""},
      {R"({"must": [{"bar": 1}]})", "filter.must[0].bar: unknown condition"},
      {R"({"should": {"key": "a", "match": {}}})", "filter.should.match: expected exactly one"},
      {R"({"must": {"key": "a", "match": {"value": 1, "any": [1]}}})",
       "filter.must.match: expected exactly one"},
      {R"({"must": {"key": "a", "match": {"value": 1.5}}})",
       "filter.must.match.value: expected a string, 64-bit integer or boolean, got 1.5"},
      {R"({"must": {"key": "a", "match": {"value": null}}})", "filter.must.match.value: expected"},
      {R"({"must": {"key": "a", "match": {"any": ["x", 2]}}})",
       "filter.must.match.any[1]: expected a string like the first element, got 2"},
      {R"({"must": {"key": "a", "match": {"except": [1, "x"]}}})",
       "filter.must.match.except[1]: expected a 64-bit integer"},
      {R"({"must": {"key": "a", "match": {"any": "x"}}})",
       "filter.must.match.any: expected an array"},
      {R"({"must": {"key": "a", "match": {"text": 3}}})",
       "filter.must.match.text: expected a string"},
      {R"({"must": {"key": "a", "match": {"phrase": "x"}}})",
       "filter.must.match.phrase: match phrase is not supported"},
      {R"({"must": {"key": "a", "match": {"foo": "x"}}})", "filter.must.match.foo: unknown match"},
      {R"({"must": {"key": 5, "match": {"value": 1}}})",
       "filter.must.key: expected a payload key string, got 5"},
      {R"({"must": {"key": "a..b", "match": {"value": 1}}})",
       "filter.must.key: invalid payload key \"a..b\""},
      {R"({"must": {"key": "a[x]", "match": {"value": 1}}})",
       "filter.must.key: invalid payload key"},
      {R"({"must": {"key": "", "match": {"value": 1}}})", "filter.must.key: invalid payload key"},
      {R"({"must": {"key": "a."}})", "filter.must.key: invalid payload key"},
      {R"({"must": {"key": "a"}})", "filter.must: a field condition needs one of"},
      {R"({"must": {"key": "a", "match": {"value": 1}, "range": {"gt": 1}}})",
       "filter.must: a field condition takes exactly one of match, range, values_count, is_empty, "
       "is_null; got both match and range"},
      {R"({"must": {"key": "a", "range": {"gt": 1, "between": 2}}})",
       "filter.must.range.between: unknown field"},
      {R"({"must": {"key": "a", "range": [1]}})", "filter.must.range: expected an object"},
      {R"({"must": {"key": "a", "values_count": {"gt": -1}}})",
       "filter.must.values_count.gt: expected a non-negative integer, got -1"},
      {R"({"must": {"key": "a", "is_empty": "yes"}})",
       "filter.must.is_empty: expected true or false"},
      {R"({"must": {"key": "a", "geo_radius": {}}})",
       "filter.must.geo_radius: geo conditions are not supported"},
      {R"({"must": {"key": "a", "foo": 1}})", "filter.must.foo: unknown field"},
      {R"({"must": {"is_empty": {"key": 1}}})", "filter.must.is_empty.key: expected a payload key"},
      {R"({"must": {"is_empty": "a"}})", "filter.must.is_empty: expected an object"},
      {R"({"must": {"is_null": {"key": "a", "x": 1}}})", "filter.must.is_null.x: unknown field"},
      {R"({"must": {"is_null": {"key": "a"}, "x": 1}})", "filter.must.x: unknown field"},
      {R"({"must": {"has_id": [1, -2]}})",
       "filter.must.has_id[1]: expected an unsigned integer or a UUID string, got -2"},
      {R"({"must": {"has_id": [1, "nope"]}})", "filter.must.has_id[1]: "},
      {R"({"must": {"has_id": 1}})", "filter.must.has_id: expected an array"},
      {R"({"must": {"has_vector": "v"}})",
       "filter.must: the has_vector condition is not supported"},
      {R"({"must": {"nested": {"key": "a"}}})", "filter.must.nested: missing field \"filter\""},
      {R"({"must": {"nested": {"key": "a", "filter": {}, "x": 1}}})",
       "filter.must.nested.x: unknown field"},
      {R"({"must": {"nested": {"key": "a", "filter": {"must": {"has_id": [1]}}}}})",
       "filter.must.nested.filter.must: has_id is not supported inside a nested filter"},
      {R"({"must": {"nested": {"key": "a", "filter": {"must": {"key": "b", "match": {"value": 1.5}}}}}})",
       "filter.must.nested.filter.must.match.value: expected"},
      {R"({"min_should": {"conditions": [], "min_count": 0}})",
       "filter.min_should.min_count: must be 1 or larger"},
      {R"({"min_should": {"min_count": 1}})", "filter.min_should: missing field \"conditions\""},
      {R"({"min_should": {"conditions": {}, "min_count": 1}})",
       "filter.min_should.conditions: expected an array"},
      {R"({"min_should": {"conditions": [], "min_count": 1, "z": 0}})",
       "filter.min_should.z: unknown field"},
      {R"({"should": [{"must": [{"key": "a", "match": {"text": 1}}]}]})",
       "filter.should[0].must[0].match.text: expected a string"},
  };
  for (const BadCase& c : cases) {
    auto f = ParseFilter(Json::parse(c.json));
    ASSERT_FALSE(f.ok()) << c.json;
    EXPECT_EQ(f.status().code(), Status::Code::kInvalidArgument) << c.json;
    EXPECT_NE(f.status().message().find(c.message), std::string::npos)
        << c.json << "\n  got:  " << f.status().message() << "\n  want: " << c.message;
  }
}

TEST(FilterParseTest, NonFiniteNumbersAreRejected) {
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {std::nan(""), inf, -inf}) {
    Json j;
    j["must"] = Json::array({{{"key", "a"}, {"range", {{"lt", 1}, {"gte", bad}}}}});
    auto f = ParseFilter(j);
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.status().message().find("filter.must[0].range.gte: expected a finite number"),
              std::string::npos)
        << f.status().message();
  }
}

TEST(FilterParseTest, PathPrefixAndNull) {
  auto f = ParseFilter(Json::parse(R"({"must": {"bad": 1}})"), "search[2].filter");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("search[2].filter.must.bad"), std::string::npos);
  auto n = ParseFilter(Json(nullptr));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n.value(), nullptr);
}

Json Deep(int levels) {
  Json j = Json::parse(R"({"key": "a", "match": {"value": 1}})");
  for (int i = 0; i < levels; ++i) j = Json{{"must", Json::array({std::move(j)})}};
  return j;
}

TEST(FilterParseTest, DepthIsGuarded) {
  EXPECT_TRUE(ParseFilter(Deep(kMaxFilterDepth)).ok());
  auto f = ParseFilter(Deep(kMaxFilterDepth + 1));
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("nested deeper than 64 levels"), std::string::npos)
      << f.status().message();
  // Far deeper input fails the same way instead of overflowing the stack.
  EXPECT_FALSE(ParseFilter(Deep(5000)).ok());
  // Nested conditions count too.
  Json n = Json::object();
  for (int i = 0; i < 100; ++i) {
    n = Json{{"must", {{"nested", {{"key", "a"}, {"filter", std::move(n)}}}}}};
  }
  EXPECT_FALSE(ParseFilter(n).ok());
}

TEST(FilterParseTest, AcceptsQdrantShapes) {
  EXPECT_TRUE(MustParse(R"({})"));
  EXPECT_TRUE(MustParse(R"({"must": null, "should": null, "must_not": null, "min_should": null})"));
  EXPECT_TRUE(MustParse(R"({"must": {"key": "a", "match": {"value": "x"}}})"));
  EXPECT_TRUE(MustParse(R"({"must": [{"key": "a.b[].c", "range": {"gt": null, "lt": 3}}]})"));
  EXPECT_TRUE(MustParse(R"({"must": [{"key": "a[2].\"x.y\"", "match": {"value": 1}}]})"));
  EXPECT_TRUE(MustParse(R"({"must": [{"has_id": [1, "550e8400-e29b-41d4-a716-446655440000"]}]})"));
  EXPECT_TRUE(MustParse(R"({"must": [{"key": "a", "match": {"any": []}}]})"));
  EXPECT_TRUE(MustParse(R"({"must": [{"key": "a", "match": {"value": 1}, "range": null}]})"));
}

// ------------------------------------------------------------------------------------------------
// Semantics on hand-written payloads

TEST(FilterEvalTest, MatchValue) {
  const char* f_str = R"({"must": {"key": "c", "match": {"value": "red"}}})";
  EXPECT_TRUE(M(f_str, R"({"c": "red"})"));
  EXPECT_TRUE(M(f_str, R"({"c": ["blue", "red"]})"));
  EXPECT_FALSE(M(f_str, R"({"c": "Red"})"));
  EXPECT_FALSE(M(f_str, R"({"c": [["red"]]})"));  // arrays in arrays are not flattened
  EXPECT_FALSE(M(f_str, R"({"d": "red"})"));
  const char* f_int = R"({"must": {"key": "n", "match": {"value": 3}}})";
  EXPECT_TRUE(M(f_int, R"({"n": 3})"));
  EXPECT_FALSE(M(f_int, R"({"n": 3.0})"));  // integers match integers only
  EXPECT_FALSE(M(f_int, R"({"n": "3"})"));
  EXPECT_FALSE(M(f_int, R"({"n": true})"));
  EXPECT_TRUE(M(R"({"must": {"key": "n", "match": {"value": -3}}})", R"({"n": [1, -3]})"));
  const char* f_bool = R"({"must": {"key": "b", "match": {"value": true}}})";
  EXPECT_TRUE(M(f_bool, R"({"b": true})"));
  EXPECT_FALSE(M(f_bool, R"({"b": 1})"));
  EXPECT_FALSE(M(f_bool, R"({"b": false})"));
  // No payload at all.
  FilterPtr f = MustParse(f_bool);
  EXPECT_FALSE(index::MatchesPayload(*f, nullptr, nullptr));
}

TEST(FilterEvalTest, MatchAnyExceptText) {
  const char* any = R"({"must": {"key": "c", "match": {"any": ["a", "b"]}}})";
  EXPECT_TRUE(M(any, R"({"c": "b"})"));
  EXPECT_TRUE(M(any, R"({"c": ["z", "a"]})"));
  EXPECT_FALSE(M(any, R"({"c": "z"})"));
  EXPECT_FALSE(M(R"({"must": {"key": "c", "match": {"any": []}}})", R"({"c": "z"})"));
  EXPECT_TRUE(M(R"({"must": {"key": "c", "match": {"any": [1, 2]}}})", R"({"c": 2})"));
  EXPECT_FALSE(M(R"({"must": {"key": "c", "match": {"any": [1, 2]}}})", R"({"c": 2.0})"));

  const char* ex = R"({"must": {"key": "c", "match": {"except": ["a", "b"]}}})";
  EXPECT_TRUE(M(ex, R"({"c": "z"})"));
  EXPECT_FALSE(M(ex, R"({"c": "a"})"));
  EXPECT_TRUE(M(ex, R"({"c": ["a", "z"]})"));  // one value outside the list is enough
  EXPECT_FALSE(M(ex, R"({"c": ["a", "b"]})"));
  EXPECT_TRUE(M(ex, R"({"c": 5})"));  // another type is "not one of them"
  EXPECT_FALSE(M(ex, R"({"c": null})"));
  EXPECT_FALSE(M(ex, R"({})"));
  EXPECT_FALSE(M(ex, R"({"c": []})"));
  const char* ex_int = R"({"must": {"key": "c", "match": {"except": [1]}}})";
  EXPECT_TRUE(M(ex_int, R"({"c": 1.0})"));
  EXPECT_FALSE(M(ex_int, R"({"c": 1})"));
  EXPECT_TRUE(M(ex_int, R"({"c": "1"})"));

  const char* text = R"({"must": {"key": "t", "match": {"text": "ell"}}})";
  EXPECT_TRUE(M(text, R"({"t": "hello"})"));
  EXPECT_FALSE(M(text, R"({"t": "HELLO"})"));  // case-sensitive
  EXPECT_TRUE(M(text, R"({"t": ["x", "bell"]})"));
  EXPECT_FALSE(M(text, R"({"t": 5})"));
}

TEST(FilterEvalTest, Range) {
  const char* r = R"({"must": {"key": "p", "range": {"gt": 1, "lte": 5.5}}})";
  EXPECT_FALSE(M(r, R"({"p": 1})"));
  EXPECT_TRUE(M(r, R"({"p": 1.0001})"));
  EXPECT_TRUE(M(r, R"({"p": 5.5})"));
  EXPECT_TRUE(M(r, R"({"p": 5})"));
  EXPECT_FALSE(M(r, R"({"p": 6})"));
  EXPECT_TRUE(M(r, R"({"p": [0, 9, 3]})"));
  EXPECT_FALSE(M(r, R"({"p": "3"})"));
  EXPECT_FALSE(M(r, R"({"p": true})"));
  EXPECT_FALSE(M(r, R"({"p": null})"));
  EXPECT_TRUE(M(R"({"must": {"key": "p", "range": {}}})", R"({"p": -1e300})"));
  EXPECT_FALSE(M(R"({"must": {"key": "p", "range": {}}})", R"({"p": "x"})"));
}

TEST(FilterEvalTest, ValuesCountIsEmptyIsNull) {
  const char* vc = R"({"must": {"key": "a", "values_count": {"gte": 2, "lt": 4}}})";
  EXPECT_FALSE(M(vc, R"({"a": 1})"));
  EXPECT_TRUE(M(vc, R"({"a": [1, 2]})"));
  EXPECT_TRUE(M(vc, R"({"a": [1, 2, null]})"));
  EXPECT_FALSE(M(vc, R"({"a": [1, 2, 3, 4]})"));
  EXPECT_FALSE(M(vc, R"({})"));
  const char* vc0 = R"({"must": {"key": "a", "values_count": {"lt": 1}}})";
  EXPECT_TRUE(M(vc0, R"({})"));
  EXPECT_TRUE(M(vc0, R"({"a": null})"));
  EXPECT_TRUE(M(vc0, R"({"a": []})"));
  EXPECT_FALSE(M(vc0, R"({"a": "x"})"));

  const char* ie = R"({"must": {"is_empty": {"key": "a"}}})";
  EXPECT_TRUE(M(ie, R"({})"));
  EXPECT_TRUE(M(ie, R"({"a": null})"));
  EXPECT_TRUE(M(ie, R"({"a": []})"));
  EXPECT_FALSE(M(ie, R"({"a": [null]})"));
  EXPECT_FALSE(M(ie, R"({"a": 0})"));
  EXPECT_FALSE(M(ie, R"({"a": ""})"));
  FilterPtr f = MustParse(ie);
  EXPECT_TRUE(index::MatchesPayload(*f, nullptr, nullptr));
  EXPECT_FALSE(M(R"({"must": {"key": "a", "is_empty": false}})", R"({"a": []})"));
  EXPECT_TRUE(M(R"({"must": {"key": "a", "is_empty": false}})", R"({"a": [1]})"));

  const char* in = R"({"must": {"is_null": {"key": "a"}}})";
  EXPECT_TRUE(M(in, R"({"a": null})"));
  EXPECT_TRUE(M(in, R"({"a": [1, null]})"));
  EXPECT_FALSE(M(in, R"({})"));
  EXPECT_FALSE(M(in, R"({"a": []})"));
  EXPECT_FALSE(M(in, R"({"a": 0})"));
  EXPECT_TRUE(M(R"({"must": {"key": "a", "is_null": false}})", R"({"a": 0})"));
}

TEST(FilterEvalTest, KeyPaths) {
  const char* doc = R"({"a": {"b": [{"c": 1}, {"c": [2, 3]}], "x.y": "q"}, "m": [[1, 2], [3]]})";
  EXPECT_TRUE(M(R"({"must": {"key": "a.b[].c", "match": {"value": 3}}})", doc));
  EXPECT_TRUE(M(R"({"must": {"key": "a.b[0].c", "match": {"value": 1}}})", doc));
  EXPECT_FALSE(M(R"({"must": {"key": "a.b[0].c", "match": {"value": 2}}})", doc));
  EXPECT_FALSE(M(R"({"must": {"key": "a.b.c", "match": {"value": 1}}})", doc));  // needs []
  EXPECT_TRUE(M(R"({"must": {"key": "a.\"x.y\"", "match": {"value": "q"}}})", doc));
  EXPECT_TRUE(M(R"({"must": {"key": "m[][]", "match": {"value": 3}}})", doc));
  EXPECT_FALSE(M(R"({"must": {"key": "m", "match": {"value": 3}}})", doc));
  EXPECT_TRUE(M(R"({"must": {"key": "a.b", "values_count": {"gte": 2, "lte": 2}}})", doc));
  EXPECT_TRUE(M(R"({"must": {"key": "a.b[].c", "values_count": {"gte": 2}}})", doc));
}

TEST(FilterEvalTest, BooleanStructure) {
  const char* doc = R"({"a": 1, "b": "x"})";
  EXPECT_TRUE(M(R"({"must": [], "should": [], "must_not": []})", doc));
  EXPECT_TRUE(M(
      R"({"should": [{"key": "a", "match": {"value": 2}}, {"key": "b", "match": {"value": "x"}}]})",
      doc));
  EXPECT_FALSE(M(
      R"({"should": [{"key": "a", "match": {"value": 2}}, {"key": "b", "match": {"value": "y"}}]})",
      doc));
  EXPECT_FALSE(M(
      R"({"must_not": [{"key": "a", "match": {"value": 2}}, {"key": "b", "match": {"value": "x"}}]})",
      doc));
  EXPECT_TRUE(M(
      R"({"must_not": [{"key": "a", "match": {"value": 2}}, {"key": "b", "match": {"value": "y"}}]})",
      doc));
  const char* ms = R"({"min_should": {"min_count": 2, "conditions": [
      {"key": "a", "match": {"value": 1}}, {"key": "b", "match": {"value": "y"}},
      {"key": "c", "is_empty": true}]}})";
  EXPECT_TRUE(M(ms, doc));
  EXPECT_FALSE(M(ms, R"({"a": 1, "b": "x", "c": 3})"));
  EXPECT_FALSE(M(R"({"min_should": {"min_count": 1, "conditions": []}})", doc));
  EXPECT_TRUE(M(R"({"must": {"must_not": {"key": "a", "match": {"value": 2}}}})", doc));
  EXPECT_TRUE(M(R"({"must": [{}]})", doc));
}

TEST(FilterEvalTest, NestedAppliesToEachElement) {
  const char* doc =
      R"({"diet": [{"food": "meat", "likes": false}, {"food": "leaves", "likes": true}],
                        "obj": {"food": "meat", "likes": true}})";
  const char* both = R"({"must": [{"nested": {"key": "diet", "filter": {"must": [
      {"key": "food", "match": {"value": "meat"}}, {"key": "likes", "match": {"value": true}}]}}}]})";
  EXPECT_FALSE(M(both, doc));  // no single element satisfies both
  // The flattened (non-nested) form does match: different elements satisfy each condition.
  EXPECT_TRUE(M(R"({"must": [{"key": "diet[].food", "match": {"value": "meat"}},
                              {"key": "diet[].likes", "match": {"value": true}}]})",
                doc));
  EXPECT_TRUE(M(R"({"must": {"nested": {"key": "diet[]", "filter": {"must": [
      {"key": "food", "match": {"value": "leaves"}}, {"key": "likes", "match": {"value": true}}]}}}})",
                doc));
  EXPECT_TRUE(M(R"({"must": {"nested": {"key": "diet", "filter": {"must_not": [
      {"key": "likes", "match": {"value": true}}]}}}})",
                doc));
  EXPECT_FALSE(M(R"({"must": {"nested": {"key": "obj", "filter": {}}}})", doc));  // not an array
  EXPECT_FALSE(M(R"({"must": {"nested": {"key": "none", "filter": {}}}})", doc));
}

TEST(FilterEvalTest, HasId) {
  auto uuid = PointId::ParseUuid("550e8400-e29b-41d4-a716-446655440000");
  ASSERT_TRUE(uuid.ok());
  FilterPtr f = MustParse(R"({"must": {"has_id": [7, "550E8400-E29B-41D4-A716-446655440000"]}})");
  ASSERT_TRUE(f);
  Json p = Json::object();
  PointId seven = PointId::Num(7), eight = PointId::Num(8);
  EXPECT_TRUE(index::MatchesPayload(*f, &p, &seven));
  EXPECT_FALSE(index::MatchesPayload(*f, &p, &eight));
  EXPECT_TRUE(index::MatchesPayload(*f, &p, &uuid.value()));
  EXPECT_FALSE(index::MatchesPayload(*f, &p, nullptr));
}

// ------------------------------------------------------------------------------------------------
// Randomized: Select() with and without indexes against a reference evaluator over the JSON.

TEST(FilterSelectTest, RandomizedAgainstReference) {
  RandomData rd(12345);
  const size_t kRows = 300;
  std::vector<Json> payloads(kRows);
  std::vector<Json> ids(kRows);
  std::map<PointId, InternalId> by_id;
  for (size_t r = 0; r < kRows; ++r) {
    payloads[r] = rd.Payload();
    ids[r] = RandomData::IdOf(static_cast<int>(r));
    by_id[ToPointId(ids[r])] = static_cast<InternalId>(r);
  }
  Roaring live;
  for (size_t r = 0; r < kRows; ++r) {
    if (r % 7 != 3) live.add(static_cast<uint32_t>(r));
  }
  auto payload_of = [&](InternalId r) -> const Json* {
    return payloads[r].is_null() ? nullptr : &payloads[r];
  };
  FilterContext plain;
  plain.payload = payload_of;
  plain.point_id = [&](InternalId r) { return ToPointId(ids[r]); };
  FilterContext with_lookup = plain;
  with_lookup.lookup = [&](const PointId& id) -> std::optional<InternalId> {
    auto it = by_id.find(id);
    if (it == by_id.end()) return std::nullopt;
    return it->second;
  };

  // Two index sets: types that fit most of the data, and types that mostly do not.
  using T = PayloadSchemaType;
  const std::vector<std::vector<std::pair<std::string, T>>> layouts = {
      {{"kw", T::kKeyword},
       {"num", T::kInteger},
       {"flag", T::kBool},
       {"tags", T::kKeyword},
       {"obj.x", T::kFloat},
       {"items[].k", T::kKeyword},
       {"items[].v", T::kInteger}},
      {{"kw", T::kInteger},
       {"num", T::kFloat},
       {"flag", T::kKeyword},
       {"tags", T::kBool},
       {"obj.x", T::kInteger},
       {"obj.y", T::kKeyword},
       {"items[].v", T::kFloat}},
  };
  std::vector<PayloadIndexSet> sets(layouts.size());
  for (size_t s = 0; s < layouts.size(); ++s) {
    for (const auto& [field, type] : layouts[s]) {
      ASSERT_TRUE(sets[s]
                      .Create(field, type,
                              [&](const std::function<void(InternalId, const Json&)>& emit) {
                                for (uint32_t r : live) {
                                  if (!payloads[r].is_null()) emit(r, payloads[r]);
                                }
                              })
                      .ok());
    }
  }

  size_t nonempty = 0, total = 0;
  for (int iter = 0; iter < 700; ++iter) {
    // Mutate a few rows between filters, keeping the indexes up to date.
    for (int m = 0; m < 2; ++m) {
      uint32_t r = static_cast<uint32_t>(rd.Int(0, kRows - 1));
      if (!live.contains(r)) continue;
      Json next = rd.Payload();
      for (auto& set : sets) {
        const Json empty = Json::object();
        set.Update(r, payloads[r].is_null() ? empty : payloads[r], next.is_null() ? empty : next);
      }
      payloads[r] = next;
    }
    Json fj = rd.Filter(1, false, kRows);
    auto parsed = ParseFilter(fj);
    ASSERT_TRUE(parsed.ok()) << fj.dump() << ": " << parsed.status().ToString();
    const Filter& f = *parsed.value();
    Roaring want;
    for (uint32_t r : live) {
      const Json* p = payload_of(r);
      bool ref = RefFilter(fj, p, ids[r]);
      if (ref) want.add(r);
      ASSERT_EQ(index::Matches(f, r, plain), ref)
          << fj.dump() << "\nrow " << r << ": " << payloads[r].dump();
    }
    ++total;
    nonempty += !want.isEmpty() && want.cardinality() < live.cardinality();
    ASSERT_EQ(index::Select(&f, live, plain), want) << fj.dump();
    ASSERT_EQ(index::Select(&f, live, with_lookup), want) << fj.dump();
    for (size_t s = 0; s < sets.size(); ++s) {
      FilterContext ctx = with_lookup;
      ctx.indexes = &sets[s];
      Roaring got = index::Select(&f, live, ctx);
      if (got != want) {
        Roaring extra = got - want, missing = want - got;
        uint32_t r = !extra.isEmpty() ? extra.minimum() : missing.minimum();
        FAIL() << "layout " << s << " filter " << fj.dump() << "\nrow " << r << " "
               << payloads[r].dump() << " expected " << want.contains(r);
      }
    }
  }
  // The generator must produce selective filters, not only all-or-nothing ones.
  EXPECT_GT(nonempty, total / 4);
  EXPECT_EQ(index::Select(nullptr, live, plain), live);
}

// Index-backed selection on a larger keyword/integer data set matches the payload scan.
TEST(FilterSelectTest, IndexedFieldsWithForeignTypes) {
  std::vector<Json> payloads;
  for (int i = 0; i < 3000; ++i) {
    Json p;
    // Mostly strings, some integers, in the keyword field; ints and floats in the integer field.
    p["city"] = i % 10 == 0 ? Json(i % 7) : Json("c" + std::to_string(i % 13));
    p["year"] = i % 9 == 0 ? Json(1990.5 + i % 30) : Json(1990 + i % 30);
    payloads.push_back(p);
  }
  PayloadIndexSet set;
  auto feed = [&](const std::function<void(InternalId, const Json&)>& emit) {
    for (size_t i = 0; i < payloads.size(); ++i) emit(static_cast<InternalId>(i), payloads[i]);
  };
  ASSERT_TRUE(set.Create("city", PayloadSchemaType::kKeyword, feed).ok());
  ASSERT_TRUE(set.Create("year", PayloadSchemaType::kInteger, feed).ok());
  Roaring live;
  live.addRange(0, payloads.size());
  FilterContext ctx;
  ctx.payload = [&](InternalId r) { return &payloads[r]; };
  FilterContext indexed = ctx;
  indexed.indexes = &set;
  size_t payload_reads = 0;
  indexed.payload = [&](InternalId r) {
    ++payload_reads;
    return &payloads[r];
  };
  for (const char* text : {
           R"({"must": [{"key": "city", "match": {"value": "c3"}}]})",
           R"({"must": [{"key": "city", "match": {"value": 3}}]})",
           R"({"must": [{"key": "city", "match": {"except": ["c1", "c2"]}}]})",
           R"({"must": [{"key": "year", "range": {"gte": 2000, "lt": 2010}}]})",
           R"({"should": [{"key": "year", "match": {"any": [1995, 2001]}},
                          {"key": "city", "match": {"text": "c1"}}]})",
           R"({"must_not": [{"key": "year", "range": {"gt": 1995}}]})",
       }) {
    FilterPtr f = MustParse(text);
    ASSERT_TRUE(f);
    EXPECT_EQ(index::Select(f.get(), live, indexed), index::Select(f.get(), live, ctx)) << text;
  }
  // A pure keyword match on an index reads no payloads beyond the uncovered (integer) rows.
  payload_reads = 0;
  FilterPtr f = MustParse(R"({"must": [{"key": "city", "match": {"value": "c3"}}]})");
  Roaring got = index::Select(f.get(), live, indexed);
  EXPECT_GT(got.cardinality(), 100u);
  EXPECT_LE(payload_reads, set.Get("city")->uncovered().cardinality());
}

}  // namespace
}  // namespace vectord
