// TokenCodes implementation (token_codes.h).
#include "src/multivector/token_codes.h"

#include <cstring>
#include <vector>

#include "index/chamfer_int8.h"

namespace vectord {

TokenCodes::TokenCodes(uint32_t dim) : dim_(dim), row_bytes_(index::Int8RowBytes(dim)) {
  const uint64_t zero = 0;
  first_.append(reinterpret_cast<const uint8_t*>(&zero), sizeof(zero));
}

uint8_t* TokenCodes::Append(const uint32_t* counts, size_t n) {
  const uint64_t* f = reinterpret_cast<const uint64_t*>(first_.data());
  const uint64_t begin = f[sets()];
  std::vector<uint64_t> next(n);
  uint64_t end = begin;
  for (size_t i = 0; i < n; ++i) next[i] = end += counts[i];
  first_.append(reinterpret_cast<const uint8_t*>(next.data()), n * sizeof(uint64_t));
  codes_.resize(end * row_bytes_);
  return codes_.data() + begin * row_bytes_;
}

void TokenCodes::Append(const uint32_t* counts, size_t n, const uint8_t* rows) {
  const size_t before = codes_.size();
  uint8_t* dst = Append(counts, n);
  std::memcpy(dst, rows, codes_.size() - before);
}

}  // namespace vectord
