// Turns the JSON of Qdrant-shaped requests into engine requests: field-by-field type checks,
// unknown-field detection, limits. Every error names the field ("searches[2].limit: ...").
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/collection.h"
#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord::server {

// Limits on one request (README "Errors and limits").
struct ApiLimits {
  size_t max_points_per_upsert = 65536;  // points (or batch ids) in one upsert
  size_t max_ids_per_request = 65536;    // ids in retrieve/delete/payload requests
  size_t max_result = 10000;             // limit + offset of search/query/scroll
  size_t max_batch_searches = 1024;      // searches in one search/query batch
  int max_json_depth = 64;               // nesting of the request body
};

// Fails naming the first key of `obj` that is not in `allowed`; `what` names the request.
Status CheckKnownFields(const Json& obj, std::initializer_list<std::string_view> allowed,
                        std::string_view what);

// An optional non-negative integer field; `fallback` when absent or null.
Result<size_t> GetCount(const Json& obj, std::string_view key, size_t fallback, size_t max,
                        std::string_view where);
// An optional boolean field.
Result<bool> GetBool(const Json& obj, std::string_view key, bool fallback, std::string_view where);

// with_payload: bool | [keys] | {"include":[...]} | {"exclude":[...]}.
struct PayloadSelection {
  bool with_payload = false;
  std::vector<std::string> include;
  std::vector<std::string> exclude;
};
Result<PayloadSelection> ParseWithPayload(const Json& obj, bool fallback, std::string_view where);
// with_vector: bool (named vectors are not supported).
Result<bool> ParseWithVector(const Json& obj, std::string_view where);

// An array of float values; rejects non-numbers and values outside float32.
// A vector, or a list of vectors of one size (multi-vector; *count = how many, else 0).
Result<std::vector<float>> ParseVector(const Json& j, std::string_view where, uint32_t* count);
Result<std::vector<PointId>> ParsePointIds(const Json& j, size_t max, std::string_view where);
// {"points":[...]} or {"filter":{...}} (exactly one).
Result<PointSelector> ParsePointSelector(const Json& obj, size_t max_ids, std::string_view where);

// The legacy search request (POST .../points/search); `where` prefixes errors.
Result<SearchRequest> ParseSearchRequest(const Json& obj, const ApiLimits& limits,
                                         std::string_view where);

// The universal query request (POST .../points/query). A query given as a point id leaves
// `query_id` set: the caller looks up that point's vector. No query at all: `scroll` is true.
struct QueryPlan {
  SearchRequest search;
  std::optional<PointId> query_id;
  bool scroll = false;
};
Result<QueryPlan> ParseQueryRequest(const Json& obj, const ApiLimits& limits,
                                    std::string_view where);

Result<ScrollRequest> ParseScrollRequest(const Json& obj, const ApiLimits& limits);

}  // namespace vectord::server
