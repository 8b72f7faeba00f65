// base/logits.h: argmax, log-softmax and top-k, the figures every server and the
// orchestrator compute from a logits row. Hand-computed values; ties go to the
// lower id everywhere.
#include "base/logits.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(ArgMax, TiesGoToTheLowerId) {
  EXPECT_EQ(ArgMax(std::vector<float>{0.5f, 2.0f, -1.0f, 2.0f, 1.0f}), 1);
  EXPECT_EQ(ArgMax(std::vector<float>{2, 2, 2}), 0);
  EXPECT_EQ(ArgMax(std::vector<float>{-3.0f, -2.0f, -1.0f}), 2);
  EXPECT_EQ(ArgMax(std::vector<float>{}), 0);
}

TEST(LogSoftmax, MatchesHandComputation) {
  // log(e^1 / (e^1 + e^2 + e^3)) = 1 - log(e + e^2 + e^3) = -2.4076059644443806
  const std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  EXPECT_NEAR(LogSoftmaxAt(logits, 0), -2.4076059644443806, 1e-12);
  EXPECT_NEAR(LogSoftmaxAt(logits, 2), -0.4076059644443806, 1e-12);
  const std::vector<double> all = LogSoftmax(logits);
  ASSERT_EQ(all.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(all[i], LogSoftmaxAt(logits, i)) << i;
  const std::vector<float> two = {0, static_cast<float>(std::log(3.0))};
  EXPECT_NEAR(LogSoftmax(two)[0], std::log(0.25), 1e-7);
  EXPECT_NEAR(LogSoftmax(two)[1], std::log(0.75), 1e-7);
  EXPECT_TRUE(LogSoftmax(std::vector<float>{}).empty());
}

TEST(LogSoftmax, StableForLargeLogits) {
  // log(e^1001 / (e^1000 + e^1001)) = -log(1 + e^-1) = -0.31326168751822286
  const std::vector<float> big = {1000.0f, 1001.0f};
  EXPECT_NEAR(LogSoftmaxAt(big, 1), -0.31326168751822286, 1e-12);
  const std::vector<float> equal = {1000.0f, 1000.0f};
  EXPECT_NEAR(LogSoftmaxAt(equal, 1), std::log(0.5), 1e-12);
}

TEST(LogSoftmax, ProbabilitiesSumToOne) {
  std::vector<float> row(1000);
  for (size_t i = 0; i < row.size(); ++i) row[i] = static_cast<float>(std::sin(i * 0.37) * 9.0);
  double sum = 0;
  for (double lp : LogSoftmax(row)) sum += std::exp(lp);
  EXPECT_NEAR(sum, 1.0, 1e-12);
}

TEST(LogSoftmax, NormComputedOnceGivesTheSameBits) {
  const std::vector<float> row = {0.25f, -7.5f, 3.125f, 3.0f};
  const LogSoftmaxNorm norm = LogSoftmaxNormOf(row);
  EXPECT_EQ(norm.max, 3.125);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(norm.LogProb(row[i]), LogSoftmaxAt(row, i)) << i;
}

TEST(TopK, SortsByDescendingLogitThenLowerId) {
  const std::vector<float> logits = {1.0f, 5.0f, 3.0f, 5.0f, 2.0f, 3.0f};
  const std::vector<TokenLogit> top = TopK(logits, 4);
  ASSERT_EQ(top.size(), 4u);
  const int32_t ids[4] = {1, 3, 2, 5};
  const float vals[4] = {5.0f, 5.0f, 3.0f, 3.0f};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(top[i].id, ids[i]) << "rank " << i;
    EXPECT_EQ(top[i].logit, vals[i]) << "rank " << i;
  }
}

TEST(TopK, ClampsK) {
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f};
  EXPECT_TRUE(TopK(logits, 0).empty());
  EXPECT_TRUE(TopK(logits, -3).empty());
  const std::vector<TokenLogit> all = TopK(logits, 10);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, 2);
  EXPECT_EQ(all[1].id, 0);
  EXPECT_EQ(all[2].id, 1);
}

TEST(TopK, FirstIsTheArgMax) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, 1.0f};
  EXPECT_EQ(TopK(logits, 1)[0].id, ArgMax(logits));
}

}  // namespace
}  // namespace bitparity
