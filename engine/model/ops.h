// File: engine/model/ops.h
//
// The float steps of the forward pass, one function per step, each rounding where
// bitnet.cpp's ggml rounds (../shared/design/NUMERICS.md).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/model/model_config.h"

namespace bitparity {

// y = (x * (1 / sqrt(mean(x^2) + eps))) * w. The sum of squares is accumulated in
// double and the scaling and the weight are two separate float products, as ggml's
// rms_norm followed by mul. `w` may be null (scaling only); y may alias x.
void RmsNorm(const float* x, const float* w, int n, float eps, float* y);
// The same with the sum of squares given (kernels' sum_squares_rows, which runs
// several rows' sums side by side).
void RmsNormWithSum(const float* x, const float* w, int n, float eps, double sum_squares, float* y);

// cos/sin pairs of one position for n_rot dimensions, built as ggml_rope_cache_init
// does (the angle advances by repeated multiplication with theta_scale in float).
// cache: [n_rot] as (cos, sin) pairs.
void RopeCache(float position, int n_rot, float freq_base, float freq_scale, float* cache);

// Rotates one head vector in place with a cache from RopeCache.
void RopeApply(RopeStyle style, const float* cache, int n_rot, float* x);

// In-place ReLU(gate)^2 * up (BitNet b1.58) or SiLU(gate) * up (bitnet, llama).
void Relu2Gate(float* gate, const float* up, int n);
void SiluGate(float* gate, const float* up, int n);

}  // namespace bitparity
