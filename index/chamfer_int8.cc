// Approximate Chamfer on 8-bit codes (chamfer_int8.h): the encoders and one kernel per CPU level.
//
// Layout. Lanes are query vectors: a query chunk of L lanes (L a multiple of 8, at most 32) is
// stored as k4 = ceil(dim / 4) steps of [L lanes][4 int8 codes]. For each document vector j the
// kernel broadcasts its codes 4 bytes at a time and multiplies them into every lane at once
// (vpdpbusd: 4 u8 x s8 products summed into each int32 lane), so the L inner products of one
// document vector come out in L int32 lanes with no horizontal sums. Several document vectors
// share each load of the query step (independent accumulator chains). The epilogue per document
// vector turns the lanes into scale_j * dot + offset_j * sum(code_i) and keeps their running max.
//
// Exactness. The integer products are exact at every level (|dot| <= 255 * 127 * dim fits int32
// for dim <= 66,311); the epilogue is the same float operations in the same order (one fused
// multiply-add), and the final sum over query vectors runs in double outside the kernels, so all
// levels return identical floats (tested).
#include "index/chamfer_int8.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string_view>

#include "index/cpu_dispatch.h"

namespace vectord::index {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// best[l] = max over the nd document rows j of scale_j * <code_j, q lane l> + offset_j * sum[l],
// for the `lanes` lanes of one query chunk `q` (k4 steps of lanes x 4 codes). isum: sum as int32.
using ChunkFn = void (*)(const int8_t* q, uint32_t lanes, uint32_t k4, const float* sum,
                         const int32_t* isum, const uint8_t* rows, size_t nd, uint32_t row_bytes,
                         float* best);

inline int32_t LoadI32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline float LoadF32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

void ChunkScalar(const int8_t* q, uint32_t lanes, uint32_t k4, const float* sum, const int32_t*,
                 const uint8_t* rows, size_t nd, uint32_t row_bytes, float* best) {
  std::fill(best, best + lanes, kNegInf);
  for (size_t j = 0; j < nd; ++j) {
    const uint8_t* r = rows + j * row_bytes;
    const float scale = LoadF32(r + 4 * k4), offset = LoadF32(r + 4 * k4 + 4);
    for (uint32_t l = 0; l < lanes; ++l) {
      int32_t dot = 0;
      for (uint32_t k = 0; k < k4; ++k) {
        const int8_t* qk = q + (size_t{k} * lanes + l) * 4;
        for (int t = 0; t < 4; ++t) dot += int32_t{r[4 * k + t]} * int32_t{qk[t]};
      }
      best[l] = std::max(best[l], std::fma(scale, static_cast<float>(dot), offset * sum[l]));
    }
  }
}

#define VD_AVX2 __attribute__((target("avx2,fma")))
#define VD_AVXVNNI __attribute__((target("avxvnni,avx2,fma")))
#define VD_VNNI512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")))

// ---------------------------------------------------------------------------------------------
// AVX-512 VNNI: 16-lane zmm blocks plus one 8-lane ymm block (L = 16 * NZ + 8 * NY), ND document
// vectors per pass (ND * (NZ + NY) accumulator chains to hide vpdpbusd's latency).

// GCC 12's expansion of the 512 -> 256-bit casts trips -Wmaybe-uninitialized (undefined upper
// lanes): silenced for the SIMD code only, as in chamfer.cc.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

template <int NZ, int NY, int ND>
VD_VNNI512 inline void Pass512(const int8_t* q, uint32_t lanes, uint32_t k4, const uint8_t* rows,
                               uint32_t rb, const __m512* sz, const __m256* sy, __m512* bz,
                               __m256* by) {
  constexpr int AZ = NZ > 0 ? NZ : 1, AY = NY > 0 ? NY : 1;
  __m512i az[ND][AZ];
  __m256i ay[ND][AY];
  for (int n = 0; n < ND; ++n) {
    for (int z = 0; z < AZ; ++z) az[n][z] = _mm512_setzero_si512();
    for (int y = 0; y < AY; ++y) ay[n][y] = _mm256_setzero_si256();
  }
  const size_t step = size_t{lanes} * 4;
  for (uint32_t k = 0; k < k4; ++k) {
    const int8_t* qk = q + k * step;
    __m512i dv[ND];
    for (int n = 0; n < ND; ++n) dv[n] = _mm512_set1_epi32(LoadI32(rows + n * rb + 4 * k));
    for (int z = 0; z < NZ; ++z) {
      const __m512i qv = _mm512_loadu_si512(qk + 64 * z);
      for (int n = 0; n < ND; ++n) az[n][z] = _mm512_dpbusd_epi32(az[n][z], dv[n], qv);
    }
    if constexpr (NY > 0) {
      const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk + 64 * NZ));
      for (int n = 0; n < ND; ++n) {
        ay[n][0] = _mm256_dpbusd_epi32(ay[n][0], _mm512_castsi512_si256(dv[n]), qv);
      }
    }
  }
  for (int n = 0; n < ND; ++n) {
    const uint8_t* r = rows + n * rb + 4 * k4;
    const float scale = LoadF32(r), offset = LoadF32(r + 4);
    const __m512 s = _mm512_set1_ps(scale), o = _mm512_set1_ps(offset);
    for (int z = 0; z < NZ; ++z) {
      const __m512 v = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(az[n][z]), _mm512_mul_ps(o, sz[z]));
      bz[z] = _mm512_max_ps(bz[z], v);
    }
    if constexpr (NY > 0) {
      const __m256 v = _mm256_fmadd_ps(_mm512_castps512_ps256(s), _mm256_cvtepi32_ps(ay[n][0]),
                                       _mm256_mul_ps(_mm512_castps512_ps256(o), sy[0]));
      by[0] = _mm256_max_ps(by[0], v);
    }
  }
}

template <int NZ, int NY>
VD_VNNI512 void Chunk512(const int8_t* q, uint32_t lanes, uint32_t k4, const float* sum,
                         const uint8_t* rows, size_t nd, uint32_t rb, float* best) {
  constexpr int AZ = NZ > 0 ? NZ : 1;
  __m512 sz[AZ], bz[AZ];
  __m256 sy[1], by[1];
  for (int z = 0; z < NZ; ++z) {
    sz[z] = _mm512_loadu_ps(sum + 16 * z);
    bz[z] = _mm512_set1_ps(kNegInf);
  }
  if constexpr (NY > 0) {
    sy[0] = _mm256_loadu_ps(sum + 16 * NZ);
    by[0] = _mm256_set1_ps(kNegInf);
  }
  size_t j = 0;
  for (; j + 4 <= nd; j += 4) Pass512<NZ, NY, 4>(q, lanes, k4, rows + j * rb, rb, sz, sy, bz, by);
  const uint8_t* r = rows + j * rb;
  switch (nd - j) {
    case 3:
      Pass512<NZ, NY, 3>(q, lanes, k4, r, rb, sz, sy, bz, by);
      break;
    case 2:
      Pass512<NZ, NY, 2>(q, lanes, k4, r, rb, sz, sy, bz, by);
      break;
    case 1:
      Pass512<NZ, NY, 1>(q, lanes, k4, r, rb, sz, sy, bz, by);
      break;
    default:
      break;
  }
  for (int z = 0; z < NZ; ++z) _mm512_storeu_ps(best + 16 * z, bz[z]);
  if constexpr (NY > 0) _mm256_storeu_ps(best + 16 * NZ, by[0]);
}

VD_VNNI512 void ChunkAvx512(const int8_t* q, uint32_t lanes, uint32_t k4, const float* sum,
                            const int32_t*, const uint8_t* rows, size_t nd, uint32_t rb,
                            float* best) {
  switch (lanes) {
    case 8:
      return Chunk512<0, 1>(q, lanes, k4, sum, rows, nd, rb, best);
    case 16:
      return Chunk512<1, 0>(q, lanes, k4, sum, rows, nd, rb, best);
    case 24:
      return Chunk512<1, 1>(q, lanes, k4, sum, rows, nd, rb, best);
    default:
      return Chunk512<2, 0>(q, lanes, k4, sum, rows, nd, rb, best);
  }
}

// ---------------------------------------------------------------------------------------------
// 256-bit levels: NY 8-lane blocks (L = 8 * NY), ND document vectors per pass. `Dot` is the
// level's 4-way u8 x s8 multiply-accumulate: AVX-VNNI's vpdpbusd, or on plain AVX2 an exact
// emulation (below).

struct DotAvxVnni {
  static VD_AVXVNNI __m256i Prepare(__m256i d) { return d; }
  static VD_AVXVNNI __m256i Bias(const int32_t*) { return _mm256_setzero_si256(); }
  static VD_AVXVNNI __m256i Madd(__m256i acc, __m256i d, __m256i q) {
    return _mm256_dpbusd_avx_epi32(acc, d, q);
  }
};

// Plain AVX2 has no saturation-free u8 x s8 multiply-add: pmaddubsw saturates its int16 pair
// sums (255 * 127 * 2 > 32767). Shifting the document codes to c = u - 128 (an xor with 0x80)
// gives |c| <= 128 and |c| * |q| pairs <= 2 * 128 * 127 = 32512: exact as |c| x sign(q, c). The
// accumulators start at 128 * sum(code_i), which makes the result sum(u * q) as with vpdpbusd.
struct DotAvx2 {
  static VD_AVX2 __m256i Prepare(__m256i d) {
    return _mm256_xor_si256(d, _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  static VD_AVX2 __m256i Bias(const int32_t* isum) {
    return _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(isum)), 7);
  }
  static VD_AVX2 __m256i Madd(__m256i acc, __m256i c, __m256i q) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(c), _mm256_sign_epi8(q, c));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  }
};

// The 256-bit kernel body, instantiated once per level with that level's target attribute.
#define VD_DEFINE_CHUNK256(NAME, ATTR, DOT)                                                       \
  template <int NY, int ND>                                                                       \
  ATTR inline void NAME##Pass(const int8_t* q, uint32_t lanes, uint32_t k4, const float* sum,     \
                              const int32_t* isum, const uint8_t* rows, uint32_t rb, __m256* b) { \
    __m256i acc[ND][NY];                                                                          \
    for (int y = 0; y < NY; ++y) {                                                                \
      const __m256i bias = DOT::Bias(isum + 8 * y);                                               \
      for (int n = 0; n < ND; ++n) acc[n][y] = bias;                                              \
    }                                                                                             \
    const size_t step = size_t{lanes} * 4;                                                        \
    for (uint32_t k = 0; k < k4; ++k) {                                                           \
      const int8_t* qk = q + k * step;                                                            \
      __m256i dv[ND];                                                                             \
      for (int n = 0; n < ND; ++n) {                                                              \
        dv[n] = DOT::Prepare(_mm256_set1_epi32(LoadI32(rows + n * rb + 4 * k)));                  \
      }                                                                                           \
      for (int y = 0; y < NY; ++y) {                                                              \
        const __m256i qv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qk + 32 * y));     \
        for (int n = 0; n < ND; ++n) acc[n][y] = DOT::Madd(acc[n][y], dv[n], qv);                 \
      }                                                                                           \
    }                                                                                             \
    for (int n = 0; n < ND; ++n) {                                                                \
      const uint8_t* r = rows + n * rb + 4 * k4;                                                  \
      const __m256 s = _mm256_set1_ps(LoadF32(r)), o = _mm256_set1_ps(LoadF32(r + 4));            \
      for (int y = 0; y < NY; ++y) {                                                              \
        const __m256 v = _mm256_fmadd_ps(s, _mm256_cvtepi32_ps(acc[n][y]),                        \
                                         _mm256_mul_ps(o, _mm256_loadu_ps(sum + 8 * y)));         \
        b[y] = _mm256_max_ps(b[y], v);                                                            \
      }                                                                                           \
    }                                                                                             \
  }                                                                                               \
  template <int NY>                                                                               \
  ATTR void NAME##Blocks(const int8_t* q, uint32_t lanes, uint32_t k4, const float* sum,          \
                         const int32_t* isum, const uint8_t* rows, size_t nd, uint32_t rb,        \
                         float* best) {                                                           \
    __m256 b[NY];                                                                                 \
    for (int y = 0; y < NY; ++y) b[y] = _mm256_set1_ps(kNegInf);                                  \
    size_t j = 0;                                                                                 \
    for (; j + 2 <= nd; j += 2) NAME##Pass<NY, 2>(q, lanes, k4, sum, isum, rows + j * rb, rb, b); \
    if (j < nd) NAME##Pass<NY, 1>(q, lanes, k4, sum, isum, rows + j * rb, rb, b);                 \
    for (int y = 0; y < NY; ++y) _mm256_storeu_ps(best + 8 * y, b[y]);                            \
  }                                                                                               \
  ATTR void NAME(const int8_t* q, uint32_t lanes, uint32_t k4, const float* sum,                  \
                 const int32_t* isum, const uint8_t* rows, size_t nd, uint32_t rb, float* best) { \
    switch (lanes) {                                                                              \
      case 8:                                                                                     \
        return NAME##Blocks<1>(q, lanes, k4, sum, isum, rows, nd, rb, best);                      \
      case 16:                                                                                    \
        return NAME##Blocks<2>(q, lanes, k4, sum, isum, rows, nd, rb, best);                      \
      case 24:                                                                                    \
        return NAME##Blocks<3>(q, lanes, k4, sum, isum, rows, nd, rb, best);                      \
      default:                                                                                    \
        return NAME##Blocks<4>(q, lanes, k4, sum, isum, rows, nd, rb, best);                      \
    }                                                                                             \
  }

VD_DEFINE_CHUNK256(ChunkAvxVnni, VD_AVXVNNI, DotAvxVnni)
VD_DEFINE_CHUNK256(ChunkAvx2, VD_AVX2, DotAvx2)
#pragma GCC diagnostic pop

// ---------------------------------------------------------------------------------------------
// Dispatch: four levels (KernelDispatch in cpu_dispatch.h knows three).

struct Level {
  const char* name;
  bool (*supported)();
  ChunkFn chunk;
};
bool Always() { return true; }
constexpr Level kLevels[] = {{"scalar", Always, ChunkScalar},
                             {"avx2", CpuHasAvx2, ChunkAvx2},
                             {"avxvnni", CpuHasAvxVnni, ChunkAvxVnni},
                             {"avx512", CpuHasAvx512Vnni, ChunkAvx512}};

const Level* BestLevel() {
  const Level* best = &kLevels[0];
  for (const Level& l : kLevels) {
    if (l.supported()) best = &l;
  }
  return best;
}
std::atomic<const Level*>& ActiveLevel() {
  static std::atomic<const Level*> active{BestLevel()};
  return active;
}

}  // namespace

const char* ChamferInt8KernelLevel() { return ActiveLevel().load(std::memory_order_relaxed)->name; }

bool SetChamferInt8KernelLevel(const char* level) {
  const std::string_view l = level == nullptr ? "auto" : level;
  const Level* pick = nullptr;
  if (l == "auto") pick = BestLevel();
  for (const Level& lv : kLevels) {
    if (l == lv.name && lv.supported()) pick = &lv;
  }
  if (pick == nullptr) return false;
  ActiveLevel().store(pick, std::memory_order_relaxed);
  return true;
}

void EncodeInt8Rows(const float* x, size_t n, uint32_t dim, uint8_t* out) {
  const uint32_t cb = Int8CodeBytes(dim);
  for (size_t j = 0; j < n; ++j) {
    const float* v = x + j * dim;
    uint8_t* r = out + j * Int8RowBytes(dim);
    float lo = dim ? v[0] : 0.0f, hi = lo;
    for (uint32_t k = 1; k < dim; ++k) {
      lo = std::min(lo, v[k]);
      hi = std::max(hi, v[k]);
    }
    std::memset(r, 0, cb);
    // In double: hi - lo may overflow float for extreme (finite) inputs.
    const double range = double{hi} - double{lo};
    float scale = static_cast<float>(range / 255.0);
    if (!(scale > 0)) {
      scale = 0;  // a constant vector (or a range below float's resolution): offset alone
    } else if (range >= 1e-30 && range <= std::numeric_limits<float>::max()) {
      // Float arithmetic (vectorised), rounding half up: t is in [0, 255] up to rounding.
      const float inv = static_cast<float>(255.0 / range);
      for (uint32_t k = 0; k < dim; ++k) {
        const float t = (v[k] - lo) * inv + 0.5f;
        r[k] = static_cast<uint8_t>(std::min(255.0f, std::max(0.0f, t)));
      }
    } else {  // extreme ranges: 255 / range or v - lo would overflow float
      const double inv = 255.0 / range;
      for (uint32_t k = 0; k < dim; ++k) {
        r[k] = static_cast<uint8_t>(std::clamp((double{v[k]} - lo) * inv + 0.5, 0.0, 255.0));
      }
    }
    std::memcpy(r + cb, &scale, 4);
    std::memcpy(r + cb + 4, &lo, 4);
  }
}

void DecodeInt8Row(const uint8_t* row, uint32_t dim, float* x) {
  const uint32_t cb = Int8CodeBytes(dim);
  const float scale = LoadF32(row + cb), offset = LoadF32(row + cb + 4);
  for (uint32_t k = 0; k < dim; ++k) {  // in double: scale * 255 may exceed FLT_MAX
    x[k] = static_cast<float>(double{offset} + double{scale} * row[k]);
  }
}

Int8Query::Int8Query(const float* q, size_t nq, uint32_t dim)
    : dim_(dim),
      nq_(static_cast<uint32_t>(nq)),
      k4_((dim + 3) / 4),
      lanes_(static_cast<uint32_t>((nq + 7) / 8 * 8)) {
  codes_.assign(size_t{lanes_} * k4_ * 4, 0);
  scale_.assign(lanes_, 0.0f);
  sum_.assign(lanes_, 0.0f);
  isum_.assign(lanes_, 0);
  for (uint32_t i = 0; i < nq_; ++i) {
    const float* v = q + size_t{i} * dim;
    float m = 0;
    for (uint32_t k = 0; k < dim; ++k) m = std::max(m, std::fabs(v[k]));
    if (!(m > 0)) continue;  // a zero vector: codes 0, scale 0
    scale_[i] = m / 127.0f;
    const uint32_t chunk = i / kChunkLanes, first = chunk * kChunkLanes;
    const uint32_t width = std::min(kChunkLanes, lanes_ - first);
    int8_t* base = codes_.data() + size_t{first} * k4_ * 4 + size_t{i - first} * 4;
    int32_t s = 0;
    for (uint32_t k = 0; k < dim; ++k) {
      // |v / m| <= 1 exactly, so |t| <= 127; rounded half away from zero (truncation of t +- 0.5).
      const float t = v[k] / m * 127.0f;
      const int8_t code = static_cast<int8_t>(t + (t < 0 ? -0.5f : 0.5f));
      base[size_t{k / 4} * width * 4 + k % 4] = code;
      s += code;
    }
    isum_[i] = s;
    sum_[i] = static_cast<float>(s);
  }
}

std::vector<float> Int8Query::Decoded(uint32_t i) const {
  std::vector<float> out(dim_);
  const uint32_t first = i / kChunkLanes * kChunkLanes;
  const uint32_t width = std::min(kChunkLanes, lanes_ - first);
  const int8_t* base = codes_.data() + size_t{first} * k4_ * 4 + size_t{i - first} * 4;
  for (uint32_t k = 0; k < dim_; ++k) {
    out[k] = scale_[i] * static_cast<float>(base[size_t{k / 4} * width * 4 + k % 4]);
  }
  return out;
}

float ChamferInt8(const Int8Query& q, const uint8_t* rows, size_t nd) {
  if (q.nq_ == 0) return 0.0f;
  if (nd == 0) return kNegInf;
  const ChunkFn fn = ActiveLevel().load(std::memory_order_relaxed)->chunk;
  const uint32_t rb = Int8RowBytes(q.dim_);
  float best[Int8Query::kChunkLanes];
  double total = 0;
  for (uint32_t first = 0; first < q.lanes_; first += Int8Query::kChunkLanes) {
    const uint32_t width = std::min(Int8Query::kChunkLanes, q.lanes_ - first);
    fn(q.codes_.data() + size_t{first} * q.k4_ * 4, width, q.k4_, q.sum_.data() + first,
       q.isum_.data() + first, rows, nd, rb, best);
    const uint32_t real = std::min(width, q.nq_ - std::min(q.nq_, first));
    for (uint32_t l = 0; l < real; ++l) total += double{q.scale_[first + l]} * double{best[l]};
  }
  return static_cast<float>(total);
}

}  // namespace vectord::index
