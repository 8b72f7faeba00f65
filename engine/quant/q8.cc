#include "engine/quant/q8.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/fp16.h"
#include "engine/quant/i2s.h"  // NearestInt

namespace bitparity {

void QuantizeRowQ8_0(const float* x, BlockQ8_0* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK8_0; ++i, x += kQK8_0) {
    float amax = 0.0f;
    for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[i].d = Fp32ToFp16(d);
    for (int j = 0; j < kQK8_0; ++j) y[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
  }
}

void DequantizeRowQ8_0(const BlockQ8_0* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK8_0; ++i) {
    const float d = Fp16ToFp32(x[i].d);
    for (int j = 0; j < kQK8_0; ++j) *y++ = x[i].qs[j] * d;
  }
}

float DotQ8_0Q8_0(const BlockQ8_0* x, const BlockQ8_0* y, int64_t k) {
  float sumf = 0.0f;
  for (int64_t i = 0; i < k / kQK8_0; ++i) {
    int32_t sumi = 0;
    for (int j = 0; j < kQK8_0; ++j) sumi += x[i].qs[j] * y[i].qs[j];
    const float d = Fp16ToFp32(x[i].d) * Fp16ToFp32(y[i].d);
    const float term = static_cast<float>(sumi) * d;  // separate statements: no FMA
    sumf += term;
  }
  return sumf;
}

void QuantizeRowQ8K(const float* x, BlockQ8K* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i, x += kQK_K) {
    float max = 0.0f;
    float amax = 0.0f;
    for (int j = 0; j < kQK_K; ++j) {
      const float ax = std::fabs(x[j]);
      if (ax > amax) {  // strict: the first of equal magnitudes wins
        amax = ax;
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      y[i].d = 0.0f;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    const float iscale = -127.f / max;
    for (int j = 0; j < kQK_K; ++j) y[i].qs[j] = static_cast<int8_t>(std::min(127, NearestInt(iscale * x[j])));
    for (int j = 0; j < kQK_K / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * j + l];
      y[i].bsums[j] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void DequantizeRowQ8K(const BlockQ8K* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k / kQK_K; ++i) {
    for (int j = 0; j < kQK_K; ++j) *y++ = x[i].d * x[i].qs[j];
  }
}

}  // namespace bitparity
