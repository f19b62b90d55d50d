// Tests of the SPANN build's blocked kernels and searches: index/l2_block.h (row x centroid
// distances, candidate filter) against L2SqrF32 at every kernel level, index/centroid_batch.h
// (batched tree search) against CentroidIndex::Search, and AssignNearest against brute force.
#include "index/l2_block.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "index/balanced_kmeans.h"
#include "index/centroid_batch.h"
#include "index/centroid_graph.h"
#include "index/distance.h"

namespace vectord::index {
namespace {

std::vector<float> Gaussian(size_t n, uint32_t dim, uint64_t seed, float scale = 10) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0, scale);
  std::vector<float> x(n * dim);
  for (auto& v : x) v = g(rng);
  return x;
}

// Runs fn(i) for i < n on 3 threads, in an order unlike a serial loop.
void ThreeThreads(size_t n, const std::function<void(size_t)>& fn) {
  std::vector<std::thread> pool;
  for (size_t t = 0; t < 3; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = n; i-- > 0;) {
        if (i % 3 == t) fn(i);
      }
    });
  }
  for (auto& th : pool) th.join();
}

class L2BlockLevels : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!SetL2BlockLevel(GetParam())) GTEST_SKIP() << GetParam() << " not supported";
  }
  void TearDown() override { SetL2BlockLevel("auto"); }
};

TEST_P(L2BlockLevels, MatchesScalarDistancesForEveryShape) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 30; ++trial) {
    const uint32_t dim = 1 + static_cast<uint32_t>(rng() % 70);
    const uint32_t k = 1 + static_cast<uint32_t>(rng() % 90);
    const size_t nx = 1 + rng() % 20;
    const auto c = Gaussian(k, dim, rng());
    const auto x = Gaussian(nx, dim, rng());
    const CentroidPanels cp(c.data(), k, dim);
    ASSERT_EQ(cp.padded() % 16, 0u);
    std::vector<float> xn(nx);
    SquaredNorms(x.data(), nx, dim, xn.data());
    // A panel sub-range, written with a wider stride than needed.
    const uint32_t p0 = static_cast<uint32_t>(rng() % cp.panels());
    const uint32_t p1 = p0 + 1 + static_cast<uint32_t>(rng() % (cp.panels() - p0));
    const size_t ld = (p1 - p0) * 16 + 5;
    std::vector<float> out(nx * ld, -1);
    L2SqrBlock(x.data(), xn.data(), nx, cp, p0, p1, out.data(), ld);
    for (size_t i = 0; i < nx; ++i) {
      for (uint32_t j = p0 * 16; j < std::min(k, p1 * 16); ++j) {
        const float want = L2SqrF32(&x[i * dim], &c[size_t{j} * dim], dim);
        const float got = out[i * ld + (j - p0 * 16)];
        EXPECT_GE(got, 0.0f);
        EXPECT_NEAR(got, want, 1e-4f * (xn[i] + cp.norms()[j]) + 1e-3f)
            << "level " << GetParam() << " dim " << dim << " row " << i << " centroid " << j;
      }
    }
  }
}

TEST_P(L2BlockLevels, IndicesAtMostMatchesALoop) {
  std::mt19937_64 rng(6);
  std::uniform_real_distribution<float> u(0, 100);
  for (int trial = 0; trial < 50; ++trial) {
    const size_t n = rng() % 100;
    std::vector<float> d(n);
    for (auto& v : d) v = std::floor(u(rng));  // ties with the limit
    const float limit = std::floor(u(rng));
    std::vector<uint32_t> got(n + 1), want;
    got.resize(IndicesAtMost(d.data(), n, limit, got.data()));
    for (size_t j = 0; j < n; ++j) {
      if (d[j] <= limit) want.push_back(static_cast<uint32_t>(j));
    }
    EXPECT_EQ(got, want) << "level " << GetParam() << " n " << n;
  }
}

TEST_P(L2BlockLevels, AssignNearestIsTheBruteForceNearest) {
  const uint32_t dim = 24, k = 300;
  const size_t n = 500;
  const auto c = Gaussian(k, dim, 7);
  const auto x = Gaussian(n, dim, 8);
  std::vector<uint32_t> one(n), three(n);
  std::vector<float> dist(n);
  ASSERT_TRUE(AssignNearest(x.data(), n, c.data(), k, dim, one.data(), dist.data()).ok());
  ASSERT_TRUE(AssignNearest(x.data(), n, c.data(), k, dim, three.data(), nullptr, 3).ok());
  EXPECT_EQ(one, three);  // same labels for any thread count
  size_t exact = 0;
  for (size_t i = 0; i < n; ++i) {
    float best = INFINITY;
    uint32_t arg = 0;
    for (uint32_t j = 0; j < k; ++j) {
      const float dj = L2SqrF32(&x[i * dim], &c[size_t{j} * dim], dim);
      if (dj < best) best = dj, arg = j;
    }
    exact += one[i] == arg;
    // A different label only for a near tie.
    EXPECT_NEAR(L2SqrF32(&x[i * dim], &c[size_t{one[i]} * dim], dim), best, 1e-3f * best);
    EXPECT_NEAR(dist[i], best, 1e-3f * best + 1e-2f);
  }
  EXPECT_GE(exact, n - 2);
  EXPECT_FALSE(AssignNearest(x.data(), n, c.data(), 0, dim, one.data(), nullptr).ok());
}

INSTANTIATE_TEST_SUITE_P(Levels, L2BlockLevels, ::testing::Values("scalar", "avx2", "avx512"));

TEST(BatchTreeSearchTest, SameListsAsTreeSearchForAnyThreadSplit) {
  const uint32_t dim = 32;
  const auto pts = Gaussian(6000, dim, 11);
  KMeansParams kp;
  kp.num_centroids = 400;
  kp.niter = 5;
  kp.threads = 2;
  auto km = HierarchicalKMeans(pts.data(), 6000, dim, kp);
  ASSERT_TRUE(km.ok());
  auto ci = CentroidIndex::Build(CentroidIndexKind::kTree, km->centroids.data(), km->k(), dim,
                                 km->group, km->group_centroids);
  ASSERT_TRUE(ci.ok());
  ASSERT_TRUE(BatchTreeSearch::Supports(**ci));
  BatchTreeSearch batch(**ci);
  EXPECT_GT(batch.MemoryBytes(), size_t{km->k()} * dim * 4);
  const size_t n = 777;
  const auto rows = Gaussian(n, dim, 12);
  const ParallelForFn serial = [](size_t m, const std::function<void(size_t)>& fn) {
    for (size_t i = 0; i < m; ++i) fn(i);
  };
  for (uint32_t k : {1u, 24u, 5000u}) {  // 5000: more than the 400 or so centroids
    for (uint32_t groups : {1u, 3u, 8u}) {
      std::vector<CentroidHit> h1, h3, want;
      std::vector<uint32_t> c1, c3;
      batch.Search(rows.data(), n, k, groups, serial, &h1, &c1);
      batch.Search(rows.data(), n, k, groups, ThreeThreads, &h3, &c3);
      ASSERT_EQ(h1.size(), n * k);  // stride k even where fewer lists exist
      ASSERT_EQ(c1, c3);
      size_t same = 0;
      CentroidSearchParams sp;
      sp.tree_groups = groups;
      for (size_t i = 0; i < n; ++i) {
        (*ci)->Search(&rows[i * dim], k, sp, &want);
        ASSERT_EQ(c1[i], want.size()) << "row " << i;
        bool eq = true;
        for (uint32_t j = 0; j < c1[i]; ++j) {
          const CentroidHit& a = h1[i * k + j];
          EXPECT_EQ(a.id, h3[i * k + j].id);
          EXPECT_EQ(a.dist, h3[i * k + j].dist);  // bit-identical for any split
          EXPECT_EQ(a.dist, L2SqrF32(&rows[i * dim], (*ci)->centroid(a.id), dim));
          if (j > 0) {
            EXPECT_LE(h1[i * k + j - 1].dist, a.dist);
          }
          eq = eq && a.id == want[j].id;
        }
        same += eq;
      }
      // The group and candidate ranking uses GEMM-form distances: only near ties may differ.
      EXPECT_GE(same, n * 99 / 100) << "k " << k << " groups " << groups;
    }
  }
}

}  // namespace
}  // namespace vectord::index
