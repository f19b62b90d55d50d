// Response writers for the HTTP API (see response.h).
#include "server/response.h"

#include <charconv>
#include <cmath>

namespace vectord::server {

unsigned HttpStatusFor(const Status& s) {
  switch (s.code()) {
    case Status::Code::kOk:
      return 200;
    case Status::Code::kInvalidArgument:
    case Status::Code::kFailedPrecondition:
      return 400;
    case Status::Code::kNotFound:
      return 404;
    case Status::Code::kAlreadyExists:
      return 409;
    case Status::Code::kPayloadTooLarge:
      return 413;
    case Status::Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

HttpResponse ErrorResponse(unsigned http_status, std::string_view message, double seconds) {
  HttpResponse r;
  r.status = http_status;
  r.body.reserve(message.size() + 64);
  r.body += "{\"status\":{\"error\":";
  AppendJson(&r.body, Json(std::string(message)));
  r.body += "},\"time\":";
  AppendDouble(&r.body, seconds);
  r.body += '}';
  return r;
}

HttpResponse ErrorResponse(const Status& s, double seconds) {
  return ErrorResponse(HttpStatusFor(s), s.message(), seconds);
}

void BeginEnvelope(std::string* out) { *out += "{\"result\":"; }

void FinishEnvelope(std::string* out, double seconds) {
  *out += ",\"status\":\"ok\",\"time\":";
  AppendDouble(out, seconds);
  *out += '}';
}

HttpResponse OkResponse(const Json& result, double seconds) {
  HttpResponse r;
  BeginEnvelope(&r.body);
  AppendJson(&r.body, result);
  FinishEnvelope(&r.body, seconds);
  return r;
}

void AppendFloat(std::string* out, float f) {
  if (!std::isfinite(f)) {
    *out += "null";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), f);
  out->append(buf, r.ptr);
}

void AppendDouble(std::string* out, double d) {
  if (!std::isfinite(d)) {
    *out += "null";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);
  out->append(buf, r.ptr);
}

void AppendUint(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, r.ptr);
}

void AppendPointId(std::string* out, const PointId& id) {
  if (id.is_uuid()) {
    *out += '"';
    *out += id.ToString();
    *out += '"';
  } else {
    AppendUint(out, id.num());
  }
}

void AppendJson(std::string* out, const Json& j) {
  // Invalid UTF-8 cannot reach a stored payload (the reader validates), but be safe.
  *out += j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void AppendVector(std::string* out, const std::vector<float>& v) {
  out->reserve(out->size() + v.size() * 12 + 2);
  *out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) *out += ',';
    AppendFloat(out, v[i]);
  }
  *out += ']';
}

// One vector, or (count > 0) a list of `count` vectors stored back to back in v.
void AppendVectorOrList(std::string* out, const std::vector<float>& v, uint32_t count) {
  if (count == 0) return AppendVector(out, v);
  const size_t dim = v.size() / count;
  out->reserve(out->size() + v.size() * 12 + 2 * count + 2);
  *out += '[';
  for (uint32_t j = 0; j < count; ++j) {
    if (j) *out += ',';
    *out += '[';
    for (size_t i = 0; i < dim; ++i) {
      if (i) *out += ',';
      AppendFloat(out, v[j * dim + i]);
    }
    *out += ']';
  }
  *out += ']';
}

void SelectPayload(Json* payload, const std::vector<std::string>& include,
                   const std::vector<std::string>& exclude) {
  if (!payload->is_object()) return;
  if (!include.empty()) {
    Json kept = Json::object();
    for (const auto& k : include) {
      auto it = payload->find(k);
      if (it != payload->end()) kept[k] = std::move(*it);
    }
    *payload = std::move(kept);
  }
  for (const auto& k : exclude) payload->erase(k);
}

void AppendScoredPoint(std::string* out, const ScoredPoint& p) {
  *out += "{\"id\":";
  AppendPointId(out, p.id);
  *out += ",\"version\":";
  AppendUint(out, p.version);
  *out += ",\"score\":";
  AppendFloat(out, p.score);
  if (p.payload) {
    *out += ",\"payload\":";
    AppendJson(out, p.payload->is_null() ? Json::object() : *p.payload);
  }
  if (p.vector) {
    *out += ",\"vector\":";
    AppendVectorOrList(out, *p.vector, p.vector_count);
  }
  *out += '}';
}

void AppendRecord(std::string* out, const Record& r) {
  *out += "{\"id\":";
  AppendPointId(out, r.id);
  if (r.payload) {
    *out += ",\"payload\":";
    AppendJson(out, r.payload->is_null() ? Json::object() : *r.payload);
  }
  if (r.vector) {
    *out += ",\"vector\":";
    AppendVectorOrList(out, *r.vector, r.vector_count);
  }
  *out += '}';
}

void AppendScoredPoints(std::string* out, const std::vector<ScoredPoint>& points) {
  *out += '[';
  for (size_t i = 0; i < points.size(); ++i) {
    if (i) *out += ',';
    AppendScoredPoint(out, points[i]);
  }
  *out += ']';
}

}  // namespace vectord::server
