// Reading multi-vector benchmark sets (the mate/multivec layout, ../shared/data/README.md):
// documents and queries as u8bin vectors + an offsets table, RootSIFT x 255 values turned into
// unit float vectors; gt.ivecs / source.ivecs. Header-only, shared by the multi-vector benchmarks.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "index/chamfer.h"
#include "storage/dataset_io.h"

namespace vectord::bench {

struct Sets {
  std::vector<float> tokens;
  std::vector<uint64_t> offsets;
  uint32_t dim = 0;
  size_t n() const { return offsets.size() - 1; }
  index::MultiVectorView view() const { return {tokens.data(), offsets.data(), n(), dim}; }
  const float* set(size_t i) const { return tokens.data() + offsets[i] * dim; }
  size_t size(size_t i) const { return offsets[i + 1] - offsets[i]; }
};

// <prefix>.offsets: int32 m, int32 1, then m int64.
inline bool ReadOffsets(const std::string& path, std::vector<uint64_t>* out) {
  std::ifstream in(path, std::ios::binary);
  int32_t hdr[2] = {0, 0};
  in.read(reinterpret_cast<char*>(hdr), sizeof(hdr));
  if (!in || hdr[0] < 1 || hdr[1] != 1) {
    std::fprintf(stderr, "%s: bad header (m = %d, d = %d)\n", path.c_str(), hdr[0], hdr[1]);
    return false;
  }
  out->resize(static_cast<size_t>(hdr[0]));
  in.read(reinterpret_cast<char*>(out->data()), static_cast<std::streamsize>(out->size() * 8));
  if (!in) {
    std::fprintf(stderr, "%s: truncated, expected %d offsets\n", path.c_str(), hdr[0]);
    return false;
  }
  return true;
}

// <prefix>.u8bin + <prefix>.offsets; each vector /255 then scaled to unit length.
inline bool ReadSets(const std::string& prefix, Sets* s) {
  auto reader = storage::DatasetReader::Open(prefix + ".u8bin");
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return false;
  }
  const auto& info = (*reader)->info();
  s->dim = info.dim;
  s->tokens.resize(info.n * info.dim);
  const Status st = (*reader)->ReadFloat(0, info.n, s->tokens.data());
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return false;
  }
  if (!ReadOffsets(prefix + ".offsets", &s->offsets)) return false;
  if (s->offsets.front() != 0 || s->offsets.back() != info.n) {
    std::fprintf(stderr, "%s.offsets: offsets span %lu..%lu, the file has %zu rows\n",
                 prefix.c_str(), static_cast<unsigned long>(s->offsets.front()),
                 static_cast<unsigned long>(s->offsets.back()), info.n);
    return false;
  }
  for (size_t i = 0; i < info.n; ++i) {  // /255, then unit length (the /255 cancels out)
    float* v = s->tokens.data() + i * info.dim;
    double norm = 0;
    for (uint32_t k = 0; k < info.dim; ++k) norm += double{v[k] / 255.0f} * (v[k] / 255.0f);
    const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
    for (uint32_t k = 0; k < info.dim; ++k) v[k] = v[k] / 255.0f * inv;
  }
  return true;
}

inline bool ReadIvecs(const std::string& path, std::vector<int32_t>* out, size_t* n,
                      uint32_t* dim) {
  auto reader = storage::DatasetReader::Open(path);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return false;
  }
  *n = (*reader)->info().n;
  *dim = (*reader)->info().dim;
  out->resize(*n * *dim);
  const Status st = (*reader)->ReadRaw(0, *n, out->data());
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  return st.ok();
}

// "a,b,c" -> {"a", "b", "c"} (empty items dropped).
inline std::vector<std::string> SplitList(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

}  // namespace vectord::bench
