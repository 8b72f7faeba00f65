#include "base/logits.h"

#include <algorithm>
#include <cmath>

namespace bitparity {

int32_t ArgMax(absl::Span<const float> logits) {
  int32_t best = 0;
  for (int32_t i = 1; i < static_cast<int32_t>(logits.size()); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return best;
}

LogSoftmaxNorm LogSoftmaxNormOf(absl::Span<const float> logits) {
  LogSoftmaxNorm norm;
  norm.max = -INFINITY;
  for (float v : logits) norm.max = std::max(norm.max, static_cast<double>(v));
  double sum = 0;
  for (float v : logits) sum += std::exp(static_cast<double>(v) - norm.max);
  norm.log_sum = std::log(sum);
  return norm;
}

double LogSoftmaxAt(absl::Span<const float> logits, int32_t id) {
  return LogSoftmaxNormOf(logits).LogProb(logits[id]);
}

std::vector<double> LogSoftmax(absl::Span<const float> logits) {
  std::vector<double> out(logits.size());
  if (logits.empty()) return out;
  const LogSoftmaxNorm norm = LogSoftmaxNormOf(logits);
  for (size_t i = 0; i < logits.size(); ++i) out[i] = norm.LogProb(logits[i]);
  return out;
}

std::vector<TokenLogit> TopK(absl::Span<const float> logits, int k) {
  std::vector<TokenLogit> all(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) all[i] = {static_cast<int32_t>(i), logits[i]};
  k = std::max(0, std::min<int>(k, static_cast<int>(all.size())));
  std::partial_sort(all.begin(), all.begin() + k, all.end(), RanksBefore);
  all.resize(k);
  return all;
}

}  // namespace bitparity
