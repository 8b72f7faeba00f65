// Generate: a Generation (generation.h) driven on one Session.
#include "engine/model/generate.h"

#include "base/status_macros.h"
#include "engine/model/generation.h"

namespace bitparity {

const char* FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return "length";
    case FinishReason::kEos: return "eos";
    case FinishReason::kStopSequence: return "stop_sequence";
    case FinishReason::kStopToken: return "stop_token";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "?";
}

double GenerateTimings::prefill_tokens_per_s() const {
  return prefill_ms > 0 ? prompt_tokens / (prefill_ms / 1000.0) : 0.0;
}

double GenerateTimings::decode_tokens_per_s() const {
  return decode_ms > 0 ? decode_steps / (decode_ms / 1000.0) : 0.0;
}

absl::StatusOr<GenerateResult> Generate(Session& session, absl::Span<const int32_t> prompt,
                                        const GenerateOptions& options, const TokenCallback& on_token,
                                        const std::function<bool()>& cancelled) {
  ASSIGN_OR_RETURN(std::unique_ptr<Generation> g, Generation::Start(session.model(), prompt, options));
  EvalHooks hooks;
  hooks.cancelled = cancelled;
  // Evaluates `tokens`; the last logits row (and the screen's account, which the
  // generation's HeadScreen receives) goes to g.
  auto eval = [&](absl::Span<const int32_t> tokens, EvalMode mode) {
    const HeadScreen* screen = g->Screen();
    g->EvalStarting();
    return session.Eval(
        tokens, mode, LogitRows::Last(),
        [&](int, absl::Span<const float> row) {
          g->TakeLogits(row, nullptr);
          return absl::OkStatus();
        },
        &hooks, screen);
  };

  absl::Status st = eval(prompt, options.prefill_mode);
  if (absl::IsCancelled(st)) {
    g->Cancel();
    return g->Finish();
  }
  if (!st.ok()) return st;
  while (!g->done()) {
    if (cancelled && cancelled()) {
      g->Cancel();
      break;
    }
    ASSIGN_OR_RETURN(const GeneratedToken* t, g->Next(session.n_past(), session.max_context()));
    if (on_token) RETURN_IF_ERROR(on_token(*t));
    if (g->done()) break;
    const int32_t id = t->id;
    st = eval(absl::MakeConstSpan(&id, 1), EvalMode::kSequential);
    if (absl::IsCancelled(st)) {
      g->Cancel();
      break;
    }
    if (!st.ok()) return st;
  }
  return g->Finish();
}

}  // namespace bitparity
