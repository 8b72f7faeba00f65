// Kernel throughput per dispatch path (single thread). The path is the last benchmark
// argument (0 scalar, 1 avx2, 2 avx512); unsupported paths are skipped. Counters:
// "GB/s" = bytes of weights (or input) streamed per second.
//
//   build-quant/bin/kernels_bench --benchmark_filter=I2sGemv
#include <cstdint>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/kernels/kernels.h"
#include "engine/quant/fp16.h"
#include "engine/quant/i2s.h"

namespace bitparity {
namespace {

const Kernels* PathOrSkip(benchmark::State& state, int64_t arg) {
  const auto path = static_cast<KernelPath>(arg);
  if (!KernelPathSupported(path)) {
    state.SkipWithError("kernel path not supported on this CPU");
    return nullptr;
  }
  state.SetLabel(KernelPathName(path));
  return &KernelsFor(path);
}

void SetBytes(benchmark::State& state, double bytes_per_iter) {
  state.counters["GB/s"] = benchmark::Counter(bytes_per_iter * static_cast<double>(state.iterations()) / 1e9,
                                              benchmark::Counter::kIsRate);
}

// args: rows, k, path
void BM_I2sGemv(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(2));
  if (K == nullptr) return;
  const int64_t rows = state.range(0), k = state.range(1);
  std::mt19937 rng(1);
  std::vector<uint8_t> w(I2sTensorBytes(rows * k));
  for (auto& b : w) b = static_cast<uint8_t>(rng() % 3 * 0x55);  // valid codes only
  std::vector<int8_t> q(k);
  for (auto& v : q) v = static_cast<int8_t>(rng());
  std::vector<int8_t> qa(k);
  K->i2s_prepare_act(q.data(), k, qa.data());
  std::vector<int32_t> out(rows);
  for (auto _ : state) {
    K->i2s_gemv(w.data(), k, rows, qa.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  SetBytes(state, static_cast<double>(rows * k / 4));
}
BENCHMARK(BM_I2sGemv)->ArgsProduct({{2560}, {2560}, {0, 1, 2}})->ArgsProduct({{6912}, {2560}, {0, 1, 2}})
    ->ArgsProduct({{2560}, {6912}, {0, 1, 2}})->Unit(benchmark::kMicrosecond);

// args: rows, k, n_act, path
void BM_I2sGemm(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(3));
  if (K == nullptr) return;
  const int64_t rows = state.range(0), k = state.range(1), acts = state.range(2);
  std::mt19937 rng(2);
  std::vector<uint8_t> w(I2sTensorBytes(rows * k));
  for (auto& b : w) b = static_cast<uint8_t>(rng() % 3 * 0x55);
  std::vector<int8_t> q(acts * k);
  for (auto& v : q) v = static_cast<int8_t>(rng());
  std::vector<int8_t> qa(acts * k);
  for (int64_t a = 0; a < acts; ++a) K->i2s_prepare_act(q.data() + a * k, k, qa.data() + a * k);
  std::vector<int32_t> out(acts * rows);
  for (auto _ : state) {
    K->i2s_gemm(w.data(), k, rows, qa.data(), k, acts, out.data(), rows);
    benchmark::DoNotOptimize(out.data());
  }
  SetBytes(state, static_cast<double>(rows * k / 4));
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(acts * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_I2sGemm)->ArgsProduct({{2560}, {2560}, {8, 128}, {1, 2}})->Unit(benchmark::kMicrosecond);

// args: rows, k, path. F16 head, one token (f16_dot_rows).
void BM_F16Head(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(2));
  if (K == nullptr) return;
  const int64_t rows = state.range(0), k = state.range(1);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  std::vector<uint16_t> w(rows * k);
  for (auto& h : w) h = Fp32ToFp16(nd(rng));
  std::vector<uint16_t> x(k);
  for (auto& h : x) h = Fp32ToFp16(nd(rng));
  std::vector<float> out(rows);
  for (auto _ : state) {
    K->f16_dot_rows(w.data(), k, rows, k, x.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  SetBytes(state, static_cast<double>(rows * k * 2));
}
BENCHMARK(BM_F16Head)->ArgsProduct({{128256}, {2560}, {0, 1, 2}})->Unit(benchmark::kMillisecond);

// args: k, path
void BM_QuantizeRowI8S(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(1));
  if (K == nullptr) return;
  const int64_t k = state.range(0);
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(k);
  for (auto& v : x) v = nd(rng);
  std::vector<int8_t> q(k);
  float s;
  int32_t sum;
  for (auto _ : state) {
    K->quantize_row_i8s(x.data(), k, q.data(), &s, &sum);
    benchmark::DoNotOptimize(q.data());
    benchmark::DoNotOptimize(sum);
  }
  SetBytes(state, static_cast<double>(k * 4));
}
BENCHMARK(BM_QuantizeRowI8S)->ArgsProduct({{2560, 6912}, {0, 1, 2}});

}  // namespace
}  // namespace bitparity

BENCHMARK_MAIN();
