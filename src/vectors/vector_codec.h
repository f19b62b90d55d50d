// Vector elements as a collection stores them: checked and converted from the floats a client
// sends (finite; integral and in range for uint8/int8; unit length first for Cosine) and decoded
// back to floats. Shared by the vector store, multi-vector token sets and MUVERA encodings.
#pragma once

#include <cstdint>
#include <string>

#include "vectord/status.h"
#include "vectord/types.h"

namespace vectord {

// Checks `dim` floats and stores them as `type` at dst, scaled to unit length first when
// `normalize`. Errors start with `where` ("point 3: vector ").
Status EncodeElements(const std::string& where, const float* v, uint32_t dim, DataType type,
                      bool normalize, uint8_t* dst);
// Stored elements of `type` -> dim floats.
void DecodeElements(const uint8_t* p, uint32_t dim, DataType type, float* v);

}  // namespace vectord
