// Fast JSON text for the request bodies vectorctl sends: vectors are formatted by hand
// (std::to_chars, look-up tables for byte values) instead of through a JSON DOM, so that one core
// can produce hundreds of thousands of 128-d points per second.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/dataset_io.h"
#include "vectord/status.h"

namespace vectord::vectorctl {

// Appends "[v0,v1,...]" for one row of `dim` elements of type `t` (floats in shortest
// round-trip form; non-finite floats become null, which the server rejects by name).
void AppendVectorJson(std::string* out, storage::ElementType t, const void* row, uint32_t dim);

// Checks that `line` is one JSON object (surrounding whitespace allowed). An empty or all-blank
// line means "no payload" and is accepted. The error names `where` (e.g. "attrs.jsonl line 7").
Status ValidatePayloadLine(std::string_view line, std::string_view where);

// Appends the upsert body {"points":[{"id":first_id+i,"vector":[...],"payload":{...}},...]} for
// `count` rows laid out back to back. `payloads` is null or has `count` entries (raw JSON objects
// already validated; blank = no payload).
void AppendPointsBody(std::string* out, storage::ElementType t, uint32_t dim, const void* rows,
                      size_t count, uint64_t first_id, const std::string_view* payloads);

// Appends {"query":[...],"limit":k[,"params":{"exact":true}][,"with_payload":true]
// [,"filter":F]} for one query; `filter` is JSON text (already validated), empty = none.
void AppendQueryBody(std::string* out, storage::ElementType t, uint32_t dim, const void* row,
                     size_t k, bool exact, bool with_payload = false, std::string_view filter = {});

}  // namespace vectord::vectorctl
