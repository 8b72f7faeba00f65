// File: engine/kernels/kernels_internal.h
//
// Private to engine/kernels: the per-path tables (each defined in its own .cc, which
// is compiled with that path's -m flags) and small helpers the paths share. Only
// kernels.cc calls the table getters, after checking the CPU.
#pragma once

#include <cmath>
#include <cstring>
#include <limits>

#include "engine/kernels/kernels.h"

namespace bitparity::kernels_internal {

const Kernels& ScalarKernels();
const Kernels& Avx2Kernels();
const Kernels& Avx512Kernels();

// i2s_prepare_act of the paths that read q in its natural order.
inline void I2sPrepareActIdentity(const int8_t* q, int64_t k, int8_t* qa) {
  std::memcpy(qa, q, static_cast<size_t>(k));
}
// i2s_prepare_acts of those paths: the rows back to back.
inline void I2sPrepareActsIdentity(const int8_t* q, int64_t q_stride, int64_t k, int64_t n_act, int8_t* qa) {
  for (int64_t a = 0; a < n_act; ++a) std::memcpy(qa + a * k, q + a * q_stride, static_cast<size_t>(k));
}

// Tree reduction of 16 float lanes as _mm512_reduce_add_ps computes it (GCC and
// clang): halves 16 -> 8 -> 4 -> 2 -> 1, each step lane[i] + lane[i + half].
inline float ReduceAdd16(const float v[16]) {
  float t8[8], t4[4];
  for (int i = 0; i < 8; ++i) t8[i] = v[i + 8] + v[i];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i + 4] + t8[i];
  const float a = t4[0] + t4[2];
  const float b = t4[1] + t4[3];
  return a + b;
}

// ggml's hsum_float_8 (AVX): (hi128 + lo128), then (0+2, 1+3), then the two.
inline float HsumFloat8(const float v[8]) {
  float r[4];
  for (int i = 0; i < 4; ++i) r[i] = v[i + 4] + v[i];
  const float a = r[0] + r[2];
  const float b = r[1] + r[3];
  return a + b;
}

// One lane of ggml_v_expf (ggml.c, AVX-512 build): exp(x) = 2^n * p(b) with
// n = round(x * log2(e)), b = x - n*ln2 (in two parts), p a degree-5 polynomial;
// every multiply-add is fused, as the vector code's FMAs are. |n| > 192 saturates
// to 0 (n <= 0) or +inf. The AVX-512 kernel computes the same, 16 lanes at a time.
inline float GgmlExpf(float x) {
  const float r = 0x1.8p23f;
  const float z = std::fma(x, 0x1.715476p+0f, r);
  const float n = z - r;
  const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
  const float u = b * b;
  const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                    std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                           u, std::fma(0x1.ffffecp-1f, b, 1.0f));
  if (!(std::fabs(n) <= 192.0f)) return n <= 0.0f ? 0.0f : INFINITY;  // also NaN n (x = -inf)
  return std::ldexp(j, static_cast<int>(n));
}

// f16_dot_rows_multi as one f16_dot_rows call per vector (paths without a fused version).
template <void (*Dot)(const uint16_t*, int64_t, int64_t, int64_t, const uint16_t*, float*)>
void F16DotRowsEachX(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const uint16_t* x,
                     int64_t x_stride, int64_t n_x, float* out, int64_t out_stride) {
  for (int64_t a = 0; a < n_x; ++a) Dot(w, w_stride, n_rows, k, x + a * x_stride, out + a * out_stride);
}

// ggml's rms_norm sum of squares, one row after another (the scalar twin).
inline void SumSquaresRowsScalar(const float* x, int64_t x_stride, int64_t n_rows, int64_t n, double* sums) {
  for (int64_t r = 0; r < n_rows; ++r) {
    const float* xr = x + r * x_stride;
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(xr[i] * xr[i]);
    sums[r] = sum;
  }
}

// I2_S float outputs one by one (the scalar twin of the vector versions).
inline void I2sOutputsScalar(const int32_t* sums, int64_t n, int32_t act_sum, float act_scale, float w_scale,
                             float* y) {
  for (int64_t r = 0; r < n; ++r) {
    y[r] = (static_cast<float>(sums[r]) - static_cast<float>(act_sum)) / act_scale * w_scale;
  }
}

// The screened head's bounds one row at a time (the scalar twin of the vector version).
inline void ScreenBoundsScalar(const int32_t* isum, const float* scale, const float* slope_x, const float* slope_d,
                               int64_t n, double inv_t, double x_norm, double d_norm, double bound_scale, double* lo,
                               double* hi) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (int64_t r = 0; r < n; ++r) {
    const double approx = static_cast<double>(isum[r]) * static_cast<double>(scale[r]) * inv_t;
    double b = static_cast<double>(slope_x[r]) * x_norm + static_cast<double>(slope_d[r]) * d_norm;
    b += 0x1p-50 * (std::fabs(approx) + b);
    b *= bound_scale;
    const bool ok = std::isfinite(approx) && std::isfinite(b);
    lo[r] = ok ? approx - b : -kInf;
    hi[r] = ok ? approx + b : kInf;
  }
}

// RoPE, one pair at a time (the scalar twin; std::fma rounds once, as the FMA units).
inline void RopeHeadsScalar(const float* cache, int n_rot, bool neox, float* x, int n_heads, int64_t head_stride) {
  auto rotate = [](float* x0, float* x1, float c, float s) {
    const float a = *x0, b = *x1;
    *x0 = std::fma(a, c, -(b * s));
    *x1 = std::fma(a, s, b * c);
  };
  const int half = n_rot / 2;
  for (int h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_stride;
    for (int i = 0; i < half; ++i) {
      if (neox) {
        rotate(&xh[i], &xh[i + half], cache[2 * i], cache[2 * i + 1]);
      } else {
        rotate(&xh[2 * i], &xh[2 * i + 1], cache[2 * i], cache[2 * i + 1]);
      }
    }
  }
}

// The softmax numerator over n values, the scalar twin of the AVX-512 kernel.
double SoftmaxExpScalar(const float* x, float max, float* y, int64_t n);

}  // namespace bitparity::kernels_internal
