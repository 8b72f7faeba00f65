// File: base/logits.h
//
// The figures every part computes from a row of logits, written once so that two
// servers (and the orchestrator that compares them) cannot disagree on them:
// argmax, log-softmax and the top k. Log-probabilities are accumulated in double
// and computed as (logit - max) - log(sum(exp(logit - max))).
//
//   LogSoftmaxNorm norm = LogSoftmaxNormOf(row);
//   double lp = norm.LogProb(row[id]);            // == LogSoftmaxAt(row, id)
//   std::vector<TokenLogit> best = TopK(row, 5);  // descending, lower id on ties
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace bitparity {

// A token id and its logit.
struct TokenLogit {
  int32_t id;
  float logit;
};

// The order of TopK: larger logit first, lower id on ties.
inline bool RanksBefore(const TokenLogit& a, const TokenLogit& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Index of the largest value; lowest index on ties; 0 for an empty row.
int32_t ArgMax(absl::Span<const float> logits);

// What log-softmax needs of a whole row, computed once for many ids.
struct LogSoftmaxNorm {
  double max = 0;      // the largest logit
  double log_sum = 0;  // log(sum(exp(logit - max)))
  double LogProb(float logit) const { return (static_cast<double>(logit) - max) - log_sum; }
};

// REQUIRES: a non-empty row.
LogSoftmaxNorm LogSoftmaxNormOf(absl::Span<const float> logits);

// log-softmax of logits[id]. REQUIRES: 0 <= id < logits.size().
double LogSoftmaxAt(absl::Span<const float> logits, int32_t id);

// log-softmax of the whole row (empty for an empty row).
std::vector<double> LogSoftmax(absl::Span<const float> logits);

// The k largest (id, logit) pairs in RanksBefore order; k is clamped to [0, size].
std::vector<TokenLogit> TopK(absl::Span<const float> logits, int k);

}  // namespace bitparity
