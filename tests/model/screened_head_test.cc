// The screened output head (engine/model/screened_head.h) against the exact head, on
// hand-built heads that try to break its bound:
//   - every row's exact logit lies in [lo, hi], and in the refinement's narrower
//     interval, on random rows of odd and aligned widths, on every kernel path; and
//     in the refined interval on a row built to press on it;
//   - adversarial rows whose int8 order is the reverse of their exact order, one pair
//     for each term of the bound (weight rounding, activation rounding): the screen
//     still picks the exact winner, and with the bound cut to a tenth (the test-only
//     bound_scale knob) it does not, which shows these rows really press on the bound;
//   - near-ties (identical rows, rows 1e-7 apart) for greedy, top-k and a penalty;
//   - a non-finite activation falls back to the full exact head;
//   - LogitsBatch gives every row what Logits gives it alone, bit for bit, when rows
//     share candidate rows (read once for all of them), one falls back, and requests
//     differ (greedy, top-k, a penalty).
// Seeds are fixed and printed through SCOPED_TRACE.
#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "base/logits.h"
#include "engine/kernels/kernels.h"
#include "engine/model/screened_head.h"
#include "engine/runtime/thread_pool.h"
#include "engine/sampling/sampler.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

// A head held in memory as F16 rows.
struct HandHead {
  std::vector<uint16_t> data;
  WeightMatrix w;
  HandHead(const std::vector<std::vector<float>>& rows) {
    const int64_t cols = static_cast<int64_t>(rows[0].size());
    for (const auto& r : rows) {
      for (float v : r) data.push_back(Fp32ToFp16(v));
    }
    w.name = "hand.weight";
    w.type = GgmlType::kF16;
    w.data = reinterpret_cast<const uint8_t*>(data.data());
    w.cols = cols;
    w.rows = static_cast<int64_t>(rows.size());
    w.row_bytes = static_cast<uint64_t>(cols) * sizeof(uint16_t);
  }
};

std::vector<float> RandomRow(std::mt19937& rng, int64_t n, float scale) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> r(n);
  for (float& v : r) v = Fp16ToFp32(Fp32ToFp16(d(rng)));
  return r;
}

std::vector<const Kernels*> AllPaths() {
  std::vector<const Kernels*> out;
  for (KernelPath p : {KernelPath::kScalar, KernelPath::kAvx2, KernelPath::kAvx512}) {
    if (KernelPathSupported(p)) out.push_back(&KernelsFor(p));
  }
  return out;
}

ScreenedHead Build(const HandHead& h, ThreadPool& pool, double bound_scale = 1.0) {
  auto s = ScreenedHead::Build(h.w, pool, bound_scale);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

std::vector<float> Exact(const ScreenedHead& head, const Kernels& k, ThreadPool& pool, const std::vector<float>& x) {
  ScreenScratch s;
  s.xh.resize(x.size());
  k.fp32_to_fp16_row(x.data(), s.xh.data(), static_cast<int64_t>(x.size()));
  std::vector<float> out(head.rows());
  head.ExactAll(k, pool, s, out.data());
  return out;
}

std::vector<float> Screened(const ScreenedHead& head, const Kernels& k, ThreadPool& pool, const std::vector<float>& x,
                            const ScreenRequest& req, ScreenResult* result = nullptr) {
  ScreenScratch s;
  std::vector<float> out(head.rows());
  ScreenResult r = head.Logits(k, pool, x.data(), req, s, out.data());
  if (result != nullptr) *result = r;
  return out;
}

// What a sampler with `p` picks from each row, over `draws` draws (same seed for both).
std::vector<int32_t> Picks(const SamplingParams& p, const std::vector<float>& logits,
                           const std::vector<int32_t>& history, int draws) {
  auto sampler = Sampler::Create(p, static_cast<int32_t>(logits.size()));
  EXPECT_TRUE(sampler.ok());
  std::vector<int32_t> out;
  for (int i = 0; i < draws; ++i) out.push_back(sampler->Sample(logits, history));
  return out;
}

// The top k after the penalty, values included (bit for bit).
std::vector<std::pair<int32_t, uint32_t>> PenalizedTopK(std::vector<float> l, const SamplingParams& p,
                                                        const std::vector<int32_t>& history, int k) {
  auto sampler = Sampler::Create(p, static_cast<int32_t>(l.size()));
  for (int32_t id : sampler->PenalizedIds(history)) {
    l[id] = l[id] > 0 ? l[id] / p.repetition_penalty : l[id] * p.repetition_penalty;
  }
  std::vector<std::pair<int32_t, uint32_t>> out;
  for (const TokenLogit& t : TopK(l, k)) out.push_back({t.id, FloatBits(t.logit)});
  return out;
}

// The screened row serves `p` exactly as the exact row does: same top k (ids and
// bits) and same draws.
void ExpectSameChoices(const ScreenedHead& head, const Kernels& k, ThreadPool& pool, const std::vector<float>& x,
                       const SamplingParams& p, const std::vector<int32_t>& history) {
  auto sampler = Sampler::Create(p, static_cast<int32_t>(head.rows()));
  ASSERT_TRUE(sampler.ok());
  const std::vector<int32_t> penalized = sampler->PenalizedIds(history);
  ScreenRequest req;
  req.top_k = sampler->CandidatesNeeded();
  req.repetition_penalty = p.repetition_penalty;
  req.penalized = penalized;
  const std::vector<float> exact = Exact(head, k, pool, x);
  const std::vector<float> screened = Screened(head, k, pool, x, req);
  EXPECT_EQ(PenalizedTopK(exact, p, history, req.top_k), PenalizedTopK(screened, p, history, req.top_k));
  EXPECT_EQ(Picks(p, exact, history, 8), Picks(p, screened, history, 8));
}

TEST(ScreenedHeadTest, EveryExactLogitLiesWithinItsBound) {
  ThreadPool pool(2);
  for (int64_t cols : {64, 200, 256, 2560}) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE(::testing::Message() << "cols " << cols << " seed " << seed);
      std::mt19937 rng(seed);
      std::vector<std::vector<float>> rows;
      for (int r = 0; r < 300; ++r) rows.push_back(RandomRow(rng, cols, r % 7 == 0 ? 1.0f : 0.02f));
      HandHead h(rows);
      const ScreenedHead head = Build(h, pool);
      const std::vector<float> x = RandomRow(rng, cols, 2.0f);
      for (const Kernels* k : AllPaths()) {
        SCOPED_TRACE(k->name);
        ScreenScratch s;
        ASSERT_TRUE(head.Bounds(*k, pool, x.data(), s));
        const std::vector<float> exact = Exact(head, *k, pool, x);
        double width = 0, refined_width = 0;
        for (int64_t r = 0; r < head.rows(); ++r) {
          ASSERT_LE(s.lo[r], exact[r]) << "row " << r;
          ASSERT_GE(s.hi[r], exact[r]) << "row " << r;
          // The refinement's interval holds it too (step 3b).
          double lo2 = 0, hi2 = 0;
          ASSERT_TRUE(head.RefinedBound(*k, s, r, &lo2, &hi2));
          ASSERT_LE(lo2, exact[r]) << "row " << r << " (refined)";
          ASSERT_GE(hi2, exact[r]) << "row " << r << " (refined)";
          width += s.hi[r] - s.lo[r];
          refined_width += hi2 - lo2;
        }
        // ... and is narrower: the activation term all but goes.
        EXPECT_LT(refined_width, 0.75 * width);
      }
    }
  }
}

// Rows A and B (ids 3 and 7 among small filler rows) built so that the int8 head ranks
// B first while the exact head ranks A first, pressing on one term of the bound.
struct Adversary {
  std::vector<std::vector<float>> rows;
  std::vector<float> x;
  static constexpr int kA = 3, kB = 7;
};

std::vector<std::vector<float>> Fillers(std::mt19937& rng, int64_t n, int count) {
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < count; ++r) rows.push_back(RandomRow(rng, n, 1e-4f));
  return rows;
}

// Weight rounding (E_r X): x = ±1/2 (quantizes without error), A's values sit 3/8 of a
// step above their int8 codes in the direction of x, B's 3/8 below, and B's codes are
// 60 steps larger in total. int8: B ahead by 60 steps; exact: A ahead by
// 2 * 3/8 * 255 - 60 = 131 steps. The bound on each is ~3/8 * sqrt(255) * ||x|| steps,
// i.e. ~tight: a tenth of it no longer covers the difference.
Adversary WeightRoundingAdversary(uint32_t seed) {
  constexpr int64_t n = 256;
  std::mt19937 rng(seed);
  Adversary a;
  a.rows = Fillers(rng, n, 12);
  std::vector<float> sign(n);
  for (int64_t i = 0; i < n; ++i) sign[i] = rng() % 2 ? 1.0f : -1.0f;
  a.x.resize(n);
  for (int64_t i = 0; i < n; ++i) a.x[i] = 0.5f * sign[i];
  const float step = 1.0f / 128;  // the int8 scale: max |w| = 127 / 128
  std::vector<float> A(n), B(n);
  std::uniform_int_distribution<int> noise(-20, 20);
  int bumped = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int q = i == 0 ? 127 : static_cast<int>(50 * sign[i]) + noise(rng);
    if (i == 0) {
      A[i] = B[i] = q * step;  // sets the scale, no rounding error
      continue;
    }
    A[i] = (q + 0.375f * sign[i]) * step;
    int qb = q;
    if (sign[i] > 0 && bumped < 6) {
      qb += 10;
      ++bumped;
    }
    B[i] = (qb - 0.375f * sign[i]) * step;
  }
  a.rows[Adversary::kA] = A;
  a.rows[Adversary::kB] = B;
  return a;
}

// Activation rounding (Q_r D): x has one carrier 127/128 (t = 128 exactly) and 128
// entries of ±3/1024, which quantize to 0 (all of x's rounding error, none of A's or
// B's: w = q / 128 exactly). A's codes are +127 with the sign of that error, B's -127,
// and B's code on the carrier is 40: int8 puts B 40 * 127/128 steps ahead, exact puts
// A 2 * 127 * 128 * 3/8 / 128 - 39.7 = 55.5 steps ahead, and the bound is ~tight.
Adversary ActivationRoundingAdversary(uint32_t seed) {
  constexpr int64_t n = 256;
  std::mt19937 rng(seed);
  Adversary a;
  a.rows = Fillers(rng, n, 12);
  a.x.assign(n, 0.0f);
  a.x[0] = 127.0f / 128;
  std::vector<float> A(n, 0.0f), B(n, 0.0f);
  for (int64_t i = 128; i < n; ++i) {
    const float sign = rng() % 2 ? 1.0f : -1.0f;
    a.x[i] = sign * 3.0f / 1024;
    A[i] = sign * 127.0f / 128;
    B[i] = -sign * 127.0f / 128;
  }
  B[0] = 40.0f / 128;
  a.rows[Adversary::kA] = A;
  a.rows[Adversary::kB] = B;
  return a;
}

void CheckAdversary(const Adversary& adv) {
  ThreadPool pool(2);
  HandHead h(adv.rows);
  const ScreenedHead head = Build(h, pool);
  const ScreenedHead understated = Build(h, pool, /*bound_scale=*/0.1);
  for (const Kernels* k : AllPaths()) {
    SCOPED_TRACE(k->name);
    // The construction worked: exact ranks A first, int8 (the bounds' centres) B.
    const std::vector<float> exact = Exact(head, *k, pool, adv.x);
    ASSERT_EQ(ArgMax(exact), Adversary::kA);
    ScreenScratch s;
    ASSERT_TRUE(head.Bounds(*k, pool, adv.x.data(), s));
    const double centre_a = (s.lo[Adversary::kA] + s.hi[Adversary::kA]) / 2;
    const double centre_b = (s.lo[Adversary::kB] + s.hi[Adversary::kB]) / 2;
    ASSERT_GT(centre_b, centre_a) << "int8 should rank B first";
    // The bound is nearly tight on A: its error uses most of it.
    const double used = std::fabs(exact[Adversary::kA] - centre_a) / ((s.hi[Adversary::kA] - s.lo[Adversary::kA]) / 2);
    EXPECT_GT(used, 0.5);
    EXPECT_LE(used, 1.0);

    ScreenRequest greedy;
    const std::vector<float> screened = Screened(head, *k, pool, adv.x, greedy);
    EXPECT_EQ(ArgMax(screened), Adversary::kA);
    EXPECT_EQ(screened[Adversary::kA], exact[Adversary::kA]);
    // The test of the test: a tenth of the bound lets the int8 order through.
    const std::vector<float> wrong = Screened(understated, *k, pool, adv.x, greedy);
    EXPECT_EQ(ArgMax(wrong), Adversary::kB) << "an understated bound went unnoticed";
  }
}

TEST(ScreenedHeadTest, WeightRoundingAdversaryKeepsTheExactWinnerAndCatchesATenthOfTheBound) {
  for (uint32_t seed : {11u, 12u, 13u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    CheckAdversary(WeightRoundingAdversary(seed));
  }
}

TEST(ScreenedHeadTest, ActivationRoundingAdversaryKeepsTheExactWinnerAndCatchesATenthOfTheBound) {
  for (uint32_t seed : {21u, 22u, 23u}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    CheckAdversary(ActivationRoundingAdversary(seed));
  }
}

// Rows whose exact logits tie or differ by ~1e-7: twins of the leading rows, some
// identical (a tie: the lowest id wins), some with one value moved by one F16 step
// where x is ~1e-3.
TEST(ScreenedHeadTest, NearTiesWithinOneMillionthPickAsTheExactHead) {
  ThreadPool pool(2);
  for (int64_t cols : {200, 512}) {
    for (uint32_t seed : {31u, 32u, 33u, 34u}) {
      SCOPED_TRACE(::testing::Message() << "cols " << cols << " seed " << seed);
      std::mt19937 rng(seed);
      std::vector<std::vector<float>> rows;
      for (int r = 0; r < 400; ++r) rows.push_back(RandomRow(rng, cols, 0.05f));
      std::vector<float> x = RandomRow(rng, cols, 1.0f);
      x[5] = Fp16ToFp32(Fp32ToFp16(1e-3f));
      // Twins of the 50 leading rows (after the exact head), interleaved by id.
      HandHead base(rows);
      const ScreenedHead base_head = Build(base, pool);
      const std::vector<float> base_exact = Exact(base_head, GetKernels(), pool, x);
      std::vector<std::vector<float>> front, back;  // twins before and after the originals' ids
      int twins = 0;
      for (const TokenLogit& t : TopK(base_exact, 50)) {
        std::vector<float> twin = rows[t.id];
        if (twins % 2 == 1) twin[5] = Fp16ToFp32(static_cast<uint16_t>(Fp32ToFp16(twin[5]) + (twins % 4 == 1 ? 1 : -1)));
        (twins % 3 == 0 ? front : back).push_back(twin);
        ++twins;
      }
      front.insert(front.end(), rows.begin(), rows.end());
      front.insert(front.end(), back.begin(), back.end());
      rows = front;
      HandHead h(rows);
      const ScreenedHead head = Build(h, pool);
      const std::vector<float> exact = Exact(head, GetKernels(), pool, x);
      // There are ties and near-ties at the top.
      const std::vector<TokenLogit> top = TopK(exact, 10);
      int close = 0;
      for (size_t i = 1; i < top.size(); ++i) close += top[i - 1].logit - top[i].logit <= 1e-6f;
      ASSERT_GE(close, 3);
      for (const Kernels* k : AllPaths()) {
        SCOPED_TRACE(k->name);
        SamplingParams greedy;
        ExpectSameChoices(head, *k, pool, x, greedy, {});
        SamplingParams topk;
        topk.temperature = 0.7f;
        topk.top_k = 40;
        topk.top_p = 0.9f;
        topk.seed = seed;
        ExpectSameChoices(head, *k, pool, x, topk, {});
        // A penalty on some of the leaders (the sampler's order: penalty, then top-k).
        std::vector<int32_t> history;
        for (size_t i = 0; i < top.size(); i += 2) history.push_back(top[i].id);
        SamplingParams penalized = topk;
        penalized.repetition_penalty = 1.3f;
        ExpectSameChoices(head, *k, pool, x, penalized, history);
        SamplingParams greedy_penalized;
        greedy_penalized.repetition_penalty = 1.1f;
        ExpectSameChoices(head, *k, pool, x, greedy_penalized, history);
      }
    }
  }
}

TEST(ScreenedHeadTest, ReadsFewRowsOnALeadingRow) {
  ThreadPool pool(2);
  std::mt19937 rng(41);
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 2000; ++r) rows.push_back(RandomRow(rng, 256, 0.05f));
  std::vector<float> x = RandomRow(rng, 256, 1.0f);
  for (int64_t i = 0; i < 256; ++i) rows[77][i] = Fp16ToFp32(Fp32ToFp16(0.2f * x[i]));  // a clear winner
  HandHead h(rows);
  const ScreenedHead head = Build(h, pool);
  ScreenResult r;
  const std::vector<float> screened = Screened(head, GetKernels(), pool, x, ScreenRequest{}, &r);
  EXPECT_FALSE(r.fallback);
  EXPECT_LT(r.candidates, 10);
  EXPECT_EQ(ArgMax(screened), 77);
  EXPECT_EQ(screened[77], Exact(head, GetKernels(), pool, x)[77]);
}

// Step 3 finds L and the survivors through each 64-row block's largest bounds. A
// penalty on a clear leader must move its block's maxima: kept at the unpenalized
// value, L would stay above every other row and the screen would keep only the
// penalized row. The leaders sit in the last, partial block and in a full one.
TEST(ScreenedHeadTest, PenaltyOnAClearLeaderMovesItsBlockMaxima) {
  ThreadPool pool(2);
  for (int leader : {64 * 4 + 2, 64 + 63}) {
    SCOPED_TRACE(::testing::Message() << "leader " << leader);
    std::mt19937 rng(47);
    std::vector<std::vector<float>> rows;
    for (int r = 0; r < 64 * 4 + 5; ++r) rows.push_back(RandomRow(rng, 256, 0.05f));
    std::vector<float> x = RandomRow(rng, 256, 1.0f);
    for (int64_t i = 0; i < 256; ++i) rows[leader][i] = Fp16ToFp32(Fp32ToFp16(0.2f * x[i]));
    HandHead h(rows);
    const ScreenedHead head = Build(h, pool);
    for (const Kernels* k : AllPaths()) {
      SCOPED_TRACE(k->name);
      EXPECT_EQ(ArgMax(Screened(head, *k, pool, x, ScreenRequest{})), leader);
      SamplingParams greedy_penalized;
      greedy_penalized.repetition_penalty = 1000.0f;  // the leader falls to the middle
      ExpectSameChoices(head, *k, pool, x, greedy_penalized, {leader});
      SamplingParams topk_penalized = greedy_penalized;
      topk_penalized.temperature = 0.7f;
      topk_penalized.top_k = 3;
      topk_penalized.seed = 5;
      ExpectSameChoices(head, *k, pool, x, topk_penalized, {leader, leader});
    }
  }
}

TEST(ScreenedHeadTest, NonFiniteActivationFallsBackToTheFullExactHead) {
  ThreadPool pool(2);
  std::mt19937 rng(51);
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 50; ++r) rows.push_back(RandomRow(rng, 128, 0.05f));
  HandHead h(rows);
  const ScreenedHead head = Build(h, pool);
  std::vector<float> x = RandomRow(rng, 128, 1.0f);
  x[3] = 1e6f;  // beyond F16: the exact path's input is inf
  ScreenResult r;
  const std::vector<float> screened = Screened(head, GetKernels(), pool, x, ScreenRequest{}, &r);
  EXPECT_TRUE(r.fallback);
  const std::vector<float> exact = Exact(head, GetKernels(), pool, x);
  for (size_t i = 0; i < exact.size(); ++i) EXPECT_EQ(FloatBits(screened[i]), FloatBits(exact[i])) << i;
}

TEST(ScreenedHeadTest, NonF16HeadIsInvalidArgumentNamingIt) {
  ThreadPool pool(1);
  std::vector<float> data(128 * 4, 0.5f);
  WeightMatrix w;
  w.name = "output.weight";
  w.type = GgmlType::kF32;
  w.data = reinterpret_cast<const uint8_t*>(data.data());
  w.cols = 128;
  w.rows = 4;
  w.row_bytes = 128 * sizeof(float);
  auto h = ScreenedHead::Build(w, pool);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(h.status().message().find("output.weight"), std::string::npos);
}

// A row that int8 holds exactly (w = q / 128, so its weight term is 0) whose signs
// follow what the refinement's two int8 activations miss: the difference between the
// exact value and the refined estimate is then ~0.8 of the refinement's activation
// term, well above the float rounding term on short rows. The refined interval must
// still hold the exact value, and the test shows the row presses on it.
TEST(ScreenedHeadTest, RefinedBoundHoldsOnARowAlignedWithWhatTheRefinementMisses) {
  ThreadPool pool(2);
  for (int64_t cols : {64, 128}) {
    for (uint32_t seed : {71u, 72u, 73u}) {
      SCOPED_TRACE(::testing::Message() << "cols " << cols << " seed " << seed);
      std::mt19937 rng(seed);
      const std::vector<float> x = RandomRow(rng, cols, 1.0f);
      std::vector<std::vector<float>> rows;
      for (int r = 0; r < 20; ++r) rows.push_back(RandomRow(rng, cols, 0.05f));
      for (const Kernels* k : AllPaths()) {
        SCOPED_TRACE(k->name);
        // The activation's quantizations do not depend on the head: read them off a
        // first screen, then add the aligned row.
        HandHead plain(rows);
        const ScreenedHead plain_head = Build(plain, pool);
        ScreenScratch s0;
        ASSERT_TRUE(plain_head.Bounds(*k, pool, x.data(), s0));
        ASSERT_TRUE(s0.refine);
        std::vector<float> aligned(cols);
        for (int64_t i = 0; i < cols; ++i) {
          const double missed = s0.xf[i] - s0.xq[i] * s0.inv_t - s0.xq2[i] * s0.inv_t2;
          aligned[i] = missed >= 0 ? 127.0f / 128 : -127.0f / 128;
        }
        std::vector<std::vector<float>> with = rows;
        with.push_back(aligned);
        HandHead h(with);
        const ScreenedHead head = Build(h, pool);
        ScreenScratch s;
        ASSERT_TRUE(head.Bounds(*k, pool, x.data(), s));
        const std::vector<float> exact = Exact(head, *k, pool, x);
        const int64_t r = head.rows() - 1;
        double lo = 0, hi = 0;
        ASSERT_TRUE(head.RefinedBound(*k, s, r, &lo, &hi));
        EXPECT_LE(lo, exact[r]);
        EXPECT_GE(hi, exact[r]);
        const double mid = 0.5 * (lo + hi), half = 0.5 * (hi - lo);
        EXPECT_GT(std::fabs(exact[r] - mid), 0.4 * half) << "the row does not press on the refined bound";
      }
    }
  }
}

TEST(ScreenedHeadTest, BatchRowsEqualTheirSoloLogitsWithSharedCandidatesAndAFallback) {
  ThreadPool pool(2);
  std::mt19937 rng(61);
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 3000; ++r) rows.push_back(RandomRow(rng, 256, 0.05f));
  HandHead h(rows);
  const ScreenedHead head = Build(h, pool);
  // Rows 0 and 2 are the same activation (every candidate shared), row 1 is close
  // to it (most shared), row 3 another, row 4 non-finite (falls back), row 5 the
  // same as row 3 with top-k and a penalty.
  std::vector<std::vector<float>> x(6);
  x[0] = RandomRow(rng, 256, 1.0f);
  x[1] = x[0];
  for (int i = 0; i < 256; i += 7) x[1][i] = Fp16ToFp32(Fp32ToFp16(x[1][i] * 0.9f));
  x[2] = x[0];
  x[3] = RandomRow(rng, 256, 1.0f);
  x[4] = RandomRow(rng, 256, 1.0f);
  x[4][9] = std::numeric_limits<float>::quiet_NaN();
  x[5] = x[3];
  const std::vector<int32_t> penalized = {1, 5, 100, 2999};
  std::vector<ScreenRequest> req(6);
  req[5].top_k = 40;
  req[5].repetition_penalty = 1.3f;
  req[5].penalized = penalized;
  for (const Kernels* k : AllPaths()) {
    SCOPED_TRACE(k->name);
    const int m = 6;
    std::vector<ScreenScratch> scratch(m);
    std::vector<std::vector<float>> out(m, std::vector<float>(head.rows()));
    std::vector<const float*> xp(m);
    std::vector<const ScreenRequest*> rp(m);
    std::vector<ScreenScratch*> sp(m);
    std::vector<float*> op(m);
    for (int a = 0; a < m; ++a) {
      xp[a] = x[a].data();
      rp[a] = &req[a];
      sp[a] = &scratch[a];
      op[a] = out[a].data();
    }
    std::vector<ScreenResult> results(m);
    head.LogitsBatch(*k, pool, m, xp.data(), rp.data(), sp.data(), op.data(), results.data());
    for (int a = 0; a < m; ++a) {
      SCOPED_TRACE(::testing::Message() << "row " << a);
      ScreenResult solo_result;
      const std::vector<float> solo = Screened(head, *k, pool, x[a], req[a], &solo_result);
      EXPECT_EQ(results[a].candidates, solo_result.candidates);
      EXPECT_EQ(results[a].fallback, solo_result.fallback);
      for (int64_t r = 0; r < head.rows(); ++r) ASSERT_EQ(FloatBits(out[a][r]), FloatBits(solo[r])) << "head row " << r;
    }
    EXPECT_TRUE(results[4].fallback);
    EXPECT_FALSE(results[0].fallback);
    EXPECT_GT(results[0].candidates, 1);  // several rows shared with rows 1 and 2
  }
}

}  // namespace
}  // namespace bitparity
