// IoReader implementations: UringReader (one io_uring, a sliding window of at most queue_depth
// reads in flight) and PreadReader (a small pool of threads doing blocking preads).
#include "storage/io_reader.h"

#include <liburing.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vectord::storage {
namespace {

constexpr uint32_t kMaxQueueDepth = 32768;  // IORING_MAX_ENTRIES

uint64_t PagesOf(uint32_t length) { return (uint64_t{length} + 4095) / 4096; }

std::string Describe(const IoReader::Request& r) {
  return "fd " + std::to_string(r.fd) + ": read of " + std::to_string(r.length) +
         " bytes at offset " + std::to_string(r.offset);
}

Status ReadError(const IoReader::Request& r, int err, uint32_t done) {
  if (err == EINVAL && done > 0) {
    // An O_DIRECT read continued after a short read at an unaligned end of file.
    return Status::Corruption(Describe(r) + ": end of file after " + std::to_string(done) +
                              " bytes");
  }
  std::string msg = Describe(r) + ": " + std::strerror(err);
  if (err == EINVAL) msg += " (O_DIRECT needs 4096-aligned offset, length and buffer)";
  return Status::IOError(msg);
}

Status EofError(const IoReader::Request& r, uint32_t done) {
  return Status::Corruption(Describe(r) + ": end of file after " + std::to_string(done) + " bytes");
}

// ---------------------------------------------------------------------------------------------
class UringReader final : public IoReader {
 public:
  UringReader() = default;
  ~UringReader() override {
    if (initialized_) io_uring_queue_exit(&ring_);
  }

  // Returns 0 or -errno from io_uring_queue_init.
  int Init(uint32_t queue_depth) {
    queue_depth_ = queue_depth;
    std::memset(&ring_, 0, sizeof(ring_));
    int rc = io_uring_queue_init(queue_depth, &ring_, 0);
    initialized_ = rc == 0;
    return rc;
  }

  bool uses_io_uring() const override { return true; }

  Status ReadBatch(Request* reqs, size_t n, const BatchCallbacks& cb) override {
    if (broken_) return Status::IOError("io_uring reader is unusable after a submission error");
    done_.assign(n, 0);
    retry_.clear();
    ready_.clear();
    size_t next = 0;
    uint32_t inflight = 0;
    Status err;
    uint64_t pages = 0;
    bool overlapped = !cb.in_flight;  // the in_flight work has run (or there is none)
    while (true) {
      // Keep up to queue_depth_ reads in flight: continuations first, then new requests.
      while (err.ok() && inflight < queue_depth_) {
        size_t i;
        if (!retry_.empty()) {
          i = retry_.back();
        } else if (next < n) {
          i = next;
          if (reqs[i].length == 0) {
            ++next;
            if (cb.on_read) ready_.push_back(i);  // nothing to read: complete at once
            continue;
          }
        } else {
          break;
        }
        io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
        if (sqe == nullptr) break;
        const Request& r = reqs[i];
        io_uring_prep_read(sqe, r.fd, static_cast<uint8_t*>(r.buf) + done_[i], r.length - done_[i],
                           r.offset + done_[i]);
        io_uring_sqe_set_data64(sqe, i);
        if (!retry_.empty()) {
          retry_.pop_back();
        } else {
          ++next;
        }
        ++inflight;
      }
      if (!overlapped || !ready_.empty()) {
        // Get the prepared reads going, then do the caller's work while they are in flight.
        int rc = io_uring_submit(&ring_);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
          broken_ = true;
          return Status::IOError(std::string("io_uring submit failed: ") + std::strerror(-rc));
        }
        if (!overlapped) {
          overlapped = true;
          if (err.ok()) err = cb.in_flight();
        }
        for (size_t i : ready_) {
          if (!err.ok()) break;
          err = cb.on_read(i);
        }
        ready_.clear();
        continue;
      }
      if (inflight == 0) break;

      int rc = io_uring_submit_and_wait(&ring_, 1);
      if (rc < 0) {
        if (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY) continue;
        // Reads may still be in flight into the caller's buffers: this reader must not be used
        // again, and the ring is torn down only in the destructor (after the kernel finishes).
        broken_ = true;
        return Status::IOError(std::string("io_uring submit failed: ") + std::strerror(-rc));
      }
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        ++seen;
        --inflight;
        const size_t i = static_cast<size_t>(io_uring_cqe_get_data64(cqe));
        const int res = cqe->res;
        const Request& r = reqs[i];
        if (res < 0) {
          if (res == -EINTR || res == -EAGAIN) {
            if (err.ok()) retry_.push_back(i);
          } else if (err.ok()) {
            err = ReadError(r, -res, done_[i]);
          }
        } else if (res == 0) {
          if (err.ok()) err = EofError(r, done_[i]);
        } else {
          done_[i] += static_cast<uint32_t>(res);
          if (done_[i] < r.length) {
            if (err.ok()) retry_.push_back(i);  // short read: continue where it stopped
          } else {
            pages += PagesOf(r.length);
            if (cb.on_read) ready_.push_back(i);
          }
        }
      }
      io_uring_cq_advance(&ring_, seen);
    }
    pages_read_ += pages;
    if (err.ok()) ++batches_;
    return err;
  }

 private:
  io_uring ring_;
  bool initialized_ = false;
  bool broken_ = false;
  uint32_t queue_depth_ = 0;
  std::vector<uint32_t> done_;  // bytes read so far, per request of the current batch
  std::vector<size_t> retry_;   // requests to (re)submit from done_[i]
  std::vector<size_t> ready_;   // requests complete whose on_read has not run yet
};

// ---------------------------------------------------------------------------------------------
class PreadReader final : public IoReader {
 public:
  explicit PreadReader(unsigned threads) : threads_(threads == 0 ? 1 : threads) {}
  ~PreadReader() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : workers_) t.join();
  }

  bool uses_io_uring() const override { return false; }

  Status ReadBatch(Request* reqs, size_t n, const BatchCallbacks& cb) override {
    VECTORD_RETURN_IF_ERROR(ReadAll(reqs, n));
    // Blocking reads: the caller's work runs after them (correct, without the overlap).
    if (cb.in_flight) VECTORD_RETURN_IF_ERROR(cb.in_flight());
    if (cb.on_read) {
      for (size_t i = 0; i < n; ++i) VECTORD_RETURN_IF_ERROR(cb.on_read(i));
    }
    return Status::OK();
  }

 private:
  Status ReadAll(Request* reqs, size_t n) {
    if (n == 0) {
      ++batches_;
      return Status::OK();
    }
    reqs_ = reqs;
    n_ = n;
    next_.store(0);
    failed_.store(false);
    pages_.store(0);
    err_ = Status::OK();
    if (threads_ > 1 && n > 1) {
      if (workers_.empty()) {
        for (unsigned t = 1; t < threads_; ++t) workers_.emplace_back([this] { WorkerLoop(); });
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        active_ = static_cast<unsigned>(workers_.size());
        ++generation_;
      }
      work_cv_.notify_all();
      Work();
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [this] { return active_ == 0; });
    } else {
      Work();
    }
    pages_read_ += pages_.load();
    std::lock_guard<std::mutex> lock(mu_);
    if (err_.ok()) ++batches_;
    return err_;
  }

  void WorkerLoop() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      work_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      lock.unlock();
      Work();
      lock.lock();
      if (--active_ == 0) done_cv_.notify_one();
    }
  }

  void Work() {
    while (!failed_.load(std::memory_order_relaxed)) {
      const size_t i = next_.fetch_add(1);
      if (i >= n_) return;
      Status s = ReadOne(reqs_[i]);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        if (err_.ok()) err_ = s;
        failed_.store(true);
      } else {
        pages_.fetch_add(PagesOf(reqs_[i].length), std::memory_order_relaxed);
      }
    }
  }

  static Status ReadOne(const Request& r) {
    uint32_t done = 0;
    while (done < r.length) {
      ssize_t got = ::pread(r.fd, static_cast<uint8_t*>(r.buf) + done, r.length - done,
                            static_cast<off_t>(r.offset + done));
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return ReadError(r, errno, done);
      }
      if (got == 0) return EofError(r, done);
      done += static_cast<uint32_t>(got);
    }
    return Status::OK();
  }

  const unsigned threads_;
  std::vector<std::thread> workers_;  // started on the first batch that can use them

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  bool stop_ = false;        // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_; bumped once per batch
  unsigned active_ = 0;      // guarded by mu_; workers still on the current batch
  Status err_;               // guarded by mu_ while a batch runs; first error of the batch

  // Current batch: written by the caller before the generation bump (published by mu_).
  Request* reqs_ = nullptr;
  size_t n_ = 0;
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> pages_{0};
};

}  // namespace

Result<std::unique_ptr<IoReader>> IoReader::Create(const IoReaderOptions& options) {
  if (options.queue_depth == 0 || options.queue_depth > kMaxQueueDepth) {
    return Status::InvalidArgument("io reader: queue_depth " + std::to_string(options.queue_depth) +
                                   " must be in [1, " + std::to_string(kMaxQueueDepth) + "]");
  }
  if (!options.force_pread) {
    auto uring = std::make_unique<UringReader>();
    if (uring->Init(options.queue_depth) == 0) return std::unique_ptr<IoReader>(std::move(uring));
    // io_uring refused (seccomp, EPERM, ENOSYS, io_uring_disabled, memlock): fall back.
  }
  return std::unique_ptr<IoReader>(std::make_unique<PreadReader>(options.pread_threads));
}

}  // namespace vectord::storage
