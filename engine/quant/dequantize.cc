#include "engine/quant/dequantize.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/quant/blocks.h"
#include "base/fp16.h"
#include "engine/quant/q8.h"
#include "engine/quant/ternary.h"

namespace bitparity {

absl::Status DequantizeRow(GgmlType type, const void* row, int64_t n, float* out) {
  const GgmlTypeTraits& t = GgmlTypeTraitsOf(type);
  if (type == GgmlType::kI2_S) {
    return absl::InvalidArgumentError("I2_S rows need the tensor scale: use I2sDequantize");
  }
  if (n <= 0 || n % t.block_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(t.name, " row of ", n, " elements is not a positive multiple of ", t.block_size));
  }
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(out, row, static_cast<size_t>(n) * sizeof(float));
      return absl::OkStatus();
    case GgmlType::kF16: {
      const auto* h = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) out[i] = Fp16ToFp32(h[i]);
      return absl::OkStatus();
    }
    case GgmlType::kBF16: {
      const auto* b = static_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) out[i] = Bf16ToFp32(b[i]);
      return absl::OkStatus();
    }
    case GgmlType::kQ8_0:
      DequantizeRowQ8_0(static_cast<const BlockQ8_0*>(row), out, n);
      return absl::OkStatus();
    case GgmlType::kQ8_K:
      DequantizeRowQ8K(static_cast<const BlockQ8K*>(row), out, n);
      return absl::OkStatus();
    case GgmlType::kTQ1_0:
      DequantizeRowTq1_0(static_cast<const BlockTq1_0*>(row), out, n);
      return absl::OkStatus();
    case GgmlType::kTQ2_0:
      DequantizeRowTq2_0(static_cast<const BlockTq2_0*>(row), out, n);
      return absl::OkStatus();
    default:
      return absl::UnimplementedError(absl::StrCat("cannot dequantize type ", t.name));
  }
}

float DotF16Ref(const uint16_t* x, const uint16_t* y, int64_t n) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float p = Fp16ToFp32(x[i]) * Fp16ToFp32(y[i]);
    sum += p;
  }
  return sum;
}

}  // namespace bitparity
