// File: engine/quant/q8.h
//
// ggml's 8-bit block types, scalar reference code (layouts in blocks.h):
//   Q8_0: per 32 values, fp16 d = absmax / 127, q = roundf(x / d) (half away from 0).
//   Q8_K: per 256 values, the activation format of the TQ1_0/TQ2_0 matmuls
//         (quantize_row_q8_K_ref): iscale = -127 / x_at_absmax (the signed value with
//         the largest |x|, first one on ties), q = min(127, round_half_even(iscale*x)),
//         d = 1 / iscale, bsums = sums of each 16 quants. An all-zero block gives d = 0,
//         q = 0 and (unlike ggml, which leaves them unset) bsums = 0.
// Q8_0 . Q8_0 follows ggml's generic vec_dot_q8_0_q8_0.
//
// Units: k is an element count, a multiple of the block size.
// Thread safety: pure functions.
//
//   std::vector<BlockQ8K> act(k / kQK_K);
//   QuantizeRowQ8K(x, act.data(), k);
#pragma once

#include <cstdint>

#include "engine/quant/blocks.h"

namespace bitparity {

void QuantizeRowQ8_0(const float* x, BlockQ8_0* y, int64_t k);
void DequantizeRowQ8_0(const BlockQ8_0* x, float* y, int64_t k);
float DotQ8_0Q8_0(const BlockQ8_0* x, const BlockQ8_0* y, int64_t k);

void QuantizeRowQ8K(const float* x, BlockQ8K* y, int64_t k);
void DequantizeRowQ8K(const BlockQ8K* x, float* y, int64_t k);

}  // namespace bitparity
