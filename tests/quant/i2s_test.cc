// I2_S packing / decoding, the int8 activation quantizer and the integer dot.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <algorithm>
#include <random>
#include <vector>

#include "engine/quant/i2s.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

constexpr uint32_t kSeed = 20240601;

std::vector<int8_t> RandomTrits(std::mt19937& rng, int64_t n) {
  std::uniform_int_distribution<int> d(-1, 1);
  std::vector<int8_t> t(n);
  for (auto& v : t) v = static_cast<int8_t>(d(rng));
  return t;
}

TEST(I2sTest, LayoutMatchesTheFormatSpec) {
  // Element j of a block: byte j % 32, bit pair (6 - 2 * (j / 32)).
  std::vector<int8_t> t(128, 0);
  t[0] = 1;    // code 2 at byte 0, bits 6..7
  t[33] = -1;  // code 0 at byte 1, bits 4..5
  t[127] = 1;  // code 2 at byte 31, bits 0..1
  std::vector<uint8_t> buf(I2sTensorBytes(128));
  ASSERT_TRUE(I2sPack(t.data(), 128, 0.5f, buf.data()).ok());
  EXPECT_EQ(buf[0], 2 << 6 | 1 << 4 | 1 << 2 | 1);
  EXPECT_EQ(buf[1], 1 << 6 | 0 << 4 | 1 << 2 | 1);
  EXPECT_EQ(buf[31], 1 << 6 | 1 << 4 | 1 << 2 | 2);
  EXPECT_EQ(I2sReadScale(buf.data(), 128), 0.5f);
  float raw;
  std::memcpy(&raw, buf.data() + 32, 4);
  EXPECT_EQ(raw, 0.5f);
  EXPECT_EQ(buf.size(), 64u);
}

TEST(I2sTest, PackDecodeRoundTripsOddRowCounts) {
  std::mt19937 rng(kSeed);
  SCOPED_TRACE(::testing::Message() << "seed " << kSeed);
  for (int64_t rows : {1, 3, 7, 33}) {
    for (int64_t ne0 : {128, 384, 2560}) {
      const int64_t n = rows * ne0;
      const std::vector<int8_t> t = RandomTrits(rng, n);
      std::vector<uint8_t> buf(I2sTensorBytes(n));
      ASSERT_TRUE(I2sPack(t.data(), n, 1.25f, buf.data()).ok());
      EXPECT_TRUE(CheckI2sCodes(buf.data(), n).ok());
      std::vector<int8_t> back(n);
      I2sDecodeTrits(buf.data(), n, back.data());
      EXPECT_EQ(back, t) << rows << "x" << ne0;
      // Row r can be decoded on its own from byte r * ne0 / 4.
      const int64_t r = rows - 1;
      std::vector<int8_t> row(ne0);
      I2sDecodeTrits(buf.data() + r * ne0 / 4, ne0, row.data());
      EXPECT_TRUE(std::equal(row.begin(), row.end(), t.begin() + r * ne0));
      std::vector<float> f(ne0);
      I2sDequantize(buf.data() + r * ne0 / 4, ne0, I2sReadScale(buf.data(), n), f.data());
      for (int64_t i = 0; i < ne0; ++i) ASSERT_EQ(f[i], 1.25f * t[r * ne0 + i]);
    }
  }
}

TEST(I2sTest, PackRejectsBadInput) {
  std::vector<int8_t> t(128, 0);
  std::vector<uint8_t> buf(I2sTensorBytes(256));
  EXPECT_EQ(I2sPack(t.data(), 100, 1.0f, buf.data()).code(), absl::StatusCode::kInvalidArgument);
  t[5] = 2;
  const absl::Status s = I2sPack(t.data(), 128, 1.0f, buf.data());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("index 5"), std::string::npos) << s;
}

TEST(I2sTest, CodeThreeIsReportedAndDecodesAsZero) {
  std::vector<uint8_t> buf(I2sTensorBytes(256), 0x55);  // all code 1 (zero)
  EXPECT_TRUE(CheckI2sCodes(buf.data(), 256).ok());
  buf[32 + 3] = 0x55 | 0x0C;  // block 1, byte 3, group 2 -> element 128 + 64 + 3
  const absl::Status s = CheckI2sCodes(buf.data(), 256);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("element 195"), std::string::npos) << s;
  EXPECT_EQ(I2sCodeAt(buf.data(), 195), 3);
  EXPECT_EQ(I2sCodeToTrit(3), 0);
}

TEST(I2sTest, DotIsSumOfCodeTimesQ) {
  std::mt19937 rng(kSeed + 1);
  const int64_t n = 512;
  const std::vector<int8_t> t = RandomTrits(rng, n);
  std::vector<int8_t> q(n);
  std::uniform_int_distribution<int> dq(-128, 127);
  for (auto& v : q) v = static_cast<int8_t>(dq(rng));
  std::vector<uint8_t> buf(I2sTensorBytes(n));
  ASSERT_TRUE(I2sPack(t.data(), n, 1.0f, buf.data()).ok());
  int64_t want = 0, want_ternary = 0, qsum = 0;
  for (int64_t i = 0; i < n; ++i) {
    want += (t[i] + 1) * q[i];
    want_ternary += t[i] * q[i];
    qsum += q[i];
  }
  const int32_t got = I2sDotRow(buf.data(), q.data(), n);
  EXPECT_EQ(got, want);
  EXPECT_EQ(got - qsum, want_ternary);
}

TEST(I2sTest, OutputFollowsGgmlOperationOrder) {
  const int32_t sum = 1234567, act_sum = -4321;
  const float s = 12.345f, w = 0.678f;
  const float step1 = static_cast<float>(sum) - static_cast<float>(act_sum);
  const float step2 = step1 / s;
  EXPECT_EQ(I2sOutput(sum, act_sum, s, w), step2 * w);
}

TEST(QuantizeRowI8STest, KnownValuesAndTies) {
  // max|x| = 127 -> s = 1 exactly, so q = round_half_even(x).
  const float x[8] = {127.0f, 2.5f, 3.5f, -2.5f, -0.5f, 0.5f, 1.5f, -127.0f};
  int8_t q[8];
  float s;
  int32_t sum;
  QuantizeRowI8S(x, 8, q, &s, &sum);
  EXPECT_EQ(s, 1.0f);
  const int8_t want[8] = {127, 2, 4, -2, 0, 0, 2, -127};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q[i], want[i]) << i;
  EXPECT_EQ(sum, 127 + 2 + 4 - 2 + 0 + 0 + 2 - 127);
}

TEST(QuantizeRowI8STest, ScaleIsComputedInDoubleThenRounded) {
  const float x[4] = {0.3f, -0.1f, 0.2f, 0.05f};
  int8_t q[4];
  float s;
  int32_t sum;
  QuantizeRowI8S(x, 4, q, &s, &sum);
  EXPECT_EQ(s, static_cast<float>(127.0 / static_cast<double>(0.3f)));
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], static_cast<int8_t>(std::nearbyint(-0.1f * s)));
}

TEST(QuantizeRowI8STest, AllZeroRowUsesTheFloor) {
  const float x[128] = {};
  int8_t q[128];
  float s;
  int32_t sum;
  QuantizeRowI8S(x, 128, q, &s, &sum);
  EXPECT_EQ(s, static_cast<float>(127 / 0.00001));
  EXPECT_EQ(sum, 0);
  for (int8_t v : q) EXPECT_EQ(v, 0);
  // Tiny values below the floor are scaled by the floor's scale, not blown up to 127.
  float y[2] = {1e-6f, -2e-6f};
  QuantizeRowI8S(y, 2, q, &s, &sum);
  EXPECT_EQ(q[0], NearestInt(1e-6f * s));
  EXPECT_EQ(q[1], NearestInt(-2e-6f * s));
  EXPECT_LT(std::abs(q[1]), 127);
}

TEST(QuantizeRowI8STest, StaysInInt8RangeAndHitsPlusMinus127AtTheMax) {
  // |x * s| <= 127 * (1 + 2^-23), so the clamp never bites in practice; check the range
  // and the extremes on wide-range data, and a 63.5 tie.
  const float x[3] = {1.0f, -1.0f, 0.5f};
  int8_t q[3];
  float s;
  int32_t sum;
  QuantizeRowI8S(x, 3, q, &s, &sum);
  EXPECT_EQ(q[0], 127);
  EXPECT_EQ(q[1], -127);
  EXPECT_EQ(q[2], 64);  // 63.5 ties to even
  EXPECT_EQ(sum, 64);
  std::mt19937 rng(kSeed + 2);
  std::uniform_real_distribution<float> mant(-1.0f, 1.0f);
  std::uniform_int_distribution<int> ex(-30, 30);
  std::vector<float> y(1000);
  std::vector<int8_t> qy(y.size());
  for (int trial = 0; trial < 50; ++trial) {
    for (float& v : y) v = std::ldexp(mant(rng), ex(rng));
    QuantizeRowI8S(y.data(), static_cast<int64_t>(y.size()), qy.data(), &s, &sum);
    int32_t total = 0, hi = 0;
    for (int8_t v : qy) {
      total += v;
      hi = std::max<int32_t>(hi, std::abs(v));
    }
    EXPECT_EQ(total, sum);
    EXPECT_EQ(hi, 127);
  }
}

TEST(NearestIntTest, RoundsHalfToEven) {
  EXPECT_EQ(NearestInt(2.5f), 2);
  EXPECT_EQ(NearestInt(3.5f), 4);
  EXPECT_EQ(NearestInt(-2.5f), -2);
  EXPECT_EQ(NearestInt(-3.5f), -4);
  EXPECT_EQ(NearestInt(127.49f), 127);
  EXPECT_EQ(NearestInt(-128.5f), -128);
}

}  // namespace
}  // namespace bitparity
