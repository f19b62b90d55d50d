// Tests for index/chamfer_int8.h: the 8-bit encoders' error bounds, the approximate Chamfer
// kernels against naive double-precision code on the decoded vectors at every kernel level the CPU
// has (and bit-identical between levels), integer extremes that would saturate a naive
// pmaddubsw, the error against exact float Chamfer, empty sets.
#include "index/chamfer_int8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "index/chamfer.h"

namespace vectord::index {
namespace {

enum class Shape { kNormal, kNonNegative, kNegative, kSparse };

std::vector<float> Rows(std::mt19937_64& rng, size_t n, uint32_t dim, Shape shape) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> v(n * dim);
  for (float& x : v) {
    switch (shape) {
      case Shape::kNormal:
        x = g(rng);
        break;
      case Shape::kNonNegative:  // RootSIFT-like: one-signed, many zeros
        x = u(rng) < 0.3f ? 0.0f : u(rng) * 3;
        break;
      case Shape::kNegative:
        x = -50.0f - 10.0f * u(rng);
        break;
      case Shape::kSparse:
        x = u(rng) < 0.1f ? g(rng) * 1e3f : 0.0f;
        break;
    }
  }
  return v;
}

std::vector<float> DecodeAll(const std::vector<uint8_t>& rows, size_t n, uint32_t dim) {
  std::vector<float> out(n * dim);
  for (size_t j = 0; j < n; ++j)
    DecodeInt8Row(rows.data() + j * Int8RowBytes(dim), dim, &out[j * dim]);
  return out;
}

std::vector<uint8_t> Encode(const std::vector<float>& x, size_t n, uint32_t dim) {
  std::vector<uint8_t> rows(n * Int8RowBytes(dim));
  EncodeInt8Rows(x.data(), n, dim, rows.data());
  return rows;
}

float RowScale(const std::vector<uint8_t>& rows, size_t j, uint32_t dim) {
  float s;
  std::memcpy(&s, rows.data() + j * Int8RowBytes(dim) + Int8CodeBytes(dim), 4);
  return s;
}

// Chamfer in double over already decoded floats; *magnitude (optional) = the same sum over
// |q_ik * x_jk| (the scale of the float rounding in the kernels' epilogue).
double NaiveChamfer(const std::vector<std::vector<float>>& q, const float* d, size_t nd,
                    uint32_t dim, double* magnitude = nullptr) {
  double total = 0, mag = 0;
  for (const auto& qi : q) {
    double best = -std::numeric_limits<double>::infinity(), most = 0;
    for (size_t j = 0; j < nd; ++j) {
      double s = 0, a = 0;
      for (uint32_t k = 0; k < dim; ++k) {
        s += double{qi[k]} * double{d[j * dim + k]};
        a += std::abs(double{qi[k]} * double{d[j * dim + k]});
      }
      best = std::max(best, s);
      most = std::max(most, a);
    }
    total += best;
    mag += most;
  }
  if (magnitude) *magnitude = mag;
  return total;
}

std::vector<std::vector<float>> DecodedQuery(const Int8Query& q) {
  std::vector<std::vector<float>> out;
  for (uint32_t i = 0; i < q.size(); ++i) out.push_back(q.Decoded(i));
  return out;
}

// Runs `body(level)` once per kernel level this CPU supports, restoring "auto" afterwards.
template <typename F>
void ForEachLevel(F body) {
  int ran = 0;
  for (const char* level : {"scalar", "avx2", "avxvnni", "avx512"}) {
    if (!SetChamferInt8KernelLevel(level)) continue;
    SCOPED_TRACE(level);
    body(level);
    ++ran;
  }
  EXPECT_GE(ran, 1);
  ASSERT_TRUE(SetChamferInt8KernelLevel("auto"));
}

TEST(ChamferInt8Test, DocumentCodesWithinHalfAStep) {
  std::mt19937_64 rng(1);
  for (Shape shape : {Shape::kNormal, Shape::kNonNegative, Shape::kNegative, Shape::kSparse}) {
    for (uint32_t dim : {1u, 3u, 4u, 17u, 128u}) {
      const size_t n = 50;
      const auto x = Rows(rng, n, dim, shape);
      const auto rows = Encode(x, n, dim);
      const auto y = DecodeAll(rows, n, dim);
      for (size_t j = 0; j < n; ++j) {
        const float* v = &x[j * dim];
        const float lo = *std::min_element(v, v + dim), hi = *std::max_element(v, v + dim);
        const float s = RowScale(rows, j, dim);
        EXPECT_NEAR(s, (double{hi} - lo) / 255.0, 1e-6 * (std::abs(hi) + std::abs(lo)));
        for (uint32_t k = 0; k < dim; ++k) {
          ASSERT_LE(std::abs(y[j * dim + k] - v[k]), s / 2 * 1.0001 + 1e-6 * std::abs(v[k]))
              << "dim " << dim << " row " << j << " element " << k;
        }
        // The extremes are exact up to float rounding: code 0 is the minimum.
        EXPECT_NEAR(*std::min_element(&y[j * dim], &y[j * dim] + dim), lo, 1e-6 * std::abs(lo));
      }
    }
  }
  // A constant vector (range 0) decodes exactly.
  const std::vector<float> c(10, -2.5f);
  const auto y = DecodeAll(Encode(c, 1, 10), 1, 10);
  for (float v : y) EXPECT_EQ(v, -2.5f);
  // Ranges that overflow float (max - min > FLT_MAX) or whose inverse would (tiny): the double
  // path, still within half a step.
  const float big = 3e38f, tiny = 1e-36f;
  for (const std::vector<float>& e : {std::vector<float>{-big, big, 0.0f, big / 3, -big / 7},
                                      std::vector<float>{tiny, 2 * tiny, -tiny, 0.0f, 3 * tiny}}) {
    const auto rows = Encode(e, 1, 5);
    const auto d = DecodeAll(rows, 1, 5);
    const float s = RowScale(rows, 0, 5);
    EXPECT_GT(s, 0.0f);
    for (size_t k = 0; k < e.size(); ++k) {
      ASSERT_TRUE(std::isfinite(d[k]));
      EXPECT_LE(std::abs(double{d[k]} - e[k]), double{s} / 2 * 1.0001 + 1e-6 * std::abs(e[k]));
    }
  }
}

TEST(ChamferInt8Test, QueryCodesWithinHalfAStep) {
  std::mt19937_64 rng(2);
  for (uint32_t dim : {1u, 5u, 128u}) {
    const size_t nq = 45;  // two chunks of lanes
    const auto x = Rows(rng, nq, dim, Shape::kNormal);
    Int8Query q(x.data(), nq, dim);
    ASSERT_EQ(q.size(), nq);
    for (uint32_t i = 0; i < nq; ++i) {
      const float* v = &x[size_t{i} * dim];
      float m = 0;
      for (uint32_t k = 0; k < dim; ++k) m = std::max(m, std::abs(v[k]));
      const auto d = q.Decoded(i);
      for (uint32_t k = 0; k < dim; ++k) ASSERT_LE(std::abs(d[k] - v[k]), m / 127 / 2 * 1.0001);
    }
  }
  const std::vector<float> zero(8, 0.0f);
  Int8Query z(zero.data(), 1, 8);
  for (float v : z.Decoded(0)) EXPECT_EQ(v, 0.0f);
  // Subnormal and huge elements: no overflow in the codes.
  const std::vector<float> odd = {1e-45f, -3e-45f, 0.0f, 3e38f, -3e38f, 1.0f};
  Int8Query o(odd.data(), 2, 3);
  const auto a = o.Decoded(0), b = o.Decoded(1);
  EXPECT_NEAR(a[1], -3e-45f, 3e-45f);  // the step (3e-45 / 127) is below float's resolution
  EXPECT_EQ(a[2], 0.0f);
  EXPECT_FLOAT_EQ(b[0], 3e38f);
  EXPECT_FLOAT_EQ(b[1], -3e38f);
  EXPECT_LE(std::abs(b[2] - 1.0f), 3e38f / 127 / 2);
}

TEST(ChamferInt8Test, MatchesNaiveOnDecodedSetsAtEveryLevelBitForBit) {
  // The scalar level's scores, to which every other level must be identical.
  std::vector<float> reference;
  bool first = true;
  ForEachLevel([&](const char*) {
    std::mt19937_64 rng(7);
    size_t case_no = 0;
    for (uint32_t dim : {1u, 3u, 4u, 5u, 8u, 15u, 16u, 17u, 33u, 128u, 130u}) {
      for (int trial = 0; trial < 10; ++trial) {
        const size_t nq = 1 + rng() % 70;  // 8-lane padding, 32-lane chunks
        const size_t nd = 1 + rng() % 11;  // passes of 4 / 2 document vectors and their tails
        const Shape shape = trial % 2 ? Shape::kNormal : Shape::kNonNegative;
        const auto qf = Rows(rng, nq, dim, shape);
        const auto df = Rows(rng, nd, dim, shape);
        const Int8Query q(qf.data(), nq, dim);
        const auto rows = Encode(df, nd, dim);
        const auto dd = DecodeAll(rows, nd, dim);
        double mag = 0;
        const double want = NaiveChamfer(DecodedQuery(q), dd.data(), nd, dim, &mag);
        const float got = ChamferInt8(q, rows.data(), nd);
        EXPECT_NEAR(got, want, 1e-5 * mag + 1e-6) << "dim " << dim << " nq " << nq << " nd " << nd;
        if (first) {
          reference.push_back(got);
        } else {
          ASSERT_LT(case_no, reference.size());
          EXPECT_EQ(got, reference[case_no]) << "dim " << dim << " nq " << nq << " nd " << nd;
        }
        ++case_no;
      }
    }
    first = false;
  });
}

// Codes at the ends of their ranges, long vectors: pmaddubsw-style int16 pair sums would saturate
// (255 * 127 * 2 > 32767); the integer inner products must stay exact at every level.
TEST(ChamferInt8Test, ExtremeCodesStayExact) {
  const uint32_t dim = 4096;
  std::vector<float> d(2 * dim), qf(3 * dim);
  for (uint32_t k = 0; k < dim; ++k) {
    d[k] = k % 3 == 0 ? 0.0f : 1.0f;  // codes 0 and 255
    d[dim + k] = k % 2 ? 1.0f : 0.0f;
    qf[k] = 1.0f;         // codes 127
    qf[dim + k] = -1.0f;  // codes -127
    qf[2 * dim + k] = k % 2 ? 1.0f : -1.0f;
  }
  const auto rows = Encode(d, 2, dim);
  const Int8Query q(qf.data(), 3, dim);
  // The decoded vectors are exact here (scale 1/255, codes 0 / 255; query steps 1/127).
  const double want = NaiveChamfer(DecodedQuery(q), DecodeAll(rows, 2, dim).data(), 2, dim);
  EXPECT_NEAR(want, 2730.0 - 2048.0 + 2048.0, 1e-2);  // max per query vector: 2730, -2048, 2048
  ForEachLevel([&](const char*) {
    EXPECT_NEAR(ChamferInt8(q, rows.data(), 2), want, 1e-6 * std::abs(want));
  });
}

// Against exact float Chamfer: |approx - exact| <= sum_i max_j (|q_i|_1 s_j / 2 + |x^_j|_1 t_i / 2)
// (s_j, t_i the document and query steps), and on unit vectors of 128 dims (the collection's
// Cosine case) the error is a small fraction of the score.
TEST(ChamferInt8Test, ErrorAgainstExactChamferWithinBound) {
  std::mt19937_64 rng(11);
  const uint32_t dim = 128;
  for (Shape shape : {Shape::kNormal, Shape::kNonNegative}) {
    double worst_rel = 0;
    for (int trial = 0; trial < 30; ++trial) {
      const size_t nq = 1 + rng() % 40, nd = 1 + rng() % 40;
      auto qf = Rows(rng, nq, dim, shape);
      auto df = Rows(rng, nd, dim, shape);
      for (auto* v : {&qf, &df}) {  // unit rows
        for (size_t j = 0; j < v->size() / dim; ++j) {
          double s = 0;
          for (uint32_t k = 0; k < dim; ++k) s += double{(*v)[j * dim + k]} * (*v)[j * dim + k];
          for (uint32_t k = 0; k < dim; ++k) (*v)[j * dim + k] /= static_cast<float>(std::sqrt(s));
        }
      }
      const Int8Query q(qf.data(), nq, dim);
      const auto rows = Encode(df, nd, dim);
      const auto dd = DecodeAll(rows, nd, dim);
      double bound = 0;
      for (size_t i = 0; i < nq; ++i) {
        float m = 0;
        double q1 = 0;
        for (uint32_t k = 0; k < dim; ++k) {
          m = std::max(m, std::abs(qf[i * dim + k]));
          q1 += std::abs(qf[i * dim + k]);
        }
        double worst = 0;
        for (size_t j = 0; j < nd; ++j) {
          double x1 = 0;
          for (uint32_t k = 0; k < dim; ++k) x1 += std::abs(dd[j * dim + k]);
          worst = std::max(worst, q1 * RowScale(rows, j, dim) / 2 + x1 * m / 127 / 2);
        }
        bound += worst;
      }
      const double exact = Chamfer(qf.data(), nq, df.data(), nd, dim);
      const double approx = ChamferInt8(q, rows.data(), nd);
      EXPECT_LE(std::abs(approx - exact), bound * 1.001 + 1e-5) << "nq " << nq << " nd " << nd;
      worst_rel = std::max(worst_rel, std::abs(approx - exact) / std::abs(exact));
    }
    // Observed ~0.2-0.5 %; the bound above is ~10x looser.
    EXPECT_LT(worst_rel, 0.02) << "shape " << static_cast<int>(shape);
  }
}

TEST(ChamferInt8Test, EmptySetsAndLevelNames) {
  const std::vector<float> v(8, 1.0f);
  const auto rows = Encode(v, 2, 4);
  const Int8Query none(v.data(), 0, 4), two(v.data(), 2, 4);
  EXPECT_EQ(ChamferInt8(none, rows.data(), 2), 0.0f);
  EXPECT_EQ(ChamferInt8(two, rows.data(), 0), -std::numeric_limits<float>::infinity());
  EXPECT_FALSE(SetChamferInt8KernelLevel("avx1024"));
  ASSERT_TRUE(SetChamferInt8KernelLevel("scalar"));
  EXPECT_STREQ(ChamferInt8KernelLevel(), "scalar");
  ASSERT_TRUE(SetChamferInt8KernelLevel("auto"));
}

}  // namespace
}  // namespace vectord::index
