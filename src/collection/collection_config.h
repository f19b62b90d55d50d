// A collection's configuration as stored in the catalog and accepted over HTTP: the JSON forms of
// CollectionConfig, SpannConfig and MuveraConfig (the structs are public, include/vectord/
// collection.h), with the range checks whose messages name the field. docs/formats.md "Catalog
// entry"; the fields are documented in docs/http_api.md, docs/spann.md and docs/muvera.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "index/muvera.h"
#include "vectord/collection.h"
#include "vectord/status.h"

namespace vectord {

// Catalog JSON <-> config.
Json CollectionConfigToJson(const CollectionConfig& c);
Result<CollectionConfig> CollectionConfigFromJson(const Json& j);

// Reads the integer config field `<section>.<key>` = v into *out when it lies in [lo, hi]; else
// InvalidArgument naming the field, the range and the value.
template <typename T>
Status ConfigUint(const std::string& section, const std::string& key, const Json& v, uint64_t lo,
                  uint64_t hi, T* out) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<int64_t>() < 0) ||
      v.get<uint64_t>() < lo || v.get<uint64_t>() > hi) {
    return Status::InvalidArgument(section + "." + key + " must be an integer in [" +
                                   std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                   v.dump());
  }
  *out = static_cast<T>(v.get<uint64_t>());
  return Status::OK();
}

// The MUVERA encoder's parameters for a collection of `dim`-sized vectors (index/muvera.h).
index::MuveraParams MuveraParamsOf(const MuveraConfig& c, uint32_t dim, std::vector<float> center);

}  // namespace vectord
