#include "engine/model/linear.h"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "engine/quant/blocks.h"
#include "base/fp16.h"
#include "engine/quant/q8.h"
#include "engine/quant/ternary.h"

namespace bitparity {
namespace {

// Rows handed to one thread at a time never go below this, so tiny matrices are not
// split into slivers whose wake-up costs more than the work.
constexpr int64_t kMinRowsPerThread = 16;

// x quantized for I2_S products, per token, into s.q / s.act_scale / s.act_sum, and
// laid out for the kernels in s.qa (i2s_prepare_act for one token, i2s_prepare_acts'
// tiles for several).
void QuantizeForI2S(const Model& model, const float* x, int n, int64_t cols, LinearScratch& s) {
  const Kernels& k = model.kernels();
  s.q.resize(static_cast<size_t>(n) * cols);
  s.qa.resize(static_cast<size_t>(n) * cols);
  s.act_scale.resize(n);
  s.act_sum.resize(n);
  if (n == 1) {
    k.quantize_row_i8s(x, cols, s.q.data(), &s.act_scale[0], &s.act_sum[0]);
    k.i2s_prepare_act(s.q.data(), cols, s.qa.data());
    return;
  }
  // Tiles of kI2sActTile tokens are independent (kernels.h), so threads take whole tiles.
  const int64_t n_tiles = (n + kI2sActTile - 1) / kI2sActTile;
  auto quantize = [&](int64_t g0, int64_t g1, int) {
    const int64_t t0 = g0 * kI2sActTile, t1 = std::min<int64_t>(n, g1 * kI2sActTile);
    for (int64_t t = t0; t < t1; ++t) {
      k.quantize_row_i8s(x + t * cols, cols, s.q.data() + t * cols, &s.act_scale[t], &s.act_sum[t]);
    }
    k.i2s_prepare_acts(s.q.data() + t0 * cols, cols, cols, t1 - t0, s.qa.data() + t0 * cols);
  };
  // A thread takes at least ~64K values (less work than that costs more to hand over
  // than to do: a batched decode step's 8 rows quantize inline; ~8K values per thread
  // was 0.6% slower on the 8-row step, one process alternating).
  const int64_t min_tiles = std::max<int64_t>(1, 65536 / (cols * kI2sActTile));
  if (n_tiles <= min_tiles) {
    quantize(0, n_tiles, 0);
  } else {
    model.pool().ParallelFor(n_tiles, quantize, min_tiles);
  }
}

// At least ~32 KB of weight passes (rows x tokens) per thread: the tiny fixture
// models' matrices are a few KB, where a hand-over costs more than the product.
int64_t MinI2SRowsPerThread(const WeightMatrix& w, int n) {
  return std::max<int64_t>(kMinRowsPerThread,
                           32768 / std::max<int64_t>(1, static_cast<int64_t>(w.row_bytes) * n));
}

// Rows [r0, r1) of y = W x, from the activations QuantizeForI2S left in s.
void I2SRows(const Kernels& k, const WeightMatrix& w, int64_t r0, int64_t r1, int n, const LinearScratch& s,
             float* y) {
  const int64_t m = r1 - r0, cols = w.cols;
  // One pass over these weight rows for all tokens (gemm), or the single-token gemv;
  // both give the same integers.
  thread_local std::vector<int32_t> sums;
  sums.resize(static_cast<size_t>(m) * n);
  if (n == 1) {
    k.i2s_gemv(w.data + r0 * w.row_bytes, cols, m, s.qa.data(), sums.data());
  } else {
    k.i2s_gemm(w.data + r0 * w.row_bytes, cols, m, s.qa.data(), n, sums.data(), m);
  }
  for (int t = 0; t < n; ++t) {
    k.i2s_outputs(sums.data() + static_cast<size_t>(t) * m, m, s.act_sum[t], s.act_scale[t], w.i2s_scale,
                  y + static_cast<int64_t>(t) * w.rows + r0);
  }
}

void LinearI2S(const Model& model, const WeightMatrix& w, const float* x, int n, float* y, LinearScratch& s) {
  QuantizeForI2S(model, x, n, w.cols, s);
  model.pool().ParallelFor(
      w.rows, [&](int64_t r0, int64_t r1, int) { I2SRows(model.kernels(), w, r0, r1, n, s, y); },
      MinI2SRowsPerThread(w, n));
}

// TQ1_0 / TQ2_0 weights: activations quantized to Q8_K blocks, then ggml's block dot.
template <typename WBlock, typename DotFn>
void LinearTernaryBlocks(const Model& model, const WeightMatrix& w, const float* x, int n, float* y,
                         LinearScratch& s, DotFn dot) {
  const Kernels& k = model.kernels();
  const int64_t cols = w.cols;
  const int64_t nb = cols / kQK_K;
  s.blocks.resize(static_cast<size_t>(n) * nb * sizeof(BlockQ8K));
  BlockQ8K* xq = reinterpret_cast<BlockQ8K*>(s.blocks.data());
  for (int t = 0; t < n; ++t) k.quantize_row_q8k(x + t * cols, cols, xq + t * nb);
  model.pool().ParallelFor(
      w.rows,
      [&](int64_t r0, int64_t r1, int) {
        thread_local std::vector<float> out;
        out.resize(static_cast<size_t>(r1 - r0));
        for (int t = 0; t < n; ++t) {
          dot(reinterpret_cast<const WBlock*>(w.Row(r0)), cols, r1 - r0, xq + t * nb, out.data());
          std::memcpy(y + static_cast<int64_t>(t) * w.rows + r0, out.data(), out.size() * sizeof(float));
        }
      },
      kMinRowsPerThread);
}

// Q8_0 weights: activations quantized to Q8_0 blocks (ggml's vec_dot_type for Q8_0).
void LinearQ8_0(const Model& model, const WeightMatrix& w, const float* x, int n, float* y, LinearScratch& s) {
  const int64_t cols = w.cols;
  const int64_t nb = cols / kQK8_0;
  s.blocks.resize(static_cast<size_t>(n) * nb * sizeof(BlockQ8_0));
  BlockQ8_0* xq = reinterpret_cast<BlockQ8_0*>(s.blocks.data());
  for (int t = 0; t < n; ++t) QuantizeRowQ8_0(x + t * cols, xq + t * nb, cols);
  model.pool().ParallelFor(
      w.rows,
      [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) {
          const BlockQ8_0* row = reinterpret_cast<const BlockQ8_0*>(w.Row(r));
          for (int t = 0; t < n; ++t) y[static_cast<int64_t>(t) * w.rows + r] = DotQ8_0Q8_0(row, xq + t * nb, cols);
        }
      },
      kMinRowsPerThread);
}

// F16 weights. ggml (with llamafile, as bitnet.cpp builds it) multiplies a batch of
// two or more activation rows in F32 through tinyBLAS, but a single row by rounding it
// to F16 first (ggml_vec_dot_f16); `ggml_rows` is the row count ggml would see.
void LinearF16(const Model& model, const WeightMatrix& w, const float* x, int n, float* y, LinearScratch& s,
               int ggml_rows) {
  const Kernels& k = model.kernels();
  const int64_t cols = w.cols;
  const uint16_t* wd = reinterpret_cast<const uint16_t*>(w.data);
  const int64_t stride = static_cast<int64_t>(w.row_bytes / sizeof(uint16_t));
  if (ggml_rows >= 2 && cols % 16 == 0) {
    model.pool().ParallelFor(
        w.rows,
        [&](int64_t r0, int64_t r1, int) {
          k.f16_gemm_f32(wd + r0 * stride, stride, r1 - r0, cols, x, cols, n, y + r0, w.rows);
        },
        kMinRowsPerThread);
    return;
  }
  s.blocks.resize(static_cast<size_t>(n) * cols * sizeof(uint16_t));
  uint16_t* xh = reinterpret_cast<uint16_t*>(s.blocks.data());
  for (int t = 0; t < n; ++t) k.fp32_to_fp16_row(x + t * cols, xh + t * cols, cols);
  // Several tokens (a batch step of decode rows, each rounded as if alone): blocks of
  // kF16BlockRows weight rows stay in L2 while every token reads them, so the head is
  // read from memory once per step.
  constexpr int64_t kF16BlockRows = 64;
  model.pool().ParallelFor(
      w.rows,
      [&](int64_t r0, int64_t r1, int) {
        for (int64_t b0 = r0; b0 < r1; b0 += kF16BlockRows) {
          const int64_t b1 = std::min(r1, b0 + kF16BlockRows);
          for (int t = 0; t < n; ++t) {
            k.f16_dot_rows(wd + b0 * stride, stride, b1 - b0, cols, xh + t * cols,
                           y + static_cast<int64_t>(t) * w.rows + b0);
          }
        }
      },
      kMinRowsPerThread);
}

void LinearBF16(const Model& model, const WeightMatrix& w, const float* x, int n, float* y,
                LinearScratch& s) {
  const int64_t cols = w.cols;
  s.blocks.resize(static_cast<size_t>(n) * cols * sizeof(float));
  float* xr = reinterpret_cast<float*>(s.blocks.data());
  for (int64_t i = 0; i < n * cols; ++i) xr[i] = Bf16ToFp32(Fp32ToBf16(x[i]));
  model.pool().ParallelFor(
      w.rows,
      [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) {
          const uint16_t* row = reinterpret_cast<const uint16_t*>(w.Row(r));
          for (int t = 0; t < n; ++t) {
            const float* xt = xr + t * cols;
            float sum = 0.0f;
            for (int64_t i = 0; i < cols; ++i) sum += Bf16ToFp32(row[i]) * xt[i];
            y[static_cast<int64_t>(t) * w.rows + r] = sum;
          }
        }
      },
      kMinRowsPerThread);
}

void LinearF32(const Model& model, const WeightMatrix& w, const float* x, int n, float* y) {
  const float* wd = reinterpret_cast<const float*>(w.data);
  model.pool().ParallelFor(
      w.rows,
      [&](int64_t r0, int64_t r1, int) {
        // y[t][r0:r1] = x[t][:] · W[r0:r1][:]^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, static_cast<int>(r1 - r0),
                    static_cast<int>(w.cols), 1.0f, x, static_cast<int>(w.cols), wd + r0 * w.cols,
                    static_cast<int>(w.cols), 0.0f, y + r0, static_cast<int>(w.rows));
      },
      kMinRowsPerThread);
}

}  // namespace

void Linear(const Model& model, const WeightMatrix& w, const float* x, int n_tokens, float* y,
            LinearScratch& s, int ggml_rows) {
  if (ggml_rows <= 0) ggml_rows = n_tokens;
  switch (w.type) {
    case GgmlType::kI2_S:
      LinearI2S(model, w, x, n_tokens, y, s);
      break;
    case GgmlType::kTQ2_0:
      LinearTernaryBlocks<BlockTq2_0>(model, w, x, n_tokens, y, s, model.kernels().tq2_0_q8k_dot);
      break;
    case GgmlType::kTQ1_0:
      LinearTernaryBlocks<BlockTq1_0>(model, w, x, n_tokens, y, s, model.kernels().tq1_0_q8k_dot);
      break;
    case GgmlType::kQ8_0:
      LinearQ8_0(model, w, x, n_tokens, y, s);
      break;
    case GgmlType::kF16:
      LinearF16(model, w, x, n_tokens, y, s, ggml_rows);
      break;
    case GgmlType::kBF16:
      LinearBF16(model, w, x, n_tokens, y, s);
      break;
    case GgmlType::kF32:
      LinearF32(model, w, x, n_tokens, y);
      break;
    default:
      // Weights::Bind admits only the types above.
      break;
  }
}

void LinearShared(const Model& model, absl::Span<const LinearOutput> outs, const float* x, int n_tokens,
                  LinearScratch& s) {
  if (outs.empty()) return;
  const WeightMatrix& first = *outs[0].w;
  bool fused = first.type == GgmlType::kI2_S;
  for (const LinearOutput& o : outs) fused = fused && o.w->type == GgmlType::kI2_S && o.w->cols == first.cols;
  if (!fused) {
    for (const LinearOutput& o : outs) Linear(model, *o.w, x, n_tokens, o.y, s);
    return;
  }
  QuantizeForI2S(model, x, n_tokens, first.cols, s);
  int64_t total = 0;
  for (const LinearOutput& o : outs) total += o.w->rows;
  // The matrices' rows, end to end, as one range: a chunk may span two of them.
  model.pool().ParallelFor(
      total,
      [&](int64_t g0, int64_t g1, int) {
        int64_t offset = 0;
        for (const LinearOutput& o : outs) {
          const int64_t a = std::max(g0, offset), b = std::min(g1, offset + o.w->rows);
          if (a < b) I2SRows(model.kernels(), *o.w, a - offset, b - offset, n_tokens, s, o.y);
          offset += o.w->rows;
        }
      },
      MinI2SRowsPerThread(first, n_tokens));
}

bool RowInvariantType(GgmlType t) {
  return t == GgmlType::kI2_S || t == GgmlType::kTQ1_0 || t == GgmlType::kTQ2_0 || t == GgmlType::kQ8_0 ||
         t == GgmlType::kBF16;
}

void EmbeddingRow(const WeightMatrix& w, int32_t id, float* out) {
  const uint8_t* row = w.Row(id);
  const int64_t n = w.cols;
  switch (w.type) {
    case GgmlType::kF32:
      std::memcpy(out, row, n * sizeof(float));
      break;
    case GgmlType::kF16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) out[i] = Fp16ToFp32(h[i]);
      break;
    }
    case GgmlType::kBF16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < n; ++i) out[i] = Bf16ToFp32(h[i]);
      break;
    }
    case GgmlType::kQ8_0:
      DequantizeRowQ8_0(reinterpret_cast<const BlockQ8_0*>(row), out, n);
      break;
    case GgmlType::kTQ1_0:
      DequantizeRowTq1_0(reinterpret_cast<const BlockTq1_0*>(row), out, n);
      break;
    case GgmlType::kTQ2_0:
      DequantizeRowTq2_0(reinterpret_cast<const BlockTq2_0*>(row), out, n);
      break;
    default:
      break;
  }
}

}  // namespace bitparity
