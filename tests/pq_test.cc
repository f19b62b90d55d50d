// Tests for index/pq.h: training on clustered data, encoding against a brute-force nearest
// centroid, decoding, look-up tables against distances to decoded vectors, the byte format.
#include "index/pq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace vectord::index {
namespace {

// n points around `clusters` Gaussian centres (spread 10) with unit noise.
std::vector<float> Clustered(size_t n, uint32_t dim, size_t clusters, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> centres(clusters * dim);
  for (auto& c : centres) c = 10 * g(rng);
  std::vector<float> x(n * dim);
  std::uniform_int_distribution<size_t> pick(0, clusters - 1);
  for (size_t i = 0; i < n; ++i) {
    const float* c = &centres[pick(rng) * dim];
    for (uint32_t d = 0; d < dim; ++d) x[i * dim + d] = c[d] + g(rng);
  }
  return x;
}

double NaiveL2(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += (double{a[i]} - b[i]) * (double{a[i]} - b[i]);
  return s;
}
double NaiveIp(const float* a, const float* b, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += double{a[i]} * b[i];
  return s;
}

uint32_t CodeOf(const ProductQuantizer& pq, const uint8_t* code, uint32_t j) {
  return pq.params().nbits == 8 ? code[j] : (code[j / 2] >> ((j & 1) * 4)) & 0xF;
}

struct Case {
  uint32_t dim, m, nbits;
};

class PqTest : public ::testing::TestWithParam<Case> {};

TEST_P(PqTest, TrainEncodeDecodeLut) {
  const Case c = GetParam();
  const PqParams p{c.dim, c.m, c.nbits};
  const size_t n = 2000;
  const auto x = Clustered(n, c.dim, 50, 7);
  auto trained = ProductQuantizer::Train(p, x.data(), n, 42, 1);
  ASSERT_TRUE(trained.ok()) << trained.status().ToString();
  const ProductQuantizer& pq = *trained;
  EXPECT_EQ(pq.ksub(), 1u << c.nbits);
  EXPECT_EQ(pq.code_size(), (size_t{c.m} * c.nbits + 7) / 8);

  std::vector<uint8_t> codes(n * pq.code_size());
  pq.Encode(x.data(), n, codes.data());
  std::vector<float> dec(n * c.dim);
  pq.Decode(codes.data(), n, dec.data());

  // Encoding picks the nearest centroid in every subspace (brute force in double).
  const uint32_t ds = pq.dsub();
  for (size_t i = 0; i < 100; ++i) {
    for (uint32_t j = 0; j < c.m; ++j) {
      const float* sub = &x[i * c.dim + j * ds];
      const uint32_t got = CodeOf(pq, &codes[i * pq.code_size()], j);
      const double got_d = NaiveL2(sub, &pq.centroids()[(j * pq.ksub() + got) * ds], ds);
      for (uint32_t k = 0; k < pq.ksub(); ++k) {
        ASSERT_LE(got_d, NaiveL2(sub, &pq.centroids()[(j * pq.ksub() + k) * ds], ds) * (1 + 1e-5))
            << "vector " << i << " subquantizer " << j;
      }
    }
    if (c.nbits == 4 && c.m % 2 == 1) {
      EXPECT_EQ(codes[i * pq.code_size() + c.m / 2] >> 4, 0) << "odd m: last high nibble is 0";
    }
  }

  // Reconstruction error well below the data's variance around its mean.
  std::vector<double> mean(c.dim, 0);
  for (size_t i = 0; i < n; ++i)
    for (uint32_t d = 0; d < c.dim; ++d) mean[d] += x[i * c.dim + d] / n;
  double var = 0, err = 0;
  for (size_t i = 0; i < n; ++i) {
    for (uint32_t d = 0; d < c.dim; ++d) var += std::pow(x[i * c.dim + d] - mean[d], 2);
    err += NaiveL2(&x[i * c.dim], &dec[i * c.dim], c.dim);
  }
  EXPECT_LT(err / var, c.nbits == 8 ? 0.1 : 0.3) << "relative reconstruction error";

  // LUT sums equal the distance / inner product to the decoded vector.
  const auto queries = Clustered(10, c.dim, 5, 99);
  std::vector<float> lut_l2(c.m * pq.ksub()), lut_ip(c.m * pq.ksub());
  for (size_t qi = 0; qi < 10; ++qi) {
    const float* q = &queries[qi * c.dim];
    pq.ComputeLut(q, PqMetric::kL2, lut_l2.data());
    pq.ComputeLut(q, PqMetric::kIP, lut_ip.data());
    for (size_t i = 0; i < 100; ++i) {
      double l2 = 0, ip = 0;
      for (uint32_t j = 0; j < c.m; ++j) {
        const uint32_t k = CodeOf(pq, &codes[i * pq.code_size()], j);
        l2 += lut_l2[j * pq.ksub() + k];
        ip += lut_ip[j * pq.ksub() + k];
      }
      const double want_l2 = NaiveL2(q, &dec[i * c.dim], c.dim);
      const double want_ip = NaiveIp(q, &dec[i * c.dim], c.dim);
      EXPECT_NEAR(l2, want_l2, 1e-5 * want_l2 + 1e-3);
      EXPECT_NEAR(ip, want_ip, 1e-5 * NaiveIp(q, q, c.dim) + 1e-3);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, PqTest,
                         ::testing::Values(Case{32, 8, 8}, Case{32, 16, 4}, Case{12, 3, 4},
                                           Case{64, 32, 4}, Case{30, 5, 8}));

TEST(PqTest, DeterministicForSeed) {
  const PqParams p{16, 4, 4};
  const auto x = Clustered(1000, 16, 20, 3);
  auto a = ProductQuantizer::Train(p, x.data(), 1000, 5, 1);
  auto b = ProductQuantizer::Train(p, x.data(), 1000, 5, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->Serialize(), b->Serialize());
}

TEST(PqTest, RejectsBadParams) {
  const auto x = Clustered(300, 16, 4, 1);
  EXPECT_EQ(ProductQuantizer::Train({16, 5, 4}, x.data(), 300, 1).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ProductQuantizer::Train({16, 4, 6}, x.data(), 300, 1).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ProductQuantizer::Train({0, 0, 4}, x.data(), 300, 1).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ProductQuantizer::Train({16, 4, 8}, x.data(), 100, 1).status().code(),
            Status::Code::kInvalidArgument);  // fewer points than centroids
  EXPECT_EQ(ProductQuantizer::FromCentroids({16, 4, 4}, std::vector<float>(10)).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(PqTest, SerializeRoundTripAndCorruption) {
  const PqParams p{24, 6, 4};
  const auto x = Clustered(800, 24, 10, 11);
  auto pq = ProductQuantizer::Train(p, x.data(), 800, 1, 1);
  ASSERT_TRUE(pq.ok());
  const std::string bytes = pq->Serialize();
  EXPECT_EQ(bytes.substr(0, 4), "VDPQ");
  EXPECT_EQ(bytes.size(), 20 + 16 * 24 * 4 + 4u);
  auto back = ProductQuantizer::Deserialize(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->params().dim, 24u);
  EXPECT_EQ(back->params().m, 6u);
  EXPECT_EQ(back->params().nbits, 4u);
  EXPECT_EQ(back->centroids(), pq->centroids());
  EXPECT_EQ(back->Serialize(), bytes);

  // Every single flipped bit anywhere is caught.
  std::mt19937 rng(2);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ (1 << (rng() % 8)));
    EXPECT_EQ(ProductQuantizer::Deserialize(bad).status().code(), Status::Code::kCorruption)
        << "flipped byte " << i;
  }
  for (size_t len : {size_t{0}, size_t{3}, size_t{23}, bytes.size() - 1}) {
    EXPECT_EQ(ProductQuantizer::Deserialize(bytes.substr(0, len)).status().code(),
              Status::Code::kCorruption)
        << "truncated to " << len;
  }
}

TEST(PqTest, Crc32cKnownValue) {
  EXPECT_EQ(PqCrc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(PqCrc32c("", 0), 0u);
}

}  // namespace
}  // namespace vectord::index
