// Tests for index/fast_scan.h: pack/unpack round trips, the 4-bit accumulation at every CPU level
// against a naive model over the unpacked codes, the LUT quantization error bound, the 8-bit scan,
// and the full path (trained PQ -> fast-scan estimate vs distance to the decoded vector).
#include "index/fast_scan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "index/pq.h"

namespace vectord::index {
namespace {

std::vector<std::string> Levels() {
  std::vector<std::string> out;
  for (const char* l : {"scalar", "avx2", "avx512"}) {
    if (SetFastScanLevel(l)) out.push_back(l);
  }
  SetFastScanLevel("auto");
  return out;
}

class FastScanLevelTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_TRUE(SetFastScanLevel(GetParam().c_str())); }
  void TearDown() override { SetFastScanLevel("auto"); }
};

std::vector<uint8_t> RandomCodes(size_t n, uint32_t m, std::mt19937& rng) {
  const size_t cs = (m + 1) / 2;
  std::vector<uint8_t> codes(n * cs);
  for (auto& b : codes) b = static_cast<uint8_t>(rng());
  if (m % 2 == 1) {
    for (size_t i = 0; i < n; ++i) codes[i * cs + cs - 1] &= 0x0F;  // unused high nibble
  }
  return codes;
}

uint32_t Nibble(const uint8_t* code, uint32_t j) { return (code[j / 2] >> ((j & 1) * 4)) & 0xF; }

const uint32_t kMs[] = {1, 2, 3, 4, 7, 8, 15, 16, 17, 24, 32, 33, 48, 64, 96, 128, 256};

TEST(FastScanTest, PackUnpackRoundTrip) {
  std::mt19937 rng(1);
  for (uint32_t m : kMs) {
    for (size_t n : {size_t{1}, size_t{31}, size_t{32}, size_t{33}, size_t{100}}) {
      const auto codes = RandomCodes(n, m, rng);
      const size_t nblocks = (n + 31) / 32, cs = (m + 1) / 2;
      EXPECT_EQ(FastScanBlockBytes(m), 16 * ((m + 1) / 2 * 2));
      std::vector<uint8_t> packed(nblocks * FastScanBlockBytes(m), 0xAB);
      PackFastScan(codes.data(), n, m, packed.data());
      std::vector<uint8_t> back(cs);
      for (size_t i = 0; i < nblocks * 32; ++i) {
        UnpackFastScanCode(packed.data(), i, m, back.data());
        for (size_t b = 0; b < cs; ++b) {
          ASSERT_EQ(back[b], i < n ? codes[i * cs + b] : 0) << "m " << m << " vector " << i;
        }
      }
    }
  }
}

// The documented layout, checked on one hand-made example.
TEST(FastScanTest, DocumentedByteLayout) {
  const uint32_t m = 4;
  std::vector<uint8_t> codes(32 * 2);
  for (size_t v = 0; v < 32; ++v) {
    codes[v * 2] = static_cast<uint8_t>((v % 16) | ((15 - v % 16) << 4));  // sq0 = v%16, sq1
    codes[v * 2 + 1] = static_cast<uint8_t>(v < 16 ? 0x21 : 0x43);         // sq2, sq3
  }
  std::vector<uint8_t> packed(FastScanBlockBytes(m));
  PackFastScan(codes.data(), 32, m, packed.data());
  for (size_t k = 0; k < 16; ++k) {
    // pair 0: bytes 0..15 hold sq0 of vectors k (low nibble) and k+16 (high nibble).
    EXPECT_EQ(packed[k], k | (k << 4));
    EXPECT_EQ(packed[16 + k], (15 - k) | ((15 - k) << 4));  // sq1
    EXPECT_EQ(packed[32 + k], 0x1 | (0x3 << 4));            // sq2
    EXPECT_EQ(packed[48 + k], 0x2 | (0x4 << 4));            // sq3
  }
}

TEST_P(FastScanLevelTest, AccumulateMatchesModel) {
  EXPECT_EQ(FastScanLevel(), GetParam());
  std::mt19937 rng(2);
  for (uint32_t m : kMs) {
    for (size_t n : {size_t{32}, size_t{37}, size_t{320}}) {
      const auto codes = RandomCodes(n, m, rng);
      const size_t nblocks = (n + 31) / 32, cs = (m + 1) / 2;
      std::vector<uint8_t> packed(nblocks * FastScanBlockBytes(m));
      PackFastScan(codes.data(), n, m, packed.data());
      // Tables at the limit: entries up to 255 while m * 255 <= 65535 still holds (m <= 257).
      QuantizedLut lut;
      lut.m = m;
      lut.table.assign(FastScanBlockBytes(m), 0);
      for (uint32_t j = 0; j < m; ++j)
        for (int k = 0; k < 16; ++k) lut.table[j * 16 + k] = static_cast<uint8_t>(rng());
      if (m == 256) {
        for (int k = 0; k < 16; ++k) lut.table[k] = 255;  // push sums towards 65535
      }
      std::vector<uint16_t> out(nblocks * 32);
      FastScanAccumulate(packed.data(), nblocks, m, lut, out.data());
      for (size_t i = 0; i < nblocks * 32; ++i) {
        uint32_t want = 0;
        for (uint32_t j = 0; j < m; ++j) {
          want += lut.table[j * 16 + (i < n ? Nibble(&codes[i * cs], j) : 0)];
        }
        ASSERT_EQ(out[i], want) << GetParam() << " m " << m << " n " << n << " vector " << i;
      }
    }
  }
}

TEST_P(FastScanLevelTest, Scan8MatchesNaive) {
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0, 1);
  for (uint32_t m : {1u, 7u, 8u, 9u, 16u, 17u, 32u, 64u}) {
    for (size_t n : {size_t{1}, size_t{5}, size_t{64}}) {
      std::vector<uint8_t> codes(n * m);
      for (auto& c : codes) c = static_cast<uint8_t>(rng());
      std::vector<float> lut(size_t{m} * 256);
      for (auto& v : lut) v = g(rng);
      std::vector<float> out(n);
      Scan8(codes.data(), n, m, lut.data(), out.data());
      for (size_t i = 0; i < n; ++i) {
        double want = 0, abs = 0;
        for (uint32_t j = 0; j < m; ++j) {
          want += lut[j * 256 + codes[i * m + j]];
          abs += std::fabs(lut[j * 256 + codes[i * m + j]]);
        }
        ASSERT_NEAR(out[i], want, 1e-5 * abs + 1e-6) << GetParam() << " m " << m << " i " << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Levels, FastScanLevelTest, ::testing::ValuesIn(Levels()));

TEST(FastScanTest, QuantizeLutBoundAndNoOverflow) {
  std::mt19937 rng(4);
  std::uniform_real_distribution<float> u(-1, 1);
  for (uint32_t m : kMs) {
    for (float spread : {1e-3f, 1.0f, 1e4f}) {
      std::vector<float> lut(m * 16);
      for (auto& v : lut) v = spread * u(rng);
      lut[0] = spread * 50;  // one row with a much larger span
      const QuantizedLut q = QuantizeLut(lut.data(), m);
      ASSERT_EQ(q.table.size(), FastScanBlockBytes(m));
      uint32_t max_sum = 0;
      for (uint32_t j = 0; j < m; ++j) {
        uint8_t row_max = 0, row_min = 255;
        for (int k = 0; k < 16; ++k) {
          row_max = std::max(row_max, q.table[j * 16 + k]);
          row_min = std::min(row_min, q.table[j * 16 + k]);
        }
        EXPECT_EQ(row_min, 0);
        max_sum += row_max;
      }
      EXPECT_LE(max_sum, 65535u) << "m " << m;
      for (size_t j = m; j < q.table.size() / 16; ++j)
        for (int k = 0; k < 16; ++k) EXPECT_EQ(q.table[j * 16 + k], 0) << "padding row";
      // Random codes: estimate within MaxError of the float sum.
      for (int trial = 0; trial < 50; ++trial) {
        double exact = 0;
        uint32_t acc = 0;
        for (uint32_t j = 0; j < m; ++j) {
          const int k = static_cast<int>(rng() % 16);
          exact += lut[j * 16 + k];
          acc += q.table[j * 16 + k];
        }
        const double est = FastScanToFloat(q, static_cast<uint16_t>(acc));
        EXPECT_LE(std::fabs(est - exact), q.MaxError() * 1.001 + 1e-5 * spread * m)
            << "m " << m << " spread " << spread;
      }
    }
  }
}

// Trained PQ, packed codes, quantized L2 LUT: estimates within the bound of |q - decoded|^2.
TEST(FastScanTest, EndToEndWithTrainedPq) {
  const uint32_t dim = 64, m = 32;
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0, 1);
  const size_t n = 1000;
  std::vector<float> x(n * dim);
  for (auto& v : x) v = g(rng);
  auto pq = ProductQuantizer::Train({dim, m, 4}, x.data(), n, 1, 1);
  ASSERT_TRUE(pq.ok()) << pq.status().ToString();
  std::vector<uint8_t> codes(n * pq->code_size());
  pq->Encode(x.data(), n, codes.data());
  std::vector<float> dec(n * dim);
  pq->Decode(codes.data(), n, dec.data());
  const size_t nblocks = (n + 31) / 32;
  std::vector<uint8_t> packed(nblocks * FastScanBlockBytes(m));
  PackFastScan(codes.data(), n, m, packed.data());
  std::vector<float> q(dim), lut(m * 16);
  for (auto& v : q) v = g(rng);
  pq->ComputeLut(q.data(), PqMetric::kL2, lut.data());
  const QuantizedLut ql = QuantizeLut(lut.data(), m);
  for (const std::string& level : Levels()) {
    ASSERT_TRUE(SetFastScanLevel(level.c_str()));
    std::vector<uint16_t> acc(nblocks * 32);
    FastScanAccumulate(packed.data(), nblocks, m, ql, acc.data());
    for (size_t i = 0; i < n; ++i) {
      double want = 0;
      for (uint32_t d = 0; d < dim; ++d) want += std::pow(double{q[d]} - dec[i * dim + d], 2);
      ASSERT_NEAR(FastScanToFloat(ql, acc[i]), want, ql.MaxError() * 1.001 + 1e-4 * want)
          << level << " vector " << i;
    }
  }
  SetFastScanLevel("auto");
}

}  // namespace
}  // namespace vectord::index
