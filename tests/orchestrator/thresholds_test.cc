#include "orchestrator/thresholds.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

using ::testing::HasSubstr;

TEST(Thresholds, SetByNameAndAssignment) {
  Thresholds t;
  ASSERT_TRUE(t.Set("drift_max_abs_noise_ratio", 3).ok());
  EXPECT_EQ(t.drift_max_abs_noise_ratio, 3);
  ASSERT_TRUE(t.SetFromAssignment("trace_floor=1e-5").ok());
  EXPECT_EQ(t.trace_floor, 1e-5);
  EXPECT_THAT(std::string(t.Set("no_such", 1).message()), HasSubstr("unknown threshold"));
  EXPECT_FALSE(t.SetFromAssignment("trace_floor").ok());
  EXPECT_FALSE(t.SetFromAssignment("trace_floor=abc").ok());
  EXPECT_FALSE(t.Set("trace_floor", -1).ok());
}

TEST(Thresholds, JsonRoundTripAndMerge) {
  Thresholds t;
  t.drift_kl_noise_ratio = 0.25;
  Thresholds u;
  ASSERT_TRUE(u.MergeJson(t.ToJson()).ok());
  EXPECT_EQ(u.drift_kl_noise_ratio, 0.25);
  EXPECT_EQ(u.ToJson(), t.ToJson());
  EXPECT_FALSE(u.MergeJson(nlohmann::json{{"drift_kl_noise_ratio", "x"}}).ok());
  ASSERT_TRUE(u.MergeJson(nlohmann::json{{"allow_near_tie_divergence", false}}).ok());
  EXPECT_EQ(u.allow_near_tie_divergence, 0);
  EXPECT_EQ(t.ToJson().size(), Thresholds::Names().size());
}

}  // namespace
}  // namespace bitparity
