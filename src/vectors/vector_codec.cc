// Element encoding of stored vectors (vector_codec.h).
#include "src/vectors/vector_codec.h"

#include <cmath>
#include <cstring>

#include "index/distance.h"

namespace vectord {

Status EncodeElements(const std::string& where, const float* v, uint32_t dim, DataType type,
                      bool normalize, uint8_t* dst) {
  for (size_t i = 0; i < dim; ++i) {
    if (!std::isfinite(v[i])) {
      return Status::InvalidArgument(where + "element " + std::to_string(i) +
                                     " is not a finite number");
    }
  }
  auto check_int = [&](size_t i, float lo, float hi) -> Status {
    if (v[i] != std::nearbyint(v[i]) || v[i] < lo || v[i] > hi) {
      return Status::InvalidArgument(where + "element " + std::to_string(i) + " = " +
                                     std::to_string(v[i]) + " is not an integer in [" +
                                     std::to_string(int(lo)) + ", " + std::to_string(int(hi)) +
                                     "] as datatype " + DataTypeName(type) + " requires");
    }
    return Status::OK();
  };
  float scale = 1.0f;
  if (normalize) {
    double norm = 0;
    for (size_t i = 0; i < dim; ++i) norm += double{v[i]} * v[i];
    if (norm > 0) scale = static_cast<float>(1.0 / std::sqrt(norm));
  }
  switch (type) {
    case DataType::kFloat32:
      for (size_t i = 0; i < dim; ++i) {
        const float x = v[i] * scale;
        std::memcpy(dst + 4 * i, &x, 4);
      }
      break;
    case DataType::kFloat16:
      for (size_t i = 0; i < dim; ++i) {
        const float x = v[i] * scale;
        if (std::fabs(x) > 65504.0f) {
          return Status::InvalidArgument(where + "element " + std::to_string(i) +
                                         " overflows float16");
        }
        const uint16_t h = index::FloatToHalf(x);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      break;
    case DataType::kUint8:
      for (size_t i = 0; i < dim; ++i) {
        VECTORD_RETURN_IF_ERROR(check_int(i, 0, 255));
        dst[i] = static_cast<uint8_t>(v[i]);
      }
      break;
    case DataType::kInt8:
      for (size_t i = 0; i < dim; ++i) {
        VECTORD_RETURN_IF_ERROR(check_int(i, -128, 127));
        dst[i] = static_cast<uint8_t>(static_cast<int8_t>(v[i]));
      }
      break;
  }
  return Status::OK();
}

void DecodeElements(const uint8_t* p, uint32_t dim, DataType type, float* v) {
  for (uint32_t i = 0; i < dim; ++i) {
    switch (type) {
      case DataType::kFloat32:
        std::memcpy(&v[i], p + 4 * i, 4);
        break;
      case DataType::kFloat16: {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        v[i] = index::HalfToFloat(h);
        break;
      }
      case DataType::kUint8:
        v[i] = p[i];
        break;
      case DataType::kInt8:
        v[i] = static_cast<int8_t>(p[i]);
        break;
    }
  }
}

}  // namespace vectord
