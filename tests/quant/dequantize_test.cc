// DequantizeRow dispatch and the F16 reference dot.
#include <cstdint>
#include <vector>

#include "engine/quant/dequantize.h"
#include "base/fp16.h"
#include "engine/quant/ternary.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(DequantizeRowTest, PlainTypesConvertEachElement) {
  const float f[3] = {1.5f, -2.0f, 0.1f};
  std::vector<float> out(3);
  ASSERT_TRUE(DequantizeRow(GgmlType::kF32, f, 3, out.data()).ok());
  EXPECT_EQ(out, std::vector<float>(f, f + 3));
  const uint16_t h[3] = {Fp32ToFp16(1.5f), Fp32ToFp16(-2.0f), Fp32ToFp16(0.1f)};
  ASSERT_TRUE(DequantizeRow(GgmlType::kF16, h, 3, out.data()).ok());
  EXPECT_EQ(out[2], Fp16ToFp32(Fp32ToFp16(0.1f)));
  const uint16_t b[3] = {Fp32ToBf16(1.5f), Fp32ToBf16(-2.0f), Fp32ToBf16(0.1f)};
  ASSERT_TRUE(DequantizeRow(GgmlType::kBF16, b, 3, out.data()).ok());
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[2], Bf16ToFp32(Fp32ToBf16(0.1f)));
}

TEST(DequantizeRowTest, BlockTypesMatchTheirOwnDequantizers) {
  std::vector<float> x(256);
  for (int i = 0; i < 256; ++i) x[i] = static_cast<float>((i * 7) % 3 - 1) * 0.5f;
  BlockTq2_0 q;
  QuantizeRowTq2_0(x.data(), &q, 256);
  std::vector<float> a(256), b(256);
  ASSERT_TRUE(DequantizeRow(GgmlType::kTQ2_0, &q, 256, a.data()).ok());
  DequantizeRowTq2_0(&q, b.data(), 256);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, x);
}

TEST(DequantizeRowTest, RejectsBadLengthsAndUnsupportedTypes) {
  float out[300];
  uint8_t buf[600] = {};
  EXPECT_EQ(DequantizeRow(GgmlType::kTQ1_0, buf, 100, out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(GgmlType::kQ8_0, buf, 0, out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(GgmlType::kI2_S, buf, 128, out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DequantizeRow(GgmlType::kQ4_K, buf, 256, out).code(), absl::StatusCode::kUnimplemented);
}

TEST(DotF16RefTest, AccumulatesInFloatInIndexOrder) {
  const uint16_t x[3] = {Fp32ToFp16(1.0f), Fp32ToFp16(65504.0f), Fp32ToFp16(-65504.0f)};
  const uint16_t y[3] = {Fp32ToFp16(1e-3f), Fp32ToFp16(1024.0f), Fp32ToFp16(1024.0f)};
  // 1e-3-ish survives only if the big terms cancel after it has been absorbed: in index
  // order it is absorbed and lost.
  const float got = DotF16Ref(x, y, 3);
  float want = 0.0f;
  for (int i = 0; i < 3; ++i) {
    const float p = Fp16ToFp32(x[i]) * Fp16ToFp32(y[i]);
    want += p;
  }
  EXPECT_EQ(got, want);
  EXPECT_EQ(got, 0.0f);
}

}  // namespace
}  // namespace bitparity
