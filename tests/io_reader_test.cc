// Tests for IoReader (storage/io_reader.h): random batches checked against the file's bytes,
// with io_uring and with the pread pool, O_DIRECT and buffered, batches larger than the queue,
// end-of-file and bad-descriptor errors.
#include "storage/io_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <liburing.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "storage/aligned_buffer.h"

namespace vectord::storage {
namespace {

namespace fs = std::filesystem;

constexpr size_t kFilePages = 1024;  // 4 MiB
constexpr size_t kFileBytes = kFilePages * 4096;

// A shared 4 MiB random file, its bytes in memory as the model.
class IoReaderEnv {
 public:
  static IoReaderEnv& Get() {
    static IoReaderEnv env;
    return env;
  }
  std::string dir, path;
  std::vector<uint8_t> bytes;
  int buffered_fd = -1;
  int direct_fd = -1;  // O_DIRECT where the filesystem allows it, else buffered
  bool direct = false;

 private:
  IoReaderEnv() {
    std::string tmpl = ::testing::TempDir() + "io_reader_test_XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    dir = tmpl;
    path = dir + "/data";
    std::mt19937_64 rng(1234);
    bytes.resize(kFileBytes);
    for (size_t i = 0; i < kFileBytes; i += 8) {
      uint64_t v = rng();
      std::memcpy(&bytes[i], &v, 8);
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || ::write(fd, bytes.data(), kFileBytes) != static_cast<ssize_t>(kFileBytes)) {
      std::abort();
    }
    ::fsync(fd);
    ::close(fd);
    buffered_fd = ::open(path.c_str(), O_RDONLY);
    direct_fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
    direct = direct_fd >= 0;
    if (!direct) direct_fd = ::open(path.c_str(), O_RDONLY);
    std::printf("test file %s: O_DIRECT %s\n", path.c_str(), direct ? "on" : "refused");
  }
  ~IoReaderEnv() {
    ::close(buffered_fd);
    ::close(direct_fd);
    fs::remove_all(dir);
  }
};

// (force_pread, queue_depth / pread threads)
class IoReaderTest : public ::testing::TestWithParam<std::tuple<bool, uint32_t>> {
 protected:
  std::unique_ptr<IoReader> MakeReader() {
    IoReaderOptions o;
    o.force_pread = std::get<0>(GetParam());
    o.queue_depth = std::get<1>(GetParam());
    o.pread_threads = std::get<1>(GetParam());
    auto r = IoReader::Create(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (o.force_pread) {
      EXPECT_FALSE((*r)->uses_io_uring());
    }
    return std::move(r).value();
  }
};

// Random batches of page-aligned reads (each up to 16 pages, the batch up to 3x the queue depth
// and beyond), compared with the model bytes; then unaligned reads through the buffered fd.
TEST_P(IoReaderTest, RandomBatchesMatchFileBytes) {
  IoReaderEnv& env = IoReaderEnv::Get();
  auto reader = MakeReader();
  std::mt19937 rng(std::get<1>(GetParam()) * 2 + std::get<0>(GetParam()));
  uint64_t expected_pages = 0;
  for (int round = 0; round < 30; ++round) {
    const size_t n = 1 + rng() % (3 * std::get<1>(GetParam()) + 20);
    std::vector<AlignedBuffer> bufs;
    std::vector<IoReader::Request> reqs;
    bufs.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t pages = (i % 7 == 6) ? 0 : 1 + rng() % 16;  // some zero-length requests
      const uint64_t first = rng() % (kFilePages - 16);
      bufs.emplace_back(size_t{pages} * 4096);
      bufs.back().Fill(0xAB);
      reqs.push_back({env.direct_fd, first * 4096, pages * 4096, bufs.back().data()});
      expected_pages += pages;
    }
    Status s = reader->ReadBatch(reqs.data(), reqs.size());
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (size_t i = 0; i < n; ++i) {
      if (reqs[i].length == 0) continue;
      ASSERT_EQ(std::memcmp(bufs[i].data(), &env.bytes[reqs[i].offset], reqs[i].length), 0)
          << "round " << round << " request " << i << " offset " << reqs[i].offset;
    }
  }
  EXPECT_EQ(reader->pages_read(), expected_pages);

  // Buffered descriptor: any offset, length and buffer.
  for (int round = 0; round < 10; ++round) {
    const size_t n = 1 + rng() % 100;
    std::vector<std::vector<uint8_t>> bufs(n);
    std::vector<IoReader::Request> reqs;
    for (size_t i = 0; i < n; ++i) {
      const uint32_t len = 1 + rng() % 20000;
      const uint64_t off = rng() % (kFileBytes - len + 1);
      bufs[i].resize(len + 1);
      reqs.push_back({env.buffered_fd, off, len, bufs[i].data() + 1});
    }
    ASSERT_TRUE(reader->ReadBatch(reqs.data(), n).ok());
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::memcmp(bufs[i].data() + 1, &env.bytes[reqs[i].offset], reqs[i].length), 0);
    }
  }
  ASSERT_TRUE(reader->ReadBatch(nullptr, 0).ok());
}

TEST_P(IoReaderTest, ReadingPastEndOfFileIsAnError) {
  IoReaderEnv& env = IoReaderEnv::Get();
  auto reader = MakeReader();
  AlignedBuffer a(8192), b(8192), c(4096);
  for (int fd : {env.direct_fd, env.buffered_fd}) {
    // Entirely past the end, and straddling it; mixed with a good read in the same batch.
    for (uint64_t off :
         {uint64_t{kFileBytes}, uint64_t{kFileBytes} + 40960, uint64_t{kFileBytes} - 4096}) {
      IoReader::Request reqs[2] = {{fd, 0, 4096, c.data()}, {fd, off, 8192, a.data()}};
      Status s = reader->ReadBatch(reqs, 2);
      EXPECT_EQ(s.code(), Status::Code::kCorruption) << "offset " << off << ": " << s.ToString();
      EXPECT_NE(s.message().find("offset " + std::to_string(off)), std::string::npos)
          << s.message();
      EXPECT_NE(s.message().find("end of file"), std::string::npos) << s.message();
    }
  }
  // The reader stays usable after an error.
  IoReader::Request ok{env.direct_fd, kFileBytes - 8192, 8192, b.data()};
  ASSERT_TRUE(reader->ReadBatch(&ok, 1).ok());
  EXPECT_EQ(std::memcmp(b.data(), &env.bytes[kFileBytes - 8192], 8192), 0);
}

TEST_P(IoReaderTest, BadDescriptorNamesFdAndOffset) {
  auto reader = MakeReader();
  AlignedBuffer a(4096);
  std::vector<IoReader::Request> reqs(50, IoReader::Request{987654, 12288, 4096, a.data()});
  Status s = reader->ReadBatch(reqs.data(), reqs.size());
  EXPECT_EQ(s.code(), Status::Code::kIOError);
  EXPECT_NE(s.message().find("fd 987654"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("offset 12288"), std::string::npos) << s.message();
}

TEST_P(IoReaderTest, UnalignedDirectReadIsAnErrorNotGarbage) {
  IoReaderEnv& env = IoReaderEnv::Get();
  if (!env.direct) GTEST_SKIP() << "filesystem refuses O_DIRECT";
  auto reader = MakeReader();
  AlignedBuffer a(8192);
  IoReader::Request req{env.direct_fd, 100, 4096, a.data()};
  Status s = reader->ReadBatch(&req, 1);
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("aligned"), std::string::npos) << s.message();
}

// The callbacks: in_flight once, on_read once per request with its bytes already in place (also
// for zero-length requests and batches larger than the queue), and a callback's error stops the
// batch and is returned.
TEST_P(IoReaderTest, CallbacksSeeEachCompletedReadOnce) {
  IoReaderEnv& env = IoReaderEnv::Get();
  auto reader = MakeReader();
  std::mt19937 rng(77 + std::get<1>(GetParam()));
  for (int round = 0; round < 20; ++round) {
    const size_t n = rng() % (3 * std::get<1>(GetParam()) + 10);
    std::vector<AlignedBuffer> bufs;
    std::vector<IoReader::Request> reqs;
    bufs.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t pages = (i % 5 == 4) ? 0 : 1 + rng() % 8;
      bufs.emplace_back(std::max<size_t>(4096, size_t{pages} * 4096));
      reqs.push_back(
          {env.direct_fd, (rng() % (kFilePages - 8)) * 4096, pages * 4096, bufs.back().data()});
    }
    std::vector<int> seen(n, 0);
    int in_flight_calls = 0;
    IoReader::BatchCallbacks cb;
    cb.in_flight = [&]() -> Status {
      ++in_flight_calls;
      return Status::OK();
    };
    cb.on_read = [&](size_t i) -> Status {
      if (i >= n) return Status::Internal("index out of range");
      ++seen[i];
      if (std::memcmp(bufs[i].data(), &env.bytes[reqs[i].offset], reqs[i].length) != 0) {
        return Status::Internal("bytes not in place at the callback");
      }
      return Status::OK();
    };
    Status s = reader->ReadBatch(reqs.data(), reqs.size(), cb);
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(in_flight_calls, 1);
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << "round " << round << " request " << i;
  }

  // An error from a callback ends the batch with that error; the reader stays usable.
  std::vector<AlignedBuffer> bufs;
  std::vector<IoReader::Request> reqs;
  bufs.reserve(40);
  for (size_t i = 0; i < 40; ++i) {
    bufs.emplace_back(4096);
    reqs.push_back({env.direct_fd, i * 4096, 4096, bufs.back().data()});
  }
  int calls = 0;
  IoReader::BatchCallbacks fail;
  fail.on_read = [&](size_t) -> Status {
    ++calls;
    return Status::Corruption("stop here");
  };
  Status s = reader->ReadBatch(reqs.data(), reqs.size(), fail);
  EXPECT_EQ(s.code(), Status::Code::kCorruption) << s.ToString();
  EXPECT_EQ(calls, 1);
  IoReader::BatchCallbacks fail_early;
  fail_early.in_flight = [] { return Status::IOError("no"); };
  fail_early.on_read = [&](size_t) -> Status {
    ++calls;
    return Status::OK();
  };
  EXPECT_EQ(reader->ReadBatch(reqs.data(), reqs.size(), fail_early).code(), Status::Code::kIOError);
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(reader->ReadBatch(reqs.data(), reqs.size()).ok());
  EXPECT_EQ(std::memcmp(bufs[39].data(), &env.bytes[39 * 4096], 4096), 0);
}

INSTANTIATE_TEST_SUITE_P(Engines, IoReaderTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(1u, 4u, 64u)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "Pread" : "Uring") +
                                  "Depth" + std::to_string(std::get<1>(info.param));
                         });

// Whether this kernel and its seccomp policy let a process set up an io_uring (probed here with
// liburing directly, independently of IoReader).
bool KernelAllowsIoUring() {
  io_uring ring;
  if (io_uring_queue_init(8, &ring, 0) != 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

TEST(IoReaderCreate, DefaultUsesIoUringWhereTheKernelAllowsIt) {
  auto r = IoReader::Create(IoReaderOptions{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->uses_io_uring(), KernelAllowsIoUring());
  IoReaderOptions forced;
  forced.force_pread = true;
  auto p = IoReader::Create(forced);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_FALSE((*p)->uses_io_uring());
  IoReaderOptions bad;
  bad.queue_depth = 0;
  EXPECT_EQ(IoReader::Create(bad).status().code(), Status::Code::kInvalidArgument);
}

TEST(IoReaderCreate, ManyReadersCanCoexist) {
  // One reader per search thread: creating many must be cheap and must not exhaust anything.
  // All 32 exist at once, each takes the engine the kernel allows, and each reads correctly
  // while the others are alive (interleaved: reader i reads page i % 16).
  IoReaderEnv& env = IoReaderEnv::Get();
  const bool uring = KernelAllowsIoUring();
  std::vector<std::unique_ptr<IoReader>> readers;
  for (int i = 0; i < 32; ++i) {
    auto r = IoReader::Create(IoReaderOptions{});
    ASSERT_TRUE(r.ok()) << i << ": " << r.status().ToString();
    EXPECT_EQ((*r)->uses_io_uring(), uring) << i;
    readers.push_back(std::move(r).value());
  }
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < readers.size(); ++i) {
      AlignedBuffer buf(4096);
      const uint64_t page = (i + round * 7) % 16;
      IoReader::Request req{env.direct_fd, page * 4096, 4096, buf.data()};
      ASSERT_TRUE(readers[i]->ReadBatch(&req, 1).ok()) << i;
      EXPECT_EQ(std::memcmp(buf.data(), &env.bytes[page * 4096], 4096), 0) << i;
    }
  }
}

}  // namespace
}  // namespace vectord::storage
