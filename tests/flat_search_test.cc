// Tests for index/flat_search.h: FlatSearch and FlatSearchBatch against a naive sort on random
// data for every data type and metric, with row filters, k > n, ties, and batch == single.
#include "index/flat_search.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "index/distance.h"

namespace vectord::index {
namespace {

// Rows of one data type, kept also as the exact values they decode to.
struct Data {
  DataType dtype;
  uint32_t dim;
  size_t n;
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  std::vector<uint8_t> u8;
  std::vector<int8_t> i8;
  std::vector<double> decoded;  // n * dim

  const void* ptr() const {
    switch (dtype) {
      case DataType::kFloat32:
        return f32.data();
      case DataType::kFloat16:
        return f16.data();
      case DataType::kUint8:
        return u8.data();
      case DataType::kInt8:
        return i8.data();
    }
    return nullptr;
  }
};

Data MakeData(DataType t, size_t n, uint32_t dim, bool normalize, std::mt19937& rng,
              int distinct_rows = 0) {
  Data d{t, dim, n, {}, {}, {}, {}, {}};
  std::normal_distribution<float> g(0, 1);
  std::uniform_int_distribution<int> u8(0, 255), i8(-128, 127);
  d.decoded.resize(n * dim);
  for (size_t r = 0; r < n; ++r) {
    // With distinct_rows > 0 rows repeat, which makes many exact ties.
    const size_t src = distinct_rows > 0 ? r % static_cast<size_t>(distinct_rows) : r;
    if (src != r) {
      std::copy_n(d.decoded.begin() + src * dim, dim, d.decoded.begin() + r * dim);
      continue;
    }
    std::vector<float> v(dim);
    double norm = 0;
    for (auto& x : v) {
      x = t == DataType::kUint8 ? u8(rng) : t == DataType::kInt8 ? i8(rng) : g(rng);
      norm += double{x} * x;
    }
    if (normalize) {
      for (auto& x : v) x = static_cast<float>(x / std::sqrt(norm));
    }
    for (uint32_t i = 0; i < dim; ++i) {
      double x = v[i];
      if (t == DataType::kFloat16) x = HalfToFloat(FloatToHalf(v[i]));
      d.decoded[r * dim + i] = x;
    }
  }
  for (double x : d.decoded) {
    d.f32.push_back(static_cast<float>(x));
    d.f16.push_back(FloatToHalf(static_cast<float>(x)));
    d.u8.push_back(static_cast<uint8_t>(std::clamp(x, 0.0, 255.0)));
    d.i8.push_back(static_cast<int8_t>(std::clamp(x, -128.0, 127.0)));
  }
  return d;
}

struct Ref {
  double key;  // smaller is better
  double score;
  uint32_t row;
};

// Naive top-k in double precision over the allowed rows.
std::vector<Ref> Naive(const Data& d, Distance m, const std::vector<float>& q, size_t k,
                       const std::vector<bool>& allowed) {
  std::vector<Ref> all;
  for (size_t r = 0; r < d.n; ++r) {
    if (!allowed.empty() && !allowed[r]) continue;
    double l2 = 0, ip = 0, l1 = 0;
    for (uint32_t i = 0; i < d.dim; ++i) {
      const double x = d.decoded[r * d.dim + i], y = q[i];
      l2 += (x - y) * (x - y);
      ip += x * y;
      l1 += std::fabs(x - y);
    }
    Ref ref{0, 0, static_cast<uint32_t>(r)};
    switch (m) {
      case Distance::kEuclid:
        ref = {l2, std::sqrt(l2), ref.row};
        break;
      case Distance::kDot:
      case Distance::kCosine:
        ref = {-ip, ip, ref.row};
        break;
      case Distance::kManhattan:
        ref = {l1, l1, ref.row};
        break;
    }
    all.push_back(ref);
  }
  std::sort(all.begin(), all.end(), [](const Ref& a, const Ref& b) {
    return a.key < b.key || (a.key == b.key && a.row < b.row);
  });
  if (all.size() > k) all.resize(k);
  return all;
}

// Exact comparison (integer kernels): same rows in the same order, scores as float of the exact.
void ExpectExact(const std::vector<Ref>& want, const std::vector<Neighbor>& got,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].row, want[i].row) << what << " rank " << i;
    ASSERT_EQ(got[i].score, static_cast<float>(want[i].score)) << what << " rank " << i;
  }
}

// Float comparison: same count, each score matches its row's exact score, and the results are the
// best rows up to rounding (the i-th score matches the naive i-th score).
void ExpectClose(const Data& d, Distance m, const std::vector<float>& q,
                 const std::vector<Ref>& want, const std::vector<Neighbor>& got,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const auto exact = Naive(d, m, q, d.n, {});
  std::vector<double> score_of(d.n);
  for (const Ref& r : exact) score_of[r.row] = r.score;
  const double scale = std::fabs(want.empty() ? 1.0 : want[0].score) + 1.0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LT(got[i].row, d.n) << what;
    EXPECT_NEAR(got[i].score, score_of[got[i].row], 1e-4 * scale) << what << " rank " << i;
    EXPECT_NEAR(got[i].score, want[i].score, 1e-4 * scale) << what << " rank " << i;
    if (i > 0) {
      if (LowerIsBetter(m)) {
        EXPECT_LE(got[i - 1].score, got[i].score) << what;
      } else {
        EXPECT_GE(got[i - 1].score, got[i].score) << what;
      }
    }
  }
}

std::vector<float> MakeQuery(DataType t, uint32_t dim, bool integer, bool normalize,
                             std::mt19937& rng) {
  std::normal_distribution<float> g(0, 1);
  std::uniform_int_distribution<int> u8(0, 255), i8(-128, 127);
  std::vector<float> q(dim);
  double norm = 0;
  for (auto& x : q) {
    if (t == DataType::kUint8) {
      x = integer ? u8(rng) : u8(rng) + 0.25f;
    } else if (t == DataType::kInt8) {
      x = integer ? i8(rng) : i8(rng) - 0.5f;
    } else {
      x = g(rng);
    }
    norm += double{x} * x;
  }
  if (normalize) {
    for (auto& x : q) x = static_cast<float>(x / std::sqrt(norm));
  }
  return q;
}

const DataType kTypes[] = {DataType::kFloat32, DataType::kFloat16, DataType::kUint8,
                           DataType::kInt8};
const Distance kMetrics[] = {Distance::kEuclid, Distance::kDot, Distance::kCosine,
                             Distance::kManhattan};

bool IsInt(DataType t) { return t == DataType::kUint8 || t == DataType::kInt8; }

TEST(FlatSearchTest, EveryTypeAndMetricMatchesNaive) {
  std::mt19937 rng(11);
  for (DataType t : kTypes) {
    for (Distance m : kMetrics) {
      const bool cos = m == Distance::kCosine && !IsInt(t);
      for (uint32_t dim : {1u, 13u, 64u, 129u}) {
        const Data d = MakeData(t, 700, dim, cos, rng);
        const FlatView view{d.ptr(), d.n, dim, t, m};
        for (bool integer : {true, false}) {
          for (size_t k : {1, 10, 50}) {
            const auto q = MakeQuery(t, dim, integer, cos, rng);
            const auto want = Naive(d, m, q, k, {});
            const auto got = FlatSearch(view, q.data(), k);
            const std::string what = std::string("type ") + std::to_string(int(t)) + " metric " +
                                     std::to_string(int(m)) + " dim " + std::to_string(dim) +
                                     " k " + std::to_string(k) + (integer ? " int" : " float");
            if (IsInt(t) && integer && m != Distance::kManhattan) {
              ExpectExact(want, got, what);
            } else {
              ExpectClose(d, m, q, want, got, what);
            }
          }
        }
      }
    }
  }
}

TEST(FlatSearchTest, AllowedAndLiveBitsFilterRows) {
  std::mt19937 rng(12);
  for (DataType t : {DataType::kUint8, DataType::kFloat32}) {
    const Data d = MakeData(t, 3000, 24, false, rng);
    const FlatView view{d.ptr(), d.n, 24, t, Distance::kEuclid};
    for (double share : {0.0, 0.001, 0.05, 0.5, 1.0}) {
      std::bernoulli_distribution keep(share);
      std::vector<bool> mask(d.n);
      Roaring allowed;
      std::vector<uint64_t> live((d.n + 63) / 64, 0);
      for (size_t r = 0; r < d.n; ++r) {
        mask[r] = keep(rng);
        if (mask[r]) {
          allowed.add(static_cast<uint32_t>(r));
          live[r / 64] |= uint64_t{1} << (r % 64);
        }
      }
      // Rows past the end in the bitmap are ignored.
      allowed.add(static_cast<uint32_t>(d.n + 5));
      const auto q = MakeQuery(t, 24, true, false, rng);
      const auto want = Naive(d, Distance::kEuclid, q, 20, mask);
      const std::string what = "share " + std::to_string(share);
      RowFilter by_allowed{&allowed, nullptr};
      RowFilter by_live{nullptr, live.data()};
      // When both are given `allowed` decides: live bits of all zeros must not hide rows.
      std::vector<uint64_t> none(live.size(), 0);
      RowFilter both{&allowed, none.data()};
      for (const RowFilter* f : {&by_allowed, &by_live, &both}) {
        const auto got = FlatSearch(view, q.data(), 20, *f);
        if (t == DataType::kUint8) {
          ExpectExact(want, got, what);
        } else {
          ASSERT_EQ(got.size(), want.size()) << what;
          for (size_t i = 0; i < got.size(); ++i) {
            EXPECT_TRUE(mask[got[i].row]) << what;
            EXPECT_NEAR(got[i].score, want[i].score, 1e-4 * (1 + want[i].score)) << what;
          }
        }
        // Batch with the same filter gives the same answer.
        for (unsigned threads : {1u, 3u}) {
          const auto batch = FlatSearchBatch(view, q.data(), 1, 20, *f, threads);
          ASSERT_EQ(batch.size(), 1u);
          ASSERT_EQ(batch[0].size(), got.size()) << what;
          for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(batch[0][i].row, got[i].row) << what;
        }
      }
    }
  }
}

TEST(FlatSearchTest, KLargerThanRowsReturnsAllRows) {
  std::mt19937 rng(13);
  const Data d = MakeData(DataType::kUint8, 37, 8, false, rng);
  const FlatView view{d.ptr(), d.n, 8, DataType::kUint8, Distance::kEuclid};
  const auto q = MakeQuery(DataType::kUint8, 8, true, false, rng);
  const auto got = FlatSearch(view, q.data(), 1000);
  ExpectExact(Naive(d, Distance::kEuclid, q, 1000, {}), got, "k > n");
  EXPECT_EQ(got.size(), 37u);
  EXPECT_TRUE(FlatSearch(view, q.data(), 0).empty());
  const FlatView empty{d.ptr(), 0, 8, DataType::kUint8, Distance::kEuclid};
  EXPECT_TRUE(FlatSearch(empty, q.data(), 5).empty());
}

TEST(FlatSearchTest, TiesGoToTheLowerRow) {
  std::mt19937 rng(14);
  for (DataType t : kTypes) {
    for (Distance m : {Distance::kEuclid, Distance::kDot}) {
      // 2000 rows made of 7 distinct vectors: every score appears about 285 times.
      const Data d = MakeData(t, 2000, 16, false, rng, 7);
      const FlatView view{d.ptr(), d.n, 16, t, m};
      const auto q = MakeQuery(t, 16, true, false, rng);
      const auto got = FlatSearch(view, q.data(), 300);
      const auto want = Naive(d, m, q, 300, {});
      ASSERT_EQ(got.size(), 300u);
      // Equal scores are exactly equal here (same vectors), so the order is fully determined.
      for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_EQ(got[i].row, want[i].row) << "type " << int(t) << " rank " << i;
      }
      const auto batch = FlatSearchBatch(view, q.data(), 1, 300, {}, 2);
      for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(batch[0][i].row, got[i].row);
    }
  }
}

TEST(FlatSearchTest, BatchEqualsSingle) {
  std::mt19937 rng(15);
  for (DataType t : kTypes) {
    for (Distance m : {Distance::kEuclid, Distance::kDot, Distance::kManhattan}) {
      // Over 4 * 1024 rows so that few queries on many threads split the rows.
      const Data d = MakeData(t, 5000, 20, false, rng);
      const FlatView view{d.ptr(), d.n, 20, t, m};
      std::vector<float> queries;
      for (int i = 0; i < 21; ++i) {
        const auto q = MakeQuery(t, 20, i % 3 != 0, false, rng);
        queries.insert(queries.end(), q.begin(), q.end());
      }
      for (size_t nq : {1, 2, 21}) {
        for (unsigned threads : {0u, 1u, 4u}) {
          const auto batch = FlatSearchBatch(view, queries.data(), nq, 15, {}, threads);
          ASSERT_EQ(batch.size(), nq);
          for (size_t i = 0; i < nq; ++i) {
            const auto single = FlatSearch(view, queries.data() + i * 20, 15);
            ASSERT_EQ(batch[i].size(), single.size());
            for (size_t j = 0; j < single.size(); ++j) {
              ASSERT_EQ(batch[i][j].row, single[j].row)
                  << "type " << int(t) << " nq " << nq << " threads " << threads;
              ASSERT_EQ(batch[i][j].score, single[j].score);
            }
          }
        }
      }
    }
  }
}

// One test per kernel level, so that a level this CPU lacks is reported as skipped on its own
// while the others run.
class KernelLevelTest : public ::testing::TestWithParam<const char*> {
 protected:
  void TearDown() override { ASSERT_TRUE(SetKernelLevel("auto")); }
};

TEST_P(KernelLevelTest, GivesTheSameExactAnswer) {
  std::mt19937 rng(16);
  const Data d = MakeData(DataType::kUint8, 2000, 128, false, rng);
  const FlatView view{d.ptr(), d.n, 128, DataType::kUint8, Distance::kEuclid};
  const auto q = MakeQuery(DataType::kUint8, 128, true, false, rng);
  const auto want = Naive(d, Distance::kEuclid, q, 10, {});
  if (!SetKernelLevel(GetParam())) {
    ASSERT_STRNE(GetParam(), "scalar") << "every CPU runs the scalar kernels";
    GTEST_SKIP() << "this CPU lacks " << GetParam();
  }
  ExpectExact(want, FlatSearch(view, q.data(), 10), GetParam());
}

INSTANTIATE_TEST_SUITE_P(Levels, KernelLevelTest, ::testing::Values("scalar", "avx2", "avx512"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace vectord::index
