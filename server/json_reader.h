// Strict, fast JSON reader for request bodies: a recursive-descent parser with a nesting limit
// (no stack overflow on hostile input), std::from_chars numbers (NaN, Infinity and overflowing
// numbers are errors), UTF-8 validation, and errors that name the byte offset. It also parses the
// upsert bodies straight into engine points, without building a DOM for the vectors.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord::server {

inline constexpr int kDefaultMaxJsonDepth = 64;

// Parses a whole document. An empty (or all-whitespace) body is an error; callers that accept
// an empty body check for it first.
Result<Json> ParseJson(std::string_view text, int max_depth = kDefaultMaxJsonDepth);

// An upsert request, either shape: {"points":[{id, vector, payload}]} or
// {"batch":{"ids":[...], "vectors":[[...]], "payloads":[...]}}.
struct UpsertBody {
  std::vector<PointStruct> points;
};

// Parses an upsert body. Vectors are parsed straight into floats; ids are checked (non-negative
// integers or UUID strings); payloads must be objects or null. `max_points` bounds the batch.
Result<UpsertBody> ParseUpsertBody(std::string_view text, size_t max_points,
                                   int max_depth = kDefaultMaxJsonDepth);

// Converts a JSON id (non-negative integer or UUID string) into a PointId; `where` names it in
// errors ("points[3].id").
Result<PointId> PointIdFromJson(const Json& j, std::string_view where);

}  // namespace vectord::server
