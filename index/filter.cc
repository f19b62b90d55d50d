// Qdrant filter language: parsing (ParseFilter), evaluation on one payload, and Select(), which
// answers whole filters with payload index bitmaps and falls back to payloads row by row.
#include "index/filter.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <utility>

#include "index/payload_index.h"

namespace vectord {
namespace {

// ---------------------------------------------------------------------------------------------
// Parsing

// A JSON value as it appears in error messages, shortened.
std::string Describe(const Json& j) {
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

Status Error(const std::string& path, const std::string& what) {
  return Status::InvalidArgument(path + ": " + what);
}

Status Expected(const std::string& path, const std::string& what, const Json& got) {
  return Error(path, "expected " + what + ", got " + Describe(got));
}

// Signed 64-bit value of a JSON integer, if it has one.
std::optional<int64_t> AsInt64(const Json& j) {
  if (j.is_number_unsigned()) {
    uint64_t u = j.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(u);
  }
  if (j.is_number_integer()) return j.get<int64_t>();
  return std::nullopt;
}

class Parser {
 public:
  Result<std::shared_ptr<Filter>> ParseFilterObject(const Json& j, const std::string& path,
                                                    int depth, bool in_nested) {
    if (depth > kMaxFilterDepth) {
      return Error(path,
                   "filters nested deeper than " + std::to_string(kMaxFilterDepth) + " levels");
    }
    if (!j.is_object()) return Expected(path, "a filter object", j);
    auto f = std::make_shared<Filter>();
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const std::string p = path + "." + k;
      if (k == "must") {
        VECTORD_RETURN_IF_ERROR(ParseClause(*it, p, depth, in_nested, &f->must));
      } else if (k == "should") {
        VECTORD_RETURN_IF_ERROR(ParseClause(*it, p, depth, in_nested, &f->should));
      } else if (k == "must_not") {
        VECTORD_RETURN_IF_ERROR(ParseClause(*it, p, depth, in_nested, &f->must_not));
      } else if (k == "min_should") {
        if (it->is_null()) continue;
        if (!it->is_object()) return Expected(p, "an object {conditions, min_count}", *it);
        Filter::MinShould ms;
        bool have_conditions = false, have_count = false;
        for (auto m = it->begin(); m != it->end(); ++m) {
          const std::string mp = p + "." + m.key();
          if (m.key() == "conditions") {
            if (!m->is_array()) return Expected(mp, "an array of conditions", *m);
            VECTORD_RETURN_IF_ERROR(ParseClause(*m, mp, depth, in_nested, &ms.conditions));
            have_conditions = true;
          } else if (m.key() == "min_count") {
            if (!m->is_number_unsigned() && !(m->is_number_integer() && m->get<int64_t>() >= 0)) {
              return Expected(mp, "a positive integer", *m);
            }
            ms.min_count = m->get<uint64_t>();
            if (ms.min_count < 1) return Error(mp, "must be 1 or larger, got 0");
            have_count = true;
          } else {
            return Error(mp, "unknown field (min_should has conditions, min_count)");
          }
        }
        if (!have_conditions) return Error(p, "missing field \"conditions\"");
        if (!have_count) return Error(p, "missing field \"min_count\"");
        f->min_should = std::move(ms);
      } else {
        return Error(p, "unknown field (a filter has must, should, must_not, min_should)");
      }
    }
    return f;
  }

 private:
  // A clause is null (absent), one condition, or an array of conditions.
  Status ParseClause(const Json& j, const std::string& path, int depth, bool in_nested,
                     std::vector<Condition>* out) {
    if (j.is_null()) return Status::OK();
    if (j.is_array()) {
      out->reserve(j.size());
      for (size_t i = 0; i < j.size(); ++i) {
        Condition c;
        VECTORD_RETURN_IF_ERROR(
            ParseCondition(j[i], path + "[" + std::to_string(i) + "]", depth, in_nested, &c));
        out->push_back(std::move(c));
      }
      return Status::OK();
    }
    Condition c;
    VECTORD_RETURN_IF_ERROR(ParseCondition(j, path, depth, in_nested, &c));
    out->push_back(std::move(c));
    return Status::OK();
  }

  static Status OnlyField(const Json& j, const std::string& path, const char* field) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() != field) {
        return Error(path + "." + it.key(),
                     std::string("unknown field in a ") + field + " condition");
      }
    }
    return Status::OK();
  }

  static Status ParseKey(const Json& j, const std::string& path, JsonPath* out) {
    if (!j.is_string()) return Expected(path, "a payload key string", j);
    auto p = JsonPath::Parse(j.get<std::string>(), path);
    if (!p.ok()) return p.status();
    *out = std::move(p).value();
    return Status::OK();
  }

  // {"key": "..."} as used by is_empty / is_null.
  static Status ParsePayloadField(const Json& j, const std::string& path, JsonPath* out) {
    if (!j.is_object()) return Expected(path, "an object {\"key\": ...}", j);
    VECTORD_RETURN_IF_ERROR(OnlyField(j, path, "key"));
    if (!j.contains("key")) return Error(path, "missing field \"key\"");
    return ParseKey(j["key"], path + ".key", out);
  }

  Status ParseCondition(const Json& j, const std::string& path, int depth, bool in_nested,
                        Condition* c) {
    if (!j.is_object()) return Expected(path, "a condition object", j);
    if (j.contains("key")) return ParseFieldCondition(j, path, c);
    if (j.contains("is_empty")) {
      VECTORD_RETURN_IF_ERROR(OnlyField(j, path, "is_empty"));
      c->kind = Condition::Kind::kIsEmpty;
      return ParsePayloadField(j["is_empty"], path + ".is_empty", &c->key);
    }
    if (j.contains("is_null")) {
      VECTORD_RETURN_IF_ERROR(OnlyField(j, path, "is_null"));
      c->kind = Condition::Kind::kIsNull;
      return ParsePayloadField(j["is_null"], path + ".is_null", &c->key);
    }
    if (j.contains("has_id")) {
      VECTORD_RETURN_IF_ERROR(OnlyField(j, path, "has_id"));
      if (in_nested) return Error(path, "has_id is not supported inside a nested filter");
      return ParseHasId(j["has_id"], path + ".has_id", c);
    }
    if (j.contains("nested")) {
      VECTORD_RETURN_IF_ERROR(OnlyField(j, path, "nested"));
      return ParseNested(j["nested"], path + ".nested", depth, c);
    }
    for (const char* unsupported : {"has_vector", "slice"}) {
      if (j.contains(unsupported)) {
        return Error(path, std::string("the ") + unsupported + " condition is not supported");
      }
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      if (k != "must" && k != "should" && k != "must_not" && k != "min_should") {
        return Error(path + "." + k,
                     "unknown condition (expected key, is_empty, is_null, has_id, nested, or a "
                     "filter with must, should, must_not, min_should)");
      }
    }
    c->kind = Condition::Kind::kFilter;
    auto f = ParseFilterObject(j, path, depth + 1, in_nested);
    if (!f.ok()) return f.status();
    c->filter = std::move(f).value();
    return Status::OK();
  }

  static Status ParseHasId(const Json& j, const std::string& path, Condition* c) {
    c->kind = Condition::Kind::kHasId;
    if (!j.is_array()) return Expected(path, "an array of point ids", j);
    c->ids.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i) {
      const std::string p = path + "[" + std::to_string(i) + "]";
      const Json& v = j[i];
      if (v.is_number_unsigned()) {
        c->ids.push_back(PointId::Num(v.get<uint64_t>()));
      } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {
        c->ids.push_back(PointId::Num(static_cast<uint64_t>(v.get<int64_t>())));
      } else if (v.is_string()) {
        auto id = PointId::ParseUuid(v.get<std::string>());
        if (!id.ok()) return id.status().WithContext(p);
        c->ids.push_back(id.value());
      } else {
        return Expected(p, "an unsigned integer or a UUID string", v);
      }
    }
    std::sort(c->ids.begin(), c->ids.end());
    c->ids.erase(std::unique(c->ids.begin(), c->ids.end()), c->ids.end());
    return Status::OK();
  }

  Status ParseNested(const Json& j, const std::string& path, int depth, Condition* c) {
    c->kind = Condition::Kind::kNested;
    if (!j.is_object()) return Expected(path, "an object {\"key\": ..., \"filter\": ...}", j);
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() != "key" && it.key() != "filter") {
        return Error(path + "." + it.key(), "unknown field (nested has key, filter)");
      }
    }
    if (!j.contains("key")) return Error(path, "missing field \"key\"");
    if (!j.contains("filter")) return Error(path, "missing field \"filter\"");
    const Json& key = j["key"];
    if (!key.is_string()) return Expected(path + ".key", "a payload key string", key);
    // `a` and `a[]` both name the elements of array a.
    std::string text = key.get<std::string>();
    if (text.size() > 2 && text.compare(text.size() - 2, 2, "[]") == 0)
      text.resize(text.size() - 2);
    auto p = JsonPath::Parse(text, path + ".key");
    if (!p.ok()) return p.status();
    c->key = std::move(p).value();
    auto f = ParseFilterObject(j["filter"], path + ".filter", depth + 1, /*in_nested=*/true);
    if (!f.ok()) return f.status();
    c->filter = std::move(f).value();
    return Status::OK();
  }

  static Status ParseFieldCondition(const Json& j, const std::string& path, Condition* c) {
    VECTORD_RETURN_IF_ERROR(ParseKey(j["key"], path + ".key", &c->key));
    std::string chosen;
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      if (k == "key") continue;
      const std::string p = path + "." + k;
      if (k != "match" && k != "range" && k != "values_count" && k != "is_empty" &&
          k != "is_null") {
        if (k == "geo_bounding_box" || k == "geo_radius" || k == "geo_polygon") {
          if (it->is_null()) continue;
          return Error(p, "geo conditions are not supported");
        }
        return Error(p,
                     "unknown field (a field condition has key and one of match, range, "
                     "values_count, is_empty, is_null)");
      }
      if (it->is_null()) continue;
      if (!chosen.empty()) {
        return Error(path,
                     "a field condition takes exactly one of match, range, values_count, "
                     "is_empty, is_null; got both " +
                         chosen + " and " + k);
      }
      chosen = k;
      if (k == "match") {
        c->kind = Condition::Kind::kMatch;
        VECTORD_RETURN_IF_ERROR(ParseMatch(*it, p, &c->match));
      } else if (k == "range") {
        c->kind = Condition::Kind::kRange;
        VECTORD_RETURN_IF_ERROR(ParseRange(*it, p, &c->range));
      } else if (k == "values_count") {
        c->kind = Condition::Kind::kValuesCount;
        VECTORD_RETURN_IF_ERROR(ParseCount(*it, p, &c->count));
      } else {
        if (!it->is_boolean()) return Expected(p, "true or false", *it);
        c->kind = k == "is_empty" ? Condition::Kind::kIsEmpty : Condition::Kind::kIsNull;
        c->expect = it->get<bool>();
      }
    }
    if (chosen.empty()) {
      return Error(path,
                   "a field condition needs one of match, range, values_count, is_empty, "
                   "is_null");
    }
    return Status::OK();
  }

  static Status ParseMatch(const Json& j, const std::string& path, Match* m) {
    if (!j.is_object()) return Expected(path, "a match object (value, any, except or text)", j);
    if (j.size() != 1) {
      return Error(path, "expected exactly one of value, any, except, text; got " +
                             std::to_string(j.size()) + " fields");
    }
    const std::string k = j.begin().key();
    const Json& v = j.begin().value();
    const std::string p = path + "." + k;
    if (k == "value") {
      m->kind = Match::Kind::kValue;
      if (v.is_string()) {
        m->value = v.get<std::string>();
      } else if (v.is_boolean()) {
        m->value = v.get<bool>();
      } else if (auto i = AsInt64(v)) {
        m->value = *i;
      } else {
        return Expected(p, "a string, 64-bit integer or boolean", v);
      }
      return Status::OK();
    }
    if (k == "any" || k == "except") {
      m->kind = k == "any" ? Match::Kind::kAny : Match::Kind::kExcept;
      if (!v.is_array()) return Expected(p, "an array of strings or of integers", v);
      m->strings = v.empty() || v[0].is_string();
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string ep = p + "[" + std::to_string(i) + "]";
        if (m->strings) {
          if (!v[i].is_string()) return Expected(ep, "a string like the first element", v[i]);
          m->string_list.push_back(v[i].get<std::string>());
        } else {
          auto n = AsInt64(v[i]);
          if (!n) {
            return Expected(
                ep,
                i == 0 ? "a string or a 64-bit integer" : "a 64-bit integer like the first element",
                v[i]);
          }
          m->int_list.push_back(*n);
        }
      }
      std::sort(m->string_list.begin(), m->string_list.end());
      m->string_list.erase(std::unique(m->string_list.begin(), m->string_list.end()),
                           m->string_list.end());
      std::sort(m->int_list.begin(), m->int_list.end());
      m->int_list.erase(std::unique(m->int_list.begin(), m->int_list.end()), m->int_list.end());
      return Status::OK();
    }
    if (k == "text") {
      m->kind = Match::Kind::kText;
      if (!v.is_string()) return Expected(p, "a string", v);
      m->text = v.get<std::string>();
      return Status::OK();
    }
    if (k == "phrase" || k == "text_any" || k == "prefix") {
      return Error(p, "match " + k + " is not supported (use text)");
    }
    return Error(p, "unknown match (expected value, any, except or text)");
  }

  template <typename T, typename Get>
  static Status ParseBounds(const Json& j, const std::string& path, const char* what, Get get,
                            Bounds<T>* b) {
    if (!j.is_object()) return Expected(path, "an object with gt, gte, lt, lte", j);
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& k = it.key();
      const std::string p = path + "." + k;
      std::optional<T>* slot = k == "gt"    ? &b->gt
                               : k == "gte" ? &b->gte
                               : k == "lt"  ? &b->lt
                               : k == "lte" ? &b->lte
                                            : nullptr;
      if (slot == nullptr) return Error(p, "unknown field (expected gt, gte, lt, lte)");
      if (it->is_null()) continue;
      std::optional<T> v = get(*it);
      if (!v) return Expected(p, what, *it);
      *slot = v;
    }
    return Status::OK();
  }

  static Status ParseRange(const Json& j, const std::string& path, Range* r) {
    return ParseBounds<double>(
        j, path, "a finite number",
        [](const Json& v) -> std::optional<double> {
          if (!v.is_number()) return std::nullopt;
          double d = v.get<double>();
          if (!std::isfinite(d)) return std::nullopt;
          return d;
        },
        r);
  }

  static Status ParseCount(const Json& j, const std::string& path, CountRange* r) {
    return ParseBounds<uint64_t>(
        j, path, "a non-negative integer",
        [](const Json& v) -> std::optional<uint64_t> {
          if (v.is_number_unsigned()) return v.get<uint64_t>();
          if (v.is_number_integer() && v.get<int64_t>() >= 0) return v.get<uint64_t>();
          return std::nullopt;
        },
        r);
  }
};

// ---------------------------------------------------------------------------------------------
// Evaluation on one payload

// Calls fn on each value `path` reaches from `v` (items from i on) until fn returns true; returns
// whether it did. `flat`: an array reached through a final key yields its elements instead.
template <typename Fn>
bool VisitFrom(const JsonPath& path, size_t i, const Json& v, bool flat, Fn& fn) {
  const JsonPathItem& item = path.items[i];
  const bool last = i + 1 == path.items.size();
  auto next = [&](const Json& child) -> bool {
    if (!last) return VisitFrom(path, i + 1, child, flat, fn);
    if (flat && item.kind == JsonPathItem::Kind::kKey && child.is_array()) {
      for (const Json& e : child) {
        if (fn(e)) return true;
      }
      return false;
    }
    return fn(child);
  };
  switch (item.kind) {
    case JsonPathItem::Kind::kKey: {
      if (!v.is_object()) return false;
      auto it = v.find(item.key);
      return it != v.end() && next(*it);
    }
    case JsonPathItem::Kind::kIndex:
      return v.is_array() && item.index < v.size() && next(v[item.index]);
    case JsonPathItem::Kind::kWildcard:
      if (v.is_array()) {
        for (const Json& e : v) {
          if (next(e)) return true;
        }
      }
      return false;
  }
  return false;
}

// Whether fn holds for some value at `path` in `payload` (nullptr: no values).
template <typename Fn>
bool AnyValue(const JsonPath& path, const Json* payload, bool flat, Fn fn) {
  if (payload == nullptr || path.items.empty()) return false;
  return VisitFrom(path, 0, *payload, flat, fn);
}

// Who the row is, for has_id.
struct RowRef {
  InternalId row = kInvalidInternalId;
  const index::FilterContext* ctx = nullptr;
  const PointId* id = nullptr;
};

bool EvalFilter(const Filter& f, const Json* payload, const RowRef& r);

bool HasId(const Condition& c, const RowRef& r) {
  if (r.id != nullptr) return std::binary_search(c.ids.begin(), c.ids.end(), *r.id);
  if (r.ctx == nullptr || r.row == kInvalidInternalId) return false;
  if (r.ctx->point_id) {
    return std::binary_search(c.ids.begin(), c.ids.end(), r.ctx->point_id(r.row));
  }
  if (r.ctx->lookup) {
    for (const PointId& id : c.ids) {
      auto row = r.ctx->lookup(id);
      if (row && *row == r.row) return true;
    }
  }
  return false;
}

bool EvalCondition(const Condition& c, const Json* payload, const RowRef& r) {
  switch (c.kind) {
    case Condition::Kind::kMatch:
      return AnyValue(c.key, payload, true, [&](const Json& v) { return c.match.Check(v); });
    case Condition::Kind::kRange:
      return AnyValue(c.key, payload, true, [&](const Json& v) {
        return v.is_number() && c.range.Contains(v.get<double>());
      });
    case Condition::Kind::kValuesCount: {
      // Each value counts (null 0, array its length, else 1); any value's count may satisfy the
      // bounds; no values at all, or only nulls, count as 0.
      bool all_null = true;
      return AnyValue(c.key, payload, false,
                      [&](const Json& v) {
                        if (v.is_null()) return false;
                        all_null = false;
                        return c.count.Contains(v.is_array() ? v.size() : 1);
                      }) ||
             (all_null && c.count.Contains(0));
    }
    case Condition::Kind::kIsEmpty: {
      bool non_empty = AnyValue(c.key, payload, false, [](const Json& v) {
        return !(v.is_null() || (v.is_array() && v.empty()));
      });
      return !non_empty == c.expect;
    }
    case Condition::Kind::kIsNull: {
      // null, or an array holding a null one level deep.
      bool null = AnyValue(c.key, payload, false, [](const Json& v) {
        return v.is_null() || (v.is_array() && std::any_of(v.begin(), v.end(), [](const Json& e) {
                                 return e.is_null();
                               }));
      });
      return null == c.expect;
    }
    case Condition::Kind::kHasId:
      return HasId(c, r);
    case Condition::Kind::kNested:
      return AnyValue(c.key, payload, false, [&](const Json& v) {
        if (!v.is_array()) return false;
        for (const Json& e : v) {
          if (e.is_object() && EvalFilter(*c.filter, &e, RowRef{})) return true;
        }
        return false;
      });
    case Condition::Kind::kFilter:
      return EvalFilter(*c.filter, payload, r);
  }
  return false;
}

bool EvalFilter(const Filter& f, const Json* payload, const RowRef& r) {
  for (const Condition& c : f.must) {
    if (!EvalCondition(c, payload, r)) return false;
  }
  for (const Condition& c : f.must_not) {
    if (EvalCondition(c, payload, r)) return false;
  }
  if (!f.should.empty()) {
    bool any = false;
    for (const Condition& c : f.should) {
      if (EvalCondition(c, payload, r)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  if (f.min_should) {
    uint64_t n = 0;
    for (const Condition& c : f.min_should->conditions) {
      if (EvalCondition(c, payload, r) && ++n >= f.min_should->min_count) break;
    }
    if (n < f.min_should->min_count) return false;
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// JsonPath and Match

Result<JsonPath> JsonPath::Parse(std::string_view text, const std::string& what) {
  JsonPath p;
  p.text = std::string(text);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(what + ": invalid payload key \"" + p.text + "\": " + why);
  };
  if (text.empty()) return bad("empty key");
  size_t i = 0;
  bool expect_key = true;  // at the start and after '.'
  while (i < text.size()) {
    if (expect_key) {
      JsonPathItem item;
      if (text[i] == '"') {
        size_t end = text.find('"', i + 1);
        if (end == std::string_view::npos) return bad("unterminated quote");
        item.key = std::string(text.substr(i + 1, end - i - 1));
        i = end + 1;
      } else {
        size_t start = i;
        while (i < text.size() && text[i] != '.' && text[i] != '[' && text[i] != ']' &&
               text[i] != '"') {
          ++i;
        }
        if (i == start) return bad("empty name at offset " + std::to_string(start));
        item.key = std::string(text.substr(start, i - start));
      }
      if (item.key.empty()) return bad("empty quoted name");
      p.items.push_back(std::move(item));
      expect_key = false;
      continue;
    }
    if (text[i] == '.') {
      ++i;
      expect_key = true;
      if (i == text.size()) return bad("ends with '.'");
      continue;
    }
    if (text[i] == '[') {
      size_t end = text.find(']', i);
      if (end == std::string_view::npos) return bad("unterminated '['");
      std::string_view inside = text.substr(i + 1, end - i - 1);
      JsonPathItem item;
      if (inside.empty()) {
        item.kind = JsonPathItem::Kind::kWildcard;
      } else {
        item.kind = JsonPathItem::Kind::kIndex;
        if (inside.size() > 9) return bad("array index too large");
        for (char ch : inside) {
          if (ch < '0' || ch > '9') return bad("array index must be a number or empty");
          item.index = item.index * 10 + static_cast<size_t>(ch - '0');
        }
      }
      p.items.push_back(std::move(item));
      i = end + 1;
      continue;
    }
    return bad(std::string("unexpected '") + text[i] + "' at offset " + std::to_string(i));
  }
  return p;
}

void JsonPath::Resolve(const Json& payload, std::vector<const Json*>* out) const {
  AnyValue(*this, &payload, /*flat=*/false, [out](const Json& v) {
    out->push_back(&v);
    return false;
  });
}

void JsonPath::ResolveFlat(const Json& payload, std::vector<const Json*>* out) const {
  AnyValue(*this, &payload, /*flat=*/true, [out](const Json& v) {
    out->push_back(&v);
    return false;
  });
}

bool Match::Check(const Json& v) const {
  switch (kind) {
    case Kind::kValue:
      if (const auto* s = std::get_if<std::string>(&value)) {
        return v.is_string() && v.get_ref<const std::string&>() == *s;
      }
      if (const auto* b = std::get_if<bool>(&value)) return v.is_boolean() && v.get<bool>() == *b;
      {
        auto n = AsInt64(v);
        return n && *n == std::get<int64_t>(value);
      }
    case Kind::kAny:
      if (strings) {
        return v.is_string() && std::binary_search(string_list.begin(), string_list.end(),
                                                   v.get_ref<const std::string&>());
      } else {
        auto n = AsInt64(v);
        return n && std::binary_search(int_list.begin(), int_list.end(), *n);
      }
    case Kind::kExcept:
      // Any non-null value that is not one of the listed ones (values of another type count).
      if (v.is_null()) return false;
      if (strings) {
        return !v.is_string() || !std::binary_search(string_list.begin(), string_list.end(),
                                                     v.get_ref<const std::string&>());
      } else {
        auto n = AsInt64(v);
        return !n || !std::binary_search(int_list.begin(), int_list.end(), *n);
      }
    case Kind::kText:
      return v.is_string() && v.get_ref<const std::string&>().find(text) != std::string::npos;
  }
  return false;
}

Result<FilterPtr> ParseFilter(const Json& j, const std::string& path) {
  if (j.is_null()) return FilterPtr();
  try {
    Parser parser;
    auto f = parser.ParseFilterObject(j, path, 1, /*in_nested=*/false);
    if (!f.ok()) return f.status();
    return FilterPtr(std::move(f).value());
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": " + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// Selection

namespace index {
namespace {

Roaring FromSorted(const std::vector<uint32_t>& rows) {
  Roaring r;
  if (!rows.empty()) r.addMany(rows.size(), rows.data());
  return r;
}

class Selector {
 public:
  explicit Selector(const FilterContext& ctx) : ctx_(ctx) {}

  Roaring SelectFilter(const Filter& f, const Roaring& cand) {
    Roaring cur = cand;
    // must: bitmap-answered conditions first (they shrink the candidates), then one payload pass.
    std::vector<const Condition*> rows;
    for (const Condition& c : f.must) {
      if (cur.isEmpty()) return cur;
      if (IsSetCondition(c)) {
        cur = SelectCondition(c, cur);
      } else {
        rows.push_back(&c);
      }
    }
    if (!rows.empty()) {
      cur = RowPass(cur, [&](const Json* p, const RowRef& r) {
        return std::all_of(rows.begin(), rows.end(),
                           [&](const Condition* c) { return EvalCondition(*c, p, r); });
      });
    }
    rows.clear();
    for (const Condition& c : f.must_not) {
      if (cur.isEmpty()) return cur;
      if (IsSetCondition(c)) {
        cur -= SelectCondition(c, cur);
      } else {
        rows.push_back(&c);
      }
    }
    if (!rows.empty()) {
      cur = RowPass(cur, [&](const Json* p, const RowRef& r) {
        return std::none_of(rows.begin(), rows.end(),
                            [&](const Condition* c) { return EvalCondition(*c, p, r); });
      });
    }
    rows.clear();
    if (!f.should.empty() && !cur.isEmpty()) {
      Roaring matched;
      for (const Condition& c : f.should) {
        if (IsSetCondition(c)) {
          matched |= SelectCondition(c, cur);
        } else {
          rows.push_back(&c);
        }
      }
      if (!rows.empty()) {
        matched |= RowPass(cur - matched, [&](const Json* p, const RowRef& r) {
          return std::any_of(rows.begin(), rows.end(),
                             [&](const Condition* c) { return EvalCondition(*c, p, r); });
        });
      }
      cur = std::move(matched);
    }
    rows.clear();
    if (f.min_should && !cur.isEmpty()) cur = SelectMinShould(*f.min_should, cur);
    return cur;
  }

 private:
  template <typename Pred>
  Roaring RowPass(const Roaring& cand, Pred pred) {
    std::vector<uint32_t> out;
    for (uint32_t row : cand) {
      const Json* p = ctx_.payload ? ctx_.payload(row) : nullptr;
      if (pred(p, RowRef{row, &ctx_, nullptr})) out.push_back(row);
    }
    return FromSorted(out);
  }

  Roaring SelectMinShould(const Filter::MinShould& ms, const Roaring& cur) {
    std::vector<Roaring> sets;
    std::vector<const Condition*> rows;
    for (const Condition& c : ms.conditions) {
      if (IsSetCondition(c)) {
        sets.push_back(SelectCondition(c, cur));
      } else {
        rows.push_back(&c);
      }
    }
    const uint64_t need = ms.min_count;
    if (sets.size() + rows.size() < need) return Roaring();
    if (rows.empty()) {
      // at_least[k] = rows of cur matching at least k of the conditions seen so far.
      std::vector<Roaring> at_least(need + 1);
      at_least[0] = cur;
      for (const Roaring& s : sets) {
        for (size_t k = need; k >= 1; --k) at_least[k] |= at_least[k - 1] & s;
      }
      return at_least[need];
    }
    return RowPass(cur, [&](const Json* p, const RowRef& r) {
      uint64_t n = 0;
      for (const Roaring& s : sets) {
        if (s.contains(r.row) && ++n >= need) return true;
      }
      for (const Condition* c : rows) {
        if (EvalCondition(*c, p, r) && ++n >= need) return true;
      }
      return false;
    });
  }

  const FieldIndex* IndexFor(const Condition& c) const {
    if (ctx_.indexes == nullptr) return nullptr;
    return ctx_.indexes->Get(c.key.text);
  }

  // Whether the index can list every row whose indexed values satisfy the condition (values of
  // other types are then re-checked on the uncovered rows).
  static bool IndexAnswers(const FieldIndex& idx, const Condition& c) {
    if (c.kind == Condition::Kind::kRange) return true;
    if (c.kind != Condition::Kind::kMatch) return false;
    if (idx.type() != PayloadSchemaType::kFloat) return true;
    // A float index keeps integers as doubles, so it cannot tell 3 from 3.0; it still knows that
    // no number is a string or a bool.
    const Match& m = c.match;
    switch (m.kind) {
      case Match::Kind::kText:
        return true;
      case Match::Kind::kValue:
        return !std::holds_alternative<int64_t>(m.value);
      case Match::Kind::kAny:
        return m.strings;
      case Match::Kind::kExcept:
        return false;
    }
    return false;
  }

  bool IsSetCondition(const Condition& c) const {
    switch (c.kind) {
      case Condition::Kind::kHasId:
        return static_cast<bool>(ctx_.lookup);
      case Condition::Kind::kMatch:
      case Condition::Kind::kRange: {
        const FieldIndex* idx = IndexFor(c);
        return idx != nullptr && IndexAnswers(*idx, c);
      }
      case Condition::Kind::kFilter: {
        const Filter& f = *c.filter;
        auto any = [&](const std::vector<Condition>& v) {
          return std::any_of(v.begin(), v.end(),
                             [&](const Condition& x) { return IsSetCondition(x); });
        };
        return any(f.must) || any(f.should) || any(f.must_not) ||
               (f.min_should && any(f.min_should->conditions));
      }
      default:
        return false;
    }
  }

  // Rows of the index whose indexed values satisfy a match/range condition (not yet restricted
  // to candidates).
  static Roaring IndexRows(const FieldIndex& idx, const Condition& c, Status* error) {
    Roaring out;
    const PayloadSchemaType t = idx.type();
    if (c.kind == Condition::Kind::kRange) {
      if (idx.has_range()) out = idx.RangeRows(c.range, error);
      return out;
    }
    const Match& m = c.match;
    auto add = [&](const Roaring* r) {
      if (r != nullptr) out |= *r;
    };
    switch (m.kind) {
      case Match::Kind::kValue:
        if (const auto* s = std::get_if<std::string>(&m.value)) {
          if (t == PayloadSchemaType::kKeyword) add(idx.FindKeyword(*s));
        } else if (const auto* b = std::get_if<bool>(&m.value)) {
          if (t == PayloadSchemaType::kBool) add(idx.FindBool(*b));
        } else if (t == PayloadSchemaType::kInteger) {
          add(idx.FindInteger(std::get<int64_t>(m.value)));
        }
        return out;
      case Match::Kind::kAny:
        if (m.strings && t == PayloadSchemaType::kKeyword) {
          for (const std::string& s : m.string_list) add(idx.FindKeyword(s));
        } else if (!m.strings && t == PayloadSchemaType::kInteger) {
          for (int64_t n : m.int_list) add(idx.FindInteger(n));
        }
        return out;
      case Match::Kind::kExcept:
        if (t == PayloadSchemaType::kKeyword && m.strings) {
          idx.ForEachKeyword([&](const std::string& k, const Roaring& r) {
            if (!std::binary_search(m.string_list.begin(), m.string_list.end(), k)) out |= r;
          });
        } else if (t == PayloadSchemaType::kInteger && !m.strings) {
          idx.ForEachInteger([&](int64_t k, const Roaring& r) {
            if (!std::binary_search(m.int_list.begin(), m.int_list.end(), k)) out |= r;
          });
        } else {
          out = idx.indexed();  // every indexed value has another type than the list
        }
        return out;
      case Match::Kind::kText:
        if (t == PayloadSchemaType::kKeyword) {
          idx.ForEachKeyword([&](const std::string& k, const Roaring& r) {
            if (k.find(m.text) != std::string::npos) out |= r;
          });
        }
        return out;
    }
    return out;
  }

  // Rows of `cand` matching a condition for which IsSetCondition() holds.
  Roaring SelectCondition(const Condition& c, const Roaring& cand) {
    switch (c.kind) {
      case Condition::Kind::kHasId: {
        std::vector<uint32_t> hits;
        for (const PointId& id : c.ids) {
          auto row = ctx_.lookup(id);
          if (row && cand.contains(*row)) hits.push_back(*row);
        }
        std::sort(hits.begin(), hits.end());
        return FromSorted(hits);
      }
      case Condition::Kind::kMatch:
      case Condition::Kind::kRange: {
        const FieldIndex& idx = *IndexFor(c);
        Roaring out = IndexRows(idx, c, ctx_.error) & cand;
        Roaring recheck = (idx.uncovered() & cand) - out;
        if (!recheck.isEmpty()) {
          out |= RowPass(recheck,
                         [&](const Json* p, const RowRef& r) { return EvalCondition(c, p, r); });
        }
        return out;
      }
      case Condition::Kind::kFilter:
        return SelectFilter(*c.filter, cand);
      default:
        return RowPass(cand,
                       [&](const Json* p, const RowRef& r) { return EvalCondition(c, p, r); });
    }
  }

  const FilterContext& ctx_;
};

}  // namespace

Roaring Select(const Filter* filter, const Roaring& live, const FilterContext& ctx) {
  if (filter == nullptr) return live;
  Selector s(ctx);
  return s.SelectFilter(*filter, live);
}

bool Matches(const Filter& filter, InternalId row, const FilterContext& ctx) {
  const Json* p = ctx.payload ? ctx.payload(row) : nullptr;
  return EvalFilter(filter, p, RowRef{row, &ctx, nullptr});
}

bool MatchesPayload(const Filter& filter, const Json* payload, const PointId* id) {
  return EvalFilter(filter, payload, RowRef{kInvalidInternalId, nullptr, id});
}

}  // namespace index
}  // namespace vectord
