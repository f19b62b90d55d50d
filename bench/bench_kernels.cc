// Kernel micro-benchmarks: our dispatched distance kernels against Faiss's (Debian build, compiled
// without AVX2) for float32 at d = 128 and 768, and our uint8 L2 kernels, at every kernel level.
#include <benchmark/benchmark.h>
#include <faiss/utils/distances.h>

#include <random>
#include <vector>

#include "index/distance.h"

namespace {

using vectord::index::SetKernelLevel;

// Many rows so that the benchmark streams memory the way a scan does (256 rows, still in L2).
constexpr size_t kRows = 256;

template <typename T>
std::vector<T> Random(size_t n, int seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> u(0, 255);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(rng));
  return v;
}

// state.range(0) = dimension, state.range(1) = kernel level (0 scalar, 1 avx2, 2 avx512).
bool PickLevel(benchmark::State& state) {
  static const char* const kLevels[] = {"scalar", "avx2", "avx512"};
  if (!SetKernelLevel(kLevels[state.range(1)])) {
    state.SkipWithError("kernel level not supported by this CPU");
    return false;
  }
  state.SetLabel(kLevels[state.range(1)]);
  return true;
}

template <typename Fn>
void RunRows(benchmark::State& state, size_t d, Fn fn) {
  for (auto _ : state) {
    for (size_t r = 0; r < kRows; ++r) benchmark::DoNotOptimize(fn(r));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kRows));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRows * d));
}

void BM_OursL2F32(benchmark::State& state) {
  if (!PickLevel(state)) return;
  const size_t d = state.range(0);
  const auto q = Random<float>(d, 1), x = Random<float>(d * kRows, 2);
  RunRows(state, d, [&](size_t r) { return vectord::index::L2SqrF32(q.data(), &x[r * d], d); });
  SetKernelLevel("auto");
}
void BM_OursIpF32(benchmark::State& state) {
  if (!PickLevel(state)) return;
  const size_t d = state.range(0);
  const auto q = Random<float>(d, 1), x = Random<float>(d * kRows, 2);
  RunRows(state, d, [&](size_t r) { return vectord::index::IpF32(q.data(), &x[r * d], d); });
  SetKernelLevel("auto");
}
void BM_FaissL2F32(benchmark::State& state) {
  const size_t d = state.range(0);
  const auto q = Random<float>(d, 1), x = Random<float>(d * kRows, 2);
  RunRows(state, d, [&](size_t r) { return faiss::fvec_L2sqr(q.data(), &x[r * d], d); });
}
void BM_FaissIpF32(benchmark::State& state) {
  const size_t d = state.range(0);
  const auto q = Random<float>(d, 1), x = Random<float>(d * kRows, 2);
  RunRows(state, d, [&](size_t r) { return faiss::fvec_inner_product(q.data(), &x[r * d], d); });
}
void BM_OursL2U8(benchmark::State& state) {
  if (!PickLevel(state)) return;
  const size_t d = state.range(0);
  const auto q = Random<uint8_t>(d, 1), x = Random<uint8_t>(d * kRows, 2);
  RunRows(state, d, [&](size_t r) { return vectord::index::L2SqrU8(q.data(), &x[r * d], d); });
  SetKernelLevel("auto");
}
// The block kernel the exact search uses: all kRows rows in one call.
void BM_OursL2U8Rows(benchmark::State& state) {
  if (!PickLevel(state)) return;
  const size_t d = state.range(0);
  const auto q = Random<uint8_t>(d, 1), x = Random<uint8_t>(d * kRows, 2);
  std::vector<uint32_t> out(kRows);
  for (auto _ : state) {
    vectord::index::L2SqrU8Rows(q.data(), x.data(), kRows, d, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kRows));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kRows * d));
  SetKernelLevel("auto");
}
// Faiss on the same uint8 data converted to float (what IndexFlatL2 would scan).
void BM_FaissL2U8AsF32(benchmark::State& state) {
  const size_t d = state.range(0);
  const auto q = Random<float>(d, 1), x = Random<float>(d * kRows, 2);
  RunRows(state, d, [&](size_t r) { return faiss::fvec_L2sqr(q.data(), &x[r * d], d); });
}

void Levels(benchmark::internal::Benchmark* b) {
  for (int64_t d : {128, 768}) {
    for (int64_t level : {0, 1, 2}) b->Args({d, level});
  }
}
void Dims(benchmark::internal::Benchmark* b) {
  for (int64_t d : {128, 768}) b->Args({d, 0});
}

BENCHMARK(BM_OursL2F32)->Apply(Levels);
BENCHMARK(BM_FaissL2F32)->Apply(Dims);
BENCHMARK(BM_OursIpF32)->Apply(Levels);
BENCHMARK(BM_FaissIpF32)->Apply(Dims);
BENCHMARK(BM_OursL2U8)->Apply(Levels);
BENCHMARK(BM_OursL2U8Rows)->Apply(Levels);
BENCHMARK(BM_FaissL2U8AsF32)->Apply(Dims);

}  // namespace

BENCHMARK_MAIN();
