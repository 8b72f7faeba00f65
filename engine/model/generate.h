// File: engine/model/generate.h
//
// Text generation on a Session: prefill the prompt (batch by default), then one
// decode step per new token, sampling each from the last logits row. Stops on the
// first of: max_new_tokens, end-of-generation token (unless ignore_eos), a stop
// token id, a stop sequence in the generated text, cancellation.
//
//   GenerateOptions o;  o.max_new_tokens = 24;            // greedy by default
//   ASSIGN_OR_RETURN(GenerateResult r, Generate(session, prompt_ids, o));
//
// Streaming: `on_token` is called once per generated token with the text that
// became complete (partial UTF-8 is held back); a non-OK return stops generation
// with that status. Cancellation (`cancelled` returns true, polled every step and
// inside evaluation) ends with finish_reason kCancelled and an OK result holding
// what was generated so far.
//
// Thread safety: as Session (one thread per Session).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/model/session.h"
#include "engine/sampling/sampler.h"

namespace bitparity {

struct GenerateOptions {
  int max_new_tokens = 16;
  SamplingParams sampling;
  std::vector<int32_t> stop_token_ids;
  std::vector<std::string> stop_sequences;  // needs a tokenizer
  bool ignore_eos = false;
  EvalMode prefill_mode = EvalMode::kBatch;
  int logprobs_top_n = -1;  // -1: no logprobs; 0: the chosen token's only; N: plus top N
};

enum class FinishReason { kLength, kEos, kStopSequence, kStopToken, kCancelled };
const char* FinishReasonName(FinishReason r);

struct GeneratedToken {
  int32_t id = 0;
  std::string text;           // text completed by this token (may be empty)
  double logprob = 0.0;       // log-softmax of the raw logits (if logprobs requested)
  std::vector<TokenLogit> top;  // top-N raw logits (if requested), in TopK order
  std::vector<double> top_logprobs;  // log-softmax of each of `top`
};

struct GenerateTimings {
  double prefill_ms = 0;
  double decode_ms = 0;
  double first_token_ms = 0;  // from start of prefill to the first sampled token
  double prefill_tokens_per_s() const;
  double decode_tokens_per_s() const;
  int prompt_tokens = 0;
  int decode_steps = 0;  // tokens evaluated one at a time (completion - 1, usually)
};

// Which output head served a generation. On a model loaded with HeadMode::kScreened,
// a request the screen serves exactly (greedy, or sampling with top-k > 0; no
// logprobs, which need every row) is screened, every other one runs the exact head.
struct HeadUse {
  HeadMode path = HeadMode::kExact;  // kScreened: the screen served this generation
  std::vector<int32_t> candidates;   // per screened token: rows recomputed exactly
  int fallbacks = 0;                 // screened tokens that ran the full exact head
};

struct GenerateResult {
  std::vector<int32_t> ids;
  std::vector<GeneratedToken> tokens;
  std::string text;
  FinishReason finish_reason = FinishReason::kLength;
  GenerateTimings timings;
  HeadUse head;
};

using TokenCallback = std::function<absl::Status(const GeneratedToken& token)>;

absl::StatusOr<GenerateResult> Generate(Session& session, absl::Span<const int32_t> prompt,
                                        const GenerateOptions& options,
                                        const TokenCallback& on_token = nullptr,
                                        const std::function<bool()>& cancelled = nullptr);

}  // namespace bitparity
