// File: orchestrator/batch_invariance.h
//
// Is a server batch-invariant: does a request give the same answer, bit for
// bit, whether it runs alone or among other concurrent streams? Per side and
// per probe prompt:
//   1. the probe alone: GenerateStream, greedy, ignore_eos, logprobs with the
//      top-N alternatives (their raw logits and logprobs);
//   2. the same request again while K other streams (other prompts) run on the
//      same server: the others start one after another, each once the one
//      before has streamed its first token (so they are mid-decode, at
//      staggered positions), and the probe starts once the last has;
//   3. DiffGenerations: token ids step by step, and every returned value (the
//      chosen token's logprob, each alternative's logit and logprob) compared
//      by its bits, up to and including the first step whose id differs
//      (later steps see a different context and are not comparable).
// A server that queues the others instead of running them with the probe is
// not exercised: concurrent_tokens (the others' tokens that arrived while the
// probe was decoding) is 0, and the report says so rather than "identical".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bitnet/v1/engine.pb.h"
#include "nlohmann/json.hpp"
#include "orchestrator/engine_client.h"

namespace bitparity {

// How one generation differs from another of the same request.
struct InvarianceDiff {
  int steps_alone = 0, steps_among = 0;
  int tokens_differ = 0;        // steps whose ids differ, plus the length difference
  int first_token_diff = -1;    // first step whose id differs (-1: none)
  int64_t values_compared = 0;  // values compared bit for bit
  int64_t values_differ = 0;    // of those, not bit-identical (or present on one side only)
  double max_abs_drift = 0;     // max |alone - among| over values present on both
  int first_diff_step = -1;     // first step with any difference, id or value (-1: none)
  bool identical() const { return first_diff_step < 0 && steps_alone == steps_among; }
};

// Compares `among` against `alone` (the reference) as described above.
InvarianceDiff DiffGenerations(const std::vector<bitnet::v1::GeneratedToken>& alone,
                               const std::vector<bitnet::v1::GeneratedToken>& among);

struct BatchInvarianceOptions {
  int others = 0;           // K concurrent streams around the probe (0: no check)
  int prompts = 2;          // probe prompts (the first of the set)
  int max_new_tokens = 16;  // per probe
  int top_n = 5;            // alternatives per step (capped by the server's limit)
};

struct InvarianceProbe {
  std::string prompt_id;
  InvarianceDiff diff;
  int64_t concurrent_tokens = 0;  // others' tokens that arrived while the probe decoded
  int others_failed = 0;
  std::string error;              // the probe itself failed
};

struct SideInvariance {
  std::vector<InvarianceProbe> probes;
  // Over every probe that ran.
  bool bit_identical() const;
  bool exercised() const;  // every probe ran among concurrent tokens
  int errors() const;
};

// A probe prompt: its id in the prompt set and the ids sent.
struct ProbePrompt {
  std::string id;
  std::vector<int32_t> ids;
};

// Runs every probe on `client`; `others` are the prompts of the concurrent
// streams, cycled (each cut by the caller to fit its tokens). A failed call is
// recorded in its probe, never thrown.
SideInvariance MeasureBatchInvariance(EngineClient& client, const std::vector<ProbePrompt>& probes,
                                      const std::vector<std::vector<int32_t>>& others,
                                      const BatchInvarianceOptions& options);

// New tokens each concurrent stream asks for: enough to still be decoding
// when the probe finishes.
int OtherStreamTokens(const BatchInvarianceOptions& options);

nlohmann::json SideInvarianceToJson(const SideInvariance& s);

}  // namespace bitparity
