// File: engine/sampling/sampler.h
//
// Turns a logits row into the next token. Greedy (temperature 0: argmax, lowest id
// on ties, as the golden fixtures were made) or stochastic with the usual filters,
// applied in llama.cpp's order: repetition penalty -> top-k -> top-p -> min-p ->
// temperature -> draw. Randomness comes from the sampler's own xoshiro256** state,
// seeded explicitly, so the same seed and logits give the same tokens on any machine.
//
//   SamplingParams p;  p.temperature = 0.8f;  p.top_k = 40;  p.seed = 7;
//   ASSIGN_OR_RETURN(Sampler sampler, Sampler::Create(p, n_vocab));
//   int32_t next = sampler.Sample(logits, history);
//
// Thread safety: a Sampler is used by one thread at a time.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/logits.h"
#include "base/xoshiro.h"

namespace bitparity {

struct SamplingParams {
  float temperature = 0.0f;         // 0 = greedy; must be >= 0
  int32_t top_k = 0;                // 0 = off; else 1..n_vocab
  float top_p = 1.0f;               // (0, 1]; 1 = off
  float min_p = 0.0f;               // [0, 1); 0 = off
  float repetition_penalty = 1.0f;  // > 0; 1 = off (llama.cpp's: divide positive logits, multiply negative)
  int32_t repetition_window = 64;   // last N tokens the penalty looks at; -1 = all
  uint64_t seed = 0;
};

// InvalidArgument with a message naming the field, or OK.
absl::Status ValidateSamplingParams(const SamplingParams& p, int32_t n_vocab);

class Sampler {
 public:
  static absl::StatusOr<Sampler> Create(const SamplingParams& params, int32_t n_vocab);

  // Picks the next token from `logits` (n_vocab floats); `history` is the tokens so
  // far (prompt and generated), used by the repetition penalty.
  int32_t Sample(absl::Span<const float> logits, absl::Span<const int32_t> history);

  // The distinct ids the repetition penalty changes for this `history` (those in its
  // window, first occurrence first); empty when the penalty is off.
  std::vector<int32_t> PenalizedIds(absl::Span<const int32_t> history) const;

  // How many of the top logits (after the penalty) Sample() can pick from: 1 when
  // greedy, top_k when that filter is on, 0 when every row can matter.
  int32_t CandidatesNeeded() const;

  // Uniform draw in [0, 1) from the sampler's stream (exposed for tests).
  float NextUniform();

  const SamplingParams& params() const { return params_; }

 private:
  Sampler(const SamplingParams& params, int32_t n_vocab);
  // temperature 0: the first id of the largest logit after the penalty.
  int32_t Greedy(absl::Span<const float> logits, absl::Span<const int32_t> history) const;
  float Penalized(float logit) const;
  SamplingParams params_;
  int32_t n_vocab_;
  Xoshiro256 rng_;
  std::vector<TokenLogit> candidates_;  // scratch, reused
};

}  // namespace bitparity
