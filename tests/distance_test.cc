// Tests for index/distance.h: every kernel at every kernel level this CPU has, against naive
// double-precision code, over dimensions 1..300 and unaligned pointers; half-float conversion.
#include "index/distance.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace vectord::index {
namespace {

std::vector<std::string> Levels() {
  std::vector<std::string> out;
  for (const char* l : {"scalar", "avx2", "avx512"}) {
    if (SetKernelLevel(l)) out.push_back(l);
  }
  SetKernelLevel("auto");
  return out;
}

// Restores automatic dispatch after each test.
class DistanceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { ASSERT_TRUE(SetKernelLevel(GetParam().c_str())); }
  void TearDown() override { SetKernelLevel("auto"); }
};

constexpr size_t kMaxDim = 300;
constexpr size_t kPad = 8;  // offsets 0..7 elements make every alignment

// Reference half->float by the IEEE formula.
double RefHalf(uint16_t h) {
  const int sign = (h >> 15) ? -1 : 1;
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31) return mant ? NAN : sign * INFINITY;
  return sign * std::ldexp(1024 + mant, exp - 25);
}

// Float tolerance: relative to the sum of absolute terms, as float accumulation order differs.
void ExpectNearF(double want, double abs_sum, float got, const std::string& what) {
  EXPECT_NEAR(got, want, 1e-5 * abs_sum + 1e-6) << what;
}

TEST_P(DistanceTest, FloatKernelsMatchNaive) {
  std::mt19937 rng(1);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> a(kMaxDim + kPad), b(kMaxDim + kPad);
  for (auto& x : a) x = g(rng);
  for (auto& x : b) x = g(rng);
  for (size_t d = 1; d <= kMaxDim; ++d) {
    const size_t oa = d % kPad, ob = (d * 3) % kPad;
    const float* pa = a.data() + oa;
    const float* pb = b.data() + ob;
    double l2 = 0, ip = 0, l2abs = 0, ipabs = 0, l1 = 0;
    for (size_t i = 0; i < d; ++i) {
      const double t = double{pa[i]} - pb[i];
      l2 += t * t;
      l1 += std::fabs(t);
      ip += double{pa[i]} * pb[i];
      ipabs += std::fabs(double{pa[i]} * pb[i]);
    }
    l2abs = l2;
    const std::string what = GetParam() + " d=" + std::to_string(d);
    ExpectNearF(l2, l2abs, L2SqrF32(pa, pb, d), "L2SqrF32 " + what);
    ExpectNearF(ip, ipabs, IpF32(pa, pb, d), "IpF32 " + what);
    ExpectNearF(l1, l1, L1F32(pa, pb, d), "L1F32 " + what);
  }
}

TEST_P(DistanceTest, IntegerKernelsAreExact) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<uint8_t> a(kMaxDim + kPad), b(kMaxDim + kPad);
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < a.size(); ++i) {
      // Round 0: random; round 1: extremes (largest differences); round 2: equal vectors.
      a[i] = static_cast<uint8_t>(round == 1 ? 255 : byte(rng));
      b[i] = static_cast<uint8_t>(round == 1 ? 0 : round == 2 ? a[i] : byte(rng));
    }
    for (size_t d = 1; d <= kMaxDim; ++d) {
      const size_t oa = (d * 5) % kPad, ob = (d * 7 + 1) % kPad;
      const uint8_t* ua = a.data() + oa;
      const uint8_t* ub = b.data() + (round == 2 ? oa : ob);
      const int8_t* sa = reinterpret_cast<const int8_t*>(ua);
      const int8_t* sb = reinterpret_cast<const int8_t*>(ub);
      int64_t l2u = 0, ipu = 0, l2s = 0, ips = 0;
      for (size_t i = 0; i < d; ++i) {
        l2u += (int64_t{ua[i]} - ub[i]) * (int64_t{ua[i]} - ub[i]);
        ipu += int64_t{ua[i]} * ub[i];
        l2s += (int64_t{sa[i]} - sb[i]) * (int64_t{sa[i]} - sb[i]);
        ips += int64_t{sa[i]} * sb[i];
      }
      const std::string what =
          GetParam() + " round=" + std::to_string(round) + " d=" + std::to_string(d);
      ASSERT_EQ(L2SqrU8(ua, ub, d), static_cast<uint64_t>(l2u)) << what;
      ASSERT_EQ(IpU8(ua, ub, d), ipu) << what;
      ASSERT_EQ(L2SqrI8(sa, sb, d), l2s) << what;
      ASSERT_EQ(IpI8(sa, sb, d), ips) << what;
    }
  }
}

TEST_P(DistanceTest, L2SqrU8RowsMatchesSingleRows) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> byte(0, 255);
  for (size_t d : {1, 7, 16, 31, 32, 33, 64, 100, 128, 129, 200, 300}) {
    for (size_t n : {0, 1, 3, 4, 5, 17}) {
      std::vector<uint8_t> q(d + 1), rows(n * d + 1);
      for (auto& x : q) x = static_cast<uint8_t>(byte(rng));
      for (auto& x : rows) x = static_cast<uint8_t>(byte(rng));
      // Unaligned by one byte on purpose.
      std::vector<uint32_t> out(n + 1, 12345);
      L2SqrU8Rows(q.data() + 1, rows.data() + 1, n, d, out.data());
      for (size_t r = 0; r < n; ++r) {
        uint64_t want = 0;
        for (size_t i = 0; i < d; ++i) {
          const int t = int{q[1 + i]} - int{rows[1 + r * d + i]};
          want += static_cast<uint64_t>(t * t);
        }
        ASSERT_EQ(out[r], want) << GetParam() << " d=" << d << " n=" << n << " r=" << r;
      }
      EXPECT_EQ(out[n], 12345u) << "wrote past the end, d=" << d << " n=" << n;
    }
  }
}

TEST_P(DistanceTest, MixedKernelsMatchNaive) {
  std::mt19937 rng(4);
  std::normal_distribution<float> g(0, 3);
  std::uniform_int_distribution<int> byte(0, 255);
  std::vector<float> q(kMaxDim + kPad);
  std::vector<uint8_t> u(kMaxDim + kPad);
  std::vector<uint16_t> h(kMaxDim + kPad);
  for (auto& x : q) x = g(rng) * 40;
  for (auto& x : u) x = static_cast<uint8_t>(byte(rng));
  for (auto& x : h) x = FloatToHalf(g(rng));
  for (size_t d = 1; d <= kMaxDim; ++d) {
    const size_t oq = d % kPad, ox = (d * 3 + 1) % kPad;
    const float* pq = q.data() + oq;
    const uint8_t* pu = u.data() + ox;
    const int8_t* ps = reinterpret_cast<const int8_t*>(pu);
    const uint16_t* ph = h.data() + ox;
    double l2u = 0, ipu = 0, ipua = 0, l1u = 0, l2s = 0, ips = 0, ipsa = 0, l1s = 0;
    double l2h = 0, iph = 0, ipha = 0, l1h = 0;
    for (size_t i = 0; i < d; ++i) {
      const double x = pu[i], y = ps[i], z = RefHalf(ph[i]), w = pq[i];
      l2u += (w - x) * (w - x), ipu += w * x, ipua += std::fabs(w * x), l1u += std::fabs(w - x);
      l2s += (w - y) * (w - y), ips += w * y, ipsa += std::fabs(w * y), l1s += std::fabs(w - y);
      l2h += (w - z) * (w - z), iph += w * z, ipha += std::fabs(w * z), l1h += std::fabs(w - z);
    }
    const std::string what = GetParam() + " d=" + std::to_string(d);
    ExpectNearF(l2u, l2u, L2SqrF32U8(pq, pu, d), "L2SqrF32U8 " + what);
    ExpectNearF(ipu, ipua, IpF32U8(pq, pu, d), "IpF32U8 " + what);
    ExpectNearF(l1u, l1u, L1F32U8(pq, pu, d), "L1F32U8 " + what);
    ExpectNearF(l2s, l2s, L2SqrF32I8(pq, ps, d), "L2SqrF32I8 " + what);
    ExpectNearF(ips, ipsa, IpF32I8(pq, ps, d), "IpF32I8 " + what);
    ExpectNearF(l1s, l1s, L1F32I8(pq, ps, d), "L1F32I8 " + what);
    ExpectNearF(l2h, l2h, L2SqrF32F16(pq, ph, d), "L2SqrF32F16 " + what);
    ExpectNearF(iph, ipha, IpF32F16(pq, ph, d), "IpF32F16 " + what);
    ExpectNearF(l1h, l1h, L1F32F16(pq, ph, d), "L1F32F16 " + what);
  }
}

INSTANTIATE_TEST_SUITE_P(AllLevels, DistanceTest, ::testing::ValuesIn(Levels()),
                         [](const auto& info) { return info.param; });

TEST(KernelLevelTest, ScalarAlwaysAvailableAndAutoRestores) {
  const std::string best = KernelLevel();
  EXPECT_TRUE(SetKernelLevel("scalar"));
  EXPECT_STREQ(KernelLevel(), "scalar");
  EXPECT_FALSE(SetKernelLevel("sse9"));
  EXPECT_STREQ(KernelLevel(), "scalar");
  EXPECT_TRUE(SetKernelLevel("auto"));
  EXPECT_EQ(KernelLevel(), best);
}

TEST(HalfTest, EveryHalfConvertsExactlyAndRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const double want = RefHalf(static_cast<uint16_t>(h));
    const float got = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << h;
      ASSERT_TRUE(std::isnan(HalfToFloat(FloatToHalf(got)))) << h;
      continue;
    }
    ASSERT_EQ(double{got}, want) << h;
    ASSERT_EQ(FloatToHalf(got), h) << h;
  }
}

TEST(HalfTest, FloatToHalfRoundsToNearestEven) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<uint32_t> bits;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t x = bits(rng);
    // Bias exponents towards the half range (including subnormals and overflow).
    x = (x & 0x807FFFFFu) | ((100 + (x >> 23) % 50) << 23);
    float f;
    std::memcpy(&f, &x, sizeof(f));
    const uint16_t h = FloatToHalf(f);
    const double got = RefHalf(h);
    const double fa = std::fabs(double{f});
    if (fa >= 65520.0) {
      ASSERT_TRUE(std::isinf(got)) << f;
      continue;
    }
    // Neighbours of h in magnitude: the error must not exceed theirs; ties go to even mantissa.
    const uint16_t mag = h & 0x7FFF;
    const double err = std::fabs(std::fabs(got) - fa);
    if (mag < 0x7BFF) {
      const double up = std::fabs(RefHalf(mag + 1) - fa);
      ASSERT_LE(err, up) << f;
      if (err == up) {
        ASSERT_EQ(mag & 1, 0) << f;
      }
    }
    if (mag > 0) {
      const double down = std::fabs(RefHalf(mag - 1) - fa);
      ASSERT_LE(err, down) << f;
      if (err == down) {
        ASSERT_EQ(mag & 1, 0) << f;
      }
    }
    ++checked;
  }
  EXPECT_GT(checked, 100000);
}

}  // namespace
}  // namespace vectord::index
