// The scalar twins: portable C++ that reproduces each SIMD kernel's result exactly,
// including the float lane order (std::fma where the SIMD code fuses).
#include <cmath>
#include <cstring>

#include "engine/kernels/kernels_internal.h"
#include "base/fp16.h"
#include "engine/quant/i2s.h"
#include "engine/quant/q8.h"
#include "engine/quant/ternary.h"

namespace bitparity::kernels_internal {
namespace {

void I2sGemv(const uint8_t* w, int64_t k, int64_t n_rows, const int8_t* q, int32_t* out) {
  for (int64_t r = 0; r < n_rows; ++r) out[r] = I2sDotRow(w + r * (k / 4), q, k);
}

void I2sGemm(const uint8_t* w, int64_t k, int64_t n_rows, const int8_t* q, int64_t n_act, int32_t* out,
             int64_t out_stride) {
  for (int64_t a = 0; a < n_act; ++a) I2sGemv(w, k, n_rows, q + a * k, out + a * out_stride);
}

void I8Gemv(const int8_t* w, const int32_t* /*row_sums*/, int64_t k, int64_t n_rows, const int8_t* x, int32_t* out) {
  for (int64_t r = 0; r < n_rows; ++r) {
    int32_t sum = 0;
    for (int64_t j = 0; j < k; ++j) sum += static_cast<int32_t>(w[r * k + j]) * x[j];
    out[r] = sum;
  }
}

// One activation after the other (this path's i8_gemv); the AVX-512 path shares weight loads.
void I8Gemm(const int8_t* w, const int32_t* row_sums, int64_t k, int64_t n_rows, int n_act, const int8_t* const* x,
            int32_t* const* out) {
  for (int a = 0; a < n_act; ++a) I8Gemv(w, row_sums, k, n_rows, x[a], out[a]);
}

// ggml_vec_dot_f16 (AVX-512 build): 4 x 16 lanes, FMA, tail in double.
float DotF16Ggml(const uint16_t* w, const uint16_t* x, int64_t k) {
  float lanes[64] = {};
  const int64_t np = k & ~int64_t{63};
  for (int64_t i = 0; i < np; i += 64) {
    for (int l = 0; l < 64; ++l) lanes[l] = std::fma(Fp16ToFp32(w[i + l]), Fp16ToFp32(x[i + l]), lanes[l]);
  }
  float acc[16];
  for (int e = 0; e < 16; ++e) {
    const float s02 = lanes[e] + lanes[32 + e];
    const float s13 = lanes[16 + e] + lanes[48 + e];
    acc[e] = s02 + s13;
  }
  double sum = ReduceAdd16(acc);
  for (int64_t i = np; i < k; ++i) {
    const float p = Fp16ToFp32(w[i]) * Fp16ToFp32(x[i]);
    sum += static_cast<double>(p);
  }
  return static_cast<float>(sum);
}

void F16DotRows(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const uint16_t* x, float* out) {
  for (int64_t r = 0; r < n_rows; ++r) out[r] = DotF16Ggml(w + r * w_stride, x, k);
}

// tinyBLAS (AVX-512): one 16-lane FMA accumulator per output, then reduce.
float DotF16F32TinyBlas(const uint16_t* w, const float* x, int64_t k) {
  float lanes[16] = {};
  for (int64_t i = 0; i < k; i += 16) {
    for (int l = 0; l < 16; ++l) lanes[l] = std::fma(Fp16ToFp32(w[i + l]), x[i + l], lanes[l]);
  }
  return ReduceAdd16(lanes);
}

void F16GemmF32(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const float* x, int64_t x_stride,
                int64_t n_act, float* out, int64_t out_stride) {
  for (int64_t a = 0; a < n_act; ++a) {
    for (int64_t r = 0; r < n_rows; ++r) out[a * out_stride + r] = DotF16F32TinyBlas(w + r * w_stride, x + a * x_stride, k);
  }
}

// ggml's AVX2 TQ x Q8_K accumulation: 8 int32 lanes per block (see kernels.h).
template <typename Block, void (*Decode)(const Block&, uint8_t*)>
float DotTernaryQ8KAvx2Order(const Block* x, const BlockQ8K* y, int64_t k) {
  float acc[8] = {};
  uint8_t t[kQK_K];
  for (int64_t b = 0; b < k / kQK_K; ++b) {
    Decode(x[b], t);
    int32_t lane[8] = {};
    for (int i = 0; i < kQK_K; ++i) lane[(i % 32) / 4] += t[i] * y[b].qs[i];
    for (int e = 0; e < 8; ++e) lane[e] -= y[b].bsums[2 * e] + y[b].bsums[2 * e + 1];
    const float d = y[b].d * Fp16ToFp32(x[b].d);
    for (int e = 0; e < 8; ++e) {
      const float p = static_cast<float>(lane[e]) * d;
      acc[e] = p + acc[e];
    }
  }
  return HsumFloat8(acc);
}

void Tq1Dot(const BlockTq1_0* w, int64_t k, int64_t n_rows, const BlockQ8K* y, float* out) {
  for (int64_t r = 0; r < n_rows; ++r) {
    out[r] = DotTernaryQ8KAvx2Order<BlockTq1_0, DecodeTq1_0Block>(w + r * (k / kQK_K), y, k);
  }
}

void Tq2Dot(const BlockTq2_0* w, int64_t k, int64_t n_rows, const BlockQ8K* y, float* out) {
  for (int64_t r = 0; r < n_rows; ++r) {
    out[r] = DotTernaryQ8KAvx2Order<BlockTq2_0, DecodeTq2_0Block>(w + r * (k / kQK_K), y, k);
  }
}

void Fp16ToFp32Row(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Fp16ToFp32(x[i]);
}

void Fp32ToFp16Row(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = Fp32ToFp16(x[i]);
}

void QuantizeRowQ8KRow(const float* x, int64_t k, BlockQ8K* y) { QuantizeRowQ8K(x, y, k); }

}  // namespace

double SoftmaxExpScalar(const float* x, float max, float* y, int64_t n) {
  double sum = 0.0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int l = 0; l < 16; ++l) y[i + l] = GgmlExpf(x[i + l] - max);
    sum += static_cast<double>(ReduceAdd16(y + i));
  }
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - max);
    sum += static_cast<double>(y[i]);
  }
  return sum;
}

const Kernels& ScalarKernels() {
  static const Kernels k = {
      "scalar",       KernelPath::kScalar, I2sGemv, I2sGemm, QuantizeRowI8S, I2sPrepareActIdentity, I2sPrepareActsIdentity, F16DotRows, F16DotRowsEachX<F16DotRows>,
      F16GemmF32, I8Gemv, I8Gemm,
      Tq1Dot,         Tq2Dot,              QuantizeRowQ8KRow, Fp16ToFp32Row, Fp32ToFp16Row,
      SoftmaxExpScalar, SumSquaresRowsScalar, I2sOutputsScalar, RopeHeadsScalar, ScreenBoundsScalar,
  };
  return k;
}

}  // namespace bitparity::kernels_internal
