// Tests for the mutable posting-list file (storage/posting_store.h): allocation, best fit, free
// and coalescing, growth and trim against a page-level model, adoption of a version-1 file and
// its header upgrade (torn included), corruption detection, and Free from several threads while
// one thread writes.
#include "storage/posting_store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "storage/aligned_buffer.h"
#include "storage/io_reader.h"

namespace vectord::storage {
namespace {

namespace fs = std::filesystem;

using Runs = std::vector<std::pair<uint32_t, uint32_t>>;

// Payload of `bytes` bytes determined by `seed`, so a list can be checked without keeping it.
std::vector<uint8_t> Payload(uint32_t bytes, uint32_t seed) {
  std::vector<uint8_t> p(bytes);
  std::mt19937 rng(seed);
  for (auto& b : p) b = static_cast<uint8_t>(rng());
  return p;
}

// Bytes that make a list of exactly `pages` pages (the last one partly used).
uint32_t BytesFor(uint32_t pages) { return pages == 0 ? 0 : pages * kPostingPagePayload - 17; }

class PostingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "posting_store_test_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/postings.vdp";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<PostingStore> CreateStore(bool force_buffered = false) {
    auto s = PostingStore::Create(path_, 12, 3, "user header", force_buffered);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(s).value() : nullptr;
  }
  // Opens path_ as a version-2 file and initializes its allocator with `dir`.
  std::unique_ptr<PostingStore> Reopen(const std::vector<PostingListInfo>& dir,
                                       bool force_buffered = false) {
    std::vector<PostingListInfo> v1;
    auto s = PostingStore::Open(path_, &v1, force_buffered);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return nullptr;
    EXPECT_EQ((*s)->header_version(), 2u);
    EXPECT_TRUE(v1.empty());
    Status st = (*s)->InitAllocator(dir);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return std::move(s).value();
  }

  PostingListInfo Write(PostingStore* store, uint32_t list, uint32_t pages, uint32_t seed) {
    const auto payload = Payload(BytesFor(pages), seed);
    auto r = store->WriteList(list, payload.data(), static_cast<uint32_t>(payload.size()), seed);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : PostingListInfo{};
  }
  void ExpectList(const PostingStore& store, uint32_t list, const PostingListInfo& info,
                  uint32_t seed) {
    std::vector<uint8_t> got;
    Status s = store.ReadList(list, info, &got);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(got, Payload(info.bytes, seed)) << "list " << list;
  }
  static void ExpectAccounted(const PostingStore& store) {
    const PostingStoreStats st = store.stats();
    EXPECT_EQ(st.file_bytes / kPostingPageBytes, st.metadata_pages + st.used_pages + st.free_pages);
  }

  void FlipByte(uint64_t pos) {
    const int fd = ::open(path_.c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    uint8_t b;
    ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(pos)), 1);
    b ^= 0x10;
    ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(pos)), 1);
    ::close(fd);
  }
  std::string ReadAll(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void WriteAll(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  uint64_t FileSize() { return fs::file_size(path_); }

  // A version-1 file of `num_lists` lists (list i: i % 4 pages, seed 100 + i) written by the
  // builder's writer.
  void WriteV1(uint32_t num_lists) {
    auto w = PostingFileWriter::Create(path_, num_lists, 12, 3, "v1 params");
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (uint32_t i = 0; i < num_lists; ++i) {
      const auto p = Payload(BytesFor(i % 4), 100 + i);
      ASSERT_TRUE((*w)->AppendList(i, p.data(), static_cast<uint32_t>(p.size()), 100 + i).ok());
    }
    ASSERT_TRUE((*w)->Finish().ok());
  }

  std::string dir_;
  std::string path_;
};

TEST_F(PostingStoreTest, CreateWriteReadAndReopen) {
  auto store = CreateStore();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->header_version(), 2u);
  EXPECT_EQ(store->entry_bytes(), 12u);
  EXPECT_EQ(store->layout_tag(), 3u);
  EXPECT_EQ(store->user_header(), "user header");
  EXPECT_EQ(FileSize(), kPostingPageBytes);
  EXPECT_EQ(store->stats().file_bytes, kPostingPageBytes);

  // Sizes around the page boundary: 0, 1, 4088 (one page), 4089 (two), 3 pages + 5 bytes.
  const uint32_t sizes[] = {0, 1, kPostingPagePayload, kPostingPagePayload + 1,
                            3 * kPostingPagePayload + 5};
  std::vector<PostingListInfo> dir;
  uint32_t next_page = 1;
  for (uint32_t i = 0; i < std::size(sizes); ++i) {
    const auto p = Payload(sizes[i], i);
    auto r = store->WriteList(i, p.data(), sizes[i], 1000 + i);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->bytes, sizes[i]);
    EXPECT_EQ(r->count, 1000 + i);
    EXPECT_EQ(r->pages, PostingPagesFor(sizes[i]));
    EXPECT_EQ(r->first_page, r->pages == 0 ? 0 : next_page) << "appended in order";
    next_page += r->pages;
    dir.push_back(*r);
  }
  ASSERT_TRUE(store->Sync().ok());
  const PostingStoreStats st = store->stats();
  EXPECT_EQ(st.used_pages, 1u + 1 + 2 + 4);
  EXPECT_EQ(st.free_pages, 0u);
  EXPECT_EQ(st.pages_written, st.used_pages);
  EXPECT_EQ(st.file_bytes, uint64_t{next_page} * kPostingPageBytes);
  EXPECT_EQ(FileSize(), st.file_bytes);
  ExpectAccounted(*store);
  for (uint32_t i = 0; i < dir.size(); ++i) ExpectList(*store, i, dir[i], i);

  store.reset();
  store = Reopen(dir);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->user_header(), "user header");
  EXPECT_EQ(store->stats().used_pages, st.used_pages);
  EXPECT_EQ(store->stats().pages_written, 0u);
  for (uint32_t i = 0; i < dir.size(); ++i) ExpectList(*store, i, dir[i], i);
}

TEST_F(PostingStoreTest, ListsReadThroughDirectFdAndIoReader) {
  for (bool force_buffered : {false, true}) {
    fs::remove(path_);
    auto store = CreateStore(force_buffered);
    ASSERT_NE(store, nullptr);
    if (force_buffered) {
      EXPECT_FALSE(store->direct_io());
    }
    std::vector<PostingListInfo> dir;
    for (uint32_t i = 0; i < 12; ++i) dir.push_back(Write(store.get(), i, 1 + i % 3, 50 + i));
    // Rewrite some lists into freed space, as the updater does.
    for (uint32_t i = 0; i < 12; i += 3) {
      const PostingListInfo old = dir[i];
      dir[i] = Write(store.get(), i, 2, 80 + i);
      ASSERT_TRUE(store->Free(old).ok());
    }
    auto reader = IoReader::Create(IoReaderOptions{});
    ASSERT_TRUE(reader.ok());
    std::vector<AlignedBuffer> bufs;
    std::vector<IoReader::Request> reqs;
    for (const PostingListInfo& info : dir) bufs.emplace_back(info.pages * kPostingPageBytes);
    for (uint32_t i = 0; i < dir.size(); ++i) {
      reqs.push_back({store->direct_fd(), uint64_t{dir[i].first_page} * kPostingPageBytes,
                      dir[i].pages * kPostingPageBytes, bufs[i].data()});
    }
    Status s = (*reader)->ReadBatch(reqs.data(), reqs.size());
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (uint32_t i = 0; i < dir.size(); ++i) {
      std::vector<uint8_t> payload(dir[i].bytes);
      s = store->DecodeList(i, dir[i], bufs[i].data(), payload.data());
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(payload, Payload(dir[i].bytes, i % 3 == 0 ? 80 + i : 50 + i)) << "list " << i;
    }
  }
}

TEST_F(PostingStoreTest, FreeCoalescesWithBothNeighbours) {
  auto store = CreateStore();
  ASSERT_NE(store, nullptr);
  std::vector<PostingListInfo> e;
  for (uint32_t i = 0; i < 5; ++i) e.push_back(Write(store.get(), i, 2, i));  // pages 1..10
  ASSERT_TRUE(store->Free(e[1]).ok());
  ASSERT_TRUE(store->Free(e[3]).ok());
  EXPECT_EQ(store->FreeRuns(), (Runs{{3, 2}, {7, 2}}));
  ASSERT_TRUE(store->Free(e[2]).ok());  // joins both neighbours
  EXPECT_EQ(store->FreeRuns(), (Runs{{3, 6}}));
  ASSERT_TRUE(store->Free(e[0]).ok());  // joins the run after it
  EXPECT_EQ(store->FreeRuns(), (Runs{{1, 8}}));
  ASSERT_TRUE(store->Free(e[4]).ok());  // joins the run before it
  EXPECT_EQ(store->FreeRuns(), (Runs{{1, 10}}));
  const PostingStoreStats st = store->stats();
  EXPECT_EQ(st.used_pages, 0u);
  EXPECT_EQ(st.free_pages, 10u);
  EXPECT_EQ(st.free_runs, 1u);
  ExpectAccounted(*store);
}

TEST_F(PostingStoreTest, BestFitTakesSmallestRunLowestFirst) {
  auto store = CreateStore();
  ASSERT_NE(store, nullptr);
  // Runs of 3, 5, 2 and 2 free pages separated by one-page lists.
  const uint32_t layout[] = {3, 1, 5, 1, 2, 1, 2, 1};
  std::vector<PostingListInfo> e;
  for (uint32_t i = 0; i < std::size(layout); ++i) e.push_back(Write(store.get(), i, layout[i], i));
  for (uint32_t i : {0, 2, 4, 6}) ASSERT_TRUE(store->Free(e[i]).ok());
  ASSERT_EQ(store->FreeRuns(), (Runs{{1, 3}, {5, 5}, {11, 2}, {14, 2}}));
  const uint64_t file_bytes = store->stats().file_bytes;

  EXPECT_EQ(Write(store.get(), 20, 2, 1).first_page, 11u);  // exact fit, the lower of two
  EXPECT_EQ(Write(store.get(), 21, 4, 1).first_page, 5u);   // 5-run is the smallest that holds 4
  EXPECT_EQ(store->FreeRuns(), (Runs{{1, 3}, {9, 1}, {14, 2}}));
  EXPECT_EQ(Write(store.get(), 22, 1, 1).first_page, 9u);  // the 1-page remainder fits exactly
  EXPECT_EQ(Write(store.get(), 23, 3, 1).first_page, 1u);
  EXPECT_EQ(store->stats().file_bytes, file_bytes) << "every write so far fit inside the file";
  EXPECT_EQ(Write(store.get(), 24, 3, 1).first_page, 17u);  // nothing holds 3: append
  EXPECT_EQ(store->stats().file_bytes, file_bytes + 3 * kPostingPageBytes);
  EXPECT_EQ(store->FreeRuns(), (Runs{{14, 2}}));
  ExpectAccounted(*store);
}

TEST_F(PostingStoreTest, GrowthExtendsTailRunAndTrimTailShrinksFile) {
  auto store = CreateStore();
  ASSERT_NE(store, nullptr);
  const PostingListInfo a = Write(store.get(), 0, 2, 1);  // pages 1-2
  const PostingListInfo b = Write(store.get(), 1, 3, 2);  // pages 3-5
  const PostingListInfo c = Write(store.get(), 2, 2, 3);  // pages 6-7
  ASSERT_TRUE(store->Sync().ok());
  EXPECT_EQ(FileSize(), 8 * kPostingPageBytes);

  // A free run at the end that is too small is extended rather than left behind.
  ASSERT_TRUE(store->Free(c).ok());
  const PostingListInfo d = Write(store.get(), 3, 4, 4);
  EXPECT_EQ(d.first_page, 6u);
  EXPECT_EQ(store->stats().file_bytes, 10 * kPostingPageBytes);
  EXPECT_TRUE(store->FreeRuns().empty());

  // TrimTail cuts only free pages at the end.
  ASSERT_TRUE(store->Free(a).ok());
  ASSERT_TRUE(store->TrimTail().ok());
  EXPECT_EQ(FileSize(), 10 * kPostingPageBytes) << "the free run is not at the end";
  ASSERT_TRUE(store->Free(d).ok());
  ASSERT_TRUE(store->TrimTail().ok());
  EXPECT_EQ(FileSize(), 6 * kPostingPageBytes);
  EXPECT_EQ(store->stats().file_bytes, 6 * kPostingPageBytes);
  EXPECT_EQ(store->FreeRuns(), (Runs{{1, 2}}));
  ExpectAccounted(*store);
  ExpectList(*store, 1, b, 2);
  ASSERT_TRUE(store->Free(b).ok());  // everything free: the file shrinks to its header
  ASSERT_TRUE(store->TrimTail().ok());
  EXPECT_EQ(FileSize(), kPostingPageBytes);
  EXPECT_TRUE(store->FreeRuns().empty());
  EXPECT_EQ(Write(store.get(), 4, 1, 5).first_page, 1u);
  ExpectAccounted(*store);
}

TEST_F(PostingStoreTest, FreeRejectsExtentsNotInUse) {
  auto store = CreateStore();
  ASSERT_NE(store, nullptr);
  const PostingListInfo a = Write(store.get(), 0, 3, 1);  // pages 1-3
  const PostingListInfo b = Write(store.get(), 1, 2, 2);  // pages 4-5
  ASSERT_TRUE(store->Free(a).ok());
  const Runs runs = store->FreeRuns();
  const PostingStoreStats before = store->stats();
  const PostingListInfo bad[] = {
      a,                  // double free
      {2, 1, 0, 1},       // inside a free run
      {3, 2, 0, 4089},    // half free, half used
      {0, 1, 0, 1},       // the header page
      {5, 2, 0, 4089},    // past the end of the file
      {4, 4000000, 0, 0}  // far past it
  };
  for (const PostingListInfo& e : bad) {
    Status s = store->Free(e);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << e.first_page << "+" << e.pages;
    EXPECT_NE(s.message().find(path_), std::string::npos) << s.message();
  }
  EXPECT_EQ(store->FreeRuns(), runs);
  EXPECT_EQ(store->stats().used_pages, before.used_pages);
  EXPECT_TRUE(store->Free(PostingListInfo{}).ok()) << "an empty list owns no page";
  EXPECT_TRUE(store->Free(b).ok());
}

TEST_F(PostingStoreTest, InitAllocatorFreesUnreferencedPagesAndRejectsBadDirectories) {
  std::vector<PostingListInfo> written;
  {
    auto store = CreateStore();
    ASSERT_NE(store, nullptr);
    for (uint32_t i = 0; i < 6; ++i) written.push_back(Write(store.get(), i, 1 + i % 2, i));
    ASSERT_TRUE(store->Sync().ok());
  }
  // Lists 1 and 4 were written but no committed record references them (a crash before the
  // journal record): their pages are free after the restart.
  std::vector<PostingListInfo> committed = written;
  committed[1] = PostingListInfo{};
  committed[4] = PostingListInfo{};
  auto store = Reopen(committed);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->FreeRuns(), (Runs{{written[1].first_page, 2}, {written[4].first_page, 1}}));
  ExpectAccounted(*store);
  for (uint32_t i : {0, 2, 3, 5}) ExpectList(*store, i, written[i], i);
  EXPECT_EQ(store->InitAllocator(committed).code(), Status::Code::kFailedPrecondition);
  store.reset();

  auto expect_corrupt = [&](const std::vector<PostingListInfo>& dir, const std::string& what) {
    std::vector<PostingListInfo> v1;
    auto s = PostingStore::Open(path_, &v1);
    ASSERT_TRUE(s.ok());
    Status st = (*s)->InitAllocator(dir);
    EXPECT_EQ(st.code(), Status::Code::kCorruption) << what;
    EXPECT_NE(st.message().find(what), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(path_), std::string::npos) << st.message();
    // Nothing can be written or freed without an allocator.
    const auto p = Payload(10, 1);
    EXPECT_EQ((*s)->WriteList(0, p.data(), 10, 1).status().code(),
              Status::Code::kFailedPrecondition);
  };
  std::vector<PostingListInfo> overlap = written;
  overlap[5] = PostingListInfo{written[3].first_page + 1, 1, 0, 100};  // list 3 has 2 pages
  expect_corrupt(overlap, "lists 3 and 5 overlap");
  std::vector<PostingListInfo> nested = written;
  nested[0] = PostingListInfo{written[0].first_page, 8, 0, BytesFor(8)};  // covers lists 1-4
  expect_corrupt(nested, "lists 0 and 1 overlap");
  std::vector<PostingListInfo> outside = written;
  outside[3].first_page = 9;  // the file has pages 0-9
  expect_corrupt(outside, "list 3 at pages [9, 11)");
  std::vector<PostingListInfo> header = written;
  header[4].first_page = 0;
  expect_corrupt(header, "list 4 at pages [0, 1)");
  std::vector<PostingListInfo> mismatch = written;
  mismatch[3].bytes = 10;
  expect_corrupt(mismatch, "list 3 has 2 pages for 10 bytes");
}

TEST_F(PostingStoreTest, AdoptsVersion1FileAndUpgradesItsHeader) {
  WriteV1(40);
  std::vector<PostingListInfo> expected;
  uint64_t v1_bytes = 0;
  {
    auto f = PostingFile::Open(path_);
    ASSERT_TRUE(f.ok());
    for (uint32_t i = 0; i < 40; ++i) expected.push_back((*f)->info(i));
    v1_bytes = (*f)->file_bytes();
  }
  uint32_t data_pages = 0;
  for (const auto& info : expected) data_pages += info.pages;
  const uint32_t meta_pages = 2;  // 40 × 16 directory bytes in one page, then the footer

  for (bool upgrade_first : {false, true}) {
    SCOPED_TRACE(upgrade_first ? "UpgradeHeader before InitAllocator" : "InitAllocator first");
    WriteV1(40);
    std::vector<PostingListInfo> dir;
    auto opened = PostingStore::Open(path_, &dir);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    std::unique_ptr<PostingStore> store = std::move(opened).value();
    EXPECT_EQ(store->header_version(), 1u);
    EXPECT_EQ(store->user_header(), "v1 params");
    EXPECT_EQ(store->entry_bytes(), 12u);
    ASSERT_EQ(dir.size(), expected.size());
    for (uint32_t i = 0; i < dir.size(); ++i) {
      EXPECT_EQ(dir[i].first_page, expected[i].first_page);
      EXPECT_EQ(dir[i].bytes, expected[i].bytes);
      EXPECT_EQ(dir[i].count, 100 + i);
      ExpectList(*store, i, dir[i], 100 + i);
    }
    if (upgrade_first) {
      ASSERT_TRUE(store->UpgradeHeader().ok());
    }
    ASSERT_TRUE(store->InitAllocator(dir).ok());
    if (!upgrade_first) {
      // Until the header is upgraded the file stays a valid version-1 file: its directory and
      // footer are neither free nor overwritten, and no list can be written.
      PostingStoreStats st = store->stats();
      EXPECT_EQ(st.metadata_pages, 1u + meta_pages);
      EXPECT_EQ(st.used_pages, data_pages);
      EXPECT_EQ(st.free_pages, 0u);
      const auto p = Payload(10, 1);
      EXPECT_EQ(store->WriteList(0, p.data(), 10, 1).status().code(),
                Status::Code::kFailedPrecondition);
      EXPECT_EQ(store->Free({data_pages + 1, 1, 0, 1}).code(), Status::Code::kInvalidArgument);
      ASSERT_TRUE(store->TrimTail().ok());
      EXPECT_EQ(FileSize(), v1_bytes);
      EXPECT_TRUE(PostingFile::Open(path_).ok());
      ASSERT_TRUE(store->UpgradeHeader().ok());
    }
    EXPECT_EQ(store->header_version(), 2u);
    EXPECT_EQ(store->UpgradeHeader().code(), Status::Code::kFailedPrecondition);
    PostingStoreStats st = store->stats();
    EXPECT_EQ(st.metadata_pages, 1u);
    EXPECT_EQ(st.free_pages, meta_pages);
    EXPECT_EQ(store->FreeRuns(), (Runs{{data_pages + 1, meta_pages}}));
    ExpectAccounted(*store);
    auto old_reader = PostingFile::Open(path_);
    EXPECT_EQ(old_reader.status().code(), Status::Code::kCorruption);
    EXPECT_NE(old_reader.status().message().find("version 2"), std::string::npos);

    // Rewrite every list copy-on-write; the first new versions land in the old footer's pages.
    for (uint32_t i = 0; i < dir.size(); ++i) {
      const PostingListInfo old = dir[i];
      dir[i] = Write(store.get(), i, 1 + (i + 1) % 3, 500 + i);
      if (i == 0) {
        EXPECT_EQ(dir[i].first_page, data_pages + 1);
      }
      ASSERT_TRUE(store->Free(old).ok());
    }
    ASSERT_TRUE(store->Sync().ok());
    store.reset();

    store = Reopen(dir);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->user_header(), "v1 params");
    EXPECT_EQ(store->layout_tag(), 3u);
    for (uint32_t i = 0; i < dir.size(); ++i) ExpectList(*store, i, dir[i], 500 + i);
    ExpectAccounted(*store);
  }
}

TEST_F(PostingStoreTest, HeaderTornDuringUpgradeOpensAsVersion1) {
  WriteV1(10);
  const std::string v1 = ReadAll(path_);
  {
    std::vector<PostingListInfo> dir;
    auto store = PostingStore::Open(path_, &dir);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->UpgradeHeader().ok());
  }
  const std::string v2 = ReadAll(path_);
  ASSERT_EQ(v1.size(), v2.size());
  ASSERT_NE(v1.substr(0, 4096), v2.substr(0, 4096));
  ASSERT_EQ(v1.substr(4096), v2.substr(4096)) << "the upgrade writes the header page only";

  // Sector-sized tears either way: the version field from one header, the CRC from the other.
  for (size_t cut : {512, 2048, 3584}) {
    for (bool new_first : {true, false}) {
      const std::string& head = new_first ? v2 : v1;
      const std::string& rest = new_first ? v1 : v2;
      WriteAll(path_, head.substr(0, cut) + rest.substr(cut));
      std::vector<PostingListInfo> dir;
      auto store = PostingStore::Open(path_, &dir);
      ASSERT_TRUE(store.ok()) << cut << " " << new_first << ": " << store.status().ToString();
      EXPECT_EQ((*store)->header_version(), 1u);
      ASSERT_EQ(dir.size(), 10u);
      for (uint32_t i = 0; i < dir.size(); ++i) ExpectList(**store, i, dir[i], 100 + i);
      // Redoing the upgrade repairs the header.
      ASSERT_TRUE((*store)->UpgradeHeader().ok());
      store = Status::Internal("closed");
      EXPECT_EQ(ReadAll(path_), v2);
    }
  }
  // A flipped bit in the version field is not a torn upgrade.
  WriteAll(path_, v1);
  FlipByte(kPostingHeaderVersionOffset);
  std::vector<PostingListInfo> dir;
  auto store = PostingStore::Open(path_, &dir);
  EXPECT_EQ(store.status().code(), Status::Code::kCorruption);
  EXPECT_NE(store.status().message().find(path_), std::string::npos);
}

TEST_F(PostingStoreTest, CorruptPageIsCorruptionNamingListPageAndOffset) {
  auto store = CreateStore();
  ASSERT_NE(store, nullptr);
  const PostingListInfo a = Write(store.get(), 6, 2, 1);
  const PostingListInfo b = Write(store.get(), 7, 3, 2);
  ASSERT_TRUE(store->Sync().ok());
  const uint64_t page1_offset = uint64_t{b.first_page + 1} * kPostingPageBytes;
  for (uint64_t pos : {page1_offset + 5, page1_offset + kPostingPagePayload,
                       page1_offset + kPostingPageBytes - 1}) {
    FlipByte(pos);
    std::vector<uint8_t> got;
    Status s = store->ReadList(7, b, &got);
    EXPECT_EQ(s.code(), Status::Code::kCorruption) << pos;
    EXPECT_NE(s.message().find(path_), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("list 7 page 1"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("file offset " + std::to_string(page1_offset)), std::string::npos)
        << s.message();
    FlipByte(pos);
  }
  ExpectList(*store, 7, b, 2);
  // A stale extent (the pages now belong to another list) is caught by the trailer's owner.
  std::vector<uint8_t> got;
  Status s = store->ReadList(7, PostingListInfo{a.first_page, 2, 0, BytesFor(2)}, &got);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("names list 6"), std::string::npos) << s.message();
  EXPECT_EQ(store->ReadList(7, PostingListInfo{b.first_page, 1, 0, BytesFor(3)}, &got).code(),
            Status::Code::kInvalidArgument);
}

TEST_F(PostingStoreTest, OpenChecksFileAndCreateRefusesExistingFile) {
  std::vector<PostingListInfo> dir;
  EXPECT_EQ(PostingStore::Open(dir_ + "/missing", &dir).status().code(), Status::Code::kNotFound);
  auto store = CreateStore();
  ASSERT_NE(store, nullptr);
  const PostingListInfo a = Write(store.get(), 0, 2, 9);
  ASSERT_TRUE(store->Sync().ok());
  store.reset();
  EXPECT_EQ(PostingStore::Create(path_, 1, 1, "").status().code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(PostingStore::Create(dir_ + "/x", 1, 1, std::string(kPostingMaxUserHeader + 1, 'u'))
                .status()
                .code(),
            Status::Code::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_ + "/x.tmp"));

  // A partial page at the end (a crash while the file grew) is cut off at open.
  const std::string good = ReadAll(path_);
  WriteAll(path_, good + std::string(1000, 'z'));
  store = Reopen({a});
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(FileSize(), good.size());
  ExpectList(*store, 0, a, 9);
  store.reset();

  for (const auto& [bytes, what] : std::vector<std::pair<std::string, std::string>>{
           {good.substr(0, 100), "smaller than"},
           {"XXXXXXXX" + good.substr(8), "bad magic"},
           {good.substr(0, 40) + "?" + good.substr(41), "checksum"}}) {
    WriteAll(path_, bytes);
    auto r = PostingStore::Open(path_, &dir);
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << what;
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
  }
  // An unknown version with a valid checksum.
  std::string v3 = good;
  uint8_t page[kPostingPageBytes];
  std::memcpy(page, v3.data(), sizeof(page));
  PostingFileHeader hdr;
  ASSERT_TRUE(DecodePostingHeader(path_, page, &hdr).ok());
  hdr.version = 3;
  EncodePostingHeader(hdr, page);
  v3.replace(0, sizeof(page), reinterpret_cast<const char*>(page), sizeof(page));
  WriteAll(path_, v3);
  auto r = PostingStore::Open(path_, &dir);
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("unsupported version 3"), std::string::npos);
}

// Random writes, frees, trims and restarts against a model of every page's owner; every
// placement must be the one best fit predicts, and every page must be accounted for.
TEST_F(PostingStoreTest, RandomizedAgainstPageModel) {
  std::mt19937 rng(2024);
  auto store = CreateStore(/*force_buffered=*/true);
  ASSERT_NE(store, nullptr);
  std::vector<int> owner = {-2};  // per page: -2 header, -1 free, else list id
  std::map<uint32_t, std::pair<PostingListInfo, uint32_t>> live;  // list -> extent, seed
  uint32_t next_id = 0;

  auto model_runs = [&] {
    Runs runs;
    for (uint32_t p = 1; p < owner.size(); ++p) {
      if (owner[p] != -1) continue;
      if (!runs.empty() && runs.back().first + runs.back().second == p) {
        ++runs.back().second;
      } else {
        runs.emplace_back(p, 1);
      }
    }
    return runs;
  };
  auto expected_first = [&](uint32_t pages) -> uint32_t {
    const Runs runs = model_runs();
    const std::pair<uint32_t, uint32_t>* best = nullptr;
    for (const auto& r : runs) {
      if (r.second >= pages && (best == nullptr || r.second < best->second)) best = &r;
    }
    if (best != nullptr) return best->first;
    if (!runs.empty() && runs.back().first + runs.back().second == owner.size()) {
      return runs.back().first;
    }
    return static_cast<uint32_t>(owner.size());
  };

  for (int step = 0; step < 2000; ++step) {
    const uint32_t op = rng() % 100;
    if (op < 55 || live.empty()) {
      const uint32_t pages = rng() % 10 == 0 ? 1 + rng() % 40 : 1 + rng() % 6;
      const uint32_t id = next_id++;
      const uint32_t seed = rng();
      const uint32_t want = expected_first(pages);
      const PostingListInfo e = Write(store.get(), id, pages, seed);
      ASSERT_EQ(e.first_page, want) << "step " << step << ", " << pages << " pages";
      if (owner.size() < e.first_page + pages) owner.resize(e.first_page + pages, -1);
      for (uint32_t p = e.first_page; p < e.first_page + pages; ++p) {
        ASSERT_EQ(owner[p], -1) << "page " << p << " handed out twice at step " << step;
        owner[p] = static_cast<int>(id);
      }
      live[id] = {e, seed};
    } else if (op < 95) {
      auto it = std::next(live.begin(), static_cast<long>(rng() % live.size()));
      const PostingListInfo e = it->second.first;
      if (rng() % 8 == 0) ExpectList(*store, it->first, e, it->second.second);
      ASSERT_TRUE(store->Free(e).ok());
      for (uint32_t p = e.first_page; p < e.first_page + e.pages; ++p) owner[p] = -1;
      live.erase(it);
    } else if (op < 98) {
      ASSERT_TRUE(store->TrimTail().ok());
      while (owner.size() > 1 && owner.back() == -1) owner.pop_back();
    } else {
      // Restart: the directory of live lists is all the allocator gets back.
      ASSERT_TRUE(store->Sync().ok());
      std::vector<PostingListInfo> dir(next_id);
      for (const auto& [id, v] : live) dir[id] = v.first;
      store.reset();
      store = Reopen(dir, /*force_buffered=*/true);
      ASSERT_NE(store, nullptr);
    }
    const PostingStoreStats st = store->stats();
    ASSERT_EQ(st.file_bytes, owner.size() * kPostingPageBytes) << "step " << step;
    ASSERT_EQ(store->FreeRuns(), model_runs()) << "step " << step;
    uint64_t used = 0;
    for (int o : owner) used += o >= 0;
    ASSERT_EQ(st.used_pages, used) << "step " << step;
    ASSERT_EQ(st.metadata_pages + st.used_pages + st.free_pages, owner.size());
  }
  for (const auto& [id, v] : live) ExpectList(*store, id, v.first, v.second);
}

// The updater's thread writes lists while snapshot releases Free old extents from other threads.
TEST_F(PostingStoreTest, ConcurrentFreeFromSeveralThreadsWhileOneWrites) {
  auto store = CreateStore();
  ASSERT_NE(store, nullptr);
  constexpr int kLists = 1500;
  constexpr int kFreers = 4;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<PostingListInfo> to_free;        // guarded by mu
  std::map<uint32_t, uint32_t> live_extents;  // guarded by mu: first page -> pages, not freed yet
  bool done = false;                          // guarded by mu
  std::atomic<int> free_errors{0};

  std::vector<std::thread> freers;
  for (int t = 0; t < kFreers; ++t) {
    freers.emplace_back([&] {
      for (;;) {
        PostingListInfo e;
        {
          std::unique_lock<std::mutex> lock(mu);
          cv.wait(lock, [&] { return done || !to_free.empty(); });
          if (to_free.empty()) return;
          e = to_free.front();
          to_free.pop_front();
          live_extents.erase(e.first_page);  // before Free: the pages may be reused right after
        }
        if (!store->Free(e).ok()) ++free_errors;
      }
    });
  }
  std::mt19937 rng(77);
  for (int i = 0; i < kLists; ++i) {
    const uint32_t pages = 1 + rng() % 4;
    const PostingListInfo e = Write(store.get(), static_cast<uint32_t>(i), pages, i);
    EXPECT_EQ(e.pages, pages);
    {
      std::lock_guard<std::mutex> lock(mu);
      // The new extent overlaps no extent that has not been freed yet.
      auto next = live_extents.lower_bound(e.first_page);
      if (next != live_extents.end()) {
        EXPECT_GE(next->first, e.first_page + e.pages) << i;
      }
      if (next != live_extents.begin()) {
        const auto prev = std::prev(next);
        EXPECT_LE(prev->first + prev->second, e.first_page) << i;
      }
      live_extents[e.first_page] = e.pages;
    }
    if (i % 16 == 0) ExpectList(*store, static_cast<uint32_t>(i), e, i);
    {
      std::lock_guard<std::mutex> lock(mu);
      to_free.push_back(e);
    }
    cv.notify_one();
    if (HasFailure()) break;  // (the freers are still joined below)
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : freers) t.join();
  EXPECT_EQ(free_errors.load(), 0);
  const PostingStoreStats st = store->stats();
  EXPECT_EQ(st.used_pages, 0u);
  EXPECT_EQ(st.free_runs, st.free_pages > 0 ? 1u : 0u) << "all freed pages coalesced";
  ExpectAccounted(*store);
  ASSERT_TRUE(store->TrimTail().ok());
  EXPECT_EQ(FileSize(), kPostingPageBytes);
}

TEST_F(PostingStoreTest, WorksOnTmpfsWithOrWithoutDirectIo) {
  // /dev/shm is tmpfs: older kernels refuse O_DIRECT there, newer accept it; either way lists are
  // written and read back.
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  std::string tmpl = "/dev/shm/posting_store_test_XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) GTEST_SKIP() << "cannot write /dev/shm";
  const std::string saved_dir = dir_;
  dir_ = tmpl;
  path_ = dir_ + "/postings.vdp";
  {
    auto store = CreateStore();
    ASSERT_NE(store, nullptr);
    std::vector<PostingListInfo> dir;
    for (uint32_t i = 0; i < 5; ++i) dir.push_back(Write(store.get(), i, 1 + i, i));
    ASSERT_TRUE(store->Free(dir[1]).ok());
    dir[1] = Write(store.get(), 1, 1, 42);
    ASSERT_TRUE(store->Sync().ok());
    store.reset();
    store = Reopen(dir);
    ASSERT_NE(store, nullptr);
    for (uint32_t i = 0; i < 5; ++i) ExpectList(*store, i, dir[i], i == 1 ? 42 : i);
  }
  fs::remove_all(dir_);
  dir_ = saved_dir;
}

}  // namespace
}  // namespace vectord::storage
