// engine/sampling: the sampler's contract, checked with fixed seeds and hand-made
// logits so every test is deterministic.
//
//   Greedy          argmax, lowest id on ties (as the golden fixtures were made)
//   Reproducibility same seed -> same tokens, different seed -> different tokens
//   Filters         top-k, top-p, min-p, repetition penalty (llama.cpp semantics)
//   Validation      each bad field is InvalidArgument naming the field
//   Distribution    temperature-1 draws follow softmax(logits) (chi-square, fixed seed)
// (TopK and LogSoftmaxAt are base/logits.h's, tested in tests/base/logits_test.cc.)
//
// Adding a case: build the logits by hand, fix the seed, and state the expected ids.
#include "engine/sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <vector>

#include "base/logits.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity {
namespace {

using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::HasSubstr;

Sampler MakeSampler(const SamplingParams& p, int32_t n_vocab) {
  absl::StatusOr<Sampler> s = Sampler::Create(p, n_vocab);
  EXPECT_THAT(s, IsOk());
  return std::move(*s);
}

// Draws `n` tokens from the same logits with an empty history.
std::vector<int32_t> Draw(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) out.push_back(s.Sample(logits, {}));
  return out;
}

// Small deterministic pseudo-random logits (an LCG, so the test owns its numbers).
std::vector<float> PseudoRandomLogits(uint32_t seed, int n) {
  std::vector<float> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (float& f : v) {
    x = x * 1664525u + 1013904223u;
    f = static_cast<float>(x >> 8) / static_cast<float>(1 << 24) * 8.0f - 4.0f;
  }
  return v;
}

// ---- greedy -------------------------------------------------------------------

TEST(SamplerTest, GreedyPicksArgmaxWithLowestIdOnTies) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 2.5f};
  Sampler s = MakeSampler(SamplingParams{}, 5);  // temperature 0
  EXPECT_EQ(s.Sample(logits, {}), 1);
  EXPECT_EQ(ArgMax(logits), 1);
  // All equal: id 0.
  const std::vector<float> flat(7, 0.5f);
  Sampler s7 = MakeSampler(SamplingParams{}, 7);
  EXPECT_EQ(s7.Sample(flat, {}), 0);
  EXPECT_EQ(ArgMax(flat), 0);
  // The maximum at the end.
  EXPECT_EQ(ArgMax(std::vector<float>{-3.0f, -2.0f, -1.0f}), 2);
}

TEST(SamplerTest, GreedyIgnoresTheSeedAndConsumesNoRandomness) {
  const std::vector<float> logits = PseudoRandomLogits(3, 50);
  SamplingParams a, b;
  a.seed = 1;
  b.seed = 999;
  Sampler sa = MakeSampler(a, 50), sb = MakeSampler(b, 50);
  EXPECT_EQ(Draw(sa, logits, 10), std::vector<int32_t>(10, ArgMax(logits)));
  EXPECT_EQ(Draw(sb, logits, 10), std::vector<int32_t>(10, ArgMax(logits)));
}

// ---- reproducibility -------------------------------------------------------------

TEST(SamplerTest, SameSeedGivesSameSequenceDifferentSeedDiffers) {
  const std::vector<float> logits = PseudoRandomLogits(11, 32);
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 7;
  Sampler s1 = MakeSampler(p, 32), s2 = MakeSampler(p, 32);
  p.seed = 8;
  Sampler s3 = MakeSampler(p, 32);
  const std::vector<int32_t> a = Draw(s1, logits, 64), b = Draw(s2, logits, 64), c = Draw(s3, logits, 64);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(SamplerTest, UniformStreamIsInUnitIntervalAndSeeded) {
  SamplingParams p;
  p.seed = 42;
  Sampler s1 = MakeSampler(p, 2), s2 = MakeSampler(p, 2);
  for (int i = 0; i < 1000; ++i) {
    const float u = s1.NextUniform();
    ASSERT_GE(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    ASSERT_EQ(u, s2.NextUniform()) << "draw " << i;
  }
}

// ---- filters ---------------------------------------------------------------------

TEST(SamplerTest, TopK1IsGreedy) {
  for (uint32_t seed = 0; seed < 50; ++seed) {
    std::vector<float> logits = PseudoRandomLogits(seed, 40);
    if (seed % 5 == 0) logits[seed % 40] = logits[(seed + 7) % 40] = 10.0f;  // a tie for the top
    SamplingParams p;
    p.temperature = 1.5f;
    p.top_k = 1;
    p.seed = seed;
    Sampler s = MakeSampler(p, 40);
    EXPECT_EQ(s.Sample(logits, {}), ArgMax(logits)) << "seed " << seed;
  }
}

TEST(SamplerTest, TopKNeverDrawsOutsideTheKBest) {
  const std::vector<float> logits = {0.0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f};  // nearly flat
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  p.seed = 5;
  Sampler s = MakeSampler(p, 6);
  int seen[6] = {};
  for (int32_t id : Draw(s, logits, 2000)) ++seen[id];
  EXPECT_EQ(seen[0] + seen[1] + seen[2] + seen[3], 0);
  EXPECT_GT(seen[4], 0);
  EXPECT_GT(seen[5], 0);
}

TEST(SamplerTest, TinyTopPKeepsOnlyTheTopToken) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const std::vector<float> logits = PseudoRandomLogits(seed + 100, 64);
    SamplingParams p;
    p.temperature = 1.0f;
    p.top_p = 1e-6f;
    p.seed = seed;
    Sampler s = MakeSampler(p, 64);
    EXPECT_EQ(s.Sample(logits, {}), ArgMax(logits)) << "seed " << seed;
  }
}

TEST(SamplerTest, TopPKeepsTheSmallestPrefixReachingP) {
  // probabilities ~ {0.5, 0.3, 0.2}: top_p 0.7 keeps ids 0 and 1 (0.5 < 0.7 <= 0.8).
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.7f;
  p.seed = 3;
  Sampler s = MakeSampler(p, 3);
  int seen[3] = {};
  for (int32_t id : Draw(s, logits, 2000)) ++seen[id];
  EXPECT_EQ(seen[2], 0);
  EXPECT_GT(seen[0], 0);
  EXPECT_GT(seen[1], 0);
}

TEST(SamplerTest, MinPDropsTokensBelowTheFractionOfTheTopProbability) {
  // p(1)/p(0) = e^-0.1 = 0.90 (kept at min_p 0.5); p(2)/p(0) = e^-1 = 0.37, p(3)/p(0) = e^-1.1 (dropped).
  const std::vector<float> logits = {2.0f, 1.9f, 1.0f, 0.9f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 9;
  Sampler control = MakeSampler(p, 4);
  p.min_p = 0.5f;
  Sampler filtered = MakeSampler(p, 4);
  int with[4] = {}, without[4] = {};
  for (int32_t id : Draw(filtered, logits, 2000)) ++with[id];
  for (int32_t id : Draw(control, logits, 2000)) ++without[id];
  EXPECT_EQ(with[2] + with[3], 0);
  EXPECT_GT(with[0], 0);
  EXPECT_GT(with[1], 0);
  // Without the filter the same tokens do appear, so the check above means something.
  EXPECT_GT(without[2], 0);
  EXPECT_GT(without[3], 0);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveLogits) {
  // 2.0 / 2 = 1.0 < 1.5: greedy moves from id 0 to id 1.
  const std::vector<float> logits = {2.0f, 1.5f, -1.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s = MakeSampler(p, 3);
  EXPECT_EQ(s.Sample(logits, {}), 0);
  const std::vector<int32_t> history = {0};
  EXPECT_EQ(s.Sample(logits, history), 1);
}

TEST(SamplerTest, RepetitionPenaltyMultipliesNegativeLogits) {
  // -1.0 * 2 = -2.0 < -1.5: greedy moves from id 0 to id 1. (Dividing would raise it to -0.5.)
  const std::vector<float> logits = {-1.0f, -1.5f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s = MakeSampler(p, 2);
  const std::vector<int32_t> history = {0};
  EXPECT_EQ(s.Sample(logits, history), 1);
}

TEST(SamplerTest, RepetitionPenaltyAppliesOncePerDistinctToken) {
  // Once: 2.0 / 2 = 1.0 > 0.9 keeps id 0. Three times would give 0.25 and pick id 1.
  const std::vector<float> logits = {2.0f, 0.9f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  Sampler s = MakeSampler(p, 2);
  const std::vector<int32_t> history = {0, 0, 0};
  EXPECT_EQ(s.Sample(logits, history), 0);
}

TEST(SamplerTest, RepetitionPenaltyLooksOnlyAtTheWindow) {
  const std::vector<float> logits = {2.0f, 1.5f, -1.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.repetition_window = 1;  // only the last token (2) counts
  Sampler s = MakeSampler(p, 3);
  const std::vector<int32_t> history = {0, 2};
  EXPECT_EQ(s.Sample(logits, history), 0);
  p.repetition_window = 2;
  Sampler s2 = MakeSampler(p, 3);
  EXPECT_EQ(s2.Sample(logits, history), 1);
}

// Greedy takes one pass over the row; it must pick what the definition picks: the
// penalized (id, logit) list's first element in RanksBefore order.
TEST(SamplerTest, GreedyWithPenaltyEqualsTheFirstOfThePenalizedRanking) {
  for (uint32_t seed = 0; seed < 200; ++seed) {
    const int32_t n = 3 + static_cast<int32_t>(seed % 40);
    std::vector<float> logits = PseudoRandomLogits(seed, n);
    if (seed % 3 == 0) logits[seed % n] = logits[(seed + 5) % n];  // a tie
    if (seed % 7 == 0) logits[(seed + 1) % n] = std::nanf("");
    if (seed % 11 == 0) logits[0] = 4.0f, logits[n - 1] = 2.0f;  // a penalty makes them tie
    SamplingParams p;
    p.repetition_penalty = seed % 2 == 0 ? 2.0f : 0.5f;
    p.repetition_window = seed % 4 == 0 ? -1 : 3;
    std::vector<int32_t> history;  // unsorted, repeats, ids past the row
    for (uint32_t i = 0; i < seed % 9; ++i) history.push_back(static_cast<int32_t>((seed * 31 + i * 17) % (n + 4)));
    if (seed % 11 == 0) history.push_back(0);
    Sampler s = MakeSampler(p, n + 4);  // a vocabulary larger than the row
    std::vector<TokenLogit> ranked;
    for (int32_t i = 0; i < n; ++i) ranked.push_back({i, logits[i]});
    for (int32_t id : s.PenalizedIds(history)) {
      if (id >= n) continue;
      float& l = ranked[id].logit;
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    }
    const int32_t expected = std::min_element(ranked.begin(), ranked.end(), RanksBefore)->id;
    EXPECT_EQ(s.Sample(logits, history), expected) << "seed " << seed;
  }
}

// ---- validation ------------------------------------------------------------------

TEST(SamplerTest, DefaultsAndEdgeValuesAreValid) {
  EXPECT_THAT(ValidateSamplingParams(SamplingParams{}, 10), IsOk());
  SamplingParams p;
  p.temperature = 2.0f;
  p.top_k = 10;  // == n_vocab
  p.top_p = 1.0f;
  p.min_p = 0.99f;
  p.repetition_penalty = 0.5f;
  p.repetition_window = -1;
  EXPECT_THAT(ValidateSamplingParams(p, 10), IsOk());
}

struct BadParamCase {
  const char* what;
  SamplingParams params;
  const char* field;
};

std::vector<BadParamCase> BadParamCases() {
  std::vector<BadParamCase> cases;
  auto add = [&](const char* what, const char* field, auto mutate) {
    SamplingParams p;
    mutate(p);
    cases.push_back({what, p, field});
  };
  add("negative temperature", "temperature", [](SamplingParams& p) { p.temperature = -0.1f; });
  add("NaN temperature", "temperature",
      [](SamplingParams& p) { p.temperature = std::numeric_limits<float>::quiet_NaN(); });
  add("infinite temperature", "temperature",
      [](SamplingParams& p) { p.temperature = std::numeric_limits<float>::infinity(); });
  add("top_k above n_vocab", "top_k", [](SamplingParams& p) { p.top_k = 11; });
  add("negative top_k", "top_k", [](SamplingParams& p) { p.top_k = -1; });
  add("top_p zero", "top_p", [](SamplingParams& p) { p.top_p = 0.0f; });
  add("top_p above one", "top_p", [](SamplingParams& p) { p.top_p = 1.01f; });
  add("NaN top_p", "top_p", [](SamplingParams& p) { p.top_p = std::numeric_limits<float>::quiet_NaN(); });
  add("min_p one", "min_p", [](SamplingParams& p) { p.min_p = 1.0f; });
  add("negative min_p", "min_p", [](SamplingParams& p) { p.min_p = -0.1f; });
  add("penalty zero", "repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = 0.0f; });
  add("negative penalty", "repetition_penalty", [](SamplingParams& p) { p.repetition_penalty = -1.0f; });
  add("window below -1", "repetition_window", [](SamplingParams& p) { p.repetition_window = -2; });
  return cases;
}

TEST(SamplerTest, ValidateRejectsEachBadFieldNamingIt) {
  for (const BadParamCase& c : BadParamCases()) {
    SCOPED_TRACE(c.what);
    EXPECT_THAT(ValidateSamplingParams(c.params, 10),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)));
    // Create refuses the same parameters with the same answer.
    EXPECT_THAT(Sampler::Create(c.params, 10), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)));
  }
}

TEST(SamplerTest, CreateRejectsAnEmptyVocabulary) {
  EXPECT_THAT(Sampler::Create(SamplingParams{}, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocabulary")));
}

// ---- distribution ----------------------------------------------------------------

TEST(SamplerTest, TemperatureOneDrawsFollowSoftmaxProbabilities) {
  // Fixed seed: the statistic is the same number on every run, so this cannot flake;
  // the bound (chi-square, 3 degrees of freedom, p ~ 1e-4) only catches a wrong
  // distribution, e.g. sampling at the wrong temperature or an off-by-one draw.
  const double probs[4] = {0.1, 0.2, 0.3, 0.4};
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)) + 1.25f);  // shift-invariant
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.seed = 20240601;
  Sampler s = MakeSampler(sp, 4);
  constexpr int kDraws = 40000;
  int counts[4] = {};
  for (int32_t id : Draw(s, logits, kDraws)) ++counts[id];
  double chi2 = 0;
  for (int i = 0; i < 4; ++i) {
    const double expected = probs[i] * kDraws;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
    EXPECT_NEAR(static_cast<double>(counts[i]) / kDraws, probs[i], 0.015) << "id " << i;
  }
  std::printf("[sampler] counts %d %d %d %d of %d, chi2 = %.3f (bound 21.1)\n", counts[0], counts[1], counts[2],
              counts[3], kDraws, chi2);
  EXPECT_LT(chi2, 21.1);
}

TEST(SamplerTest, LowTemperatureConcentratesOnTheTopToken) {
  const std::vector<float> logits = {1.0f, 1.2f, 0.8f};
  SamplingParams p;
  p.temperature = 0.01f;  // logit gaps of 0.2 become 20: e^-20 per draw
  p.seed = 4;
  Sampler s = MakeSampler(p, 3);
  EXPECT_EQ(Draw(s, logits, 500), std::vector<int32_t>(500, 1));
}

}  // namespace
}  // namespace bitparity
