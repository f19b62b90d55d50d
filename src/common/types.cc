// Implementations of the plain types declared in include/vectord/types.h and collection.h.
#include "vectord/types.h"

#include <cstring>
#include <functional>

#include "vectord/collection.h"

namespace vectord {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<PointId> PointId::ParseUuid(std::string_view s) {
  std::string_view t = s;
  if (t.size() > 9 && (t.substr(0, 9) == "urn:uuid:" || t.substr(0, 9) == "URN:UUID:")) {
    t.remove_prefix(9);
  }
  if (t.size() == 38 && t.front() == '{' && t.back() == '}') t = t.substr(1, 36);
  std::array<uint8_t, 16> b{};
  size_t nibbles = 0;
  if (t.size() == 36) {
    for (size_t i = 0; i < t.size(); ++i) {
      if (i == 8 || i == 13 || i == 18 || i == 23) {
        if (t[i] != '-') nibbles = 99;
        continue;
      }
      int v = HexValue(t[i]);
      if (v < 0 || nibbles >= 32) {
        nibbles = 99;
        break;
      }
      b[nibbles / 2] = static_cast<uint8_t>(b[nibbles / 2] << 4 | v);
      ++nibbles;
    }
  } else if (t.size() == 32) {
    for (char c : t) {
      int v = HexValue(c);
      if (v < 0) {
        nibbles = 99;
        break;
      }
      b[nibbles / 2] = static_cast<uint8_t>(b[nibbles / 2] << 4 | v);
      ++nibbles;
    }
  }
  if (nibbles != 32) {
    return Status::InvalidArgument("'" + std::string(s.substr(0, 64)) +
                                   "' is not a valid point id: expected an unsigned integer or "
                                   "a UUID like 550e8400-e29b-41d4-a716-446655440000");
  }
  return PointId::Uuid(b);
}

std::string PointId::ToString() const {
  if (!is_uuid_) return std::to_string(num_);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[uuid_[i] >> 4]);
    out.push_back(kHex[uuid_[i] & 15]);
  }
  return out;
}

std::string PointId::Key() const {
  std::string k;
  if (!is_uuid_) {
    k.resize(9);
    k[0] = 0;
    for (int i = 0; i < 8; ++i) k[1 + i] = static_cast<char>(num_ >> (56 - 8 * i));
  } else {
    k.resize(17);
    k[0] = 1;
    std::memcpy(k.data() + 1, uuid_.data(), 16);
  }
  return k;
}

Result<PointId> PointId::FromKey(std::string_view key) {
  if (key.size() == 9 && key[0] == 0) {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n = n << 8 | static_cast<uint8_t>(key[1 + i]);
    return PointId::Num(n);
  }
  if (key.size() == 17 && key[0] == 1) {
    std::array<uint8_t, 16> b;
    std::memcpy(b.data(), key.data() + 1, 16);
    return PointId::Uuid(b);
  }
  return Status::Corruption("bad point id key of " + std::to_string(key.size()) + " bytes");
}

size_t PointIdHash::operator()(const PointId& p) const noexcept {
  if (!p.is_uuid()) return std::hash<uint64_t>()(p.num() * 0x9E3779B97F4A7C15ull);
  uint64_t a, b;
  std::memcpy(&a, p.uuid().data(), 8);
  std::memcpy(&b, p.uuid().data() + 8, 8);
  return std::hash<uint64_t>()(a ^ (b * 0x9E3779B97F4A7C15ull) ^ 1);
}

const char* DistanceName(Distance d) {
  switch (d) {
    case Distance::kEuclid:
      return "Euclid";
    case Distance::kDot:
      return "Dot";
    case Distance::kCosine:
      return "Cosine";
    case Distance::kManhattan:
      return "Manhattan";
  }
  return "?";
}

std::optional<Distance> ParseDistance(std::string_view s) {
  if (s == "Euclid") return Distance::kEuclid;
  if (s == "Dot") return Distance::kDot;
  if (s == "Cosine") return Distance::kCosine;
  if (s == "Manhattan") return Distance::kManhattan;
  return std::nullopt;
}

const char* DataTypeName(DataType t) {
  switch (t) {
    case DataType::kFloat32:
      return "float32";
    case DataType::kUint8:
      return "uint8";
    case DataType::kFloat16:
      return "float16";
    case DataType::kInt8:
      return "int8";
  }
  return "?";
}

std::optional<DataType> ParseDataType(std::string_view s) {
  if (s == "float32") return DataType::kFloat32;
  if (s == "uint8") return DataType::kUint8;
  if (s == "float16") return DataType::kFloat16;
  if (s == "int8") return DataType::kInt8;
  return std::nullopt;
}

size_t DataTypeSize(DataType t) {
  switch (t) {
    case DataType::kFloat32:
      return 4;
    case DataType::kFloat16:
      return 2;
    case DataType::kUint8:
    case DataType::kInt8:
      return 1;
  }
  return 4;
}

const char* PayloadSchemaName(PayloadSchemaType t) {
  switch (t) {
    case PayloadSchemaType::kKeyword:
      return "keyword";
    case PayloadSchemaType::kInteger:
      return "integer";
    case PayloadSchemaType::kFloat:
      return "float";
    case PayloadSchemaType::kBool:
      return "bool";
  }
  return "?";
}

std::optional<PayloadSchemaType> ParsePayloadSchema(std::string_view s) {
  if (s == "keyword") return PayloadSchemaType::kKeyword;
  if (s == "integer") return PayloadSchemaType::kInteger;
  if (s == "float") return PayloadSchemaType::kFloat;
  if (s == "bool") return PayloadSchemaType::kBool;
  return std::nullopt;
}

}  // namespace vectord
