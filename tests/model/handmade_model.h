// File: tests/model/handmade_model.h
//
// Writes small hand-made GGUF models with GgufWriter for the model tests: a plain
// F32 "llama" graph whose weights are simple constants, so a test can make a file
// with exactly one defect (an unknown architecture, a missing tensor, a tensor of
// the wrong shape) or a model whose output is known in advance.
//
// With the default fill every projection is zero, so each block adds nothing to
// the residual stream, every token embeds to a vector of ones, and the head gives
// logit n_embd * (1 / sqrt(1 + eps)) to `favoured_token` and 0 to every other id:
// greedy decoding then always picks `favoured_token`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"

namespace bitparity::testing {

struct HandmadeModelSpec {
  std::string arch = "llama";
  int n_layer = 1;
  int n_embd = 32;
  int n_ff = 64;
  int n_head = 2;
  int n_head_kv = 1;
  int n_vocab = 16;
  int n_ctx = 64;
  // Output row that gets all ones (every other row is zero); -1: none.
  int32_t favoured_token = 0;
  // Defects, one per file.
  std::string omit_tensor;             // leave this tensor out
  std::string reshape_tensor;          // give this tensor the shape below instead
  std::vector<int64_t> reshape_to;
  // Copy every tokenizer.* key from this file (its vocabulary must have n_vocab tokens).
  const GgufFile* vocab_from = nullptr;
};

struct HandmadeTensor {
  std::string name;
  std::vector<int64_t> ne;
  float fill;                 // every value
  int32_t ones_row = -1;      // except this row (ne[0] values), all ones
};

inline std::vector<HandmadeTensor> HandmadeTensors(const HandmadeModelSpec& s) {
  const int64_t E = s.n_embd, F = s.n_ff, V = s.n_vocab;
  const int64_t kv = static_cast<int64_t>(s.n_head_kv) * (E / s.n_head);
  std::vector<HandmadeTensor> t;
  t.push_back({"token_embd.weight", {E, V}, 1.0f});
  t.push_back({"output_norm.weight", {E}, 1.0f});
  t.push_back({"output.weight", {E, V}, 0.0f, s.favoured_token});
  for (int il = 0; il < s.n_layer; ++il) {
    const std::string p = absl::StrCat("blk.", il, ".");
    t.push_back({p + "attn_norm.weight", {E}, 1.0f});
    t.push_back({p + "ffn_norm.weight", {E}, 1.0f});
    t.push_back({p + "attn_q.weight", {E, E}, 0.0f});
    t.push_back({p + "attn_k.weight", {E, kv}, 0.0f});
    t.push_back({p + "attn_v.weight", {E, kv}, 0.0f});
    t.push_back({p + "attn_output.weight", {E, E}, 0.0f});
    t.push_back({p + "ffn_gate.weight", {E, F}, 0.0f});
    t.push_back({p + "ffn_up.weight", {E, F}, 0.0f});
    t.push_back({p + "ffn_down.weight", {F, E}, 0.0f});
  }
  for (HandmadeTensor& h : t) {
    if (h.name == s.reshape_tensor) h.ne = s.reshape_to;
  }
  return t;
}

// Writes the model to `path`. Errors are GgufWriter's.
inline absl::Status WriteHandmadeModel(const std::string& path, const HandmadeModelSpec& s) {
  GgufWriter w;
  const std::string p = s.arch + ".";
  RETURN_IF_ERROR(w.AddString("general.architecture", s.arch));
  RETURN_IF_ERROR(w.AddString("general.name", "handmade"));
  RETURN_IF_ERROR(w.AddUint32(p + "block_count", s.n_layer));
  RETURN_IF_ERROR(w.AddUint32(p + "embedding_length", s.n_embd));
  RETURN_IF_ERROR(w.AddUint32(p + "feed_forward_length", s.n_ff));
  RETURN_IF_ERROR(w.AddUint32(p + "attention.head_count", s.n_head));
  RETURN_IF_ERROR(w.AddUint32(p + "attention.head_count_kv", s.n_head_kv));
  RETURN_IF_ERROR(w.AddUint32(p + "context_length", s.n_ctx));
  if (s.vocab_from != nullptr) {
    for (const GgufMetadataEntry& e : s.vocab_from->metadata()) {
      if (absl::StartsWith(e.key, "tokenizer.")) {
        RETURN_IF_ERROR(w.AddValue(e.key, e.value));
      }
    }
  }
  std::vector<HandmadeTensor> tensors;
  for (const HandmadeTensor& t : HandmadeTensors(s)) {
    if (t.name != s.omit_tensor) tensors.push_back(t);
  }
  for (const HandmadeTensor& t : tensors) {
    RETURN_IF_ERROR(w.AddTensor(t.name, GgmlType::kF32, absl::MakeConstSpan(t.ne)));
  }
  RETURN_IF_ERROR(w.Open(path));
  for (const HandmadeTensor& t : tensors) {
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    std::vector<float> v(static_cast<size_t>(n), t.fill);
    if (t.ones_row >= 0 && t.ne.size() == 2 && t.ones_row < t.ne[1]) {
      std::fill(v.begin() + t.ones_row * t.ne[0], v.begin() + (t.ones_row + 1) * t.ne[0], 1.0f);
    }
    std::vector<uint8_t> bytes(v.size() * sizeof(float));
    std::memcpy(bytes.data(), v.data(), bytes.size());
    RETURN_IF_ERROR(w.WriteTensor(t.name, bytes));
  }
  return w.Finish();
}

}  // namespace bitparity::testing
