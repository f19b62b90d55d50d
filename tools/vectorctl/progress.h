// A progress line on stderr for long vectorctl jobs (done/total, %, rate, ETA), redrawn in place
// on a terminal and printed every few seconds otherwise, from a background thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>

namespace vectord::vectorctl {

class Progress {
 public:
  // `unit` names what is counted ("points", "queries"). Starts the reporting thread.
  Progress(std::string label, std::string unit, size_t total);
  ~Progress();  // stops the thread (calls Finish if not called)
  void Add(size_t n) { done_.fetch_add(n, std::memory_order_relaxed); }
  // Draws the final state and ends the line.
  void Finish();
  double ElapsedSeconds() const;

 private:
  void Draw(bool final);
  std::string label_, unit_;
  size_t total_;
  std::atomic<size_t> done_{0};
  std::chrono::steady_clock::time_point start_;
  bool tty_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

// "12,345,678"
std::string WithCommas(uint64_t v);
// "Intel(R) Xeon(R) ... (16 cores)" from /proc/cpuinfo and the hardware concurrency.
std::string CpuModel();

}  // namespace vectord::vectorctl
