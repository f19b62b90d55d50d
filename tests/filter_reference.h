// A reference evaluator of Qdrant's filter language written directly over the filter JSON (no
// parsing, no indexes), and a generator of random payloads and filters for it: the model the
// randomized filter tests (filter_test, point_store_test) check Select() against.
#pragma once

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "vectord/types.h"

namespace vectord::filter_ref {

// Reference path lookup: "a.b[].c" style (no quotes, no numeric indexes).
inline void RefResolve(const Json& v, const std::vector<std::string>& segs, size_t i, bool flat,
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

inline std::vector<Json> RefValues(const Json* payload, const std::string& key, bool flat) {
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

inline std::vector<Json> AsList(const Json& clause) {
  if (clause.is_null()) return {};
  if (clause.is_array()) return clause.get<std::vector<Json>>();
  return {clause};
}

inline bool IsInt(const Json& v) { return v.is_number_integer(); }

// Exact match of a stored value with a condition value (string, integer or bool).
inline bool RefEq(const Json& stored, const Json& want) {
  if (want.is_string()) return stored.is_string() && stored == want;
  if (want.is_boolean()) return stored.is_boolean() && stored == want;
  return IsInt(stored) && stored.get<int64_t>() == want.get<int64_t>();
}

inline bool RefIsEmpty(const Json* payload, const std::string& key) {
  for (const Json& v : RefValues(payload, key, false)) {
    if (!(v.is_null() || (v.is_array() && v.empty()))) return false;
  }
  return true;
}

inline bool RefIsNull(const Json* payload, const std::string& key) {
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

inline bool RefFilter(const Json& f, const Json* payload, const Json& id);

inline bool RefCondition(const Json& c, const Json* payload, const Json& id) {
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

inline bool RefFilter(const Json& f, const Json* payload, const Json& id) {
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

inline PointId ToPointId(const Json& j) {
  if (j.is_string()) return PointId::ParseUuid(j.get<std::string>()).value();
  return PointId::Num(j.get<uint64_t>());
}

}  // namespace vectord::filter_ref
