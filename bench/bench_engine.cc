// Embedded search latency: the same queries `vectorctl bench` sends over HTTP, run in-process
// through Collection::Search (one thread, one query at a time), so that the HTTP overhead is
// the difference of the two p50s (bench/http_bench.sh runs both). Prints recall@k, QPS,
// p50/p99 and the process's peak RSS.
//
// Usage: bench_engine [--data DIR] [--k K] [--work DIR]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "storage/dataset_io.h"
#include "vectord/database.h"

namespace {

using Clock = std::chrono::steady_clock;

int Fail(const vectord::Status& s) {
  std::fprintf(stderr, "bench_engine: %s\n", s.ToString().c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vectord;
  std::string data = VECTORD_SHARED_DATA "/mate/sift";
  std::string work = "/tmp/vectord_bench_engine";
  size_t k = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--data") data = argv[i + 1];
    if (a == "--k") k = std::stoul(argv[i + 1]);
    if (a == "--work") work = argv[i + 1];
  }
  auto base = storage::DatasetReader::Open(data + "/base.bvecs");
  auto queries = storage::DatasetReader::Open(data + "/query.bvecs");
  auto gt = storage::DatasetReader::Open(data + "/gt.ivecs");
  if (!base.ok()) return Fail(base.status());
  if (!queries.ok()) return Fail(queries.status());
  if (!gt.ok()) return Fail(gt.status());
  const auto& bi = (*base)->info();
  std::filesystem::remove_all(work);
  DatabaseOptions o;
  o.data_dir = work;
  auto db = Database::Open(o);
  if (!db.ok()) return Fail(db.status());
  CollectionConfig cfg;
  cfg.dim = bi.dim;
  cfg.distance = Distance::kEuclid;
  cfg.datatype = DataType::kUint8;
  cfg.fsync = false;
  if (Status s = (*db)->CreateCollection("sift", cfg); !s.ok()) return Fail(s);
  auto coll = (*db)->GetCollection("sift").value();
  const size_t batch = 10000;
  std::vector<float> rows(batch * bi.dim);
  const auto t_load = Clock::now();
  for (size_t first = 0; first < bi.n; first += batch) {
    const size_t n = std::min(batch, bi.n - first);
    if (Status s = (*base)->ReadFloat(first, n, rows.data()); !s.ok()) return Fail(s);
    std::vector<PointStruct> pts(n);
    for (size_t i = 0; i < n; ++i) {
      pts[i].id = PointId::Num(first + i);
      pts[i].vector.assign(rows.begin() + i * bi.dim, rows.begin() + (i + 1) * bi.dim);
    }
    auto r = coll->Upsert(std::move(pts), false);
    if (!r.ok()) return Fail(r.status());
  }
  const double load_s = std::chrono::duration<double>(Clock::now() - t_load).count();
  const auto& qi = (*queries)->info();
  std::vector<float> q(qi.n * qi.dim);
  if (Status s = (*queries)->ReadFloat(0, qi.n, q.data()); !s.ok()) return Fail(s);
  std::vector<int32_t> truth(gt->get()->info().n * gt->get()->info().dim);
  if (Status s = (*gt)->ReadRaw(0, (*gt)->info().n, truth.data()); !s.ok()) return Fail(s);
  const size_t gt_dim = (*gt)->info().dim;
  std::vector<double> lat;
  size_t hits = 0;
  const auto t0 = Clock::now();
  for (size_t i = 0; i < qi.n; ++i) {
    SearchRequest req;
    req.vector.assign(q.begin() + i * qi.dim, q.begin() + (i + 1) * qi.dim);
    req.limit = k;
    const auto ts = Clock::now();
    auto res = coll->Search(req);
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - ts).count());
    if (!res.ok()) return Fail(res.status());
    std::set<int32_t> t(truth.begin() + i * gt_dim, truth.begin() + i * gt_dim + k);
    for (const auto& p : *res) hits += t.count(static_cast<int32_t>(p.id.num()));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::sort(lat.begin(), lat.end());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("engine: %zu x %u loaded in %.2f s (%.0f points/s, in-process, no fsync)\n", bi.n,
              bi.dim, load_s, bi.n / load_s);
  std::printf("%-34s %9s %9s %9s %9s %12s\n", "configuration", "recall", "QPS", "p50_ms", "p99_ms",
              "peak_rss_MB");
  std::printf("%-34s %9.4f %9.1f %9.3f %9.3f %12.1f\n", "Collection::Search, 1 thread",
              double(hits) / (qi.n * k), qi.n / secs, lat[lat.size() / 2],
              lat[lat.size() * 99 / 100], ru.ru_maxrss / 1024.0);
  std::printf("csv,engine_search,%.4f,%.1f,%.4f,%.4f,%.1f\n", double(hits) / (qi.n * k),
              qi.n / secs, lat[lat.size() / 2], lat[lat.size() * 99 / 100], ru.ru_maxrss / 1024.0);
  std::filesystem::remove_all(work);
  return 0;
}
