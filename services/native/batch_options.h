// File: services/native/batch_options.h
//
// The settings of bitnet-native-server's batch loop (batch_scheduler.h), apart from
// the scheduler so that NativeBackend's users need not see the engine's generation
// headers.
#pragma once

#include <cstdint>

namespace bitparity {

// A prompt chunk's least size under step_tokens, so that new prompts always progress.
inline constexpr int kMinStepPrefill = 2;
// step_tokens' default: a full batch's decode tokens plus this many prompt tokens.
// Zen 5, 2B-4T shape, 8 streams of 64 tokens, alternating runs: inter-token p99 with
// 4 was 90/95 ms, as with 2 (94/91), against 123/108 with 8 and 142/129 with whole
// 16-token chunks; TTFT p99 2.6/2.4 s with 4, 3.5/2.9 with 2, 2.1/1.8 with whole chunks.
inline constexpr int kStepPromptTokens = 4;

struct BatchOptions {
  int max_context = 0;       // positions one request may hold (> 0)
  int max_batch = 8;         // requests running together
  int prefill_chunk = 16;    // prompt tokens per step (>= 2)
  // Rows per step, decode tokens and prompt tokens together: beside decode tokens a
  // prompt chunk gets what they leave, at least kMinStepPrefill (alone, the whole
  // prefill_chunk). 0 = no limit; < 0 = max_batch + kStepPromptTokens.
  int step_tokens = -1;
  int64_t kv_budget_bytes = 0;  // KV caches of running requests; 0 = max_batch full-context caches
};

// Options that turn the batch loop off (NativeBackend then runs Generate on Sessions).
inline BatchOptions NoBatchLoop() {
  BatchOptions o;
  o.max_batch = 0;
  return o;
}

}  // namespace bitparity
