#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace bitparity {

absl::Status ValidateSamplingParams(const SamplingParams& p, int32_t n_vocab) {
  if (!(p.temperature >= 0.0f) || !std::isfinite(p.temperature)) {
    return absl::InvalidArgumentError(absl::StrCat("temperature must be a finite number >= 0, got ", p.temperature));
  }
  if (p.top_k < 0 || p.top_k > n_vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be in [0, ", n_vocab, "] (0 = off), got ", p.top_k));
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", p.top_p));
  }
  if (!(p.min_p >= 0.0f && p.min_p < 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("min_p must be in [0, 1), got ", p.min_p));
  }
  if (!(p.repetition_penalty > 0.0f) || !std::isfinite(p.repetition_penalty)) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_penalty must be a finite number > 0, got ", p.repetition_penalty));
  }
  if (p.repetition_window < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition_window must be >= -1, got ", p.repetition_window));
  }
  return absl::OkStatus();
}

absl::StatusOr<Sampler> Sampler::Create(const SamplingParams& params, int32_t n_vocab) {
  if (n_vocab <= 0) return absl::InvalidArgumentError("sampler needs a vocabulary of at least one token");
  absl::Status s = ValidateSamplingParams(params, n_vocab);
  if (!s.ok()) return s;
  return Sampler(params, n_vocab);
}

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab)
    : params_(params), n_vocab_(n_vocab), rng_(params.seed) {}

float Sampler::NextUniform() {
  return static_cast<float>(rng_.Next() >> 40) * (1.0f / 16777216.0f);  // 24 random bits
}

std::vector<int32_t> Sampler::PenalizedIds(absl::Span<const int32_t> history) const {
  std::vector<int32_t> ids;
  if (params_.repetition_penalty == 1.0f || history.empty()) return ids;
  size_t start = 0;
  if (params_.repetition_window >= 0 && history.size() > static_cast<size_t>(params_.repetition_window)) {
    start = history.size() - params_.repetition_window;
  }
  absl::flat_hash_set<int32_t> seen;
  for (size_t i = start; i < history.size(); ++i) {
    const int32_t id = history[i];
    if (id < 0 || id >= n_vocab_ || !seen.insert(id).second) continue;
    ids.push_back(id);
  }
  return ids;
}

int32_t Sampler::CandidatesNeeded() const {
  if (params_.temperature == 0.0f) return 1;
  return params_.top_k;  // 0 when off
}

// Repetition penalty (llama.cpp / CTRL), applied to each distinct recent token once.
float Sampler::Penalized(float logit) const {
  return logit > 0 ? logit / params_.repetition_penalty : logit * params_.repetition_penalty;
}

// One pass over the row, without the candidate list Sample() builds: a batch step
// samples every sequence's row on one thread while the pool's other threads wait, and
// filling 128K (id, logit) pairs first was a quarter of that (sampler_bench). Picks
// what min_element under RanksBefore picks: ids rise, so a later id replaces the best
// only when strictly larger (a NaN never replaces and is never replaced, as there).
int32_t Sampler::Greedy(absl::Span<const float> logits, absl::Span<const int32_t> history) const {
  std::vector<int32_t> penalized = PenalizedIds(history);
  std::sort(penalized.begin(), penalized.end());
  auto next = penalized.begin();
  int32_t best = 0;
  float best_logit = 0;
  for (int32_t i = 0; i < static_cast<int32_t>(logits.size()); ++i) {
    float l = logits[i];
    if (next != penalized.end() && *next == i) {
      l = Penalized(l);
      ++next;
    }
    if (i == 0 || l > best_logit) {
      best = i;
      best_logit = l;
    }
  }
  return best;
}

int32_t Sampler::Sample(absl::Span<const float> logits, absl::Span<const int32_t> history) {
  const int32_t n = std::min<int32_t>(n_vocab_, static_cast<int32_t>(logits.size()));
  if (params_.temperature == 0.0f) return Greedy(logits.first(n), history);
  candidates_.resize(n);
  for (int32_t i = 0; i < n; ++i) candidates_[i] = {i, logits[i]};
  for (int32_t id : PenalizedIds(history)) {
    if (id >= n) continue;
    candidates_[id].logit = Penalized(candidates_[id].logit);
  }

  // top-k (0 = keep all), then sort what is left by descending logit.
  size_t keep = candidates_.size();
  if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < keep) {
    keep = params_.top_k;
    std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), RanksBefore);
    candidates_.resize(keep);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), RanksBefore);
  }

  // Softmax over the survivors at temperature 1 for top-p / min-p (llama.cpp applies
  // those filters before temperature), in double for stability.
  std::vector<double> probs(candidates_.size());
  const double max_logit = candidates_[0].logit;
  double sum = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    probs[i] = std::exp(static_cast<double>(candidates_[i].logit) - max_logit);
    sum += probs[i];
  }
  for (double& p : probs) p /= sum;

  if (params_.top_p < 1.0f) {
    double cum = 0;
    size_t i = 0;
    for (; i < probs.size(); ++i) {
      cum += probs[i];
      if (cum >= params_.top_p) break;
    }
    keep = std::min(probs.size(), i + 1);
    candidates_.resize(keep);
    probs.resize(keep);
  }
  if (params_.min_p > 0.0f) {
    const double threshold = probs[0] * params_.min_p;
    size_t i = 1;
    while (i < probs.size() && probs[i] >= threshold) ++i;
    candidates_.resize(i);
    probs.resize(i);
  }

  // Temperature, then draw.
  sum = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    probs[i] = std::exp((static_cast<double>(candidates_[i].logit) - max_logit) / params_.temperature);
    sum += probs[i];
  }
  const double r = static_cast<double>(NextUniform()) * sum;
  double cum = 0;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cum += probs[i];
    if (r < cum) return candidates_[i].id;
  }
  return candidates_.back().id;
}

}  // namespace bitparity
