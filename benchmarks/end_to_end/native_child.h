// File: benchmarks/end_to_end/native_child.h
//
// The parent's side of our engine's runs: re-executes this binary with a hidden
// subcommand (__native-speed / __native-load, handled by native_runner.h) and reads
// back its JSON line and its peak RSS (wait4). One call = one child = one repetition.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "benchmarks/end_to_end/bench_types.h"
#include "benchmarks/end_to_end/native_runner.h"

namespace bitparity::bench {

inline constexpr char kNativeSpeedCommand[] = "__native-speed";
inline constexpr char kNativeLoadCommand[] = "__native-load";

// "pp128,tg128" <-> tests; the child's --tests flag.
std::string FormatTests(const std::vector<BenchTest>& tests);
absl::StatusOr<std::vector<BenchTest>> ParseTests(const std::string& s);

struct NativeSpeedRun {
  std::vector<TestSample> samples;  // in the order asked for
  std::string kernels;
  std::string weight_memory;  // where the weights really lived (hugepages may fall back to mmap)
  std::optional<CandidateStats> candidates;  // screened head only
};

// Errors: whatever stopped the child (its stderr tail in the message), or DataLoss
// when its output is not the expected JSON.
absl::StatusOr<NativeSpeedRun> RunNativeSpeedChild(const std::string& self, const NativeOptions& options,
                                                   const std::vector<BenchTest>& tests, double timeout_s);
absl::StatusOr<LoadSample> RunNativeLoadChild(const std::string& self, const NativeOptions& options,
                                              int context, double timeout_s);

}  // namespace bitparity::bench
