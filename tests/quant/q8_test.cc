// Q8_0 and Q8_K reference behaviour that the fixtures do not pin.
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "engine/quant/q8.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(Q8_0Test, QuantizesWithHalfAwayFromZeroAndFp16Scale) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;  // d = 1, id = 1
  x[1] = 2.5f;    // roundf: 3 (away from zero), unlike nearest-even
  x[2] = -2.5f;
  x[3] = 0.49f;
  BlockQ8_0 b;
  QuantizeRowQ8_0(x.data(), &b, 32);
  EXPECT_EQ(b.d, Fp32ToFp16(1.0f));
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 3);
  EXPECT_EQ(b.qs[2], -3);
  EXPECT_EQ(b.qs[3], 0);
  std::vector<float> back(32);
  DequantizeRowQ8_0(&b, back.data(), 32);
  EXPECT_EQ(back[0], 127.0f);
  EXPECT_EQ(back[1], 3.0f);
}

TEST(Q8_0Test, DotMatchesBlockwiseIntegerSums) {
  constexpr uint32_t kSeed = 11;
  SCOPED_TRACE(::testing::Message() << "seed " << kSeed);
  std::mt19937 rng(kSeed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t k = 96;
  std::vector<float> a(k), c(k);
  for (auto& v : a) v = nd(rng);
  for (auto& v : c) v = nd(rng);
  std::vector<BlockQ8_0> qa(3), qc(3);
  QuantizeRowQ8_0(a.data(), qa.data(), k);
  QuantizeRowQ8_0(c.data(), qc.data(), k);
  float want = 0.0f;
  for (int b = 0; b < 3; ++b) {
    int s = 0;
    for (int j = 0; j < 32; ++j) s += qa[b].qs[j] * qc[b].qs[j];
    const float d = Fp16ToFp32(qa[b].d) * Fp16ToFp32(qc[b].d);
    const float t = static_cast<float>(s) * d;
    want += t;
  }
  EXPECT_EQ(DotQ8_0Q8_0(qa.data(), qc.data(), k), want);
  // And it approximates the float dot product.
  double exact = 0;
  for (int64_t i = 0; i < k; ++i) exact += a[i] * c[i];
  EXPECT_NEAR(want, exact, 0.05 * std::sqrt(static_cast<double>(k)));
}

TEST(Q8KTest, UsesTheSignedMaxFirstOnTiesAndFillsBsums) {
  std::vector<float> x(256, 0.0f);
  x[10] = -2.0f;  // first of the two largest magnitudes: iscale = -127 / -2 = 63.5
  x[20] = 2.0f;
  x[30] = 1.0f / 63.5f * 2.5f;  // iscale * x = 2.5 -> 2 (half to even)
  BlockQ8K y;
  QuantizeRowQ8K(x.data(), &y, 256);
  EXPECT_EQ(y.d, 1 / 63.5f);
  EXPECT_EQ(y.qs[10], -127);
  EXPECT_EQ(y.qs[20], 127);
  EXPECT_EQ(y.qs[30], 2);
  EXPECT_EQ(y.bsums[0], -127);
  EXPECT_EQ(y.bsums[1], 127 + 2);  // elements 20 and 30 share the group [16, 32)
  EXPECT_EQ(y.bsums[2], 0);
}

TEST(Q8KTest, PositiveMaxGivesNegativeScaleAndClampsAt127) {
  std::vector<float> x(256, 0.0f);
  x[0] = 3.0f;   // iscale = -127/3: q = -127
  x[1] = -3.0f;  // q = +127 (the MIN(127, v) clamp side)
  BlockQ8K y;
  QuantizeRowQ8K(x.data(), &y, 256);
  EXPECT_LT(y.d, 0.0f);
  EXPECT_EQ(y.qs[0], -127);
  EXPECT_EQ(y.qs[1], 127);
  std::vector<float> back(256);
  DequantizeRowQ8K(&y, back.data(), 256);
  EXPECT_NEAR(back[0], 3.0f, 1e-6f);
}

TEST(Q8KTest, AllZeroBlockIsAllZero) {
  std::vector<float> x(512, 0.0f);
  x[300] = 1.0f;
  std::vector<BlockQ8K> y(2);
  std::memset(y.data(), 0x5A, sizeof(BlockQ8K) * 2);
  QuantizeRowQ8K(x.data(), y.data(), 512);
  EXPECT_EQ(y[0].d, 0.0f);
  for (int j = 0; j < 256; ++j) ASSERT_EQ(y[0].qs[j], 0);
  for (int j = 0; j < 16; ++j) ASSERT_EQ(y[0].bsums[j], 0);
  EXPECT_EQ(y[1].qs[44], -127);
}

}  // namespace
}  // namespace bitparity
