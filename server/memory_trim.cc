// MemoryTrimmer (see memory_trim.h).
#include "server/memory_trim.h"

#include <unistd.h>

#include <cstdio>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vectord::server {
namespace {

// Resident set size of this process in bytes (/proc/self/statm), 0 if unreadable.
uint64_t ResidentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  const int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

MemoryTrimmer::MemoryTrimmer(Metrics* metrics, std::chrono::milliseconds interval)
    : metrics_(metrics), interval_(interval) {
  if (interval_.count() > 0) thread_ = std::thread([this] { Loop(); });
}

MemoryTrimmer::~MemoryTrimmer() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t MemoryTrimmer::TrimOnce() {
#if defined(__GLIBC__)
  const uint64_t before = ResidentBytes();
  ::malloc_trim(0);
  const uint64_t after = ResidentBytes();
  return before > after ? before - after : 0;
#else
  return 0;
#endif
}

void MemoryTrimmer::Loop() {
  uint64_t seen = metrics_->requests();
  std::unique_lock<std::mutex> l(mu_);
  while (!cv_.wait_for(l, interval_, [this] { return stop_; })) {
    const uint64_t now = metrics_->requests();
    if (now == seen) continue;  // idle: nothing was allocated since the last trim
    seen = now;
    l.unlock();
    metrics_->RecordTrim(TrimOnce());
    l.lock();
  }
}

}  // namespace vectord::server
