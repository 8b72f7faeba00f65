// File: benchmarks/end_to_end/llama_cli_load.h
//
// bitnet.cpp's load time and peak RSS: llama-cli generating one token after the
// prompt "Hello" with the given context and threads (no warm-up run, as our side
// has none), in a child process. The load time is the one llama.cpp prints in its
// perf summary ("llama_perf_context_print:        load time =      90.82 ms"): model
// loading from llama_load_model_from_file's start, vocabulary included. Peak RSS is
// wait4's ru_maxrss, measured as for our engine (child_process.h).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "benchmarks/end_to_end/bench_types.h"

namespace bitparity::bench {

// The last "load time = X ms" figure in llama.cpp's log. Errors: NotFound.
absl::StatusOr<double> ParseLlamaLoadTimeMs(const std::string& log);

absl::StatusOr<LoadSample> RunLlamaCliLoad(const std::string& llama_cli, const std::string& model, int threads,
                                           int context, double timeout_s);

}  // namespace bitparity::bench
