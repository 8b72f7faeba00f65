#include "engine/quant/ternary.h"

#include <algorithm>
#include <cmath>

#include "base/fp16.h"

namespace bitparity {
namespace {

// Block absmax, as ggml's reference quantizers compute it.
float BlockAbsMax(const float* x) {
  float amax = 0.0f;
  for (int j = 0; j < kQK_K; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

// round(x / d) + 1 in {0, 1, 2}; lroundf rounds half away from zero like ggml.
int TritOf(float x, float id) { return static_cast<int>(std::lround(x * id)) + 1; }

// 5 trits (first most significant) -> a byte, scaled by 256/243 rounding up.
uint8_t PackTrits5(int t0, int t1, int t2, int t3, int t4) {
  const uint16_t q = static_cast<uint16_t>((((t0 * 3 + t1) * 3 + t2) * 3 + t3) * 3 + t4);
  return static_cast<uint8_t>((q * 256 + (243 - 1)) / 243);
}

}  // namespace

void QuantizeRowTq1_0(const float* x, BlockTq1_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i, x += kQK_K) {
    const float d = BlockAbsMax(x);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    // Values [0, 160): bytes 0..31, 5 planes of 32.
    for (int m = 0; m < 32; ++m) {
      y[i].qs[m] = PackTrits5(TritOf(x[m], id), TritOf(x[m + 32], id), TritOf(x[m + 64], id),
                              TritOf(x[m + 96], id), TritOf(x[m + 128], id));
    }
    // Values [160, 240): bytes 32..47, 5 planes of 16.
    const float* x2 = x + 160;
    for (int m = 0; m < 16; ++m) {
      y[i].qs[32 + m] = PackTrits5(TritOf(x2[m], id), TritOf(x2[m + 16], id), TritOf(x2[m + 32], id),
                                   TritOf(x2[m + 48], id), TritOf(x2[m + 64], id));
    }
    // Values [240, 256): qh, 4 planes of 4, with a zero 5th trit at the bottom.
    const float* x3 = x + 240;
    for (int j = 0; j < 4; ++j) {
      y[i].qh[j] = PackTrits5(TritOf(x3[j], id), TritOf(x3[j + 4], id), TritOf(x3[j + 8], id),
                              TritOf(x3[j + 12], id), 0);
    }
  }
}

void QuantizeRowTq2_0(const float* x, BlockTq2_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i, x += kQK_K) {
    const float d = BlockAbsMax(x);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    for (int j = 0; j < 2; ++j) {
      for (int m = 0; m < 32; ++m) {
        uint8_t q = 0;
        for (int l = 0; l < 4; ++l) q |= static_cast<uint8_t>((TritOf(x[128 * j + 32 * l + m], id) & 3) << (2 * l));
        y[i].qs[32 * j + m] = q;
      }
    }
  }
}

void DecodeTq1_0Block(const BlockTq1_0& b, uint8_t t[kQK_K]) {
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 32; ++m) t[32 * n + m] = static_cast<uint8_t>(Tq1Trit(b.qs[m], n));
  }
  for (int n = 0; n < 5; ++n) {
    for (int m = 0; m < 16; ++m) t[160 + 16 * n + m] = static_cast<uint8_t>(Tq1Trit(b.qs[32 + m], n));
  }
  for (int n = 0; n < 4; ++n) {
    for (int j = 0; j < 4; ++j) t[240 + 4 * n + j] = static_cast<uint8_t>(Tq1Trit(b.qh[j], n));
  }
}

void DecodeTq2_0Block(const BlockTq2_0& b, uint8_t t[kQK_K]) {
  for (int j = 0; j < 2; ++j) {
    for (int l = 0; l < 4; ++l) {
      for (int m = 0; m < 32; ++m) t[128 * j + 32 * l + m] = (b.qs[32 * j + m] >> (2 * l)) & 3;
    }
  }
}

void DequantizeRowTq1_0(const BlockTq1_0* x, float* y, int64_t k) {
  uint8_t t[kQK_K];
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = Fp16ToFp32(x[i].d);
    DecodeTq1_0Block(x[i], t);
    for (int j = 0; j < kQK_K; ++j) *y++ = static_cast<float>(t[j] - 1) * d;
  }
}

void DequantizeRowTq2_0(const BlockTq2_0* x, float* y, int64_t k) {
  uint8_t t[kQK_K];
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    const float d = Fp16ToFp32(x[i].d);
    DecodeTq2_0Block(x[i], t);
    for (int j = 0; j < kQK_K; ++j) *y++ = static_cast<float>(t[j] - 1) * d;
  }
}

namespace {

template <typename Block, void (*Decode)(const Block&, uint8_t*)>
float DotTernaryQ8K(const Block* x, const BlockQ8K* y, int64_t k) {
  uint8_t t[kQK_K];
  float sumf = 0.0f;
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    Decode(x[i], t);
    int32_t sum = 0;
    for (int j = 0; j < kQK_K; ++j) sum += (t[j] - 1) * y[i].qs[j];
    // Separate statements: no fused multiply-add, as in ggml's generic build.
    const float d = Fp16ToFp32(x[i].d) * y[i].d;
    const float term = static_cast<float>(sum) * d;
    sumf += term;
  }
  return sumf;
}

}  // namespace

float DotTq1_0Q8K(const BlockTq1_0* x, const BlockQ8K* y, int64_t k) {
  return DotTernaryQ8K<BlockTq1_0, DecodeTq1_0Block>(x, y, k);
}

float DotTq2_0Q8K(const BlockTq2_0* x, const BlockQ8K* y, int64_t k) {
  return DotTernaryQ8K<BlockTq2_0, DecodeTq2_0Block>(x, y, k);
}

}  // namespace bitparity
