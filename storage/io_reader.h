// IoReader: batched positional reads for the search path — all posting lists of a query in one
// io_uring submission (O_DIRECT descriptors), with a pread thread-pool fallback where io_uring is
// refused (seccomp, EPERM, ENOSYS, io_uring_disabled) or forced by options.
//
// Threading: an IoReader is NOT thread-safe. Use one per search thread (e.g. a thread_local
// std::unique_ptr<IoReader>); creating one is cheap (one io_uring_queue_init: a few syscalls and
// two small mmaps; the pread fallback starts its threads lazily on the first batch).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "vectord/status.h"

namespace vectord::storage {

struct IoReaderOptions {
  // io_uring submission-queue entries = the most reads in flight at once (default 64). A batch
  // larger than this is kept flowing: a new read is submitted as each one completes.
  uint32_t queue_depth = 64;
  // Use the pread thread pool even where io_uring works (tests, benchmarks). Default false.
  bool force_pread = false;
  // Reads in flight at once in the pread fallback: the calling thread plus pread_threads - 1
  // workers (default 4; 1 = synchronous preads in the caller).
  unsigned pread_threads = 4;
};

class IoReader {
 public:
  // For O_DIRECT descriptors offset, length and buf must be 4096-aligned (AlignedBuffer).
  struct Request {
    int fd;
    uint64_t offset;
    uint32_t length;
    void* buf;
  };

  static Result<std::unique_ptr<IoReader>> Create(const IoReaderOptions& options);
  virtual ~IoReader() = default;
  IoReader(const IoReader&) = delete;
  IoReader& operator=(const IoReader&) = delete;

  // Reads every request fully; returns when all have completed. All-or-error: on failure the
  // first error is returned (naming fd, offset and length) after every read already in flight
  // has finished, so the buffers are never written after return. Short reads are continued;
  // a read that reaches end of file before `length` bytes is Corruption. Zero-length requests
  // are allowed and do nothing.
  Status ReadBatch(Request* reqs, size_t n) { return ReadBatch(reqs, n, BatchCallbacks{}); }

  // Work that overlaps the reads, both run on the calling thread. `in_flight` runs once, after the
  // first reads are submitted (work that needs no read: scanning cached lists); `on_read(i)` runs
  // once request i is complete, before the batch returns: the io_uring reader calls it as each
  // read completes (in completion order), the pread fallback after the whole batch (in index
  // order). A callback's error stops the batch: no new read is submitted, no callback runs again,
  // reads in flight finish, and ReadBatch returns that error. Empty functions are skipped.
  struct BatchCallbacks {
    std::function<Status()> in_flight;
    std::function<Status(size_t)> on_read;
  };
  virtual Status ReadBatch(Request* reqs, size_t n, const BatchCallbacks& cb) = 0;

  virtual bool uses_io_uring() const = 0;
  // 4 KiB units read successfully since creation (length rounded up to pages), for benchmarks.
  uint64_t pages_read() const { return pages_read_; }
  // Batches completed successfully since creation.
  uint64_t batches() const { return batches_; }

 protected:
  IoReader() = default;
  uint64_t pages_read_ = 0;
  uint64_t batches_ = 0;
};

}  // namespace vectord::storage
