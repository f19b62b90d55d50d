// PQ look-up-table scan micro-benchmarks at d = 128, m = 16/32/64: our 4-bit fast-scan kernel at
// every CPU level (accumulation only, and a whole one-query top-10 search: LUT + quantization +
// scan + selection) against Faiss's IndexPQFastScan search over the very same codes (Debian's
// Faiss is built without AVX2, so its fast-scan runs its emulated SIMD), and the 8-bit float-LUT
// scan. Counter ns_per_vec = nanoseconds per database vector scanned.
//
// Usage: bench_fast_scan [Google Benchmark flags, e.g. --benchmark_filter=Search]
#include <benchmark/benchmark.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPQFastScan.h>
#include <omp.h>

#include <map>
#include <memory>
#include <queue>
#include <random>
#include <utility>
#include <vector>

#include "index/fast_scan.h"
#include "index/pq.h"

namespace {

using namespace vectord::index;  // NOLINT: benchmark file

constexpr uint32_t kDim = 128;
constexpr size_t kN = 1 << 16;  // vectors scanned per query (64k: a few large posting lists)
constexpr size_t kTrain = 10000;

std::vector<float> Gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

// One trained PQ and its codes per (m, nbits), built once.
struct Fixture {
  std::unique_ptr<ProductQuantizer> pq;
  std::vector<uint8_t> codes, packed;
  std::vector<float> query;
  std::unique_ptr<faiss::IndexPQFastScan> faiss_fs;
};

const Fixture& Get(uint32_t m, uint32_t nbits) {
  static std::map<std::pair<uint32_t, uint32_t>, Fixture> cache;
  auto it = cache.find({m, nbits});
  if (it != cache.end()) return it->second;
  Fixture& f = cache[{m, nbits}];
  const auto x = Gaussian(kN * kDim, 1);
  auto pq = ProductQuantizer::Train({kDim, m, nbits}, x.data(), kTrain, 1, 1);
  if (!pq.ok()) std::abort();
  f.pq = std::make_unique<ProductQuantizer>(std::move(pq).value());
  f.codes.resize(kN * f.pq->code_size());
  f.pq->Encode(x.data(), kN, f.codes.data());
  f.query = Gaussian(kDim, 2);
  if (nbits == 4) {
    f.packed.resize(kN / kFastScanBlock * FastScanBlockBytes(m));
    PackFastScan(f.codes.data(), kN, m, f.packed.data());
    // Faiss over the same codebooks and codes (Faiss packs 4-bit codes the way Encode does).
    faiss::IndexPQ ipq(kDim, m, 4);
    ipq.pq.centroids = f.pq->centroids();
    ipq.is_trained = true;
    ipq.codes = f.codes;
    ipq.ntotal = kN;
    f.faiss_fs = std::make_unique<faiss::IndexPQFastScan>(ipq, 32);
  }
  return f;
}

const char* const kLevels[] = {"scalar", "avx2", "avx512"};

bool PickLevel(benchmark::State& state, int arg) {
  if (!SetFastScanLevel(kLevels[state.range(arg)])) {
    state.SkipWithError("level not supported by this CPU");
    return false;
  }
  state.SetLabel(kLevels[state.range(arg)]);
  return true;
}

void SetCounters(benchmark::State& state) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kN));
  // Rate of (vectors / 1e9), inverted: seconds per 1e9 vectors = nanoseconds per vector.
  state.counters["ns_per_vec"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kN) * 1e-9,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// range(0) = m, range(1) = level.
void BM_OursAccumulate4(benchmark::State& state) {
  const uint32_t m = static_cast<uint32_t>(state.range(0));
  const Fixture& f = Get(m, 4);
  if (!PickLevel(state, 1)) return;
  std::vector<float> lut(m * 16);
  f.pq->ComputeLut(f.query.data(), PqMetric::kL2, lut.data());
  const QuantizedLut ql = QuantizeLut(lut.data(), m);
  std::vector<uint16_t> out(kN);
  for (auto _ : state) {
    FastScanAccumulate(f.packed.data(), kN / kFastScanBlock, m, ql, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state);
  SetFastScanLevel("auto");
}

// Whole top-10 search for one query, best level: LUT, quantization, scan, bounded heap.
void BM_OursSearch4(benchmark::State& state) {
  const uint32_t m = static_cast<uint32_t>(state.range(0));
  const Fixture& f = Get(m, 4);
  state.SetLabel(FastScanLevel());
  std::vector<float> lut(m * 16);
  std::vector<uint16_t> acc(kN);
  for (auto _ : state) {
    f.pq->ComputeLut(f.query.data(), PqMetric::kL2, lut.data());
    const QuantizedLut ql = QuantizeLut(lut.data(), m);
    FastScanAccumulate(f.packed.data(), kN / kFastScanBlock, m, ql, acc.data());
    std::priority_queue<std::pair<uint16_t, uint32_t>> heap;
    for (uint32_t i = 0; i < kN; ++i) {
      if (heap.size() < 10) {
        heap.emplace(acc[i], i);
      } else if (acc[i] < heap.top().first) {
        heap.pop();
        heap.emplace(acc[i], i);
      }
    }
    benchmark::DoNotOptimize(heap.top());
  }
  SetCounters(state);
}

void BM_FaissPQFastScanSearch(benchmark::State& state) {
  const uint32_t m = static_cast<uint32_t>(state.range(0));
  const Fixture& f = Get(m, 4);
  std::vector<float> dist(10);
  std::vector<faiss::Index::idx_t> ids(10);
  for (auto _ : state) {
    f.faiss_fs->search(1, f.query.data(), 10, dist.data(), ids.data());
    benchmark::DoNotOptimize(ids.data());
  }
  SetCounters(state);
}

// 8-bit codes, float LUT; range(0) = m, range(1) = level.
void BM_OursScan8(benchmark::State& state) {
  const uint32_t m = static_cast<uint32_t>(state.range(0));
  const Fixture& f = Get(m, 8);
  if (!PickLevel(state, 1)) return;
  std::vector<float> lut(m * 256), out(kN);
  f.pq->ComputeLut(f.query.data(), PqMetric::kL2, lut.data());
  for (auto _ : state) {
    Scan8(f.codes.data(), kN, m, lut.data(), out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  SetCounters(state);
  SetFastScanLevel("auto");
}

BENCHMARK(BM_OursAccumulate4)->ArgsProduct({{16, 32, 64}, {0, 1, 2}});
BENCHMARK(BM_OursSearch4)->Arg(16)->Arg(32)->Arg(64);
BENCHMARK(BM_FaissPQFastScanSearch)->Arg(16)->Arg(32)->Arg(64);
BENCHMARK(BM_OursScan8)->ArgsProduct({{16, 32}, {0, 1, 2}});

}  // namespace

int main(int argc, char** argv) {
  omp_set_num_threads(1);  // one query on one thread, for Faiss as for us
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("fast_scan_level", FastScanLevel());
  benchmark::AddCustomContext("vectors_per_query", std::to_string(kN));
  benchmark::AddCustomContext("faiss", "Debian libfaiss 1.7.3 (no AVX2), 1 OpenMP thread");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
