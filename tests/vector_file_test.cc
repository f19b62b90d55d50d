// VectorFile: round trips, torn tails, checksum errors, header validation.
#include "storage/vector_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

namespace vectord::storage {
namespace {

class VectorFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("vf_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "v.vdv").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(VectorFileTest, AppendReadReopen) {
  std::mt19937 rng(1);
  std::vector<uint8_t> data(100 * 16);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  {
    auto f = VectorFile::Open(path_, 16, DataType::kUint8);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Append(data.data(), 60).ok());
    ASSERT_TRUE((*f)->Append(data.data() + 60 * 16, 40).ok());
    ASSERT_TRUE((*f)->Sync().ok());
    EXPECT_EQ((*f)->rows(), 100u);
  }
  auto f = VectorFile::Open(path_, 16, DataType::kUint8);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->rows(), 100u);
  std::vector<uint8_t> out(100 * 16);
  ASSERT_TRUE((*f)->Read(0, 100, out.data()).ok());
  EXPECT_EQ(out, data);
  std::vector<uint8_t> seen;
  ASSERT_TRUE((*f)->Scan([&](uint64_t first, uint64_t n, const uint8_t* p) {
                    EXPECT_EQ(first * 16, seen.size());
                    seen.insert(seen.end(), p, p + n * 16);
                    return Status::OK();
                  })
                  .ok());
  EXPECT_EQ(seen, data);
  EXPECT_FALSE((*f)->Read(99, 2, out.data()).ok());
}

TEST_F(VectorFileTest, TornTailIsIgnoredAndTruncateDropsRows) {
  std::vector<float> v(8 * 10, 1.5f);
  {
    auto f = VectorFile::Open(path_, 8, DataType::kFloat32);
    ASSERT_TRUE((*f)->Append(v.data(), 10).ok());
  }
  // A crash in the middle of an append leaves a partial record.
  const auto size = std::filesystem::file_size(path_);
  std::filesystem::resize_file(path_, size - 7);
  auto f = VectorFile::Open(path_, 8, DataType::kFloat32);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->rows(), 9u);
  ASSERT_TRUE((*f)->Truncate(5).ok());
  EXPECT_EQ((*f)->rows(), 5u);
  ASSERT_TRUE((*f)->Append(v.data(), 1).ok());
  std::vector<float> out(8 * 6);
  EXPECT_TRUE((*f)->Read(0, 6, out.data()).ok());
}

TEST_F(VectorFileTest, FlippedByteIsACorruptionError) {
  std::vector<uint8_t> data(4 * 32, 7);
  {
    auto f = VectorFile::Open(path_, 32, DataType::kUint8);
    ASSERT_TRUE((*f)->Append(data.data(), 4).ok());
  }
  int fd = ::open(path_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  const uint8_t x = 0x55;
  ASSERT_EQ(::pwrite(fd, &x, 1, VectorFile::kHeaderBytes + 36 * 2 + 3), 1);
  ::close(fd);
  auto f = VectorFile::Open(path_, 32, DataType::kUint8);
  ASSERT_TRUE(f.ok());
  std::vector<uint8_t> out(32 * 4);
  Status s = (*f)->Read(0, 4, out.data());
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("row 2"), std::string::npos) << s.message();
  EXPECT_TRUE((*f)->Read(0, 2, out.data()).ok());
}

TEST_F(VectorFileTest, RejectsWrongShapeAndForeignFiles) {
  { ASSERT_TRUE(VectorFile::Open(path_, 32, DataType::kUint8).ok()); }
  auto wrong = VectorFile::Open(path_, 64, DataType::kUint8);
  EXPECT_EQ(wrong.status().code(), Status::Code::kCorruption);
  const std::string other = (dir_ / "other").string();
  {
    std::FILE* fp = std::fopen(other.c_str(), "wb");
    std::vector<char> junk(5000, 'x');
    std::fwrite(junk.data(), 1, junk.size(), fp);
    std::fclose(fp);
  }
  auto bad = VectorFile::Open(other, 32, DataType::kUint8);
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find("magic"), std::string::npos);
}

}  // namespace
}  // namespace vectord::storage
