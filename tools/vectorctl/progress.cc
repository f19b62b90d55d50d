// Progress line on stderr; see progress.h.
#include "tools/vectorctl/progress.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace vectord::vectorctl {

std::string WithCommas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t c = line.find(':');
      if (c != std::string::npos) return line.substr(line.find_first_not_of(' ', c + 1));
    }
  }
  return "unknown CPU";
}

Progress::Progress(std::string label, std::string unit, size_t total)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      start_(std::chrono::steady_clock::now()),
      tty_(::isatty(STDERR_FILENO) == 1) {
  thread_ = std::thread([this] {
    const auto period = tty_ ? std::chrono::milliseconds(250) : std::chrono::milliseconds(5000);
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, period, [this] { return stop_; })) Draw(false);
  });
}

Progress::~Progress() { Finish(); }

double Progress::ElapsedSeconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::Finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  Draw(true);
}

void Progress::Draw(bool final) {
  const size_t done = done_.load(std::memory_order_relaxed);
  const double secs = ElapsedSeconds();
  const double rate = secs > 0 ? static_cast<double>(done) / secs : 0;
  const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(frac * kWidth + 0.5);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kWidth - filled), '.');
  char eta[32] = "--:--";
  if (rate > 0 && done < total_) {
    const long s = static_cast<long>(static_cast<double>(total_ - done) / rate);
    std::snprintf(eta, sizeof eta, "%ld:%02ld", s / 60, s % 60);
  } else if (done >= total_) {
    std::snprintf(eta, sizeof eta, "0:00");
  }
  std::fprintf(stderr, "%s%s [%s] %s/%s %s %5.1f%% %s %s/s ETA %s%s", tty_ ? "\r" : "",
               label_.c_str(), bar.c_str(), WithCommas(done).c_str(), WithCommas(total_).c_str(),
               unit_.c_str(), 100.0 * frac, WithCommas(static_cast<uint64_t>(rate)).c_str(),
               unit_.c_str(), eta, (tty_ && !final) ? "   " : "\n");
  std::fflush(stderr);
}

}  // namespace vectord::vectorctl
