// Prometheus metrics of the HTTP server (see metrics.h).
#include "server/metrics.h"

#include <algorithm>

#include "server/response.h"
#include "src/search/query_planner.h"

namespace vectord::server {

void Metrics::Record(const std::string& route, unsigned status, double seconds) {
  requests_.fetch_add(1, std::memory_order_relaxed);
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  std::lock_guard<std::mutex> lock(mu_);
  RouteStats& s = routes_[route];
  ++s.by_status[status];
  ++s.buckets[b];
  s.sum += seconds;
  ++s.count;
}

void Metrics::AppendText(std::string* out) const {
  *out += "# HELP vectord_http_requests_in_flight HTTP requests received and not yet answered.\n";
  *out += "# TYPE vectord_http_requests_in_flight gauge\n";
  *out += "vectord_http_requests_in_flight ";
  AppendUint(out, static_cast<uint64_t>(std::max(0, in_flight())));
  *out += '\n';
  *out += "# HELP vectord_memory_trims_total Times freed heap memory was given back to the OS.\n";
  *out += "# TYPE vectord_memory_trims_total counter\nvectord_memory_trims_total ";
  AppendUint(out, trims_.load(std::memory_order_relaxed));
  *out +=
      "\n# HELP vectord_memory_trim_released_bytes_total Resident bytes those trims released.\n";
  *out += "# TYPE vectord_memory_trim_released_bytes_total counter\n";
  *out += "vectord_memory_trim_released_bytes_total ";
  AppendUint(out, trim_released_.load(std::memory_order_relaxed));
  *out += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  *out += "# HELP vectord_http_requests_total HTTP requests by route and status code.\n";
  *out += "# TYPE vectord_http_requests_total counter\n";
  for (const auto& [route, s] : routes_) {
    for (const auto& [status, n] : s.by_status) {
      *out += "vectord_http_requests_total{route=\"" + route + "\",status=\"" +
              std::to_string(status) + "\"} ";
      AppendUint(out, n);
      *out += '\n';
    }
  }
  *out += "# HELP vectord_http_request_duration_seconds HTTP request latency by route.\n";
  *out += "# TYPE vectord_http_request_duration_seconds histogram\n";
  for (const auto& [route, s] : routes_) {
    uint64_t cum = 0;
    const std::string prefix = "vectord_http_request_duration_seconds_bucket{route=\"" + route;
    for (size_t b = 0; b <= kBuckets.size(); ++b) {
      cum += s.buckets[b];
      *out += prefix + "\",le=\"";
      if (b < kBuckets.size()) {
        AppendDouble(out, kBuckets[b]);
      } else {
        *out += "+Inf";
      }
      *out += "\"} ";
      AppendUint(out, cum);
      *out += '\n';
    }
    *out += "vectord_http_request_duration_seconds_sum{route=\"" + route + "\"} ";
    AppendDouble(out, s.sum);
    *out += "\nvectord_http_request_duration_seconds_count{route=\"" + route + "\"} ";
    AppendUint(out, s.count);
    *out += '\n';
  }
  AppendSearchPlanMetrics(out);  // searches by query plan (src/query_planner.h)
}

}  // namespace vectord::server
