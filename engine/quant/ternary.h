// File: engine/quant/ternary.h
//
// llama.cpp's ternary block types TQ1_0 and TQ2_0 (layouts in blocks.h): the
// reference quantizers (byte-exact with ggml's quantize_row_tq{1,2}_0_ref),
// dequantizers, and the dot products with Q8_K activations with the integer and
// float semantics of ggml's generic ggml_vec_dot_tq{1,2}_0_q8_K: per block an exact
// int sum of (trit - 1) * q, then sumf += (float)sum * (d_x * d_y) in block order.
// (engine/kernels has the x86 accumulation order bitnet.cpp's AVX2 build uses.)
//
// Units: k is the element count, a multiple of 256 (kQK_K).
// Thread safety: pure functions.
//
//   std::vector<BlockTq2_0> w(k / kQK_K);
//   QuantizeRowTq2_0(x, w.data(), k);
//   float y = DotTq2_0Q8K(w.data(), act_q8k, k);
#pragma once

#include <cstdint>

#include "engine/quant/blocks.h"

namespace bitparity {

void QuantizeRowTq1_0(const float* x, BlockTq1_0* y, int64_t k);
void QuantizeRowTq2_0(const float* x, BlockTq2_0* y, int64_t k);

void DequantizeRowTq1_0(const BlockTq1_0* x, float* y, int64_t k);
void DequantizeRowTq2_0(const BlockTq2_0* x, float* y, int64_t k);

// The trit (0, 1, 2 meaning -1, 0, +1) at position n (0..4) of a TQ1_0 byte:
// the byte is a fixed-point fraction of 1, so multiplying by 3^n (mod 256) and then
// by 3 moves trit n into the top bits.
inline int Tq1Trit(uint8_t byte, int n) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const uint8_t q = static_cast<uint8_t>(byte * kPow3[n]);
  return (static_cast<uint16_t>(q) * 3) >> 8;
}

// Decodes one TQ1_0 / TQ2_0 block into 256 trits in {0, 1, 2} in element order.
void DecodeTq1_0Block(const BlockTq1_0& b, uint8_t trits[kQK_K]);
void DecodeTq2_0Block(const BlockTq2_0& b, uint8_t trits[kQK_K]);

// ggml's generic vec_dot_tq{1,2}_0_q8_K over k elements.
float DotTq1_0Q8K(const BlockTq1_0* x, const BlockQ8K* y, int64_t k);
float DotTq2_0Q8K(const BlockTq2_0* x, const BlockQ8K* y, int64_t k);

}  // namespace bitparity
