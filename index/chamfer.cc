// Exact Chamfer (MaxSim) scoring: a blocked max-inner-product kernel per CPU level (scalar, AVX2,
// AVX-512) and the set-level functions on top of it. See chamfer.h.
#include "index/chamfer.h"

#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "index/cpu_dispatch.h"

namespace vectord::index {
namespace {

using MaxIpFn = void (*)(const float*, size_t, const float*, size_t, size_t, float*);

struct Kernels {
  const char* name;
  MaxIpFn max_ip;
};

// Scalar level: plain loops (the compiler vectorises them for the x86-64 baseline).
void MaxIpScalar(const float* q, size_t nq, const float* d, size_t nd, size_t dim, float* best) {
  for (size_t i = 0; i < nq; ++i) {
    const float* qi = q + i * dim;
    float b = best[i];
    for (size_t j = 0; j < nd; ++j) {
      const float* dj = d + j * dim;
      float s = 0;
      for (size_t k = 0; k < dim; ++k) s += qi[k] * dj[k];
      b = std::max(b, s);
    }
    best[i] = b;
  }
}

// A tile of QB query rows x DB document rows: QB * DB accumulators, each query and document
// load shared by DB resp. QB FMAs. Returns the QB x DB inner products in ip[QB][DB].
#define VD_AVX2 __attribute__((target("avx2,fma")))
#define VD_AVX512 __attribute__((target("avx512f,avx2,fma")))

VD_AVX2 inline float HsumAvx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <int QB, int DB>
VD_AVX2 inline void TileAvx2(const float* const* qs, const float* const* ds, size_t dim,
                             float (*ip)[DB]) {
  __m256 acc[QB][DB];
  for (int a = 0; a < QB; ++a)
    for (int b = 0; b < DB; ++b) acc[a][b] = _mm256_setzero_ps();
  size_t k = 0;
  for (; k + 8 <= dim; k += 8) {
    __m256 dv[DB];
    for (int b = 0; b < DB; ++b) dv[b] = _mm256_loadu_ps(ds[b] + k);
    for (int a = 0; a < QB; ++a) {
      const __m256 qv = _mm256_loadu_ps(qs[a] + k);
      for (int b = 0; b < DB; ++b) acc[a][b] = _mm256_fmadd_ps(qv, dv[b], acc[a][b]);
    }
  }
  for (int a = 0; a < QB; ++a) {
    for (int b = 0; b < DB; ++b) {
      float s = HsumAvx2(acc[a][b]);
      for (size_t t = k; t < dim; ++t) s += qs[a][t] * ds[b][t];
      ip[a][b] = s;
    }
  }
}

// GCC 12's expansion of _mm512_reduce_add_ps and of the 256-bit extracts trips
// -Wmaybe-uninitialized (undefined upper lanes): silenced for the AVX-512 code only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
VD_AVX512 inline float Hsum512(__m512 v) {
  return HsumAvx2(_mm256_add_ps(_mm512_castps512_ps256(v),
                                _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

template <int QB, int DB>
VD_AVX512 inline void TileAvx512(const float* const* qs, const float* const* ds, size_t dim,
                                 float (*ip)[DB]) {
  __m512 acc[QB][DB];
  for (int a = 0; a < QB; ++a)
    for (int b = 0; b < DB; ++b) acc[a][b] = _mm512_setzero_ps();
  size_t k = 0;
  for (; k + 16 <= dim; k += 16) {
    __m512 dv[DB];
    for (int b = 0; b < DB; ++b) dv[b] = _mm512_loadu_ps(ds[b] + k);
    for (int a = 0; a < QB; ++a) {
      const __m512 qv = _mm512_loadu_ps(qs[a] + k);
      for (int b = 0; b < DB; ++b) acc[a][b] = _mm512_fmadd_ps(qv, dv[b], acc[a][b]);
    }
  }
  if (k < dim) {  // masked tail: lanes past dim load as zero
    const __mmask16 m = static_cast<__mmask16>((1u << (dim - k)) - 1);
    __m512 dv[DB];
    for (int b = 0; b < DB; ++b) dv[b] = _mm512_maskz_loadu_ps(m, ds[b] + k);
    for (int a = 0; a < QB; ++a) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, qs[a] + k);
      for (int b = 0; b < DB; ++b) acc[a][b] = _mm512_fmadd_ps(qv, dv[b], acc[a][b]);
    }
  }
  for (int a = 0; a < QB; ++a)
    for (int b = 0; b < DB; ++b) ip[a][b] = Hsum512(acc[a][b]);
}

// The blocked driver shared by both SIMD levels: 4 x 2 tiles, then the edges.
#define VD_DEFINE_MAX_IP(NAME, ATTR, TILE)                                                        \
  template <int QB>                                                                               \
  ATTR inline void NAME##Rows(const float* q, const float* d, size_t nd, size_t dim,              \
                              float* best) {                                                      \
    const float* qs[QB];                                                                          \
    for (int a = 0; a < QB; ++a) qs[a] = q + a * dim;                                             \
    float b[QB];                                                                                  \
    for (int a = 0; a < QB; ++a) b[a] = best[a];                                                  \
    size_t j = 0;                                                                                 \
    for (; j + 2 <= nd; j += 2) {                                                                 \
      const float* ds[2] = {d + j * dim, d + (j + 1) * dim};                                      \
      float ip[QB][2];                                                                            \
      TILE<QB, 2>(qs, ds, dim, ip);                                                               \
      for (int a = 0; a < QB; ++a) b[a] = std::max(b[a], std::max(ip[a][0], ip[a][1]));           \
    }                                                                                             \
    if (j < nd) {                                                                                 \
      const float* ds[1] = {d + j * dim};                                                         \
      float ip[QB][1];                                                                            \
      TILE<QB, 1>(qs, ds, dim, ip);                                                               \
      for (int a = 0; a < QB; ++a) b[a] = std::max(b[a], ip[a][0]);                               \
    }                                                                                             \
    for (int a = 0; a < QB; ++a) best[a] = b[a];                                                  \
  }                                                                                               \
  ATTR void NAME(const float* q, size_t nq, const float* d, size_t nd, size_t dim, float* best) { \
    size_t i = 0;                                                                                 \
    for (; i + 4 <= nq; i += 4) NAME##Rows<4>(q + i * dim, d, nd, dim, best + i);                 \
    for (; i < nq; ++i) NAME##Rows<1>(q + i * dim, d, nd, dim, best + i);                         \
  }

VD_DEFINE_MAX_IP(MaxIpAvx2, VD_AVX2, TileAvx2)
VD_DEFINE_MAX_IP(MaxIpAvx512, VD_AVX512, TileAvx512)
#pragma GCC diagnostic pop

constexpr Kernels kScalar = {"scalar", MaxIpScalar};
constexpr Kernels kAvx2 = {"avx2", MaxIpAvx2};
constexpr Kernels kAvx512 = {"avx512", MaxIpAvx512};
constexpr KernelDispatch<Kernels> kDispatch(&kScalar, &kAvx2, &kAvx512);

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Query vectors scored per pass: bounds the stack buffer of running maxima.
constexpr size_t kQueryBlock = 64;

float ChamferImpl(const Kernels& kern, const float* q, size_t nq, const float* d, size_t nd,
                  size_t dim) {
  if (nq == 0) return 0.0f;
  if (nd == 0) return kNegInf;
  double total = 0;
  float best[kQueryBlock];
  for (size_t i = 0; i < nq; i += kQueryBlock) {
    const size_t m = std::min(kQueryBlock, nq - i);
    std::fill(best, best + m, kNegInf);
    kern.max_ip(q + i * dim, m, d, nd, dim, best);
    for (size_t a = 0; a < m; ++a) total += best[a];
  }
  return static_cast<float>(total);
}

}  // namespace

const char* ChamferKernelLevel() { return kDispatch.Get().name; }
bool SetChamferKernelLevel(const char* level) { return kDispatch.SetLevel(level); }

void MaxIpUpdate(const float* q, size_t nq, const float* d, size_t nd, size_t dim, float* best) {
  kDispatch.Get().max_ip(q, nq, d, nd, dim, best);
}

float Chamfer(const float* q, size_t nq, const float* d, size_t nd, size_t dim) {
  return ChamferImpl(kDispatch.Get(), q, nq, d, nd, dim);
}

void ChamferBatch(const float* query, size_t nq, const MultiVectorView& docs, const uint32_t* ids,
                  size_t n_ids, float* out) {
  const Kernels& kern = kDispatch.Get();
  const size_t n = ids == nullptr ? docs.n_docs : n_ids;
  for (size_t i = 0; i < n; ++i) {
    const size_t doc = ids == nullptr ? i : ids[i];
    const uint64_t begin = docs.offsets[doc];
    const uint64_t end = docs.offsets[doc + 1];
    out[i] = ChamferImpl(kern, query, nq, docs.tokens + begin * docs.dim, end - begin, docs.dim);
  }
}

std::vector<Neighbor> ChamferTopK(const float* query, size_t nq, const MultiVectorView& docs,
                                  const uint32_t* ids, size_t n_ids, size_t k) {
  const size_t n = ids == nullptr ? docs.n_docs : n_ids;
  std::vector<float> scores(n);
  ChamferBatch(query, nq, docs, ids, n_ids, scores.data());
  std::vector<Neighbor> all(n);
  for (size_t i = 0; i < n; ++i) {
    all[i] = {scores[i], ids == nullptr ? static_cast<uint32_t>(i) : ids[i]};
  }
  const auto better = [](const Neighbor& a, const Neighbor& b) {
    return a.score > b.score || (a.score == b.score && a.row < b.row);
  };
  k = std::min(k, n);
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k), all.end(), better);
  all.resize(k);
  return all;
}

}  // namespace vectord::index
