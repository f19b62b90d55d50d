// Payload edits and projections with Qdrant's semantics: set_payload (optionally at a nested
// `key`), delete_payload keys, and the include/exclude projection of returned payloads. Key paths
// are dotted ("a.b.c"). Pure functions on JSON values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "vectord/types.h"

namespace vectord {

// `current` (null = no payload) with the fields of `update` set, at the object `key` names when
// given (created, or replacing a non-object there).
Json MergePayload(const Json& current, const Json& update, const std::optional<std::string>& key);
// `current` without the fields at `keys` (dotted paths; missing ones are ignored).
Json EraseKeys(const Json& current, const std::vector<std::string>& keys);
// The payload as returned: {} for none; only the `include` paths when non-empty; then without the
// `exclude` paths.
Json ProjectPayload(const Json& p, const std::vector<std::string>& include,
                    const std::vector<std::string>& exclude);

}  // namespace vectord
