// File: engine/model/generation.h
//
// One request's generation as a state machine, advanced by whoever evaluates it:
// Generate() (generate.h) drives it on its own Session; the native server's batch
// scheduler drives many at once through BatchStep. Both share this class, so the
// sampling, stop rules, text and logprobs of a request are the same code whoever
// evaluates it.
//
//   ASSIGN_OR_RETURN(auto g, Generation::Start(model, prompt, options));
//   g->EvalStarting();  evaluate the prompt with g->Screen() ...  g->TakeLogits(row, screened);
//   while (!g->done()) {
//     ASSIGN_OR_RETURN(const GeneratedToken* t, g->Next(n_past, max_context));   // sample
//     deliver *t;  if (g->done()) break;
//     g->EvalStarting();  evaluate t->id with g->Screen() ...  g->TakeLogits(row, screened);
//   }
//   GenerateResult r = g->Finish();
//
// Thread safety: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/generation_text.h"
#include "engine/model/generate.h"
#include "engine/model/model.h"
#include "engine/sampling/sampler.h"

namespace bitparity {

class Generation {
 public:
  // Checks the prompt and options (InvalidArgument / FailedPrecondition, as Generate).
  static absl::StatusOr<std::unique_ptr<Generation>> Start(const Model& model, absl::Span<const int32_t> prompt,
                                                           const GenerateOptions& options);

  const std::vector<int32_t>& prompt() const { return prompt_; }
  const GenerateOptions& options() const { return options_; }
  // The screen for the next evaluation's logits row, or null for the exact head
  // (forward.h HeadScreen; valid until the next call).
  const HeadScreen* Screen();
  // The next evaluation begins now (for its timing).
  void EvalStarting();
  // The logits row of the last token evaluated; `screened`: the screen's account when
  // the screened head served it.
  void TakeLogits(absl::Span<const float> logits, const ScreenResult* screened);
  // Samples the next token from the last logits and applies the stop rules. n_past:
  // tokens in the sequence's cache; max_context: positions it may hold.
  absl::StatusOr<const GeneratedToken*> Next(int n_past, int max_context);
  // Stops here with finish reason kCancelled.
  void Cancel();
  // True once the generation has ended (a stop rule, the length, Cancel).
  bool done() const { return done_; }
  // The result (call once, when done).
  GenerateResult Finish();

 private:
  using Clock = std::chrono::steady_clock;
  Generation(const Model& model, absl::Span<const int32_t> prompt, const GenerateOptions& options,
             Sampler sampler);

  const Model& model_;
  const std::vector<int32_t> prompt_;
  const GenerateOptions options_;
  Sampler sampler_;
  bool screen_ = false;  // the screened head serves this request
  HeadScreen head_screen_;
  std::vector<int32_t> penalized_;
  ScreenResult screen_result_;
  bool screened_ = false;

  std::vector<float> logits_;
  std::vector<int32_t> history_;
  GenerationText text_;
  GenerateResult result_;
  int step_ = 0;
  bool done_ = false;
  bool eval_started_ = false;  // the prompt's (first chunk's) evaluation began
  bool evaluated_ = false;     // the prompt's logits arrived
  Clock::time_point t_start_, t_eval_;
};

}  // namespace bitparity
