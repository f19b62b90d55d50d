// RowBuffer (src/row_buffer.h): appends, growth past many pages without losing bytes, zero fill,
// dropping a prefix, moves.
#include "src/vectors/row_buffer.h"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

namespace vectord {
namespace {

TEST(RowBuffer, GrowsWithoutLosingBytes) {
  RowBuffer b;
  EXPECT_EQ(b.size(), 0u);
  std::vector<uint8_t> model;
  std::vector<uint8_t> chunk(20000);
  for (int i = 0; i < 300; ++i) {  // ~6 MB in 20 KB appends (multi-vector FDE rows)
    std::iota(chunk.begin(), chunk.end(), static_cast<uint8_t>(i));
    b.append(chunk.data(), chunk.size());
    model.insert(model.end(), chunk.begin(), chunk.end());
    ASSERT_EQ(b.size(), model.size());
    ASSERT_GE(b.capacity(), b.size());
  }
  EXPECT_EQ(std::vector<uint8_t>(b.data(), b.data() + b.size()), model);

  // resize: new bytes are zero, also over bytes written before a shrink.
  b.resize(100);
  b.resize(5000);
  for (size_t i = 100; i < 5000; ++i) ASSERT_EQ(b.data()[i], 0) << i;
  EXPECT_EQ(std::vector<uint8_t>(b.data(), b.data() + 100),
            std::vector<uint8_t>(model.begin(), model.begin() + 100));

  // Dropping a prefix keeps the rest in order.
  b.resize(0);
  b.append(model.data(), model.size());
  b.erase_front(1234567);
  ASSERT_EQ(b.size(), model.size() - 1234567);
  EXPECT_EQ(std::vector<uint8_t>(b.data(), b.data() + b.size()),
            std::vector<uint8_t>(model.begin() + 1234567, model.end()));
  b.erase_front(b.size() + 10);
  EXPECT_EQ(b.size(), 0u);

  // Moves hand the mapping over.
  b.append(model.data(), 10);
  RowBuffer c(std::move(b));
  EXPECT_EQ(b.size(), 0u);
  EXPECT_EQ(b.data(), nullptr);
  ASSERT_EQ(c.size(), 10u);
  EXPECT_EQ(c.data()[9], model[9]);
  RowBuffer d;
  d = std::move(c);
  EXPECT_EQ(d.size(), 10u);
  d.clear();
  EXPECT_EQ(d.size(), 0u);
}

}  // namespace
}  // namespace vectord
