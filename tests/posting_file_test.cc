// Tests for the posting-list file (storage/posting_file.h): round trips against an in-memory
// model, every kind of corruption detected, write-then-rename visibility.
#include "storage/posting_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include "storage/aligned_buffer.h"
#include "storage/io_reader.h"

namespace vectord::storage {
namespace {

namespace fs = std::filesystem;

class PostingFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "posting_file_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/lists.vdp";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Random payloads for `num_lists` lists; sizes cover the page-boundary cases.
  std::vector<std::vector<uint8_t>> MakeLists(uint32_t num_lists, std::mt19937& rng) {
    const uint32_t special[] = {
        0,    1,    100,         kPostingPagePayload - 1, kPostingPagePayload, 4089, 4096,
        8176, 8177, 3 * 4088 + 5};
    std::vector<std::vector<uint8_t>> lists(num_lists);
    for (uint32_t i = 0; i < num_lists; ++i) {
      uint32_t bytes = i < std::size(special) ? special[i] : rng() % 40000;
      lists[i].resize(bytes);
      for (auto& b : lists[i]) b = static_cast<uint8_t>(rng());
    }
    return lists;
  }

  // Writes `lists` in a random order, skipping empty ones every other time (missing = empty).
  void WriteFile(const std::vector<std::vector<uint8_t>>& lists, std::mt19937& rng,
                 std::string_view user_header = "params") {
    auto w =
        PostingFileWriter::Create(path_, static_cast<uint32_t>(lists.size()), 12, 7, user_header);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    std::vector<uint32_t> order(lists.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (uint32_t id : order) {
      if (lists[id].empty() && (id % 2 == 0)) continue;
      ASSERT_TRUE((*w)->AppendList(id, lists[id].data(), static_cast<uint32_t>(lists[id].size()),
                                   static_cast<uint32_t>(lists[id].size() / 12))
                      .ok());
    }
    Status s = (*w)->Finish();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // XORs the byte at `pos` of the file with `mask` (a second call with the same mask undoes it).
  void FlipByteInPlace(size_t pos, uint8_t mask) {
    int fd = ::open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    uint8_t b;
    ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(pos)), 1);
    b ^= mask;
    ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(pos)), 1);
    ::close(fd);
  }

  std::string ReadAll() {
    std::ifstream in(path_, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteAll(const std::string& bytes) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }

  std::string dir_;
  std::string path_;
};

TEST_F(PostingFileTest, RoundTripRandomSizesOutOfOrder) {
  std::mt19937 rng(42);
  auto lists = MakeLists(60, rng);
  WriteFile(lists, rng, "index parameters v1");

  auto f = PostingFile::Open(path_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->num_lists(), 60u);
  EXPECT_EQ((*f)->entry_bytes(), 12u);
  EXPECT_EQ((*f)->layout_tag(), 7u);
  EXPECT_EQ((*f)->user_header(), "index parameters v1");
  uint64_t data_pages = 0;
  for (uint32_t i = 0; i < lists.size(); ++i) {
    const PostingListInfo& info = (*f)->info(i);
    EXPECT_EQ(info.bytes, lists[i].size()) << "list " << i;
    EXPECT_EQ(info.count, lists[i].size() / 12) << "list " << i;
    EXPECT_EQ(info.pages, (lists[i].size() + 4087) / 4088) << "list " << i;
    data_pages += info.pages;
    std::vector<uint8_t> got;
    Status s = (*f)->ReadList(i, &got);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(got, lists[i]) << "list " << i;
  }
  EXPECT_EQ((*f)->info(4).pages, 1u);  // exactly 4088 bytes fits one page
  EXPECT_EQ((*f)->info(5).pages, 2u);  // 4089 does not
  const uint64_t dir_pages = (60 * 16 + 4095) / 4096;
  EXPECT_EQ((*f)->file_bytes(), (1 + data_pages + dir_pages + 1) * 4096);
  EXPECT_EQ(fs::file_size(path_), (*f)->file_bytes());
}

TEST_F(PostingFileTest, ListsReadThroughDirectFdAndIoReader) {
  std::mt19937 rng(7);
  auto lists = MakeLists(30, rng);
  WriteFile(lists, rng);
  for (bool force_buffered : {false, true}) {
    auto f = PostingFile::Open(path_, force_buffered);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    if (force_buffered) {
      EXPECT_FALSE((*f)->direct_io());
    }
    auto reader = IoReader::Create(IoReaderOptions{});
    ASSERT_TRUE(reader.ok());
    // All lists in one batch, as a query reads its posting lists.
    std::vector<AlignedBuffer> bufs;
    std::vector<IoReader::Request> reqs;
    for (uint32_t i = 0; i < lists.size(); ++i) {
      bufs.emplace_back((*f)->list_read_bytes(i));
    }
    for (uint32_t i = 0; i < lists.size(); ++i) {
      reqs.push_back({(*f)->direct_fd(), (*f)->list_offset(i),
                      static_cast<uint32_t>((*f)->list_read_bytes(i)), bufs[i].data()});
    }
    Status s = (*reader)->ReadBatch(reqs.data(), reqs.size());
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (uint32_t i = 0; i < lists.size(); ++i) {
      std::vector<uint8_t> payload(lists[i].size());
      s = (*f)->DecodeList(i, bufs[i].data(), payload.data());
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(payload, lists[i]) << "list " << i;
    }
  }
}

TEST_F(PostingFileTest, ReopenAfterWriterGoneAndSecondOpenSeesSameData) {
  std::mt19937 rng(3);
  auto lists = MakeLists(12, rng);
  WriteFile(lists, rng);
  for (int round = 0; round < 2; ++round) {
    auto f = PostingFile::Open(path_);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    for (uint32_t i = 0; i < lists.size(); ++i) {
      std::vector<uint8_t> got;
      ASSERT_TRUE((*f)->ReadList(i, &got).ok());
      EXPECT_EQ(got, lists[i]);
    }
  }
}

TEST_F(PostingFileTest, EmptyFileWithNoLists) {
  auto w = PostingFileWriter::Create(path_, 0, 0, 0, "");
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Finish().ok());
  auto f = PostingFile::Open(path_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->num_lists(), 0u);
  EXPECT_EQ((*f)->user_header(), "");
}

TEST_F(PostingFileTest, TmpFileNotVisibleUntilFinish) {
  const std::string tmp = path_ + ".tmp";
  {
    auto w = PostingFileWriter::Create(path_, 3, 4, 0, "");
    ASSERT_TRUE(w.ok());
    uint8_t data[10000] = {1, 2, 3};
    ASSERT_TRUE((*w)->AppendList(1, data, sizeof(data), 2500).ok());
    EXPECT_FALSE(fs::exists(path_));
    EXPECT_TRUE(fs::exists(tmp));
    EXPECT_FALSE(PostingFile::Open(path_).ok());
    ASSERT_TRUE((*w)->Finish().ok());
    EXPECT_TRUE(fs::exists(path_));
    EXPECT_FALSE(fs::exists(tmp));
    EXPECT_FALSE((*w)->AppendList(2, data, 10, 1).ok());  // finished writers refuse more
  }
  const std::string before = ReadAll();
  {
    // An abandoned rewrite leaves the old file in place and removes its temporary file.
    auto w = PostingFileWriter::Create(path_, 5, 4, 0, "");
    ASSERT_TRUE(w.ok());
    uint8_t data[100] = {};
    ASSERT_TRUE((*w)->AppendList(0, data, sizeof(data), 25).ok());
    EXPECT_TRUE(fs::exists(tmp));
  }
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_EQ(ReadAll(), before);
  auto f = PostingFile::Open(path_);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->num_lists(), 3u);
}

TEST_F(PostingFileTest, WriterRejectsBadArguments) {
  EXPECT_EQ(PostingFileWriter::Create(path_, 2, 4, 0, std::string(kPostingMaxUserHeader + 1, 'x'))
                .status()
                .code(),
            Status::Code::kInvalidArgument);
  auto w = PostingFileWriter::Create(path_, 2, 4, 0, std::string(kPostingMaxUserHeader, 'x'));
  ASSERT_TRUE(w.ok());
  uint8_t data[8] = {};
  EXPECT_EQ((*w)->AppendList(2, data, 8, 2).code(), Status::Code::kInvalidArgument);
  ASSERT_TRUE((*w)->AppendList(1, data, 8, 2).ok());
  Status dup = (*w)->AppendList(1, data, 8, 2);
  EXPECT_EQ(dup.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(dup.message().find("list 1"), std::string::npos) << dup.message();
  ASSERT_TRUE((*w)->Finish().ok());
  auto f = PostingFile::Open(path_);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->user_header(), std::string(kPostingMaxUserHeader, 'x'));
}

TEST_F(PostingFileTest, EveryFlippedByteInADataPageIsCorruption) {
  std::mt19937 rng(11);
  std::vector<std::vector<uint8_t>> lists(4);
  for (auto& l : lists) {
    l.resize(3 * kPostingPagePayload - 500);  // 3 pages, the last one with zero padding
    for (auto& b : l) b = static_cast<uint8_t>(rng());
  }
  WriteFile(lists, rng);
  auto f = PostingFile::Open(path_);
  ASSERT_TRUE(f.ok());
  const uint32_t list = 2;
  AlignedBuffer pages((*f)->list_read_bytes(list));
  auto reader = IoReader::Create(IoReaderOptions{});
  ASSERT_TRUE(reader.ok());
  IoReader::Request req{(*f)->direct_fd(), (*f)->list_offset(list),
                        static_cast<uint32_t>(pages.size()), pages.data()};
  ASSERT_TRUE((*reader)->ReadBatch(&req, 1).ok());
  std::vector<uint8_t> out(lists[list].size());
  ASSERT_TRUE((*f)->DecodeList(list, pages.data(), out.data()).ok());

  // Every byte of the trailers and the padding, plus a sample of payload bytes.
  std::vector<size_t> positions;
  for (size_t p = 0; p < 3; ++p) {
    for (size_t b = kPostingPagePayload; b < kPostingPageBytes; ++b) {
      positions.push_back(p * 4096 + b);
    }
    positions.push_back(p * 4096);
  }
  for (size_t b = lists[list].size() - 2 * kPostingPagePayload; b < kPostingPagePayload; ++b) {
    positions.push_back(2 * 4096 + b);
  }
  for (int i = 0; i < 400; ++i) positions.push_back(rng() % pages.size());
  for (size_t pos : positions) {
    const uint8_t flip = static_cast<uint8_t>(1u << (rng() % 8));
    pages.data()[pos] ^= flip;
    Status s = (*f)->DecodeList(list, pages.data(), out.data());
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << "flipped byte " << pos;
    EXPECT_NE(s.message().find(path_), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("list 2 page " + std::to_string(pos / 4096)), std::string::npos)
        << s.message();
    pages.data()[pos] ^= flip;
  }
  ASSERT_TRUE((*f)->DecodeList(list, pages.data(), out.data()).ok());

  // A page of another list (right checksum, wrong owner) and a page from the wrong place in the
  // same list (right owner, wrong page-number seed) are both caught.
  AlignedBuffer other((*f)->list_read_bytes(1));
  IoReader::Request req1{(*f)->direct_fd(), (*f)->list_offset(1),
                         static_cast<uint32_t>(other.size()), other.data()};
  ASSERT_TRUE((*reader)->ReadBatch(&req1, 1).ok());
  AlignedBuffer mixed(pages.size());
  std::memcpy(mixed.data(), pages.data(), pages.size());
  std::memcpy(mixed.data(), other.data(), 4096);
  Status s = (*f)->DecodeList(list, mixed.data(), out.data());
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("names list 1"), std::string::npos) << s.message();
  std::memcpy(mixed.data(), pages.data() + 4096, 4096);  // page 1 in place of page 0
  EXPECT_EQ((*f)->DecodeList(list, mixed.data(), out.data()).code(), Status::Code::kCorruption);
}

TEST_F(PostingFileTest, CorruptHeaderDirectoryOrFooterFailsOpen) {
  std::mt19937 rng(5);
  auto lists = MakeLists(300, rng);  // directory of 4800 bytes: two pages, the second padded
  WriteFile(lists, rng);
  const std::string good = ReadAll();
  ASSERT_TRUE(PostingFile::Open(path_).ok());
  auto f = PostingFile::Open(path_);
  uint64_t data_pages = 0;
  for (uint32_t i = 0; i < 300; ++i) data_pages += (*f)->info(i).pages;
  f = Status::Internal("closed");
  const size_t dir_begin = (1 + data_pages) * 4096;
  const size_t footer_begin = good.size() - 4096;

  std::vector<size_t> positions = {0, 7, 8, 12, 20, 24, 32, 4092, 4095};  // header fields
  for (int i = 0; i < 40; ++i) positions.push_back(rng() % 4096);
  for (int i = 0; i < 60; ++i) positions.push_back(dir_begin + rng() % (footer_begin - dir_begin));
  for (size_t b : {0, 8, 12, 16, 24, 32, 36, 4092}) positions.push_back(footer_begin + b);
  for (int i = 0; i < 40; ++i) positions.push_back(footer_begin + rng() % 4096);
  for (size_t pos : positions) {
    const uint8_t mask = static_cast<uint8_t>(1u << (rng() % 8));
    FlipByteInPlace(pos, mask);
    auto r = PostingFile::Open(path_);
    FlipByteInPlace(pos, mask);  // restore
    ASSERT_FALSE(r.ok()) << "flipped byte " << pos;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << "flipped byte " << pos;
    EXPECT_NE(r.status().message().find(path_), std::string::npos) << r.status().message();
  }
  // Truncated files (a crash before the footer) and trailing garbage.
  for (size_t len : {size_t{0}, size_t{100}, size_t{4096}, good.size() - 4096, good.size() - 1}) {
    WriteAll(good.substr(0, len));
    EXPECT_EQ(PostingFile::Open(path_).status().code(), Status::Code::kCorruption) << len;
  }
  WriteAll(good + std::string(4096, '\0'));
  EXPECT_EQ(PostingFile::Open(path_).status().code(), Status::Code::kCorruption);
  WriteAll(good);
  EXPECT_TRUE(PostingFile::Open(path_).ok());
  EXPECT_EQ(PostingFile::Open(dir_ + "/missing").status().code(), Status::Code::kIOError);
}

TEST_F(PostingFileTest, WorksOnTmpfsWithOrWithoutDirectIo) {
  // /dev/shm is tmpfs: older kernels refuse O_DIRECT there (EINVAL), newer accept it; either way
  // Open succeeds and list reads work through direct_fd().
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  std::string tmpl = "/dev/shm/posting_file_test_XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) GTEST_SKIP() << "cannot write /dev/shm";
  const std::string saved_dir = dir_;
  dir_ = tmpl;
  path_ = dir_ + "/lists.vdp";
  std::mt19937 rng(9);
  auto lists = MakeLists(10, rng);
  WriteFile(lists, rng);
  auto f = PostingFile::Open(path_);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  std::printf("tmpfs O_DIRECT: %s\n", (*f)->direct_io() ? "accepted" : "refused (buffered)");
  auto reader = IoReader::Create(IoReaderOptions{});
  ASSERT_TRUE(reader.ok());
  for (uint32_t i = 0; i < lists.size(); ++i) {
    AlignedBuffer buf((*f)->list_read_bytes(i));
    IoReader::Request req{(*f)->direct_fd(), (*f)->list_offset(i),
                          static_cast<uint32_t>(buf.size()), buf.data()};
    ASSERT_TRUE((*reader)->ReadBatch(&req, 1).ok());
    std::vector<uint8_t> out(lists[i].size());
    ASSERT_TRUE((*f)->DecodeList(i, buf.data(), out.data()).ok());
    EXPECT_EQ(out, lists[i]);
  }
  fs::remove_all(saved_dir);
}

}  // namespace
}  // namespace vectord::storage
