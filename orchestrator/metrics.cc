#include "orchestrator/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/logits.h"

namespace bitparity {
namespace {

std::vector<int32_t> TopIds(absl::Span<const float> x, int k) {
  std::vector<int32_t> ids;
  for (const TokenLogit& t : TopK(x, k)) ids.push_back(t.id);
  return ids;
}

}  // namespace

double KlDivergence(absl::Span<const float> p_logits, absl::Span<const float> q_logits) {
  const std::vector<double> lp = LogSoftmax(p_logits), lq = LogSoftmax(q_logits);
  double kl = 0;
  for (size_t i = 0; i < lp.size() && i < lq.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return std::max(0.0, kl);
}

double CosineSimilarity(absl::Span<const float> a, absl::Span<const float> b) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0 && bb == 0) return 1;
  if (aa == 0 || bb == 0) return 0;
  return ab / (std::sqrt(aa) * std::sqrt(bb));
}

double Rms(absl::Span<const double> x) {
  if (x.empty()) return 0;
  double s = 0;
  for (double v : x) s += v * v;
  return std::sqrt(s / x.size());
}

double RelativeRmsDiff(absl::Span<const float> a, absl::Span<const float> b) {
  double dd = 0, bb = 0;
  const size_t n = std::min(a.size(), b.size());
  if (n == 0) return 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    dd += d * d;
    bb += static_cast<double>(b[i]) * b[i];
  }
  return bb == 0 ? std::sqrt(dd / n) : std::sqrt(dd / bb);
}

double TopKOverlap(absl::Span<const float> a, absl::Span<const float> b, int k) {
  std::vector<int32_t> ta = TopIds(a, k), tb = TopIds(b, k);
  if (ta.empty()) return 1;
  std::sort(ta.begin(), ta.end());
  std::sort(tb.begin(), tb.end());
  std::vector<int32_t> common;
  std::set_intersection(ta.begin(), ta.end(), tb.begin(), tb.end(), std::back_inserter(common));
  return static_cast<double>(common.size()) / ta.size();
}

double Perplexity(double nll_sum, int64_t n) {
  if (n <= 0) return std::numeric_limits<double>::quiet_NaN();
  return std::exp(nll_sum / static_cast<double>(n));
}

double Percentile(std::vector<double> x, double p) {
  if (x.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(x.begin(), x.end());
  const double rank = (x.size() - 1) * std::clamp(p, 0.0, 100.0) / 100.0;
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, x.size() - 1);
  return x[lo] + (rank - lo) * (x[hi] - x[lo]);
}

RowDiff CompareRows(absl::Span<const float> a, absl::Span<const float> b, int top_k) {
  RowDiff d;
  const size_t n = std::min(a.size(), b.size());
  if (n == 0) return d;
  double sum_abs = 0, sum_sq = 0;
  for (size_t i = 0; i < n; ++i) {
    const double diff = std::fabs(static_cast<double>(a[i]) - b[i]);
    d.max_abs = std::max(d.max_abs, diff);
    sum_abs += diff;
    sum_sq += diff * diff;
  }
  d.mean_abs = sum_abs / n;
  d.rms = std::sqrt(sum_sq / n);
  d.cosine = CosineSimilarity(a, b);
  // Identical rows are common (bit-exact engines); skip the softmaxes then.
  d.kl = d.max_abs == 0 ? 0 : KlDivergence(a, b);
  d.top1_agree = ArgMax(a) == ArgMax(b);
  d.topk_overlap = d.max_abs == 0 ? 1 : TopKOverlap(a, b, top_k);
  return d;
}

Summary Summarize(const std::vector<double>& x) {
  Summary s;
  s.n = static_cast<int64_t>(x.size());
  if (x.empty()) return s;
  std::vector<double> v = x;
  std::sort(v.begin(), v.end());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / v.size();
  s.median = Percentile(v, 50);
  s.p99 = Percentile(v, 99);
  s.max = v.back();
  s.min = v.front();
  return s;
}

}  // namespace bitparity
