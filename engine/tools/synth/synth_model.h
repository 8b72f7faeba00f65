// File: engine/tools/synth/synth_model.h
//
// Writes a random `bitnet-b1.58` GGUF that bitnet.cpp (BitNet 01eb415) loads and
// runs, laid out like the fixture models (../shared/fixtures/models/tiny-b158.gguf):
//   metadata  general.architecture, general.name, bitnet-b1.58.{vocab_size,
//             context_length, embedding_length, block_count, feed_forward_length,
//             rope.dimension_count (= head_dim), attention.head_count,
//             attention.head_count_kv, attention.layer_norm_rms_epsilon (1e-5),
//             rope.freq_base}, general.file_type = 40 (MOSTLY_I2_S), then the
//             tokenizer.* keys (built-in byte BPE, or copied from --vocab-from, plus
//             tokenizer.ggml.add_bos_token = true if that file has no such key, as
//             in every fixture model);
//   tensors   token_embd.weight F16 [n_embd, n_vocab] (also the tied output head;
//             no output.weight); per layer attn_norm, attn_q, attn_k, attn_v,
//             attn_output, attn_sub_norm, ffn_norm, ffn_gate, ffn_up, ffn_down,
//             ffn_sub_norm; then output_norm. Norms F32, projections I2_S.
//   values    projections ternary with P(-1, 0, +1) = 0.3 / 0.4 / 0.3 and
//             per-tensor scale sqrt(1 / (0.6 K)), K = ne[0] (the input width);
//             norms 1 + 0.1 N(0,1); embeddings 0.08 N(0,1) rounded to f16.
// Each tensor draws from its own stream, TensorRandom::ForTensor(seed, name)
// (engine/tools/synth/prng.h), so the same config gives the same bytes. Tensors are
// generated and written one at a time; memory stays at a few MiB whatever the size.
//
// Thread safety: none needed; the functions share no state.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bitparity::synth {

struct SynthConfig {
  std::string shape = "tiny";  // preset name, recorded in general.name
  int64_t n_layer = 4;
  int64_t n_embd = 256;
  int64_t n_ff = 512;
  int64_t n_head = 4;
  int64_t n_head_kv = 2;
  int64_t n_ctx = 512;
  float rope_theta = 500000.0f;
  float rms_eps = 1e-5f;
  int64_t n_vocab = 4096;  // built-in vocabulary size; ignored with vocab_from
  std::string vocab_from;  // a GGUF whose tokenizer.* keys are copied; empty: built-in
  uint64_t seed = 1234;
};

// "tiny": 4 layers, n_embd 256, n_ff 512, 4 / 2 heads, ctx 512, theta 5e5, vocab 4096.
// "2b4t": BitNet-b1.58-2B-4T: 30 layers, n_embd 2560, n_ff 6912, 20 / 5 heads, ctx 4096,
//         theta 5e5, vocab 128256 (built-in byte BPE unless --vocab-from gives LLaMA-3's).
// InvalidArgument for other names.
absl::StatusOr<SynthConfig> ShapePreset(absl::string_view name);

// InvalidArgument naming the first problem: non-positive sizes, n_embd not a multiple
// of n_head, n_head not a multiple of n_head_kv, odd head_dim (RoPE), n_embd or n_ff not
// a multiple of 128 (I2_S rows are whole 128-element blocks), bad theta or vocab size.
absl::Status ValidateSynthConfig(const SynthConfig& config);

struct SynthResult {
  int64_t n_vocab = 0;
  int64_t n_tensors = 0;
  uint64_t file_size = 0;
};

// Validates, then writes the model to `out_path` (via "<out_path>.tmp" + rename).
absl::StatusOr<SynthResult> WriteSynthModel(const SynthConfig& config, const std::string& out_path);

}  // namespace bitparity::synth
