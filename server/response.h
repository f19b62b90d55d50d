// HTTP responses of the API: the Qdrant envelope {"result":..., "status":"ok", "time":s}, the
// error shape {"status":{"error":"..."}, "time":s}, and fast writers for points and floats.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "vectord/collection.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord::server {

struct HttpResponse {
  unsigned status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::string allow;  // for 405: the methods the route accepts
};

// Maps an engine Status code to its HTTP status (README "Errors and limits").
unsigned HttpStatusFor(const Status& s);

// {"status":{"error":message},"time":seconds}
HttpResponse ErrorResponse(unsigned http_status, std::string_view message, double seconds);
HttpResponse ErrorResponse(const Status& s, double seconds);

// Builds {"result":<written by caller>,"status":"ok","time":s}: Begin() writes the prefix into
// out, Finish() the suffix.
void BeginEnvelope(std::string* out);
void FinishEnvelope(std::string* out, double seconds);
HttpResponse OkResponse(const Json& result, double seconds);

// Shortest round-trip text of a float (std::to_chars).
void AppendFloat(std::string* out, float f);
void AppendDouble(std::string* out, double d);
void AppendUint(std::string* out, uint64_t v);
void AppendPointId(std::string* out, const PointId& id);
void AppendJson(std::string* out, const Json& j);
void AppendVector(std::string* out, const std::vector<float>& v);

// Keeps only `include` (when non-empty) and drops `exclude` top-level keys of a payload object.
void SelectPayload(Json* payload, const std::vector<std::string>& include,
                   const std::vector<std::string>& exclude);

// {"id":..,"version":..,"score":..,"payload":..,"vector":..}
void AppendScoredPoint(std::string* out, const ScoredPoint& p);
// {"id":..,"payload":..,"vector":..}
void AppendRecord(std::string* out, const Record& r);
// [p, p, ...]
void AppendScoredPoints(std::string* out, const std::vector<ScoredPoint>& points);

}  // namespace vectord::server
