// Request metrics for /metrics (Prometheus text format 0.0.4): request counts by route and HTTP
// status, and a latency histogram per route. Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace vectord::server {

class Metrics {
 public:
  // Upper bounds of the latency buckets, seconds.
  static constexpr std::array<double, 14> kBuckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

  // `route` is a label such as "POST /collections/{name}/points/search".
  void Record(const std::string& route, unsigned status, double seconds);

  // Requests whose header has arrived and that are not answered yet (a graceful shutdown waits
  // for them; /metrics exports the gauge, the request reading it included).
  void RequestBegun() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  void RequestEnded() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }
  int in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // Requests answered so far (every route and status).
  uint64_t requests() const { return requests_.load(std::memory_order_relaxed); }
  // A trim of the allocator's free memory that shrank the resident set by `released` bytes
  // (server/memory_trim.h).
  void RecordTrim(uint64_t released) {
    trims_.fetch_add(1, std::memory_order_relaxed);
    trim_released_.fetch_add(released, std::memory_order_relaxed);
  }

  // Appends the Prometheus text of every series to out.
  void AppendText(std::string* out) const;

 private:
  struct RouteStats {
    std::map<unsigned, uint64_t> by_status;
    std::array<uint64_t, kBuckets.size() + 1> buckets{};  // last = +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  std::atomic<int> in_flight_{0};
  std::atomic<uint64_t> requests_{0}, trims_{0}, trim_released_{0};
  mutable std::mutex mu_;
  std::map<std::string, RouteStats> routes_;  // guarded by mu_
};

}  // namespace vectord::server
