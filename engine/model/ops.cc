#include "engine/model/ops.h"

#include <cmath>
#include <cstdint>
#include <cstring>


namespace bitparity {

void RmsNorm(const float* x, const float* w, int n, float eps, float* y) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += static_cast<double>(x[i] * x[i]);
  RmsNormWithSum(x, w, n, eps, sum, y);
}

void RmsNormWithSum(const float* x, const float* w, int n, float eps, double sum, float* y) {
  const float mean = static_cast<float>(sum / n);
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int i = 0; i < n; ++i) y[i] = x[i] * scale;
  if (w != nullptr) {
    for (int i = 0; i < n; ++i) y[i] = y[i] * w[i];
  }
}

void RopeCache(float position, int n_rot, float freq_base, float freq_scale, float* cache) {
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  float theta = position;
  for (int i0 = 0; i0 < n_rot; i0 += 2) {
    const float t = freq_scale * theta;
    cache[i0] = std::cos(t);
    cache[i0 + 1] = std::sin(t);
    theta *= theta_scale;
  }
}

// bitnet.cpp is built with clang, which contracts `x0*c - x1*s` into one fused
// multiply-add on the left product (fma(x0, c, -(x1*s))) and `x0*s + x1*c` into
// fma(x0, s, x1*c). The rotation is written the same way so that it rounds the same.
void RopeApply(RopeStyle style, const float* cache, int n_rot, float* x) {
  auto rotate = [](float x0, float x1, float c, float s, float* y0, float* y1) {
    *y0 = std::fma(x0, c, -(x1 * s));
    *y1 = std::fma(x0, s, x1 * c);
  };
  if (style == RopeStyle::kNeox) {
    const int half = n_rot / 2;
    for (int ic = 0; ic < half; ++ic) {
      rotate(x[ic], x[ic + half], cache[2 * ic], cache[2 * ic + 1], &x[ic], &x[ic + half]);
    }
  } else {
    for (int i0 = 0; i0 < n_rot; i0 += 2) {
      rotate(x[i0], x[i0 + 1], cache[i0], cache[i0 + 1], &x[i0], &x[i0 + 1]);
    }
  }
}

// relu(g) as a bit mask (g > 0 keeps g's bits, anything else, NaN included, becomes
// +0), so the compiler vectorizes the loop. Written as `g > 0 ? g : 0`, GCC copies the
// product into both arms of a branch, stays scalar and mispredicts on every other
// sign (5% of a 2B-4T prefill). Same values either way.
void Relu2Gate(float* __restrict gate, const float* __restrict up, int n) {
  for (int i = 0; i < n; ++i) {
    const float g = gate[i];
    uint32_t bits;
    std::memcpy(&bits, &g, sizeof bits);
    bits &= -static_cast<uint32_t>(g > 0.0f);
    float r;
    std::memcpy(&r, &bits, sizeof r);
    gate[i] = (r * r) * up[i];
  }
}

void SiluGate(float* gate, const float* up, int n) {
  for (int i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = (g / (1.0f + std::exp(-g))) * up[i];
  }
}

}  // namespace bitparity
