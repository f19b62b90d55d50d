// Tests for storage/dataset_io: round trips for every format against an in-memory model, range
// reads, float conversion, and clear errors for truncated, inconsistent and misnamed files.
#include "storage/dataset_io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace vectord::storage {
namespace {

namespace fs = std::filesystem;

class DatasetIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dataset_io_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // Random rows of `bytes_per_row` bytes; 4-byte types get small integers so every type's values
  // convert to float exactly.
  static std::vector<char> RandomRows(ElementType t, size_t n, uint32_t dim, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<char> out(n * dim * ElementSize(t));
    for (size_t i = 0; i < n * dim; ++i) {
      switch (t) {
        case ElementType::kFloat32: {
          float f = static_cast<float>(static_cast<int>(rng() % 2001) - 1000) / 8.0f;
          std::memcpy(out.data() + 4 * i, &f, 4);
          break;
        }
        case ElementType::kInt32: {
          int32_t v = static_cast<int32_t>(rng() % 100000) - 50000;
          std::memcpy(out.data() + 4 * i, &v, 4);
          break;
        }
        case ElementType::kUint8:
        case ElementType::kInt8:
          out[i] = static_cast<char>(rng() & 0xFF);
          break;
      }
    }
    return out;
  }

  static float AsFloat(ElementType t, const char* p) {
    switch (t) {
      case ElementType::kFloat32: {
        float f;
        std::memcpy(&f, p, 4);
        return f;
      }
      case ElementType::kInt32: {
        int32_t v;
        std::memcpy(&v, p, 4);
        return static_cast<float>(v);
      }
      case ElementType::kUint8:
        return static_cast<float>(static_cast<uint8_t>(*p));
      case ElementType::kInt8:
        return static_cast<float>(static_cast<int8_t>(*p));
    }
    return 0;
  }

  static void WriteBytes(const std::string& path, const std::vector<char>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  static std::vector<char> ReadBytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(f), {});
  }

  fs::path dir_;
};

TEST_F(DatasetIoTest, FormatFromExtension) {
  EXPECT_EQ(*FormatFromPath("a/b.fvecs"), DatasetFormat::kFvecs);
  EXPECT_EQ(*FormatFromPath("b.bvecs"), DatasetFormat::kBvecs);
  EXPECT_EQ(*FormatFromPath("b.ivecs"), DatasetFormat::kIvecs);
  EXPECT_EQ(*FormatFromPath("b.fbin"), DatasetFormat::kFbin);
  EXPECT_EQ(*FormatFromPath("b.u8bin"), DatasetFormat::kU8bin);
  EXPECT_EQ(*FormatFromPath("b.i8bin"), DatasetFormat::kI8bin);
  EXPECT_EQ(*FormatFromPath("b.ibin"), DatasetFormat::kIbin);
  auto bad = FormatFromPath("data/base.npy");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("data/base.npy"), std::string::npos);
  EXPECT_NE(bad.status().message().find("unknown extension"), std::string::npos);
}

TEST_F(DatasetIoTest, RoundTripEveryFormatWithRandomRanges) {
  const char* kExts[] = {"fvecs", "bvecs", "ivecs", "fbin", "u8bin", "i8bin", "ibin"};
  std::mt19937 rng(42);
  for (const char* ext : kExts) {
    SCOPED_TRACE(ext);
    const std::string path = Path(std::string("data.") + ext);
    const DatasetFormat fmt = *FormatFromPath(path);
    const ElementType t = FormatElementType(fmt);
    const uint32_t dim = 1 + rng() % 37;
    const size_t n = 1 + rng() % 300;
    const size_t row_bytes = dim * ElementSize(t);
    std::vector<char> rows = RandomRows(t, n, dim, rng());

    auto w = DatasetWriter::Create(path, dim);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    // Append in uneven pieces.
    for (size_t done = 0; done < n;) {
      size_t c = std::min<size_t>(n - done, 1 + rng() % 50);
      ASSERT_TRUE((*w)->Append(rows.data() + done * row_bytes, c).ok());
      done += c;
    }
    ASSERT_TRUE((*w)->Finish().ok());
    const size_t expected_size = IsTexmex(fmt) ? n * (4 + row_bytes) : 8 + n * row_bytes;
    EXPECT_EQ(fs::file_size(path), expected_size);

    auto r = DatasetReader::Open(path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const DatasetInfo& info = (*r)->info();
    EXPECT_EQ(info.n, n);
    EXPECT_EQ(info.dim, dim);
    EXPECT_EQ(info.type, t);
    EXPECT_EQ(info.format, fmt);

    for (int trial = 0; trial < 20; ++trial) {
      size_t begin = rng() % (n + 1);
      size_t count = rng() % (n - begin + 1);
      std::vector<char> raw(count * row_bytes + 1, 0x5A);
      ASSERT_TRUE((*r)->ReadRaw(begin, count, raw.data()).ok());
      EXPECT_EQ(0, std::memcmp(raw.data(), rows.data() + begin * row_bytes, count * row_bytes));
      EXPECT_EQ(raw.back(), 0x5A);  // nothing written past the range
      std::vector<float> f(count * dim);
      ASSERT_TRUE((*r)->ReadFloat(begin, count, f.data()).ok());
      for (size_t i = 0; i < count * dim; ++i) {
        ASSERT_EQ(f[i], AsFloat(t, rows.data() + begin * row_bytes + i * ElementSize(t)))
            << "element " << i;
      }
    }
    std::vector<char> raw(row_bytes);
    auto oob = (*r)->ReadRaw(n, 1, raw.data());
    EXPECT_EQ(oob.code(), Status::Code::kInvalidArgument);
  }
}

TEST_F(DatasetIoTest, TruncatedTexmexFileNamesFileAndOffset) {
  const std::string path = Path("t.fvecs");
  std::vector<char> rows = RandomRows(ElementType::kFloat32, 10, 8, 1);
  auto w = DatasetWriter::Create(path, 8);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(rows.data(), 10).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  std::vector<char> bytes = ReadBytes(path);
  bytes.resize(bytes.size() - 5);  // record 9 (offset 9*36 = 324) loses 5 bytes
  WriteBytes(path, bytes);
  auto r = DatasetReader::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("offset 324"), std::string::npos) << r.status().message();
}

TEST_F(DatasetIoTest, TruncatedBinFileNamesFileAndOffset) {
  const std::string path = Path("t.u8bin");
  std::vector<char> rows = RandomRows(ElementType::kUint8, 10, 16, 2);
  auto w = DatasetWriter::Create(path, 16);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(rows.data(), 10).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  std::vector<char> bytes = ReadBytes(path);
  bytes.resize(8 + 16 * 7 + 3);
  WriteBytes(path, bytes);
  auto r = DatasetReader::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find(path), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("row 7 at offset 120"), std::string::npos)
      << r.status().message();

  WriteBytes(path, {1, 0, 0});
  r = DatasetReader::Open(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("header"), std::string::npos) << r.status().message();
}

TEST_F(DatasetIoTest, InconsistentRecordDimensionIsReportedOnRead) {
  const std::string path = Path("d.ivecs");
  std::vector<char> rows = RandomRows(ElementType::kInt32, 6, 4, 3);
  auto w = DatasetWriter::Create(path, 4);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(rows.data(), 6).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  std::vector<char> bytes = ReadBytes(path);
  const int32_t bad = 5;
  std::memcpy(bytes.data() + 4 * 20, &bad, 4);  // record 4 at offset 80
  WriteBytes(path, bytes);
  auto r = DatasetReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<char> raw(6 * 16);
  ASSERT_TRUE((*r)->ReadRaw(0, 4, raw.data()).ok());  // rows before the bad one are fine
  Status s = (*r)->ReadRaw(2, 4, raw.data());
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find(path), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("record 4 at offset 80 has dimension 5, expected 4"),
            std::string::npos)
      << s.message();
}

TEST_F(DatasetIoTest, MissingFileAndUnknownExtension) {
  auto r = DatasetReader::Open(Path("nope.fbin"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_NE(r.status().message().find("nope.fbin"), std::string::npos);
  auto w = DatasetWriter::Create(Path("out.txt"), 4);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("out.txt"), std::string::npos);
}

TEST_F(DatasetIoTest, EmptyTexmexFileHasNoRows) {
  const std::string path = Path("e.bvecs");
  WriteBytes(path, {});
  auto r = DatasetReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->info().n, 0u);
}

TEST_F(DatasetIoTest, ReadsSharedSiftFileWhenPresent) {
  const std::string path = std::string(VECTORD_SHARED_DATA) + "/mate/sift/query.bvecs";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  auto r = DatasetReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->info().n, 1000u);
  EXPECT_EQ((*r)->info().dim, 128u);
  std::vector<float> f(1000 * 128);
  ASSERT_TRUE((*r)->ReadFloat(0, 1000, f.data()).ok());
}

}  // namespace
}  // namespace vectord::storage
