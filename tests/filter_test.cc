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

namespace vectord {
namespace {

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

// Reference path lookup: "a.b[].c" style (no quotes, no numeric indexes).
void RefResolve(const Json& v, const std::vector<std::string>& segs, size_t i, bool flat,
                std::vector<Json>* out) {
  std::string s = segs[i];
  bool wildcard = s.size() > 2 && s.substr(s.size() - 2) == "[]";
  if (wildcard) s.resize(s.size() - 2);
  if (!v.is_object() || !v.contains(s)) return;
  const Json& child = v.at(s);
  std::vector<const Json*> next;
  if (wildcard) {
    if (!child.is_array()) return;
    for (const Json& e : child) next.push_back(&e);
  } else {
    next.push_back(&child);
  }
  const bool last = i + 1 == segs.size();
  for (const Json* n : next) {
    if (!last) {
      RefResolve(*n, segs, i + 1, flat, out);
    } else if (flat && !wildcard && n->is_array()) {
      for (const Json& e : *n) out->push_back(e);
    } else {
      out->push_back(*n);
    }
  }
}

std::vector<Json> RefValues(const Json* payload, const std::string& key, bool flat) {
  std::vector<Json> out;
  if (payload == nullptr) return out;
  std::vector<std::string> segs;
  size_t start = 0;
  for (size_t i = 0; i <= key.size(); ++i) {
    if (i == key.size() || key[i] == '.') {
      segs.push_back(key.substr(start, i - start));
      start = i + 1;
    }
  }
  RefResolve(*payload, segs, 0, flat, &out);
  return out;
}

std::vector<Json> AsList(const Json& clause) {
  if (clause.is_null()) return {};
  if (clause.is_array()) return clause.get<std::vector<Json>>();
  return {clause};
}

bool IsInt(const Json& v) { return v.is_number_integer(); }

// Exact match of a stored value with a condition value (string, integer or bool).
bool RefEq(const Json& stored, const Json& want) {
  if (want.is_string()) return stored.is_string() && stored == want;
  if (want.is_boolean()) return stored.is_boolean() && stored == want;
  return IsInt(stored) && stored.get<int64_t>() == want.get<int64_t>();
}

bool RefIsEmpty(const Json* payload, const std::string& key) {
  for (const Json& v : RefValues(payload, key, false)) {
    if (!(v.is_null() || (v.is_array() && v.empty()))) return false;
  }
  return true;
}

bool RefIsNull(const Json* payload, const std::string& key) {
  for (const Json& v : RefValues(payload, key, false)) {
    if (v.is_null()) return true;
    if (v.is_array()) {
      for (const Json& e : v) {
        if (e.is_null()) return true;
      }
    }
  }
  return false;
}

bool RefFilter(const Json& f, const Json* payload, const Json& id);

bool RefCondition(const Json& c, const Json* payload, const Json& id) {
  if (c.contains("has_id")) {
    for (const Json& x : c["has_id"]) {
      if (x == id) return true;
    }
    return false;
  }
  if (c.contains("key") && c.contains("is_empty")) {
    return RefIsEmpty(payload, c["key"]) == c["is_empty"].get<bool>();
  }
  if (c.contains("key") && c.contains("is_null")) {
    return RefIsNull(payload, c["key"]) == c["is_null"].get<bool>();
  }
  if (c.contains("is_empty")) return RefIsEmpty(payload, c["is_empty"]["key"]);
  if (c.contains("is_null")) return RefIsNull(payload, c["is_null"]["key"]);
  if (c.contains("nested")) {
    std::string key = c["nested"]["key"];
    if (key.size() > 2 && key.substr(key.size() - 2) == "[]") key.resize(key.size() - 2);
    for (const Json& v : RefValues(payload, key, false)) {
      if (!v.is_array()) continue;
      for (const Json& e : v) {
        if (e.is_object() && RefFilter(c["nested"]["filter"], &e, Json())) return true;
      }
    }
    return false;
  }
  if (!c.contains("key")) return RefFilter(c, payload, id);
  const std::string key = c["key"];
  if (c.contains("values_count")) {
    const Json& b = c["values_count"];
    auto ok = [&](uint64_t n) {
      return (!b.contains("gt") || n > b["gt"].get<uint64_t>()) &&
             (!b.contains("gte") || n >= b["gte"].get<uint64_t>()) &&
             (!b.contains("lt") || n < b["lt"].get<uint64_t>()) &&
             (!b.contains("lte") || n <= b["lte"].get<uint64_t>());
    };
    auto vals = RefValues(payload, key, false);
    std::vector<uint64_t> counts;
    for (const Json& v : vals) {
      if (!v.is_null()) counts.push_back(v.is_array() ? v.size() : 1);
    }
    if (counts.empty()) counts.push_back(0);
    for (uint64_t n : counts) {
      if (ok(n)) return true;
    }
    return false;
  }
  auto vals = RefValues(payload, key, true);
  if (c.contains("range")) {
    const Json& b = c["range"];
    for (const Json& v : vals) {
      if (!v.is_number()) continue;
      double x = v.get<double>();
      if ((!b.contains("gt") || x > b["gt"].get<double>()) &&
          (!b.contains("gte") || x >= b["gte"].get<double>()) &&
          (!b.contains("lt") || x < b["lt"].get<double>()) &&
          (!b.contains("lte") || x <= b["lte"].get<double>())) {
        return true;
      }
    }
    return false;
  }
  const Json& m = c["match"];
  for (const Json& v : vals) {
    if (m.contains("value") && RefEq(v, m["value"])) return true;
    if (m.contains("any")) {
      for (const Json& w : m["any"]) {
        if (RefEq(v, w)) return true;
      }
    }
    if (m.contains("except") && !v.is_null()) {
      bool in = false;
      for (const Json& w : m["except"]) in = in || RefEq(v, w);
      if (!in) return true;
    }
    if (m.contains("text") && v.is_string() &&
        v.get<std::string>().find(m["text"].get<std::string>()) != std::string::npos) {
      return true;
    }
  }
  return false;
}

bool RefFilter(const Json& f, const Json* payload, const Json& id) {
  for (const Json& c : AsList(f.value("must", Json()))) {
    if (!RefCondition(c, payload, id)) return false;
  }
  for (const Json& c : AsList(f.value("must_not", Json()))) {
    if (RefCondition(c, payload, id)) return false;
  }
  auto should = AsList(f.value("should", Json()));
  if (!should.empty()) {
    bool any = false;
    for (const Json& c : should) any = any || RefCondition(c, payload, id);
    if (!any) return false;
  }
  if (f.contains("min_should")) {
    size_t n = 0;
    for (const Json& c : f["min_should"]["conditions"]) n += RefCondition(c, payload, id);
    if (n < f["min_should"]["min_count"].get<size_t>()) return false;
  }
  return true;
}

class RandomData {
 public:
  explicit RandomData(uint32_t seed) : rng_(seed) {}

  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Coin(double p = 0.5) { return std::bernoulli_distribution(p)(rng_); }

  Json Keyword() {
    static const char* kWords[] = {"red", "green", "blue", "redish", "", "Red", "bluegreen"};
    return kWords[Int(0, 6)];
  }
  Json Scalar() {
    switch (Int(0, 6)) {
      case 0:
      case 1:
        return Keyword();
      case 2:
      case 3:
        return Int(-3, 6);
      case 4:
        return Int(-6, 12) / 2.0;  // floats, some integral (3.0)
      case 5:
        return Coin();
      default:
        return nullptr;
    }
  }
  Json Value(int depth = 0) {
    int k = Int(0, 9);
    if (k < 6 || depth > 1) return Scalar();
    if (k < 9) {
      Json a = Json::array();
      for (int i = Int(0, 3); i > 0; --i) a.push_back(Value(depth + 1));
      return a;
    }
    return Json{{"x", Scalar()}};
  }
  Json Payload() {
    if (Coin(0.05)) return nullptr;
    Json p = Json::object();
    for (const char* f : {"kw", "num", "flag", "tags"}) {
      if (Coin(0.8)) p[f] = Value();
    }
    if (Coin(0.7)) p["obj"] = Json{{"x", Value()}, {"y", Value()}};
    if (Coin(0.7)) {
      Json items = Json::array();
      for (int i = Int(0, 3); i > 0; --i) {
        Json it = Json::object();
        if (Coin(0.8)) it["k"] = Keyword();
        if (Coin(0.8)) it["v"] = Coin(0.3) ? Value() : Json(Int(0, 5));
        items.push_back(it);
      }
      p["items"] = items;
    }
    return p;
  }

  std::string Key() {
    static const char* kKeys[] = {"kw",    "num",       "flag",      "tags",    "obj.x",
                                  "obj.y", "items[].k", "items[].v", "missing", "obj"};
    return kKeys[Int(0, 9)];
  }
  Json Bounds(bool counts) {
    Json b = Json::object();
    for (const char* op : {"gt", "gte", "lt", "lte"}) {
      if (Coin(0.35)) b[op] = counts ? Json(Int(0, 3)) : Json(Int(-8, 14) / 2.0);
    }
    return b;
  }
  Json Condition(int depth, bool nested, size_t rows) {
    int k = Int(0, 19);
    if (depth < 3 && k >= 18) return Filter(depth + 1, nested, rows);
    if (depth < 3 && k == 17 && !nested) {
      return Json{
          {"nested",
           {{"key", Coin() ? "items" : "items[]"}, {"filter", Filter(depth + 1, true, rows)}}}};
    }
    if (k == 16 && !nested) {
      Json ids = Json::array();
      for (int i = Int(0, 4); i > 0; --i) ids.push_back(IdOf(Int(0, static_cast<int>(rows) + 5)));
      return Json{{"has_id", ids}};
    }
    std::string key = nested ? (Coin() ? "k" : "v") : Key();
    switch (k % 8) {
      case 0:
      case 1: {
        Json v = Coin(0.4) ? Keyword() : Coin(0.6) ? Json(Int(-3, 6)) : Json(Coin());
        return Json{{"key", key}, {"match", {{"value", v}}}};
      }
      case 2: {
        Json list = Json::array();
        bool strings = Coin();
        for (int i = Int(0, 3); i > 0; --i) list.push_back(strings ? Keyword() : Json(Int(-3, 6)));
        return Json{{"key", key}, {"match", {{Coin() ? "any" : "except", list}}}};
      }
      case 3: {
        static const char* kTexts[] = {"re", "green", "", "x"};
        return Json{{"key", key}, {"match", {{"text", kTexts[Int(0, 3)]}}}};
      }
      case 4:
      case 5:
        return Json{{"key", key}, {"range", Bounds(false)}};
      case 6:
        return Json{{"key", key}, {"values_count", Bounds(true)}};
      default:
        if (Coin()) return Json{{Coin() ? "is_empty" : "is_null", {{"key", key}}}};
        return Json{{"key", key}, {Coin() ? "is_empty" : "is_null", Coin()}};
    }
  }
  Json Filter(int depth, bool nested, size_t rows) {
    Json f = Json::object();
    for (const char* clause : {"must", "should", "must_not"}) {
      if (!Coin(0.5)) continue;
      int n = Int(0, 3);
      if (n == 1 && Coin()) {
        f[clause] = Condition(depth, nested, rows);
      } else {
        f[clause] = Json::array();
        for (int i = 0; i < n; ++i) f[clause].push_back(Condition(depth, nested, rows));
      }
    }
    if (Coin(0.15)) {
      Json conds = Json::array();
      for (int i = Int(0, 4); i > 0; --i) conds.push_back(Condition(depth, nested, rows));
      f["min_should"] = {{"conditions", conds}, {"min_count", Int(1, 3)}};
    }
    return f;
  }
  // Point id of row r: integers for most rows, UUIDs for every 5th.
  static Json IdOf(int r) {
    if (r % 5 == 0) {
      char buf[40];
      snprintf(buf, sizeof(buf), "00000000-0000-4000-8000-%012d", r);
      return std::string(buf);
    }
    return r * 3 + 1;
  }

 private:
  std::mt19937 rng_;
};

PointId ToPointId(const Json& j) {
  if (j.is_string()) return PointId::ParseUuid(j.get<std::string>()).value();
  return PointId::Num(j.get<uint64_t>());
}

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
