// Multi-vector (Chamfer / MaxSim) retrieval benchmark on the mate/multivec layout: exact Chamfer
// brute force, MUVERA (FDE inner-product top-C by exact search, then exact Chamfer re-rank) over a
// sweep of FDE shapes and C, and the token-level baseline (every document token in one exact
// inner-product index; each query token's top-k' tokens give candidate documents; Chamfer
// re-rank) over a sweep of k'. One thread, queries one after another. Prints the machine, then
// one row per configuration: recall@10 / recall@100 against exact Chamfer, how often the query's
// source tile is in the top 10, candidates per query, QPS, p50/p99 latency, FDE bytes per document.
//
// Usage: bench_muvera [--data DIR] [--queries N] [--csv FILE] [--quick]
//                     [--shapes "k_sim,d_proj,r_reps,final_dim,center;..."] [--cs C1,C2,...]
//                     [--kprime K1,K2,...]   (center 1 = SimHash origin at the mean token)
//   DIR holds docs.u8bin/docs.offsets, queries.u8bin/queries.offsets, gt.ivecs, source.ivecs
//   (format: ../shared/data/README.md). Vectors are /255 and scaled to unit length.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
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

struct Sets {
  std::vector<float> tokens;
  std::vector<uint64_t> offsets;
  uint32_t dim = 0;
  size_t n() const { return offsets.size() - 1; }
  vectord::index::MultiVectorView view() const { return {tokens.data(), offsets.data(), n(), dim}; }
  const float* set(size_t i) const { return tokens.data() + offsets[i] * dim; }
  size_t size(size_t i) const { return offsets[i + 1] - offsets[i]; }
};

// docs.offsets: int32 m, int32 1, then m int64.
bool ReadOffsets(const std::string& path, std::vector<uint64_t>* out) {
  std::ifstream in(path, std::ios::binary);
  int32_t hdr[2] = {0, 0};
  in.read(reinterpret_cast<char*>(hdr), sizeof(hdr));
  if (!in || hdr[0] < 1 || hdr[1] != 1) {
    std::fprintf(stderr, "%s: bad header (m = %d, d = %d)\n", path.c_str(), hdr[0], hdr[1]);
    return false;
  }
  out->resize(static_cast<size_t>(hdr[0]));
  in.read(reinterpret_cast<char*>(out->data()), static_cast<std::streamsize>(out->size() * 8));
  if (!in) {
    std::fprintf(stderr, "%s: truncated, expected %d offsets\n", path.c_str(), hdr[0]);
    return false;
  }
  return true;
}

bool ReadSets(const std::string& prefix, Sets* s) {
  auto reader = vectord::storage::DatasetReader::Open(prefix + ".u8bin");
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return false;
  }
  const auto& info = (*reader)->info();
  s->dim = info.dim;
  s->tokens.resize(info.n * info.dim);
  const vectord::Status st = (*reader)->ReadFloat(0, info.n, s->tokens.data());
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return false;
  }
  if (!ReadOffsets(prefix + ".offsets", &s->offsets)) return false;
  if (s->offsets.front() != 0 || s->offsets.back() != info.n) {
    std::fprintf(stderr, "%s.offsets: offsets span %lu..%lu, the file has %zu rows\n",
                 prefix.c_str(), static_cast<unsigned long>(s->offsets.front()),
                 static_cast<unsigned long>(s->offsets.back()), info.n);
    return false;
  }
  for (size_t i = 0; i < info.n; ++i) {  // /255, then unit length (the /255 cancels out)
    float* v = s->tokens.data() + i * info.dim;
    double norm = 0;
    for (uint32_t k = 0; k < info.dim; ++k) norm += double{v[k] / 255.0f} * (v[k] / 255.0f);
    const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
    for (uint32_t k = 0; k < info.dim; ++k) v[k] = v[k] / 255.0f * inv;
  }
  return true;
}

bool ReadIvecs(const std::string& path, std::vector<int32_t>* out, size_t* n, uint32_t* dim) {
  auto reader = vectord::storage::DatasetReader::Open(path);
  if (!reader.ok()) {
    std::fprintf(stderr, "%s\n", reader.status().ToString().c_str());
    return false;
  }
  *n = (*reader)->info().n;
  *dim = (*reader)->info().dim;
  out->resize(*n * *dim);
  const vectord::Status st = (*reader)->ReadRaw(0, *n, out->data());
  if (!st.ok()) std::fprintf(stderr, "%s\n", st.ToString().c_str());
  return st.ok();
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      if (i > start) out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
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
  std::string method, params;
  uint32_t fde_dim = 0;
  double cands = 0, r10 = 0, r100 = 0, src10 = 0, qps = 0, p50 = 0, p99 = 0, fde_bytes = 0;
  double build_s = 0;
};

// Runs `search(q)` for every query (timed one by one) and scores it against `truth`.
template <typename F>
Row Measure(size_t nq, const std::vector<std::vector<Neighbor>>& truth,
            const std::vector<int32_t>& source, F search) {
  Row row;
  std::vector<double> lat(nq);
  double total = 0;
  for (size_t q = 0; q < nq; ++q) {
    size_t cands = 0;
    const auto t0 = Clock::now();
    const std::vector<Neighbor> res = search(q, &cands);
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    lat[q] = s;
    total += s;
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

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(VECTORD_SHARED_DATA) + "/mate/multivec";
  size_t max_queries = SIZE_MAX;
  std::string csv_path;
  bool quick = false;
  std::string shapes_arg, cs_arg, kp_arg;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--data" && v) {
      dir = v, ++i;
    } else if (a == "--queries" && v) {
      max_queries = std::stoul(v), ++i;
    } else if (a == "--csv" && v) {
      csv_path = v, ++i;
    } else if (a == "--shapes" && v) {
      shapes_arg = v, ++i;
    } else if (a == "--cs" && v) {
      cs_arg = v, ++i;
    } else if (a == "--kprime" && v) {
      kp_arg = v, ++i;
    } else if (a == "--quick") {
      quick = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--data DIR] [--queries N] [--csv FILE] [--quick] [--shapes S] [--cs "
                   "C,..] [--kprime K,..]\n",
                   argv[0]);
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
  std::printf("# bench_muvera: Chamfer retrieval, exact vs MUVERA vs token-level, 1 thread\n");
  std::printf("# cpu: %s, %u hardware threads; kernels: distance %s, chamfer %s\n",
              CpuModel().c_str(), std::thread::hardware_concurrency(),
              vectord::index::KernelLevel(), vectord::index::ChamferKernelLevel());
  std::printf(
      "# data: %s: %zu documents (%zu vectors, %.1f per doc), %zu queries (%.1f vectors "
      "per query), dim %u\n",
      dir.c_str(), docs.n(), docs.offsets.back(),
      static_cast<double>(docs.offsets.back()) / docs.n(), nq,
      static_cast<double>(queries.offsets[nq]) / nq, dim);
  for (size_t i = 0; i < docs.n(); ++i) {
    if (docs.size(i) == 0) std::printf("# warning: document %zu has no vectors\n", i);
  }

  const auto view = docs.view();
  std::vector<Row> rows;

  // (a) Exact Chamfer brute force: the truth for the other methods, checked against gt.ivecs.
  std::vector<std::vector<Neighbor>> truth(nq);
  {
    Row r = Measure(nq, truth, source, [&](size_t q, size_t* cands) {
      *cands = docs.n();
      truth[q] =
          vectord::index::ChamferTopK(queries.set(q), queries.size(q), view, nullptr, 0, 100);
      return truth[q];
    });
    // Measure scored against truth while filling it: recompute against itself and gt.ivecs.
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
    r.params = "brute force (recall vs gt.ivecs)";
    rows.push_back(r);
  }
  const double exact_qps = rows[0].qps;

  // (b) MUVERA.
  // SimHash origin for the centred shapes: the mean document token (muvera.h, `center`).
  std::vector<float> mean(dim, 0.0f);
  {
    std::vector<double> acc(dim, 0.0);
    for (size_t t = 0; t < docs.offsets.back(); ++t) {
      for (uint32_t k = 0; k < dim; ++k) acc[k] += docs.tokens[t * dim + k];
    }
    for (uint32_t k = 0; k < dim; ++k) mean[k] = static_cast<float>(acc[k] / docs.offsets.back());
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
    for (size_t i = 0; i < docs.n(); ++i) {
      enc->EncodeDocument(docs.set(i), docs.size(i), fdes.data() + i * fd);
    }
    const double build_s = std::chrono::duration<double>(Clock::now() - t0).count();
    const vectord::index::FlatView fv{fdes.data(), docs.n(), fd, vectord::DataType::kFloat32,
                                      vectord::Distance::kDot};
    std::vector<float> qf(fd);
    std::vector<uint32_t> ids;
    for (size_t c : cs) {
      Row r = Measure(nq, truth, source, [&](size_t q, size_t* cands) {
        enc->EncodeQuery(queries.set(q), queries.size(q), qf.data());
        const auto top = vectord::index::FlatSearch(fv, qf.data(), c);
        ids.clear();
        for (const Neighbor& n : top) ids.push_back(n.row);
        *cands = ids.size();
        return vectord::index::ChamferTopK(queries.set(q), queries.size(q), view, ids.data(),
                                           ids.size(), 100);
      });
      char buf[128];
      std::snprintf(buf, sizeof(buf), "k_sim=%u d_proj=%u r_reps=%u final=%u %s C=%zu", sh.k_sim,
                    sh.d_proj, sh.r_reps, sh.final_dim, sh.center ? "ctr" : "0", c);
      r.method = "muvera";
      r.params = buf;
      r.fde_dim = fd;
      r.fde_bytes = 4.0 * fd;
      r.build_s = build_s;
      rows.push_back(r);
    }
  }

  // (c) Token-level: exact inner-product search over all document tokens.
  {
    std::vector<uint32_t> token_doc(docs.offsets.back());
    for (size_t i = 0; i < docs.n(); ++i) {
      for (uint64_t t = docs.offsets[i]; t < docs.offsets[i + 1]; ++t) {
        token_doc[t] = static_cast<uint32_t>(i);
      }
    }
    const vectord::index::FlatView tv{docs.tokens.data(), docs.offsets.back(), dim,
                                      vectord::DataType::kFloat32, vectord::Distance::kDot};
    std::vector<size_t> kps = {2, 4, 8, 16, 32};
    if (quick) kps = {4};
    if (!kp_arg.empty()) {
      kps.clear();
      for (const std::string& c : Split(kp_arg, ',')) kps.push_back(std::stoul(c));
    }
    std::vector<char> seen(docs.n());
    std::vector<uint32_t> ids;
    for (size_t kp : kps) {
      Row r = Measure(nq, truth, source, [&](size_t q, size_t* cands) {
        ids.clear();
        for (size_t t = 0; t < queries.size(q); ++t) {
          for (const Neighbor& n : vectord::index::FlatSearch(tv, queries.set(q) + t * dim, kp)) {
            const uint32_t d = token_doc[n.row];
            if (!seen[d]) seen[d] = 1, ids.push_back(d);
          }
        }
        for (uint32_t d : ids) seen[d] = 0;
        *cands = ids.size();
        return vectord::index::ChamferTopK(queries.set(q), queries.size(q), view, ids.data(),
                                           ids.size(), 100);
      });
      r.method = "token";
      r.params = "k'=" + std::to_string(kp) + " (flat token index)";
      rows.push_back(r);
    }
  }

  std::printf("\n%-7s %-44s %6s %8s %6s %6s %6s %9s %7s %8s %8s %9s\n", "method", "params",
              "fdedim", "cand/q", "R@10", "R@100", "src@10", "QPS", "xexact", "p50ms", "p99ms",
              "B/doc");
  for (const Row& r : rows) {
    std::printf("%-7s %-44s %6u %8.1f %6.3f %6.3f %6.3f %9.1f %7.1f %8.3f %8.3f %9.0f\n",
                r.method.c_str(), r.params.c_str(), r.fde_dim, r.cands, r.r10, r.r100, r.src10,
                r.qps, r.qps / exact_qps, r.p50, r.p99, r.fde_bytes);
  }
  if (!csv_path.empty()) {
    std::ofstream csv(csv_path);
    csv << "method,params,fde_dim,candidates,recall10,recall100,source_in_top10,qps,speedup,"
           "p50_ms,p99_ms,fde_bytes_per_doc,fde_build_s\n";
    for (const Row& r : rows) {
      csv << r.method << ",\"" << r.params << "\"," << r.fde_dim << "," << r.cands << "," << r.r10
          << "," << r.r100 << "," << r.src10 << "," << r.qps << "," << r.qps / exact_qps << ","
          << r.p50 << "," << r.p99 << "," << r.fde_bytes << "," << r.build_s << "\n";
    }
  }
  return 0;
}
