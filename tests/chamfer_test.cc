// Tests for index/chamfer.h: Chamfer / MaxSim scores, batch scoring and top-k against naive
// double-precision code on random sets, at every kernel level the CPU has, with odd dimensions,
// tile edges and empty sets.
#include "index/chamfer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace vectord::index {
namespace {

std::vector<float> RandomRows(std::mt19937_64& rng, size_t n, size_t dim) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n * dim);
  for (float& x : v) x = g(rng);
  return v;
}

double NaiveChamfer(const float* q, size_t nq, const float* d, size_t nd, size_t dim) {
  double total = 0;
  for (size_t i = 0; i < nq; ++i) {
    double best = -std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < nd; ++j) {
      double s = 0;
      for (size_t k = 0; k < dim; ++k) s += double{q[i * dim + k]} * double{d[j * dim + k]};
      best = std::max(best, s);
    }
    total += best;
  }
  return total;
}

// Runs `body` once per kernel level this CPU supports, restoring "auto" afterwards.
template <typename F>
void ForEachLevel(F body) {
  for (const char* level : {"scalar", "avx2", "avx512"}) {
    if (!SetChamferKernelLevel(level)) continue;
    SCOPED_TRACE(level);
    body();
  }
  ASSERT_TRUE(SetChamferKernelLevel("auto"));
}

TEST(ChamferTest, MatchesNaiveOnRandomSetsAtEveryLevel) {
  ForEachLevel([] {
    std::mt19937_64 rng(7);
    for (size_t dim : {1u, 3u, 8u, 15u, 16u, 17u, 33u, 128u, 130u}) {
      for (int trial = 0; trial < 12; ++trial) {
        const size_t nq = 1 + rng() % 70;  // crosses the 4-row tiles and the 64-query block
        const size_t nd = 1 + rng() % 11;
        const auto q = RandomRows(rng, nq, dim);
        const auto d = RandomRows(rng, nd, dim);
        const double want = NaiveChamfer(q.data(), nq, d.data(), nd, dim);
        const float got = Chamfer(q.data(), nq, d.data(), nd, dim);
        EXPECT_NEAR(got, want, 1e-4 * (1 + std::abs(want)) + 1e-4 * nq * std::sqrt(dim))
            << "dim " << dim << " nq " << nq << " nd " << nd;
      }
    }
  });
}

TEST(ChamferTest, EmptySets) {
  std::vector<float> v(8, 1.0f);
  EXPECT_EQ(Chamfer(v.data(), 0, v.data(), 2, 4), 0.0f);
  EXPECT_EQ(Chamfer(v.data(), 2, v.data(), 0, 4), -std::numeric_limits<float>::infinity());
}

TEST(ChamferTest, MaxIpUpdateKeepsLargerStartingValues) {
  std::mt19937_64 rng(3);
  const size_t dim = 20, nq = 6, nd = 5;
  const auto q = RandomRows(rng, nq, dim);
  const auto d = RandomRows(rng, nd, dim);
  std::vector<float> best(nq, -1e30f);
  best[2] = 1e30f;
  MaxIpUpdate(q.data(), nq, d.data(), nd, dim, best.data());
  for (size_t i = 0; i < nq; ++i) {
    if (i == 2) {
      EXPECT_EQ(best[i], 1e30f);
    } else {
      EXPECT_NEAR(best[i], NaiveChamfer(q.data() + i * dim, 1, d.data(), nd, dim), 1e-4);
    }
  }
}

struct Corpus {
  uint32_t dim = 24;
  std::vector<float> tokens;
  std::vector<uint64_t> offsets{0};
  MultiVectorView view() const { return {tokens.data(), offsets.data(), offsets.size() - 1, dim}; }
};

Corpus RandomCorpus(std::mt19937_64& rng, size_t n_docs) {
  Corpus c;
  for (size_t i = 0; i < n_docs; ++i) {
    const size_t n = 1 + rng() % 9;
    const auto rows = RandomRows(rng, n, c.dim);
    c.tokens.insert(c.tokens.end(), rows.begin(), rows.end());
    c.offsets.push_back(c.offsets.back() + n);
  }
  return c;
}

TEST(ChamferTest, BatchAllAndSubsetMatchSingleScores) {
  std::mt19937_64 rng(11);
  const Corpus c = RandomCorpus(rng, 57);
  const auto q = RandomRows(rng, 5, c.dim);
  std::vector<float> all(57);
  ChamferBatch(q.data(), 5, c.view(), nullptr, 0, all.data());
  for (size_t i = 0; i < 57; ++i) {
    const double want = NaiveChamfer(q.data(), 5, c.tokens.data() + c.offsets[i] * c.dim,
                                     c.offsets[i + 1] - c.offsets[i], c.dim);
    EXPECT_NEAR(all[i], want, 1e-4 * (1 + std::abs(want))) << "doc " << i;
  }
  const std::vector<uint32_t> ids = {56, 3, 3, 0, 17};
  std::vector<float> some(ids.size());
  ChamferBatch(q.data(), 5, c.view(), ids.data(), ids.size(), some.data());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(some[i], all[ids[i]]);
}

TEST(ChamferTest, TopKMatchesSortedScores) {
  std::mt19937_64 rng(5);
  const Corpus c = RandomCorpus(rng, 200);
  for (int trial = 0; trial < 5; ++trial) {
    const size_t nq = 1 + rng() % 8;
    const auto q = RandomRows(rng, nq, c.dim);
    std::vector<std::pair<double, uint32_t>> want;
    for (uint32_t i = 0; i < 200; ++i) {
      want.push_back({-NaiveChamfer(q.data(), nq, c.tokens.data() + c.offsets[i] * c.dim,
                                    c.offsets[i + 1] - c.offsets[i], c.dim),
                      i});
    }
    std::sort(want.begin(), want.end());
    const auto got = ChamferTopK(q.data(), nq, c.view(), nullptr, 0, 10);
    ASSERT_EQ(got.size(), 10u);
    for (size_t r = 0; r < 10; ++r) {
      EXPECT_EQ(got[r].row, want[r].second) << "rank " << r;
      EXPECT_NEAR(got[r].score, -want[r].first, 1e-4 * (1 + std::abs(want[r].first)));
    }
    // A candidate subset: top-k among those only, k larger than the subset.
    const std::vector<uint32_t> ids = {want[5].second, want[0].second, want[199].second};
    const auto sub = ChamferTopK(q.data(), nq, c.view(), ids.data(), ids.size(), 10);
    ASSERT_EQ(sub.size(), 3u);
    EXPECT_EQ(sub[0].row, want[0].second);
    EXPECT_EQ(sub[1].row, want[5].second);
    EXPECT_EQ(sub[2].row, want[199].second);
  }
}

TEST(ChamferTest, TopKBreaksTiesByLowerId) {
  Corpus c;
  c.dim = 4;
  for (int i = 0; i < 6; ++i) {
    c.tokens.insert(c.tokens.end(), {1, 0, 0, 0});
    c.offsets.push_back(c.offsets.back() + 1);
  }
  const float q[4] = {1, 0, 0, 0};
  const auto got = ChamferTopK(q, 1, c.view(), nullptr, 0, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].row, 0u);
  EXPECT_EQ(got[1].row, 1u);
  EXPECT_EQ(got[2].row, 2u);
}

}  // namespace
}  // namespace vectord::index
