// File: engine/model/attention.h
//
// Causal grouped-query attention of a chunk of new tokens over the KV cache, computed
// as bitnet.cpp (llama.cpp, no flash attention, llamafile on) computes it:
//   - K and V live in the cache as F16; V is stored transposed ([dim][position]).
//   - scores = Q·Kᵀ with Q rounded to F16 (ggml_vec_dot_f16), over the first n_kv
//     cache rows, n_kv = the used length rounded up to 32 (masked entries weigh 0);
//   - × 1/sqrt(head_dim), causal mask, softmax in float (sum in double);
//   - out = P·V: one new token: P rounded to F16 (ggml_vec_dot_f16); two or more:
//     P kept in F32 (llamafile's tinyBLAS).
// Query head h reads kv head h / (n_head / n_head_kv).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/common/huge_page_buffer.h"
#include "engine/model/model.h"

namespace bitparity {

// The F16 KV cache of one session. Capacity is max_context rounded up to 256, as
// llama.cpp pads its context, so the padded attention length always fits.
// The cells live in huge pages (HugePageBuffer), zero until first written. Vectors
// zero-filled up front faulted in every 4 KiB page at construction, which the
// server's batch loop does when a request joins, stalling every running stream:
// Zen 5 VM, 2B-4T, 97 ms for 512 positions (39 MB), 802 ms for 4096. In 2 MiB
// pages, faulted in at construction, 2 ms and 16 ms.
//   K: [layer][kv_head][position][head_dim]     V: [layer][kv_head][head_dim][position]
class KvCache {
 public:
  KvCache(const ModelConfig& c, int max_context);
  uint16_t* K(int layer, int kv_head) { return Slot(k_, layer, kv_head); }
  uint16_t* Vt(int layer, int kv_head) { return Slot(v_, layer, kv_head); }
  int capacity() const { return capacity_; }
  size_t bytes() const { return 2 * cells_ * sizeof(uint16_t); }
  // Every cell of `layer` at this position or after holds zeros (the cache starts
  // zeroed; attention's store keeps the mark), so a step re-zeroes only the cells an
  // earlier, longer use of the cache left behind.
  int zero_from(int layer) const { return zero_from_[layer]; }
  void set_zero_from(int layer, int pos) { zero_from_[layer] = pos; }

 private:
  uint16_t* Slot(uint16_t* buf, int layer, int kv_head) {
    return buf + (static_cast<size_t>(layer) * n_head_kv_ + kv_head) * capacity_ * head_dim_;
  }
  int n_head_kv_, head_dim_, capacity_;
  size_t cells_ = 0;  // of K, and of V
  HugePageBuffer memory_;
  uint16_t* k_ = nullptr;  // cells_ values, then V's
  uint16_t* v_ = nullptr;
  std::vector<int> zero_from_;  // per layer
};

// Per-thread buffers for attention (sized on first use).
struct AttentionScratch {
  std::vector<uint16_t> q16, p16;
  std::vector<float> scores;
};

// Stores k/v of the n new tokens (positions pos0 .. pos0+n-1) into the cache and
// computes the attention output for them.
//   q:   [n][n_head * head_dim]   (RoPE already applied)
//   k,v: [n][n_head_kv * head_dim]
//   out: [n][n_head * head_dim]
void Attention(const Model& model, KvCache& cache, int layer, int pos0, int n, const float* q,
               const float* k, const float* v, float* out, std::vector<AttentionScratch>& scratch);

// Several attention calls of one layer at once (a batch step: each sequence's decode
// token or prompt chunk), with one hand-off to the thread pool for all of them (a
// task per KV head, and per block of a long chunk's tokens). Each call's keys and
// values are stored, then its output equals Attention() with its arguments. Calls
// must be of different sequences (two tokens of one sequence one by one go through
// Attention() in turn).
struct AttentionCall {
  KvCache* cache;
  int pos0;        // position of the first new token; the cache holds 0 .. pos0-1
  int n;           // new tokens
  const float* q;  // [n][q_dim]
  const float* k;  // [n][kv_dim], stored at positions pos0 ..
  const float* v;  // [n][kv_dim]
  float* out;      // [n][q_dim]
};
void AttentionBatch(const Model& model, int layer, const std::vector<AttentionCall>& calls,
                    std::vector<AttentionScratch>& scratch);

}  // namespace bitparity
