// File: engine/model/linear.h
//
// y = W x for a batch of token rows, for every weight type the engine runs, with the
// activation handling bitnet.cpp uses for that type:
//   I2_S          x quantized to int8 per token (absmax, QuantizeRowI8S); integer dot
//                 Σ code·q; y = (Σ − Σq) / act_scale · w_scale
//   TQ1_0, TQ2_0  x quantized to Q8_K (per 256 values); ggml's integer block dot
//   Q8_0          x quantized to Q8_0; integer block dot
//   F16           one row: x rounded to F16; several rows: x kept in F32 (llamafile)
//   BF16          x rounded to BF16; products accumulated in float
//   F32           float sgemm (OpenBLAS)
// Rows of W are split over the model's thread pool.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "engine/common/cache_aligned_vector.h"
#include "engine/model/model.h"
#include "engine/model/weights.h"

namespace bitparity {

// Reusable buffers for the quantized activations (sized on first use).
struct LinearScratch {
  std::vector<int8_t> q;          // [n_tokens][cols] int8 activations (I2_S)
  CacheAlignedVector<int8_t> qa;  // the same in the kernels' layout (i2s_prepare_act / _acts)
  std::vector<float> act_scale;   // [n_tokens]
  std::vector<int32_t> act_sum;   // [n_tokens]
  std::vector<uint8_t> blocks;    // [n_tokens][row bytes] Q8_K / Q8_0 / F16 / BF16 rows
};

// x: [n_tokens][w.cols] floats; y: [n_tokens][w.rows] floats.
// ggml_rows: how many activation rows bitnet.cpp would multiply in this one product
// (it picks F16 rounding or not by that count, see LinearF16); 0 = n_tokens.
void Linear(const Model& model, const WeightMatrix& w, const float* x, int n_tokens, float* y,
            LinearScratch& scratch, int ggml_rows = 0);

// Several matrices applied to the same x (q, k, v; gate, up): y_i = W_i x. Same values
// as one Linear call each. When all are I2_S with the same row length, x is quantized
// once and one hand-off to the pool covers all their rows (a decode step otherwise
// pays a quantization and a pool round trip per matrix).
struct LinearOutput {
  const WeightMatrix* w;
  float* y;  // [n_tokens][w->rows]
};
void LinearShared(const Model& model, absl::Span<const LinearOutput> outs, const float* x, int n_tokens,
                  LinearScratch& scratch);

// True for the types whose products give every row the same values however many rows
// share the call (integer sums, or per-row float loops): I2_S, TQ1_0, TQ2_0, Q8_0,
// BF16. F16 rounds differently for one row and for several (see Linear's ggml_rows),
// and F32 goes through OpenBLAS, whose kernels depend on the row count.
bool RowInvariantType(GgmlType t);

// One row of token_embd as floats (embedding lookup): out[w.cols].
void EmbeddingRow(const WeightMatrix& w, int32_t id, float* out);

}  // namespace bitparity
