// File: orchestrator/metrics.h
//
// The numbers bitparity reports, as small pure functions named after the maths, so
// that each can be checked against hand-computed values (tests/orchestrator/
// metrics_test.cc). Logits are raw float32 rows of one position; probabilities
// come from a softmax computed in double precision. Logs are natural logarithms.
//
//   RowDiff d = CompareRows(logits_a, logits_b, /*top_k=*/10);
//   Summary s = Summarize({d1.max_abs, d2.max_abs, ...});  // mean, median, p99, max
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace bitparity {

// KL(P || Q) = sum_i p_i (log p_i - log q_i) with P = softmax(p_logits),
// Q = softmax(q_logits). Same length. Always >= 0 (tiny negative rounding clamps to 0).
double KlDivergence(absl::Span<const float> p_logits, absl::Span<const float> q_logits);

// a.b / (|a| |b|); 1 when both are all zero, 0 when exactly one is.
double CosineSimilarity(absl::Span<const float> a, absl::Span<const float> b);

// sqrt(mean(x^2)); 0 for an empty span.
double Rms(absl::Span<const double> x);

// rms(a - b) / rms(b): the size of a difference relative to the reference b.
// 0 when a == b; when b is all zero, rms(a - b).
double RelativeRmsDiff(absl::Span<const float> a, absl::Span<const float> b);

// |topk(a) ∩ topk(b)| / k, in [0, 1]. k is clamped to the row length.
double TopKOverlap(absl::Span<const float> a, absl::Span<const float> b, int k);


// exp(nll_sum / n): the perplexity of n predicted tokens with total negative log
// likelihood nll_sum. 0 tokens give NaN.
double Perplexity(double nll_sum, int64_t n);

// The p-th percentile (p in [0, 100]) with linear interpolation between closest
// ranks (numpy's default): sorted x[(n-1) p/100]. NaN for an empty input.
double Percentile(std::vector<double> x, double p);

// How one row of side A differs from the same row of side B (the reference).
struct RowDiff {
  double max_abs = 0;       // max_i |a_i - b_i|
  double mean_abs = 0;      // mean_i |a_i - b_i|
  double rms = 0;           // sqrt(mean_i (a_i - b_i)^2)
  double cosine = 1;        // CosineSimilarity(a, b)
  double kl = 0;            // KL(softmax(a) || softmax(b))
  bool top1_agree = true;   // ArgMax(a) == ArgMax(b)
  double topk_overlap = 1;  // TopKOverlap(a, b, k)
};
RowDiff CompareRows(absl::Span<const float> a, absl::Span<const float> b, int top_k);

// Mean, median, 99th percentile and max of a sample.
struct Summary {
  int64_t n = 0;
  double mean = 0, median = 0, p99 = 0, max = 0, min = 0;
};
Summary Summarize(const std::vector<double>& x);

}  // namespace bitparity
