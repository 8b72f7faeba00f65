// File: engine/quant/dequantize.h
//
// One entry point that turns a row of any type this engine computes with into
// float32, plus the plain F16 . F16 reference dot product.
//
// Units: `n` is the number of elements in the row; `row` points at its first byte.
// Thread safety: pure functions.
//
//   std::vector<float> out(ne0);
//   RETURN_IF_ERROR(DequantizeRow(GgmlType::kF16, data + r * RowByteSize(GgmlType::kF16, ne0), ne0, out.data()));
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "engine/quant/tensor_type.h"

namespace bitparity {

// Dequantizes one row of F32, F16, BF16, Q8_0, Q8_K, TQ1_0 or TQ2_0.
//   InvalidArgument  n <= 0 or not a multiple of the type's block size; I2_S (whose
//                    scale lives at the end of the tensor: use I2sDequantize)
//   Unimplemented    any other type
absl::Status DequantizeRow(GgmlType type, const void* row, int64_t n, float* out);

// sum_i x[i] * y[i] over F16 values, products and sum in float, in index order.
float DotF16Ref(const uint16_t* x, const uint16_t* y, int64_t n);

}  // namespace bitparity
