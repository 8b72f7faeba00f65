#include "engine/model/ops.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/kernels/kernels.h"

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

// The kernels' rotation (engine/kernels: rope_heads, fused multiply-adds written as
// bitnet.cpp's clang build contracts ggml's rope).
void RopeApply(RopeStyle style, const float* cache, int n_rot, float* x) {
  GetKernels().rope_heads(cache, n_rot, style == RopeStyle::kNeox, x, 1, 0);
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
