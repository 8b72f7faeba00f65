// File: engine/model/model_config.h
//
// Hyper-parameters of a model, read from its GGUF metadata under the architecture's
// key prefix ("bitnet-b1.58.block_count", ...), with llama.cpp's defaults for the
// optional keys. The vocabulary size is taken from token_embd's shape, as llama.cpp
// does, and cross-checked against the tokenizer.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_reader.h"

namespace bitparity {

enum class Architecture {
  kBitnetB158,  // "bitnet-b1.58", "bitnet-25": BitNet b1.58 2B-4T graph, relu(gate)^2
  kBitnet,      // "bitnet": 1bitLLM bitnet_b1_58-large/3B, silu(gate)
  kLlama,       // "llama": plain float LLaMA
};

enum class RopeStyle {
  kNeox,    // rotate pairs (i, i + n_rot/2): the BitNet architectures
  kNormal,  // rotate pairs (2i, 2i + 1): LLaMA
};

struct ModelConfig {
  Architecture arch = Architecture::kBitnetB158;
  std::string arch_name;  // as written in general.architecture
  std::string name;       // general.name, may be empty
  int n_layer = 0;
  int n_embd = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;       // n_embd / n_head
  int n_rot = 0;          // rotated dimensions per head (rope.dimension_count, default head_dim)
  int n_vocab = 0;        // rows of token_embd
  int n_ctx_train = 0;    // context_length
  float rope_theta = 10000.0f;
  float rope_freq_scale = 1.0f;  // 1 / rope.scaling.factor for linear scaling
  float rms_eps = 1e-5f;
  RopeStyle rope_style = RopeStyle::kNeox;
  bool has_sub_norms = true;  // attn_sub_norm / ffn_sub_norm (BitNet only)

  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }

  // Errors: Unimplemented (architecture), FailedPrecondition (required key missing),
  // DataLoss (values that cannot describe a model: zero layers, heads not dividing...).
  static absl::StatusOr<ModelConfig> FromGguf(const GgufFile& file);
};

}  // namespace bitparity
