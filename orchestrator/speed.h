// File: orchestrator/speed.h
//
// Speed of one side: repeated streamed generations (prefill and decode tokens/s
// as the server measured them, time to first token as the client saw it), then a
// load of requests at a fixed concurrency (client-side latency percentiles and
// throughput). Sides are measured one after the other, never at once, so that two
// servers on one host do not slow each other down.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "orchestrator/engine_client.h"
#include "orchestrator/stream_bench.h"

namespace bitparity {

struct SpeedOptions {
  int runs = 3;             // timed repetitions (after `warmup`)
  int warmup = 1;
  int max_new_tokens = 32;  // per timed generation
  std::vector<int> concurrency = {2};
  int requests = 8;         // per concurrency level
  int load_max_new_tokens = 16;
  // Concurrent streaming decode at each concurrency level (stream_bench.h):
  // `stream_rounds` rounds of k streams of `stream_max_new_tokens` tokens.
  bool streams = false;
  int stream_max_new_tokens = 32;
  int stream_rounds = 1;
};

// median, spread and the raw runs of one measurement.
struct Spread {
  std::vector<double> runs;
  double median = 0, min = 0, max = 0, mean = 0, stdev = 0;
};
Spread MakeSpread(std::vector<double> runs);

struct LoadResult {
  int concurrency = 0;
  int requests = 0;
  int failed = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0, mean_ms = 0;
  double wall_s = 0;
  double requests_per_s = 0;
  double tokens_per_s = 0;  // generated tokens / wall time
  std::string first_error;  // of a failed request
};

struct SideSpeed {
  int prompt_tokens = 0;
  Spread prefill_tokens_per_s, decode_tokens_per_s, ttft_ms, server_ttft_ms, total_ms;
  std::vector<LoadResult> load;
  std::vector<StreamLevel> streams;  // when SpeedOptions::streams
};

// `prompt` is the ids of the timed generation; `load_prompts` are cycled through.
absl::StatusOr<SideSpeed> MeasureSpeed(EngineClient& client, const std::vector<int32_t>& prompt,
                                       const std::vector<std::vector<int32_t>>& load_prompts,
                                       const SpeedOptions& options, const std::function<void()>& tick);

nlohmann::json SpreadToJson(const Spread& s);
// "streams" and "scaling" (level k over level 1) only when streams were measured.
nlohmann::json SideSpeedToJson(const SideSpeed& s);
// A/B ratios of the medians (and of p50 latency at each common concurrency;
// "streams": the streaming figures per common level, when both sides have them).
nlohmann::json SpeedRatios(const SideSpeed& a, const SideSpeed& b);

}  // namespace bitparity
