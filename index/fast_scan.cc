// Fast-scan kernels: scalar, AVX2 and AVX-512BW versions of the 4-bit block accumulation, and the
// 8-bit float-LUT scan (scalar, measured fastest), chosen at run time through GCC target attributes
// and
// __builtin_cpu_supports (the build targets plain x86-64). Layout: docs/pq.md.
#include "index/fast_scan.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string_view>

#include "index/cpu_dispatch.h"

namespace vectord::index {
namespace {

inline size_t Pairs(uint32_t m) { return (size_t{m} + 1) / 2; }

// Byte offset (inside a block) and nibble shift of subquantizer s of block-vector v.
inline size_t PackedByte(uint32_t s, size_t v) { return 32 * (s / 2) + 16 * (s & 1) + (v & 15); }
inline int PackedShift(size_t v) { return v < 16 ? 0 : 4; }

// ---------------------------------------------------------------------------------------------
// Scalar level: the reference.

void AccumulateScalar(const uint8_t* packed, size_t nblocks, uint32_t m, const uint8_t* table,
                      uint16_t* out) {
  const size_t bb = FastScanBlockBytes(m);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = packed + b * bb;
    for (size_t v = 0; v < kFastScanBlock; ++v) {
      uint32_t s = 0;
      const int sh = PackedShift(v);
      for (uint32_t j = 0; j < m; ++j) s += table[j * 16 + ((blk[PackedByte(j, v)] >> sh) & 0xF)];
      out[b * kFastScanBlock + v] = static_cast<uint16_t>(s);
    }
  }
}

void Scan8Scalar(const uint8_t* codes, size_t n, uint32_t m, const float* lut, float* out) {
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const uint8_t* c = codes + i * m;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (uint32_t j = 0; j < m; ++j) {
      const float* t = lut + size_t{j} * 256;
      s0 += t[c[j]];
      s1 += t[c[m + j]];
      s2 += t[c[2 * m + j]];
      s3 += t[c[3 * m + j]];
    }
    out[i] = s0;
    out[i + 1] = s1;
    out[i + 2] = s2;
    out[i + 3] = s3;
  }
  for (; i < n; ++i) {
    const uint8_t* c = codes + i * m;
    float s = 0;
    for (uint32_t j = 0; j < m; ++j) s += lut[size_t{j} * 256 + c[j]];
    out[i] = s;
  }
}

// ---------------------------------------------------------------------------------------------
// AVX2: one 32-byte group = one pair of subquantizers for 32 vectors. vpshufb looks up, in lane 0,
// subquantizer 2p's table and in lane 1 subquantizer 2p+1's, for the low nibbles (vectors 0..15)
// and the high nibbles (vectors 16..31). Byte sums are kept in uint16 words without unpacking:
// acc += r (as 16-bit words: even byte + 256 * odd byte) and acc_odd += r >> 8; at the end
// even = acc - (acc_odd << 8), exact modulo 2^16, and the true sums fit 16 bits (QuantizeLut).

#define VD_AVX2 __attribute__((target("avx2,fma")))

// Sums the two lanes, undoes the even/odd split and stores 16 uint16 sums for vectors 0..15.
VD_AVX2 inline void FinishAvx2(__m256i acc, __m256i odd, uint16_t* out) {
  const __m256i even = _mm256_sub_epi16(acc, _mm256_slli_epi16(odd, 8));
  const __m128i e = _mm_add_epi16(_mm256_castsi256_si128(even), _mm256_extracti128_si256(even, 1));
  const __m128i o = _mm_add_epi16(_mm256_castsi256_si128(odd), _mm256_extracti128_si256(odd, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi16(e, o));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm_unpackhi_epi16(e, o));
}

// kPairs > 0 fixes the pair count at compile time (the loop unrolls, tables stay in registers).
template <size_t kPairs>
VD_AVX2 inline void AccumulateAvx2Impl(const uint8_t* packed, size_t nblocks, size_t pairs_rt,
                                       const uint8_t* table, uint16_t* out) {
  const size_t pairs = kPairs > 0 ? kPairs : pairs_rt;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = packed + b * pairs * 32;
    __m256i al = _mm256_setzero_si256(), ol = al, ah = al, oh = al;
    for (size_t p = 0; p < pairs; ++p) {
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * p));
      const __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 32 * p));
      const __m256i rl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, low4));
      const __m256i rh = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), low4));
      al = _mm256_add_epi16(al, rl);
      ol = _mm256_add_epi16(ol, _mm256_srli_epi16(rl, 8));
      ah = _mm256_add_epi16(ah, rh);
      oh = _mm256_add_epi16(oh, _mm256_srli_epi16(rh, 8));
    }
    FinishAvx2(al, ol, out + b * kFastScanBlock);
    FinishAvx2(ah, oh, out + b * kFastScanBlock + 16);
  }
}

VD_AVX2 void AccumulateAvx2(const uint8_t* packed, size_t nblocks, uint32_t m, const uint8_t* table,
                            uint16_t* out) {
  switch (Pairs(m)) {
    case 4:
      return AccumulateAvx2Impl<4>(packed, nblocks, 4, table, out);
    case 8:
      return AccumulateAvx2Impl<8>(packed, nblocks, 8, table, out);
    case 16:
      return AccumulateAvx2Impl<16>(packed, nblocks, 16, table, out);
    case 32:
      return AccumulateAvx2Impl<32>(packed, nblocks, 32, table, out);
    default:
      return AccumulateAvx2Impl<0>(packed, nblocks, Pairs(m), table, out);
  }
}

// ---------------------------------------------------------------------------------------------
// AVX-512BW: the same layout, two pairs (64 bytes, four 16-entry tables) per vpshufb; an odd
// pair count ends with one 256-bit step.

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wmaybe-uninitialized flags.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define VD_AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl")))

VD_AVX512 inline __m256i Fold512(__m512i v) {
  return _mm256_add_epi16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

template <size_t kPairs>
VD_AVX512 inline void AccumulateAvx512Impl(const uint8_t* packed, size_t nblocks, size_t pairs_rt,
                                           const uint8_t* table, uint16_t* out) {
  const size_t pairs = kPairs > 0 ? kPairs : pairs_rt;
  const size_t quads = pairs / 2;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (size_t b = 0; b < nblocks; ++b) {
    const uint8_t* blk = packed + b * pairs * 32;
    __m512i al = _mm512_setzero_si512(), ol = al, ah = al, oh = al;
    for (size_t q = 0; q < quads; ++q) {
      const __m512i c = _mm512_loadu_si512(blk + 64 * q);
      const __m512i t = _mm512_loadu_si512(table + 64 * q);
      const __m512i rl = _mm512_shuffle_epi8(t, _mm512_and_si512(c, low4));
      const __m512i rh = _mm512_shuffle_epi8(t, _mm512_and_si512(_mm512_srli_epi16(c, 4), low4));
      al = _mm512_add_epi16(al, rl);
      ol = _mm512_add_epi16(ol, _mm512_srli_epi16(rl, 8));
      ah = _mm512_add_epi16(ah, rh);
      oh = _mm512_add_epi16(oh, _mm512_srli_epi16(rh, 8));
    }
    __m256i al2 = Fold512(al), ol2 = Fold512(ol), ah2 = Fold512(ah), oh2 = Fold512(oh);
    if (pairs & 1) {
      const size_t p = pairs - 1;
      const __m256i low4y = _mm256_set1_epi8(0x0F);
      const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * p));
      const __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table + 32 * p));
      const __m256i rl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, low4y));
      const __m256i rh = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), low4y));
      al2 = _mm256_add_epi16(al2, rl);
      ol2 = _mm256_add_epi16(ol2, _mm256_srli_epi16(rl, 8));
      ah2 = _mm256_add_epi16(ah2, rh);
      oh2 = _mm256_add_epi16(oh2, _mm256_srli_epi16(rh, 8));
    }
    FinishAvx2(al2, ol2, out + b * kFastScanBlock);
    FinishAvx2(ah2, oh2, out + b * kFastScanBlock + 16);
  }
}

VD_AVX512 void AccumulateAvx512(const uint8_t* packed, size_t nblocks, uint32_t m,
                                const uint8_t* table, uint16_t* out) {
  switch (Pairs(m)) {
    case 4:
      return AccumulateAvx512Impl<4>(packed, nblocks, 4, table, out);
    case 8:
      return AccumulateAvx512Impl<8>(packed, nblocks, 8, table, out);
    case 16:
      return AccumulateAvx512Impl<16>(packed, nblocks, 16, table, out);
    case 32:
      return AccumulateAvx512Impl<32>(packed, nblocks, 32, table, out);
    default:
      return AccumulateAvx512Impl<0>(packed, nblocks, Pairs(m), table, out);
  }
}

#pragma GCC diagnostic pop

// ---------------------------------------------------------------------------------------------
// Dispatch.

struct Kernels {
  const char* name;
  void (*accumulate)(const uint8_t*, size_t, uint32_t, const uint8_t*, uint16_t*);
  void (*scan8)(const uint8_t*, size_t, uint32_t, const float*, float*);
};
constexpr Kernels kScalar = {"scalar", AccumulateScalar, Scan8Scalar};
// Scan8 has no SIMD version: per-vector gathers (8 or 16 subquantizers per vpgatherdd) measured
// 1.6-1.9x slower than the 4-vector unrolled scalar loop (bench_fast_scan, m = 16/32, Zen 5), the
// table (m x 1 KiB) sits in L1/L2 and scalar loads issue 2-3 per cycle.
constexpr Kernels kAvx2 = {"avx2", AccumulateAvx2, Scan8Scalar};
constexpr Kernels kAvx512 = {"avx512", AccumulateAvx512, Scan8Scalar};

constexpr KernelDispatch<Kernels> kDispatch(&kScalar, &kAvx2, &kAvx512);
inline const Kernels& K() { return kDispatch.Get(); }

}  // namespace

size_t FastScanBlockBytes(uint32_t m) { return Pairs(m) * 32; }

void PackFastScan(const uint8_t* codes, size_t n, uint32_t m, uint8_t* out) {
  const size_t bb = FastScanBlockBytes(m), cs = (size_t{m} + 1) / 2;
  const size_t nblocks = (n + kFastScanBlock - 1) / kFastScanBlock;
  std::memset(out, 0, nblocks * bb);
  for (size_t i = 0; i < n; ++i) {
    uint8_t* blk = out + (i / kFastScanBlock) * bb;
    const size_t v = i % kFastScanBlock;
    const uint8_t* code = codes + i * cs;
    for (uint32_t j = 0; j < m; ++j) {
      const uint8_t c = (code[j / 2] >> ((j & 1) * 4)) & 0xF;
      blk[PackedByte(j, v)] |= static_cast<uint8_t>(c << PackedShift(v));
    }
  }
}

void UnpackFastScanCode(const uint8_t* packed, size_t i, uint32_t m, uint8_t* code_out) {
  const uint8_t* blk = packed + (i / kFastScanBlock) * FastScanBlockBytes(m);
  const size_t v = i % kFastScanBlock;
  std::memset(code_out, 0, (size_t{m} + 1) / 2);
  for (uint32_t j = 0; j < m; ++j) {
    const uint8_t c = (blk[PackedByte(j, v)] >> PackedShift(v)) & 0xF;
    code_out[j / 2] |= static_cast<uint8_t>(c << ((j & 1) * 4));
  }
}

QuantizedLut QuantizeLut(const float* lut, uint32_t m) {
  QuantizedLut q;
  q.m = m;
  q.table.assign(Pairs(m) * 32, 0);
  std::vector<float> mins(m);
  float max_span = 0;
  double sum_span = 0, bias = 0;
  for (uint32_t j = 0; j < m; ++j) {
    const float* row = lut + size_t{j} * 16;
    const float lo = *std::min_element(row, row + 16), hi = *std::max_element(row, row + 16);
    mins[j] = lo;
    bias += lo;
    max_span = std::max(max_span, hi - lo);
    sum_span += hi - lo;
  }
  // Each entry <= 255; every sum <= sum_j round(span_j * scale) <= scale * sum_span + m / 2,
  // kept <= 65535 by budgeting m (not m / 2) for the rounding.
  float scale = 1;
  if (max_span > 0) {
    const double by_entry = 255.0 / max_span;
    const double by_sum = (65535.0 - m) / sum_span;
    scale = static_cast<float>(std::min(by_entry, by_sum));
  }
  q.scale = scale;
  q.bias = static_cast<float>(bias);
  for (uint32_t j = 0; j < m; ++j) {
    for (int k = 0; k < 16; ++k) {
      const float v = std::nearbyint((lut[size_t{j} * 16 + k] - mins[j]) * scale);
      q.table[size_t{j} * 16 + k] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
    }
  }
  return q;
}

void FastScanAccumulate(const uint8_t* packed, size_t nblocks, uint32_t m, const QuantizedLut& lut,
                        uint16_t* out) {
  K().accumulate(packed, nblocks, m, lut.table.data(), out);
}

void Scan8(const uint8_t* codes, size_t n, uint32_t m, const float* lut, float* out) {
  K().scan8(codes, n, m, lut, out);
}

const char* FastScanLevel() { return K().name; }

bool SetFastScanLevel(const char* level) { return kDispatch.SetLevel(level); }

}  // namespace vectord::index
