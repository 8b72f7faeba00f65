// AVX2 + FMA + F16C kernels. Compiled with ${BP_SIMD_AVX2_FLAGS} and
// -ffp-contract=off; only called after kernels.cc has checked the CPU.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/kernels/kernels_internal.h"
#include "base/fp16.h"
#include "engine/quant/i2s.h"

namespace bitparity::kernels_internal {
namespace {

inline int32_t HsumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// 16 float lanes (lo = lanes 0..7, hi = 8..15) reduced like _mm512_reduce_add_ps.
inline float Reduce16(__m256 lo, __m256 hi) {
  const __m256 t8 = _mm256_add_ps(hi, lo);
  __m128 t4 = _mm_add_ps(_mm256_extractf128_ps(t8, 1), _mm256_castps256_ps128(t8));
  t4 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
  t4 = _mm_add_ss(t4, _mm_movehdup_ps(t4));
  return _mm_cvtss_f32(t4);
}

// ggml's hsum_float_8.
inline float Hsum8(__m256 x) {
  __m128 r = _mm_add_ps(_mm256_extractf128_ps(x, 1), _mm256_castps256_ps128(x));
  r = _mm_add_ps(r, _mm_movehl_ps(r, r));
  r = _mm_add_ss(r, _mm_movehdup_ps(r));
  return _mm_cvtss_f32(r);
}

// ---------------------------------------------------------------- I2_S
// One 128-element block: codes (u8 0..3) x q (s8) summed into int16 lanes.
// Per block a lane gains at most 4 * 2 * 3 * 128 = 3072 in magnitude, so 8 blocks fit
// in int16 before widening.
constexpr int64_t kI2sBlocksPerWiden = 8;

inline __m256i I2sBlock16(__m256i x, const __m256i y[4]) {
  const __m256i m = _mm256_set1_epi8(3);
  const __m256i c0 = _mm256_and_si256(_mm256_srli_epi16(x, 6), m);
  const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(x, 4), m);
  const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(x, 2), m);
  const __m256i c3 = _mm256_and_si256(x, m);
  const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(c0, y[0]), _mm256_maddubs_epi16(c1, y[1]));
  const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(c2, y[2]), _mm256_maddubs_epi16(c3, y[3]));
  return _mm256_add_epi16(s01, s23);
}

// R weight rows x one activation row.
template <int R>
void I2sRowsAvx2(const uint8_t* w, int64_t row_bytes, int64_t nb, const int8_t* q, int32_t* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc32[R];
  for (int i = 0; i < R; ++i) acc32[i] = _mm256_setzero_si256();
  for (int64_t b0 = 0; b0 < nb; b0 += kI2sBlocksPerWiden) {
    const int64_t b1 = std::min(nb, b0 + kI2sBlocksPerWiden);
    __m256i acc16[R];
    for (int i = 0; i < R; ++i) acc16[i] = _mm256_setzero_si256();
    for (int64_t b = b0; b < b1; ++b) {
      const int8_t* qb = q + b * 128;
      const __m256i y[4] = {_mm256_loadu_si256((const __m256i*)qb), _mm256_loadu_si256((const __m256i*)(qb + 32)),
                            _mm256_loadu_si256((const __m256i*)(qb + 64)),
                            _mm256_loadu_si256((const __m256i*)(qb + 96))};
      for (int i = 0; i < R; ++i) {
        const __m256i x = _mm256_loadu_si256((const __m256i*)(w + i * row_bytes + b * 32));
        acc16[i] = _mm256_add_epi16(acc16[i], I2sBlock16(x, y));
      }
    }
    for (int i = 0; i < R; ++i) acc32[i] = _mm256_add_epi32(acc32[i], _mm256_madd_epi16(acc16[i], ones));
  }
  for (int i = 0; i < R; ++i) out[i] = HsumI32(acc32[i]);
}

// One row at a time, so the weights stream in address order: interleaving 4 rows left
// the hardware prefetchers behind (2b4t-shape decode, 2 threads: 12.5 -> 20.4 tok/s).
void I2sGemv(const uint8_t* w, int64_t k, int64_t n_rows, const int8_t* q, int32_t* out) {
  const int64_t row_bytes = k / 4, nb = k / 128;
  for (int64_t r = 0; r < n_rows; ++r) I2sRowsAvx2<1>(w + r * row_bytes, row_bytes, nb, q, out + r);
}

// One weight row x A activation rows: the codes are unpacked once per block.
template <int A>
void I2sRowActsAvx2(const uint8_t* w, int64_t nb, const int8_t* q, int64_t q_stride, int32_t* out,
                    int64_t out_stride) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i m = _mm256_set1_epi8(3);
  __m256i acc32[A];
  for (int a = 0; a < A; ++a) acc32[a] = _mm256_setzero_si256();
  for (int64_t b0 = 0; b0 < nb; b0 += kI2sBlocksPerWiden) {
    const int64_t b1 = std::min(nb, b0 + kI2sBlocksPerWiden);
    __m256i acc16[A];
    for (int a = 0; a < A; ++a) acc16[a] = _mm256_setzero_si256();
    for (int64_t b = b0; b < b1; ++b) {
      const __m256i x = _mm256_loadu_si256((const __m256i*)(w + b * 32));
      const __m256i c[4] = {_mm256_and_si256(_mm256_srli_epi16(x, 6), m), _mm256_and_si256(_mm256_srli_epi16(x, 4), m),
                            _mm256_and_si256(_mm256_srli_epi16(x, 2), m), _mm256_and_si256(x, m)};
      for (int a = 0; a < A; ++a) {
        const int8_t* qb = q + a * q_stride + b * 128;
        __m256i s = _mm256_maddubs_epi16(c[0], _mm256_loadu_si256((const __m256i*)qb));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c[1], _mm256_loadu_si256((const __m256i*)(qb + 32))));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c[2], _mm256_loadu_si256((const __m256i*)(qb + 64))));
        s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c[3], _mm256_loadu_si256((const __m256i*)(qb + 96))));
        acc16[a] = _mm256_add_epi16(acc16[a], s);
      }
    }
    for (int a = 0; a < A; ++a) acc32[a] = _mm256_add_epi32(acc32[a], _mm256_madd_epi16(acc16[a], ones));
  }
  for (int a = 0; a < A; ++a) out[a * out_stride] = HsumI32(acc32[a]);
}

void I2sGemm(const uint8_t* w, int64_t k, int64_t n_rows, const int8_t* q, int64_t n_act, int32_t* out,
             int64_t out_stride) {
  const int64_t q_stride = k;  // I2sPrepareActsIdentity: rows back to back
  const int64_t row_bytes = k / 4, nb = k / 128;
  for (int64_t r = 0; r < n_rows; ++r) {
    const uint8_t* wr = w + r * row_bytes;
    int64_t a = 0;
    for (; a + 4 <= n_act; a += 4) I2sRowActsAvx2<4>(wr, nb, q + a * q_stride, q_stride, out + a * out_stride + r, out_stride);
    for (; a < n_act; ++a) I2sRowActsAvx2<1>(wr, nb, q + a * q_stride, q_stride, out + a * out_stride + r, out_stride);
  }
}

// ---------------------------------------------------------------- activations
void QuantizeRowI8S(const float* x, int64_t n, int8_t* q, float* scale, int32_t* sum) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  __m256 vmax = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(abs_mask, _mm256_loadu_ps(x + i)));
  float lanes[8];
  _mm256_storeu_ps(lanes, vmax);
  float amax = 0.0f;
  for (float v : lanes) amax = std::max(amax, v);
  for (; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  // Same as ggml's max over doubles: float -> double is monotonic.
  const double m = std::max(0.00001, static_cast<double>(amax));
  const float s = static_cast<float>(127 / m);
  *scale = s;
  const __m256 vs = _mm256_set1_ps(s);
  const __m256i lo = _mm256_set1_epi32(-128), hi = _mm256_set1_epi32(127);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  __m256i vsum = _mm256_setzero_si256();
  i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i v[4];
    for (int j = 0; j < 4; ++j) {
      // cvtps rounds half to even (default MXCSR), like ggml's nearest_int.
      v[j] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vs));
      v[j] = _mm256_min_epi32(_mm256_max_epi32(v[j], lo), hi);
      vsum = _mm256_add_epi32(vsum, v[j]);
    }
    const __m256i p01 = _mm256_packs_epi32(v[0], v[1]);
    const __m256i p23 = _mm256_packs_epi32(v[2], v[3]);
    const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(p01, p23), perm);
    _mm256_storeu_si256((__m256i*)(q + i), b);
  }
  int32_t total = HsumI32(vsum);
  for (; i < n; ++i) {
    const int v = std::min(127, std::max(-128, NearestInt(x[i] * s)));
    total += v;
    q[i] = static_cast<int8_t>(v);
  }
  *sum = total;
}

void QuantizeRowQ8K(const float* x, int64_t k, BlockQ8K* y) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t blk = 0; blk < k / kQK_K; ++blk, x += kQK_K) {
    BlockQ8K& out = y[blk];
    __m256 vmax = _mm256_setzero_ps();
    for (int j = 0; j < kQK_K; j += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(abs_mask, _mm256_loadu_ps(x + j)));
    float lanes[8];
    _mm256_storeu_ps(lanes, vmax);
    float amax = 0.0f;
    for (float v : lanes) amax = std::max(amax, v);
    if (amax == 0.0f) {
      std::memset(&out, 0, sizeof(out));
      continue;
    }
    // The signed value at the first index with |x| == amax (ggml keeps the first).
    const __m256 vamax = _mm256_set1_ps(amax);
    int first = 0;
    for (int j = 0; j < kQK_K; j += 8) {
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_and_ps(abs_mask, _mm256_loadu_ps(x + j)), vamax, _CMP_EQ_OQ));
      if (mask) {
        first = j + __builtin_ctz(static_cast<unsigned>(mask));
        break;
      }
    }
    const float iscale = -127.f / x[first];
    const __m256 vis = _mm256_set1_ps(iscale);
    const __m256i hi = _mm256_set1_epi32(127);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int j = 0; j < kQK_K; j += 32) {
      __m256i v[4];
      for (int t = 0; t < 4; ++t) {
        v[t] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vis, _mm256_loadu_ps(x + j + 8 * t))), hi);
      }
      const __m256i b = _mm256_permutevar8x32_epi32(
          _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3])), perm);
      _mm256_storeu_si256((__m256i*)(out.qs + j), b);
      // bsums: pairs of 16 -> 8 int16 via maddubs with ones, then reduce per 16.
      const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), b);  // 16 sums of 2
      const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));  // 8 sums of 4
      int32_t g[8];
      _mm256_storeu_si256((__m256i*)g, s32);
      out.bsums[j / 16] = static_cast<int16_t>(g[0] + g[1] + g[2] + g[3]);
      out.bsums[j / 16 + 1] = static_cast<int16_t>(g[4] + g[5] + g[6] + g[7]);
    }
    out.d = 1 / iscale;
  }
}

// ---------------------------------------------------------------- F16 head
inline __m256 LoadF16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }

// ggml_vec_dot_f16 (AVX-512 lane order, as the reference was built): the 64-value
// body reduced to a double; the k % 64 tail is added by TailSums.
inline double DotF16GgmlBody(const uint16_t* w, const uint16_t* x, int64_t np) {
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (int64_t i = 0; i < np; i += 64) {
    for (int v = 0; v < 8; ++v) acc[v] = _mm256_fmadd_ps(LoadF16(w + i + 8 * v), LoadF16(x + i + 8 * v), acc[v]);
  }
  // 16-lane vector j is (acc[2j], acc[2j+1]); ggml adds (j0 + j2) + (j1 + j3).
  const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
  const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
  return Reduce16(lo, hi);
}

// ggml adds a row's tail one float product at a time to a double. Rows go in groups
// of 8, each row one double lane (two 4-lane chains), so the chains run side by side;
// every lane sees the same adds in the same order as ggml's loop.
constexpr int kTailRows = 8;

void TailSums(const uint16_t* w, int64_t w_stride, int rows, int64_t np, int64_t k, const uint16_t* x,
              double* sums) {
  const int64_t tail = k - np;  // < 64
  alignas(32) float prod[kTailRows][64];
  for (int r = 0; r < kTailRows; ++r) {
    const uint16_t* wr = w + (r < rows ? r : 0) * w_stride;
    int64_t i = 0;
    for (; i + 8 <= tail; i += 8) _mm256_store_ps(&prod[r][i], _mm256_mul_ps(LoadF16(wr + np + i), LoadF16(x + np + i)));
    for (; i < tail; ++i) prod[r][i] = Fp16ToFp32(wr[np + i]) * Fp16ToFp32(x[np + i]);
  }
  const __m128i row_offsets = _mm_setr_epi32(0, 64, 128, 192);
  __m256d acc0 = _mm256_loadu_pd(sums), acc1 = _mm256_loadu_pd(sums + 4);
  for (int64_t j = 0; j < tail; ++j) {
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm_i32gather_ps(&prod[0][j], row_offsets, 4)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm_i32gather_ps(&prod[4][j], row_offsets, 4)));
  }
  _mm256_storeu_pd(sums, acc0);
  _mm256_storeu_pd(sums + 4, acc1);
}

void F16DotRows(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const uint16_t* x, float* out) {
  const int64_t np = k & ~int64_t{63};
  if (np == k) {
    for (int64_t r = 0; r < n_rows; ++r) out[r] = static_cast<float>(DotF16GgmlBody(w + r * w_stride, x, np));
    return;
  }
  for (int64_t r0 = 0; r0 < n_rows; r0 += kTailRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kTailRows, n_rows - r0));
    const uint16_t* wg = w + r0 * w_stride;
    alignas(32) double sums[kTailRows] = {};
    for (int r = 0; r < rows; ++r) sums[r] = DotF16GgmlBody(wg + r * w_stride, x, np);
    TailSums(wg, w_stride, rows, np, k, x, sums);
    for (int r = 0; r < rows; ++r) out[r0 + r] = static_cast<float>(sums[r]);
  }
}

template <int A>
void F16RowActs(const uint16_t* w, int64_t k, const float* x, int64_t x_stride, float* out, int64_t out_stride) {
  __m256 lo[A], hi[A];
  for (int a = 0; a < A; ++a) lo[a] = hi[a] = _mm256_setzero_ps();
  for (int64_t i = 0; i < k; i += 16) {
    const __m256 w0 = LoadF16(w + i), w1 = LoadF16(w + i + 8);
    for (int a = 0; a < A; ++a) {
      lo[a] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + a * x_stride + i), lo[a]);
      hi[a] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + a * x_stride + i + 8), hi[a]);
    }
  }
  for (int a = 0; a < A; ++a) out[a * out_stride] = Reduce16(lo[a], hi[a]);
}

void F16GemmF32(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const float* x, int64_t x_stride,
                int64_t n_act, float* out, int64_t out_stride) {
  for (int64_t r = 0; r < n_rows; ++r) {
    int64_t a = 0;
    for (; a + 4 <= n_act; a += 4) F16RowActs<4>(w + r * w_stride, k, x + a * x_stride, x_stride, out + a * out_stride + r, out_stride);
    for (; a < n_act; ++a) F16RowActs<1>(w + r * w_stride, k, x + a * x_stride, x_stride, out + a * out_stride + r, out_stride);
  }
}

// ---------------------------------------------------------------- TQ x Q8_K
// 256 codes (0..2, element order) of a TQ block x y.qs: 8 int32 lanes as ggml's AVX2
// kernel forms them, then acc += (float)lane * d (no FMA).
inline __m256 TernaryBlockAcc(const uint8_t* codes, const BlockQ8K& y, float dw, __m256 acc) {
  __m256i s16 = _mm256_setzero_si256();
  for (int c = 0; c < 8; ++c) {
    s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(_mm256_loadu_si256((const __m256i*)(codes + 32 * c)),
                                                     _mm256_loadu_si256((const __m256i*)(y.qs + 32 * c))));
  }
  s16 = _mm256_sub_epi16(s16, _mm256_loadu_si256((const __m256i*)y.bsums));
  const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
  const __m256 d = _mm256_set1_ps(y.d * dw);
  return _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s32), d), acc);
}

void Tq2Dot(const BlockTq2_0* w, int64_t k, int64_t n_rows, const BlockQ8K* y, float* out) {
  const int64_t nb = k / kQK_K;
  const __m256i m = _mm256_set1_epi8(3);
  alignas(32) uint8_t codes[kQK_K];
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockTq2_0* x = w + r * nb;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      for (int j = 0; j < 2; ++j) {
        const __m256i q = _mm256_loadu_si256((const __m256i*)(x[b].qs + 32 * j));
        for (int l = 0; l < 4; ++l) {
          const __m256i c = _mm256_and_si256(_mm256_srli_epi16(q, 2 * l), m);
          _mm256_store_si256((__m256i*)(codes + 128 * j + 32 * l), c);
        }
      }
      acc = TernaryBlockAcc(codes, y[b], Fp16ToFp32(x[b].d), acc);
    }
    out[r] = Hsum8(acc);
  }
}

// Trits of 16 TQ1_0 bytes for the given per-byte powers of 3: ((b * pow mod 256) * 3) >> 8.
inline __m128i Tq1Trits16(__m128i bytes, __m256i pow3) {
  __m256i v = _mm256_cvtepu8_epi16(bytes);
  v = _mm256_and_si256(_mm256_mullo_epi16(v, pow3), _mm256_set1_epi16(0xFF));
  v = _mm256_srli_epi16(_mm256_mullo_epi16(v, _mm256_set1_epi16(3)), 8);
  return _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
}

void Tq1Dot(const BlockTq1_0* w, int64_t k, int64_t n_rows, const BlockQ8K* y, float* out) {
  static constexpr int16_t kPow3[5] = {1, 3, 9, 27, 81};
  const int64_t nb = k / kQK_K;
  alignas(32) uint8_t codes[kQK_K];
  const __m256i qh_pow = _mm256_setr_epi16(1, 1, 1, 1, 3, 3, 3, 3, 9, 9, 9, 9, 27, 27, 27, 27);
  for (int64_t r = 0; r < n_rows; ++r) {
    const BlockTq1_0* x = w + r * nb;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const __m128i q0 = _mm_loadu_si128((const __m128i*)x[b].qs);
      const __m128i q1 = _mm_loadu_si128((const __m128i*)(x[b].qs + 16));
      const __m128i q2 = _mm_loadu_si128((const __m128i*)(x[b].qs + 32));
      for (int n = 0; n < 5; ++n) {
        const __m256i p = _mm256_set1_epi16(kPow3[n]);
        _mm_store_si128((__m128i*)(codes + 32 * n), Tq1Trits16(q0, p));
        _mm_store_si128((__m128i*)(codes + 32 * n + 16), Tq1Trits16(q1, p));
        _mm_store_si128((__m128i*)(codes + 160 + 16 * n), Tq1Trits16(q2, p));
      }
      uint32_t qh;
      std::memcpy(&qh, x[b].qh, 4);
      _mm_store_si128((__m128i*)(codes + 240), Tq1Trits16(_mm_set1_epi32(static_cast<int>(qh)), qh_pow));
      acc = TernaryBlockAcc(codes, y[b], Fp16ToFp32(x[b].d), acc);
    }
    out[r] = Hsum8(acc);
  }
}

// ---------------------------------------------------------------- conversions
// Int8 head: ggml's sign trick, |x| (u8) x sign(w, x) (s8) through maddubs: each
// int16 pair sum is at most 2 * 128 * 127, so nothing saturates.
void I8Gemv(const int8_t* w, const int32_t* /*row_sums*/, int64_t k, int64_t n_rows, const int8_t* x, int32_t* out) {
  const __m256i ones = _mm256_set1_epi16(1);
  const int64_t kv = k & ~int64_t{31};
  for (int64_t r = 0; r < n_rows; ++r) {
    const int8_t* wr = w + r * k;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    int64_t j = 0;
    for (; j + 64 <= kv; j += 64) {
      const __m256i x0 = _mm256_loadu_si256((const __m256i*)(x + j));
      const __m256i x1 = _mm256_loadu_si256((const __m256i*)(x + j + 32));
      const __m256i p0 = _mm256_maddubs_epi16(_mm256_sign_epi8(x0, x0),
                                              _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(wr + j)), x0));
      const __m256i p1 = _mm256_maddubs_epi16(_mm256_sign_epi8(x1, x1),
                                              _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(wr + j + 32)), x1));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
    }
    for (; j < kv; j += 32) {
      const __m256i x0 = _mm256_loadu_si256((const __m256i*)(x + j));
      const __m256i p0 = _mm256_maddubs_epi16(_mm256_sign_epi8(x0, x0),
                                              _mm256_sign_epi8(_mm256_loadu_si256((const __m256i*)(wr + j)), x0));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
    }
    const __m256i acc = _mm256_add_epi32(acc0, acc1);
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    int32_t sum = _mm_cvtsi128_si32(h);
    for (; j < k; ++j) sum += static_cast<int32_t>(wr[j]) * x[j];
    out[r] = sum;
  }
}

// One activation after the other (this path's i8_gemv); the AVX-512 path shares weight loads.
void I8Gemm(const int8_t* w, const int32_t* row_sums, int64_t k, int64_t n_rows, int n_act, const int8_t* const* x,
            int32_t* const* out) {
  for (int a = 0; a < n_act; ++a) I8Gemv(w, row_sums, k, n_rows, x[a], out[a]);
}

void Fp16ToFp32Row(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, LoadF16(x + i));
  for (; i < n; ++i) y[i] = Fp16ToFp32(x[i]);
}

void Fp32ToFp16Row(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128((__m128i*)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; ++i) y[i] = Fp32ToFp16(x[i]);
}

// I2sOutputsScalar, 8 values at a time (the same operations per lane).
void I2sOutputs(const int32_t* sums, int64_t n, int32_t act_sum, float act_scale, float w_scale, float* y) {
  const __m256 s = _mm256_set1_ps(static_cast<float>(act_sum));
  const __m256 d = _mm256_set1_ps(act_scale), m = _mm256_set1_ps(w_scale);
  int64_t r = 0;
  for (; r + 8 <= n; r += 8) {
    const __m256 v = _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i*)(sums + r)));
    _mm256_storeu_ps(y + r, _mm256_mul_ps(_mm256_div_ps(_mm256_sub_ps(v, s), d), m));
  }
  I2sOutputsScalar(sums + r, n - r, act_sum, act_scale, w_scale, y + r);
}

// RopeHeadsScalar, 8 values at a time: the same fma and product per value. Neox
// pairs are 8 consecutive x0 against the 8 x1 half a rotation later; normal pairs
// are adjacent, so even lanes take (x, swapped x) and odd lanes (swapped x, x).
void RopeHeads(const float* cache, int n_rot, bool neox, float* x, int n_heads, int64_t head_stride) {
  const int half = n_rot / 2;
  const __m256i order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  const __m256 neg = _mm256_set1_ps(-0.0f);
  for (int h = 0; h < n_heads; ++h) {
    float* xh = x + h * head_stride;
    int i = 0;
    if (neox) {
      for (; i + 8 <= half; i += 8) {
        // cache[2i ..] = c0 s0 c1 s1 ...: cos in the even slots, sin in the odd
        const __m256 lo = _mm256_loadu_ps(cache + 2 * i), hi = _mm256_loadu_ps(cache + 2 * i + 8);
        const __m256 c = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(lo, hi, 0x88), order);
        const __m256 s = _mm256_permutevar8x32_ps(_mm256_shuffle_ps(lo, hi, 0xDD), order);
        const __m256 a = _mm256_loadu_ps(xh + i), b = _mm256_loadu_ps(xh + i + half);
        _mm256_storeu_ps(xh + i, _mm256_fmadd_ps(a, c, _mm256_xor_ps(_mm256_mul_ps(b, s), neg)));
        _mm256_storeu_ps(xh + i + half, _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c)));
      }
      for (; i < half; ++i) {
        const float a = xh[i], b = xh[i + half], c = cache[2 * i], s = cache[2 * i + 1];
        xh[i] = std::fma(a, c, -(b * s));
        xh[i + half] = std::fma(a, s, b * c);
      }
    } else {
      for (; 2 * i + 8 <= n_rot; i += 4) {
        const __m256 cs = _mm256_loadu_ps(cache + 2 * i);
        const __m256 c = _mm256_moveldup_ps(cs), s = _mm256_movehdup_ps(cs);
        const __m256 v = _mm256_loadu_ps(xh + 2 * i);
        const __m256 w = _mm256_permute_ps(v, 0xB1);  // pairs swapped
        const __m256 even = _mm256_fmadd_ps(v, c, _mm256_xor_ps(_mm256_mul_ps(w, s), neg));
        const __m256 odd = _mm256_fmadd_ps(w, s, _mm256_mul_ps(v, c));
        _mm256_storeu_ps(xh + 2 * i, _mm256_blend_ps(even, odd, 0xAA));
      }
      RopeHeadsScalar(cache + 2 * i, n_rot - 2 * i, false, xh + 2 * i, 1, 0);
    }
  }
}

}  // namespace

const Kernels& Avx2Kernels() {
  static const Kernels k = {
      "avx2",  KernelPath::kAvx2, I2sGemv,        I2sGemm,       QuantizeRowI8S, I2sPrepareActIdentity, I2sPrepareActsIdentity, F16DotRows, F16DotRowsEachX<F16DotRows>,
      F16GemmF32, I8Gemv, I8Gemm,
      Tq1Dot,  Tq2Dot,            QuantizeRowQ8K, Fp16ToFp32Row, Fp32ToFp16Row,
      SoftmaxExpScalar,  // the reference's 16-lane order; no 8-lane version would match it
      SumSquaresRowsScalar,
      I2sOutputs,
      RopeHeads,
      ScreenBoundsScalar,
  };
  return k;
}

}  // namespace bitparity::kernels_internal
