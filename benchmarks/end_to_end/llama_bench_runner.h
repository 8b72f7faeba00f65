// File: benchmarks/end_to_end/llama_bench_runner.h
//
// bitnet.cpp's side of the speed figures: one llama-bench run (-r 1, -o json) per
// repetition, so that repetitions alternate with our engine's, and the parser of
// its JSON output: an array with one object per test carrying n_prompt, n_gen,
// n_threads, samples_ts / samples_ns (per repetition), avg_ts, stddev_ts and
// build_commit (llama-bench.cpp, BitNet 01eb415).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "benchmarks/end_to_end/bench_types.h"

namespace bitparity::bench {

struct LlamaBenchTest {
  BenchTest test;
  int n_threads = 0;
  std::vector<double> samples_ts;  // tokens/s, one per repetition
  std::vector<double> samples_ns;
  double avg_ts = 0, stddev_ts = 0;
};

struct LlamaBenchOutput {
  std::string build_commit;
  std::string model_type;
  std::vector<LlamaBenchTest> tests;
};

// Errors: DataLoss (not JSON, not an array of test objects, a required field
// missing or of the wrong type, no samples, a non-positive rate).
absl::StatusOr<LlamaBenchOutput> ParseLlamaBenchJson(const std::string& text);

// Runs `llama_bench` on `model` at `threads` for the pp and tg tests in `tests`,
// once each (-r 1); returns one sample per test, in the order of `tests`.
// Errors: the run failed (stderr tail in the message), its output did not parse,
// or a test asked for is missing from it.
absl::StatusOr<std::vector<TestSample>> RunLlamaBench(const std::string& llama_bench, const std::string& model,
                                                      int threads, const std::vector<BenchTest>& tests,
                                                      double timeout_s, std::string* build_commit);

}  // namespace bitparity::bench
