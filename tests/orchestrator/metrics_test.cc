// Metric functions against values computed by hand (the arithmetic is in the comments).
#include "orchestrator/metrics.h"

#include <cmath>

#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(Metrics, KlOfTwoPointDistributionsMatchesHandValue) {
  // P = softmax(0, 0) = (1/2, 1/2); Q = softmax(0, ln 3) = (1/4, 3/4).
  // KL = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3) = 0.1438410362...
  const std::vector<float> p = {0, 0}, q = {0, static_cast<float>(std::log(3.0))};
  EXPECT_NEAR(KlDivergence(p, q), 0.5 * std::log(4.0 / 3.0), 1e-7);
  // KL(Q || P) = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.1308120...
  EXPECT_NEAR(KlDivergence(q, p), 0.25 * std::log(0.5) + 0.75 * std::log(1.5), 1e-7);
}

TEST(Metrics, KlIsZeroForIdenticalAndShiftedLogits) {
  const std::vector<float> a = {1.5f, -2.0f, 0.25f, 3.0f};
  std::vector<float> shifted = a;
  for (float& x : shifted) x += 7.0f;  // softmax is shift-invariant
  EXPECT_EQ(KlDivergence(a, a), 0.0);
  EXPECT_NEAR(KlDivergence(a, shifted), 0.0, 1e-12);
}

TEST(Metrics, CosineOfOrthogonalParallelAndDiagonalVectors) {
  EXPECT_DOUBLE_EQ(CosineSimilarity(std::vector<float>{1, 0}, std::vector<float>{0, 1}), 0.0);
  EXPECT_NEAR(CosineSimilarity(std::vector<float>{1, 2, 3}, std::vector<float>{2, 4, 6}), 1.0, 1e-15);
  EXPECT_NEAR(CosineSimilarity(std::vector<float>{1, 2, 3}, std::vector<float>{-1, -2, -3}), -1.0, 1e-15);
  EXPECT_NEAR(CosineSimilarity(std::vector<float>{1, 1}, std::vector<float>{1, 0}), 1 / std::sqrt(2.0), 1e-15);
  EXPECT_EQ(CosineSimilarity(std::vector<float>{0, 0}, std::vector<float>{0, 0}), 1.0);
  EXPECT_EQ(CosineSimilarity(std::vector<float>{0, 0}, std::vector<float>{1, 0}), 0.0);
}

TEST(Metrics, TopKOverlapCountsSharedIds) {
  const std::vector<float> a = {5, 4, 3, 2, 1}, b = {1, 2, 3, 4, 5};
  EXPECT_DOUBLE_EQ(TopKOverlap(a, b, 2), 0.0);        // {0,1} vs {4,3}
  EXPECT_DOUBLE_EQ(TopKOverlap(a, b, 3), 1.0 / 3.0);  // {0,1,2} vs {4,3,2}
  EXPECT_DOUBLE_EQ(TopKOverlap(a, b, 5), 1.0);
  EXPECT_DOUBLE_EQ(TopKOverlap(a, a, 2), 1.0);
}

TEST(Metrics, PerplexityIsExpOfMeanNll) {
  EXPECT_NEAR(Perplexity(3 * std::log(2.0), 3), 2.0, 1e-12);  // each token p = 1/2
  EXPECT_NEAR(Perplexity(0, 5), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(Perplexity(1.0, 0)));
}

TEST(Metrics, PercentileInterpolatesBetweenClosestRanks) {
  const std::vector<double> x = {4, 1, 3, 2};  // sorted 1 2 3 4
  EXPECT_DOUBLE_EQ(Percentile(x, 0), 1);
  EXPECT_DOUBLE_EQ(Percentile(x, 50), 2.5);    // rank 1.5
  EXPECT_DOUBLE_EQ(Percentile(x, 100), 4);
  EXPECT_NEAR(Percentile(x, 99), 3.97, 1e-12);  // rank 2.97: 3 + 0.97 * (4 - 3)
  EXPECT_DOUBLE_EQ(Percentile({7}, 99), 7);
  EXPECT_TRUE(std::isnan(Percentile({}, 50)));
}

TEST(Metrics, RmsAndRelativeRmsDiff) {
  EXPECT_NEAR(Rms(std::vector<double>{3, 4}), std::sqrt(12.5), 1e-15);
  EXPECT_EQ(Rms(std::vector<double>{}), 0);
  EXPECT_EQ(RelativeRmsDiff(std::vector<float>{1, 1}, std::vector<float>{1, 1}), 0);
  // a - b = (1, 0); |a - b| / |b| = 1 / 1.
  EXPECT_DOUBLE_EQ(RelativeRmsDiff(std::vector<float>{2, 0}, std::vector<float>{1, 0}), 1.0);
  // |(0.1, 0.2)| / |(1, 2)| = 0.1.
  EXPECT_NEAR(RelativeRmsDiff(std::vector<float>{1.1f, 2.2f}, std::vector<float>{1, 2}), 0.1, 1e-6);
}

TEST(Metrics, CompareRowsReportsEveryFigure) {
  const std::vector<float> a = {1, 2, 3}, b = {1, 2, 4};
  const RowDiff d = CompareRows(a, b, 2);
  EXPECT_DOUBLE_EQ(d.max_abs, 1.0);
  EXPECT_DOUBLE_EQ(d.mean_abs, 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(d.rms, std::sqrt(1.0 / 3.0));
  EXPECT_NEAR(d.cosine, (1 + 4 + 12) / (std::sqrt(14.0) * std::sqrt(21.0)), 1e-12);
  EXPECT_TRUE(d.top1_agree);
  EXPECT_DOUBLE_EQ(d.topk_overlap, 1.0);  // {2,1} both
  EXPECT_NEAR(d.kl, KlDivergence(a, b), 1e-15);
  EXPECT_GT(d.kl, 0);
  const RowDiff same = CompareRows(a, a, 2);
  EXPECT_EQ(same.max_abs, 0);
  EXPECT_EQ(same.kl, 0);
  EXPECT_EQ(same.cosine, 1);
}

TEST(Metrics, SummarizeGivesMeanMedianP99Max) {
  const Summary s = Summarize({1, 2, 3, 4, 100});
  EXPECT_EQ(s.n, 5);
  EXPECT_DOUBLE_EQ(s.mean, 22);
  EXPECT_DOUBLE_EQ(s.median, 3);
  EXPECT_DOUBLE_EQ(s.max, 100);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_NEAR(s.p99, 4 + 0.96 * 96, 1e-9);  // rank 3.96
}

}  // namespace
}  // namespace bitparity
