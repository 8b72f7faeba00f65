#include "engine/model/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/fp16.h"

namespace bitparity {

KvCache::KvCache(const ModelConfig& c, int max_context)
    : n_head_kv_(c.n_head_kv), head_dim_(c.head_dim), capacity_((max_context + 255) / 256 * 256) {
  const size_t n = static_cast<size_t>(c.n_layer) * c.n_head_kv * capacity_ * c.head_dim;
  k_.assign(n, 0);
  v_.assign(n, 0);
  zero_from_.assign(c.n_layer, 0);
}

namespace {

// The n new tokens' keys and values into the cache, rounded to F16 as ggml_cpy into
// the cache does; the cells after them up to the padded attention length must hold
// zeros (they are read with weight 0, and an old inf there would give NaN): those an
// earlier use of the cache left non-zero are cleared. Clearing all of them on every
// step cost a decode step ~30 strided stores per V value, on one thread.
void StoreKv(const Model& model, KvCache& cache, int layer, int pos0, int n, const float* k, const float* v) {
  const ModelConfig& c = model.config();
  const Kernels& kern = model.kernels();
  const int hd = c.head_dim;
  const int kv_dim = c.kv_dim();
  const int cap = cache.capacity();
  const int n_kv = std::min(cap, std::max(32, (pos0 + n + 31) / 32 * 32));
  const int zero_from = cache.zero_from(layer);
  const int stale_end = std::min(n_kv, zero_from);  // [pos0 + n, stale_end) may be non-zero
  for (int g = 0; g < c.n_head_kv; ++g) {
    uint16_t* kc = cache.K(layer, g);
    uint16_t* vt = cache.Vt(layer, g);
    for (int t = 0; t < n; ++t) {
      const size_t pos = static_cast<size_t>(pos0 + t);
      kern.fp32_to_fp16_row(k + static_cast<size_t>(t) * kv_dim + g * hd, kc + pos * hd, hd);
      for (int d = 0; d < hd; ++d) vt[static_cast<size_t>(d) * cap + pos] = Fp32ToFp16(v[static_cast<size_t>(t) * kv_dim + g * hd + d]);
    }
    // Cells past the sequence are read (with weight 0) up to n_kv: keep them zero.
    for (int pos = pos0 + n; pos < stale_end; ++pos) {
      std::fill(kc + static_cast<size_t>(pos) * hd, kc + static_cast<size_t>(pos + 1) * hd, 0);
      for (int d = 0; d < hd; ++d) vt[static_cast<size_t>(d) * cap + pos] = 0;
    }
  }
  // Past pos0 + n all is zero now, unless stale cells remain beyond n_kv.
  if (zero_from <= n_kv) cache.set_zero_from(layer, pos0 + n);
}

// Query head h of the n tokens of `call` over the cache (whose keys and values for
// them are stored).
void AttendHead(const Model& model, int layer, const AttentionCall& call, int h, AttentionScratch& s) {
  const ModelConfig& c = model.config();
  const Kernels& kern = model.kernels();
  const int hd = c.head_dim;
  const int q_dim = c.q_dim();
  const int cap = call.cache->capacity();
  const int pos0 = call.pos0, n = call.n;
  // llama.cpp attends over the used cells rounded up to 32 (at least 32).
  const int n_kv = std::min(cap, std::max(32, (pos0 + n + 31) / 32 * 32));
  const int group = c.n_head / c.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  s.q16.resize(static_cast<size_t>(n) * hd);
  s.scores.resize(static_cast<size_t>(n) * n_kv);
  s.p16.resize(n_kv);
  s.out.resize(static_cast<size_t>(n) * hd);
  const int g = h / group;
  const uint16_t* kc = call.cache->K(layer, g);
  const uint16_t* vt = call.cache->Vt(layer, g);
  for (int t = 0; t < n; ++t) {
    kern.fp32_to_fp16_row(call.q + static_cast<size_t>(t) * q_dim + h * hd, s.q16.data() + static_cast<size_t>(t) * hd, hd);
    float* row = s.scores.data() + static_cast<size_t>(t) * n_kv;
    // scores[j] = q_t · k_j
    kern.f16_dot_rows(kc, hd, n_kv, hd, s.q16.data() + static_cast<size_t>(t) * hd, row);
    // Scale, causal mask (-inf), softmax over all n_kv cells, as ggml's soft_max
    // does it (engine/kernels: softmax_exp).
    const int visible = pos0 + t + 1;
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
  // out[t][d] = Σ_j p[t][j] · v[j][d]
  if (n == 1) {
    kern.fp32_to_fp16_row(s.scores.data(), s.p16.data(), n_kv);
    kern.f16_dot_rows(vt, cap, hd, n_kv, s.p16.data(), s.out.data());
  } else {
    kern.f16_gemm_f32(vt, cap, hd, n_kv, s.scores.data(), n_kv, n, s.out.data(), hd);
  }
  for (int t = 0; t < n; ++t) {
    std::copy(s.out.data() + static_cast<size_t>(t) * hd, s.out.data() + static_cast<size_t>(t + 1) * hd,
              call.out + static_cast<size_t>(t) * q_dim + h * hd);
  }
}

}  // namespace

void Attention(const Model& model, KvCache& cache, int layer, int pos0, int n, const float* q,
               const float* k, const float* v, float* out, std::vector<AttentionScratch>& scratch) {
  AttentionBatch(model, layer, {{&cache, pos0, n, k, v}}, {{&cache, pos0, n, q, out}}, scratch);
}

void AttentionBatch(const Model& model, int layer, const std::vector<KvWrite>& writes,
                    const std::vector<AttentionCall>& calls, std::vector<AttentionScratch>& scratch) {
  for (const KvWrite& w : writes) StoreKv(model, *w.cache, layer, w.pos0, w.n, w.k, w.v);
  const int64_t heads = model.config().n_head;
  if (scratch.size() < static_cast<size_t>(model.pool().size())) scratch.resize(model.pool().size());
  model.pool().ParallelFor(static_cast<int64_t>(calls.size()) * heads, [&](int64_t i0, int64_t i1, int thread) {
    for (int64_t i = i0; i < i1; ++i) {
      AttendHead(model, layer, calls[i / heads], static_cast<int>(i % heads), scratch[thread]);
    }
  });
}

}  // namespace bitparity
