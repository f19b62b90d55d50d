// Parsing of Qdrant-shaped request bodies into engine requests (see request_parser.h).
#include "server/request_parser.h"

#include <cmath>
#include <limits>

#include "server/json_reader.h"
#include "vectord/filter.h"

namespace vectord::server {
namespace {

std::string Path(std::string_view where, std::string_view key) {
  if (where.empty()) return std::string(key);
  std::string p(where);
  p += '.';
  p += key;
  return p;
}

const Json* Field(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Status Invalid(std::string_view where, std::string_view key, const std::string& msg) {
  return Status::InvalidArgument(Path(where, key) + ": " + msg);
}

Result<FilterPtr> GetFilter(const Json& obj, std::string_view where) {
  const Json* f = Field(obj, "filter");
  if (!f) return FilterPtr();
  return ParseFilter(*f, Path(where, "filter"));
}

Result<std::vector<std::string>> StringList(const Json& j, const std::string& where) {
  if (!j.is_array()) return Status::InvalidArgument(where + ": expected an array of strings");
  std::vector<std::string> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_string()) {
      return Status::InvalidArgument(where + "[" + std::to_string(i) + "]: expected a string");
    }
    out.push_back(j[i].get<std::string>());
  }
  return out;
}

// limit (or its legacy alias top) and offset, bounded by max_result.
Status GetLimitOffset(const Json& obj, const ApiLimits& limits, std::string_view where,
                      size_t* limit, size_t* offset) {
  VECTORD_ASSIGN_OR_RETURN(*limit, GetCount(obj, "limit", 10, limits.max_result, where));
  if (!Field(obj, "limit") && Field(obj, "top")) {
    VECTORD_ASSIGN_OR_RETURN(*limit, GetCount(obj, "top", 10, limits.max_result, where));
  }
  VECTORD_ASSIGN_OR_RETURN(*offset, GetCount(obj, "offset", 0, limits.max_result, where));
  if (*limit + *offset > limits.max_result) {
    return Invalid(where, "offset",
                   "limit + offset = " + std::to_string(*limit + *offset) +
                       " exceeds the maximum " + std::to_string(limits.max_result));
  }
  return Status::OK();
}

Status GetScoreThreshold(const Json& obj, std::string_view where, std::optional<float>* out) {
  const Json* t = Field(obj, "score_threshold");
  if (!t) return Status::OK();
  if (!t->is_number()) return Invalid(where, "score_threshold", "expected a number");
  double d = t->get<double>();
  if (std::fabs(d) > std::numeric_limits<float>::max()) {
    return Invalid(where, "score_threshold", "out of float32 range");
  }
  *out = static_cast<float>(d);
  return Status::OK();
}

// Search params: Qdrant's (exact; the HNSW ones accepted and ignored) and vectord's "spann"
// extension {"nprobe": int, "eps": float, "rerank": int}.
Status GetParams(const Json& obj, std::string_view where, SearchRequest* req) {
  const Json* p = Field(obj, "params");
  if (!p) return Status::OK();
  std::string pw = Path(where, "params");
  if (!p->is_object()) return Status::InvalidArgument(pw + ": expected an object");
  VECTORD_RETURN_IF_ERROR(CheckKnownFields(*p,
                                           {"hnsw_ef", "exact", "quantization", "indexed_only",
                                            "acorn", "idf", "spann", "explain", "muvera"},
                                           pw));
  VECTORD_ASSIGN_OR_RETURN(req->exact, GetBool(*p, "exact", false, pw));
  // "explain" (vectord extension): the response carries the query plan; api_points.cc reads it.
  VECTORD_RETURN_IF_ERROR(GetBool(*p, "explain", false, pw).status());
  // "muvera" (vectord extension, multi-vector collections): {"candidates": n, "rerank": r}.
  if (const Json* mv = Field(*p, "muvera")) {
    const std::string mw = Path(pw, "muvera");
    if (!mv->is_object()) return Status::InvalidArgument(mw + ": expected an object");
    VECTORD_RETURN_IF_ERROR(CheckKnownFields(*mv, {"candidates", "rerank"}, mw));
    for (const char* key : {"candidates", "rerank"}) {
      const Json* v = Field(*mv, key);
      if (!v) continue;
      if (!v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > 100000) {
        return Status::InvalidArgument(mw + "." + key +
                                       ": expected an integer in [1, 100000], got " + v->dump());
      }
      (key == std::string_view("rerank") ? req->muvera_rerank : req->muvera_candidates) =
          static_cast<uint32_t>(v->get<int64_t>());
    }
  }
  const Json* sp = Field(*p, "spann");
  if (!sp) return Status::OK();
  const std::string sw = Path(pw, "spann");
  if (!sp->is_object()) return Status::InvalidArgument(sw + ": expected an object");
  VECTORD_RETURN_IF_ERROR(CheckKnownFields(*sp, {"nprobe", "eps", "rerank"}, sw));
  if (const Json* v = Field(*sp, "nprobe")) {
    if (!v->is_number_integer() || v->get<int64_t>() < 1 || v->get<int64_t>() > 100000) {
      return Status::InvalidArgument(sw + ".nprobe: expected an integer in [1, 100000]");
    }
    req->spann_nprobe = static_cast<uint32_t>(v->get<int64_t>());
  }
  if (const Json* v = Field(*sp, "rerank")) {
    if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > 100000) {
      return Status::InvalidArgument(sw + ".rerank: expected an integer in [0, 100000]");
    }
    req->spann_rerank = static_cast<uint32_t>(v->get<int64_t>());
  }
  if (const Json* v = Field(*sp, "eps")) {
    if (!v->is_number() || !(v->get<double>() >= 0 && v->get<double>() <= 1000)) {
      return Status::InvalidArgument(sw + ".eps: expected a number in [0, 1000]");
    }
    req->spann_eps = static_cast<float>(v->get<double>());
  }
  return Status::OK();
}

Status ApplyPayloadSelection(const Json& obj, bool fallback, std::string_view where,
                             SearchRequest* req) {
  VECTORD_ASSIGN_OR_RETURN(PayloadSelection sel, ParseWithPayload(obj, fallback, where));
  req->with_payload = sel.with_payload;
  req->payload_include = std::move(sel.include);
  req->payload_exclude = std::move(sel.exclude);
  VECTORD_ASSIGN_OR_RETURN(req->with_vector, ParseWithVector(obj, where));
  return Status::OK();
}

}  // namespace

Status CheckKnownFields(const Json& obj, std::initializer_list<std::string_view> allowed,
                        std::string_view what) {
  if (!obj.is_object()) {
    return Status::InvalidArgument(std::string(what.empty() ? "request body" : what) +
                                   ": expected a JSON object, got " + obj.type_name());
  }
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (std::string_view a : allowed) known = known || it.key() == a;
    if (!known) {
      std::string list;
      for (std::string_view a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      return Status::InvalidArgument(Path(what, it.key()) +
                                     ": unknown field (expected one of: " + list + ")");
    }
  }
  return Status::OK();
}

Result<size_t> GetCount(const Json& obj, std::string_view key, size_t fallback, size_t max,
                        std::string_view where) {
  const Json* v = Field(obj, key);
  if (!v) return fallback;
  if (!v->is_number_unsigned()) {
    return Invalid(where, key, "expected a non-negative integer, got " + v->dump());
  }
  uint64_t n = v->get<uint64_t>();
  if (n > max) {
    return Invalid(where, key, std::to_string(n) + " exceeds the maximum " + std::to_string(max));
  }
  return static_cast<size_t>(n);
}

Result<bool> GetBool(const Json& obj, std::string_view key, bool fallback, std::string_view where) {
  const Json* v = Field(obj, key);
  if (!v) return fallback;
  if (!v->is_boolean()) return Invalid(where, key, "expected true or false, got " + v->dump());
  return v->get<bool>();
}

Result<PayloadSelection> ParseWithPayload(const Json& obj, bool fallback, std::string_view where) {
  PayloadSelection sel;
  const Json* v = Field(obj, "with_payload");
  std::string w = Path(where, "with_payload");
  if (!v) {
    sel.with_payload = fallback;
  } else if (v->is_boolean()) {
    sel.with_payload = v->get<bool>();
  } else if (v->is_array()) {
    VECTORD_ASSIGN_OR_RETURN(sel.include, StringList(*v, w));
    sel.with_payload = true;
  } else if (v->is_object()) {
    VECTORD_RETURN_IF_ERROR(CheckKnownFields(*v, {"include", "exclude"}, w));
    if (v->contains("include") == v->contains("exclude")) {
      return Status::InvalidArgument(w + ": give exactly one of include or exclude");
    }
    if (v->contains("include")) {
      VECTORD_ASSIGN_OR_RETURN(sel.include, StringList((*v)["include"], w + ".include"));
    } else {
      VECTORD_ASSIGN_OR_RETURN(sel.exclude, StringList((*v)["exclude"], w + ".exclude"));
    }
    sel.with_payload = true;
  } else {
    return Status::InvalidArgument(w + ": expected a bool, an array of keys or {include|exclude}");
  }
  return sel;
}

Result<bool> ParseWithVector(const Json& obj, std::string_view where) {
  const Json* v = Field(obj, "with_vector");
  if (!v) return false;
  if (v->is_boolean()) return v->get<bool>();
  return Invalid(where, "with_vector", "expected true or false (named vectors are not supported)");
}

Result<std::vector<float>> ParseVector(const Json& j, std::string_view where, uint32_t* count) {
  *count = 0;
  if (j.is_array() && !j.empty() && j[0].is_array()) {
    // A list of vectors (multi-vector collections): all of one size, each parsed as below.
    std::vector<float> out;
    size_t dim = 0;
    for (size_t i = 0; i < j.size(); ++i) {
      const std::string w = std::string(where) + "[" + std::to_string(i) + "]";
      if (!j[i].is_array()) return Status::InvalidArgument(w + ": expected an array of numbers");
      uint32_t inner = 0;
      VECTORD_ASSIGN_OR_RETURN(std::vector<float> v, ParseVector(j[i], w, &inner));
      if (inner != 0) return Status::InvalidArgument(w + ": expected an array of numbers");
      if (i == 0) dim = v.size();
      if (v.size() != dim || dim == 0) {
        return Status::InvalidArgument(w + ": has " + std::to_string(v.size()) +
                                       " dimensions, vector 0 has " + std::to_string(dim) +
                                       " (all vectors of a multi-vector must have one size)");
      }
      out.insert(out.end(), v.begin(), v.end());
    }
    *count = static_cast<uint32_t>(j.size());
    return out;
  }
  if (j.is_object()) {
    return Status::InvalidArgument(std::string(where) +
                                   ": named or sparse vectors are not supported yet");
  }
  if (!j.is_array()) {
    return Status::InvalidArgument(std::string(where) + ": expected an array of numbers");
  }
  std::vector<float> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const Json& x = j[i];
    if (!x.is_number()) {
      return Status::InvalidArgument(std::string(where) + ": element " + std::to_string(i) +
                                     " is not a number");
    }
    double d = x.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
      return Status::InvalidArgument(std::string(where) + ": element " + std::to_string(i) +
                                     " is out of float32 range");
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

Result<std::vector<PointId>> ParsePointIds(const Json& j, size_t max, std::string_view where) {
  if (!j.is_array())
    return Status::InvalidArgument(std::string(where) + ": expected an array of ids");
  if (j.size() > max) {
    return Status::InvalidArgument(std::string(where) + ": " + std::to_string(j.size()) +
                                   " ids exceed the maximum " + std::to_string(max));
  }
  std::vector<PointId> ids;
  ids.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    VECTORD_ASSIGN_OR_RETURN(
        PointId id, PointIdFromJson(j[i], std::string(where) + "[" + std::to_string(i) + "]"));
    ids.push_back(id);
  }
  return ids;
}

Result<PointSelector> ParsePointSelector(const Json& obj, size_t max_ids, std::string_view where) {
  const Json* points = Field(obj, "points");
  const Json* filter = Field(obj, "filter");
  if (points && filter) {
    return Status::InvalidArgument(std::string(where) + ": give either points or filter, not both");
  }
  if (!points && !filter) {
    return Status::InvalidArgument(std::string(where) + ": missing field 'points' (or 'filter')");
  }
  PointSelector sel;
  if (points) {
    VECTORD_ASSIGN_OR_RETURN(sel.ids, ParsePointIds(*points, max_ids, "points"));
  } else {
    VECTORD_ASSIGN_OR_RETURN(sel.filter, ParseFilter(*filter, "filter"));
    if (!sel.filter) return Status::InvalidArgument("filter: must not be null");
  }
  return sel;
}

Result<SearchRequest> ParseSearchRequest(const Json& obj, const ApiLimits& limits,
                                         std::string_view where) {
  VECTORD_RETURN_IF_ERROR(
      CheckKnownFields(obj,
                       {"vector", "filter", "params", "limit", "top", "offset", "with_payload",
                        "with_vector", "score_threshold", "shard_key"},
                       where.empty() ? "search request" : where));
  SearchRequest req;
  const Json* v = Field(obj, "vector");
  if (!v) return Invalid(where, "vector", "missing (the query vector is required)");
  VECTORD_ASSIGN_OR_RETURN(req.vector, ParseVector(*v, Path(where, "vector"), &req.vector_count));
  VECTORD_ASSIGN_OR_RETURN(req.filter, GetFilter(obj, where));
  VECTORD_RETURN_IF_ERROR(GetLimitOffset(obj, limits, where, &req.limit, &req.offset));
  VECTORD_RETURN_IF_ERROR(GetScoreThreshold(obj, where, &req.score_threshold));
  VECTORD_RETURN_IF_ERROR(GetParams(obj, where, &req));
  VECTORD_RETURN_IF_ERROR(ApplyPayloadSelection(obj, false, where, &req));
  return req;
}

Result<QueryPlan> ParseQueryRequest(const Json& obj, const ApiLimits& limits,
                                    std::string_view where) {
  VECTORD_RETURN_IF_ERROR(CheckKnownFields(
      obj,
      {"query", "filter", "params", "limit", "offset", "with_payload", "with_vector",
       "score_threshold", "shard_key", "prefetch", "using", "lookup_from"},
      where.empty() ? "query request" : where));
  if (Field(obj, "prefetch")) return Invalid(where, "prefetch", "prefetch is not supported yet");
  if (Field(obj, "lookup_from")) {
    return Invalid(where, "lookup_from", "lookup_from is not supported yet");
  }
  if (const Json* u = Field(obj, "using");
      u && !(u->is_string() && u->get<std::string>().empty())) {
    return Invalid(where, "using", "named vectors are not supported yet");
  }
  QueryPlan plan;
  const Json* q = Field(obj, "query");
  std::string qw = Path(where, "query");
  if (q && q->is_object()) {
    VECTORD_RETURN_IF_ERROR(CheckKnownFields(*q, {"nearest", "mmr"}, qw));
    if (Field(*q, "mmr")) return Status::InvalidArgument(qw + ".mmr: MMR is not supported yet");
    if (!Field(*q, "nearest")) {
      return Status::InvalidArgument(qw + ": only {\"nearest\": ...} queries are supported");
    }
    q = &(*q)["nearest"];
    qw += ".nearest";
  }
  if (!q) {
    plan.scroll = true;
  } else if (q->is_array()) {
    VECTORD_ASSIGN_OR_RETURN(plan.search.vector, ParseVector(*q, qw, &plan.search.vector_count));
  } else if (q->is_number() || q->is_string()) {
    VECTORD_ASSIGN_OR_RETURN(PointId id, PointIdFromJson(*q, qw));
    plan.query_id = id;
  } else {
    return Status::InvalidArgument(qw + ": expected a vector, a point id or {\"nearest\": ...}");
  }
  SearchRequest& req = plan.search;
  VECTORD_ASSIGN_OR_RETURN(req.filter, GetFilter(obj, where));
  VECTORD_RETURN_IF_ERROR(GetLimitOffset(obj, limits, where, &req.limit, &req.offset));
  VECTORD_RETURN_IF_ERROR(GetScoreThreshold(obj, where, &req.score_threshold));
  VECTORD_RETURN_IF_ERROR(GetParams(obj, where, &req));
  VECTORD_RETURN_IF_ERROR(ApplyPayloadSelection(obj, false, where, &req));
  return plan;
}

Result<ScrollRequest> ParseScrollRequest(const Json& obj, const ApiLimits& limits) {
  VECTORD_RETURN_IF_ERROR(CheckKnownFields(
      obj, {"offset", "limit", "filter", "with_payload", "with_vector", "shard_key", "order_by"},
      "scroll request"));
  if (Field(obj, "order_by")) return Status::InvalidArgument("order_by: not supported yet");
  ScrollRequest req;
  VECTORD_ASSIGN_OR_RETURN(req.filter, GetFilter(obj, ""));
  VECTORD_ASSIGN_OR_RETURN(req.limit, GetCount(obj, "limit", 10, limits.max_result, ""));
  if (const Json* off = Field(obj, "offset")) {
    VECTORD_ASSIGN_OR_RETURN(PointId id, PointIdFromJson(*off, "offset"));
    req.offset = id;
  }
  VECTORD_ASSIGN_OR_RETURN(PayloadSelection sel, ParseWithPayload(obj, true, ""));
  req.with_payload = sel.with_payload;
  req.payload_include = std::move(sel.include);
  req.payload_exclude = std::move(sel.exclude);
  VECTORD_ASSIGN_OR_RETURN(req.with_vector, ParseWithVector(obj, ""));
  return req;
}

}  // namespace vectord::server
