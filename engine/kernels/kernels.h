// File: engine/kernels/kernels.h
//
// engine/kernels: the hot loops of the forward pass behind ONE dispatch table,
// chosen at run time from the CPU's features. Every entry has a scalar twin
// (kernels_scalar.cc) that computes the same numbers; the SIMD versions are tested
// against it (tests/kernels). The scalar versions are the "reference" path a server
// can force.
//
// Numerics (what "the same numbers" means):
//   - Integer results (I2_S sums) are exact: every path returns identical ints.
//   - Float results are bit-identical across paths too: each entry fixes one
//     accumulation order (documented per entry, chosen to be the order bitnet.cpp's
//     x86 build uses) and the scalar twin emulates it lane by lane with std::fma where
//     the SIMD code fuses. Kernel sources are compiled with -ffp-contract=off so the
//     compiler cannot fuse on its own.
//   - quantize_* entries are bit-exact with engine/quant's reference quantizers.
//
// Shapes and units: k is the row length in elements (the reduction dimension);
// strides are in elements of the pointed-to type unless a name says bytes. Rows are
// processed independently: the caller splits n_rows across threads. No entry
// allocates or keeps state; all are safe to call concurrently on disjoint outputs.
//
// Selection: GetKernels() returns the best path the CPU supports, unless overridden
// by ForceKernelPath() or, at first use, the environment variable
// BITPARITY_KERNELS=scalar|avx2|avx512. A request the CPU cannot run falls back to
// the best supported path below it; Kernels::path says what you got.
//
//   const Kernels& K = GetKernels();
//   float s; int32_t S;
//   K.quantize_row_i8s(x, k, q, &s, &S);                // x: [k] float -> q: [k] int8
//   K.i2s_prepare_act(q, k, qa);                        // this path's activation layout
//   K.i2s_gemv(w, k, n_rows, qa, sums);                 // w: I2_S rows, sums: [n_rows]
//   K.i2s_outputs(sums, n_rows, S, s, w_scale, y);      // y[r] = I2sOutput(sums[r], ...)
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/quant/blocks.h"

namespace bitparity {

enum class KernelPath {
  kScalar = 0,  // portable C++, the reference
  kAvx2 = 1,    // AVX2 + FMA + F16C
  kAvx512 = 2,  // AVX-512 F/BW/VL/DQ + VNNI (I2_S via vpdpbusd, F16 via 16-lane FMA)
};

// i2s_prepare_acts lays activation rows out in independent tiles of this many rows.
inline constexpr int64_t kI2sActTile = 4;

struct Kernels {
  const char* name;  // "scalar", "avx2", "avx512"
  KernelPath path;

  // ---- I2_S ternary weights x int8 activations (bitnet.cpp's ggml_vec_dot_i2_i8_s)
  // w: n_rows consecutive I2_S rows of k elements (k a multiple of 128), row r at
  // byte r * k / 4 (engine/quant/i2s.h layout). q: [k] int8 from quantize_row_i8s,
  // rearranged by THIS path's i2s_prepare_act (the scalar and AVX2 paths keep q as is;
  // AVX-512 interleaves it so that every 64-byte weight load meets its activations in
  // one 64-byte load). out[r] = sum_j code(r, j) * q[j] with raw codes 0..3, exact in
  // int32; every path returns the same integers.
  // (bitnet.cpp accumulates 32 blocks in int16 lanes, which could wrap only for
  // pathological activations (|sum| of 256 terms > 32767); these kernels never wrap.)
  void (*i2s_gemv)(const uint8_t* w, int64_t k, int64_t n_rows, const int8_t* q, int32_t* out);
  // The same for n_act activation rows at once (a batch step, batch prefill): qa is
  // all n_act rows as THIS path's i2s_prepare_acts lays them out; out[a * out_stride + r].
  // Any n_act >= 1; identical integers.
  void (*i2s_gemm)(const uint8_t* w, int64_t k, int64_t n_rows, const int8_t* qa, int64_t n_act, int32_t* out,
                   int64_t out_stride);
  // quantize_row_i8_s (engine/quant QuantizeRowI8S), fused absmax + quantize; bit-exact.
  // REQUIRES: x finite.
  void (*quantize_row_i8s)(const float* x, int64_t k, int8_t* q, float* scale, int32_t* sum);
  // q: [k] -> qa: [k], the activation layout this path's i2s_gemv/i2s_gemm read (a
  // permutation of q; k a multiple of 128). qa must not alias q.
  void (*i2s_prepare_act)(const int8_t* q, int64_t k, int8_t* qa);
  // n_act rows (row a at q + a * q_stride) -> qa: [n_act * k], the layout this path's
  // i2s_gemm reads (scalar, AVX2: the rows back to back; AVX-512 interleaves tiles of
  // 4 rows so that one weight load's partners are contiguous). qa must not alias q.
  // Tiles are independent: rows [a0, a0 + n) with a0 a multiple of 4 (kI2sActTile),
  // prepared alone, land at qa + a0 * k exactly as in the whole.
  void (*i2s_prepare_acts)(const int8_t* q, int64_t q_stride, int64_t k, int64_t n_act, int8_t* qa);

  // ---- F16 output head (token_embd rows x activation)
  // Sequential decoding (bitnet.cpp: one token, activation rounded to F16, then
  // ggml_vec_dot_f16 of the AVX-512 build): w row r at w + r * w_stride (F16 bits),
  // x: [k] F16 bits. out[r] = dot in this order: 64 float lanes, lane i % 64 takes
  // fma(w[i], x[i], lane) over i < k & ~63; lanes reduced as (l0+l2)+(l1+l3) per 16,
  // then 16 -> 8 -> 4 -> 2 -> 1 by halves; the tail k % 64 is added in double.
  void (*f16_dot_rows)(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const uint16_t* x,
                       float* out);
  // The same dot for n_x vectors at once (attention: a KV head's cache rows against
  // every query head of its group): out[a * out_stride + r] = f16_dot_rows of
  // x + a * x_stride, bit for bit. A path may read each row once for all of them.
  void (*f16_dot_rows_multi)(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const uint16_t* x,
                             int64_t x_stride, int64_t n_x, float* out, int64_t out_stride);
  // Batch (bitnet.cpp: two or more tokens go through llamafile's tinyBLAS with F32
  // activations, NOT rounded to F16): 16 float lanes, lane i % 16 takes
  // fma(w[i], x[i], lane), then reduced 16 -> 8 -> 4 -> 2 -> 1 by halves.
  // x row a at x + a * x_stride; out[a * out_stride + r]. REQUIRES: k % 16 == 0.
  // (bitnet.cpp uses this only when n_act >= 2; with one token use f16_dot_rows.)
  void (*f16_gemm_f32)(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const float* x,
                       int64_t x_stride, int64_t n_act, float* out, int64_t out_stride);

  // ---- Int8 output head (opt-in and numerics-changing: ModelOptions::head = kInt8)
  // w: n_rows rows of k int8 (row r at w + r * k); row_sums[r] = the sum of row r
  // (a path may use it to move x into unsigned range); w in [-127, 127]; x: [k] int8.
  // out[r] = sum_j w[r][j] * x[j], exact in int32 on every path. REQUIRES k <= 65536.
  void (*i8_gemv)(const int8_t* w, const int32_t* row_sums, int64_t k, int64_t n_rows, const int8_t* x,
                  int32_t* out);
  // The same for n_act activations at once (the screened head of a batched step):
  // out[a][r] = sum_j w[r][j] * x[a][j] for a < n_act, the same integers as i8_gemv
  // on each x[a]. Each block of weight rows is read once for all activations.
  void (*i8_gemm)(const int8_t* w, const int32_t* row_sums, int64_t k, int64_t n_rows, int n_act,
                  const int8_t* const* x, int32_t* const* out);

  // ---- TQ1_0 / TQ2_0 weights x Q8_K activations (ggml_vec_dot_tq{1,2}_0_q8_K)
  // w: n_rows rows of k / 256 blocks each (row r at block r * k / 256); y: [k / 256]
  // Q8_K blocks. out[r] = the AVX2 build's order: per block 8 exact int32 lanes
  // (lane e: elements with index % 32 in [4e, 4e+4), code * y, minus bsums[2e] and
  // bsums[2e+1]); acc[e] += (float)lane * (y.d * d_w) as a product then a sum (no FMA);
  // finally (acc[e] + acc[e+4]), then pairs (0+2, 1+3), then the two.
  void (*tq1_0_q8k_dot)(const BlockTq1_0* w, int64_t k, int64_t n_rows, const BlockQ8K* y, float* out);
  void (*tq2_0_q8k_dot)(const BlockTq2_0* w, int64_t k, int64_t n_rows, const BlockQ8K* y, float* out);
  // quantize_row_q8_K (engine/quant QuantizeRowQ8K); bit-exact. k % 256 == 0.
  void (*quantize_row_q8k)(const float* x, int64_t k, BlockQ8K* y);

  // ---- Conversions (exact; F16C semantics, see engine/quant/fp16.h)
  void (*fp16_to_fp32_row)(const uint16_t* x, float* y, int64_t n);
  void (*fp32_to_fp16_row)(const float* x, uint16_t* y, int64_t n);

  // ---- Softmax numerator (ggml_vec_soft_max_f32 of the AVX-512 build)
  // y[i] = exp(x[i] - max) and returns their sum: in chunks of 16, exp is ggml's
  // vectorised approximation (ggml_v_expf: a degree-5 polynomial with 2^n scaling,
  // within ~1 ulp of expf) and each chunk's sum is reduced like
  // _mm512_reduce_add_ps and added in double; the n % 16 tail uses libm expf and
  // double adds. x[i] may be -inf (a masked score), giving 0.
  double (*softmax_exp)(const float* x, float max, float* y, int64_t n);

  // ---- RMS norm's sum of squares (ggml_rms_norm_f32)
  // sums[r] = the squares (float products) of row r (at x + r * x_stride, n values)
  // added one by one, in order, to a double: ggml's loop, exactly. A path may run
  // several rows' chains side by side (one double lane each); each row keeps its order.
  void (*sum_squares_rows)(const float* x, int64_t x_stride, int64_t n_rows, int64_t n, double* sums);

  // ---- I2_S products' float outputs (engine/quant/i2s.h I2sOutput)
  // y[r] = ((float)sums[r] - (float)act_sum) / act_scale * w_scale for r < n: the same
  // IEEE operations per value on every path (one division each: a batch step has
  // ~24K outputs per row and layer, which the scalar loop spent ~2 ms on).
  void (*i2s_outputs)(const int32_t* sums, int64_t n, int32_t act_sum, float act_scale, float w_scale, float* y);

  // ---- RoPE rotation (ggml_rope of bitnet.cpp's clang build)
  // Rotates n_heads head vectors in place (head h at x + h * head_stride) by one
  // position's cache of n_rot / 2 (cos, sin) pairs: pairs (i, i + n_rot / 2) when
  // neox, else (2i, 2i + 1); y0 = fma(x0, c, -(x1 * s)), y1 = fma(x0, s, x1 * c)
  // (clang contracts ggml's `x0*c - x1*s` and `x0*s + x1*c` so). n_rot is even.
  void (*rope_heads)(const float* cache, int n_rot, bool neox, float* x, int n_heads, int64_t head_stride);

  // ---- The screened head's bound per row (engine/model/screened_head.h, (c))
  // For r < n, in double, operation by operation (no fused multiply-add):
  //   approx = (double)isum[r] * (double)scale[r] * inv_t
  //   b = (double)slope_x[r] * x_norm + (double)slope_d[r] * d_norm
  //   b = (b + 2^-50 * (|approx| + b)) * bound_scale
  //   lo[r] = approx - b, hi[r] = approx + b; -inf and +inf where approx or b is not
  //   finite. (A batched step bounds 128K rows per sequence: the scalar loop took ~1 ms
  //   of an 8-row step.)
  void (*screen_bounds)(const int32_t* isum, const float* scale, const float* slope_x, const float* slope_d,
                        int64_t n, double inv_t, double x_norm, double d_norm, double bound_scale, double* lo,
                        double* hi);
};

// The table in use (best supported path, or the override). Cheap: one atomic load.
const Kernels& GetKernels();

// The table of `path`, or of the best supported path below it.
const Kernels& KernelsFor(KernelPath path);

// Whether this CPU/OS can run `path`.
bool KernelPathSupported(KernelPath path);

// The best path this CPU supports.
KernelPath BestKernelPath();

// Makes GetKernels() return KernelsFor(*path) from now on (nullopt: back to the
// environment / best choice). Affects all threads; call it before starting work.
void ForceKernelPath(std::optional<KernelPath> path);

// "scalar" | "avx2" | "avx512" -> path; InvalidArgument otherwise.
absl::StatusOr<KernelPath> ParseKernelPath(std::string_view name);

const char* KernelPathName(KernelPath path);

}  // namespace bitparity
