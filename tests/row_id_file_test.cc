// RowIdFile: entries across block boundaries, reopen, torn tails, truncation, and checksum errors
// that name the file and offset.
#include "storage/row_id_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "storage/file_util.h"

namespace vectord::storage {
namespace {

class RowIdFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rowid_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "r.vdi").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<RowIdFile> Open() {
    auto f = RowIdFile::Open(path_);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    return f.ok() ? std::move(f).value() : nullptr;
  }
  void ExpectAll(const RowIdFile& f, const std::vector<uint64_t>& model) {
    ASSERT_EQ(f.rows(), model.size());
    for (size_t r = 0; r < model.size(); ++r) ASSERT_EQ(f.Get(r).value(), model[r]) << r;
    std::vector<InternalId> rows;
    for (size_t r = model.size(); r-- > 0;) rows.push_back(static_cast<InternalId>(r));
    std::vector<uint64_t> got;
    ASSERT_TRUE(f.GetMany(rows, &got).ok());
    for (size_t i = 0; i < rows.size(); ++i) ASSERT_EQ(got[i], model[rows[i]]);
  }
  std::filesystem::path dir_;
  std::string path_;
};

TEST(RowIdFileEncodeTest, IntegersBelow2To63AreStoredOthersInMetadata) {
  EXPECT_EQ(RowIdFile::Encode(PointId::Num(0)), 0u);
  EXPECT_EQ(RowIdFile::Encode(PointId::Num((uint64_t{1} << 63) - 1)), (uint64_t{1} << 63) - 1);
  EXPECT_EQ(RowIdFile::Encode(PointId::Num(uint64_t{1} << 63)), RowIdFile::kInMetadata);
  EXPECT_EQ(RowIdFile::Encode(PointId::Uuid({})), RowIdFile::kInMetadata);
}

TEST_F(RowIdFileTest, AppendsAcrossBlocksAndReopens) {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> model;
  {
    auto f = Open();
    for (size_t n : {1u, 61u, 1u, 63u, 200u, 0u, 5u}) {
      std::vector<uint64_t> e(n);
      for (auto& x : e) x = rng() >> 1;
      ASSERT_TRUE(f->Append(e).ok());
      model.insert(model.end(), e.begin(), e.end());
      ExpectAll(*f, model);
    }
    ASSERT_TRUE(f->Sync().ok());
  }
  auto f = Open();
  ExpectAll(*f, model);
  EXPECT_FALSE(f->Get(model.size()).ok());
  // Appends continue after a reopen in the middle of a block.
  std::vector<uint64_t> more = {7, 8, 9};
  ASSERT_TRUE(f->Append(more).ok());
  model.insert(model.end(), more.begin(), more.end());
  ExpectAll(*f, model);
}

TEST_F(RowIdFileTest, TruncateDropsRowsAndAppendsReuseThem) {
  std::vector<uint64_t> model(300);
  for (size_t i = 0; i < model.size(); ++i) model[i] = i * 11;
  auto f = Open();
  ASSERT_TRUE(f->Append(model).ok());
  for (uint64_t n : {290u, 252u, 130u, 126u, 0u}) {
    ASSERT_TRUE(f->Truncate(n).ok());
    model.resize(n);
    ExpectAll(*f, model);
    std::vector<uint64_t> more = {1, 2, 3, 4, 5};
    ASSERT_TRUE(f->Append(more).ok());
    model.insert(model.end(), more.begin(), more.end());
    ExpectAll(*f, model);
  }
  f.reset();
  ExpectAll(*Open(), model);
}

TEST_F(RowIdFileTest, TornTailIsDroppedAndATrailerlessBlockFinished) {
  std::vector<uint64_t> model(63 + 10);
  for (size_t i = 0; i < model.size(); ++i) model[i] = i + 100;
  {
    auto f = Open();
    ASSERT_TRUE(f->Append(model).ok());
  }
  // Half an entry at the end.
  std::filesystem::resize_file(path_, std::filesystem::file_size(path_) + 3);
  ExpectAll(*Open(), model);
  // A block with all 63 entries but no trailer (a crash between the two writes).
  const uint64_t second = RowIdFile::kHeaderBytes + RowIdFile::kBlockBytes;
  std::filesystem::resize_file(path_, second);
  {
    auto f = Open();
    std::vector<uint64_t> e(63);
    for (size_t i = 0; i < e.size(); ++i) e[i] = 5000 + i;
    ASSERT_TRUE(f->Append(e).ok());
  }
  std::filesystem::resize_file(path_, second + RowIdFile::kBlockBytes - 8);
  model.resize(63);
  for (size_t i = 0; i < 63; ++i) model.push_back(5000 + i);
  auto f = Open();
  ExpectAll(*f, model);
  std::vector<uint64_t> more = {1};
  ASSERT_TRUE(f->Append(more).ok());
  model.push_back(1);
  f.reset();
  ExpectAll(*Open(), model);
}

TEST_F(RowIdFileTest, DamagedBlockIsCorruptionNamingTheOffset) {
  std::vector<uint64_t> model(200, 42);
  {
    auto f = Open();
    ASSERT_TRUE(f->Append(model).ok());
  }
  const int fd = ::open(path_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const char x = 'x';
  ASSERT_EQ(::pwrite(fd, &x, 1, RowIdFile::kHeaderBytes + RowIdFile::kBlockBytes + 17), 1);
  ::close(fd);
  auto f = Open();
  EXPECT_EQ(f->Get(0).value(), 42u);
  auto bad = f->Get(70);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find(path_), std::string::npos);
  EXPECT_NE(bad.status().message().find("offset 1024"), std::string::npos)
      << bad.status().message();
  EXPECT_EQ(f->Get(199).value(), 42u);  // the incomplete last block is read from RAM
}

TEST_F(RowIdFileTest, RejectsAnotherFile) {
  ASSERT_TRUE(WriteFileAtomic(path_, std::string(600, 'z')).ok());
  auto f = RowIdFile::Open(path_);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Status::Code::kCorruption);
  EXPECT_NE(f.status().message().find("bad magic"), std::string::npos);
}

}  // namespace
}  // namespace vectord::storage
