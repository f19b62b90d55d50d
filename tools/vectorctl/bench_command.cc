// `vectorctl bench`: runs a query set against a running server at several concurrency levels and
// reports recall@k against ground truth, QPS and client-side latency percentiles (table + CSV).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "storage/dataset_io.h"
#include "tools/vectorctl/commands.h"
#include "tools/vectorctl/http_client.h"
#include "tools/vectorctl/point_body.h"
#include "tools/vectorctl/progress.h"

namespace vectord::vectorctl {
namespace {

struct LevelResult {
  unsigned concurrency = 0;
  size_t queries = 0;
  double recall = 0;
  double qps = 0;
  double mean_ms = 0, p50_ms = 0, p95_ms = 0, p99_ms = 0, max_ms = 0;
};

// Ids of the points in a query/search response: {"result":{"points":[{"id":..}]}} (query API)
// or {"result":[{"id":..}]} (search API). UUID ids cannot match row-number ground truth: -1.
Status ParseIds(const std::string& body, std::vector<int64_t>* ids) {
  ids->clear();
  try {
    const auto j = nlohmann::json::parse(body);
    const nlohmann::json* pts = nullptr;
    if (j.contains("result")) {
      const auto& res = j["result"];
      if (res.is_array()) {
        pts = &res;
      } else if (res.is_object() && res.contains("points") && res["points"].is_array()) {
        pts = &res["points"];
      }
    }
    if (pts == nullptr) {
      return Status::Internal("response has no result points: " + body.substr(0, 200));
    }
    for (const auto& p : *pts) {
      const auto& id = p.at("id");
      ids->push_back(id.is_number_integer() ? id.get<int64_t>() : -1);
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("cannot parse response: ") + e.what() + ": " +
                            body.substr(0, 200));
  }
  return Status::OK();
}

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  const size_t i = std::min(sorted.size() - 1,
                            static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size())));
  return sorted[i];
}

}  // namespace

int RunBench(const BenchOptions& o) {
  auto fail = [](const Status& st) {
    std::fprintf(stderr, "vectorctl bench: %s\n", st.ToString().c_str());
    return 1;
  };
  auto qr = storage::DatasetReader::Open(o.queries);
  if (!qr.ok()) return fail(qr.status());
  auto url = ParseUrl(o.url);
  if (!url.ok()) return fail(url.status());
  const storage::DatasetInfo& qi = (*qr)->info();
  size_t nq = o.limit_queries ? std::min(o.limit_queries, qi.n) : qi.n;
  if (nq == 0) return fail(Status::InvalidArgument("no queries in '" + o.queries + "'"));
  // Ground truth is optional: without it (or with a filter, which the unfiltered truth does not
  // describe) recall is not reported.
  const bool filtered = !o.filter.empty() || !o.filters.empty();
  if (!o.filter.empty() && !o.filters.empty()) {
    return fail(Status::InvalidArgument("give --filter or --filters, not both"));
  }
  std::vector<int32_t> gt;
  size_t gt_dim = 0;
  if (!o.gt.empty()) {
    auto gr = storage::DatasetReader::Open(o.gt);
    if (!gr.ok()) return fail(gr.status());
    const storage::DatasetInfo& gi = (*gr)->info();
    if (gi.type != storage::ElementType::kInt32) {
      return fail(Status::InvalidArgument("ground truth '" + o.gt + "' must be .ivecs or .ibin"));
    }
    if (gi.n < nq) {
      return fail(Status::InvalidArgument("ground truth '" + o.gt + "' has " +
                                          std::to_string(gi.n) + " rows, fewer than the " +
                                          std::to_string(nq) + " queries"));
    }
    if (gi.dim < o.k) {
      return fail(Status::InvalidArgument("ground truth '" + o.gt + "' has top-" +
                                          std::to_string(gi.dim) +
                                          ", less than k=" + std::to_string(o.k)));
    }
    gt_dim = gi.dim;
    gt.resize(nq * gi.dim);
    if (Status st = (*gr)->ReadRaw(0, nq, gt.data()); !st.ok()) return fail(st);
  }
  const bool with_recall = !gt.empty() && !filtered;
  // Filters: validated here, so that a typo fails before any request.
  std::vector<std::string> filter_lines;
  auto add_filter = [&](const std::string& text, const std::string& where) -> Status {
    try {
      const auto j = nlohmann::json::parse(text);
      if (!j.is_object())
        return Status::InvalidArgument(where + ": a filter must be a JSON object");
      filter_lines.push_back(j.dump());
    } catch (const std::exception& e) {
      return Status::InvalidArgument(where + ": not JSON: " + e.what());
    }
    return Status::OK();
  };
  if (!o.filter.empty()) {
    if (Status st = add_filter(o.filter, "--filter"); !st.ok()) return fail(st);
  } else if (!o.filters.empty()) {
    std::ifstream in(o.filters);
    if (!in) return fail(Status::IOError("cannot open filters file '" + o.filters + "'"));
    std::string line;
    for (size_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      if (Status st = add_filter(line, o.filters + " line " + std::to_string(n)); !st.ok()) {
        return fail(st);
      }
    }
    if (filter_lines.empty()) {
      return fail(Status::InvalidArgument("filters file '" + o.filters + "' has no filters"));
    }
  }
  std::vector<char> qrows(nq * qi.row_bytes());
  if (Status st = (*qr)->ReadRaw(0, nq, qrows.data()); !st.ok()) return fail(st);
  // One body per (query, filter) pair the run sends: request r uses query r mod nq and filter
  // r mod (number of filters).
  const size_t repeat = std::max<size_t>(1, o.repeat);
  const size_t nreq = nq * repeat;
  const size_t nbodies = filter_lines.empty() ? nq : std::lcm(nq, filter_lines.size());
  std::vector<std::string> bodies(std::min(nbodies, std::max(nq, nreq)));
  for (size_t b = 0; b < bodies.size(); ++b) {
    const size_t q = b % nq;
    AppendQueryBody(&bodies[b], qi.type, qi.dim, qrows.data() + q * qi.row_bytes(), o.k, o.exact,
                    o.with_payload,
                    filter_lines.empty() ? std::string_view{}
                                         : std::string_view(filter_lines[b % filter_lines.size()]));
  }
  const std::string target = "/collections/" + o.collection + "/points/query";

  std::printf(
      "# vectorctl bench: %s collection '%s', %zu queries x %u %s from %s, k=%zu%s%s%s, "
      "%zu requests per level\n",
      o.url.c_str(), o.collection.c_str(), nq, qi.dim, storage::ElementTypeName(qi.type),
      o.queries.c_str(), o.k, o.exact ? ", exact" : "", o.with_payload ? ", with payload" : "",
      filter_lines.empty() ? ""
                           : (", " + std::to_string(filter_lines.size()) + " filter(s)").c_str(),
      nreq);
  std::printf("# client machine: %u cores, %s\n", std::thread::hardware_concurrency(),
              CpuModel().c_str());
  std::fflush(stdout);

  std::vector<LevelResult> results;
  for (unsigned c : o.concurrency) {
    c = std::max(1u, c);
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::mutex mu;
    Status error;  // guarded by mu
    std::vector<double> lat_ms(nreq, 0);
    std::vector<double> recall(nreq, 0);
    std::atomic<size_t> warm_next{0};
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::chrono::steady_clock::time_point t0;
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < c; ++t) {
      threads.emplace_back([&] {
        auto record_error = [&](Status st) {
          std::lock_guard<std::mutex> lock(mu);
          if (error.ok()) error = std::move(st);
          failed = true;
        };
        HttpClient client(*url);
        // Warm-up: connections open, server caches warm; not measured.
        for (size_t w; !failed && (w = warm_next.fetch_add(1)) < o.warmup;) {
          auto r = client.Request("POST", target, bodies[w % bodies.size()]);
          if (!r.ok()) return record_error(r.status());
          if (r->status / 100 != 2) return record_error(Status::Internal(DescribeHttpError(*r)));
        }
        ready.fetch_add(1);
        while (!go.load()) std::this_thread::yield();
        std::vector<int64_t> ids;
        for (size_t q; !failed && (q = next.fetch_add(1)) < nreq;) {
          const auto s = std::chrono::steady_clock::now();
          auto r = client.Request("POST", target, bodies[q % bodies.size()]);
          const auto e = std::chrono::steady_clock::now();
          if (!r.ok()) return record_error(r.status());
          if (r->status / 100 != 2) {
            return record_error(
                Status::Internal("query " + std::to_string(q) + ": " + DescribeHttpError(*r)));
          }
          lat_ms[q] = std::chrono::duration<double, std::milli>(e - s).count();
          if (Status st = ParseIds(r->body, &ids); !st.ok()) {
            return record_error(st.WithContext("query " + std::to_string(q)));
          }
          if (!with_recall) continue;
          const int32_t* g = gt.data() + (q % nq) * gt_dim;
          std::unordered_set<int64_t> truth(g, g + o.k);
          size_t hit = 0;
          for (size_t i = 0; i < std::min(ids.size(), o.k); ++i) hit += truth.count(ids[i]);
          recall[q] = static_cast<double>(hit) / static_cast<double>(o.k);
        }
      });
    }
    while (ready.load() < c && !failed) std::this_thread::yield();
    t0 = std::chrono::steady_clock::now();
    go = true;
    for (auto& t : threads) t.join();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (failed) {
      std::lock_guard<std::mutex> lock(mu);
      return fail(error.WithContext("concurrency " + std::to_string(c)));
    }
    LevelResult lr;
    lr.concurrency = c;
    lr.queries = nreq;
    lr.qps = static_cast<double>(nreq) / secs;
    double sum_lat = 0, sum_rec = 0;
    for (size_t q = 0; q < nreq; ++q) {
      sum_lat += lat_ms[q];
      sum_rec += recall[q];
    }
    lr.recall = with_recall ? sum_rec / static_cast<double>(nreq) : -1;
    lr.mean_ms = sum_lat / static_cast<double>(nreq);
    std::sort(lat_ms.begin(), lat_ms.end());
    lr.p50_ms = Percentile(lat_ms, 50);
    lr.p95_ms = Percentile(lat_ms, 95);
    lr.p99_ms = Percentile(lat_ms, 99);
    lr.max_ms = lat_ms.back();
    std::fprintf(stderr, "bench: concurrency %u: %zu queries in %.2f s\n", c, nreq, secs);
    results.push_back(lr);
  }

  std::printf("%11s %8s %9s %10s %9s %9s %9s %9s %9s\n", "concurrency", "queries",
              ("recall@" + std::to_string(o.k)).c_str(), "QPS", "mean_ms", "p50_ms", "p95_ms",
              "p99_ms", "max_ms");
  // recall is -1 (printed "-", empty in CSV) when not measured: no --gt, or a filter.
  for (const auto& r : results) {
    char rec[32];
    if (r.recall < 0) {
      std::snprintf(rec, sizeof rec, "-");
    } else {
      std::snprintf(rec, sizeof rec, "%.4f", r.recall);
    }
    std::printf("%11u %8zu %9s %10.1f %9.3f %9.3f %9.3f %9.3f %9.3f\n", r.concurrency, r.queries,
                rec, r.qps, r.mean_ms, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms);
  }
  if (!o.csv.empty()) {
    std::string csv =
        "concurrency,queries,k,exact,recall,qps,mean_ms,p50_ms,p95_ms,p99_ms,max_ms\n";
    char line[256];
    for (const auto& r : results) {
      char rec[32] = "";
      if (r.recall >= 0) std::snprintf(rec, sizeof rec, "%.6f", r.recall);
      std::snprintf(line, sizeof line, "%u,%zu,%zu,%d,%s,%.2f,%.4f,%.4f,%.4f,%.4f,%.4f\n",
                    r.concurrency, r.queries, o.k, o.exact ? 1 : 0, rec, r.qps, r.mean_ms, r.p50_ms,
                    r.p95_ms, r.p99_ms, r.max_ms);
      csv += line;
    }
    if (o.csv == "-") {
      std::printf("\n%s", csv.c_str());
    } else {
      std::ofstream f(o.csv, std::ios::trunc);
      f << csv;
      if (!f) return fail(Status::IOError("cannot write CSV file '" + o.csv + "'"));
      std::fprintf(stderr, "bench: wrote %s\n", o.csv.c_str());
    }
  }
  return 0;
}

}  // namespace vectord::vectorctl
