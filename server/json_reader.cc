// Strict JSON reader for request bodies (see json_reader.h).
#include "server/json_reader.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>

namespace vectord::server {
namespace {

class Reader {
 public:
  Reader(std::string_view text, int max_depth)
      : begin_(text.data()),
        p_(text.data()),
        end_(text.data() + text.size()),
        max_depth_(max_depth) {}

  const Status& status() const { return status_; }

  bool Fail(const std::string& msg) {
    if (status_.ok()) {
      status_ = Status::InvalidArgument("invalid JSON at byte " + std::to_string(p_ - begin_) +
                                        ": " + msg);
    }
    return false;
  }
  // A valid-JSON error of the request's shape, named by its path.
  bool FailAt(std::string_view where, const std::string& msg) {
    if (status_.ok()) status_ = Status::InvalidArgument(std::string(where) + ": " + msg);
    return false;
  }
  void SetStatus(Status s) {
    if (status_.ok()) status_ = std::move(s);
  }

  void SkipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }
  bool AtEnd() {
    SkipWs();
    return p_ == end_;
  }
  bool Expect(char c) {
    SkipWs();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return Fail(p_ < end_ ? std::string("expected '") + c + "', found '" + Printable(*p_) + "'"
                          : std::string("expected '") + c + "', found end of input");
  }
  // Consumes `c` if it is next (after whitespace).
  bool Peek(char c) {
    SkipWs();
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  char PeekChar() {
    SkipWs();
    return p_ < end_ ? *p_ : '\0';
  }

  static std::string Printable(char c) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) return std::string(1, c);
    char buf[8];
    std::snprintf(buf, sizeof(buf), "\\x%02x", u);
    return buf;
  }

  bool ParseValue(Json* out, int depth) {
    SkipWs();
    if (p_ == end_) return Fail("unexpected end of input, expected a value");
    switch (*p_) {
      case '{': {
        if (depth + 1 > max_depth_) {
          return Fail("nesting deeper than " + std::to_string(max_depth_) + " levels");
        }
        ++p_;
        *out = Json::object();
        if (Peek('}')) return true;
        while (true) {
          std::string key;
          SkipWs();
          if (p_ == end_ || *p_ != '"') return Fail("expected a string key");
          if (!ParseString(&key)) return false;
          if (!Expect(':')) return false;
          Json v;
          if (!ParseValue(&v, depth + 1)) return false;
          (*out)[key] = std::move(v);
          if (Peek(',')) continue;
          return Expect('}');
        }
      }
      case '[': {
        if (depth + 1 > max_depth_) {
          return Fail("nesting deeper than " + std::to_string(max_depth_) + " levels");
        }
        ++p_;
        *out = Json::array();
        if (Peek(']')) return true;
        while (true) {
          Json v;
          if (!ParseValue(&v, depth + 1)) return false;
          out->push_back(std::move(v));
          if (Peek(',')) continue;
          return Expect(']');
        }
      }
      case '"': {
        std::string s;
        if (!ParseString(&s)) return false;
        *out = std::move(s);
        return true;
      }
      case 't':
        if (!Literal("true")) return false;
        *out = true;
        return true;
      case 'f':
        if (!Literal("false")) return false;
        *out = false;
        return true;
      case 'n':
        if (!Literal("null")) return false;
        *out = nullptr;
        return true;
      default:
        if (*p_ == '-' || (*p_ >= '0' && *p_ <= '9')) return ParseNumber(out);
        if (*p_ == 'N' || *p_ == 'I') return Fail("NaN and Infinity are not JSON numbers");
        return Fail(std::string("unexpected character '") + Printable(*p_) + "'");
    }
  }

  bool Literal(std::string_view lit) {
    if (static_cast<size_t>(end_ - p_) >= lit.size() && std::string_view(p_, lit.size()) == lit) {
      p_ += lit.size();
      return true;
    }
    return Fail("invalid literal (NaN and Infinity are not JSON)");
  }

  // Scans a JSON number; sets [*s, p_) to its text and whether it is integral.
  bool ScanNumber(const char** s, bool* integral) {
    *s = p_;
    *integral = true;
    if (p_ < end_ && *p_ == '-') ++p_;
    if (p_ == end_) return Fail("invalid number");
    if (*p_ == '0') {
      ++p_;
    } else if (*p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      return Fail("invalid number (NaN and Infinity are not JSON)");
    }
    if (p_ < end_ && *p_ == '.') {
      *integral = false;
      ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') return Fail("invalid number: digit expected");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      *integral = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') return Fail("invalid number: digit expected");
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    return true;
  }

  bool ToDouble(const char* s, double* d) {
    auto r = std::from_chars(s, p_, *d);
    if (r.ec == std::errc() && std::isfinite(*d)) return true;
    // Out of range: underflow rounds to zero, overflow is an error.
    std::string copy(s, p_);
    *d = std::strtod(copy.c_str(), nullptr);
    if (std::isfinite(*d)) return true;
    const char* here = p_;
    p_ = s;
    Fail("number " + copy + " is out of range");
    p_ = here;
    return false;
  }

  bool ParseNumber(Json* out) {
    const char* s;
    bool integral;
    if (!ScanNumber(&s, &integral)) return false;
    if (integral) {
      if (*s == '-') {
        int64_t v;
        auto r = std::from_chars(s, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          *out = v;
          return true;
        }
      } else {
        uint64_t v;
        auto r = std::from_chars(s, p_, v);
        if (r.ec == std::errc() && r.ptr == p_) {
          *out = v;
          return true;
        }
      }
    }
    double d;
    if (!ToDouble(s, &d)) return false;
    *out = d;
    return true;
  }

  // A float32 value for vector element `where`.
  bool ParseFloat(float* out, std::string_view where, size_t i) {
    SkipWs();
    if (p_ == end_ || !(*p_ == '-' || (*p_ >= '0' && *p_ <= '9'))) {
      if (p_ < end_ && (*p_ == 'N' || *p_ == 'I')) return Fail("NaN and Infinity are not JSON");
      return FailAt(where, "element " + std::to_string(i) + " is not a number");
    }
    const char* s;
    bool integral;
    if (!ScanNumber(&s, &integral)) return false;
    float f = 0;
    auto r = std::from_chars(s, p_, f);
    if (r.ec == std::errc() && std::isfinite(f)) {
      *out = f;
      return true;
    }
    double d;
    if (!ToDouble(s, &d)) return false;
    if (std::fabs(d) > std::numeric_limits<float>::max()) {
      return FailAt(where, "element " + std::to_string(i) + " (" + std::string(s, p_) +
                               ") is out of float32 range");
    }
    *out = static_cast<float>(d);
    return true;
  }

  // [n, n, ...] straight into floats.
  bool ParseFloatArray(std::vector<float>* out, std::string_view where, size_t expect) {
    SkipWs();
    if (p_ == end_ || *p_ != '[') {
      if (p_ < end_ && *p_ == '{') {
        return FailAt(where, "named or sparse vectors are not supported yet");
      }
      return FailAt(where, "expected an array of numbers");
    }
    ++p_;
    out->clear();
    out->reserve(expect);
    if (Peek(']')) return true;
    while (true) {
      float f = 0;
      if (!ParseFloat(&f, where, out->size())) return false;
      out->push_back(f);
      if (Peek(',')) continue;
      return Expect(']');
    }
  }

  // A vector ([n, ...]) or, for multi-vector collections, a list of vectors of one size
  // ([[n, ...], ...]: *count = how many, the vectors back to back in *out; else *count = 0).
  bool ParseVectorOrList(std::vector<float>* out, uint32_t* count, const std::string& where,
                         size_t expect) {
    *count = 0;
    SkipWs();
    if (p_ < end_ && *p_ == '[') {
      const char* save = p_;
      ++p_;
      SkipWs();
      if (p_ < end_ && *p_ == '[') {
        out->clear();
        std::vector<float> one;
        size_t dim = 0;
        while (true) {
          const std::string w = where + "[" + std::to_string(*count) + "]";
          if (!ParseFloatArray(&one, w, dim)) return false;
          if (*count == 0) dim = one.size();
          if (one.size() != dim || dim == 0) {
            return FailAt(w, "has " + std::to_string(one.size()) + " dimensions, vector 0 has " +
                                 std::to_string(dim) +
                                 " (all vectors of a multi-vector must have one size)");
          }
          out->insert(out->end(), one.begin(), one.end());
          ++*count;
          if (Peek(',')) continue;
          return Expect(']');
        }
      }
      p_ = save;
    }
    return ParseFloatArray(out, where, expect);
  }

  bool ParseString(std::string* out) {
    ++p_;  // opening quote
    while (true) {
      const char* run = p_;
      while (p_ < end_) {
        unsigned char c = static_cast<unsigned char>(*p_);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
        ++p_;
      }
      out->append(run, p_);
      if (p_ == end_) return Fail("unterminated string");
      unsigned char c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c < 0x20) return Fail("control character in string (must be escaped)");
      if (c >= 0x80) {
        if (!Utf8Sequence(out)) return false;
        continue;
      }
      // Escape.
      ++p_;
      if (p_ == end_) return Fail("unterminated string");
      char e = *p_++;
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp;
          if (!Hex4(&cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
              return Fail("unpaired UTF-16 surrogate in \\u escape");
            }
            p_ += 2;
            if (!Hex4(&lo)) return false;
            if (lo < 0xDC00 || lo > 0xDFFF) return Fail("invalid UTF-16 surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return Fail("unpaired UTF-16 surrogate in \\u escape");
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          --p_;
          return Fail(std::string("invalid escape '\\") + Printable(e) + "'");
      }
    }
  }

  bool Hex4(uint32_t* cp) {
    if (end_ - p_ < 4) return Fail("truncated \\u escape");
    *cp = 0;
    for (int i = 0; i < 4; ++i) {
      char c = *p_++;
      *cp <<= 4;
      if (c >= '0' && c <= '9')
        *cp |= c - '0';
      else if (c >= 'a' && c <= 'f')
        *cp |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        *cp |= c - 'A' + 10;
      else
        return Fail("invalid hex digit in \\u escape");
    }
    return true;
  }

  static void AppendUtf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  // One multi-byte UTF-8 sequence at p_, validated (no overlongs, surrogates or > U+10FFFF).
  bool Utf8Sequence(std::string* out) {
    const unsigned char* u = reinterpret_cast<const unsigned char*>(p_);
    size_t avail = end_ - p_;
    int n;
    uint32_t cp;
    if (u[0] >= 0xC2 && u[0] <= 0xDF) {
      n = 2;
      cp = u[0] & 0x1F;
    } else if (u[0] >= 0xE0 && u[0] <= 0xEF) {
      n = 3;
      cp = u[0] & 0x0F;
    } else if (u[0] >= 0xF0 && u[0] <= 0xF4) {
      n = 4;
      cp = u[0] & 0x07;
    } else {
      return Fail("invalid UTF-8 byte in string");
    }
    if (avail < static_cast<size_t>(n)) return Fail("truncated UTF-8 sequence in string");
    for (int i = 1; i < n; ++i) {
      if ((u[i] & 0xC0) != 0x80) return Fail("invalid UTF-8 sequence in string");
      cp = (cp << 6) | (u[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return Fail("invalid UTF-8 sequence in string");
    }
    out->append(p_, n);
    p_ += n;
    return true;
  }

  // Parses the points array of an upsert request.
  bool ParsePoints(std::vector<PointStruct>* points, size_t max_points, int depth) {
    SkipWs();
    if (p_ == end_ || *p_ != '[') return FailAt("points", "expected an array of points");
    ++p_;
    if (Peek(']')) return true;
    size_t dim_hint = 0;
    while (true) {
      if (points->size() >= max_points) {
        return FailAt("points", "more than " + std::to_string(max_points) +
                                    " points in one request; split the batch");
      }
      std::string where = "points[" + std::to_string(points->size()) + "]";
      PointStruct pt;
      pt.payload = nullptr;
      if (!Expect('{')) return false;
      bool has_id = false, has_vector = false;
      if (!Peek('}')) {
        while (true) {
          std::string key;
          SkipWs();
          if (p_ == end_ || *p_ != '"') return Fail("expected a string key");
          if (!ParseString(&key)) return false;
          if (!Expect(':')) return false;
          if (key == "vector") {
            if (!ParseVectorOrList(&pt.vector, &pt.vector_count, where + ".vector", dim_hint)) {
              return false;
            }
            dim_hint = pt.vector.size();
            has_vector = true;
          } else if (key == "id") {
            Json id;
            if (!ParseValue(&id, depth + 2)) return false;
            auto r = PointIdFromJson(id, where + ".id");
            if (!r.ok()) {
              SetStatus(r.status());
              return false;
            }
            pt.id = *r;
            has_id = true;
          } else if (key == "payload") {
            if (!ParseValue(&pt.payload, depth + 2)) return false;
            if (!pt.payload.is_object() && !pt.payload.is_null()) {
              return FailAt(where + ".payload", "must be an object or null");
            }
          } else {
            return FailAt(where, "unknown field '" + key + "' (expected id, vector, payload)");
          }
          if (Peek(',')) continue;
          if (!Expect('}')) return false;
          break;
        }
      }
      if (!has_id) return FailAt(where, "missing field 'id'");
      if (!has_vector) return FailAt(where, "missing field 'vector'");
      points->push_back(std::move(pt));
      if (Peek(',')) continue;
      return Expect(']');
    }
  }

  bool ParseBatch(std::vector<PointStruct>* points, size_t max_points, int depth) {
    if (!Expect('{')) return false;
    std::vector<PointId> ids;
    std::vector<std::vector<float>> vectors;
    std::vector<uint32_t> counts;
    Json payloads;
    bool has_ids = false, has_vectors = false;
    if (!Peek('}')) {
      while (true) {
        std::string key;
        SkipWs();
        if (p_ == end_ || *p_ != '"') return Fail("expected a string key");
        if (!ParseString(&key)) return false;
        if (!Expect(':')) return false;
        if (key == "ids") {
          Json arr;
          if (!ParseValue(&arr, depth + 1)) return false;
          if (!arr.is_array()) return FailAt("batch.ids", "expected an array of ids");
          if (arr.size() > max_points) {
            return FailAt("batch.ids", "more than " + std::to_string(max_points) +
                                           " points in one request; split the batch");
          }
          ids.reserve(arr.size());
          for (size_t i = 0; i < arr.size(); ++i) {
            auto r = PointIdFromJson(arr[i], "batch.ids[" + std::to_string(i) + "]");
            if (!r.ok()) {
              SetStatus(r.status());
              return false;
            }
            ids.push_back(*r);
          }
          has_ids = true;
        } else if (key == "vectors") {
          SkipWs();
          if (p_ == end_ || *p_ != '[') {
            if (p_ < end_ && *p_ == '{') {
              return FailAt("batch.vectors", "named vectors are not supported yet");
            }
            return FailAt("batch.vectors", "expected an array of vectors");
          }
          ++p_;
          size_t dim_hint = 0;
          if (!Peek(']')) {
            while (true) {
              if (vectors.size() >= max_points) {
                return FailAt("batch.vectors", "more than " + std::to_string(max_points) +
                                                   " points in one request; split the batch");
              }
              std::vector<float> v;
              uint32_t count = 0;
              if (!ParseVectorOrList(&v, &count,
                                     "batch.vectors[" + std::to_string(vectors.size()) + "]",
                                     dim_hint)) {
                return false;
              }
              dim_hint = v.size();
              vectors.push_back(std::move(v));
              counts.push_back(count);
              if (Peek(',')) continue;
              if (!Expect(']')) return false;
              break;
            }
          }
          has_vectors = true;
        } else if (key == "payloads") {
          if (!ParseValue(&payloads, depth + 1)) return false;
          if (!payloads.is_array() && !payloads.is_null()) {
            return FailAt("batch.payloads", "expected an array of objects or null");
          }
        } else {
          return FailAt("batch", "unknown field '" + key + "' (expected ids, vectors, payloads)");
        }
        if (Peek(',')) continue;
        if (!Expect('}')) return false;
        break;
      }
    }
    if (!has_ids) return FailAt("batch", "missing field 'ids'");
    if (!has_vectors) return FailAt("batch", "missing field 'vectors'");
    if (vectors.size() != ids.size()) {
      return FailAt("batch", std::to_string(ids.size()) + " ids but " +
                                 std::to_string(vectors.size()) + " vectors");
    }
    if (payloads.is_array() && payloads.size() != ids.size()) {
      return FailAt("batch", std::to_string(ids.size()) + " ids but " +
                                 std::to_string(payloads.size()) + " payloads");
    }
    points->reserve(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      PointStruct pt;
      pt.id = ids[i];
      pt.vector = std::move(vectors[i]);
      pt.vector_count = counts[i];
      if (payloads.is_array()) {
        pt.payload = std::move(payloads[i]);
        if (!pt.payload.is_object() && !pt.payload.is_null()) {
          return FailAt("batch.payloads[" + std::to_string(i) + "]", "must be an object or null");
        }
      } else {
        pt.payload = nullptr;
      }
      points->push_back(std::move(pt));
    }
    return true;
  }

  bool ParseUpsert(UpsertBody* body, size_t max_points) {
    if (!Expect('{')) return false;
    bool seen_points = false, seen_batch = false;
    if (!Peek('}')) {
      while (true) {
        std::string key;
        SkipWs();
        if (p_ == end_ || *p_ != '"') return Fail("expected a string key");
        if (!ParseString(&key)) return false;
        if (!Expect(':')) return false;
        if (key == "points") {
          if (seen_points || seen_batch) return FailAt("points", "give either points or batch");
          if (!ParsePoints(&body->points, max_points, 1)) return false;
          seen_points = true;
        } else if (key == "batch") {
          if (seen_points || seen_batch) return FailAt("batch", "give either points or batch");
          if (!ParseBatch(&body->points, max_points, 1)) return false;
          seen_batch = true;
        } else if (key == "shard_key" || key == "update_filter" || key == "update_mode") {
          Json v;
          if (!ParseValue(&v, 1)) return false;
          if (key == "update_filter" && !v.is_null()) {
            return FailAt("update_filter", "conditional updates are not supported yet");
          }
          if (key == "update_mode" && !v.is_null() && v != "upsert") {
            return FailAt("update_mode", "only \"upsert\" is supported");
          }
        } else {
          return FailAt(key, "unknown field in upsert request (expected points or batch)");
        }
        if (Peek(',')) continue;
        if (!Expect('}')) return false;
        break;
      }
    }
    if (!seen_points && !seen_batch) {
      return FailAt("upsert request", "missing field 'points' (or 'batch')");
    }
    return true;
  }

 private:
  const char* begin_;
  const char* p_;
  const char* end_;
  int max_depth_;
  Status status_;
};

}  // namespace

Result<Json> ParseJson(std::string_view text, int max_depth) {
  Reader r(text, max_depth);
  Json out;
  if (!r.ParseValue(&out, 0)) return r.status();
  if (!r.AtEnd()) {
    r.Fail("unexpected data after the JSON value");
    return r.status();
  }
  return out;
}

Result<UpsertBody> ParseUpsertBody(std::string_view text, size_t max_points, int max_depth) {
  Reader r(text, max_depth);
  UpsertBody body;
  if (!r.ParseUpsert(&body, max_points)) return r.status();
  if (!r.AtEnd()) {
    r.Fail("unexpected data after the JSON value");
    return r.status();
  }
  return body;
}

Result<PointId> PointIdFromJson(const Json& j, std::string_view where) {
  if (j.is_number_unsigned()) return PointId::Num(j.get<uint64_t>());
  if (j.is_number_integer()) {
    return Status::InvalidArgument(std::string(where) + ": id " + j.dump() +
                                   " is negative; ids are non-negative integers or UUIDs");
  }
  if (j.is_number_float()) {
    return Status::InvalidArgument(std::string(where) + ": id " + j.dump() +
                                   " is not an integer (or is above 2^64-1); ids are "
                                   "non-negative integers or UUIDs");
  }
  if (j.is_string()) {
    auto r = PointId::ParseUuid(j.get_ref<const std::string&>());
    if (!r.ok()) return r.status().WithContext(std::string(where));
    return r;
  }
  return Status::InvalidArgument(std::string(where) +
                                 ": id must be a non-negative integer or a "
                                 "UUID string, got " +
                                 std::string(j.type_name()));
}

}  // namespace vectord::server
