// FdePq (src/fde_pq.h), the multi-vector FDE PQ candidate stage: its encoder agrees with
// ProductQuantizer::Encode, appends in uneven batches pack and repack the fast-scan blocks
// correctly (scan = float look-up-table sum of the codes within the tables' rounding bound, for
// one and for several subquantizer groups), and the training schedule and subspace choice.
#include "src/multivector/fde_pq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace vectord {
namespace {

TEST(FdePqTest, TrainRowsAndAutoM) {
  EXPECT_EQ(FdePq::TrainRows(0), 0u);
  EXPECT_EQ(FdePq::TrainRows(999), 0u);
  EXPECT_EQ(FdePq::TrainRows(1000), 1000u);
  EXPECT_EQ(FdePq::TrainRows(3999), 1000u);
  EXPECT_EQ(FdePq::TrainRows(4000), 4000u);
  EXPECT_EQ(FdePq::TrainRows(70000), 64000u);
  EXPECT_EQ(FdePq::AutoM(10240, 4), 2560u);
  EXPECT_EQ(FdePq::AutoM(5120, 8), 640u);
  EXPECT_EQ(1000u % FdePq::AutoM(1000, 3), 0u);  // always a divisor
}

void CheckScan(uint32_t dim, uint32_t m, size_t groups) {
  std::mt19937 rng(dim + m);
  std::normal_distribution<float> g(0, 1);
  const size_t n = 165;
  // Random centroids (Faiss training is covered by tests/multivector_test.cc's PQ stage).
  std::vector<float> cent(size_t{16} * dim), x(n * dim);
  for (auto& v : cent) v = g(rng);
  for (auto& v : x) v = g(rng);
  index::PqParams p;
  p.dim = dim;
  p.m = m;
  auto quantizer = index::ProductQuantizer::FromCentroids(p, std::move(cent));
  ASSERT_TRUE(quantizer.ok()) << quantizer.status().ToString();
  std::unique_ptr<FdePq> pq = FdePq::Create(std::move(quantizer).value(), 1000);
  const index::ProductQuantizer& enc = *pq->encoder();
  const size_t cs = enc.code_size();
  std::vector<uint8_t> codes(n * cs), ref(n * cs);
  FdePq::Encode(enc, x.data(), n, codes.data());
  enc.Encode(x.data(), n, ref.data());
  size_t same = 0;
  for (size_t i = 0; i < n; ++i) {
    same += std::equal(codes.begin() + i * cs, codes.begin() + (i + 1) * cs, ref.begin() + i * cs);
  }
  EXPECT_GE(same, n - 2);  // identical but for float near-ties
  // Uneven batches: every partial block is unpacked and repacked.
  size_t done = 0;
  for (size_t b : {1, 31, 33, 100}) {
    pq->Append(codes.data() + done * cs, b);
    done += b;
  }
  ASSERT_EQ(pq->rows(), n);
  std::vector<float> q(dim), lut(size_t{m} * 16), out;
  for (auto& v : q) v = g(rng);
  enc.ComputeLut(q.data(), index::PqMetric::kIP, lut.data());
  pq->Scan(q.data(), &out);
  ASSERT_GE(out.size(), n);
  float bound = 0;
  for (size_t gi = 0; gi < groups; ++gi) {
    bound += index::QuantizeLut(lut.data() + gi * (m / groups) * 16, m / groups).MaxError();
  }
  for (size_t i = 0; i < n; ++i) {
    double want = 0;
    for (uint32_t j = 0; j < m; ++j) {
      const uint32_t c = codes[i * cs + j / 2] >> ((j & 1) * 4) & 15;
      want += lut[j * 16 + c];
    }
    EXPECT_NEAR(out[i], want, bound * 1.01 + 1e-3) << "row " << i;
  }
}

TEST(FdePqTest, ScanMatchesLookupTableSumOneGroup) { CheckScan(256, 64, 1); }
TEST(FdePqTest, ScanMatchesLookupTableSumSeveralGroups) { CheckScan(1536, 768, 3); }

}  // namespace
}  // namespace vectord
