// Kernel throughput per dispatch path (single thread). The path is the last benchmark
// argument (0 scalar, 1 avx2, 2 avx512); unsupported paths are skipped. Counters:
// "GB/s" = bytes of weights (or input) streamed per second.
//
//   build-quant/bin/kernels_bench --benchmark_filter=I2sGemv
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/common/cache_aligned_vector.h"
#include "engine/common/huge_page_buffer.h"
#include "engine/kernels/kernels.h"
#include "base/fp16.h"
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
  CacheAlignedVector<int8_t> qa(k);
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

// The ternary matrices of one decode token on the 2B-4T shape: 30 layers x (q, k, v,
// o, gate, up, down), each at a 64-byte aligned offset of one 521 MB buffer.
struct DecodeLayers {
  struct Shape {
    int64_t rows, k;
  };
  std::vector<Shape> shapes;
  std::vector<size_t> offsets;
  size_t total = 0;  // buffer bytes

  DecodeLayers() {
    const Shape layer[] = {{2560, 2560}, {640, 2560}, {640, 2560}, {2560, 2560}, {6912, 2560}, {6912, 2560}, {2560, 6912}};
    for (int l = 0; l < 30; ++l) {
      for (const Shape& sh : layer) {
        shapes.push_back(sh);
        offsets.push_back(total);
        total += (I2sTensorBytes(sh.rows * sh.k) + 63) / 64 * 64;
      }
    }
  }
};

// args: path, huge pages (0/1). One decode token's ternary layers on the 2B-4T shape:
// 30 layers x (q, k, v, o, gate, up, down), 521 MB of I2_S weights, far more than the
// last-level cache, so this is the gemv as a forward pass streams it (matrix after
// matrix from DRAM), from 4 KiB pages or from huge pages (engine/model/weight_memory.h).
void BM_I2sGemvDecodeLayers(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(0));
  if (K == nullptr) return;
  const DecodeLayers layers;
  const auto& shapes = layers.shapes;
  const auto& offsets = layers.offsets;
  const size_t total = layers.total;
  std::vector<uint8_t> small_pages;
  absl::StatusOr<HugePageBuffer> huge = HugePageBuffer::Allocate(state.range(1) != 0 ? total : 0);
  uint8_t* w = nullptr;
  if (state.range(1) != 0) {
    w = huge->data();
  } else {
    small_pages.resize(total + 64);
    w = small_pages.data() + (64 - reinterpret_cast<uintptr_t>(small_pages.data()) % 64) % 64;
  }
  std::mt19937 rng(6);
  for (size_t i = 0; i < total; ++i) w[i] = static_cast<uint8_t>(rng() % 3 * 0x55);
  std::vector<int8_t> q(6912);
  CacheAlignedVector<int8_t> qa(6912);
  for (auto& v : q) v = static_cast<int8_t>(rng());
  std::vector<int32_t> out(6912);
  double bytes = 0;
  for (const DecodeLayers::Shape& sh : shapes) bytes += static_cast<double>(sh.rows * sh.k / 4);
  for (auto _ : state) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      K->i2s_prepare_act(q.data(), shapes[i].k, qa.data());
      K->i2s_gemv(w + offsets[i], shapes[i].k, shapes[i].rows, qa.data(), out.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
  SetBytes(state, bytes);
}
BENCHMARK(BM_I2sGemvDecodeLayers)->ArgsProduct({{1, 2}, {0, 1}})->Unit(benchmark::kMillisecond);

// args: path, n_act. The same 521 MB of layers as BM_I2sGemvDecodeLayers (huge pages),
// through the GEMM for n_act activation rows at once: a batched decode step of n_act
// sequences. "GMAC/s" = multiply-adds per second, "GB/s" = weight bytes per second.
void BM_I2sGemmDecodeLayers(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(0));
  if (K == nullptr) return;
  const int64_t acts = state.range(1);
  const DecodeLayers layers;
  const auto& shapes = layers.shapes;
  const auto& offsets = layers.offsets;
  const size_t total = layers.total;
  absl::StatusOr<HugePageBuffer> huge = HugePageBuffer::Allocate(total);
  if (!huge.ok()) {
    state.SkipWithError(std::string(huge.status().message()).c_str());
    return;
  }
  uint8_t* w = huge->data();
  std::mt19937 rng(7);
  for (size_t i = 0; i < total; ++i) w[i] = static_cast<uint8_t>(rng() % 3 * 0x55);
  std::vector<int8_t> q(acts * 6912);
  CacheAlignedVector<int8_t> qa(acts * 6912);
  for (auto& v : q) v = static_cast<int8_t>(rng());
  std::vector<int32_t> out(acts * 6912);
  double bytes = 0, macs = 0;
  for (const DecodeLayers::Shape& sh : shapes) {
    bytes += static_cast<double>(sh.rows * sh.k / 4);
    macs += static_cast<double>(sh.rows * sh.k * acts);
  }
  for (auto _ : state) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      const int64_t k = shapes[i].k;
      K->i2s_prepare_acts(q.data(), k, k, acts, qa.data());
      K->i2s_gemm(w + offsets[i], k, shapes[i].rows, qa.data(), acts, out.data(), shapes[i].rows);
    }
    benchmark::DoNotOptimize(out.data());
  }
  SetBytes(state, bytes);
  state.counters["GMAC/s"] =
      benchmark::Counter(macs * static_cast<double>(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_I2sGemmDecodeLayers)->ArgsProduct({{1, 2}, {2, 4, 8}})->Unit(benchmark::kMillisecond);

// args: path, n_act. The screened head's int8 screen on the 2B-4T shape: 128256 rows x
// 2560 int8 (328 MB, huge pages) against n_act activation rows, one thread: the
// memory-bound last product of a batched decode step.
void BM_I8GemmHead(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(0));
  if (K == nullptr) return;
  const int acts = static_cast<int>(state.range(1));
  const int64_t rows = 128256, k = 2560;
  absl::StatusOr<HugePageBuffer> huge = HugePageBuffer::Allocate(static_cast<size_t>(rows * k));
  if (!huge.ok()) {
    state.SkipWithError(std::string(huge.status().message()).c_str());
    return;
  }
  int8_t* w = reinterpret_cast<int8_t*>(huge->data());
  std::mt19937 rng(8);
  for (int64_t i = 0; i < rows * k; ++i) w[i] = static_cast<int8_t>(rng() % 255 - 127);
  std::vector<int32_t> row_sums(rows);
  for (int64_t r = 0; r < rows; ++r) row_sums[r] = std::accumulate(w + r * k, w + (r + 1) * k, 0);
  std::vector<std::vector<int8_t>> x(acts, std::vector<int8_t>(k));
  std::vector<std::vector<int32_t>> out(acts, std::vector<int32_t>(rows));
  std::vector<const int8_t*> xp;
  std::vector<int32_t*> op;
  for (int a = 0; a < acts; ++a) {
    for (auto& v : x[a]) v = static_cast<int8_t>(rng());
    xp.push_back(x[a].data());
    op.push_back(out[a].data());
  }
  for (auto _ : state) {
    K->i8_gemm(w, row_sums.data(), k, rows, acts, xp.data(), op.data());
    benchmark::DoNotOptimize(op.data());
  }
  SetBytes(state, static_cast<double>(rows * k));
}
BENCHMARK(BM_I8GemmHead)->ArgsProduct({{2}, {4, 8}})->Unit(benchmark::kMillisecond);

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
  CacheAlignedVector<int8_t> qa(acts * k);
  K->i2s_prepare_acts(q.data(), k, k, acts, qa.data());
  std::vector<int32_t> out(acts * rows);
  for (auto _ : state) {
    K->i2s_gemm(w.data(), k, rows, qa.data(), acts, out.data(), rows);
    benchmark::DoNotOptimize(out.data());
  }
  SetBytes(state, static_cast<double>(rows * k / 4));
  state.counters["tok/s"] = benchmark::Counter(static_cast<double>(acts * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_I2sGemm)->ArgsProduct({{2560}, {2560}, {8, 128}, {1, 2}})->ArgsProduct({{640, 6912}, {2560, 6912}, {2, 4, 8}, {2}})->Unit(benchmark::kMicrosecond);

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

// args: rows, k, row stride, path. Decode attention's two f16_dot_rows shapes on the
// 2B-4T model (head_dim 128): scores = K rows (n_kv x 128) . q, and out = Vt rows
// (128 x n_kv, stride = cache capacity) . p. n_kv is a multiple of 32, so half the
// lengths leave ggml's 32-value scalar tail.
void BM_AttentionRows(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(3));
  if (K == nullptr) return;
  const int64_t rows = state.range(0), k = state.range(1), stride = state.range(2);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  std::vector<uint16_t> w(rows * stride);
  for (auto& h : w) h = Fp32ToFp16(nd(rng));
  std::vector<uint16_t> x(k);
  for (auto& h : x) h = Fp32ToFp16(nd(rng));
  std::vector<float> out(rows);
  for (auto _ : state) {
    K->f16_dot_rows(w.data(), stride, rows, k, x.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttentionRows)
    ->ArgsProduct({{96, 160}, {128}, {128}, {0, 1, 2}})
    ->ArgsProduct({{128}, {96, 128, 160}, {512}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond);

// args: rows, k, row stride, path. The same two shapes for the 4 query heads of one
// KV head at once (f16_dot_rows_multi), as decode attention calls them.
void BM_AttentionRowsGroup(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(3));
  if (K == nullptr) return;
  const int64_t rows = state.range(0), k = state.range(1), stride = state.range(2), n_x = 4;
  std::mt19937 rng(6);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  std::vector<uint16_t> w(rows * stride);
  for (auto& h : w) h = Fp32ToFp16(nd(rng));
  std::vector<uint16_t> x(n_x * k);
  for (auto& h : x) h = Fp32ToFp16(nd(rng));
  std::vector<float> out(n_x * rows);
  for (auto _ : state) {
    K->f16_dot_rows_multi(w.data(), stride, rows, k, x.data(), k, n_x, out.data(), rows);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(n_x * rows * state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttentionRowsGroup)
    ->ArgsProduct({{352}, {128}, {128}, {0, 1, 2}})
    ->ArgsProduct({{128}, {320, 352}, {512}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond);

// args: n_kv, path. Decode attention's two products for one step of 8 sequences on the
// 2B-4T shape (30 layers x 5 KV heads x 4 query heads, head_dim 128, caches of 512
// positions), each KV head its own memory as in the server: ~310 MB of caches, so
// the rows come from DRAM as they do there (BM_AttentionRowsGroup's stay in L2).
void BM_AttentionDecodeStep(benchmark::State& state) {
  const Kernels* K = PathOrSkip(state, state.range(1));
  if (K == nullptr) return;
  const int64_t n_kv = state.range(0), dim = 128, cap = 512, heads = 8 * 30 * 5;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  std::vector<uint16_t> k_cache(heads * cap * dim), vt_cache(heads * dim * cap);
  for (auto& h : k_cache) h = Fp32ToFp16(nd(rng));
  for (auto& h : vt_cache) h = Fp32ToFp16(nd(rng));
  std::vector<uint16_t> q(4 * dim), p(4 * n_kv);
  for (auto& h : q) h = Fp32ToFp16(nd(rng));
  for (auto& h : p) h = Fp32ToFp16(nd(rng));
  std::vector<float> scores(4 * n_kv), out(4 * dim);
  for (auto _ : state) {
    for (int64_t h = 0; h < heads; ++h) {
      K->f16_dot_rows_multi(k_cache.data() + h * cap * dim, dim, n_kv, dim, q.data(), dim, 4, scores.data(), n_kv);
      K->f16_dot_rows_multi(vt_cache.data() + h * dim * cap, cap, dim, n_kv, p.data(), n_kv, 4, out.data(), dim);
    }
    benchmark::DoNotOptimize(out.data());
  }
  SetBytes(state, static_cast<double>(heads * 2 * n_kv * dim * 2));
}
BENCHMARK(BM_AttentionDecodeStep)->ArgsProduct({{160, 320}, {2}})->Unit(benchmark::kMillisecond);

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
