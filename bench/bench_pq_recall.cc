// PQ recall with re-ranking on mate/sift: trains a PQ on a random sample of the base vectors,
// encodes all of them, and for every query scans all codes with the look-up table (4-bit: the
// quantized fast-scan kernel; 8-bit: the float Scan8), keeps the best R by PQ distance, re-ranks
// them with exact L2 and reports recall@10 against gt.ivecs. Prints the machine, a table and CSV.
//
// Usage: bench_pq_recall [--data DIR] [--configs 4:32,4:64,8:16] [--r 100] [--train 50000]
//                        [--queries N] [--threads T] [--train_threads T]
// scan_ms = LUT + quantization + kernel over all codes, one thread; total_ms adds top-R selection
// and the exact re-rank of R candidates. pq_r@10 = recall@10 of the PQ order without re-ranking.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "index/distance.h"
#include "index/fast_scan.h"
#include "index/pq.h"

namespace {

using namespace vectord::index;  // NOLINT: benchmark program
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// texmex vecs file: per record an int32 dimension, then d elements of T.
template <typename T>
bool ReadVecs(const std::string& path, std::vector<T>* out, size_t* n, uint32_t* dim) {
  std::ifstream in(path, std::ios::binary);
  int32_t d = 0;
  if (!in.read(reinterpret_cast<char*>(&d), 4) || d <= 0) {
    std::fprintf(stderr, "%s: cannot read the first record\n", path.c_str());
    return false;
  }
  in.seekg(0, std::ios::end);
  const size_t rec = 4 + sizeof(T) * static_cast<size_t>(d);
  const size_t bytes = static_cast<size_t>(in.tellg());
  if (bytes % rec != 0) {
    std::fprintf(stderr, "%s: size %zu is not a multiple of %zu\n", path.c_str(), bytes, rec);
    return false;
  }
  *n = bytes / rec;
  *dim = static_cast<uint32_t>(d);
  out->resize(*n * d);
  in.seekg(0);
  for (size_t i = 0; i < *n; ++i) {
    in.seekg(4, std::ios::cur);
    in.read(reinterpret_cast<char*>(out->data() + i * d), static_cast<std::streamsize>(rec - 4));
  }
  return static_cast<bool>(in);
}

template <typename Fn>
void ParallelFor(size_t n, unsigned threads, Fn fn) {
  std::vector<std::thread> pool;
  const size_t chunk = (n + threads - 1) / threads;
  for (unsigned t = 0; t < threads; ++t) {
    const size_t lo = t * chunk, hi = std::min(n, lo + chunk);
    if (lo < hi) pool.emplace_back([=] { fn(lo, hi); });
  }
  for (auto& th : pool) th.join();
}

struct Config {
  uint32_t nbits, m;
};

}  // namespace

int main(int argc, char** argv) {
  std::string data = std::string(VECTORD_SHARED_DATA) + "/mate/sift";
  std::string configs = "4:16,4:32,4:64,8:16,8:32";
  size_t r = 100, ntrain = 50000, nq_max = 1000;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  int train_threads = 1;  // OpenMP threads for Faiss k-means (0 = OpenMP default)
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--data")
      data = v;
    else if (a == "--configs")
      configs = v;
    else if (a == "--r")
      r = std::stoul(v);
    else if (a == "--train")
      ntrain = std::stoul(v);
    else if (a == "--queries")
      nq_max = std::stoul(v);
    else if (a == "--threads")
      threads = static_cast<unsigned>(std::stoul(v));
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  std::vector<uint8_t> base_u8, query_u8;
  std::vector<int32_t> gt;
  size_t n = 0, nq = 0, ngt = 0;
  uint32_t dim = 0, qdim = 0, k_gt = 0;
  if (!ReadVecs(data + "/base.bvecs", &base_u8, &n, &dim) ||
      !ReadVecs(data + "/query.bvecs", &query_u8, &nq, &qdim) ||
      !ReadVecs(data + "/gt.ivecs", &gt, &ngt, &k_gt) || qdim != dim || ngt != nq || k_gt < 10) {
    return 1;
  }
  nq = std::min(nq, nq_max);
  std::vector<float> base(base_u8.begin(), base_u8.end());
  std::vector<float> queries(query_u8.begin(), query_u8.begin() + nq * dim);
  std::vector<float> sample(std::min(ntrain, n) * dim);
  {
    std::vector<uint32_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), std::mt19937(1));
    for (size_t i = 0; i < sample.size() / dim; ++i) {
      std::memcpy(&sample[i * dim], &base[size_t{perm[i]} * dim], dim * sizeof(float));
    }
  }
  std::printf("# bench_pq_recall: %s, %zu base x %u, %zu queries, train sample %zu, R %zu\n",
              data.c_str(), n, dim, nq, sample.size() / dim, r);
  std::printf("# fast-scan level %s, kernel level %s, %u threads (encode only; queries on 1)\n",
              FastScanLevel(), KernelLevel(), threads);
  std::printf("%-5s %-4s %-9s %-8s %-8s %-10s %-10s %-9s %-9s\n", "nbits", "m", "bytes/vec",
              "train_s", "encode_s", "recall@10", "pq_r@10", "scan_ms", "total_ms");
  std::ostringstream csv;
  csv << "nbits,m,code_bytes,train_s,encode_s,recall_at_10_rerank,recall_at_10_pq_only,"
         "scan_ms_per_query,total_ms_per_query\n";

  std::stringstream cs(configs);
  std::string item;
  while (std::getline(cs, item, ',')) {
    Config c{};
    if (std::sscanf(item.c_str(), "%u:%u", &c.nbits, &c.m) != 2) {
      std::fprintf(stderr, "bad config '%s' (want nbits:m)\n", item.c_str());
      return 2;
    }
    const auto t0 = Clock::now();
    auto trained = ProductQuantizer::Train({dim, c.m, c.nbits}, sample.data(), sample.size() / dim,
                                           1234, train_threads);
    if (!trained.ok()) {
      std::fprintf(stderr, "%s\n", trained.status().ToString().c_str());
      return 1;
    }
    const ProductQuantizer& pq = *trained;
    const auto t1 = Clock::now();
    const size_t cs_bytes = pq.code_size();
    std::vector<uint8_t> codes(n * cs_bytes);
    ParallelFor(n, threads, [&](size_t lo, size_t hi) {
      pq.Encode(&base[lo * dim], hi - lo, &codes[lo * cs_bytes]);
    });
    const auto t2 = Clock::now();
    const size_t nblocks = (n + kFastScanBlock - 1) / kFastScanBlock;
    std::vector<uint8_t> packed;
    if (c.nbits == 4) {
      packed.resize(nblocks * FastScanBlockBytes(c.m));
      PackFastScan(codes.data(), n, c.m, packed.data());
    }

    std::vector<float> lut(size_t{c.m} * pq.ksub()), fdist(n);
    std::vector<uint16_t> acc(nblocks * kFastScanBlock);
    std::vector<std::pair<float, uint32_t>> cand(n);
    std::vector<uint32_t> hist(65536);
    double scan_s = 0, total_s = 0, hits = 0, hits_pq = 0;
    for (size_t qi = 0; qi < nq; ++qi) {
      const float* q = &queries[qi * dim];
      const auto s0 = Clock::now();
      auto s1 = s0;
      pq.ComputeLut(q, PqMetric::kL2, lut.data());
      const size_t rr = std::min(r, n);
      size_t ncand = 0;
      if (c.nbits == 4) {
        const QuantizedLut ql = QuantizeLut(lut.data(), c.m);
        FastScanAccumulate(packed.data(), nblocks, c.m, ql, acc.data());
        s1 = Clock::now();
        // Top rr by a counting pass over the uint16 sums: threshold t with fewer than rr below.
        std::fill(hist.begin(), hist.end(), 0);
        for (size_t i = 0; i < n; ++i) ++hist[acc[i]];
        size_t below = 0, t = 0;
        while (below + hist[t] < rr) below += hist[t++];
        size_t ties = rr - below;
        for (size_t i = 0; i < n; ++i) {
          if (acc[i] < t || (acc[i] == t && ties > 0 && ties--)) {
            cand[ncand++] = {static_cast<float>(acc[i]), static_cast<uint32_t>(i)};
          }
        }
      } else {
        Scan8(codes.data(), n, c.m, lut.data(), fdist.data());
        s1 = Clock::now();
        for (size_t i = 0; i < n; ++i) cand[i] = {fdist[i], static_cast<uint32_t>(i)};
        std::nth_element(cand.begin(), cand.begin() + rr, cand.end());
        ncand = rr;
      }
      std::sort(cand.begin(), cand.begin() + ncand);
      for (size_t j = 0; j < std::min<size_t>(10, rr); ++j) {
        hits_pq += std::count(&gt[qi * k_gt], &gt[qi * k_gt] + 10, cand[j].second);
      }
      for (size_t j = 0; j < rr; ++j) {
        cand[j].first = L2SqrF32U8(q, &base_u8[size_t{cand[j].second} * dim], dim);
      }
      std::partial_sort(cand.begin(), cand.begin() + std::min<size_t>(10, rr), cand.begin() + rr);
      const auto s2 = Clock::now();
      for (size_t j = 0; j < std::min<size_t>(10, rr); ++j) {
        hits += std::count(&gt[qi * k_gt], &gt[qi * k_gt] + 10, cand[j].second);
      }
      scan_s += Seconds(s0, s1);
      total_s += Seconds(s0, s2);
    }
    const double recall = hits / (10.0 * nq), recall_pq = hits_pq / (10.0 * nq);
    const double scan_ms = 1e3 * scan_s / nq, total_ms = 1e3 * total_s / nq;
    std::printf("%-5u %-4u %-9zu %-8.1f %-8.1f %-10.4f %-10.4f %-9.3f %-9.3f\n", c.nbits, c.m,
                cs_bytes, Seconds(t0, t1), Seconds(t1, t2), recall, recall_pq, scan_ms, total_ms);
    std::fflush(stdout);
    csv << c.nbits << ',' << c.m << ',' << cs_bytes << ',' << Seconds(t0, t1) << ','
        << Seconds(t1, t2) << ',' << recall << ',' << recall_pq << ',' << scan_ms << ',' << total_ms
        << '\n';
  }
  std::printf("\n%s", csv.str().c_str());
  return 0;
}
