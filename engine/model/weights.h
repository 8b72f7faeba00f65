// File: engine/model/weights.h
//
// Views of a model's tensors inside the GGUF mapping (nothing is copied). Shapes
// follow ggml: a matrix has `cols` = ne0 (the input / row length) and `rows` = ne1
// (the outputs), and y = W x means y[r] = dot(row r of W, x).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/model/model_config.h"
#include "engine/quant/tensor_type.h"

namespace bitparity {

struct WeightMatrix {
  std::string name;
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;  // tensor bytes in the mapping
  int64_t cols = 0;               // ne0: input length
  int64_t rows = 0;               // ne1: outputs
  uint64_t row_bytes = 0;         // bytes per row (I2_S: cols / 4; its scale follows all rows)
  float i2s_scale = 0.0f;         // I2_S only: the per-tensor scale
  const uint8_t* Row(int64_t r) const { return data + r * row_bytes; }
};

struct LayerWeights {
  const float* attn_norm = nullptr;      // [n_embd]
  const float* attn_sub_norm = nullptr;  // [n_embd] (BitNet only)
  const float* ffn_norm = nullptr;       // [n_embd]
  const float* ffn_sub_norm = nullptr;   // [n_ff] (BitNet only)
  WeightMatrix wq;    // [n_embd] -> [n_head * head_dim]
  WeightMatrix wk;    // [n_embd] -> [n_head_kv * head_dim]
  WeightMatrix wv;    // [n_embd] -> [n_head_kv * head_dim]
  WeightMatrix wo;    // [n_head * head_dim] -> [n_embd]
  WeightMatrix gate;  // [n_embd] -> [n_ff]
  WeightMatrix up;    // [n_embd] -> [n_ff]
  WeightMatrix down;  // [n_ff] -> [n_embd]
  // Optional per-matrix output scales of the "bitnet" architecture (blk.N.*.scale,
  // shape {1}); 1 when absent.
  float wq_scale = 1, wk_scale = 1, wv_scale = 1, wo_scale = 1;
  float gate_scale = 1, up_scale = 1, down_scale = 1;
};

struct Weights {
  WeightMatrix token_embd;            // [n_embd] x n_vocab rows (embedding lookup)
  WeightMatrix output;                // output head: token_embd (tied) or output.weight (llama)
  const float* output_norm = nullptr;  // [n_embd]
  std::vector<LayerWeights> layers;

  // Binds every tensor the architecture needs, checking names, types and shapes.
  // Errors: FailedPrecondition (tensor missing), DataLoss (wrong shape),
  // Unimplemented (a type this engine cannot multiply).
  static absl::StatusOr<Weights> Bind(const GgufFile& file, const ModelConfig& config);
};

}  // namespace bitparity
