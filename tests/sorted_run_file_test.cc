// Sorted run files: ranges answered through the fences against brute force (duplicates and equal
// values across block boundaries included), sequential reading, empty runs, order checks, and
// damaged files reported as Corruption.
#include "storage/sorted_run_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

namespace vectord::storage {
namespace {

class SortedRunFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("run_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "r.vdr").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::vector<RunEntry>& entries) {
    auto w = SortedRunWriter::Create(path_);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (const auto& e : entries) ASSERT_TRUE((*w)->Add(e).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  std::filesystem::path dir_;
  std::string path_;
};

// Entries of `f` in [lo, hi] through ScanBlocks, filtered as a caller does.
std::vector<RunEntry> Range(const SortedRunFile& f, double lo, double hi) {
  std::vector<RunEntry> out;
  EXPECT_TRUE(f.ScanBlocks(lo, hi, [&](std::span<const RunEntry> block) {
                 for (const auto& e : block) {
                   if (e.value >= lo && e.value <= hi) out.push_back(e);
                 }
               }).ok());
  return out;
}

TEST_F(SortedRunFileTest, RangesMatchBruteForce) {
  std::mt19937 rng(5);
  std::vector<RunEntry> entries;
  // Few distinct values: runs of equal values span many blocks.
  for (uint32_t r = 0; r < 5000; ++r) {
    entries.push_back(RunEntry{static_cast<double>(rng() % 37) - 10, r});
    if (r % 7 == 0) entries.push_back(RunEntry{static_cast<double>(rng() % 37) - 10, r});
  }
  std::sort(entries.begin(), entries.end());
  Write(entries);
  auto f = SortedRunFile::Open(path_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->entries(), entries.size());
  EXPECT_EQ((*f)->min_row(), 0u);
  EXPECT_EQ((*f)->max_row(), 4999u);
  const double inf = std::numeric_limits<double>::infinity();
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{
           {-inf, inf}, {0, 0}, {-10, -10}, {26, 26}, {-100, -11}, {27, 100}, {3.5, 9}, {5, 4}}) {
    std::vector<RunEntry> want;
    for (const auto& e : entries) {
      if (e.value >= lo && e.value <= hi) want.push_back(e);
    }
    EXPECT_EQ(Range(**f, lo, hi), want) << lo << ".." << hi;
  }
  // The sequential reader returns every entry in order.
  auto rd = (*f)->NewReader();
  ASSERT_TRUE(rd.ok());
  std::vector<RunEntry> all;
  while ((*rd)->Valid()) {
    all.push_back((*rd)->entry());
    ASSERT_TRUE((*rd)->Next().ok());
  }
  EXPECT_EQ(all, entries);
  EXPECT_LT((*f)->MemoryBytes(), 1024u);  // 16 blocks of fences
}

TEST_F(SortedRunFileTest, EmptyRunAndOrderChecks) {
  Write({});
  auto f = SortedRunFile::Open(path_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->entries(), 0u);
  EXPECT_TRUE(Range(**f, -1e300, 1e300).empty());
  auto w = SortedRunWriter::Create((dir_ / "x.vdr").string());
  ASSERT_TRUE((*w)->Add(RunEntry{2, 5}).ok());
  ASSERT_TRUE((*w)->Add(RunEntry{2, 5}).ok());  // repeats are fine
  EXPECT_FALSE((*w)->Add(RunEntry{2, 4}).ok());
  EXPECT_FALSE((*w)->Add(RunEntry{std::nan(""), 9}).ok());
  w->reset();  // unfinished: nothing is left behind
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.vdr"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.vdr.tmp"));
}

TEST_F(SortedRunFileTest, DamageIsCorruption) {
  std::vector<RunEntry> entries;
  for (uint32_t r = 0; r < 2000; ++r) entries.push_back(RunEntry{r * 0.5, r});
  Write(entries);
  {
    // One flipped byte in the third block: opening works, reading that block does not.
    const int fd = ::open(path_.c_str(), O_WRONLY);
    const char x = 0x55;
    ASSERT_EQ(::pwrite(fd, &x, 1, 4096 + 2 * 4096 + 100), 1);
    ::close(fd);
  }
  auto f = SortedRunFile::Open(path_);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Range(**f, 0, 100).size(), 201u);  // first block only
  Status st = (*f)->ScanBlocks(400, 500, [](std::span<const RunEntry>) {});
  EXPECT_EQ(st.code(), Status::Code::kCorruption);
  EXPECT_NE(st.message().find("offset 12288"), std::string::npos) << st.message();
  // A cut file fails at open.
  std::filesystem::resize_file(path_, std::filesystem::file_size(path_) - 1);
  auto g = SortedRunFile::Open(path_);
  EXPECT_EQ(g.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(SortedRunFile::Open((dir_ / "none.vdr").string()).status().code(),
            Status::Code::kNotFound);
}

}  // namespace
}  // namespace vectord::storage
