// File: benchmarks/sampling/sampler_bench.cc
//
// Sampler::Sample on one row of the 2B-4T vocabulary (128,256 logits). A batch step
// samples every running sequence's row on the batch loop's thread while the thread
// pool waits, so this cost is paid once per sequence per step.
//
//   build/bin/sampler_bench
//
// args: temperature x 10, repetition penalty x 100 (100 = off), top_k.
#include <cstdint>
#include <random>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/sampling/sampler.h"

namespace bitparity {
namespace {

constexpr int32_t kVocab = 128256;

void BM_Sample(benchmark::State& state) {
  SamplingParams p;
  p.temperature = static_cast<float>(state.range(0)) / 10.0f;
  p.repetition_penalty = static_cast<float>(state.range(1)) / 100.0f;
  p.top_k = static_cast<int32_t>(state.range(2));
  absl::StatusOr<Sampler> sampler = Sampler::Create(p, kVocab);
  if (!sampler.ok()) {
    state.SkipWithError(std::string(sampler.status().message()).c_str());
    return;
  }
  std::mt19937 rng(5);
  std::normal_distribution<float> logit(0.0f, 3.0f);
  std::vector<float> logits(kVocab);
  for (float& l : logits) l = logit(rng);
  std::vector<int32_t> history(64);  // a prompt and some generated tokens
  for (int32_t& id : history) id = static_cast<int32_t>(rng() % kVocab);
  for (auto _ : state) benchmark::DoNotOptimize(sampler->Sample(logits, history));
}
BENCHMARK(BM_Sample)
    ->ArgNames({"temp_x10", "penalty_x100", "top_k"})
    ->Args({0, 100, 0})
    ->Args({0, 110, 0})
    ->Args({8, 110, 40})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace bitparity

BENCHMARK_MAIN();
