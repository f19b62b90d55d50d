// Tests for src/token_codes.h: sets appended in batches (pre-encoded or filled in place) come back
// by index with their counts and rows, across RowBuffer growth; unreadable sets have no rows.
#include "src/multivector/token_codes.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "index/chamfer_int8.h"

namespace vectord {
namespace {

TEST(TokenCodesTest, AppendedSetsComeBackByIndex) {
  const uint32_t dim = 10;  // rows of 12 code bytes + scale + offset
  TokenCodes codes(dim);
  EXPECT_EQ(codes.row_bytes(), index::Int8RowBytes(dim));
  EXPECT_EQ(codes.sets(), 0u);
  std::mt19937 rng(3);
  std::normal_distribution<float> g;
  std::vector<std::vector<uint8_t>> want;  // each set's encoded rows
  for (int batch = 0; batch < 40; ++batch) {
    std::vector<uint32_t> counts(1 + rng() % 30);
    std::vector<uint8_t> rows;
    for (uint32_t& c : counts) {
      c = 1 + rng() % 50;
      std::vector<float> x(size_t{c} * dim);
      for (float& v : x) v = g(rng);
      want.emplace_back(size_t{c} * codes.row_bytes());
      index::EncodeInt8Rows(x.data(), c, dim, want.back().data());
      rows.insert(rows.end(), want.back().begin(), want.back().end());
    }
    if (batch % 2) {
      codes.Append(counts.data(), counts.size(), rows.data());
    } else {  // filled in place, as the open does
      uint8_t* dst = codes.Append(counts.data(), counts.size());
      std::copy(rows.begin(), rows.end(), dst);
    }
  }
  ASSERT_EQ(codes.sets(), want.size());
  size_t total = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    uint32_t count = 0;
    const uint8_t* p = codes.Set(i, &count);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(size_t{count} * codes.row_bytes(), want[i].size()) << "set " << i;
    EXPECT_TRUE(std::equal(want[i].begin(), want[i].end(), p)) << "set " << i;
    total += want[i].size();
  }
  EXPECT_EQ(codes.bytes(), total + (want.size() + 1) * sizeof(uint64_t));

  codes.MarkUnreadable(7);
  uint32_t count = 0;
  EXPECT_EQ(codes.Set(7, &count), nullptr);
  EXPECT_EQ(size_t{count} * codes.row_bytes(), want[7].size());
  EXPECT_NE(codes.Set(8, &count), nullptr);
}

}  // namespace
}  // namespace vectord
