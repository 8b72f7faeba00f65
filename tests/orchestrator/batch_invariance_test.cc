// DiffGenerations (orchestrator/batch_invariance.h): which step first differs,
// how many tokens and values differ, and the largest drift, on hand-built
// generations.
#include "orchestrator/batch_invariance.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace bitparity {
namespace {

namespace v1 = ::bitnet::v1;

// A step: the chosen id, its logprob, and alternatives (id, logit, logprob).
struct Alt {
  int32_t id;
  float logit;
  double logprob;
};
v1::GeneratedToken Step(int32_t id, double logprob, const std::vector<Alt>& top) {
  v1::GeneratedToken t;
  t.set_id(id);
  t.set_logprob(logprob);
  for (const Alt& a : top) {
    v1::TokenAlternative* x = t.add_top();
    x->set_id(a.id);
    x->set_logit(a.logit);
    x->set_logprob(a.logprob);
  }
  return t;
}

std::vector<v1::GeneratedToken> Reference() {
  return {Step(5, -0.5, {{5, 3.0f, -0.5}, {7, 2.0f, -1.5}}), Step(9, -0.25, {{9, 4.0f, -0.25}, {1, 1.0f, -3.25}}),
          Step(2, -0.75, {{2, 2.5f, -0.75}, {3, 2.25f, -1.0}}), Step(4, -0.1, {{4, 6.0f, -0.1}, {8, 0.5f, -5.6}})};
}

TEST(DiffGenerations, IdenticalGenerationsAreBitIdentical) {
  const InvarianceDiff d = DiffGenerations(Reference(), Reference());
  EXPECT_TRUE(d.identical());
  EXPECT_EQ(d.first_diff_step, -1);
  EXPECT_EQ(d.first_token_diff, -1);
  EXPECT_EQ(d.tokens_differ, 0);
  EXPECT_EQ(d.values_differ, 0);
  EXPECT_EQ(d.values_compared, 4 * (1 + 2 * 2));
  EXPECT_EQ(d.max_abs_drift, 0);
}

TEST(DiffGenerations, LogitDriftWithTheSameTokensGivesTheFirstStepAndTheMaxDrift) {
  std::vector<v1::GeneratedToken> among = Reference();
  among[1].mutable_top(1)->set_logit(1.0f + 0.125f);   // step 1: an alternative's logit
  among[3].mutable_top(0)->set_logit(6.0f - 0.5f);     // step 3: a larger drift
  const InvarianceDiff d = DiffGenerations(Reference(), among);
  EXPECT_FALSE(d.identical());
  EXPECT_EQ(d.first_diff_step, 1);
  EXPECT_EQ(d.first_token_diff, -1);
  EXPECT_EQ(d.tokens_differ, 0);
  EXPECT_EQ(d.values_differ, 2);
  EXPECT_DOUBLE_EQ(d.max_abs_drift, 0.5);
}

TEST(DiffGenerations, OneUlpCountsAsADifference) {
  std::vector<v1::GeneratedToken> among = Reference();
  among[2].set_logprob(std::nextafter(-0.75, 0.0));
  const InvarianceDiff d = DiffGenerations(Reference(), among);
  EXPECT_EQ(d.first_diff_step, 2);
  EXPECT_EQ(d.values_differ, 1);
  EXPECT_GT(d.max_abs_drift, 0);
  EXPECT_LT(d.max_abs_drift, 1e-15);
}

TEST(DiffGenerations, SignedZeroDiffersByItsBits) {
  std::vector<v1::GeneratedToken> alone = Reference(), among = Reference();
  alone[0].mutable_top(1)->set_logit(0.0f);
  among[0].mutable_top(1)->set_logit(-0.0f);
  const InvarianceDiff d = DiffGenerations(alone, among);
  EXPECT_EQ(d.first_diff_step, 0);
  EXPECT_EQ(d.values_differ, 1);
  EXPECT_EQ(d.max_abs_drift, 0);
}

TEST(DiffGenerations, ATokenDivergenceStopsTheValueComparisonAfterThatStep) {
  std::vector<v1::GeneratedToken> among = Reference();
  // Step 2 picks token 3 instead of 2 (a near tie that flipped); its values
  // still share the context, later ones do not.
  among[2] = Step(3, -0.7, {{3, 2.5f, -0.7}, {2, 2.25f, -0.95}});
  among[3] = Step(11, -9.0, {{11, 9.0f, -9.0}});
  const InvarianceDiff d = DiffGenerations(Reference(), among);
  EXPECT_EQ(d.first_diff_step, 2);
  EXPECT_EQ(d.first_token_diff, 2);
  EXPECT_EQ(d.tokens_differ, 2);  // steps 2 and 3
  // Step 2: chosen logprob (-0.75 vs -0.7), id 2 (logit 2.5 vs 2.25, logprob -0.75 vs -0.95),
  // id 3 (logit 2.25 vs 2.5, logprob -1.0 vs -0.7): 5 values differ; step 3 is not compared.
  EXPECT_EQ(d.values_differ, 5);
  EXPECT_EQ(d.values_compared, 3 * 5);
  EXPECT_NEAR(d.max_abs_drift, 0.3, 1e-12);
}

TEST(DiffGenerations, AnAlternativeOnOneSideOnlyDiffers) {
  std::vector<v1::GeneratedToken> among = Reference();
  among[0].mutable_top(1)->set_id(6);  // 7 replaced by 6: both missing on the other side
  const InvarianceDiff d = DiffGenerations(Reference(), among);
  EXPECT_EQ(d.first_diff_step, 0);
  EXPECT_EQ(d.values_differ, 4);
  EXPECT_EQ(d.max_abs_drift, 0);
}

TEST(DiffGenerations, AShorterGenerationDiffersAtItsEnd) {
  std::vector<v1::GeneratedToken> among = Reference();
  among.pop_back();
  const InvarianceDiff d = DiffGenerations(Reference(), among);
  EXPECT_FALSE(d.identical());
  EXPECT_EQ(d.first_diff_step, 3);
  EXPECT_EQ(d.tokens_differ, 1);
  EXPECT_EQ(d.values_differ, 0);
}

}  // namespace
}  // namespace bitparity
