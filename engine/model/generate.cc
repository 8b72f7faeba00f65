#include "engine/model/generate.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/generation_text.h"
#include "base/logits.h"
#include "base/status_macros.h"

namespace bitparity {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

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
  const Model& model = session.model();
  const ModelConfig& c = model.config();
  const Tokenizer* tok = model.tokenizer();
  if (prompt.empty()) return absl::InvalidArgumentError("the prompt is empty");
  if (options.max_new_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_new_tokens must be >= 0, got ", options.max_new_tokens));
  }
  for (const std::string& s : options.stop_sequences) {
    if (s.empty()) return absl::InvalidArgumentError("stop sequences must not be empty");
  }
  if (!options.stop_sequences.empty() && tok == nullptr) {
    return absl::FailedPreconditionError("stop sequences need a tokenizer, and this model has none");
  }
  for (int32_t id : options.stop_token_ids) {
    if (id < 0 || id >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("stop token id ", id, " is outside the vocabulary"));
    }
  }
  auto sampler = Sampler::Create(options.sampling, c.n_vocab);
  if (!sampler.ok()) return sampler.status();

  GenerateResult result;
  result.timings.prompt_tokens = static_cast<int>(prompt.size());
  std::vector<float> logits(c.n_vocab);
  auto keep_logits = [&](int, absl::Span<const float> row) {
    std::copy(row.begin(), row.end(), logits.begin());
    return absl::OkStatus();
  };
  EvalHooks hooks;
  hooks.cancelled = cancelled;

  // The screened head serves requests that need only the top k logits exactly.
  const int32_t needed = sampler->CandidatesNeeded();
  const bool screen = model.screened_head() != nullptr && options.logprobs_top_n < 0 && needed > 0;
  result.head.path = model.head_mode() == HeadMode::kInt8 ? HeadMode::kInt8
                     : screen                              ? HeadMode::kScreened
                                                           : HeadMode::kExact;
  std::vector<int32_t> penalized;
  ScreenResult screen_result;
  bool screened = false;
  HeadScreen head_screen;
  head_screen.request.top_k = needed;
  head_screen.request.repetition_penalty = options.sampling.repetition_penalty;
  head_screen.result = &screen_result;
  head_screen.screened = &screened;
  // The screen for the next Sample(logits, history): its penalty set, then its outcome.
  auto prepare_screen = [&](absl::Span<const int32_t> history) -> const HeadScreen* {
    if (!screen) return nullptr;
    penalized = sampler->PenalizedIds(history);
    head_screen.request.penalized = penalized;
    screened = false;
    return &head_screen;
  };
  auto record_screen = [&] {
    if (!screened) return;
    result.head.candidates.push_back(static_cast<int32_t>(screen_result.candidates));
    if (screen_result.fallback) ++result.head.fallbacks;
  };

  const Clock::time_point t_start = Clock::now();
  absl::Status st =
      session.Eval(prompt, options.prefill_mode, LogitRows::Last(), keep_logits, &hooks, prepare_screen(prompt));
  if (absl::IsCancelled(st)) {
    result.finish_reason = FinishReason::kCancelled;
    return result;
  }
  if (!st.ok()) return st;
  record_screen();
  result.timings.prefill_ms = MsSince(t_start);

  std::vector<int32_t> history(prompt.begin(), prompt.end());
  GenerationText text(options.stop_sequences);

  for (int step = 0; step < options.max_new_tokens; ++step) {
    if (cancelled && cancelled()) {
      result.finish_reason = FinishReason::kCancelled;
      break;
    }
    GeneratedToken gt;
    gt.id = sampler->Sample(logits, history);
    if (options.logprobs_top_n >= 0) {
      const LogSoftmaxNorm norm = LogSoftmaxNormOf(logits);
      gt.logprob = norm.LogProb(logits[gt.id]);
      if (options.logprobs_top_n > 0) {
        gt.top = TopK(logits, options.logprobs_top_n);
        for (const TokenLogit& p : gt.top) gt.top_logprobs.push_back(norm.LogProb(p.logit));
      }
    }
    if (step == 0) result.timings.first_token_ms = MsSince(t_start);
    history.push_back(gt.id);
    result.ids.push_back(gt.id);

    std::optional<FinishReason> finish;
    std::string piece;
    if (!options.ignore_eos && tok != nullptr && tok->IsEndOfGeneration(gt.id)) {
      finish = FinishReason::kEos;
    } else if (std::find(options.stop_token_ids.begin(), options.stop_token_ids.end(), gt.id) !=
               options.stop_token_ids.end()) {
      finish = FinishReason::kStopToken;
    } else if (tok != nullptr) {
      ASSIGN_OR_RETURN(piece, tok->TokenToPiece(gt.id, /*special=*/false));
    }
    // Last token of this generation: by count, or because the context is full.
    const bool last = step + 1 == options.max_new_tokens || session.n_past() >= session.max_context();
    const GenerationText::Step cut = text.Push(piece, /*adds_text=*/!finish, last);
    if (cut.stopped) finish = FinishReason::kStopSequence;
    gt.text = cut.text;
    result.tokens.push_back(gt);
    if (on_token) RETURN_IF_ERROR(on_token(result.tokens.back()));
    if (finish) {
      result.finish_reason = *finish;
      break;
    }
    if (last) break;  // finish "length" (also when the context is full)

    const Clock::time_point t_step = Clock::now();
    st = session.Eval(absl::MakeConstSpan(&gt.id, 1), EvalMode::kSequential, LogitRows::Last(), keep_logits, &hooks,
                      prepare_screen(history));
    if (absl::IsCancelled(st)) {
      result.finish_reason = FinishReason::kCancelled;
      break;
    }
    if (!st.ok()) return st;
    record_screen();
    result.timings.decode_ms += MsSince(t_step);
    ++result.timings.decode_steps;
  }
  result.text = text.text();
  return result;
}

}  // namespace bitparity
