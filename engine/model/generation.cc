#include "engine/model/generation.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/logits.h"
#include "base/status_macros.h"

namespace bitparity {
namespace {

double MsBetween(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Generation>> Generation::Start(const Model& model, absl::Span<const int32_t> prompt,
                                                              const GenerateOptions& options) {
  const ModelConfig& c = model.config();
  if (prompt.empty()) return absl::InvalidArgumentError("the prompt is empty");
  if (options.max_new_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_new_tokens must be >= 0, got ", options.max_new_tokens));
  }
  for (const std::string& s : options.stop_sequences) {
    if (s.empty()) return absl::InvalidArgumentError("stop sequences must not be empty");
  }
  if (!options.stop_sequences.empty() && model.tokenizer() == nullptr) {
    return absl::FailedPreconditionError("stop sequences need a tokenizer, and this model has none");
  }
  for (int32_t id : options.stop_token_ids) {
    if (id < 0 || id >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("stop token id ", id, " is outside the vocabulary"));
    }
  }
  auto sampler = Sampler::Create(options.sampling, c.n_vocab);
  if (!sampler.ok()) return sampler.status();
  return std::unique_ptr<Generation>(new Generation(model, prompt, options, std::move(*sampler)));
}

Generation::Generation(const Model& model, absl::Span<const int32_t> prompt, const GenerateOptions& options,
                       Sampler sampler)
    : model_(model),
      prompt_(prompt.begin(), prompt.end()),
      options_(options),
      sampler_(std::move(sampler)),
      logits_(model.config().n_vocab),
      history_(prompt.begin(), prompt.end()),
      text_(options.stop_sequences) {
  // The screened head serves requests that need only the top k logits exactly.
  const int32_t needed = sampler_.CandidatesNeeded();
  screen_ = model.screened_head() != nullptr && options.logprobs_top_n < 0 && needed > 0;
  result_.head.path = model.head_mode() == HeadMode::kInt8 ? HeadMode::kInt8
                      : screen_                             ? HeadMode::kScreened
                                                            : HeadMode::kExact;
  head_screen_.request.top_k = needed;
  head_screen_.request.repetition_penalty = options.sampling.repetition_penalty;
  head_screen_.result = &screen_result_;
  head_screen_.screened = &screened_;
  result_.timings.prompt_tokens = static_cast<int>(prompt_.size());
  t_start_ = Clock::now();
}

const HeadScreen* Generation::Screen() {
  if (!screen_) return nullptr;
  penalized_ = sampler_.PenalizedIds(history_);
  head_screen_.request.penalized = penalized_;
  screened_ = false;
  return &head_screen_;
}

void Generation::EvalStarting() {
  t_eval_ = Clock::now();
  // A batch step may evaluate the prompt in several chunks, calling this before the
  // first and the last: the prefill runs from the first.
  if (!eval_started_) t_start_ = t_eval_;
  eval_started_ = true;
}

void Generation::TakeLogits(absl::Span<const float> logits, const ScreenResult* screened) {
  std::copy(logits.begin(), logits.end(), logits_.begin());
  if (screened != nullptr) {
    screen_result_ = *screened;
    screened_ = true;
  }
  if (screened_) {
    result_.head.candidates.push_back(static_cast<int32_t>(screen_result_.candidates));
    if (screen_result_.fallback) ++result_.head.fallbacks;
    screened_ = false;
  }
  const Clock::time_point now = Clock::now();
  if (!evaluated_) {
    evaluated_ = true;
    result_.timings.prefill_ms = MsBetween(t_start_, now);
    if (options_.max_new_tokens == 0) done_ = true;
  } else {
    result_.timings.decode_ms += MsBetween(t_eval_, now);
    ++result_.timings.decode_steps;
  }
}

absl::StatusOr<const GeneratedToken*> Generation::Next(int n_past, int max_context) {
  const Tokenizer* tok = model_.tokenizer();
  GeneratedToken gt;
  gt.id = sampler_.Sample(logits_, history_);
  if (options_.logprobs_top_n >= 0) {
    const LogSoftmaxNorm norm = LogSoftmaxNormOf(logits_);
    gt.logprob = norm.LogProb(logits_[gt.id]);
    if (options_.logprobs_top_n > 0) {
      gt.top = TopK(logits_, options_.logprobs_top_n);
      for (const TokenLogit& p : gt.top) gt.top_logprobs.push_back(norm.LogProb(p.logit));
    }
  }
  if (step_ == 0) result_.timings.first_token_ms = MsBetween(t_start_, Clock::now());
  history_.push_back(gt.id);
  result_.ids.push_back(gt.id);

  std::optional<FinishReason> finish;
  std::string piece;
  if (!options_.ignore_eos && tok != nullptr && tok->IsEndOfGeneration(gt.id)) {
    finish = FinishReason::kEos;
  } else if (std::find(options_.stop_token_ids.begin(), options_.stop_token_ids.end(), gt.id) !=
             options_.stop_token_ids.end()) {
    finish = FinishReason::kStopToken;
  } else if (tok != nullptr) {
    ASSIGN_OR_RETURN(piece, tok->TokenToPiece(gt.id, /*special=*/false));
  }
  // Last token of this generation: by count, or because the context is full.
  const bool last = step_ + 1 == options_.max_new_tokens || n_past >= max_context;
  const GenerationText::Step cut = text_.Push(piece, /*adds_text=*/!finish, last);
  if (cut.stopped) finish = FinishReason::kStopSequence;
  gt.text = cut.text;
  result_.tokens.push_back(std::move(gt));
  ++step_;
  if (finish) {
    result_.finish_reason = *finish;
    done_ = true;
  } else if (last) {
    result_.finish_reason = FinishReason::kLength;  // also when the context is full
    done_ = true;
  }
  return &result_.tokens.back();
}

void Generation::Cancel() {
  result_.finish_reason = FinishReason::kCancelled;
  done_ = true;
}

GenerateResult Generation::Finish() {
  result_.text = text_.text();
  return std::move(result_);
}

}  // namespace bitparity
