// Scaled-up SIFT-like dataset generator for the 10M benchmarks (docs/benchmarks.md "10M on the
// device"): writes N uint8 x 128 base vectors and Q queries drawn from a smoothed bootstrap of real
// SIFT descriptors (../shared/data/mate/sift), so the distribution is that of real descriptors.
//
// Each output row is one real descriptor x picked uniformly at random from --base, optionally
// mirrored, plus Gaussian noise, rounded and clipped to [0, 255]:
//   y_j = clip(round(x'_j + s * std_j * g_j)),  g_j ~ N(0, 1)
// - x' = x, or with probability 1/2 (--mirror 1) x reflected across the keypoint's orientation
//   axis: spatial cell (r, c, o) -> (3 - r, c, (8 - o) mod 8) for OpenCV's 4 x 4 x 8 layout
//   (index (r * 4 + c) * 8 + o). That is the exact descriptor of the mirrored patch, and it keeps
//   the dominant orientation in bin 0, so it is still a canonical SIFT descriptor.
// - std_j is the per-dimension standard deviation of the real base (per-dimension spread).
// - s is chosen so that the expected noise norm is --bandwidth times the median distance of a real
//   descriptor to its nearest real neighbour (measured here on --sample rows, exact). With the
//   default 0.5 the copies of one descriptor blend with those of its neighbours: sampling from a
//   Gaussian kernel density estimate of the real data, not N/n tight blobs.
// Queries are the real queries of --query (pictures not in the base), perturbed the same way (no
// resampling, no mirror), with a separate random stream. Row i depends only on (--seed, i), so the
// output is the same for any thread count. Ground truth: `vectorctl gt` on the outputs.
//
//   gen_clustered --base base.bvecs --query query.bvecs --n 10000000 --out-base b.u8bin
//                 --out-query q.u8bin [--nq 1000] [--bandwidth 0.5] [--mirror 1] [--seed 42]
//                 [--sample 2000] [--threads 0]
// Output formats follow the extensions (u8bin or bvecs, storage/dataset_io.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "index/flat_search.h"
#include "storage/dataset_io.h"

namespace {

using vectord::Status;
using vectord::storage::DatasetReader;
using vectord::storage::DatasetWriter;

constexpr uint32_t kDim = 128;

struct Args {
  std::string base, query, out_base, out_query;
  uint64_t n = 0;
  uint64_t nq = 1000;
  double bandwidth = 0.5;
  bool mirror = true;
  uint64_t seed = 42;
  uint32_t sample = 2000;
  unsigned threads = 0;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gen_clustered: %s\n", what.c_str());
  std::exit(1);
}

void Check(const Status& s) {
  if (!s.ok()) Die(s.ToString());
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Small per-row generator (xorshift64*), seeded from (seed, stream, row).
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream, uint64_t row)
      : s_(SplitMix(SplitMix(seed ^ (stream * 0x632BE59BD9B4E019ull)) + row) | 1) {}
  uint64_t Next() {
    s_ ^= s_ >> 12;
    s_ ^= s_ << 25;
    s_ ^= s_ >> 27;
    return s_ * 0x2545F4914F6CDD1Dull;
  }
  double Uniform() { return ((Next() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }  // (0, 1)
  // Two independent N(0, 1) values (Box-Muller).
  void Gauss2(float* a, float* b) {
    const double r = std::sqrt(-2.0 * std::log(Uniform()));
    const double t = 6.283185307179586 * Uniform();
    *a = static_cast<float>(r * std::cos(t));
    *b = static_cast<float>(r * std::sin(t));
  }

 private:
  uint64_t s_;
};

std::vector<uint8_t> LoadAll(const std::string& path, size_t* n) {
  auto r = DatasetReader::Open(path);
  Check(r.status());
  const auto& info = (*r)->info();
  if (info.dim != kDim || info.type != vectord::storage::ElementType::kUint8) {
    Die("'" + path + "' must hold uint8 x 128 vectors (it has " + std::to_string(info.dim) + " x " +
        vectord::storage::ElementTypeName(info.type) + ")");
  }
  std::vector<uint8_t> rows(info.n * kDim);
  Check((*r)->ReadRaw(0, info.n, rows.data()));
  *n = info.n;
  return rows;
}

// Writes `x` (mirrored when asked) plus noise into `out`.
void Perturb(const uint8_t* x, bool mirror, const float* sigma, Rng* rng, uint8_t* out) {
  for (uint32_t j = 0; j < kDim; j += 2) {
    float g[2];
    rng->Gauss2(&g[0], &g[1]);
    for (uint32_t h = 0; h < 2; ++h) {
      const uint32_t d = j + h;
      uint32_t src = d;
      if (mirror) {
        const uint32_t r = d / 32, c = (d / 8) % 4, o = d % 8;
        src = ((3 - r) * 4 + c) * 8 + ((8 - o) & 7);
      }
      const float v = std::nearbyint(static_cast<float>(x[src]) + sigma[d] * g[h]);
      out[d] = static_cast<uint8_t>(std::clamp(v, 0.0f, 255.0f));
    }
  }
}

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (k == "--base") {
      a->base = v;
    } else if (k == "--query") {
      a->query = v;
    } else if (k == "--out-base") {
      a->out_base = v;
    } else if (k == "--out-query") {
      a->out_query = v;
    } else if (k == "--n") {
      a->n = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--nq") {
      a->nq = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--bandwidth") {
      a->bandwidth = std::atof(v.c_str());
    } else if (k == "--mirror") {
      a->mirror = v != "0";
    } else if (k == "--seed") {
      a->seed = std::strtoull(v.c_str(), nullptr, 10);
    } else if (k == "--sample") {
      a->sample = static_cast<uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
    } else if (k == "--threads") {
      a->threads = static_cast<unsigned>(std::strtoul(v.c_str(), nullptr, 10));
    } else {
      return false;
    }
  }
  return !a->base.empty() && !a->query.empty() && !a->out_base.empty() && !a->out_query.empty() &&
         a->n > 0 && a->bandwidth >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!ParseArgs(argc, argv, &a)) {
    std::fprintf(stderr,
                 "usage: %s --base F --query F --n N --out-base F --out-query F [--nq 1000] "
                 "[--bandwidth 0.5] [--mirror 1] [--seed 42] [--sample 2000] [--threads 0]\n",
                 argv[0]);
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const unsigned threads =
      a.threads ? a.threads : std::max(1u, std::thread::hardware_concurrency());
  size_t nb = 0, nqs = 0;
  const std::vector<uint8_t> base = LoadAll(a.base, &nb);
  const std::vector<uint8_t> qsrc = LoadAll(a.query, &nqs);
  if (nb < 2 || nqs == 0) Die("--base needs at least 2 rows and --query at least 1");

  // Per-dimension spread of the real data.
  std::vector<double> mean(kDim, 0), var(kDim, 0);
  for (size_t i = 0; i < nb; ++i) {
    for (uint32_t j = 0; j < kDim; ++j) mean[j] += base[i * kDim + j];
  }
  for (auto& m : mean) m /= static_cast<double>(nb);
  for (size_t i = 0; i < nb; ++i) {
    for (uint32_t j = 0; j < kDim; ++j) {
      const double d = base[i * kDim + j] - mean[j];
      var[j] += d * d;
    }
  }
  double sum_var = 0;
  for (auto& v : var) sum_var += (v /= static_cast<double>(nb));

  // Median exact nearest-neighbour distance of sampled real rows (excluding the row itself).
  const uint32_t ns = static_cast<uint32_t>(std::min<size_t>(a.sample, nb));
  std::vector<float> sq(size_t{ns} * kDim);
  std::vector<uint32_t> sample_rows(ns);
  for (uint32_t i = 0; i < ns; ++i) {
    Rng r(a.seed, 3, i);
    sample_rows[i] = static_cast<uint32_t>(r.Next() % nb);
    for (uint32_t j = 0; j < kDim; ++j) sq[size_t{i} * kDim + j] = base[sample_rows[i] * kDim + j];
  }
  vectord::index::FlatView view;
  view.data = base.data();
  view.n = nb;
  view.dim = kDim;
  view.dtype = vectord::DataType::kUint8;
  view.distance = vectord::Distance::kEuclid;
  const auto nn = vectord::index::FlatSearchBatch(view, sq.data(), ns, 2, {}, threads);
  std::vector<float> nnd;
  for (uint32_t i = 0; i < ns; ++i) {
    for (const auto& h : nn[i]) {
      if (h.row != sample_rows[i]) {
        nnd.push_back(h.score);
        break;
      }
    }
  }
  std::nth_element(nnd.begin(), nnd.begin() + nnd.size() / 2, nnd.end());
  const double median_nn = nnd[nnd.size() / 2];
  const double s = a.bandwidth * median_nn / std::sqrt(sum_var);
  std::vector<float> sigma(kDim);
  for (uint32_t j = 0; j < kDim; ++j) sigma[j] = static_cast<float>(s * std::sqrt(var[j]));
  std::fprintf(stderr,
               "gen_clustered: %zu real rows (%s), median NN distance %.1f, data spread %.1f, "
               "bandwidth %.2f -> noise norm ~%.1f, mirror %d, seed %llu, %u threads\n",
               nb, a.base.c_str(), median_nn, std::sqrt(sum_var), a.bandwidth,
               s * std::sqrt(sum_var), a.mirror ? 1 : 0, static_cast<unsigned long long>(a.seed),
               threads);

  // Base rows, generated in parallel blocks and written in order.
  {
    auto w = DatasetWriter::Create(a.out_base, kDim);
    Check(w.status());
    const uint64_t block = 1 << 16;
    std::vector<uint8_t> buf(block * threads * kDim);
    for (uint64_t first = 0; first < a.n; first += block * threads) {
      const uint64_t count = std::min<uint64_t>(block * threads, a.n - first);
      std::vector<std::thread> pool;
      for (unsigned t = 0; t < threads; ++t) {
        pool.emplace_back([&, t]() {
          for (uint64_t i = t * block; i < std::min<uint64_t>((t + 1) * block, count); ++i) {
            Rng r(a.seed, 1, first + i);
            const uint64_t src = r.Next() % nb;
            const bool mirror = a.mirror && (r.Next() & 1);
            Perturb(&base[src * kDim], mirror, sigma.data(), &r, &buf[i * kDim]);
          }
        });
      }
      for (auto& th : pool) th.join();
      Check((*w)->Append(buf.data(), count));
      std::fprintf(stderr, "\r  base %llu / %llu", static_cast<unsigned long long>(first + count),
                   static_cast<unsigned long long>(a.n));
    }
    Check((*w)->Finish());
    std::fprintf(stderr, "\n");
  }
  // Queries: real queries (cycled when --nq is larger), perturbed, not mirrored.
  {
    auto w = DatasetWriter::Create(a.out_query, kDim);
    Check(w.status());
    std::vector<uint8_t> row(kDim);
    for (uint64_t i = 0; i < a.nq; ++i) {
      Rng r(a.seed, 2, i);
      Perturb(&qsrc[(i % nqs) * kDim], false, sigma.data(), &r, row.data());
      Check((*w)->Append(row.data(), 1));
    }
    Check((*w)->Finish());
  }
  std::fprintf(stderr,
               "gen_clustered: wrote %llu base rows to %s and %llu queries to %s in %.1f s\n",
               static_cast<unsigned long long>(a.n), a.out_base.c_str(),
               static_cast<unsigned long long>(a.nq), a.out_query.c_str(),
               std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}
