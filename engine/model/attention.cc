#include "engine/model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <utility>

#include "base/fp16.h"

namespace bitparity {

KvCache::KvCache(const ModelConfig& c, int max_context)
    : n_head_kv_(c.n_head_kv), head_dim_(c.head_dim), capacity_((max_context + 255) / 256 * 256) {
  cells_ = static_cast<size_t>(c.n_layer) * c.n_head_kv * capacity_ * c.head_dim;
  absl::StatusOr<HugePageBuffer> memory = HugePageBuffer::Allocate(2 * cells_ * sizeof(uint16_t));
  if (!memory.ok()) throw std::bad_alloc();  // as the vectors it replaced; callers size it by a budget
  memory_ = std::move(*memory);
  k_ = reinterpret_cast<uint16_t*>(memory_.data());
  v_ = k_ + cells_;
  // Fault the pages in now, before the request's first step: faulted in by that
  // step's writes they stalled every running stream (bitparity bench, 8 streams of
  // 128 tokens, 2B-4T: ITL p99 86-87 ms that way, 69-73 ms this way).
  constexpr size_t kSmallestPage = 4096;  // one write faults in whatever page backs it
  for (size_t b = 0; b < memory_.size(); b += kSmallestPage) memory_.data()[b] = 0;
  zero_from_.assign(c.n_layer, 0);
}

namespace {

// llama.cpp attends over the used cells rounded up to 32 (at least 32).
int PaddedLength(int capacity, int used) { return std::min(capacity, std::max(32, (used + 31) / 32 * 32)); }

// A prompt chunk's tokens go to the threads in blocks of this many (per KV head).
constexpr int kTokensPerTask = 16;

// KV head g of the n new tokens' keys and values into the cache, rounded to F16 as
// ggml_cpy into the cache does. The cells after them up to the padded attention
// length must hold zeros (they are read with weight 0, and an old inf there would
// give NaN): those in [pos0 + n, stale_end), which an earlier use of the cache left
// non-zero, are cleared. Clearing all of them on every step cost a decode step ~30
// strided stores per V value.
void StoreKvHead(const Model& model, const AttentionCall& call, int layer, int g, int stale_end) {
  const ModelConfig& c = model.config();
  const int hd = c.head_dim;
  const int kv_dim = c.kv_dim();
  const int cap = call.cache->capacity();
  uint16_t* kc = call.cache->K(layer, g);
  uint16_t* vt = call.cache->Vt(layer, g);
  for (int t = 0; t < call.n; ++t) {
    const size_t pos = static_cast<size_t>(call.pos0 + t);
    const float* v = call.v + static_cast<size_t>(t) * kv_dim + g * hd;
    model.kernels().fp32_to_fp16_row(call.k + static_cast<size_t>(t) * kv_dim + g * hd, kc + pos * hd, hd);
    for (int d = 0; d < hd; ++d) vt[static_cast<size_t>(d) * cap + pos] = Fp32ToFp16(v[d]);
  }
  for (int pos = call.pos0 + call.n; pos < stale_end; ++pos) {
    std::fill(kc + static_cast<size_t>(pos) * hd, kc + static_cast<size_t>(pos + 1) * hd, 0);
    for (int d = 0; d < hd; ++d) vt[static_cast<size_t>(d) * cap + pos] = 0;
  }
}

// The query heads of KV head g (the group reading it) for tokens [t0, t1) of `call`,
// whose keys and values are stored. The group's heads share each K and V row read
// (f16_dot_rows_multi); every head's numbers are those of its own products.
void AttendGroup(const Model& model, int layer, const AttentionCall& call, int g, int t0, int t1, AttentionScratch& s) {
  const ModelConfig& c = model.config();
  const Kernels& kern = model.kernels();
  const int hd = c.head_dim;
  const int q_dim = c.q_dim();
  const int cap = call.cache->capacity();
  const int n_kv = PaddedLength(cap, call.pos0 + call.n);
  const int group = c.n_head / c.n_head_kv;
  const int h0 = g * group;  // the group's first query head
  const int nt = t1 - t0;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  s.q16.resize(static_cast<size_t>(group) * hd);
  s.scores.resize(static_cast<size_t>(group) * nt * n_kv);  // [head][token][n_kv]
  s.p16.resize(static_cast<size_t>(group) * n_kv);
  const size_t head_scores = static_cast<size_t>(nt) * n_kv;
  const uint16_t* kc = call.cache->K(layer, g);
  const uint16_t* vt = call.cache->Vt(layer, g);
  for (int t = t0; t < t1; ++t) {
    const float* q = call.q + static_cast<size_t>(t) * q_dim + h0 * hd;
    for (int i = 0; i < group; ++i) kern.fp32_to_fp16_row(q + i * hd, s.q16.data() + static_cast<size_t>(i) * hd, hd);
    float* rows = s.scores.data() + static_cast<size_t>(t - t0) * n_kv;  // head i at rows + i * head_scores
    // scores[j] = q_t · k_j, every head of the group
    kern.f16_dot_rows_multi(kc, hd, n_kv, hd, s.q16.data(), hd, group, rows, head_scores);
    // Scale, causal mask (-inf), softmax over all n_kv cells, as ggml's soft_max
    // does it (engine/kernels: softmax_exp).
    const int visible = call.pos0 + t + 1;
    for (int i = 0; i < group; ++i) {
      float* row = rows + i * head_scores;
      float max = -std::numeric_limits<float>::infinity();
      for (int j = 0; j < visible; ++j) {
        row[j] = row[j] * scale;
        max = std::max(max, row[j]);
      }
      std::fill(row + visible, row + n_kv, -std::numeric_limits<float>::infinity());
      const double sum = kern.softmax_exp(row, max, row, n_kv);
      const float inv = static_cast<float>(1.0 / sum);
      for (int j = 0; j < n_kv; ++j) row[j] = row[j] * inv;
    }
  }
  // out[t][d] = Σ_j p[t][j] · v[j][d]: one new token with P rounded to F16, a chunk
  // with P in F32 (the whole call decides, not this block)
  if (call.n == 1) {
    for (int i = 0; i < group; ++i) {
      kern.fp32_to_fp16_row(s.scores.data() + i * head_scores, s.p16.data() + static_cast<size_t>(i) * n_kv, n_kv);
    }
    kern.f16_dot_rows_multi(vt, cap, hd, n_kv, s.p16.data(), n_kv, group, call.out + h0 * hd, hd);
  } else {
    for (int i = 0; i < group; ++i) {
      kern.f16_gemm_f32(vt, cap, hd, n_kv, s.scores.data() + i * head_scores, n_kv, nt,
                        call.out + static_cast<size_t>(t0) * q_dim + (h0 + i) * hd, q_dim);
    }
  }
}

}  // namespace

void Attention(const Model& model, KvCache& cache, int layer, int pos0, int n, const float* q,
               const float* k, const float* v, float* out, std::vector<AttentionScratch>& scratch) {
  AttentionBatch(model, layer, {{&cache, pos0, n, q, k, v, out}}, scratch);
}

void AttentionBatch(const Model& model, int layer, const std::vector<AttentionCall>& calls,
                    std::vector<AttentionScratch>& scratch) {
  const int kv_heads = model.config().n_head_kv;
  // Where each cache's stale cells end, read before any store changes the cache.
  std::vector<int> stale_end(calls.size());
  struct Task {
    int call, g, t0, t1;
    bool store;  // the call's only block: store its keys and values first
  };
  std::vector<Task> tasks;
  for (size_t i = 0; i < calls.size(); ++i) {
    const AttentionCall& a = calls[i];
    const int n_kv = PaddedLength(a.cache->capacity(), a.pos0 + a.n);
    stale_end[i] = std::min(n_kv, a.cache->zero_from(layer));
    const int blocks = (a.n + kTokensPerTask - 1) / kTokensPerTask;
    if (blocks > 1) {  // every block reads all of the chunk's keys: store them first
      for (int g = 0; g < kv_heads; ++g) StoreKvHead(model, a, layer, g, stale_end[i]);
    }
    for (int g = 0; g < kv_heads; ++g) {
      for (int b = 0; b < blocks; ++b) {
        tasks.push_back({static_cast<int>(i), g, b * kTokensPerTask, std::min(a.n, (b + 1) * kTokensPerTask), blocks == 1});
      }
    }
  }
  if (scratch.size() < static_cast<size_t>(model.pool().size())) scratch.resize(model.pool().size());
  model.pool().ParallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t i0, int64_t i1, int thread) {
    for (int64_t i = i0; i < i1; ++i) {
      const Task& t = tasks[i];
      const AttentionCall& call = calls[t.call];
      if (t.store) StoreKvHead(model, call, layer, t.g, stale_end[t.call]);
      AttendGroup(model, layer, call, t.g, t.t0, t.t1, scratch[thread]);
    }
  });
  // Past pos0 + n all is zero now, unless stale cells remain beyond the padded length.
  for (size_t i = 0; i < calls.size(); ++i) {
    const AttentionCall& a = calls[i];
    if (a.cache->zero_from(layer) <= PaddedLength(a.cache->capacity(), a.pos0 + a.n)) {
      a.cache->set_zero_from(layer, a.pos0 + a.n);
    }
  }
}

}  // namespace bitparity
