// End-to-end SPANN benchmark: builds (or reuses) an index of a dataset in a directory, then sweeps
// nprobe / eps / rerank and prints recall@10, QPS (1 thread and N threads), p50/p99 latency,
// SSD pages per query, RAM and disk bytes per vector and build speed, as a table and as CSV.
// Reads use O_DIRECT, so the page cache does not hide SSD reads.
//
//   bench_spann [--base F] [--query F] [--gt F] [--dir D] [--layout pq4|pq8|full] [--rebuild]
//               [--nav tree|brute|hnsw] [--centroids f16|f32] [--nprobe 8,16,32] [--eps 0.6]
//               [--rerank 32,64]
//               [--threads N] [--build-threads N] [--target N] [--closure 0.15] [--rng 1.0]
//               [--expected-replicas R]
//               [--pq-m M] [--csv F] [--navbench] [--cache-mb MB]
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "index/balanced_kmeans.h"
#include "index/centroid_graph.h"
#include "index/distance.h"
#include "index/fast_scan.h"
#include "src/spann/spann_builder.h"
#include "src/spann/spann_index.h"
#include "src/vectors/vector_source.h"
#include "storage/dataset_io.h"
#include "storage/vector_file.h"

using namespace vectord;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string x;
  while (std::getline(ss, x, ',')) out.push_back(x);
  return out;
}

double PeakRssMb() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

bool Exists(const std::string& p) {
  struct stat sb;
  return ::stat(p.c_str(), &sb) == 0;
}

void Die(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.ToString().c_str());
  std::exit(1);
}

// Measures the centroid navigation kinds on C rows of the base set taken as centroids.
void NavBench(const VectorSource& src, const std::vector<float>& queries, uint32_t dim) {
  std::printf("\n# centroid navigation: %zu queries, top-32, rows of the base set as centroids\n",
              queries.size() / dim);
  std::printf("%8s %6s %10s %10s %10s %12s\n", "C", "kind", "build_s", "us/query", "recall@32",
              "ram_MB");
  for (uint32_t c : {10000u, 30000u, 100000u}) {
    if (c > src.rows()) break;
    std::vector<uint8_t> raw(size_t{c} * src.row_bytes());
    if (auto s = src.Read(0, c, raw.data()); !s.ok()) Die(s);
    std::vector<float> cents(size_t{c} * dim);
    index::RowsToFloat(raw.data(), c, dim, src.dtype(), cents.data());
    // Groups for the tree: k-means of the "centroids" into sqrt(C) groups, sorted by group.
    std::vector<float> gc;
    {
      auto km = index::HierarchicalKMeans(cents.data(), c, dim, {c, 0, 10, 1});
      if (!km.ok()) Die(km.status());
      // Use the first level only: regroup rows by nearest group centroid.
      gc = km->group_centroids;
    }
    const uint32_t ng = static_cast<uint32_t>(gc.size() / dim);
    std::vector<uint32_t> lab(c);
    if (auto s = index::AssignNearest(cents.data(), c, gc.data(), ng, dim, lab.data(), nullptr);
        !s.ok())
      Die(s);
    std::vector<uint32_t> order(c);
    for (uint32_t i = 0; i < c; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return lab[a] < lab[b]; });
    std::vector<float> sorted(cents.size());
    std::vector<uint32_t> group(c);
    for (uint32_t i = 0; i < c; ++i) {
      std::copy(&cents[size_t{order[i]} * dim], &cents[size_t{order[i] + 1} * dim],
                &sorted[size_t{i} * dim]);
      group[i] = lab[order[i]];
    }
    const size_t nq = queries.size() / dim;
    std::vector<std::vector<index::CentroidHit>> truth(nq);
    for (auto kind : {index::CentroidIndexKind::kBruteForce, index::CentroidIndexKind::kTree,
                      index::CentroidIndexKind::kHnsw}) {
      auto t0 = Clock::now();
      auto ci = index::CentroidIndex::Build(kind, sorted.data(), c, dim, group, gc);
      if (!ci.ok()) Die(ci.status());
      const double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
      std::vector<index::CentroidHit> hits;
      index::CentroidSearchParams sp;
      t0 = Clock::now();
      size_t found = 0;
      for (size_t i = 0; i < nq; ++i) {
        (*ci)->Search(&queries[i * dim], 32, sp, &hits);
        if (kind == index::CentroidIndexKind::kBruteForce) {
          truth[i] = hits;
        } else {
          for (const auto& h : hits) {
            for (const auto& t : truth[i]) found += (t.id == h.id);
          }
        }
      }
      const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / nq;
      const double rec = kind == index::CentroidIndexKind::kBruteForce ? 1.0 : found / (32.0 * nq);
      std::printf("%8u %6s %10.2f %10.1f %10.3f %12.1f\n", c, index::CentroidIndexKindName(kind),
                  build_s, us, rec, (*ci)->MemoryBytes() / 1048576.0);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = VECTORD_SHARED_DATA "/mate/sift";
  std::string base, query, gt, dir, csv, layout = "pq4", nav = "tree", centroids = "f16";
  std::string nprobes = "8,16,32,64", epss = "0.6", reranks = "32,64,128";
  unsigned threads = std::thread::hardware_concurrency() * 2;
  unsigned build_threads = 0;  // 0 = every hardware thread
  bool rebuild = false, navbench = false;
  double cache_mb = 0;  // RAM cache of hot posting lists (SpannOpenOptions::cache_bytes)
  uint32_t target = 0, pq_m = 0;
  float closure = -1, rng = -1, expected_replicas = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data")
      data = next();
    else if (a == "--base")
      base = next();
    else if (a == "--query")
      query = next();
    else if (a == "--gt")
      gt = next();
    else if (a == "--dir")
      dir = next();
    else if (a == "--csv")
      csv = next();
    else if (a == "--layout")
      layout = next();
    else if (a == "--nav")
      nav = next();
    else if (a == "--centroids")
      centroids = next();
    else if (a == "--nprobe")
      nprobes = next();
    else if (a == "--eps")
      epss = next();
    else if (a == "--rerank")
      reranks = next();
    else if (a == "--threads")
      threads = std::stoul(next());
    else if (a == "--build-threads")
      build_threads = std::stoul(next());
    else if (a == "--target")
      target = std::stoul(next());
    else if (a == "--pq-m")
      pq_m = std::stoul(next());
    else if (a == "--closure")
      closure = std::stof(next());
    else if (a == "--rng")
      rng = std::stof(next());
    else if (a == "--expected-replicas")
      expected_replicas = std::stof(next());
    else if (a == "--rebuild")
      rebuild = true;
    else if (a == "--navbench")
      navbench = true;
    else if (a == "--cache-mb")
      cache_mb = std::stod(next());
    else {
      std::fprintf(stderr, "unknown option %s (see the header of bench/bench_spann.cc)\n",
                   a.c_str());
      return 2;
    }
  }
  if (base.empty()) base = data + "/base.bvecs";
  if (query.empty())
    query = data + (Exists(data + "/query.bvecs") ? "/query.bvecs" : "/query.fvecs");
  if (gt.empty()) gt = data + "/gt.ivecs";
  if (dir.empty()) dir = "/tmp/vectord_bench_spann_" + layout;

  index::PostingLayout lay = layout == "full"  ? index::PostingLayout::kFull
                             : layout == "pq8" ? index::PostingLayout::kPq8
                                               : index::PostingLayout::kPq4;
  auto src_r = OpenDatasetSource(base);
  if (!src_r.ok()) Die(src_r.status());
  const VectorSource& src = **src_r;
  const uint32_t dim = src.dim();
  std::printf("# bench_spann: base %s (%llu x %u %s), kernels %s, fast-scan %s, %u hw threads\n",
              base.c_str(), static_cast<unsigned long long>(src.rows()), dim,
              DataTypeName(src.dtype()), index::KernelLevel(), index::FastScanLevel(),
              std::thread::hardware_concurrency());

  // Queries and ground truth.
  auto qr = storage::DatasetReader::Open(query);
  if (!qr.ok()) Die(qr.status());
  const size_t nq = (*qr)->info().n;
  std::vector<float> queries(nq * dim);
  if (auto s = (*qr)->ReadFloat(0, nq, queries.data()); !s.ok()) Die(s);
  auto gr = storage::DatasetReader::Open(gt);
  if (!gr.ok()) Die(gr.status());
  const uint32_t gdim = (*gr)->info().dim;
  std::vector<int32_t> truth(nq * gdim);
  if (auto s = (*gr)->ReadRaw(0, nq, truth.data()); !s.ok()) Die(s);

  if (navbench) {
    NavBench(src, queries, dim);
    return 0;
  }

  // The vector file the re-ranker reads (a collection has one; here it is made from the dataset).
  ::mkdir(dir.c_str(), 0755);
  const std::string vfile = dir + "/vectors.vdv";
  {
    auto vf = storage::VectorFile::Open(vfile, dim, src.dtype());
    if (!vf.ok()) Die(vf.status());
    if ((*vf)->rows() != src.rows()) {
      if (auto s = (*vf)->Truncate(0); !s.ok()) Die(s);
      std::vector<uint8_t> buf;
      for (uint64_t f = 0; f < src.rows(); f += 65536) {
        const uint64_t n = std::min<uint64_t>(65536, src.rows() - f);
        buf.resize(n * src.row_bytes());
        if (auto s = src.Read(f, n, buf.data()); !s.ok()) Die(s);
        if (auto s = (*vf)->Append(buf.data(), n); !s.ok()) Die(s);
      }
      if (auto s = (*vf)->Sync(); !s.ok()) Die(s);
    }
  }

  double build_s = 0;
  std::string build_json = "(reused)";
  if (rebuild || !Exists(dir + "/" + kSpannCentroidFile)) {
    SpannBuildParams bp;
    bp.layout = lay;
    bp.navigation = nav == "brute"  ? index::CentroidIndexKind::kBruteForce
                    : nav == "hnsw" ? index::CentroidIndexKind::kHnsw
                                    : index::CentroidIndexKind::kTree;
    bp.target_list_entries = target;
    bp.centroid_precision =
        centroids == "f32" ? index::CentroidPrecision::kF32 : index::CentroidPrecision::kF16;
    bp.pq_m = pq_m;
    if (closure >= 0) bp.assign.closure_eps = closure;
    if (rng >= 0) bp.assign.rng_factor = rng;
    if (expected_replicas > 0) bp.expected_replicas = expected_replicas;
    bp.threads = build_threads;
    const unsigned build_cores =
        build_threads != 0 ? build_threads : std::thread::hardware_concurrency();
    rusage ru0{};
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t last = 0;
    auto st = BuildSpannIndex(src, dir, bp, [&](uint64_t done, uint64_t total) {
      if (done - last >= total / 10 || done == total) {
        std::fprintf(stderr, "\r  assigning %llu / %llu", static_cast<unsigned long long>(done),
                     static_cast<unsigned long long>(total));
        last = done;
      }
    });
    std::fprintf(stderr, "\n");
    if (!st.ok()) Die(st.status());
    build_s = st->seconds_total;
    build_json = st->ToJson();
    rusage ru1{};
    getrusage(RUSAGE_SELF, &ru1);
    auto secs = [](const timeval& a, const timeval& b) {
      return double(b.tv_sec - a.tv_sec) + double(b.tv_usec - a.tv_usec) * 1e-6;
    };
    std::printf(
        "# build: %.1f s, %.0f vectors/s/core (%u build threads), RAM formula %.1f MB, "
        "CPU user %.1f s, system %.1f s\n",
        build_s, src.rows() / build_s / build_cores, build_cores, st->ram_formula_bytes / 1048576.0,
        secs(ru0.ru_utime, ru1.ru_utime), secs(ru0.ru_stime, ru1.ru_stime));
    std::printf("# build stats %s\n", build_json.c_str());
  }
  SpannOpenOptions oo;
  oo.vector_file = vfile;
  oo.cache_bytes = static_cast<size_t>(cache_mb * 1048576.0);
  auto idx_r = SpannIndex::Open(dir, oo);
  if (!idx_r.ok()) Die(idx_r.status());
  const SpannIndex& idx = **idx_r;
  std::printf(
      "# index: %s, %u lists, direct_io %d, resident RAM %.1f MB = %.2f B/vector, "
      "posting file %.1f MB = %.1f B/vector (+ vector file %u B/vector)\n",
      idx.meta().build_info.c_str(), idx.num_lists(), idx.direct_io() ? 1 : 0,
      idx.ResidentBytes() / 1048576.0, static_cast<double>(idx.ResidentBytes()) / idx.rows(),
      idx.PostingFileBytes() / 1048576.0, static_cast<double>(idx.PostingFileBytes()) / idx.rows(),
      static_cast<unsigned>(src.row_bytes() + 4));
  std::printf("# list cache: %.1f MB = %.2f B/vector\n", idx.CacheBytes() / 1048576.0,
              static_cast<double>(idx.CacheBytes()) / idx.rows());

  FILE* csvf = csv.empty() ? nullptr : std::fopen(csv.c_str(), "w");
  const char* header =
      "layout,nprobe,eps,rerank,recall10,qps1,qpsN,threads,p50_us,p99_us,pages_q,rerank_pages_q,"
      "lists_q,cands_q,us_nav,us_io,us_scan,us_rerank,ram_B_per_vec,disk_B_per_vec,peak_rss_MB";
  if (csvf) std::fprintf(csvf, "%s\n", header);
  std::printf("%-6s %6s %5s %6s %8s %8s %8s %7s %7s %7s %7s %6s %7s %6s %6s %6s %6s\n", "layout",
              "nprobe", "eps", "rerank", "recall", "QPS1", "QPSN", "p50us", "p99us", "pages",
              "rr_pg", "lists", "cands", "nav", "io", "scan", "rerank");
  for (const auto& np : Split(nprobes)) {
    for (const auto& ep : Split(epss)) {
      for (const auto& rr : Split(reranks)) {
        if (lay == index::PostingLayout::kFull && rr != Split(reranks)[0]) continue;
        SpannSearchParams sp;
        sp.nprobe = std::stoul(np);
        sp.eps = std::stof(ep);
        sp.rerank = std::stoul(rr);
        std::vector<double> lat(nq);
        SpannSearchStats total;
        size_t hit = 0;
        auto t0 = Clock::now();
        for (size_t i = 0; i < nq; ++i) {
          SpannSearchStats st;
          auto r = idx.Search(&queries[i * dim], 10, sp, &st);
          if (!r.ok()) Die(r.status());
          lat[i] = st.us_total;
          total.Add(st);
          for (const auto& nb : *r) {
            for (uint32_t g = 0; g < 10 && g < gdim; ++g)
              hit += (truth[i * gdim + g] == static_cast<int32_t>(nb.row));
          }
        }
        const double qps1 = nq / std::chrono::duration<double>(Clock::now() - t0).count();
        // All threads: queries handed out by an atomic counter.
        std::atomic<size_t> next{0};
        t0 = Clock::now();
        std::vector<std::thread> pool;
        for (unsigned t = 0; t < threads; ++t) {
          pool.emplace_back([&]() {
            for (size_t i; (i = next.fetch_add(1)) < nq;) {
              auto r = idx.Search(&queries[i * dim], 10, sp);
              if (!r.ok()) Die(r.status());
            }
          });
        }
        for (auto& th : pool) th.join();
        const double qpsn = nq / std::chrono::duration<double>(Clock::now() - t0).count();
        std::sort(lat.begin(), lat.end());
        const double recall = static_cast<double>(hit) / (10.0 * nq);
        const double p50 = lat[nq / 2], p99 = lat[std::min(nq - 1, nq * 99 / 100)];
        const double ram = static_cast<double>(idx.ResidentBytes()) / idx.rows();
        const double disk = static_cast<double>(idx.PostingFileBytes()) / idx.rows();
        std::printf(
            "%-6s %6u %5.2f %6u %8.4f %8.0f %8.0f %7.0f %7.0f %7.1f %7.1f %6.1f %7.0f %6.0f %6.0f "
            "%6.0f %6.0f\n",
            layout.c_str(), sp.nprobe, sp.eps, sp.rerank, recall, qps1, qpsn, p50, p99,
            double(total.pages_read) / nq, double(total.rerank_pages) / nq,
            double(total.lists_probed) / nq, double(total.candidates) / nq, total.us_navigate / nq,
            total.us_io / nq, total.us_scan / nq, total.us_rerank / nq);
        std::fflush(stdout);
        if (csvf) {
          std::fprintf(csvf,
                       "%s,%u,%.3f,%u,%.4f,%.1f,%.1f,%u,%.1f,%.1f,%.2f,%.2f,%.2f,%.1f,%.1f,%.1f,%."
                       "1f,%.1f,%.2f,%.2f,%.1f\n",
                       layout.c_str(), sp.nprobe, sp.eps, sp.rerank, recall, qps1, qpsn, threads,
                       p50, p99, double(total.pages_read) / nq, double(total.rerank_pages) / nq,
                       double(total.lists_probed) / nq, double(total.candidates) / nq,
                       total.us_navigate / nq, total.us_io / nq, total.us_scan / nq,
                       total.us_rerank / nq, ram, disk, PeakRssMb());
        }
      }
    }
  }
  if (csvf) std::fclose(csvf);
  std::printf("# peak RSS %.1f MB\n", PeakRssMb());
  return 0;
}
