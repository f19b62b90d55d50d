// Distance kernels: scalar, AVX2+FMA+F16C and AVX-512 (F/BW/VL) versions of every kernel, compiled
// from one translation unit with GCC target attributes and chosen once at run time through a
// table of function pointers (__builtin_cpu_supports). The build itself targets plain x86-64.
#include "index/distance.h"

#include <immintrin.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "index/cpu_dispatch.h"

namespace vectord::index {
namespace {

// ---------------------------------------------------------------------------------------------
// Half precision in software (used by the scalar level and by FloatToHalf/HalfToFloat).

float HalfToFloatSw(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400u) == 0);
      mant &= 0x3FFu;
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | mant << 13;
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | mant << 13;  // inf / nan (payload kept)
  } else {
    bits = sign | (exp + (127 - 15)) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

uint16_t FloatToHalfSw(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf or nan
    return sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u | ((abs >> 13) & 0x3FFu) : 0u);
  }
  if (abs >= 0x477FF000u) return sign | 0x7C00u;  // rounds to >= 65520: overflow to inf
  if (abs < 0x38800000u) {                        // below the smallest normal half (2^-14)
    if (abs < 0x33000000u) return sign;           // below half of the smallest subnormal
    const uint32_t e = abs >> 23;
    const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14 + (113 - e): bits to drop from the 24-bit mantissa
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return sign | static_cast<uint16_t>(h);
  }
  uint32_t h = ((abs >> 23) - 112) << 10 | ((abs >> 13) & 0x3FFu);
  const uint32_t rem = abs & 0x1FFFu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // carry into exponent is correct
  return sign | static_cast<uint16_t>(h);
}

// ---------------------------------------------------------------------------------------------
// Scalar level.

float L2SqrF32Scalar(const float* a, const float* b, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) {
    const float t = a[i] - b[i];
    s += t * t;
  }
  return s;
}
float IpF32Scalar(const float* a, const float* b, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}
uint32_t L2SqrU8Scalar(const uint8_t* a, const uint8_t* b, size_t d) {
  uint32_t s = 0;
  for (size_t i = 0; i < d; ++i) {
    const int t = int{a[i]} - int{b[i]};
    s += static_cast<uint32_t>(t * t);
  }
  return s;
}
int32_t IpU8Scalar(const uint8_t* a, const uint8_t* b, size_t d) {
  int32_t s = 0;
  for (size_t i = 0; i < d; ++i) s += int32_t{a[i]} * int32_t{b[i]};
  return s;
}
int32_t L2SqrI8Scalar(const int8_t* a, const int8_t* b, size_t d) {
  int32_t s = 0;
  for (size_t i = 0; i < d; ++i) {
    const int32_t t = int32_t{a[i]} - int32_t{b[i]};
    s += t * t;
  }
  return s;
}
int32_t IpI8Scalar(const int8_t* a, const int8_t* b, size_t d) {
  int32_t s = 0;
  for (size_t i = 0; i < d; ++i) s += int32_t{a[i]} * int32_t{b[i]};
  return s;
}
template <typename T>
float L2SqrF32XScalar(const float* q, const T* x, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) {
    const float t = q[i] - static_cast<float>(x[i]);
    s += t * t;
  }
  return s;
}
template <typename T>
float IpF32XScalar(const float* q, const T* x, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += q[i] * static_cast<float>(x[i]);
  return s;
}
float L2SqrF32F16Scalar(const float* q, const uint16_t* x, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) {
    const float t = q[i] - HalfToFloatSw(x[i]);
    s += t * t;
  }
  return s;
}
float IpF32F16Scalar(const float* q, const uint16_t* x, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += q[i] * HalfToFloatSw(x[i]);
  return s;
}
void L2SqrU8RowsScalar(const uint8_t* q, const uint8_t* rows, size_t n, size_t d, uint32_t* out) {
  for (size_t r = 0; r < n; ++r) out[r] = L2SqrU8Scalar(q, rows + r * d, d);
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA + F16C level (256-bit; tails in scalar code).

#define VD_AVX2 __attribute__((target("avx2,fma,f16c")))

// How far ahead the row-block kernels prefetch: the scan streams from DRAM, and prefetching
// 16 KiB ahead beats the hardware prefetcher's ramp-up at every 4 KiB page (measured on Zen 5:
// 0.79 ms at 4 KiB, 0.57 ms at 16 KiB, no gain at 32 KiB per 260k x 128 query).
constexpr size_t kPrefetchBytes = 16384;

VD_AVX2 inline float HsumAvx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
VD_AVX2 inline int32_t HsumAvx2(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

VD_AVX2 float L2SqrF32Avx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    acc0 = _mm256_fmadd_ps(t0, t0, acc0);
    acc1 = _mm256_fmadd_ps(t1, t1, acc1);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    acc0 = _mm256_fmadd_ps(t, t, acc0);
  }
  float s = HsumAvx2(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}
VD_AVX2 float IpF32Avx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= d; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  float s = HsumAvx2(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}

VD_AVX2 inline __m256i LoadU8x16Avx2(const uint8_t* p) {
  return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
VD_AVX2 inline __m256i LoadI8x16Avx2(const int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

VD_AVX2 uint32_t L2SqrU8Avx2(const uint8_t* a, const uint8_t* b, size_t d) {
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m256i t0 = _mm256_sub_epi16(LoadU8x16Avx2(a + i), LoadU8x16Avx2(b + i));
    const __m256i t1 = _mm256_sub_epi16(LoadU8x16Avx2(a + i + 16), LoadU8x16Avx2(b + i + 16));
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(t0, t0));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(t1, t1));
  }
  for (; i + 16 <= d; i += 16) {
    const __m256i t = _mm256_sub_epi16(LoadU8x16Avx2(a + i), LoadU8x16Avx2(b + i));
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(t, t));
  }
  uint32_t s = static_cast<uint32_t>(HsumAvx2(_mm256_add_epi32(acc0, acc1)));
  return s + L2SqrU8Scalar(a + i, b + i, d - i);
}
VD_AVX2 int32_t IpU8Avx2(const uint8_t* a, const uint8_t* b, size_t d) {
  __m256i acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(LoadU8x16Avx2(a + i), LoadU8x16Avx2(b + i)));
  }
  return HsumAvx2(acc) + IpU8Scalar(a + i, b + i, d - i);
}
VD_AVX2 int32_t L2SqrI8Avx2(const int8_t* a, const int8_t* b, size_t d) {
  __m256i acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256i t = _mm256_sub_epi16(LoadI8x16Avx2(a + i), LoadI8x16Avx2(b + i));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(t, t));
  }
  return HsumAvx2(acc) + L2SqrI8Scalar(a + i, b + i, d - i);
}
VD_AVX2 int32_t IpI8Avx2(const int8_t* a, const int8_t* b, size_t d) {
  __m256i acc = _mm256_setzero_si256();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(LoadI8x16Avx2(a + i), LoadI8x16Avx2(b + i)));
  }
  return HsumAvx2(acc) + IpI8Scalar(a + i, b + i, d - i);
}

VD_AVX2 inline __m256 LoadU8x8PsAvx2(const uint8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
VD_AVX2 inline __m256 LoadI8x8PsAvx2(const int8_t* p) {
  return _mm256_cvtepi32_ps(
      _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
VD_AVX2 inline __m256 LoadF16x8PsAvx2(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Float query against converted rows: one template per row type, the loader picks the conversion.
#define VD_AVX2_F32X(NAME, T, LOAD)                                                 \
  VD_AVX2 float L2SqrF32##NAME##Avx2(const float* q, const T* x, size_t d) {        \
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                  \
    size_t i = 0;                                                                   \
    for (; i + 16 <= d; i += 16) {                                                  \
      const __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(q + i), LOAD(x + i));         \
      const __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(q + i + 8), LOAD(x + i + 8)); \
      acc0 = _mm256_fmadd_ps(t0, t0, acc0);                                         \
      acc1 = _mm256_fmadd_ps(t1, t1, acc1);                                         \
    }                                                                               \
    for (; i + 8 <= d; i += 8) {                                                    \
      const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(q + i), LOAD(x + i));          \
      acc0 = _mm256_fmadd_ps(t, t, acc0);                                           \
    }                                                                               \
    return HsumAvx2(_mm256_add_ps(acc0, acc1)) + L2Tail##NAME(q + i, x + i, d - i); \
  }                                                                                 \
  VD_AVX2 float IpF32##NAME##Avx2(const float* q, const T* x, size_t d) {           \
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                  \
    size_t i = 0;                                                                   \
    for (; i + 16 <= d; i += 16) {                                                  \
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LOAD(x + i), acc0);            \
      acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), LOAD(x + i + 8), acc1);    \
    }                                                                               \
    for (; i + 8 <= d; i += 8) {                                                    \
      acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LOAD(x + i), acc0);            \
    }                                                                               \
    return HsumAvx2(_mm256_add_ps(acc0, acc1)) + IpTail##NAME(q + i, x + i, d - i); \
  }

float L2TailU8(const float* q, const uint8_t* x, size_t d) { return L2SqrF32XScalar(q, x, d); }
float IpTailU8(const float* q, const uint8_t* x, size_t d) { return IpF32XScalar(q, x, d); }
float L2TailI8(const float* q, const int8_t* x, size_t d) { return L2SqrF32XScalar(q, x, d); }
float IpTailI8(const float* q, const int8_t* x, size_t d) { return IpF32XScalar(q, x, d); }
float L2TailF16(const float* q, const uint16_t* x, size_t d) { return L2SqrF32F16Scalar(q, x, d); }
float IpTailF16(const float* q, const uint16_t* x, size_t d) { return IpF32F16Scalar(q, x, d); }

VD_AVX2_F32X(U8, uint8_t, LoadU8x8PsAvx2)
VD_AVX2_F32X(I8, int8_t, LoadI8x8PsAvx2)
VD_AVX2_F32X(F16, uint16_t, LoadF16x8PsAvx2)

// The query is widened to int16 once; four rows share every query load.
VD_AVX2 void L2SqrU8RowsAvx2(const uint8_t* q, const uint8_t* rows, size_t n, size_t d,
                             uint32_t* out) {
  constexpr size_t kMaxDim = 4096;
  const size_t dv = d & ~size_t{15};
  if (d > kMaxDim || dv == 0) {
    for (size_t r = 0; r < n; ++r) out[r] = L2SqrU8Avx2(q, rows + r * d, d);
    return;
  }
  alignas(32) int16_t qw[kMaxDim];
  for (size_t i = 0; i < dv; i += 16) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(qw + i), LoadU8x16Avx2(q + i));
  }
  size_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const uint8_t* x = rows + r * d;
    for (size_t off = 0; off < 4 * d; off += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(x + kPrefetchBytes + off), _MM_HINT_T0);
    }
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < dv; i += 16) {
      const __m256i qv = _mm256_load_si256(reinterpret_cast<const __m256i*>(qw + i));
      const __m256i t0 = _mm256_sub_epi16(qv, LoadU8x16Avx2(x + i));
      const __m256i t1 = _mm256_sub_epi16(qv, LoadU8x16Avx2(x + d + i));
      const __m256i t2 = _mm256_sub_epi16(qv, LoadU8x16Avx2(x + 2 * d + i));
      const __m256i t3 = _mm256_sub_epi16(qv, LoadU8x16Avx2(x + 3 * d + i));
      a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(t0, t0));
      a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(t1, t1));
      a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(t2, t2));
      a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(t3, t3));
    }
    out[r] = static_cast<uint32_t>(HsumAvx2(a0));
    out[r + 1] = static_cast<uint32_t>(HsumAvx2(a1));
    out[r + 2] = static_cast<uint32_t>(HsumAvx2(a2));
    out[r + 3] = static_cast<uint32_t>(HsumAvx2(a3));
    if (dv < d) {
      for (size_t j = 0; j < 4; ++j) out[r + j] += L2SqrU8Scalar(q + dv, x + j * d + dv, d - dv);
    }
  }
  for (; r < n; ++r) out[r] = L2SqrU8Avx2(q, rows + r * d, d);
}

// ---------------------------------------------------------------------------------------------
// AVX-512 level (512-bit; tails with masked loads, which never touch memory past the end).

// GCC 12's AVX-512 intrinsic headers initialise their "undefined" operands from themselves, which
// -Wuninitialized reports once the intrinsics are inlined here (GCC bug 105593, fixed in GCC 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define VD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

// Horizontal sums without _mm512_reduce_add_*, whose GCC 12 expansion trips -Wuninitialized.
VD_AVX512 inline float Hsum512(__m512 v) {
  return HsumAvx2(_mm256_add_ps(_mm512_castps512_ps256(v),
                                _mm512_castps512_ps256(_mm512_shuffle_f32x4(v, v, 0xEE))));
}
VD_AVX512 inline int32_t Hsum512(__m512i v) {
  return HsumAvx2(_mm256_add_epi32(_mm512_castsi512_si256(v),
                                   _mm512_castsi512_si256(_mm512_shuffle_i64x2(v, v, 0xEE))));
}

VD_AVX512 inline __mmask16 Mask16(size_t n) { return static_cast<__mmask16>((1u << n) - 1); }
VD_AVX512 inline __mmask32 Mask32(size_t n) {
  return static_cast<__mmask32>((uint64_t{1} << n) - 1);
}

VD_AVX512 float L2SqrF32Avx512(const float* a, const float* b, size_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    const __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    acc0 = _mm512_fmadd_ps(t0, t0, acc0);
    acc1 = _mm512_fmadd_ps(t1, t1, acc1);
  }
  for (; i + 16 <= d; i += 16) {
    const __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    acc0 = _mm512_fmadd_ps(t, t, acc0);
  }
  if (i < d) {
    const __mmask16 m = Mask16(d - i);
    const __m512 t =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    acc1 = _mm512_fmadd_ps(t, t, acc1);
  }
  return Hsum512(_mm512_add_ps(acc0, acc1));
}
VD_AVX512 float IpF32Avx512(const float* a, const float* b, size_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i + 16 <= d; i += 16) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  }
  if (i < d) {
    const __mmask16 m = Mask16(d - i);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
  }
  return Hsum512(_mm512_add_ps(acc0, acc1));
}

VD_AVX512 inline __m512i LoadU8x32Avx512(const uint8_t* p) {
  return _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
VD_AVX512 inline __m512i LoadU8x32Avx512(const uint8_t* p, __mmask32 m) {
  return _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, p));
}
VD_AVX512 inline __m512i LoadI8x32Avx512(const int8_t* p) {
  return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
VD_AVX512 inline __m512i LoadI8x32Avx512(const int8_t* p, __mmask32 m) {
  return _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, p));
}

// Integer kernels: widen 32 bytes to 32 int16, subtract, vpmaddwd, accumulate int32.
#define VD_AVX512_INT(NAME, T, RET, LOAD, DIFF)                                \
  VD_AVX512 RET NAME##Avx512(const T* a, const T* b, size_t d) {               \
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();      \
    size_t i = 0;                                                              \
    for (; i + 64 <= d; i += 64) {                                             \
      acc0 = _mm512_add_epi32(acc0, DIFF(LOAD(a + i), LOAD(b + i)));           \
      acc1 = _mm512_add_epi32(acc1, DIFF(LOAD(a + i + 32), LOAD(b + i + 32))); \
    }                                                                          \
    for (; i + 32 <= d; i += 32) {                                             \
      acc0 = _mm512_add_epi32(acc0, DIFF(LOAD(a + i), LOAD(b + i)));           \
    }                                                                          \
    if (i < d) {                                                               \
      const __mmask32 m = Mask32(d - i);                                       \
      acc1 = _mm512_add_epi32(acc1, DIFF(LOAD(a + i, m), LOAD(b + i, m)));     \
    }                                                                          \
    return static_cast<RET>(Hsum512(_mm512_add_epi32(acc0, acc1)));            \
  }

VD_AVX512 inline __m512i SqDiff16(__m512i x, __m512i y) {
  const __m512i t = _mm512_sub_epi16(x, y);
  return _mm512_madd_epi16(t, t);
}
VD_AVX512 inline __m512i Prod16(__m512i x, __m512i y) { return _mm512_madd_epi16(x, y); }

VD_AVX512_INT(L2SqrU8, uint8_t, uint32_t, LoadU8x32Avx512, SqDiff16)
VD_AVX512_INT(IpU8, uint8_t, int32_t, LoadU8x32Avx512, Prod16)
VD_AVX512_INT(L2SqrI8, int8_t, int32_t, LoadI8x32Avx512, SqDiff16)
VD_AVX512_INT(IpI8, int8_t, int32_t, LoadI8x32Avx512, Prod16)

VD_AVX512 inline __m512 LoadU8x16Ps(const uint8_t* p, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)));
}
VD_AVX512 inline __m512 LoadI8x16Ps(const int8_t* p, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}
VD_AVX512 inline __m512 LoadF16x16Ps(const uint16_t* p, __mmask16 m) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

#define VD_AVX512_F32X(NAME, T, LOAD)                                                      \
  VD_AVX512 float L2SqrF32##NAME##Avx512(const float* q, const T* x, size_t d) {           \
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                         \
    const __mmask16 all = 0xFFFF;                                                          \
    size_t i = 0;                                                                          \
    for (; i + 32 <= d; i += 32) {                                                         \
      const __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(q + i), LOAD(x + i, all));           \
      const __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(q + i + 16), LOAD(x + i + 16, all)); \
      acc0 = _mm512_fmadd_ps(t0, t0, acc0);                                                \
      acc1 = _mm512_fmadd_ps(t1, t1, acc1);                                                \
    }                                                                                      \
    for (; i < d; i += 16) {                                                               \
      const __mmask16 m = d - i >= 16 ? all : Mask16(d - i);                               \
      const __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, q + i), LOAD(x + i, m));     \
      acc0 = _mm512_fmadd_ps(t, t, acc0);                                                  \
    }                                                                                      \
    return Hsum512(_mm512_add_ps(acc0, acc1));                                             \
  }                                                                                        \
  VD_AVX512 float IpF32##NAME##Avx512(const float* q, const T* x, size_t d) {              \
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();                         \
    const __mmask16 all = 0xFFFF;                                                          \
    size_t i = 0;                                                                          \
    for (; i + 32 <= d; i += 32) {                                                         \
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), LOAD(x + i, all), acc0);              \
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), LOAD(x + i + 16, all), acc1);    \
    }                                                                                      \
    for (; i < d; i += 16) {                                                               \
      const __mmask16 m = d - i >= 16 ? all : Mask16(d - i);                               \
      acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), LOAD(x + i, m), acc0);       \
    }                                                                                      \
    return Hsum512(_mm512_add_ps(acc0, acc1));                                             \
  }

VD_AVX512_F32X(U8, uint8_t, LoadU8x16Ps)
VD_AVX512_F32X(I8, int8_t, LoadI8x16Ps)
VD_AVX512_F32X(F16, uint16_t, LoadF16x16Ps)

// The four horizontal sums of a..d as one vector {sum a, sum b, sum c, sum d}.
VD_AVX512 inline __m256i Fold512(__m512i v) {
  return _mm256_add_epi32(_mm512_castsi512_si256(v),
                          _mm512_castsi512_si256(_mm512_shuffle_i64x2(v, v, 0xEE)));
}
VD_AVX512 inline __m128i Hsum4x512(__m512i a, __m512i b, __m512i c, __m512i d) {
  const __m256i ab =
      _mm256_hadd_epi32(Fold512(a), Fold512(b));  // a01 a23 b01 b23 | a45 a67 b45 b67
  const __m256i cd = _mm256_hadd_epi32(Fold512(c), Fold512(d));
  const __m256i abcd = _mm256_hadd_epi32(ab, cd);  // a b c d | a b c d (partial sums)
  return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

// The query is widened to int16 once; four rows share every query load.
VD_AVX512 void L2SqrU8RowsAvx512(const uint8_t* q, const uint8_t* rows, size_t n, size_t d,
                                 uint32_t* out) {
  constexpr size_t kMaxDim = 4096;
  if (d > kMaxDim || d == 0) {
    for (size_t r = 0; r < n; ++r) out[r] = L2SqrU8Avx512(q, rows + r * d, d);
    return;
  }
  const size_t dv = d & ~size_t{31};
  const __mmask32 tail = Mask32(d - dv);
  alignas(64) int16_t qw[kMaxDim + 32];
  for (size_t i = 0; i < dv; i += 32) _mm512_store_si512(qw + i, LoadU8x32Avx512(q + i));
  if (tail) _mm512_store_si512(qw + dv, LoadU8x32Avx512(q + dv, tail));
  size_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const uint8_t* x = rows + r * d;
    for (size_t off = 0; off < 4 * d; off += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(x + kPrefetchBytes + off), _MM_HINT_T0);
    }
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < dv; i += 32) {
      const __m512i qv = _mm512_load_si512(qw + i);
      a0 = _mm512_add_epi32(a0, SqDiff16(qv, LoadU8x32Avx512(x + i)));
      a1 = _mm512_add_epi32(a1, SqDiff16(qv, LoadU8x32Avx512(x + d + i)));
      a2 = _mm512_add_epi32(a2, SqDiff16(qv, LoadU8x32Avx512(x + 2 * d + i)));
      a3 = _mm512_add_epi32(a3, SqDiff16(qv, LoadU8x32Avx512(x + 3 * d + i)));
    }
    if (tail) {
      const __m512i qv = _mm512_load_si512(qw + dv);
      a0 = _mm512_add_epi32(a0, SqDiff16(qv, LoadU8x32Avx512(x + dv, tail)));
      a1 = _mm512_add_epi32(a1, SqDiff16(qv, LoadU8x32Avx512(x + d + dv, tail)));
      a2 = _mm512_add_epi32(a2, SqDiff16(qv, LoadU8x32Avx512(x + 2 * d + dv, tail)));
      a3 = _mm512_add_epi32(a3, SqDiff16(qv, LoadU8x32Avx512(x + 3 * d + dv, tail)));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + r), Hsum4x512(a0, a1, a2, a3));
  }
  for (; r < n; ++r) out[r] = L2SqrU8Avx512(q, rows + r * d, d);
}

#pragma GCC diagnostic pop

// ---------------------------------------------------------------------------------------------
// Dispatch table.

struct Kernels {
  const char* name;
  float (*l2_f32)(const float*, const float*, size_t);
  float (*ip_f32)(const float*, const float*, size_t);
  uint32_t (*l2_u8)(const uint8_t*, const uint8_t*, size_t);
  int32_t (*ip_u8)(const uint8_t*, const uint8_t*, size_t);
  int32_t (*l2_i8)(const int8_t*, const int8_t*, size_t);
  int32_t (*ip_i8)(const int8_t*, const int8_t*, size_t);
  float (*l2_f32u8)(const float*, const uint8_t*, size_t);
  float (*ip_f32u8)(const float*, const uint8_t*, size_t);
  float (*l2_f32i8)(const float*, const int8_t*, size_t);
  float (*ip_f32i8)(const float*, const int8_t*, size_t);
  float (*l2_f32f16)(const float*, const uint16_t*, size_t);
  float (*ip_f32f16)(const float*, const uint16_t*, size_t);
  void (*l2_u8_rows)(const uint8_t*, const uint8_t*, size_t, size_t, uint32_t*);
};

constexpr Kernels kScalar = {"scalar",
                             L2SqrF32Scalar,
                             IpF32Scalar,
                             L2SqrU8Scalar,
                             IpU8Scalar,
                             L2SqrI8Scalar,
                             IpI8Scalar,
                             L2SqrF32XScalar<uint8_t>,
                             IpF32XScalar<uint8_t>,
                             L2SqrF32XScalar<int8_t>,
                             IpF32XScalar<int8_t>,
                             L2SqrF32F16Scalar,
                             IpF32F16Scalar,
                             L2SqrU8RowsScalar};
constexpr Kernels kAvx2 = {"avx2",       L2SqrF32Avx2,   IpF32Avx2,   L2SqrU8Avx2,
                           IpU8Avx2,     L2SqrI8Avx2,    IpI8Avx2,    L2SqrF32U8Avx2,
                           IpF32U8Avx2,  L2SqrF32I8Avx2, IpF32I8Avx2, L2SqrF32F16Avx2,
                           IpF32F16Avx2, L2SqrU8RowsAvx2};
constexpr Kernels kAvx512 = {"avx512",       L2SqrF32Avx512,   IpF32Avx512,   L2SqrU8Avx512,
                             IpU8Avx512,     L2SqrI8Avx512,    IpI8Avx512,    L2SqrF32U8Avx512,
                             IpF32U8Avx512,  L2SqrF32I8Avx512, IpF32I8Avx512, L2SqrF32F16Avx512,
                             IpF32F16Avx512, L2SqrU8RowsAvx512};

constexpr KernelDispatch<Kernels> kDispatch(&kScalar, &kAvx2, &kAvx512);
inline const Kernels& K() { return kDispatch.Get(); }

}  // namespace

const char* KernelLevel() { return K().name; }

bool SetKernelLevel(const char* level) { return kDispatch.SetLevel(level); }

float L2SqrF32(const float* a, const float* b, size_t d) { return K().l2_f32(a, b, d); }
float IpF32(const float* a, const float* b, size_t d) { return K().ip_f32(a, b, d); }
uint32_t L2SqrU8(const uint8_t* a, const uint8_t* b, size_t d) { return K().l2_u8(a, b, d); }
int32_t IpU8(const uint8_t* a, const uint8_t* b, size_t d) { return K().ip_u8(a, b, d); }
int32_t L2SqrI8(const int8_t* a, const int8_t* b, size_t d) { return K().l2_i8(a, b, d); }
int32_t IpI8(const int8_t* a, const int8_t* b, size_t d) { return K().ip_i8(a, b, d); }
float L2SqrF32U8(const float* q, const uint8_t* x, size_t d) { return K().l2_f32u8(q, x, d); }
float IpF32U8(const float* q, const uint8_t* x, size_t d) { return K().ip_f32u8(q, x, d); }
float L2SqrF32I8(const float* q, const int8_t* x, size_t d) { return K().l2_f32i8(q, x, d); }
float IpF32I8(const float* q, const int8_t* x, size_t d) { return K().ip_f32i8(q, x, d); }
float L2SqrF32F16(const float* q, const uint16_t* x, size_t d) { return K().l2_f32f16(q, x, d); }
float IpF32F16(const float* q, const uint16_t* x, size_t d) { return K().ip_f32f16(q, x, d); }
void L2SqrU8Rows(const uint8_t* q, const uint8_t* rows, size_t n, size_t d, uint32_t* out) {
  K().l2_u8_rows(q, rows, n, d, out);
}

float L1F32(const float* q, const float* x, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += std::fabs(q[i] - x[i]);
  return s;
}
float L1F32U8(const float* q, const uint8_t* x, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += std::fabs(q[i] - static_cast<float>(x[i]));
  return s;
}
float L1F32I8(const float* q, const int8_t* x, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += std::fabs(q[i] - static_cast<float>(x[i]));
  return s;
}
float L1F32F16(const float* q, const uint16_t* x, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; ++i) s += std::fabs(q[i] - HalfToFloatSw(x[i]));
  return s;
}

uint16_t FloatToHalf(float f) { return FloatToHalfSw(f); }
float HalfToFloat(uint16_t h) { return HalfToFloatSw(h); }

}  // namespace vectord::index
