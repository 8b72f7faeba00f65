// File: orchestrator/stream_bench.h
//
// Concurrent streaming decode, measured from the client: at concurrency k, k
// GenerateStream calls start together (greedy, ignore_eos, the same
// max_new_tokens, so every stream makes the same number of tokens) and the
// arrival time of every streamed token is recorded. From those arrivals:
//
//   aggregate decode tokens/s  the tokens of all k streams that arrive inside
//       the window in which all k streams are decoding, over that window's
//       length. The window opens at the latest first token (every stream has
//       finished its prefill) and closes at the earliest last token (no stream
//       has finished yet); a token counts when it arrives in (open, close].
//       When the window is empty (the server ran the streams one after the
//       other, so they never all decoded at once) the figure is undefined:
//       NaN here, null in JSON. With k = 1 it is the stream's own decode rate.
//       Over several rounds: the median of the rounds that have a window.
//   per-stream decode tokens/s  (tokens - 1) / (last arrival - first arrival)
//       of each stream; the median over streams.
//   TTFT  first arrival - call start, per stream; p50 and p99 over streams.
//   inter-token latency  the gap between consecutive arrivals of one stream,
//       pooled over every stream; p50 and p99.
//   level tokens/s  every token of the round (prefill waits included) over
//       the round's wall time, from the first call to the last arrival; the
//       median over rounds. Always defined, so a server that runs the streams
//       one after the other still shows its throughput here.
//
// The issue-16 targets read straight off these figures: aggregate at k = 8
// over aggregate at k = 1 (the "scaling"), and itl p99 at k = 8 over k = 1.
// Percentiles interpolate linearly (metrics.h Percentile).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "orchestrator/engine_client.h"

namespace bitparity {

// One stream as the client saw it. Times are seconds from any common origin
// (the measurement uses the level's start).
struct StreamTrace {
  bool ok = false;
  std::string error;               // when !ok
  double start_s = 0;              // the call was made
  std::vector<double> arrivals_s;  // one per streamed token, in order
};

// One concurrency level's figures (see the file comment for definitions).
struct StreamLevel {
  int concurrency = 0;
  int rounds = 0;
  int streams = 0;          // started, over all rounds
  int failed = 0;
  int max_new_tokens = 0;   // asked of each stream
  int64_t tokens = 0;       // received, over every successful stream
  int short_streams = 0;    // successful streams with fewer than max_new_tokens tokens
  double aggregate_decode_tokens_per_s = NAN;  // median over rounds with a window
  int64_t window_tokens = 0;                   // summed over the rounds with a window
  double window_s = 0;                         // summed likewise
  int rounds_with_window = 0;
  double per_stream_decode_tokens_per_s = NAN; // median over streams
  double level_tokens_per_s = NAN;             // median over rounds
  double ttft_p50_ms = NAN, ttft_p99_ms = NAN;
  double itl_p50_ms = NAN, itl_p99_ms = NAN;
  std::string first_error;
};

// The figures of one level from its rounds' traces (pure: the definitions).
StreamLevel SummarizeStreams(int concurrency, int max_new_tokens, const std::vector<std::vector<StreamTrace>>& rounds);

// Each level of `concurrency`: `rounds` rounds of that many streams started together
// on `client`; stream i of a round sends prompts[i % prompts.size()]. The levels'
// rounds interleave (round 1 of every level, then round 2, ...); `tick` after each.
// Failed streams are counted in the result; an error only when every stream of a
// level failed.
absl::StatusOr<std::vector<StreamLevel>> MeasureStreamLevels(EngineClient& client,
                                                             const std::vector<std::vector<int32_t>>& prompts,
                                                             const std::vector<int>& concurrency, int max_new_tokens,
                                                             int rounds, const std::function<void()>& tick);

nlohmann::json StreamLevelToJson(const StreamLevel& l);
// Level k against level 1 of the same side: aggregate, per-stream and level tokens/s,
// TTFT and inter-token latency p50/p99 (null where level 1 is missing or 0).
nlohmann::json StreamScaling(const std::vector<StreamLevel>& levels);
// A/B at each concurrency both sides measured.
nlohmann::json StreamRatios(const std::vector<StreamLevel>& a, const std::vector<StreamLevel>& b);

}  // namespace bitparity
