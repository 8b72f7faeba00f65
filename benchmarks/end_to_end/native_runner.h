// File: benchmarks/end_to_end/native_runner.h
//
// Our engine's side of bitnet-bench, run inside a child process (bitnet-bench
// re-executes itself with a hidden subcommand, see native_child.h) so that its peak
// RSS is measured exactly as bitnet.cpp's is. Results are printed as one JSON line.
//
// Speed follows llama-bench's definitions (llama-bench.cpp, BitNet 01eb415):
//   ppP  P tokens (BOS, then uniformly random ids) evaluated as one batch from an
//        empty context; logits of the last token only.
//   tgN  BOS, then N-1 random ids, each evaluated alone (a decode step) from an
//        empty context; logits of every step's token.
// Each test gets one untimed warm-up first (pp: the same prompt; tg: one token), as
// llama-bench does, then one timed run: a repetition is one child process, so that
// repetitions can alternate with bitnet.cpp's.
//
// Load: the wall time of Model::Load (GGUF mapping, metadata, weight binding and
// any repacking, tokenizer with its merge table, thread pool), then one greedy
// token after the prompt "Hello" with a session of the given context, as the
// llama-cli run measured for bitnet.cpp does.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "benchmarks/end_to_end/bench_types.h"
#include "nlohmann/json.hpp"

namespace bitparity::bench {

struct NativeOptions {
  std::string model;
  int threads = 1;
  std::string kernels = "auto";  // auto, scalar, avx2, avx512
  std::string head = "exact";    // exact, or int8 (changes the logits: engine/model/int8_head.h)
  std::string weight_memory = "hugepages";  // or mmap (engine/model/weight_memory.h)
};

// {"load_ms", "kernels", "threads", "tests": [{"name","n_prompt","n_gen","ns","tokens_per_s"}]}
absl::StatusOr<nlohmann::json> MeasureNativeSpeed(const NativeOptions& options,
                                                  const std::vector<BenchTest>& tests);

// {"load_ms", "context", "prompt_tokens", "generated", "kernels", "threads"}
absl::StatusOr<nlohmann::json> MeasureNativeLoad(const NativeOptions& options, int context);

}  // namespace bitparity::bench
