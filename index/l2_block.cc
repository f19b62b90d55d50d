// Blocked row x centroid squared-L2 kernels (see l2_block.h): register tiles of up to 6 rows x 32
// centroids (AVX-512), 4 rows x 16 centroids (AVX2), plain loops (scalar).
#include "index/l2_block.h"

#include <immintrin.h>

#include <algorithm>

#include "index/cpu_dispatch.h"
#include "index/distance.h"

namespace vectord::index {
namespace {

constexpr uint32_t kW = CentroidPanels::kWidth;

void L2BlockScalar(const float* x, const float* xn, size_t nx, uint32_t dim, const float* panels,
                   const float* cn, uint32_t np, float* out, size_t ldo) {
  float acc[kW];
  for (size_t i = 0; i < nx; ++i) {
    const float* xi = x + i * dim;
    for (uint32_t p = 0; p < np; ++p) {
      const float* pp = panels + size_t{p} * dim * kW;
      std::fill(acc, acc + kW, 0.0f);
      for (uint32_t j = 0; j < dim; ++j) {
        for (uint32_t l = 0; l < kW; ++l) acc[l] += xi[j] * pp[j * kW + l];
      }
      for (uint32_t l = 0; l < kW; ++l) {
        out[i * ldo + p * kW + l] = std::max(0.0f, xn[i] + cn[p * kW + l] - 2.0f * acc[l]);
      }
    }
  }
}

size_t AtMostScalar(const float* d, size_t n, float limit, uint32_t* idx) {
  size_t m = 0;
  for (size_t j = 0; j < n; ++j) {
    if (d[j] <= limit) idx[m++] = static_cast<uint32_t>(j);
  }
  return m;
}

#define VD_AVX2 __attribute__((target("avx2,fma")))

VD_AVX2 size_t AtMostAvx2(const float* d, size_t n, float limit, uint32_t* idx) {
  const __m256 lim = _mm256_set1_ps(limit);
  size_t m = 0, j = 0;
  for (; j + 8 <= n; j += 8) {
    unsigned bits = static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(d + j), lim, _CMP_LE_OQ)));
    while (bits != 0) {
      idx[m++] = static_cast<uint32_t>(j + __builtin_ctz(bits));
      bits &= bits - 1;
    }
  }
  const size_t tail = AtMostScalar(d + j, n - j, limit, idx + m);
  for (size_t t = 0; t < tail; ++t) idx[m + t] += static_cast<uint32_t>(j);
  return m + tail;
}

// R rows x one panel (two 8-lane halves).
template <int R>
VD_AVX2 inline void TileAvx2(const float* x, const float* xn, uint32_t dim, const float* pp,
                             const float* cn, float* out, size_t ldo) {
  __m256 acc[R][2];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (uint32_t j = 0; j < dim; ++j) {
    const __m256 c0 = _mm256_loadu_ps(pp + j * kW), c1 = _mm256_loadu_ps(pp + j * kW + 8);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 b = _mm256_broadcast_ss(x + static_cast<size_t>(r) * dim + j);
      acc[r][0] = _mm256_fmadd_ps(b, c0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(b, c1, acc[r][1]);
    }
  }
  const __m256 m2 = _mm256_set1_ps(-2.0f), zero = _mm256_setzero_ps();
  const __m256 n0 = _mm256_loadu_ps(cn), n1 = _mm256_loadu_ps(cn + 8);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const __m256 xr = _mm256_set1_ps(xn[r]);
    _mm256_storeu_ps(out + r * ldo,
                     _mm256_max_ps(zero, _mm256_fmadd_ps(acc[r][0], m2, _mm256_add_ps(xr, n0))));
    _mm256_storeu_ps(out + r * ldo + 8,
                     _mm256_max_ps(zero, _mm256_fmadd_ps(acc[r][1], m2, _mm256_add_ps(xr, n1))));
  }
}

template <int R>
VD_AVX2 void RowsAvx2(const float* x, const float* xn, uint32_t dim, const float* panels,
                      const float* cn, uint32_t np, float* out, size_t ldo) {
  for (uint32_t p = 0; p < np; ++p) {
    TileAvx2<R>(x, xn, dim, panels + size_t{p} * dim * kW, cn + p * kW, out + p * kW, ldo);
  }
}

VD_AVX2 void L2BlockAvx2(const float* x, const float* xn, size_t nx, uint32_t dim,
                         const float* panels, const float* cn, uint32_t np, float* out,
                         size_t ldo) {
  size_t i = 0;
  for (; i + 4 <= nx; i += 4)
    RowsAvx2<4>(x + i * dim, xn + i, dim, panels, cn, np, out + i * ldo, ldo);
  switch (nx - i) {
    case 3:
      RowsAvx2<3>(x + i * dim, xn + i, dim, panels, cn, np, out + i * ldo, ldo);
      break;
    case 2:
      RowsAvx2<2>(x + i * dim, xn + i, dim, panels, cn, np, out + i * ldo, ldo);
      break;
    case 1:
      RowsAvx2<1>(x + i * dim, xn + i, dim, panels, cn, np, out + i * ldo, ldo);
      break;
    default:
      break;
  }
}

#define VD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma")))

VD_AVX512 inline __mmask16 Mask16(size_t n) { return static_cast<__mmask16>((1u << n) - 1); }

// R rows x P panels (P = 1 or 2).
template <int R, int P>
VD_AVX512 inline void TileAvx512(const float* x, const float* xn, uint32_t dim, const float* pp,
                                 const float* cn, float* out, size_t ldo) {
  __m512 acc[R][P];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) acc[r][q] = _mm512_setzero_ps();
  }
  const size_t pstride = size_t{dim} * kW;
  for (uint32_t j = 0; j < dim; ++j) {
    __m512 c[P];
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) c[q] = _mm512_loadu_ps(pp + q * pstride + j * kW);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 b = _mm512_set1_ps(x[static_cast<size_t>(r) * dim + j]);
#pragma GCC unroll 2
      for (int q = 0; q < P; ++q) acc[r][q] = _mm512_fmadd_ps(b, c[q], acc[r][q]);
    }
  }
  const __m512 m2 = _mm512_set1_ps(-2.0f), zero = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q) {
    const __m512 nq = _mm512_loadu_ps(cn + q * kW);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 s = _mm512_add_ps(_mm512_set1_ps(xn[r]), nq);
      // maskz: _mm512_max_ps expands to an "undefined" operand that trips -Wuninitialized.
      _mm512_storeu_ps(out + r * ldo + q * kW,
                       _mm512_maskz_max_ps(0xFFFF, zero, _mm512_fmadd_ps(acc[r][q], m2, s)));
    }
  }
}

VD_AVX512 size_t AtMostAvx512(const float* d, size_t n, float limit, uint32_t* idx) {
  const __m512 lim = _mm512_set1_ps(limit);
  const __m512i step = _mm512_set1_epi32(16);
  __m512i pos = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  size_t m = 0;
  for (size_t j = 0; j < n; j += 16) {
    const __mmask16 in = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : Mask16(n - j);
    const __mmask16 hit =
        _mm512_mask_cmp_ps_mask(in, _mm512_maskz_loadu_ps(in, d + j), lim, _CMP_LE_OQ);
    _mm512_mask_compressstoreu_epi32(idx + m, hit, pos);
    m += static_cast<size_t>(__builtin_popcount(hit));
    pos = _mm512_add_epi32(pos, step);
  }
  return m;
}

template <int R>
VD_AVX512 void RowsAvx512(const float* x, const float* xn, uint32_t dim, const float* panels,
                          const float* cn, uint32_t np, float* out, size_t ldo) {
  const size_t pstride = size_t{dim} * kW;
  uint32_t p = 0;
  for (; p + 2 <= np; p += 2) {
    TileAvx512<R, 2>(x, xn, dim, panels + p * pstride, cn + p * kW, out + p * kW, ldo);
  }
  if (p < np) TileAvx512<R, 1>(x, xn, dim, panels + p * pstride, cn + p * kW, out + p * kW, ldo);
}

VD_AVX512 void L2BlockAvx512(const float* x, const float* xn, size_t nx, uint32_t dim,
                             const float* panels, const float* cn, uint32_t np, float* out,
                             size_t ldo) {
  size_t i = 0;
  for (; i + 6 <= nx; i += 6) {
    RowsAvx512<6>(x + i * dim, xn + i, dim, panels, cn, np, out + i * ldo, ldo);
  }
  const float* xi = x + i * dim;
  float* oi = out + i * ldo;
  switch (nx - i) {
    case 5:
      RowsAvx512<5>(xi, xn + i, dim, panels, cn, np, oi, ldo);
      break;
    case 4:
      RowsAvx512<4>(xi, xn + i, dim, panels, cn, np, oi, ldo);
      break;
    case 3:
      RowsAvx512<3>(xi, xn + i, dim, panels, cn, np, oi, ldo);
      break;
    case 2:
      RowsAvx512<2>(xi, xn + i, dim, panels, cn, np, oi, ldo);
      break;
    case 1:
      RowsAvx512<1>(xi, xn + i, dim, panels, cn, np, oi, ldo);
      break;
    default:
      break;
  }
}

struct BlockKernels {
  const char* name;
  void (*block)(const float*, const float*, size_t, uint32_t, const float*, const float*, uint32_t,
                float*, size_t);
  size_t (*at_most)(const float*, size_t, float, uint32_t*);
};
constexpr BlockKernels kScalar = {"scalar", L2BlockScalar, AtMostScalar};
constexpr BlockKernels kAvx2 = {"avx2", L2BlockAvx2, AtMostAvx2};
constexpr BlockKernels kAvx512 = {"avx512", L2BlockAvx512, AtMostAvx512};
constexpr KernelDispatch<BlockKernels> kDispatch(&kScalar, &kAvx2, &kAvx512);

}  // namespace

void CentroidPanels::Pack(const float* centroids, uint32_t k, uint32_t dim) {
  k_ = k;
  dim_ = dim;
  data_.assign(size_t{padded()} * dim, 0.0f);
  norms_.assign(padded(), 0.0f);
  for (uint32_t c = 0; c < k; ++c) {
    const float* src = centroids + size_t{c} * dim;
    float* dst = data_.data() + size_t{c / kW} * dim * kW + c % kW;
    for (uint32_t j = 0; j < dim; ++j) dst[j * kW] = src[j];
  }
  SquaredNorms(centroids, k, dim, norms_.data());
}

void SquaredNorms(const float* x, size_t n, uint32_t dim, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = IpF32(x + i * dim, x + i * dim, dim);
}

void L2SqrBlock(const float* x, const float* x_norms, size_t nx, const CentroidPanels& c,
                uint32_t p_begin, uint32_t p_end, float* out, size_t ldo) {
  if (nx == 0 || p_end <= p_begin) return;
  kDispatch.Get().block(x, x_norms, nx, c.dim(), c.panel(p_begin), c.norms() + p_begin * kW,
                        p_end - p_begin, out, ldo);
}

size_t IndicesAtMost(const float* d, size_t n, float limit, uint32_t* idx) {
  return kDispatch.Get().at_most(d, n, limit, idx);
}

const char* L2BlockLevel() { return kDispatch.Get().name; }
bool SetL2BlockLevel(const char* level) { return kDispatch.SetLevel(level); }

}  // namespace vectord::index
