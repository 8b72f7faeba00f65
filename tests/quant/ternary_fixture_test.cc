// TQ1_0 / TQ2_0 / Q8_K against the ggml golden vectors in fixtures/quant
// (see that folder's README.md and SUMMARY.txt).
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "engine/quant/blocks.h"
#include "base/fp16.h"
#include "engine/quant/q8.h"
#include "engine/quant/ternary.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"

namespace bitparity {
namespace {

constexpr int64_t kN = 4096;  // every fixture vector has 4096 values (16 blocks)

std::vector<uint8_t> ReadBytes(const std::string& rel) {
  std::ifstream f(testing::FixturePath("quant/" + rel), std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

std::vector<float> ReadFloats(const std::string& rel) {
  const std::vector<uint8_t> b = ReadBytes(rel);
  std::vector<float> f(b.size() / 4);
  std::memcpy(f.data(), b.data(), f.size() * 4);
  return f;
}

template <typename Block>
std::vector<uint8_t> AsBytes(const std::vector<Block>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(Block));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

// Dot products from SUMMARY.txt (vec_dot_q8K with q8_K_cos1.q), printed with 6 decimals.
struct DotCase {
  const char* input;
  double tq_dot_q8k;
};
constexpr DotCase kDots[] = {{"cos0", 5044.709961}, {"ternary", -51.468941}};
// SUMMARY prints 6 decimals and the float sum itself has ~1e-7 relative rounding.
constexpr double kSummaryDotTolerance = 1e-5;

class TernaryFixtureTest : public ::testing::TestWithParam<DotCase> {
 protected:
  void SetUp() override { REQUIRE_FIXTURES(); }
};

TEST_P(TernaryFixtureTest, Tq1_0QuantizesByteExactDequantizesAndDots) {
  const std::string in = GetParam().input;
  const std::vector<float> x = ReadFloats("input_" + in + "_f32.bin");
  ASSERT_EQ(static_cast<int64_t>(x.size()), kN);
  std::vector<BlockTq1_0> q(kN / kQK_K);
  QuantizeRowTq1_0(x.data(), q.data(), kN);
  EXPECT_EQ(AsBytes(q), ReadBytes("tq1_0_" + in + ".q"));

  std::vector<float> deq(kN);
  DequantizeRowTq1_0(q.data(), deq.data(), kN);
  const std::vector<float> want = ReadFloats("tq1_0_" + in + "_dequant_f32.bin");
  ASSERT_EQ(deq.size(), want.size());
  EXPECT_EQ(0, std::memcmp(deq.data(), want.data(), kN * 4));

  const std::vector<uint8_t> y8 = ReadBytes("q8_K_cos1.q");
  ASSERT_EQ(y8.size(), kN / kQK_K * sizeof(BlockQ8K));
  std::vector<BlockQ8K> y(kN / kQK_K);
  std::memcpy(y.data(), y8.data(), y8.size());
  const double dot = DotTq1_0Q8K(q.data(), y.data(), kN);
  EXPECT_NEAR(dot, GetParam().tq_dot_q8k, kSummaryDotTolerance * std::fabs(GetParam().tq_dot_q8k));
}

TEST_P(TernaryFixtureTest, Tq2_0QuantizesByteExactDequantizesAndDots) {
  const std::string in = GetParam().input;
  const std::vector<float> x = ReadFloats("input_" + in + "_f32.bin");
  ASSERT_EQ(static_cast<int64_t>(x.size()), kN);
  std::vector<BlockTq2_0> q(kN / kQK_K);
  QuantizeRowTq2_0(x.data(), q.data(), kN);
  EXPECT_EQ(AsBytes(q), ReadBytes("tq2_0_" + in + ".q"));

  std::vector<float> deq(kN);
  DequantizeRowTq2_0(q.data(), deq.data(), kN);
  const std::vector<float> want = ReadFloats("tq2_0_" + in + "_dequant_f32.bin");
  ASSERT_EQ(deq.size(), want.size());
  EXPECT_EQ(0, std::memcmp(deq.data(), want.data(), kN * 4));

  std::vector<BlockQ8K> y(kN / kQK_K);
  const std::vector<uint8_t> y8 = ReadBytes("q8_K_cos1.q");
  ASSERT_EQ(y8.size(), y.size() * sizeof(BlockQ8K));
  std::memcpy(y.data(), y8.data(), y8.size());
  const double dot = DotTq2_0Q8K(q.data(), y.data(), kN);
  EXPECT_NEAR(dot, GetParam().tq_dot_q8k, kSummaryDotTolerance * std::fabs(GetParam().tq_dot_q8k));
}

INSTANTIATE_TEST_SUITE_P(Inputs, TernaryFixtureTest, ::testing::ValuesIn(kDots),
                         [](const auto& info) { return std::string(info.param.input); });

TEST(TernaryFixtureTest, TernaryInputRoundTripsExactly) {
  REQUIRE_FIXTURES();
  const std::vector<float> x = ReadFloats("input_ternary_f32.bin");
  ASSERT_EQ(static_cast<int64_t>(x.size()), kN);
  std::vector<BlockTq1_0> q1(kN / kQK_K);
  std::vector<BlockTq2_0> q2(kN / kQK_K);
  QuantizeRowTq1_0(x.data(), q1.data(), kN);
  QuantizeRowTq2_0(x.data(), q2.data(), kN);
  std::vector<float> d1(kN), d2(kN);
  DequantizeRowTq1_0(q1.data(), d1.data(), kN);
  DequantizeRowTq2_0(q2.data(), d2.data(), kN);
  EXPECT_EQ(d1, x);
  EXPECT_EQ(d2, x);
}

TEST(Q8KFixtureTest, QuantizeRowQ8KIsByteExact) {
  REQUIRE_FIXTURES();
  const std::vector<float> x = ReadFloats("input_cos1_f32.bin");
  ASSERT_EQ(static_cast<int64_t>(x.size()), kN);
  std::vector<BlockQ8K> y(kN / kQK_K);
  QuantizeRowQ8K(x.data(), y.data(), kN);
  EXPECT_EQ(AsBytes(y), ReadBytes("q8_K_cos1.q"));
}

TEST(TernaryTest, TritDecodingMatchesDequantizationOnRandomTrits) {
  constexpr uint32_t kSeed = 7;
  SCOPED_TRACE(::testing::Message() << "seed " << kSeed);
  std::mt19937 rng(kSeed);
  std::uniform_int_distribution<int> d(-1, 1);
  std::vector<float> x(4 * kQK_K);
  for (float& v : x) v = static_cast<float>(d(rng)) * 0.75f;
  std::vector<BlockTq1_0> q1(4);
  std::vector<BlockTq2_0> q2(4);
  QuantizeRowTq1_0(x.data(), q1.data(), 4 * kQK_K);
  QuantizeRowTq2_0(x.data(), q2.data(), 4 * kQK_K);
  uint8_t t1[kQK_K], t2[kQK_K];
  for (int b = 0; b < 4; ++b) {
    DecodeTq1_0Block(q1[b], t1);
    DecodeTq2_0Block(q2[b], t2);
    for (int j = 0; j < kQK_K; ++j) {
      ASSERT_EQ(t1[j] - 1, static_cast<int>(x[b * kQK_K + j] / 0.75f)) << b << " " << j;
      ASSERT_EQ(t2[j], t1[j]);
    }
  }
}

}  // namespace
}  // namespace bitparity
