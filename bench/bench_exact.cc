// Exact-search benchmark: vectord's FlatSearch (uint8 rows, dispatched kernels) against Faiss
// IndexFlatL2 (the same data as float) on the mate/sift set. Prints the machine, then one row per
// configuration: recall@k against gt.ivecs, QPS, p50/p99 latency and the QPS ratio to Faiss, as a
// table and as CSV.
//
// Usage: bench_exact [--data DIR] [--queries N] [--k K] [--threads T] [--csv FILE]
#include <faiss/IndexFlat.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "index/distance.h"
#include "index/flat_search.h"

namespace {

using vectord::bench::CpuModel;
using vectord::bench::Percentile;

using Clock = std::chrono::steady_clock;

// texmex vecs file: per record an int32 dimension, then d elements of T.
template <typename T>
bool ReadVecs(const std::string& path, std::vector<T>* out, size_t* n, uint32_t* dim) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot open %s\n", path.c_str());
    return false;
  }
  int32_t d = 0;
  in.read(reinterpret_cast<char*>(&d), 4);
  if (!in || d <= 0 || d > (1 << 20)) {
    std::fprintf(stderr, "%s: bad dimension %d in the first record\n", path.c_str(), d);
    return false;
  }
  in.seekg(0, std::ios::end);
  const size_t bytes = static_cast<size_t>(in.tellg());
  const size_t rec = 4 + sizeof(T) * static_cast<size_t>(d);
  if (bytes % rec != 0) {
    std::fprintf(stderr, "%s: size %zu is not a multiple of the record size %zu\n", path.c_str(),
                 bytes, rec);
    return false;
  }
  *n = bytes / rec;
  *dim = static_cast<uint32_t>(d);
  out->resize(*n * static_cast<size_t>(d));
  in.seekg(0);
  for (size_t i = 0; i < *n; ++i) {
    int32_t di = 0;
    in.read(reinterpret_cast<char*>(&di), 4);
    in.read(reinterpret_cast<char*>(out->data() + i * d), static_cast<std::streamsize>(rec - 4));
    if (!in || di != d) {
      std::fprintf(stderr, "%s: record %zu is truncated or has dimension %d\n", path.c_str(), i,
                   di);
      return false;
    }
  }
  return true;
}

struct Row {
  std::string name;
  double recall = 0;
  double qps = 0;
  double p50_ms = -1;  // < 0: not measured (batched runs)
  double p99_ms = -1;
  double ratio = 0;  // QPS / QPS of the Faiss row it is compared with
  std::string vs;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(VECTORD_SHARED_DATA) + "/mate/sift";
  size_t max_queries = 1000;
  size_t k = 10;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::string csv_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--data" && v) {
      dir = v, ++i;
    } else if (a == "--queries" && v) {
      max_queries = std::stoul(v), ++i;
    } else if (a == "--k" && v) {
      k = std::stoul(v), ++i;
    } else if (a == "--threads" && v) {
      threads = static_cast<unsigned>(std::stoul(v)), ++i;
    } else if (a == "--csv" && v) {
      csv_path = v, ++i;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--data DIR] [--queries N] [--k K] [--threads T] [--csv FILE]\n",
                   argv[0]);
      return 2;
    }
  }

  std::printf("# bench_exact: exact top-%zu search, vectord FlatSearch vs Faiss IndexFlatL2\n", k);
  std::printf("# cpu: %s\n# cores (hardware threads): %u, threads used for batch: %u\n",
              CpuModel().c_str(), std::thread::hardware_concurrency(), threads);
  std::printf("# vectord kernel level: %s\n", vectord::index::KernelLevel());

  std::vector<uint8_t> base, queries;
  std::vector<int32_t> gt;
  size_t nb = 0, nq = 0, ngt = 0;
  uint32_t dim = 0, qdim = 0, gk = 0;
  if (!ReadVecs(dir + "/base.bvecs", &base, &nb, &dim) ||
      !ReadVecs(dir + "/query.bvecs", &queries, &nq, &qdim) ||
      !ReadVecs(dir + "/gt.ivecs", &gt, &ngt, &gk)) {
    return 1;
  }
  if (qdim != dim || ngt < nq || gk < k) {
    std::fprintf(stderr, "data mismatch: base dim %u, query dim %u, %zu gt rows of %u ids\n", dim,
                 qdim, ngt, gk);
    return 1;
  }
  nq = std::min(nq, max_queries);
  std::printf("# data: %s: %zu base x %u uint8, %zu queries\n", dir.c_str(), nb, dim, nq);

  std::vector<float> base_f(base.begin(), base.end());
  std::vector<float> queries_f(queries.begin(), queries.begin() + nq * dim);

  // Recall with ties: a result counts when its exact distance is <= the k-th true neighbour's.
  std::vector<uint32_t> kth(nq);
  for (size_t q = 0; q < nq; ++q) {
    const size_t id = static_cast<size_t>(gt[q * gk + k - 1]);
    kth[q] = vectord::index::L2SqrU8(&queries[q * dim], &base[id * dim], dim);
  }
  auto recall_of = [&](size_t q, const int64_t* ids, size_t n) {
    size_t ok = 0;
    for (size_t i = 0; i < n && i < k; ++i) {
      if (ids[i] < 0) continue;
      const auto id = static_cast<size_t>(ids[i]);
      ok += vectord::index::L2SqrU8(&queries[q * dim], &base[id * dim], dim) <= kth[q];
    }
    return static_cast<double>(ok) / static_cast<double>(k);
  };
  auto recall_ours = [&](const std::vector<std::vector<vectord::index::Neighbor>>& res) {
    double sum = 0;
    for (size_t q = 0; q < nq; ++q) {
      std::vector<int64_t> ids;
      for (const auto& n : res[q]) ids.push_back(n.row);
      sum += recall_of(q, ids.data(), ids.size());
    }
    return sum / static_cast<double>(nq);
  };

  std::vector<Row> rows;
  const vectord::index::FlatView view_u8{base.data(), nb, dim, vectord::DataType::kUint8,
                                         vectord::Distance::kEuclid};
  const vectord::index::FlatView view_f32{base_f.data(), nb, dim, vectord::DataType::kFloat32,
                                          vectord::Distance::kEuclid};

  // Ours, one query at a time on one thread.
  auto ours_single = [&](const vectord::index::FlatView& view, const char* name) {
    std::vector<std::vector<vectord::index::Neighbor>> res(nq);
    std::vector<double> lat(nq);
    const auto t0 = Clock::now();
    for (size_t q = 0; q < nq; ++q) {
      const auto a = Clock::now();
      res[q] = vectord::index::FlatSearch(view, &queries_f[q * dim], k);
      lat[q] = Seconds(a, Clock::now()) * 1e3;
    }
    const double secs = Seconds(t0, Clock::now());
    rows.push_back({name, recall_ours(res), static_cast<double>(nq) / secs, Percentile(lat, 0.5),
                    Percentile(lat, 0.99), 0, ""});
  };
  auto ours_batch = [&](unsigned t, const std::string& name) {
    const auto t0 = Clock::now();
    const auto res = vectord::index::FlatSearchBatch(view_u8, queries_f.data(), nq, k, {}, t);
    const double secs = Seconds(t0, Clock::now());
    rows.push_back({name, recall_ours(res), static_cast<double>(nq) / secs, -1, -1, 0, ""});
  };

  ours_single(view_u8, "vectord FlatSearch uint8, 1 thread, 1 query/call");
  ours_single(view_f32, "vectord FlatSearch float32, 1 thread, 1 query/call");
  ours_batch(1, "vectord FlatSearchBatch uint8, 1 thread, all queries");
  ours_batch(threads,
             "vectord FlatSearchBatch uint8, " + std::to_string(threads) + " threads, all queries");

  // Faiss IndexFlatL2 on the float copy.
  try {
    faiss::IndexFlatL2 index(static_cast<faiss::Index::idx_t>(dim));
    index.add(static_cast<faiss::Index::idx_t>(nb), base_f.data());
    std::vector<float> dist(nq * k);
    std::vector<faiss::Index::idx_t> ids(nq * k);
    auto total_recall = [&] {
      double sum = 0;
      for (size_t q = 0; q < nq; ++q) sum += recall_of(q, &ids[q * k], k);
      return sum / static_cast<double>(nq);
    };

    omp_set_num_threads(1);
    std::vector<double> lat(nq);
    auto t0 = Clock::now();
    for (size_t q = 0; q < nq; ++q) {
      const auto a = Clock::now();
      index.search(1, &queries_f[q * dim], static_cast<faiss::Index::idx_t>(k), &dist[q * k],
                   &ids[q * k]);
      lat[q] = Seconds(a, Clock::now()) * 1e3;
    }
    double secs = Seconds(t0, Clock::now());
    rows.push_back({"Faiss IndexFlatL2 float32, 1 thread, 1 query/call", total_recall(),
                    static_cast<double>(nq) / secs, Percentile(lat, 0.5), Percentile(lat, 0.99), 1,
                    ""});

    for (unsigned t : {1u, threads}) {
      omp_set_num_threads(static_cast<int>(t));
      t0 = Clock::now();
      index.search(static_cast<faiss::Index::idx_t>(nq), queries_f.data(),
                   static_cast<faiss::Index::idx_t>(k), dist.data(), ids.data());
      secs = Seconds(t0, Clock::now());
      rows.push_back(
          {"Faiss IndexFlatL2 float32, " + std::to_string(t) + " thread(s), all queries (BLAS)",
           total_recall(), static_cast<double>(nq) / secs, -1, -1, 1, ""});
      if (t == threads) break;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "faiss failed: %s\n", e.what());
    return 1;
  }

  // Ratios: single-query rows against Faiss single-query; batch rows against Faiss batch.
  auto find = [&](const std::string& prefix) -> const Row* {
    for (const Row& r : rows) {
      if (r.name.rfind(prefix, 0) == 0) return &r;
    }
    return nullptr;
  };
  const Row* f_single = find("Faiss IndexFlatL2 float32, 1 thread, 1 query");
  const Row* f_batch1 = find("Faiss IndexFlatL2 float32, 1 thread(s), all");
  // Faiss's best batched configuration (on few cores its OpenMP threads and OpenBLAS's threads
  // can fight, so more threads is not always faster).
  const Row* f_batchn = f_batch1;
  for (const Row& r : rows) {
    if (r.name.rfind("Faiss", 0) == 0 && r.name.find("all queries") != std::string::npos &&
        (f_batchn == nullptr || r.qps > f_batchn->qps)) {
      f_batchn = &r;
    }
  }
  for (Row& r : rows) {
    if (r.name.rfind("vectord", 0) != 0) continue;
    const bool batch = r.name.find("all queries") != std::string::npos;
    const bool one = r.name.find(", 1 thread") != std::string::npos;
    const Row* base_row = !batch ? f_single : one ? f_batch1 : f_batchn;
    if (base_row != nullptr && base_row->qps > 0) {
      r.ratio = r.qps / base_row->qps;
      r.vs = base_row->name;
    }
  }

  std::printf("\n%-58s %8s %10s %9s %9s %12s\n", "configuration", "recall", "QPS", "p50 ms",
              "p99 ms", "QPS/Faiss");
  for (const Row& r : rows) {
    char p50[32] = "-", p99[32] = "-", ratio[32] = "-";
    if (r.p50_ms >= 0) std::snprintf(p50, sizeof(p50), "%.3f", r.p50_ms);
    if (r.p99_ms >= 0) std::snprintf(p99, sizeof(p99), "%.3f", r.p99_ms);
    if (!r.vs.empty()) std::snprintf(ratio, sizeof(ratio), "%.2fx", r.ratio);
    std::printf("%-58s %8.4f %10.1f %9s %9s %12s\n", r.name.c_str(), r.recall, r.qps, p50, p99,
                ratio);
  }
  std::printf(
      "# QPS/Faiss: single-query rows vs Faiss single-query; 1-thread batch vs Faiss 1-thread "
      "batch; all-thread batch vs Faiss's best batch\n");

  std::string csv = "configuration,recall_at_k,qps,p50_ms,p99_ms,ratio_to_faiss,compared_with\n";
  for (const Row& r : rows) {
    char line[512];
    std::snprintf(line, sizeof(line), "\"%s\",%.4f,%.1f,%.4f,%.4f,%.3f,\"%s\"\n", r.name.c_str(),
                  r.recall, r.qps, r.p50_ms, r.p99_ms, r.ratio, r.vs.c_str());
    csv += line;
  }
  std::printf("\n%s", csv.c_str());
  if (!csv_path.empty()) {
    std::ofstream out(csv_path);
    out << csv;
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", csv_path.c_str());
      return 1;
    }
  }
  bool exact = true;
  for (const Row& r : rows) exact = exact && r.recall == 1.0;
  if (!exact) std::fprintf(stderr, "WARNING: an exact search returned recall below 1.0\n");
  return exact ? 0 : 1;
}
