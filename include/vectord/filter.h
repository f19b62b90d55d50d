// Qdrant's filter language, parsed once into an immutable tree (index/filter.h has the tree and
// its evaluation). Parse errors name the JSON path of the offending part ("filter.must[1].range").
#pragma once

#include <memory>

#include "vectord/types.h"

namespace vectord {

struct Filter;  // defined in index/filter.h
using FilterPtr = std::shared_ptr<const Filter>;

// Parses a Qdrant filter object ({"must": [...], "should": [...], "must_not": [...],
// "min_should": {...}}). `path` prefixes error messages. Null JSON gives a null FilterPtr.
Result<FilterPtr> ParseFilter(const Json& j, const std::string& path = "filter");

}  // namespace vectord
