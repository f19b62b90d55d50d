// Hand-written JSON formatting of points and queries; see point_body.h.
#include "tools/vectorctl/point_body.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

namespace vectord::vectorctl {
namespace {

// Decimal text of every byte value, as unsigned (0..255) and as signed (-128..127).
struct ByteTexts {
  std::array<std::array<char, 4>, 256> u;
  std::array<uint8_t, 256> u_len;
  std::array<std::array<char, 4>, 256> s;  // indexed by the byte's unsigned value
  std::array<uint8_t, 256> s_len;
  ByteTexts() {
    for (int v = 0; v < 256; ++v) {
      auto r = std::to_chars(u[v].data(), u[v].data() + 4, v);
      u_len[v] = static_cast<uint8_t>(r.ptr - u[v].data());
      const int sv = static_cast<int8_t>(static_cast<uint8_t>(v));
      r = std::to_chars(s[v].data(), s[v].data() + 4, sv);
      s_len[v] = static_cast<uint8_t>(r.ptr - s[v].data());
    }
  }
};
const ByteTexts& Texts() {
  static const ByteTexts t;
  return t;
}

template <typename Emit>
void AppendList(std::string* out, uint32_t dim, size_t max_elem_chars, Emit emit) {
  const size_t start = out->size();
  out->resize(start + 2 + dim * (max_elem_chars + 1));
  char* p = out->data() + start;
  *p++ = '[';
  for (uint32_t i = 0; i < dim; ++i) {
    if (i) *p++ = ',';
    p = emit(p, i);
  }
  *p++ = ']';
  out->resize(static_cast<size_t>(p - out->data()));
}

void AppendU64(std::string* out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

}  // namespace

void AppendVectorJson(std::string* out, storage::ElementType t, const void* row, uint32_t dim) {
  using storage::ElementType;
  const ByteTexts& bt = Texts();
  switch (t) {
    case ElementType::kUint8: {
      const uint8_t* x = static_cast<const uint8_t*>(row);
      AppendList(out, dim, 3, [&](char* p, uint32_t i) {
        std::memcpy(p, bt.u[x[i]].data(), 4);  // copies 4, advances by the real length
        return p + bt.u_len[x[i]];
      });
      break;
    }
    case ElementType::kInt8: {
      const uint8_t* x = static_cast<const uint8_t*>(row);
      AppendList(out, dim, 4, [&](char* p, uint32_t i) {
        std::memcpy(p, bt.s[x[i]].data(), 4);
        return p + bt.s_len[x[i]];
      });
      break;
    }
    case ElementType::kInt32: {
      const char* x = static_cast<const char*>(row);
      AppendList(out, dim, 11, [&](char* p, uint32_t i) {
        int32_t v;
        std::memcpy(&v, x + 4 * i, 4);
        return std::to_chars(p, p + 11, v).ptr;
      });
      break;
    }
    case ElementType::kFloat32: {
      const char* x = static_cast<const char*>(row);
      // Shortest round-trip text of a float is at most 15 chars ("-1.1754944e-38"); 16 is safe.
      AppendList(out, dim, 16, [&](char* p, uint32_t i) {
        float v;
        std::memcpy(&v, x + 4 * i, 4);
        if (!std::isfinite(v)) {
          std::memcpy(p, "null", 4);
          return p + 4;
        }
        return std::to_chars(p, p + 16, v).ptr;
      });
      break;
    }
  }
}

Status ValidatePayloadLine(std::string_view line, std::string_view where) {
  const size_t first = line.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return Status::OK();
  if (line[first] != '{') {
    return Status::InvalidArgument(std::string(where) + ": payload must be a JSON object, got '" +
                                   std::string(line.substr(first, 40)) + "'");
  }
  if (!nlohmann::json::accept(line)) {
    return Status::InvalidArgument(std::string(where) + ": not valid JSON: '" +
                                   std::string(line.substr(0, 80)) + "'");
  }
  return Status::OK();
}

void AppendPointsBody(std::string* out, storage::ElementType t, uint32_t dim, const void* rows,
                      size_t count, uint64_t first_id, const std::string_view* payloads) {
  const size_t row_bytes = dim * storage::ElementSize(t);
  const char* r = static_cast<const char*>(rows);
  out->append("{\"points\":[");
  for (size_t i = 0; i < count; ++i) {
    if (i) out->push_back(',');
    out->append("{\"id\":");
    AppendU64(out, first_id + i);
    out->append(",\"vector\":");
    AppendVectorJson(out, t, r + i * row_bytes, dim);
    if (payloads != nullptr) {
      std::string_view p = payloads[i];
      const size_t a = p.find_first_not_of(" \t\r\n");
      if (a != std::string_view::npos) {
        const size_t b = p.find_last_not_of(" \t\r\n");
        out->append(",\"payload\":");
        out->append(p.substr(a, b - a + 1));
      }
    }
    out->push_back('}');
  }
  out->append("]}");
}

void AppendQueryBody(std::string* out, storage::ElementType t, uint32_t dim, const void* row,
                     size_t k, bool exact, bool with_payload, std::string_view filter) {
  out->append("{\"query\":");
  AppendVectorJson(out, t, row, dim);
  out->append(",\"limit\":");
  AppendU64(out, k);
  if (exact) out->append(",\"params\":{\"exact\":true}");
  if (with_payload) out->append(",\"with_payload\":true");
  if (!filter.empty()) {
    out->append(",\"filter\":");
    out->append(filter);
  }
  out->push_back('}');
}

}  // namespace vectord::vectorctl
