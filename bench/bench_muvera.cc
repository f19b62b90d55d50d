// Multi-vector (Chamfer / MaxSim) retrieval benchmark on the mate/multivec layout: exact Chamfer
// brute force, MUVERA (FDE inner-product top-C by an exact scan of all document FDEs, stored as
// float32, float16 or int8, then exact Chamfer re-rank) over a sweep of FDE shapes and C, and two
// token-level baselines (every document token in one inner-product index; each query token's top-k'
// tokens give candidate documents; Chamfer re-rank): exact token search and Faiss IVF-Flat, over a
// sweep of k' (and nprobe). Searches run on one thread, queries one after another; --threads only
// speeds up the untimed parts (the exact truth, FDE encoding, the IVF build, the exact token
// search). Prints the machine and load, then one row per configuration: recall@10 / recall@100
// against exact Chamfer, how often the query's source tile is in the top 10, candidates per query,
// QPS, p50/p99 latency, FDE bytes per document, candidate-generation ms per query; then, per
// method family, the candidate count at which recall@10 reaches 0.90 (linear interpolation).
//
// Usage: bench_muvera [--data DIR] [--queries N] [--exact-queries N] [--threads N] [--csv FILE]
//                     [--quick] [--shapes "k_sim,d_proj,r_reps,final_dim,center;..."]
//                     [--cs C1,C2,...] [--fde-types f32,f16,i8] [--kprime K1,K2,...]
//                     [--token-exact 0|1] [--nlist N] [--nprobe P1,P2,...]
//   DIR holds docs.u8bin/docs.offsets, queries.u8bin/queries.offsets, gt.ivecs, source.ivecs
//   (format: ../shared/data/README.md; bench/gen_multivec makes larger sets). Vectors are /255 and
//   scaled to unit length. center 1 = SimHash origin at the mean token. --exact-queries: how many
//   queries the timed brute-force row runs (all by default). i8 FDEs: per-dimension scale
//   max|x|/127 over the documents, folded into the query, which is rounded to int8 (exact integer
//   kernel). --nlist 0 (default): 2 * sqrt(tokens) rounded to a power of two; --nprobe empty or
//   --nlist -1: no IVF rows.
#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "bench/multivec_sets.h"
#include "index/chamfer.h"
#include "index/distance.h"
#include "index/flat_search.h"
#include "index/muvera.h"
#include "storage/dataset_io.h"

namespace {

using vectord::bench::CpuModel;
using vectord::bench::Percentile;

using Clock = std::chrono::steady_clock;
using vectord::index::Neighbor;

using vectord::bench::ReadIvecs;
using vectord::bench::ReadSets;
using vectord::bench::Sets;
std::vector<std::string> Split(const std::string& s, char sep) {
  return vectord::bench::SplitList(s, sep);
}

// |got[:k] ∩ want[:k]| / k.
double RecallAt(const std::vector<Neighbor>& got, const std::vector<Neighbor>& want, size_t k) {
  size_t hit = 0;
  const size_t kw = std::min(k, want.size());
  for (size_t i = 0; i < std::min(k, got.size()); ++i) {
    for (size_t j = 0; j < kw; ++j) hit += got[i].row == want[j].row;
  }
  return kw == 0 ? 1.0 : static_cast<double>(hit) / static_cast<double>(kw);
}

struct Row {
  std::string method, params, family, fde_type;
  uint32_t fde_dim = 0;
  double cands = 0, r10 = 0, r100 = 0, src10 = 0, qps = 0, p50 = 0, p99 = 0, fde_bytes = 0;
  double gen_ms = 0;  // candidate generation (query FDE + scan, or token search) per query
  double build_s = 0;
};

// Runs `search(q, &cands, &gen_s)` for queries [0, nq) (timed one by one) and scores each against
// `truth`.
template <typename F>
Row Measure(size_t nq, const std::vector<std::vector<Neighbor>>& truth,
            const std::vector<int32_t>& source, F search) {
  Row row;
  std::vector<double> lat(nq);
  double total = 0;
  for (size_t q = 0; q < nq; ++q) {
    size_t cands = 0;
    double gen_s = 0;
    const auto t0 = Clock::now();
    const std::vector<Neighbor> res = search(q, &cands, &gen_s);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    lat[q] = s;
    total += s;
    row.gen_ms += gen_s * 1e3 / nq;
    row.cands += static_cast<double>(cands) / nq;
    row.r10 += RecallAt(res, truth[q], 10) / nq;
    row.r100 += RecallAt(res, truth[q], 100) / nq;
    for (size_t i = 0; i < std::min<size_t>(10, res.size()); ++i) {
      row.src10 += (static_cast<int32_t>(res[i].row) == source[q]) / static_cast<double>(nq);
    }
  }
  row.qps = nq / total;
  row.p50 = Percentile(lat, 0.5) * 1e3;
  row.p99 = Percentile(lat, 0.99) * 1e3;
  return row;
}

double Seconds(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs f(i) for i in [0, n) on `threads` threads.
template <typename F>
void ParallelFor(size_t n, unsigned threads, F f) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, threads); ++t) {
    pool.emplace_back([&] {
      for (size_t i = next++; i < n; i = next++) f(i);
    });
  }
  for (std::thread& t : pool) t.join();
}

// Document FDEs stored for the scan in one element type, and the query transform that goes with it.
struct FdeStore {
  std::string type;  // f32, f16, i8
  uint32_t dim = 0;
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  std::vector<int8_t> i8;
  std::vector<float> scale;  // i8: per-dimension scale (x = scale * code)
  vectord::index::FlatView view(size_t n) const {
    if (type == "f16") {
      return {f16.data(), n, dim, vectord::DataType::kFloat16, vectord::Distance::kDot};
    }
    if (type == "i8") return {i8.data(), n, dim, vectord::DataType::kInt8, vectord::Distance::kDot};
    return {f32.data(), n, dim, vectord::DataType::kFloat32, vectord::Distance::kDot};
  }
  size_t bytes_per_doc() const { return dim * (type == "f32" ? 4 : type == "f16" ? 2 : 1); }
  // i8: q'_j = q_j * scale_j, rounded to int8 with one query scale (ranking is scale-free), so
  // FlatSearch runs the exact integer kernel.
  void PrepareQuery(float* q) const {
    if (type != "i8") return;
    float m = 0;
    for (uint32_t j = 0; j < dim; ++j) m = std::max(m, std::fabs(q[j] *= scale[j]));
    const float inv = m > 0 ? 127.0f / m : 0.0f;
    for (uint32_t j = 0; j < dim; ++j) q[j] = std::nearbyint(q[j] * inv);
  }
};

FdeStore MakeStore(const std::string& type, const std::vector<float>& fdes, size_t n,
                   uint32_t dim) {
  FdeStore s;
  s.type = type;
  s.dim = dim;
  if (type == "f16") {
    s.f16.resize(fdes.size());
    for (size_t i = 0; i < fdes.size(); ++i) s.f16[i] = vectord::index::FloatToHalf(fdes[i]);
  } else if (type == "i8") {
    s.scale.assign(dim, 0.0f);
    for (size_t i = 0; i < n; ++i) {
      for (uint32_t j = 0; j < dim; ++j) {
        s.scale[j] = std::max(s.scale[j], std::fabs(fdes[i * dim + j]));
      }
    }
    for (float& x : s.scale) x = x > 0 ? x / 127.0f : 1.0f;
    s.i8.resize(fdes.size());
    for (size_t i = 0; i < n; ++i) {
      for (uint32_t j = 0; j < dim; ++j) {
        const float c = std::nearbyint(fdes[i * dim + j] / s.scale[j]);
        s.i8[i * dim + j] = static_cast<int8_t>(std::clamp(c, -127.0f, 127.0f));
      }
    }
  } else {
    s.f32 = fdes;
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(VECTORD_SHARED_DATA) + "/mate/multivec";
  size_t max_queries = SIZE_MAX, exact_queries = SIZE_MAX;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::string csv_path;
  bool quick = false, token_exact = true;
  long nlist_arg = 0;
  std::string shapes_arg, cs_arg, kp_arg, types_arg = "f32", nprobe_arg = "8,32,128";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--data" && v) {
      dir = v, ++i;
    } else if (a == "--queries" && v) {
      max_queries = std::stoul(v), ++i;
    } else if (a == "--exact-queries" && v) {
      exact_queries = std::stoul(v), ++i;
    } else if (a == "--threads" && v) {
      threads = std::max(1u, static_cast<unsigned>(std::stoul(v))), ++i;
    } else if (a == "--csv" && v) {
      csv_path = v, ++i;
    } else if (a == "--shapes" && v) {
      shapes_arg = v, ++i;
    } else if (a == "--cs" && v) {
      cs_arg = v, ++i;
    } else if (a == "--fde-types" && v) {
      types_arg = v, ++i;
    } else if (a == "--kprime" && v) {
      kp_arg = v, ++i;
    } else if (a == "--token-exact" && v) {
      token_exact = std::string(v) != "0", ++i;
    } else if (a == "--nlist" && v) {
      nlist_arg = std::stol(v), ++i;
    } else if (a == "--nprobe" && v) {
      nprobe_arg = v, ++i;
    } else if (a == "--quick") {
      quick = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--data DIR] [--queries N] [--exact-queries N] [--threads N] [--csv "
                   "FILE] [--quick] [--shapes S] [--cs C,..] [--fde-types f32,f16,i8] [--kprime "
                   "K,..] [--token-exact 0|1] [--nlist N] [--nprobe P,..]\n",
                   argv[0]);
      return 2;
    }
  }
  for (const std::string& t : Split(types_arg, ',')) {
    if (t != "f32" && t != "f16" && t != "i8") {
      std::fprintf(stderr, "--fde-types: '%s' is not f32, f16 or i8\n", t.c_str());
      return 2;
    }
  }
  Sets docs, queries;
  std::vector<int32_t> gt, source;
  size_t ngt = 0, nsrc = 0;
  uint32_t gk = 0, sk = 0;
  if (!ReadSets(dir + "/docs", &docs) || !ReadSets(dir + "/queries", &queries) ||
      !ReadIvecs(dir + "/gt.ivecs", &gt, &ngt, &gk) ||
      !ReadIvecs(dir + "/source.ivecs", &source, &nsrc, &sk)) {
    return 1;
  }
  const size_t nq = std::min({queries.n(), max_queries, ngt, nsrc});
  if (docs.dim != queries.dim || sk != 1 || gk < 100) {
    std::fprintf(stderr, "data mismatch: dims %u/%u, gt has %u ids per row, source %u\n", docs.dim,
                 queries.dim, gk, sk);
    return 1;
  }
  const uint32_t dim = docs.dim;
  const size_t n_tokens = docs.offsets.back();
  std::printf(
      "# bench_muvera: Chamfer retrieval, exact vs MUVERA vs token-level, searches on 1 "
      "thread (untimed parts on %u)\n",
      threads);
  std::printf(
      "# cpu: %s, %u hardware threads; kernels: distance %s, chamfer %s; load average at "
      "start %s\n",
      CpuModel().c_str(), std::thread::hardware_concurrency(), vectord::index::KernelLevel(),
      vectord::index::ChamferKernelLevel(), vectord::bench::LoadAverage().c_str());
  std::printf(
      "# data: %s: %zu documents (%zu vectors, %.1f per doc), %zu queries (%.1f vectors "
      "per query), dim %u\n",
      dir.c_str(), docs.n(), n_tokens, static_cast<double>(n_tokens) / docs.n(), nq,
      static_cast<double>(queries.offsets[nq]) / nq, dim);
  for (size_t i = 0; i < docs.n(); ++i) {
    if (docs.size(i) == 0) std::printf("# warning: document %zu has no vectors\n", i);
  }
  std::fflush(stdout);

  const auto view = docs.view();
  std::vector<Row> rows;

  // (a) Exact Chamfer: the truth for the other methods (all queries, on `threads`, untimed),
  // checked against gt.ivecs; then the timed brute-force row on one thread.
  std::vector<std::vector<Neighbor>> truth(nq);
  {
    const auto t0 = Clock::now();
    ParallelFor(nq, threads, [&](size_t q) {
      truth[q] =
          vectord::index::ChamferTopK(queries.set(q), queries.size(q), view, nullptr, 0, 100);
    });
    std::printf("# exact truth for %zu queries in %.1f s\n", nq, Seconds(t0));
    const size_t nx = std::max<size_t>(1, std::min(nq, exact_queries));
    Row r = Measure(nx, truth, source, [&](size_t q, size_t* cands, double*) {
      *cands = docs.n();
      return vectord::index::ChamferTopK(queries.set(q), queries.size(q), view, nullptr, 0, 100);
    });
    double r10 = 0, r100 = 0, src = 0;
    for (size_t q = 0; q < nq; ++q) {
      std::vector<Neighbor> g(100);
      for (size_t i = 0; i < 100; ++i) g[i].row = static_cast<uint32_t>(gt[q * gk + i]);
      r10 += RecallAt(truth[q], g, 10) / nq;
      r100 += RecallAt(truth[q], g, 100) / nq;
      for (size_t i = 0; i < 10; ++i) src += (static_cast<int32_t>(truth[q][i].row) == source[q]);
    }
    r.r10 = r10, r.r100 = r100, r.src10 = src / nq;
    r.method = "exact";
    r.family = "exact";
    r.params = "brute force, " + std::to_string(nx) + " q (recall vs gt.ivecs)";
    rows.push_back(r);
  }
  const double exact_qps = rows[0].qps;

  // (b) MUVERA.
  // SimHash origin for the centred shapes: the mean document token (muvera.h, `center`).
  std::vector<float> mean(dim, 0.0f);
  {
    std::vector<double> acc(dim, 0.0);
    for (size_t t = 0; t < n_tokens; ++t) {
      for (uint32_t k = 0; k < dim; ++k) acc[k] += docs.tokens[t * dim + k];
    }
    for (uint32_t k = 0; k < dim; ++k) mean[k] = static_cast<float>(acc[k] / n_tokens);
  }
  struct Shape {
    uint32_t k_sim, d_proj, r_reps, final_dim;
    bool center;
  };
  std::vector<Shape> shapes = {{4, 8, 20, 0, false},   {5, 16, 20, 0, false},  {5, 8, 20, 0, false},
                               {5, 8, 20, 0, true},    {6, 8, 10, 0, true},    {5, 16, 20, 0, true},
                               {5, 8, 20, 1024, true}, {4, 32, 20, 2048, true}};
  std::vector<size_t> cs = {50, 100, 200, 400, 800};
  if (quick) shapes = {{4, 8, 20, 0, false}, {4, 8, 20, 0, true}}, cs = {20, 100};
  if (!shapes_arg.empty()) {  // "k_sim,d_proj,r_reps,final_dim,center(0|1);..."
    shapes.clear();
    for (const std::string& item : Split(shapes_arg, ';')) {
      const auto f = Split(item, ',');
      if (f.size() != 5) {
        std::fprintf(stderr, "--shapes: '%s' is not k_sim,d_proj,r_reps,final_dim,center\n",
                     item.c_str());
        return 2;
      }
      shapes.push_back({static_cast<uint32_t>(std::stoul(f[0])),
                        static_cast<uint32_t>(std::stoul(f[1])),
                        static_cast<uint32_t>(std::stoul(f[2])),
                        static_cast<uint32_t>(std::stoul(f[3])), f[4] == "1"});
    }
  }
  if (!cs_arg.empty()) {
    cs.clear();
    for (const std::string& c : Split(cs_arg, ',')) cs.push_back(std::stoul(c));
  }
  for (const Shape& sh : shapes) {
    vectord::index::MuveraParams p{.dim = dim,
                                   .k_sim = sh.k_sim,
                                   .d_proj = sh.d_proj,
                                   .r_reps = sh.r_reps,
                                   .final_dim = sh.final_dim};
    if (sh.center) p.center = mean;
    auto enc = vectord::index::FdeEncoder::Create(p);
    if (!enc.ok()) {
      std::fprintf(stderr, "%s\n", enc.status().ToString().c_str());
      return 1;
    }
    const uint32_t fd = enc->fde_dim();
    std::vector<float> fdes(docs.n() * fd);
    const auto t0 = Clock::now();
    ParallelFor(docs.n(), threads, [&](size_t i) {
      enc->EncodeDocument(docs.set(i), docs.size(i), fdes.data() + i * fd);
    });
    const double build_s = Seconds(t0);
    char shape_name[96];
    std::snprintf(shape_name, sizeof(shape_name), "k_sim=%u d_proj=%u r_reps=%u final=%u %s",
                  sh.k_sim, sh.d_proj, sh.r_reps, sh.final_dim, sh.center ? "ctr" : "0");
    for (const std::string& type : Split(types_arg, ',')) {
      const FdeStore store = MakeStore(type, fdes, docs.n(), fd);
      const vectord::index::FlatView fv = store.view(docs.n());
      std::vector<float> qf(fd);
      std::vector<uint32_t> ids;
      for (size_t c : cs) {
        Row r = Measure(nq, truth, source, [&](size_t q, size_t* cands, double* gen_s) {
          const auto g0 = Clock::now();
          enc->EncodeQuery(queries.set(q), queries.size(q), qf.data());
          store.PrepareQuery(qf.data());
          const auto top = vectord::index::FlatSearch(fv, qf.data(), c);
          ids.clear();
          for (const Neighbor& n : top) ids.push_back(n.row);
          *gen_s = Seconds(g0);
          *cands = ids.size();
          return vectord::index::ChamferTopK(queries.set(q), queries.size(q), view, ids.data(),
                                             ids.size(), 100);
        });
        r.method = "muvera";
        r.family = std::string(shape_name) + " " + type;
        r.params = std::string(shape_name) + " C=" + std::to_string(c);
        r.fde_type = type;
        r.fde_dim = fd;
        r.fde_bytes = static_cast<double>(store.bytes_per_doc());
        r.build_s = build_s;
        rows.push_back(r);
        std::printf("# %-6s %-40s %-4s R@10 %.3f QPS %.1f\n", r.method.c_str(), r.params.c_str(),
                    type.c_str(), r.r10, r.qps);
        std::fflush(stdout);
      }
    }
  }

  // (c) Token-level: every document token in one inner-product index; each query token's top-k'
  // tokens; the union of their documents re-ranked by Chamfer.
  std::vector<uint32_t> token_doc(n_tokens);
  for (size_t i = 0; i < docs.n(); ++i) {
    for (uint64_t t = docs.offsets[i]; t < docs.offsets[i + 1]; ++t) {
      token_doc[t] = static_cast<uint32_t>(i);
    }
  }
  std::vector<size_t> kps = {2, 4, 8, 16, 32};
  if (quick) kps = {4};
  if (!kp_arg.empty()) {
    kps.clear();
    for (const std::string& c : Split(kp_arg, ',')) kps.push_back(std::stoul(c));
  }
  const size_t kmax = *std::max_element(kps.begin(), kps.end());
  std::vector<char> seen(docs.n());
  // Candidate documents of query q from per-token top lists (`labels`: query token t's top-`stride`
  // token ids at labels[t * stride], the first kp used; negative = none).
  const auto gather = [&](const auto* labels, size_t n_qt, size_t stride, size_t kp,
                          std::vector<uint32_t>* ids) {
    ids->clear();
    for (size_t t = 0; t < n_qt; ++t) {
      for (size_t j = 0; j < kp; ++j) {
        const auto tok = labels[t * stride + j];
        if (tok < 0) continue;
        const uint32_t d = token_doc[static_cast<size_t>(tok)];
        if (!seen[d]) seen[d] = 1, ids->push_back(d);
      }
    }
    for (uint32_t d : *ids) seen[d] = 0;
  };
  std::vector<uint32_t> ids;

  // (c1) Exact token search (a flat scan: as costly as brute-force Chamfer, so it runs once with
  // k' = max on `threads`, untimed; the rows time the gathering and re-rank only).
  if (token_exact) {
    const vectord::index::FlatView tv{docs.tokens.data(), n_tokens, dim,
                                      vectord::DataType::kFloat32, vectord::Distance::kDot};
    const auto t0 = Clock::now();
    const size_t n_qt = queries.offsets[nq];
    const auto res =
        vectord::index::FlatSearchBatch(tv, queries.tokens.data(), n_qt, kmax, {}, threads);
    std::vector<int64_t> labels(n_qt * kmax, -1);
    for (size_t t = 0; t < n_qt; ++t) {
      for (size_t j = 0; j < res[t].size(); ++j) labels[t * kmax + j] = res[t][j].row;
    }
    std::printf("# exact token search (%zu query tokens, k' = %zu) in %.1f s on %u threads\n", n_qt,
                kmax, Seconds(t0), threads);
    for (size_t kp : kps) {
      Row r = Measure(nq, truth, source, [&](size_t q, size_t* cands, double*) {
        gather(labels.data() + queries.offsets[q] * kmax, queries.size(q), kmax, kp, &ids);
        *cands = ids.size();
        return vectord::index::ChamferTopK(queries.set(q), queries.size(q), view, ids.data(),
                                           ids.size(), 100);
      });
      r.method = "token";
      r.family = "token exact";
      r.params = "k'=" + std::to_string(kp) + " exact tokens (not timed)";
      r.qps = r.p50 = r.p99 = 0;  // the timed part would be the re-rank only: not comparable
      rows.push_back(r);
    }
  }

  // (c2) Faiss IVF-Flat (inner product) over all tokens, one thread per search.
  std::vector<size_t> nprobes;
  for (const std::string& s : Split(nprobe_arg, ',')) nprobes.push_back(std::stoul(s));
  if (nlist_arg >= 0 && !nprobes.empty()) {
    size_t nlist = static_cast<size_t>(nlist_arg);
    if (nlist == 0) {
      nlist = 1;
      while (nlist * nlist < 4 * n_tokens) nlist *= 2;  // ~2 sqrt(n), a power of two
    }
    try {
      const auto t0 = Clock::now();
      omp_set_num_threads(static_cast<int>(threads));
      faiss::IndexFlatIP quantizer(dim);
      faiss::IndexIVFFlat ivf(&quantizer, dim, nlist, faiss::METRIC_INNER_PRODUCT);
      const size_t n_train = std::min(n_tokens, nlist * 64);
      std::vector<float> sample(n_train * dim);
      for (size_t i = 0; i < n_train; ++i) {
        const size_t t = i * n_tokens / n_train;
        std::copy_n(docs.tokens.data() + t * dim, dim, sample.data() + i * dim);
      }
      ivf.train(static_cast<faiss::Index::idx_t>(n_train), sample.data());
      ivf.add(static_cast<faiss::Index::idx_t>(n_tokens), docs.tokens.data());
      const double ivf_s = Seconds(t0);
      std::printf(
          "# IVF-Flat over %zu tokens: nlist %zu, trained on %zu, built in %.1f s on %u "
          "threads\n",
          n_tokens, nlist, n_train, ivf_s, threads);
      omp_set_num_threads(1);
      std::vector<float> dist;
      std::vector<faiss::Index::idx_t> labels;
      for (size_t np : nprobes) {
        ivf.nprobe = np;
        for (size_t kp : kps) {
          Row r = Measure(nq, truth, source, [&](size_t q, size_t* cands, double* gen_s) {
            const auto g0 = Clock::now();
            const size_t n_qt = queries.size(q);
            dist.resize(n_qt * kp);
            labels.resize(n_qt * kp);
            ivf.search(static_cast<faiss::Index::idx_t>(n_qt), queries.set(q),
                       static_cast<faiss::Index::idx_t>(kp), dist.data(), labels.data());
            gather(labels.data(), n_qt, kp, kp, &ids);
            *gen_s = Seconds(g0);
            *cands = ids.size();
            return vectord::index::ChamferTopK(queries.set(q), queries.size(q), view, ids.data(),
                                               ids.size(), 100);
          });
          r.method = "token";
          r.family = "token ivf nprobe=" + std::to_string(np);
          r.params = "k'=" + std::to_string(kp) + " IVF-Flat nlist=" + std::to_string(nlist) +
                     " nprobe=" + std::to_string(np);
          r.build_s = ivf_s;
          rows.push_back(r);
          std::printf("# %-6s %-40s R@10 %.3f QPS %.1f\n", r.method.c_str(), r.params.c_str(),
                      r.r10, r.qps);
          std::fflush(stdout);
        }
      }
    } catch (const faiss::FaissException& e) {
      std::fprintf(stderr, "IVF-Flat token index: %s\n", e.what());
      return 1;
    }
  }

  std::printf("\n# load average at end %s\n", vectord::bench::LoadAverage().c_str());
  std::printf("%-7s %-48s %6s %4s %8s %6s %6s %6s %9s %7s %8s %8s %7s %8s\n", "method", "params",
              "fdedim", "type", "cand/q", "R@10", "R@100", "src@10", "QPS", "xexact", "p50ms",
              "p99ms", "B/doc", "gen_ms");
  for (const Row& r : rows) {
    if (r.qps == 0) {  // exact token rows: candidates and recall only
      std::printf("%-7s %-48s %6u %4s %8.1f %6.3f %6.3f %6.3f %9s %7s %8s %8s %7.0f %8s\n",
                  r.method.c_str(), r.params.c_str(), r.fde_dim, "-", r.cands, r.r10, r.r100,
                  r.src10, "-", "-", "-", "-", r.fde_bytes, "-");
      continue;
    }
    std::printf("%-7s %-48s %6u %4s %8.1f %6.3f %6.3f %6.3f %9.1f %7.1f %8.3f %8.3f %7.0f %8.3f\n",
                r.method.c_str(), r.params.c_str(), r.fde_dim,
                r.fde_type.empty() ? "-" : r.fde_type.c_str(), r.cands, r.r10, r.r100, r.src10,
                r.qps, r.qps / exact_qps, r.p50, r.p99, r.fde_bytes, r.gen_ms);
  }

  // Candidates needed for recall@10 0.90, per family (rows in the order of growing candidates).
  std::printf("\n# candidates per query at recall@10 = 0.90 (linear interpolation between rows)\n");
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Row*>> fam;
  for (const Row& r : rows) {
    if (r.method == "exact") continue;
    if (!fam.count(r.family)) order.push_back(r.family);
    fam[r.family].push_back(&r);
  }
  for (const std::string& f : order) {
    auto& v = fam[f];
    std::sort(v.begin(), v.end(), [](const Row* a, const Row* b) { return a->cands < b->cands; });
    std::string what = "not reached (best R@10 " + std::to_string(v.back()->r10).substr(0, 5) + ")";
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i]->r10 < 0.9) continue;
      double c = v[i]->cands;
      if (i > 0 && v[i]->r10 > v[i - 1]->r10) {
        c = v[i - 1]->cands +
            (0.9 - v[i - 1]->r10) / (v[i]->r10 - v[i - 1]->r10) * (v[i]->cands - v[i - 1]->cands);
      }
      char buf[192];
      std::snprintf(buf, sizeof(buf),
                    "%.0f (first row >= 0.90: %s, R@10 %.3f, %.1f QPS, %.1fx exact)", c,
                    v[i]->params.c_str(), v[i]->r10, v[i]->qps, v[i]->qps / exact_qps);
      what = buf;
      break;
    }
    std::printf("%-44s %s\n", f.c_str(), what.c_str());
  }

  if (!csv_path.empty()) {
    std::ofstream csv(csv_path);
    csv << "method,params,fde_dim,fde_type,candidates,recall10,recall100,source_in_top10,qps,"
           "speedup,p50_ms,p99_ms,fde_bytes_per_doc,gen_ms,build_s\n";
    for (const Row& r : rows) {
      csv << r.method << ",\"" << r.params << "\"," << r.fde_dim << "," << r.fde_type << ","
          << r.cands << "," << r.r10 << "," << r.r100 << "," << r.src10 << "," << r.qps << ","
          << r.qps / exact_qps << "," << r.p50 << "," << r.p99 << "," << r.fde_bytes << ","
          << r.gen_ms << "," << r.build_s << "\n";
    }
  }
  return 0;
}
