// Helpers every benchmark program shares: describing the machine (and its load) in its first
// lines, latency percentiles. Header-only (each bench is one translation unit).
#pragma once

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

namespace vectord::bench {

// "AMD EPYC ..." from /proc/cpuinfo, or "unknown".
inline std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

// "1.23 0.98 0.75": the 1, 5 and 15 minute load averages (/proc/loadavg).
inline std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// The p-quantile (0..1) of v by nearest rank; -1 for an empty set.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace vectord::bench
