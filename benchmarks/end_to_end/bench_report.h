// File: benchmarks/end_to_end/bench_report.h
//
// What one bitnet-bench run measured (raw per-repetition samples) and its two
// renderings: a text table for people and JSON (--json) for machines. Every figure
// is a median with min-max (and stddev in JSON) over the repetitions; ratios are
// native / bitnet.cpp computed per repetition (the two ran back to back) and then
// summarized the same way. For tokens/s a ratio > 1 means ours is faster; for load
// time and peak RSS a ratio < 1 means ours is smaller.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "benchmarks/end_to_end/bench_types.h"
#include "benchmarks/end_to_end/bitnet_cpp_tools.h"
#include "benchmarks/end_to_end/decode_bytes.h"
#include "nlohmann/json.hpp"

namespace bitparity::bench {

// Everything measured at one thread count; inner vectors have one entry per repetition.
struct ThreadCountResults {
  int threads = 0;
  std::vector<double> bandwidth_gbps;
  std::vector<std::vector<double>> native_ts;  // [test][rep], tokens/s
  std::vector<std::vector<double>> bcpp_ts;    // empty when bitnet.cpp was not measured
  std::vector<LoadSample> native_load, bcpp_load;
  // --compare-head: the native engine again with that output head, same repetitions.
  std::vector<std::vector<double>> compare_ts;  // [test][rep]; empty without --compare-head
  std::vector<LoadSample> compare_load;
  std::vector<CandidateStats> candidates;       // per repetition, when --head screened
  // bitnet.cpp runs that failed ("rep 2: llama-bench failed: killed by signal 11"); their
  // samples are NaN, left out of every median and ratio, and the report says so.
  std::vector<std::string> bcpp_failures;
};

struct BenchRun {
  std::string model_path;
  uint64_t model_file_bytes = 0;
  std::string architecture;
  int n_layer = 0;
  DecodeBytes decode_bytes;
  int repetitions = 0;
  int context = 0;  // of the load / peak-RSS runs
  uint64_t bandwidth_buffer_bytes = 0;
  uint64_t llc_bytes = 0;
  std::string native_kernels;
  std::string native_head = "exact";  // "int8": the native logits are NOT bitnet.cpp's
  std::string compare_head;          // --compare-head, or empty
  std::string native_weight_memory;   // hugepages or mmap (engine/model/weight_memory.h)
  BitnetCppTools bitnet_cpp;
  std::string bitnet_cpp_commit;  // llama-bench's build_commit
  std::vector<BenchTest> tests;
  std::vector<ThreadCountResults> per_threads;
  // bitnet-bench's own peak RSS: a spawned child's ru_maxrss starts from its
  // parent's high-water mark, so no peak RSS figure below this one is meaningful.
  int64_t parent_peak_rss_kib = 0;
};

nlohmann::ordered_json RenderJson(const BenchRun& run);
std::string RenderText(const BenchRun& run);

}  // namespace bitparity::bench
