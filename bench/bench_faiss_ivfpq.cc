// Peer baseline: Faiss IVF-PQ in RAM, in its strongest documented configuration, on a texmex
// dataset directory (base.bvecs, query.bvecs, gt.ivecs). This is the Faiss row that vectord's SPANN
// index is compared with (issue 3, docs/benchmarks.md).
//
// Index: IndexIVFPQFastScan (4-bit PQ codes in the SIMD fast-scan layout, "IVF{nlist},PQ{M}x4fs")
// wrapped in IndexRefine, which re-ranks the best k * k_factor candidates with exact distances.
// Two refine stores are measured: IndexFlatL2 (float32, Faiss's IndexRefineFlat, "...,RFlat") and
// IndexScalarQuantizer QT_8bit_direct, which holds uint8 data exactly in 1 byte per dimension (so
// its re-ranking distances are exact too, at a quarter of the RAM). Sweeps nlist, M, nprobe and
// k_factor. Optional context rows: IndexIVFFlat on the same coarse quantizer and IndexHNSWFlat.
//
// For each search configuration: recall@k (ids in the exact top-k of gt.ivecs) and tie-aware
// recall (a result counts when its exact distance is <= the k-th true neighbour's), then
//   1 thread:    omp_set_num_threads(1), one query per call: QPS, p50/p99 latency;
//   all threads: one batched call with all queries, repeated for >= 0.3 s: QPS.
// For each index: build time (train + add), the serialized index size (faiss::write_index to a
// temporary file) in bytes per vector, which is what the index holds in RAM, and the peak RSS of
// the process (which also holds the benchmark's uint8 and float copies of the dataset).
//
// Usage: bench_faiss_ivfpq [--data DIR] [--base F --query F --gt F] [--queries N] [--k K]
// [--threads T] [--nlist A,B]
//          [--m 32,64] [--nprobe 1,2,...] [--kfactor 1,2,...] [--refine flat,sq8] [--residual 1,0]
//          [--train N]
//          [--context] [--hnsw-ef 16,32,...] [--tmp DIR] [--csv FILE]
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQFastScan.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/index_io.h>
#include <faiss/utils/utils.h>
#include <omp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "storage/dataset_io.h"

namespace {

using vectord::bench::CpuModel;
using vectord::bench::Percentile;

using Clock = std::chrono::steady_clock;
using idx_t = faiss::Index::idx_t;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A field of /proc/self/status in kB ("VmRSS", "VmHWM"); -1 when absent.
long ProcStatusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

long PeakRssKb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

std::vector<size_t> ParseList(const std::string& s) {
  std::vector<size_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(std::stoul(item));
  }
  return out;
}

std::vector<std::string> ParseWords(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// Loads a whole texmex file through vectord's dataset reader; prints the error and returns false.
bool LoadRaw(const std::string& path, std::vector<uint8_t>* out, size_t* n, uint32_t* dim,
             size_t elem) {
  auto reader = vectord::storage::DatasetReader::Open(path);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return false;
  }
  const auto& info = (*reader)->info();
  if (vectord::storage::ElementSize(info.type) != elem) {
    std::fprintf(stderr, "%s: element type %s, expected %zu-byte elements\n", path.c_str(),
                 vectord::storage::ElementTypeName(info.type), elem);
    return false;
  }
  *n = info.n;
  *dim = info.dim;
  out->resize(info.n * info.row_bytes());
  const vectord::Status st = (*reader)->ReadRaw(0, info.n, out->data());
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return false;
  }
  return true;
}

// Serialized size of an index in bytes (what it holds in RAM, give or take a few headers).
size_t SerializedBytes(const faiss::Index& index, const std::string& tmp_dir) {
  const std::string path = tmp_dir + "/bench_faiss_ivfpq." + std::to_string(getpid()) + ".index";
  faiss::write_index(&index, path.c_str());
  struct stat st {};
  const size_t bytes = stat(path.c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  unlink(path.c_str());
  return bytes;
}

struct Options {
  std::string dir = std::string(VECTORD_SHARED_DATA) + "/mate/sift";
  // Files (override DIR's base.bvecs / query.bvecs / gt.ivecs; any format DatasetReader reads,
  // e.g. the u8bin files of gen_clustered).
  std::string base, query, gt;
  size_t max_queries = 1000;
  size_t k = 10;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<size_t> nlists;  // empty: a power of two near 4 * sqrt(N)
  std::vector<size_t> ms = {32, 64};
  std::vector<size_t> nprobes = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  std::vector<size_t> kfactors = {2, 4, 8, 16, 32, 64};
  std::vector<std::string> refines = {"sq8"};
  std::vector<size_t> residuals = {1};  // 1: PQ of residuals to the centroid ("x4fsr"), 0: "x4fs"
  size_t train = 0;                     // 0: min(N, 64 * nlist)
  bool context = false;
  std::vector<size_t> hnsw_efs = {16, 32, 64, 128, 256};
  std::string tmp_dir = "/tmp";
  std::string csv_path;
};

struct Row {
  std::string index;   // index description
  std::string params;  // search parameters
  std::string mode;    // "1 thread" or "N threads batch"
  double recall = 0;
  double recall_ties = 0;
  double qps = 0;
  double p50_ms = -1;
  double p99_ms = -1;
  double build_s = 0;
  double bytes_per_vector = 0;  // serialized index size / N
  double peak_rss_mb = 0;       // ru_maxrss of the process so far
};

class Bench {
 public:
  explicit Bench(Options o) : o_(std::move(o)) {}

  bool Load() {
    size_t nq = 0, ngt = 0;
    uint32_t qdim = 0;
    std::vector<uint8_t> gt_raw;
    const std::string base = o_.base.empty() ? o_.dir + "/base.bvecs" : o_.base;
    const std::string query = o_.query.empty() ? o_.dir + "/query.bvecs" : o_.query;
    const std::string gt = o_.gt.empty() ? o_.dir + "/gt.ivecs" : o_.gt;
    if (!LoadRaw(base, &base_, &nb_, &dim_, 1) || !LoadRaw(query, &queries_, &nq, &qdim, 1) ||
        !LoadRaw(gt, &gt_raw, &ngt, &gk_, 4)) {
      return false;
    }
    if (qdim != dim_ || ngt < nq || gk_ < o_.k) {
      std::fprintf(stderr, "data mismatch: base dim %u, query dim %u, %zu gt rows of %u ids\n",
                   dim_, qdim, ngt, gk_);
      return false;
    }
    gt_.resize(ngt * gk_);
    std::copy(gt_raw.begin(), gt_raw.end(), reinterpret_cast<uint8_t*>(gt_.data()));
    nq_ = std::min(nq, o_.max_queries);
    base_f_.assign(base_.begin(), base_.end());
    queries_f_.assign(queries_.begin(), queries_.begin() + nq_ * dim_);
    kth_.resize(nq_);
    for (size_t q = 0; q < nq_; ++q) {
      kth_[q] = L2(q, static_cast<size_t>(gt_[q * gk_ + o_.k - 1]));
    }
    return true;
  }

  int Run() {
    std::vector<size_t> nlists = o_.nlists;
    if (nlists.empty()) {
      const double target = 4.0 * std::sqrt(static_cast<double>(nb_));
      nlists.push_back(size_t{1} << static_cast<int>(std::lround(std::log2(target))));
    }
    std::printf("# data: %s: %zu base x %u uint8, %zu queries, k=%zu\n",
                (o_.base.empty() ? o_.dir : o_.base).c_str(), nb_, dim_, nq_, o_.k);
    std::printf("# RSS after loading the data (uint8 + float copies): %.1f MB\n",
                static_cast<double>(ProcStatusKb("VmRSS")) / 1024.0);
    try {
      for (size_t nlist : nlists) {
        for (size_t m : o_.ms) {
          for (size_t r : o_.residuals) RunIvfPq(nlist, m, r != 0);
        }
        if (o_.context) RunIvfFlat(nlist);
      }
      if (o_.context) RunHnsw();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "faiss failed: %s\n", e.what());
      return 1;
    }
    Print();
    return 0;
  }

 private:
  uint32_t L2(size_t q, size_t id) const {
    const uint8_t* a = &queries_[q * dim_];
    const uint8_t* b = &base_[id * dim_];
    uint32_t s = 0;
    for (uint32_t i = 0; i < dim_; ++i) {
      const int d = static_cast<int>(a[i]) - static_cast<int>(b[i]);
      s += static_cast<uint32_t>(d * d);
    }
    return s;
  }

  // (recall by ids, tie-aware recall) of ids[nq_ * k].
  std::pair<double, double> Recall(const std::vector<idx_t>& ids) const {
    double by_id = 0, ties = 0;
    for (size_t q = 0; q < nq_; ++q) {
      size_t hit = 0, tie = 0;
      for (size_t i = 0; i < o_.k; ++i) {
        const idx_t id = ids[q * o_.k + i];
        if (id < 0) continue;
        const int32_t* g = &gt_[q * gk_];
        hit += std::find(g, g + o_.k, static_cast<int32_t>(id)) != g + o_.k;
        tie += L2(q, static_cast<size_t>(id)) <= kth_[q];
      }
      by_id += static_cast<double>(hit);
      ties += static_cast<double>(tie);
    }
    const double denom = static_cast<double>(nq_ * o_.k);
    return {by_id / denom, ties / denom};
  }

  // Measures one search configuration (already set on `index`) in both modes.
  void Measure(const faiss::Index& index, const Row& proto) {
    const idx_t k = static_cast<idx_t>(o_.k);
    std::vector<float> dist(nq_ * o_.k);
    std::vector<idx_t> ids(nq_ * o_.k);

    omp_set_num_threads(1);
    std::vector<double> lat(nq_);
    auto t0 = Clock::now();
    for (size_t q = 0; q < nq_; ++q) {
      const auto a = Clock::now();
      index.search(1, &queries_f_[q * dim_], k, &dist[q * o_.k], &ids[q * o_.k]);
      lat[q] = Seconds(a, Clock::now()) * 1e3;
    }
    double secs = Seconds(t0, Clock::now());
    Row r = proto;
    std::tie(r.recall, r.recall_ties) = Recall(ids);
    r.mode = "1 thread";
    r.qps = static_cast<double>(nq_) / secs;
    r.p50_ms = Percentile(lat, 0.5);
    r.p99_ms = Percentile(lat, 0.99);
    rows_.push_back(r);

    omp_set_num_threads(static_cast<int>(o_.threads));
    size_t reps = 0;
    t0 = Clock::now();
    do {
      index.search(static_cast<idx_t>(nq_), queries_f_.data(), k, dist.data(), ids.data());
      ++reps;
      secs = Seconds(t0, Clock::now());
    } while (secs < 0.3);
    r = proto;
    std::tie(r.recall, r.recall_ties) = Recall(ids);
    r.mode = std::to_string(o_.threads) + " threads batch";
    r.qps = static_cast<double>(nq_ * reps) / secs;
    rows_.push_back(r);
  }

  void Built(Row* proto, const faiss::Index& index, double build_s) {
    proto->build_s = build_s;
    proto->peak_rss_mb = static_cast<double>(PeakRssKb()) / 1024.0;
    proto->bytes_per_vector =
        static_cast<double>(SerializedBytes(index, o_.tmp_dir)) / static_cast<double>(nb_);
    std::printf(
        "# built %-40s in %7.1f s: %7.1f B/vector serialized, peak RSS %.1f "
        "MB (load %s)\n",
        proto->index.c_str(), build_s, proto->bytes_per_vector, proto->peak_rss_mb,
        vectord::bench::LoadAverage().c_str());
    std::fflush(stdout);
  }

  size_t TrainSize(size_t nlist) const {
    return std::min(nb_, o_.train > 0 ? o_.train : 64 * nlist);
  }

  // Trains a coarse quantizer once per nlist (shared by the PQ and Flat rows of that nlist).
  faiss::IndexFlatL2* Quantizer(size_t nlist, double* train_s) {
    for (auto& [n, q, s] : quantizers_) {
      if (n == nlist) {
        *train_s = s;
        return q.get();
      }
    }
    omp_set_num_threads(static_cast<int>(o_.threads));
    const auto t0 = Clock::now();
    auto q = std::make_unique<faiss::IndexFlatL2>(dim_);
    // The same k-means IndexIVF::train runs (default ClusteringParameters: 25 iterations).
    faiss::Clustering clus(static_cast<int>(dim_), static_cast<int>(nlist));
    clus.train(static_cast<idx_t>(TrainSize(nlist)), base_f_.data(), *q);
    const double s = Seconds(t0, Clock::now());
    std::printf("# coarse k-means: nlist %zu on %zu training vectors in %.1f s\n", nlist,
                TrainSize(nlist), s);
    quantizers_.emplace_back(nlist, std::move(q), s);
    *train_s = s;
    return std::get<1>(quantizers_.back()).get();
  }

  void RunIvfPq(size_t nlist, size_t m, bool by_residual) {
    double coarse_s = 0;
    faiss::IndexFlatL2* quantizer = Quantizer(nlist, &coarse_s);
    omp_set_num_threads(static_cast<int>(o_.threads));
    auto t0 = Clock::now();
    faiss::IndexIVFPQFastScan ivf(quantizer, dim_, nlist, m, 4);
    ivf.own_fields = false;
    ivf.by_residual = by_residual;
    ivf.is_trained = false;
    ivf.quantizer_trains_alone = 0;
    // The quantizer is already trained: IndexIVF::train then trains only the residual PQ.
    ivf.train(static_cast<idx_t>(TrainSize(nlist)), base_f_.data());
    ivf.add(static_cast<idx_t>(nb_), base_f_.data());
    const double ivf_s = coarse_s + Seconds(t0, Clock::now());
    const std::string base_name = "IVF" + std::to_string(nlist) + ",PQ" + std::to_string(m) +
                                  (by_residual ? "x4fsr" : "x4fs");

    for (const std::string& refine : o_.refines) {
      t0 = Clock::now();
      std::unique_ptr<faiss::Index> store;
      if (refine == "flat") {
        store = std::make_unique<faiss::IndexFlatL2>(dim_);
      } else if (refine == "sq8") {
        store = std::make_unique<faiss::IndexScalarQuantizer>(
            dim_, faiss::ScalarQuantizer::QT_8bit_direct, faiss::METRIC_L2);
      } else {
        std::fprintf(stderr, "unknown --refine '%s' (flat, sq8)\n", refine.c_str());
        continue;
      }
      store->add(static_cast<idx_t>(nb_), base_f_.data());
      faiss::IndexRefine index(&ivf, store.get());
      index.own_fields = false;
      Row proto;
      proto.index = base_name + (refine == "flat" ? ",RFlat" : ",Refine(SQ8_direct)");
      Built(&proto, index, ivf_s + Seconds(t0, Clock::now()));
      for (size_t kf : o_.kfactors) {
        index.k_factor = static_cast<float>(kf);
        for (size_t np : o_.nprobes) {
          if (np > nlist) continue;
          ivf.nprobe = np;
          proto.params = "nprobe=" + std::to_string(np) + " k_factor=" + std::to_string(kf);
          Measure(index, proto);
        }
      }
    }
  }

  void RunIvfFlat(size_t nlist) {
    double coarse_s = 0;
    faiss::IndexFlatL2* quantizer = Quantizer(nlist, &coarse_s);
    omp_set_num_threads(static_cast<int>(o_.threads));
    const auto t0 = Clock::now();
    faiss::IndexIVFFlat index(quantizer, dim_, nlist);
    index.own_fields = false;
    index.add(static_cast<idx_t>(nb_), base_f_.data());
    Row proto;
    proto.index = "IVF" + std::to_string(nlist) + ",Flat";
    Built(&proto, index, coarse_s + Seconds(t0, Clock::now()));
    for (size_t np : o_.nprobes) {
      if (np > nlist) continue;
      index.nprobe = np;
      proto.params = "nprobe=" + std::to_string(np);
      Measure(index, proto);
    }
  }

  void RunHnsw() {
    omp_set_num_threads(static_cast<int>(o_.threads));
    const auto t0 = Clock::now();
    faiss::IndexHNSWFlat index(static_cast<int>(dim_), 32);
    index.hnsw.efConstruction = 80;
    index.add(static_cast<idx_t>(nb_), base_f_.data());
    Row proto;
    proto.index = "HNSW32,Flat efC=80";
    Built(&proto, index, Seconds(t0, Clock::now()));
    for (size_t ef : o_.hnsw_efs) {
      index.hnsw.efSearch = static_cast<int>(ef);
      proto.params = "efSearch=" + std::to_string(ef);
      Measure(index, proto);
    }
  }

  void Print() const {
    std::printf("\n%-38s %-24s %-16s %7s %7s %9s %8s %8s %8s %8s %9s\n", "index", "search params",
                "mode", "recall", "r.ties", "QPS", "p50 ms", "p99 ms", "build s", "B/vec",
                "peakRSS MB");
    for (const Row& r : rows_) {
      char p50[32] = "-", p99[32] = "-";
      if (r.p50_ms >= 0) std::snprintf(p50, sizeof(p50), "%.3f", r.p50_ms);
      if (r.p99_ms >= 0) std::snprintf(p99, sizeof(p99), "%.3f", r.p99_ms);
      std::printf("%-38s %-24s %-16s %7.4f %7.4f %9.1f %8s %8s %8.1f %8.1f %9.1f\n",
                  r.index.c_str(), r.params.c_str(), r.mode.c_str(), r.recall, r.recall_ties, r.qps,
                  p50, p99, r.build_s, r.bytes_per_vector, r.peak_rss_mb);
    }

    // Best QPS reaching each recall target, per mode.
    std::printf("\n# best QPS at recall@%zu >= target (any configuration above)\n", o_.k);
    for (const std::string& mode :
         {std::string("1 thread"), std::to_string(o_.threads) + " threads batch"}) {
      for (double target : {0.90, 0.95, 0.99}) {
        const Row* best = nullptr;
        for (const Row& r : rows_) {
          if (r.mode == mode && r.recall >= target && (best == nullptr || r.qps > best->qps)) {
            best = &r;
          }
        }
        if (best == nullptr) {
          std::printf("#   %-16s recall>=%.2f: not reached\n", mode.c_str(), target);
        } else {
          std::printf(
              "#   %-16s recall>=%.2f: %9.1f QPS (recall %.4f, p99 %.3f ms) %s %s, %.1f "
              "B/vector\n",
              mode.c_str(), target, best->qps, best->recall, best->p99_ms, best->index.c_str(),
              best->params.c_str(), best->bytes_per_vector);
        }
      }
    }

    std::string csv =
        "peer,index,search_params,mode,threads,recall_at_k,recall_ties,qps,p50_ms,p99_ms,build_s,"
        "index_bytes_per_vector,peak_rss_mb,n,k\n";
    for (const Row& r : rows_) {
      char line[768];
      std::snprintf(line, sizeof(line),
                    "faiss,\"%s\",\"%s\",\"%s\",%u,%.4f,%.4f,%.1f,%.4f,%.4f,%.2f,%.2f,%.1f,%zu,"
                    "%zu\n",
                    r.index.c_str(), r.params.c_str(), r.mode.c_str(),
                    r.mode == "1 thread" ? 1u : o_.threads, r.recall, r.recall_ties, r.qps,
                    r.p50_ms, r.p99_ms, r.build_s, r.bytes_per_vector, r.peak_rss_mb, nb_, o_.k);
      csv += line;
    }
    if (!o_.csv_path.empty()) {
      std::ofstream out(o_.csv_path);
      out << csv;
      if (!out) std::fprintf(stderr, "cannot write %s\n", o_.csv_path.c_str());
      std::printf("# CSV written to %s\n", o_.csv_path.c_str());
    } else {
      std::printf("\n%s", csv.c_str());
    }
  }

  Options o_;
  std::vector<uint8_t> base_, queries_;
  std::vector<float> base_f_, queries_f_;
  std::vector<int32_t> gt_;
  std::vector<uint32_t> kth_;  // exact distance of each query's k-th true neighbour
  size_t nb_ = 0, nq_ = 0;
  uint32_t dim_ = 0, gk_ = 0;
  std::vector<std::tuple<size_t, std::unique_ptr<faiss::IndexFlatL2>, double>> quantizers_;
  std::vector<Row> rows_;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--context") {
      o.context = true;
    } else if (a == "--data" && v) {
      o.dir = v, ++i;
    } else if (a == "--base" && v) {
      o.base = v, ++i;
    } else if (a == "--query" && v) {
      o.query = v, ++i;
    } else if (a == "--gt" && v) {
      o.gt = v, ++i;
    } else if (a == "--queries" && v) {
      o.max_queries = std::stoul(v), ++i;
    } else if (a == "--k" && v) {
      o.k = std::stoul(v), ++i;
    } else if (a == "--threads" && v) {
      o.threads = static_cast<unsigned>(std::stoul(v)), ++i;
    } else if (a == "--nlist" && v) {
      o.nlists = ParseList(v), ++i;
    } else if (a == "--m" && v) {
      o.ms = ParseList(v), ++i;
    } else if (a == "--nprobe" && v) {
      o.nprobes = ParseList(v), ++i;
    } else if (a == "--kfactor" && v) {
      o.kfactors = ParseList(v), ++i;
    } else if (a == "--refine" && v) {
      o.refines = ParseWords(v), ++i;
    } else if (a == "--residual" && v) {
      o.residuals = ParseList(v), ++i;
    } else if (a == "--train" && v) {
      o.train = std::stoul(v), ++i;
    } else if (a == "--hnsw-ef" && v) {
      o.hnsw_efs = ParseList(v), ++i;
    } else if (a == "--tmp" && v) {
      o.tmp_dir = v, ++i;
    } else if (a == "--csv" && v) {
      o.csv_path = v, ++i;
    } else {
      std::fprintf(
          stderr,
          "usage: %s [--data DIR] [--base F --query F --gt F] [--queries N] [--k K] [--threads T] "
          "[--nlist A,B] "
          "[--m 32,64] [--nprobe 1,2,..] [--kfactor 1,2,..] [--refine flat,sq8] [--residual 1,0] "
          "[--train N] [--context] [--hnsw-ef 16,32,..] [--tmp DIR] [--csv FILE]\n",
          argv[0]);
      return 2;
    }
  }
  std::printf("# bench_faiss_ivfpq: Faiss IVF-PQ fast-scan + refine (in RAM), peer baseline\n");
  std::printf("# cpu: %s; hardware threads: %u; threads for batches: %u; load average: %s\n",
              CpuModel().c_str(), std::thread::hardware_concurrency(), o.threads,
              vectord::bench::LoadAverage().c_str());
  std::printf("# faiss %d.%d.%d, compile options: '%s'%s\n", FAISS_VERSION_MAJOR,
              FAISS_VERSION_MINOR, FAISS_VERSION_PATCH, faiss::get_compile_options().c_str(),
              faiss::get_compile_options().find("AVX2") == std::string::npos
                  ? " -- built WITHOUT AVX2: the 4-bit fast-scan kernels run emulated SIMD "
                    "(Debian's generic build), so these QPS understate an AVX2 Faiss build"
                  : "");
  Bench bench(std::move(o));
  if (!bench.Load()) return 1;
  return bench.Run();
}
