// Tests for ExternalSorter (src/external_sort.h): records come back in key order with their bytes
// intact, in RAM and spilled to many runs, and the runs are removed.
#include "src/spann/external_sort.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace vectord {
namespace {

namespace fs = std::filesystem;

std::string TempDir() {
  const fs::path p = fs::temp_directory_path() / ("external_sort_test_" + std::to_string(getpid()));
  fs::create_directories(p);
  return p.string();
}

size_t FilesIn(const std::string& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// (buffer bytes, records): in RAM, a few runs, many runs.
class ExternalSorterTest : public ::testing::TestWithParam<std::tuple<size_t, size_t>> {};

TEST_P(ExternalSorterTest, ReturnsEveryRecordInKeyOrder) {
  const auto [buffer, n] = GetParam();
  const std::string dir = TempDir();
  constexpr size_t kRec = 8 + 13;  // key + an odd-sized payload
  std::mt19937_64 rng(buffer + n);
  std::vector<std::vector<uint8_t>> model;
  {
    ExternalSorter sorter(dir, "t", kRec, buffer);
    for (size_t i = 0; i < n; ++i) {
      std::vector<uint8_t> r(kRec);
      const uint32_t a = static_cast<uint32_t>(rng() % 50), b = static_cast<uint32_t>(i);
      std::memcpy(r.data(), &a, 4);
      std::memcpy(r.data() + 4, &b, 4);
      for (size_t j = 8; j < kRec; ++j) r[j] = static_cast<uint8_t>(rng());
      ASSERT_TRUE(sorter.Add(r.data()).ok());
      model.push_back(r);
    }
    ASSERT_TRUE(sorter.Finish().ok());
    const std::vector<uint8_t> late(kRec, 0);
    EXPECT_FALSE(sorter.Add(late.data()).ok());  // no input after Finish
    if (n * (kRec + 16) > std::max<size_t>(1024 * (kRec + 16), buffer)) {
      EXPECT_GT(sorter.runs(), 1u);
    } else {
      EXPECT_EQ(sorter.runs(), 0u);
    }
    std::sort(model.begin(), model.end(), [](const auto& x, const auto& y) {
      return RecordKey(x.data()) < RecordKey(y.data());
    });
    size_t i = 0;
    for (const uint8_t* r; (r = sorter.Next()) != nullptr; ++i) {
      ASSERT_LT(i, model.size());
      ASSERT_EQ(std::memcmp(r, model[i].data(), kRec), 0) << "record " << i;
    }
    EXPECT_EQ(i, model.size());
    EXPECT_EQ(sorter.Next(), nullptr);
  }
  EXPECT_EQ(FilesIn(dir), 0u) << "run files left in " << dir;
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Sizes, ExternalSorterTest,
                         ::testing::Values(std::make_tuple(size_t{1} << 20, size_t{5000}),
                                           std::make_tuple(size_t{0}, size_t{0}),
                                           std::make_tuple(size_t{0}, size_t{3000}),
                                           std::make_tuple(size_t{0}, size_t{40000})));

TEST(ExternalSorter, UnwritableDirectoryIsAnError) {
  ExternalSorter sorter("/nonexistent/dir", "t", 16, 0);
  std::vector<uint8_t> r(16, 1);
  Status s;
  for (int i = 0; i < 2000 && s.ok(); ++i) s = sorter.Add(r.data());
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("/nonexistent/dir"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace vectord
