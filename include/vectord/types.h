// Plain types shared by every layer: point ids, metrics, element types, points and results.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vectord/status.h"

namespace vectord {

using Json = nlohmann::json;

// Dense per-collection id of one stored version of a point; the row number in the vector file.
using InternalId = uint32_t;
inline constexpr InternalId kInvalidInternalId = 0xFFFFFFFFu;

// A point id as Qdrant has it: an unsigned 64-bit integer or a UUID. Numeric ids order before
// UUIDs; UUIDs order by their 16 bytes (scroll uses this order).
class PointId {
 public:
  PointId() = default;
  static PointId Num(uint64_t n) {
    PointId p;
    p.num_ = n;
    return p;
  }
  static PointId Uuid(const std::array<uint8_t, 16>& b) {
    PointId p;
    p.is_uuid_ = true;
    p.uuid_ = b;
    return p;
  }
  // Accepts "550e8400-e29b-41d4-a716-446655440000" (any case), the 32-hex-digit simple form,
  // and "{...}"/"urn:uuid:" forms as Qdrant does. Error message names the offending text.
  static Result<PointId> ParseUuid(std::string_view s);

  bool is_uuid() const { return is_uuid_; }
  uint64_t num() const { return num_; }
  const std::array<uint8_t, 16>& uuid() const { return uuid_; }

  // Canonical text: decimal number, or lower-case hyphenated UUID.
  std::string ToString() const;
  // Order-preserving binary key: 0x00 + 8 big-endian bytes, or 0x01 + 16 bytes.
  std::string Key() const;
  static Result<PointId> FromKey(std::string_view key);

  friend bool operator==(const PointId& a, const PointId& b) {
    return a.is_uuid_ == b.is_uuid_ && (a.is_uuid_ ? a.uuid_ == b.uuid_ : a.num_ == b.num_);
  }
  friend bool operator<(const PointId& a, const PointId& b) {
    if (a.is_uuid_ != b.is_uuid_) return !a.is_uuid_;
    return a.is_uuid_ ? a.uuid_ < b.uuid_ : a.num_ < b.num_;
  }

 private:
  bool is_uuid_ = false;
  uint64_t num_ = 0;
  std::array<uint8_t, 16> uuid_{};
};

struct PointIdHash {
  size_t operator()(const PointId& p) const noexcept;
};

// Similarity as Qdrant names it. Scores returned: Euclid = L2 distance (smaller is better),
// Dot = inner product, Cosine = inner product of normalized vectors (larger is better).
enum class Distance : uint8_t { kEuclid = 0, kDot = 1, kCosine = 2, kManhattan = 3 };
// Element type of stored vectors.
enum class DataType : uint8_t { kFloat32 = 0, kUint8 = 1, kFloat16 = 2, kInt8 = 3 };

const char* DistanceName(Distance d);  // "Euclid", "Dot", "Cosine", "Manhattan"
std::optional<Distance> ParseDistance(std::string_view s);
const char* DataTypeName(DataType t);  // "float32", "uint8", "float16", "int8"
std::optional<DataType> ParseDataType(std::string_view s);
size_t DataTypeSize(DataType t);  // bytes per element
// Smaller score is better only for distances (Euclid, Manhattan).
inline bool LowerIsBetter(Distance d) {
  return d == Distance::kEuclid || d == Distance::kManhattan;
}

// A point as a client sends it: vector values as float (checked and converted to the collection's
// data type by the engine), and a JSON object payload (may be null = no payload).
struct PointStruct {
  PointId id;
  // A single vector, or (multi-vector collections) vector_count vectors back to back.
  std::vector<float> vector;
  Json payload;               // object or null
  uint32_t vector_count = 0;  // 0: `vector` is one vector; n > 0: a set of n vectors
};

// A point as returned by retrieve/scroll.
struct Record {
  PointId id;
  std::optional<Json> payload;               // set when asked for
  std::optional<std::vector<float>> vector;  // set when asked for (decoded to float)
  uint32_t vector_count = 0;  // multi-vector collections: `vector` holds this many vectors
};

struct ScoredPoint {
  PointId id;
  uint64_t version = 0;  // Qdrant's per-point version; we return the internal id's sequence
  float score = 0;
  std::optional<Json> payload;
  std::optional<std::vector<float>> vector;
  uint32_t vector_count = 0;  // multi-vector collections: `vector` holds this many vectors
};

}  // namespace vectord
