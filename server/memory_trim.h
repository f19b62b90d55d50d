// Returns heap memory that queries freed to the operating system. glibc's allocator keeps freed
// chunks in its arenas (one per thread that allocated, up to 8 per core): per-query buffers of a
// burst of filtered searches stay resident after the burst. Every `interval` in which requests
// arrived, a background thread calls malloc_trim(0), which gives the free pages of every arena
// back (madvise), and records what the resident set shrank by. No-op where the C library is not
// glibc.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/metrics.h"

namespace vectord::server {

class MemoryTrimmer {
 public:
  // interval 0: never trims (no thread).
  MemoryTrimmer(Metrics* metrics, std::chrono::milliseconds interval);
  ~MemoryTrimmer();  // stops and joins the thread
  MemoryTrimmer(const MemoryTrimmer&) = delete;
  MemoryTrimmer& operator=(const MemoryTrimmer&) = delete;

  // Trims now; returns the bytes the resident set shrank by (0 if it did not).
  static uint64_t TrimOnce();

 private:
  void Loop();
  Metrics* metrics_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace vectord::server
