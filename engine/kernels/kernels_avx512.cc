// AVX-512 (F/BW/VL/DQ + VNNI) kernels: I2_S via vpdpbusd, the F16 head with 16-lane
// FMAs. Entries without an AVX-512 version reuse the AVX2 ones (this path is chosen
// only on CPUs that also have AVX2/FMA/F16C). Compiled with ${BP_SIMD_AVX512_FLAGS}
// and -ffp-contract=off.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/common/cache_aligned_vector.h"
#include "engine/kernels/kernels_internal.h"
#include "base/fp16.h"

namespace bitparity::kernels_internal {
namespace {

// ---------------------------------------------------------------- I2_S
// Weight bytes are read in 64-byte chunks: two I2_S blocks (2 x 128 elements). Byte j
// of a block holds the codes of elements j, 32+j, 64+j, 96+j at bits 7-6, 5-4, 3-2,
// 1-0 ("group" s = 0..3). The activations are laid out to match: for each block
// pair, 4 x 64 bytes, group s = q[128b + 32s, +32) then q[128(b+1) + 32s, +32). An
// odd last block keeps its 128 activations in natural order.
constexpr int64_t kPairBytes = 64;   // weight bytes of a block pair
constexpr int64_t kPairActs = 256;   // activations of a block pair

// i2s_gemm's layout: activation rows in tiles of 4 (the last tile holds the rest),
// tile t at qa + 4t * k. A tile of A rows interleaves them pair by pair, so that a
// weight vector's A partners are one contiguous run: pair p, group s, row a at
// ((4p + s) * A + a) * 64, each row laid out as above; an odd last block keeps row
// a's 128 values in natural order at n_pairs * 256 * A + a * 128. The tile then
// reads one pointer and constant offsets instead of A rows k bytes apart. A tile of
// one row is the gemv's layout (PrepareAct).
void PrepareActs(const int8_t* q, int64_t q_stride, int64_t k, int64_t n_act, int8_t* qa) {
  const int64_t nb = k / 128, n_pairs = nb / 2;
  for (int64_t t0 = 0; t0 < n_act; t0 += kI2sActTile) {
    const int64_t A = std::min<int64_t>(kI2sActTile, n_act - t0);
    int8_t* tile = qa + t0 * k;
    for (int64_t a = 0; a < A; ++a) {
      const int8_t* row = q + (t0 + a) * q_stride;
      for (int64_t p = 0; p < n_pairs; ++p) {
        for (int s = 0; s < 4; ++s) {
          int8_t* o = tile + ((4 * p + s) * A + a) * 64;
          std::memcpy(o, row + p * kPairActs + 32 * s, 32);
          std::memcpy(o + 32, row + p * kPairActs + 128 + 32 * s, 32);
        }
      }
      if (nb % 2 != 0) std::memcpy(tile + n_pairs * kPairActs * A + a * 128, row + n_pairs * kPairActs, 128);
    }
  }
}

void PrepareAct(const int8_t* q, int64_t k, int8_t* qa) { PrepareActs(q, k, k, 1, qa); }

inline int32_t HsumI32x8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// The odd last block of a row (32 weight bytes, 128 natural-order activations).
inline int32_t OddBlock(const uint8_t* x32, const int8_t* q128) {
  const __m256i x = _mm256_loadu_si256((const __m256i*)x32);
  const __m256i m = _mm256_set1_epi8(3);
  __m256i t = _mm256_setzero_si256();
  for (int s = 0; s < 4; ++s) {
    const __m256i c = _mm256_and_si256(_mm256_srli_epi16(x, 6 - 2 * s), m);
    t = _mm256_dpbusd_epi32(t, c, _mm256_loadu_si256((const __m256i*)(q128 + 32 * s)));
  }
  return HsumI32x8(t);
}

// GEMV, one row at a time so the weights stream from memory in address order (the
// hardware prefetchers then keep up; interleaving rows halved the streaming rate).
// The codes are not shifted down: group s is masked in place, so its products carry a
// factor 4^(3-s) that a separate accumulator per group removes exactly at the end
// (each of its lanes is a multiple of that factor). That is 1 AND + 1 VNNI per 32 codes.
// Exact while k <= kMaskedMaxK: the largest group-0 total is k/4 * 192 * 128 < 2^31.
//
// Loads are 32 bytes, not 64: on the Zen 4 this was tuned on, a 64-byte load stream
// from DRAM runs ~10% slower, and over a decode's 521 MB of layers (kernels_bench
// BM_I2sGemvDecodeLayers, huge pages, interleaved runs) this kernel streamed 19.0 GB/s
// against 17.8 for the same sums in 64-byte vectors. A pair's two blocks read the
// matching halves of its 64-byte activation groups. Two pairs in flight (16
// accumulators) hide the VNNI latency.
constexpr int64_t kMaskedMaxK = 1 << 18;

// The 16 accumulators are named (acc<slot><group>): as an array GCC 12 stored some of
// them to the stack on every iteration.
#define BP_I2S_GEMV_GROUP(p, u0, u1, s, m)                                                              \
  {                                                                                                     \
    const int8_t* a = qa + (p) * kPairActs + 64 * s;                                                    \
    acc##u0##s = _mm256_dpbusd_epi32(acc##u0##s, _mm256_and_si256(x0, m), _mm256_loadu_si256((const __m256i*)a)); \
    acc##u1##s =                                                                                        \
        _mm256_dpbusd_epi32(acc##u1##s, _mm256_and_si256(x1, m), _mm256_loadu_si256((const __m256i*)(a + 32))); \
  }
#define BP_I2S_GEMV_PAIR(p, u0, u1)                                             \
  {                                                                             \
    const __m256i x0 = _mm256_loadu_si256((const __m256i*)(w + (p) * kPairBytes));      \
    const __m256i x1 = _mm256_loadu_si256((const __m256i*)(w + (p) * kPairBytes + 32)); \
    BP_I2S_GEMV_GROUP(p, u0, u1, 0, m0)                                         \
    BP_I2S_GEMV_GROUP(p, u0, u1, 1, m1)                                         \
    BP_I2S_GEMV_GROUP(p, u0, u1, 2, m2)                                         \
    BP_I2S_GEMV_GROUP(p, u0, u1, 3, m3)                                         \
  }
int32_t I2sRowMasked(const uint8_t* w, int64_t n_pairs, bool odd, const int8_t* qa) {
  const __m256i m0 = _mm256_set1_epi8(static_cast<char>(0xC0)), m1 = _mm256_set1_epi8(0x30);
  const __m256i m2 = _mm256_set1_epi8(0x0C), m3 = _mm256_set1_epi8(0x03);
  const __m256i z = _mm256_setzero_si256();
  // [pair in flight x block half][group]
  __m256i acc00 = z, acc01 = z, acc02 = z, acc03 = z, acc10 = z, acc11 = z, acc12 = z, acc13 = z;
  __m256i acc20 = z, acc21 = z, acc22 = z, acc23 = z, acc30 = z, acc31 = z, acc32 = z, acc33 = z;
  int64_t p = 0;
  for (; p + 2 <= n_pairs; p += 2) {
    BP_I2S_GEMV_PAIR(p, 0, 1)
    BP_I2S_GEMV_PAIR(p + 1, 2, 3)
  }
  if (p < n_pairs) BP_I2S_GEMV_PAIR(p, 0, 1)
  __m256i g[4];
  g[0] = _mm256_add_epi32(_mm256_add_epi32(acc00, acc10), _mm256_add_epi32(acc20, acc30));
  g[1] = _mm256_add_epi32(_mm256_add_epi32(acc01, acc11), _mm256_add_epi32(acc21, acc31));
  g[2] = _mm256_add_epi32(_mm256_add_epi32(acc02, acc12), _mm256_add_epi32(acc22, acc32));
  g[3] = _mm256_add_epi32(_mm256_add_epi32(acc03, acc13), _mm256_add_epi32(acc23, acc33));
  const __m256i lanes = _mm256_add_epi32(_mm256_add_epi32(_mm256_srai_epi32(g[0], 6), _mm256_srai_epi32(g[1], 4)),
                                         _mm256_add_epi32(_mm256_srai_epi32(g[2], 2), g[3]));
  int32_t total = HsumI32x8(lanes);
  if (odd) total += OddBlock(w + n_pairs * kPairBytes, qa + n_pairs * kPairActs);
  return total;
}
#undef BP_I2S_GEMV_PAIR
#undef BP_I2S_GEMV_GROUP

// R weight rows x A activation rows, codes shifted down once and reused by all A
// (batch prefill is compute-bound, so decoding once per A matters more than streaming).
// The rows 2 tiles ahead are prefetched: R rows read side by side defeated the
// hardware prefetchers, and a batched decode step (2-8 rows, weights from DRAM) waited
// on memory. Zen 5, one thread, the 521 MB of 2B-4T layers (kernels_bench
// BM_I2sGemmDecodeLayers/2), without -> with 8 tiles ahead: 2 rows 51.5 -> 24.2 ms,
// 4 rows 60.9 -> 39.7, 8 rows 119 -> ~80 (the gemv of one row: 24.6 ms). 8 tiles
// ahead (32 rows, up to 55 KB for k = 6912) then proved too far, pushing lines out of
// L1 before their turn: 2 threads, the 30 layers' products, alternating (median of
// 12), 8 -> 2 tiles ahead: 8 activations 27.8 -> 25.7 ms, 4: 16.8 -> 15.0, 2: 13.5
// -> 11.8 (1 tile ahead: 26.6 / 15.4 / 13.3).
constexpr int kI2sPrefetchTiles = 2;
inline __m512i Codes512(__m512i x, int s) {
  return _mm512_and_si512(_mm512_srli_epi16(x, 6 - 2 * s), _mm512_set1_epi8(3));
}

// The lane sums of 4 vectors at once: lane i = _mm512_reduce_add_epi32(v_i). 11
// shuffles and adds instead of 4 x 9 for four separate reductions, which with short
// rows (k = 2560: 10 pairs, 640 VNNI per 4 x 4 tile) were a sixth of a tile's work.
// Integer sums, so the order of the additions changes nothing.
inline __m128i ReduceAdd4(__m512i v0, __m512i v1, __m512i v2, __m512i v3) {
  // each 128-bit chunk: [v0 lanes 0+2, v1 0+2, v0 1+3, v1 1+3], the same for v2, v3
  const __m512i s01 = _mm512_add_epi32(_mm512_unpacklo_epi32(v0, v1), _mm512_unpackhi_epi32(v0, v1));
  const __m512i s23 = _mm512_add_epi32(_mm512_unpacklo_epi32(v2, v3), _mm512_unpackhi_epi32(v2, v3));
  // each chunk: [v0, v1, v2, v3], then the 4 chunks added
  const __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
  const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// The sums of a finished tile: acc[i][a] (+ the odd last block) -> out[a * out_stride + i].
template <int R, int A>
void StoreTileSums(const __m512i (&acc)[R][A], const uint8_t* w, int64_t row_bytes, int64_t n_pairs, bool odd,
                   const int8_t* tile, int32_t* out, int64_t out_stride) {
  if constexpr (R == 4) {  // 4 rows of one activation are 4 consecutive outputs
    for (int a = 0; a < A; ++a) {
      __m128i total = ReduceAdd4(acc[0][a], acc[1][a], acc[2][a], acc[3][a]);
      if (odd) {
        const int8_t* q = tile + n_pairs * kPairActs * A + a * 128;
        const __m128i tail = _mm_setr_epi32(OddBlock(w + n_pairs * kPairBytes, q),
                                            OddBlock(w + row_bytes + n_pairs * kPairBytes, q),
                                            OddBlock(w + 2 * row_bytes + n_pairs * kPairBytes, q),
                                            OddBlock(w + 3 * row_bytes + n_pairs * kPairBytes, q));
        total = _mm_add_epi32(total, tail);
      }
      _mm_storeu_si128((__m128i*)(out + a * out_stride), total);
    }
    return;
  }
  for (int i = 0; i < R; ++i) {
    for (int a = 0; a < A; ++a) {
      int32_t total = _mm512_reduce_add_epi32(acc[i][a]);
      if (odd) total += OddBlock(w + i * row_bytes + n_pairs * kPairBytes, tile + n_pairs * kPairActs * A + a * 128);
      out[a * out_stride + i] = total;
    }
  }
}

template <int R, int A>
void I2sTile(const uint8_t* w, int64_t row_bytes, int64_t n_pairs, bool odd, const int8_t* tile, int32_t* out,
             int64_t out_stride) {
  __m512i acc[R][A];
  for (int i = 0; i < R; ++i)
    for (int a = 0; a < A; ++a) acc[i][a] = _mm512_setzero_si512();
  for (int64_t p = 0; p < n_pairs; ++p) {
    __m512i x[R];
    for (int i = 0; i < R; ++i) x[i] = _mm512_loadu_si512((const void*)(w + i * row_bytes + p * kPairBytes));
    for (int i = 0; i < R; ++i) _mm_prefetch((const char*)(w + (kI2sPrefetchTiles * R + i) * row_bytes + p * kPairBytes), _MM_HINT_T0);
    const int8_t* y_pair = tile + p * kPairActs * A;
    for (int s = 0; s < 4; ++s) {
      __m512i c[R];
      for (int i = 0; i < R; ++i) c[i] = Codes512(x[i], s);
      for (int a = 0; a < A; ++a) {
        const __m512i y = _mm512_loadu_si512((const void*)(y_pair + (s * A + a) * 64));
        for (int i = 0; i < R; ++i) acc[i][a] = _mm512_dpbusd_epi32(acc[i][a], c[i], y);
      }
    }
  }
  StoreTileSums<R, A>(acc, w, row_bytes, n_pairs, odd, tile, out, out_stride);
}

// I2sTile<4, A> with its 4 x A accumulators as named variables. GCC 12 kept the
// generic tile's [4][A] array on the stack and stored all of it on every iteration
// (16 stores per 64 VNNI for A = 4); with names it stays in registers. Accumulators of
// rows a >= A are never touched and compile away.
// The next pair's 4 weight vectors are loaded at the top of each iteration, so a
// load that misses to memory has a whole pair of VNNI work to arrive under. Without
// that, GCC folded each weight load into the 4 shifts that decode it (16 loads of
// which the first waited on memory, the VNNI behind it stalled). Zen 5, one thread,
// alternating runs (kernels_bench BM_I2sGemmDecodeLayers/2/N, 521 MB of layers from
// memory): 4 rows 22.5 ms against 32.4 (median of 5), 8 rows 46.6 against 66.6;
// weights in L3 (BM_I2sGemm/2560/2560/8/2) 126 us against 134.
// The 4 x 4 tiles' accumulators: acc<row><activation>, zero, and as an array.
#define BP_ZERO_ACC16                                                                             \
  const __m512i z = _mm512_setzero_si512();                                                       \
  __m512i acc00 = z, acc01 = z, acc02 = z, acc03 = z, acc10 = z, acc11 = z, acc12 = z, acc13 = z; \
  __m512i acc20 = z, acc21 = z, acc22 = z, acc23 = z, acc30 = z, acc31 = z, acc32 = z, acc33 = z;
#define BP_ACC16_ROWS \
  { {acc00, acc01, acc02, acc03}, {acc10, acc11, acc12, acc13}, {acc20, acc21, acc22, acc23}, {acc30, acc31, acc32, acc33} }

// The 64 bytes at p of 4 rows `stride` bytes apart.
inline void Load4Rows(const void* p, int64_t stride, __m512i& r0, __m512i& r1, __m512i& r2, __m512i& r3) {
  const char* c = static_cast<const char*>(p);
  r0 = _mm512_loadu_si512((const void*)c);
  r1 = _mm512_loadu_si512((const void*)(c + stride));
  r2 = _mm512_loadu_si512((const void*)(c + 2 * stride));
  r3 = _mm512_loadu_si512((const void*)(c + 3 * stride));
}

#define BP_I2S_ROW_STEP(a)                                                                  \
  if constexpr (A > a) {                                                                    \
    const __m512i y = _mm512_loadu_si512((const void*)(y_pair + (s * A + a) * 64));         \
    acc0##a = _mm512_dpbusd_epi32(acc0##a, c0, y);                                          \
    acc1##a = _mm512_dpbusd_epi32(acc1##a, c1, y);                                          \
    acc2##a = _mm512_dpbusd_epi32(acc2##a, c2, y);                                          \
    acc3##a = _mm512_dpbusd_epi32(acc3##a, c3, y);                                          \
  }
template <int A>
void I2sTile4(const uint8_t* w, int64_t row_bytes, int64_t n_pairs, bool odd, const int8_t* tile, int32_t* out,
              int64_t out_stride) {
  static_assert(A >= 1 && A <= 4);
  BP_ZERO_ACC16
  __m512i n0 = z, n1 = z, n2 = z, n3 = z;
  if (n_pairs > 0) Load4Rows(w, row_bytes, n0, n1, n2, n3);
  for (int64_t p = 0; p < n_pairs; ++p) {
    const uint8_t* wp = w + p * kPairBytes;
    const __m512i x0 = n0, x1 = n1, x2 = n2, x3 = n3;
    // The next pair's weights load while this pair computes (the last pair loads
    // itself again rather than read past the rows).
    Load4Rows(w + std::min(p + 1, n_pairs - 1) * kPairBytes, row_bytes, n0, n1, n2, n3);
    for (int i = 0; i < 4; ++i) _mm_prefetch((const char*)(wp + (kI2sPrefetchTiles * 4 + i) * row_bytes), _MM_HINT_T0);
    const int8_t* y_pair = tile + p * kPairActs * A;
#pragma GCC unroll 4
    for (int s = 0; s < 4; ++s) {
      const __m512i c0 = Codes512(x0, s), c1 = Codes512(x1, s), c2 = Codes512(x2, s), c3 = Codes512(x3, s);
      BP_I2S_ROW_STEP(0)
      BP_I2S_ROW_STEP(1)
      BP_I2S_ROW_STEP(2)
      BP_I2S_ROW_STEP(3)
    }
  }
  const __m512i all[4][4] = BP_ACC16_ROWS;
  __m512i acc[4][A];
  for (int i = 0; i < 4; ++i)
    for (int a = 0; a < A; ++a) acc[i][a] = all[i][a];
  StoreTileSums<4, A>(acc, w, row_bytes, n_pairs, odd, tile, out, out_stride);
}
#undef BP_I2S_ROW_STEP

void I2sGemv(const uint8_t* w, int64_t k, int64_t n_rows, const int8_t* qa, int32_t* out) {
  const int64_t row_bytes = k / 4, nb = k / 128;
  const int64_t n_pairs = nb / 2;
  const bool odd = nb % 2 != 0;
  if (k > kMaskedMaxK) {  // too long for the masked sums: the shifted-code tile
    for (int64_t r = 0; r < n_rows; ++r) I2sTile<1, 1>(w + r * row_bytes, row_bytes, n_pairs, odd, qa, out + r, 0);
    return;
  }
  for (int64_t r = 0; r < n_rows; ++r) out[r] = I2sRowMasked(w + r * row_bytes, n_pairs, odd, qa);
}

// R weight rows x A activation rows (the named-register version for R = 4).
template <int R, int A>
void RunTile(const uint8_t* w, int64_t row_bytes, int64_t n_pairs, bool odd, const int8_t* tile, int32_t* out,
             int64_t out_stride) {
  if constexpr (R == 4) {
    I2sTile4<A>(w, row_bytes, n_pairs, odd, tile, out, out_stride);
  } else {
    I2sTile<R, A>(w, row_bytes, n_pairs, odd, tile, out, out_stride);
  }
}

// Rows in tiles of 4 and activations in PrepareActs' tiles of 4 (the last one 1-3):
// 16 accumulators plus 4 decoded code vectors fit the 32 registers; measured best
// among 1-4 x 1-8 tiles.
template <int R>
void I2sRowTile(const uint8_t* w, int64_t row_bytes, int64_t n_pairs, bool odd, const int8_t* qa, int64_t k,
                int64_t n_act, int32_t* out, int64_t out_stride) {
  for (int64_t a = 0; a < n_act; a += kI2sActTile) {
    const int8_t* tile = qa + a * k;
    int32_t* o = out + a * out_stride;
    switch (std::min<int64_t>(kI2sActTile, n_act - a)) {
      case 4: RunTile<R, 4>(w, row_bytes, n_pairs, odd, tile, o, out_stride); break;
      case 3: RunTile<R, 3>(w, row_bytes, n_pairs, odd, tile, o, out_stride); break;
      case 2: RunTile<R, 2>(w, row_bytes, n_pairs, odd, tile, o, out_stride); break;
      default: RunTile<R, 1>(w, row_bytes, n_pairs, odd, tile, o, out_stride); break;
    }
  }
}

void I2sGemm(const uint8_t* w, int64_t k, int64_t n_rows, const int8_t* qa, int64_t n_act, int32_t* out,
             int64_t out_stride) {
  const int64_t row_bytes = k / 4, nb = k / 128;
  const int64_t n_pairs = nb / 2;
  const bool odd = nb % 2 != 0;
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4)
    I2sRowTile<4>(w + r * row_bytes, row_bytes, n_pairs, odd, qa, k, n_act, out + r, out_stride);
  for (; r < n_rows; ++r) I2sRowTile<1>(w + r * row_bytes, row_bytes, n_pairs, odd, qa, k, n_act, out + r, out_stride);
}

// ---------------------------------------------------------------- Int8 head
// x is moved into unsigned range (x ^ 0x80 = x + 128) for vpdpbusd; the row's sum
// times 128 comes off at the end. (x + 128) * w summed over k <= 65536 fits int32.
// One row at a time, three 64-byte chunks in flight.
constexpr int kUnroll = 3;

void I8Gemv(const int8_t* w, const int32_t* row_sums, int64_t k, int64_t n_rows, const int8_t* x, int32_t* out) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const int64_t kv = k & ~int64_t{63};
  for (int64_t r = 0; r < n_rows; ++r) {
    const int8_t* wr = w + r * k;
    __m512i acc[kUnroll];
    for (int u = 0; u < kUnroll; ++u) acc[u] = _mm512_setzero_si512();
    int64_t j = 0;
    for (; j + 64 * kUnroll <= kv; j += 64 * kUnroll) {
      for (int u = 0; u < kUnroll; ++u) {
        const __m512i xu = _mm512_xor_si512(_mm512_loadu_si512((const void*)(x + j + 64 * u)), flip);
        acc[u] = _mm512_dpbusd_epi32(acc[u], xu, _mm512_loadu_si512((const void*)(wr + j + 64 * u)));
      }
    }
    for (; j < kv; j += 64) {
      const __m512i xu = _mm512_xor_si512(_mm512_loadu_si512((const void*)(x + j)), flip);
      acc[0] = _mm512_dpbusd_epi32(acc[0], xu, _mm512_loadu_si512((const void*)(wr + j)));
    }
    for (int u = 1; u < kUnroll; ++u) acc[0] = _mm512_add_epi32(acc[0], acc[u]);
    int32_t sum = _mm512_reduce_add_epi32(acc[0]);
    int32_t tail_sum = 0;  // the tail is added exactly, without the offset
    for (int64_t t = kv; t < k; ++t) {
      sum += static_cast<int32_t>(wr[t]) * x[t];
      tail_sum += wr[t];
    }
    out[r] = sum - 128 * (row_sums[r] - tail_sum);
  }
}

// Several activations: R weight rows x A activations per tile, each 64-byte weight
// load used by all A. The activations are moved to unsigned range once per call (not
// once per weight row as I8Gemv does), and the next tiles' rows are prefetched: a
// batched step reads the 328 MB int8 head of the 2B-4T shape in row order, several
// rows at a time, which the hardware prefetchers alone did not keep up with. One tile
// ahead (10 KB for k = 2560): 8 tiles ahead (80 KB) overran L1. Zen 5, 2 threads, the
// 2B-4T head against 8 activations, alternating (median of 15): 9.05 -> 7.07 ms
// (2 tiles ahead 7.77); 4 activations 7.30 -> 6.42.
constexpr int kI8PrefetchTiles = 1;
template <int R, int A>
void I8Tile(const int8_t* w, int64_t k, int64_t kv, const uint8_t* xu, int64_t xu_stride, int32_t (&sums)[A][R]) {
  __m512i acc[R][A];
  for (int i = 0; i < R; ++i)
    for (int a = 0; a < A; ++a) acc[i][a] = _mm512_setzero_si512();
  for (int64_t j = 0; j < kv; j += 64) {
    __m512i wv[R];
    for (int i = 0; i < R; ++i) {
      wv[i] = _mm512_loadu_si512((const void*)(w + i * k + j));
      _mm_prefetch((const char*)(w + (kI8PrefetchTiles * R + i) * k + j), _MM_HINT_T0);
    }
    for (int a = 0; a < A; ++a) {
      const __m512i xv = _mm512_loadu_si512((const void*)(xu + a * xu_stride + j));
      for (int i = 0; i < R; ++i) acc[i][a] = _mm512_dpbusd_epi32(acc[i][a], xv, wv[i]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int a = 0; a < A; ++a) sums[a][i] = _mm512_reduce_add_epi32(acc[i][a]);
}

// I8Tile<4, A> with named accumulators and the next chunk's weights loaded while this
// one computes, as I2sTile4 (the generic tile kept its 16 accumulators in copies and
// reloaded the weights from memory for every activation).
#define BP_I8_ACT_STEP(a)                                                                   \
  if constexpr (A > a) {                                                                    \
    const __m512i xv = _mm512_loadu_si512((const void*)(xu + a * xu_stride + j));           \
    acc0##a = _mm512_dpbusd_epi32(acc0##a, xv, w0);                                         \
    acc1##a = _mm512_dpbusd_epi32(acc1##a, xv, w1);                                         \
    acc2##a = _mm512_dpbusd_epi32(acc2##a, xv, w2);                                         \
    acc3##a = _mm512_dpbusd_epi32(acc3##a, xv, w3);                                         \
  }
template <int A>
void I8Tile4(const int8_t* w, int64_t k, int64_t kv, const uint8_t* xu, int64_t xu_stride, int32_t (&sums)[A][4]) {
  static_assert(A >= 1 && A <= 4);
  BP_ZERO_ACC16
  __m512i n0 = z, n1 = z, n2 = z, n3 = z;
  if (kv > 0) Load4Rows(w, k, n0, n1, n2, n3);
  for (int64_t j = 0; j < kv; j += 64) {
    const __m512i w0 = n0, w1 = n1, w2 = n2, w3 = n3;
    Load4Rows(w + std::min(j + 64, kv - 64), k, n0, n1, n2, n3);  // the last chunk loads itself again
    for (int i = 0; i < 4; ++i) _mm_prefetch((const char*)(w + (kI8PrefetchTiles * 4 + i) * k + j), _MM_HINT_T0);
    BP_I8_ACT_STEP(0)
    BP_I8_ACT_STEP(1)
    BP_I8_ACT_STEP(2)
    BP_I8_ACT_STEP(3)
  }
  const __m512i all[4][4] = BP_ACC16_ROWS;
  for (int a = 0; a < A; ++a) _mm_storeu_si128((__m128i*)sums[a], ReduceAdd4(all[0][a], all[1][a], all[2][a], all[3][a]));
}
#undef BP_I8_ACT_STEP
#undef BP_ACC16_ROWS
#undef BP_ZERO_ACC16

// Rows r .. r+R-1 for activations a0 .. a0+A-1: the tile, then the offset and the tail.
template <int R, int A>
void I8RowsActs(const int8_t* w, const int32_t* row_sums, int64_t k, int64_t kv, int64_t r, int a0,
                const int8_t* const* x, const uint8_t* xu, int32_t* const* out) {
  int32_t sums[A][R];
  if constexpr (R == 4) {
    I8Tile4<A>(w + r * k, k, kv, xu + a0 * kv, kv, sums);
  } else {
    I8Tile<R, A>(w + r * k, k, kv, xu + a0 * kv, kv, sums);
  }
  for (int a = 0; a < A; ++a) {
    for (int i = 0; i < R; ++i) {
      const int8_t* wr = w + (r + i) * k;
      int32_t sum = sums[a][i], tail_sum = 0;
      for (int64_t t = kv; t < k; ++t) {
        sum += static_cast<int32_t>(wr[t]) * x[a0 + a][t];
        tail_sum += wr[t];
      }
      out[a0 + a][r + i] = sum - 128 * (row_sums[r + i] - tail_sum);
    }
  }
}

template <int R>
void I8RowTile(const int8_t* w, const int32_t* row_sums, int64_t k, int64_t kv, int64_t r, int n_act,
               const int8_t* const* x, const uint8_t* xu, int32_t* const* out) {
  int a = 0;
  for (; a + 4 <= n_act; a += 4) I8RowsActs<R, 4>(w, row_sums, k, kv, r, a, x, xu, out);
  for (; a + 2 <= n_act; a += 2) I8RowsActs<R, 2>(w, row_sums, k, kv, r, a, x, xu, out);
  for (; a < n_act; ++a) I8RowsActs<R, 1>(w, row_sums, k, kv, r, a, x, xu, out);
}

void I8Gemm(const int8_t* w, const int32_t* row_sums, int64_t k, int64_t n_rows, int n_act, const int8_t* const* x,
            int32_t* const* out) {
  if (n_act == 1) {  // one activation streams best as the gemv
    I8Gemv(w, row_sums, k, n_rows, x[0], out[0]);
    return;
  }
  const int64_t kv = k & ~int64_t{63};
  // Activation a at xu[a * kv], in unsigned range, each starting on a cache line: the
  // tiles load 64 bytes at a time, and from a plain vector (16-byte aligned) every load
  // straddled two lines. Zen 5, 2 threads, the 2B-4T head's 128256 x 2560 rows against
  // 8 activations: 10.0-10.4 ms misaligned, 8.0 aligned (median of 15, alternating).
  thread_local CacheAlignedVector<uint8_t> xu;
  xu.resize(static_cast<size_t>(n_act * kv));
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int a = 0; a < n_act; ++a) {
    for (int64_t j = 0; j < kv; j += 64) {
      _mm512_storeu_si512((void*)(xu.data() + a * kv + j),
                          _mm512_xor_si512(_mm512_loadu_si512((const void*)(x[a] + j)), flip));
    }
  }
  int64_t r = 0;
  for (; r + 4 <= n_rows; r += 4) I8RowTile<4>(w, row_sums, k, kv, r, n_act, x, xu.data(), out);
  for (; r < n_rows; ++r) I8RowTile<1>(w, row_sums, k, kv, r, n_act, x, xu.data(), out);
}

// ---------------------------------------------------------------- F16 rows . F16 vectors
inline __m512 LoadF16x16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }

// ggml_vec_dot_f16 of the AVX-512 build, for blocks of 16 rows against up to 4
// vectors at once (attention: a KV head's rows against every query head of its
// group). Per row and vector: 4 accumulators of 16 float lanes over the 64-value body,
// (l0 + l2) + (l1 + l3), the lane tree of _mm512_reduce_add_ps, then the k % 64 tail
// added one product at a time in double. Each row is loaded and converted once for
// all vectors; the vectors are converted to float once per call (per chunk when
// long), and the block's 16 reductions and tails run side by side.
constexpr int kDotBlockRows = 16;
constexpr int64_t kXFloats = 8192;  // converted vectors kept on the stack (32 KB)

// lane r = _mm512_reduce_add_ps(v[r]): every level adds the same lane pairs as the
// one-vector tree (halves 16 -> 8 -> 4 -> 2 -> 1), so each sum is bit-identical.
inline __m512 ReduceAdd16Vectors(const __m512 (&v)[16]) {
  __m512 s1[8], s2[4];
  for (int m = 0; m < 8; ++m) {  // [row 2m: lanes i + i+8 | row 2m+1: same]
    s1[m] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], 0x44),
                          _mm512_shuffle_f32x4(v[2 * m], v[2 * m + 1], 0xEE));
  }
  for (int n = 0; n < 4; ++n) {  // 128-bit chunk c: row 4n+c, lanes i + i+4
    s2[n] = _mm512_add_ps(_mm512_shuffle_f32x4(s1[2 * n], s1[2 * n + 1], 0x88),
                          _mm512_shuffle_f32x4(s1[2 * n], s1[2 * n + 1], 0xDD));
  }
  // chunk c: [row c: i + i+2 (i = 0, 1) | row 4+c: same], then rows 8+c, 12+c
  const __m512 t0 = _mm512_add_ps(_mm512_shuffle_ps(s2[0], s2[1], 0x44), _mm512_shuffle_ps(s2[0], s2[1], 0xEE));
  const __m512 t1 = _mm512_add_ps(_mm512_shuffle_ps(s2[2], s2[3], 0x44), _mm512_shuffle_ps(s2[2], s2[3], 0xEE));
  // chunk c: the sums of rows c, 4+c, 8+c, 12+c (lane 4c + j holds row 4j + c)
  const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, 0x88), _mm512_shuffle_ps(t0, t1, 0xDD));
  const __m512i to_rows = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(to_rows, r);
}

// Rows become lanes: t[c] lane r = t[r] lane c (before).
inline void Transpose16x16(__m512 (&t)[16]) {
  __m512 a[16], u[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_ps(t[2 * i], t[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_ps(t[2 * i], t[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i + c], chunk L: column 4L + c of rows 4i .. 4i+3
    const __m512d a0 = _mm512_castps_pd(a[4 * i]), a1 = _mm512_castps_pd(a[4 * i + 1]);
    const __m512d a2 = _mm512_castps_pd(a[4 * i + 2]), a3 = _mm512_castps_pd(a[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 p0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), p1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
    const __m512 q0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), q1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
    t[c] = _mm512_shuffle_f32x4(p0, q0, 0x88);
    t[8 + c] = _mm512_shuffle_f32x4(p0, q0, 0xDD);
    t[4 + c] = _mm512_shuffle_f32x4(p1, q1, 0x88);
    t[12 + c] = _mm512_shuffle_f32x4(p1, q1, 0xDD);
  }
}

// One row x A vectors over the body values [i0, i1) (multiples of 64); xf holds the
// vectors' values from i0 on (vector a at xf + a * xf_stride). The row's A x 4
// accumulators are in acc (zero if `fresh`); with `sums` set (the last chunk), their
// (l0 + l2) + (l1 + l3) goes to sums[a][r] instead.
template <int A>
inline void DotRowBody(const uint16_t* w, int64_t i0, int64_t i1, const float* xf, int64_t xf_stride, bool fresh,
                       __m512 (&acc)[A][4], __m512 (*sums)[kDotBlockRows], int r) {
  __m512 c[A][4];
  for (int a = 0; a < A; ++a)
    for (int j = 0; j < 4; ++j) c[a][j] = fresh ? _mm512_setzero_ps() : acc[a][j];
  for (int64_t i = i0; i < i1; i += 64) {
    for (int j = 0; j < 4; ++j) {
      const __m512 wv = LoadF16x16(w + i + 16 * j);
      for (int a = 0; a < A; ++a) {
        c[a][j] = _mm512_fmadd_ps(wv, _mm512_load_ps(xf + a * xf_stride + (i - i0) + 16 * j), c[a][j]);
      }
    }
  }
  for (int a = 0; a < A; ++a) {
    if (sums != nullptr) {
      sums[a][r] = _mm512_add_ps(_mm512_add_ps(c[a][0], c[a][2]), _mm512_add_ps(c[a][1], c[a][3]));
    } else {
      for (int j = 0; j < 4; ++j) acc[a][j] = c[a][j];
    }
  }
}

// Values [i0, i1) of row w.
inline void PrefetchValues(const uint16_t* w, int64_t i0, int64_t i1) {
  const char* p = reinterpret_cast<const char*>(w + i0);
  for (int64_t b = 0; b < (i1 - i0) * 2; b += 64) _mm_prefetch(p + b, _MM_HINT_T0);
}

inline void ToFloat(const uint16_t* x, int64_t n, float* y) {
  for (int64_t i = 0; i < n; i += 16) _mm512_store_ps(y + i, LoadF16x16(x + i));
}

// A vectors (x[a]) against all rows; out[a][r].
template <int A>
void F16DotRowsA(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const uint16_t* const* x,
                 float* const* out) {
  const int64_t np = k & ~int64_t{63}, tail = k - np;
  const int64_t chunk = std::max<int64_t>(64, std::min<int64_t>(np, kXFloats / A / 64 * 64));
  alignas(64) float xf[kXFloats];  // [A][chunk]
  alignas(64) float xt[A][64];     // the tail values
  for (int a = 0; a < A; ++a) {
    for (int64_t j = 0; j < tail; ++j) xt[a][j] = Fp16ToFp32(x[a][np + j]);
  }
  const bool one_chunk = np <= chunk;
  if (one_chunk) {
    for (int a = 0; a < A; ++a) ToFloat(x[a], np, xf + a * chunk);
  }
  for (int64_t r0 = 0; r0 < n_rows; r0 += kDotBlockRows) {
    const int rows = static_cast<int>(std::min<int64_t>(kDotBlockRows, n_rows - r0));
    const uint16_t* wr[kDotBlockRows];
    for (int r = 0; r < kDotBlockRows; ++r) wr[r] = w + (r0 + std::min(r, rows - 1)) * w_stride;
    // per row and vector: the 4 accumulators while chunks remain, then their sum
    __m512 acc[kDotBlockRows][A][4];
    __m512 v[A][kDotBlockRows];
    for (int a = 0; a < A; ++a)
      for (int r = 0; r < kDotBlockRows; ++r) v[a][r] = _mm512_setzero_ps();
    for (int64_t c0 = 0; c0 < np; c0 += chunk) {
      const int64_t c1 = std::min(np, c0 + chunk);
      if (!one_chunk) {
        for (int a = 0; a < A; ++a) ToFloat(x[a] + c0, c1 - c0, xf + a * chunk);
      }
      const bool fresh = c0 == 0, last = c1 == np;
      // The tail values are read only after the block's bodies, one line per row that
      // the hardware prefetchers did not bring: fetched now, they arrive meanwhile.
      // Zen 5, one thread, kernels_bench BM_AttentionDecodeStep/160/2 (8 sequences'
      // caches from memory, 32-value tails): 17.8 ms against 22.6 (median of 5);
      // /320/2 (no tail) unchanged. Prefetching whole rows ahead instead made /320 slower.
      if (last && tail > 0) {
        for (int r = 0; r < rows; ++r) PrefetchValues(wr[r], np, k);
      }
      for (int r = 0; r < rows; ++r) DotRowBody<A>(wr[r], c0, c1, xf, chunk, fresh, acc[r], last ? v : nullptr, r);
    }
    const __mmask16 row_mask = static_cast<__mmask16>((1u << rows) - 1);
    __m512 body[A];
    for (int a = 0; a < A; ++a) body[a] = ReduceAdd16Vectors(v[a]);
    if (tail == 0) {
      for (int a = 0; a < A; ++a) _mm512_mask_storeu_ps(out[a] + r0, row_mask, body[a]);
      continue;
    }
    // The tail: each row one lane of a double vector (rows 0-7 lo, 8-15 hi), every
    // vector its own chains, the block's rows side by side.
    __m512 t[4][16];  // t[j / 16][j % 16] lane r = row r's value np + j
    for (int64_t j0 = 0; j0 < tail; j0 += 16) {
      const int n = static_cast<int>(std::min<int64_t>(16, tail - j0));
      const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
      for (int r = 0; r < kDotBlockRows; ++r) t[j0 / 16][r] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, wr[r] + np + j0));
      Transpose16x16(t[j0 / 16]);
    }
    __m512d lo[A], hi[A];
    for (int a = 0; a < A; ++a) {
      lo[a] = _mm512_cvtps_pd(_mm512_castps512_ps256(body[a]));
      hi[a] = _mm512_cvtps_pd(_mm512_extractf32x8_ps(body[a], 1));
    }
    for (int64_t j = 0; j < tail; ++j) {
      for (int a = 0; a < A; ++a) {
        const __m512 p = _mm512_mul_ps(t[j / 16][j % 16], _mm512_set1_ps(xt[a][j]));
        lo[a] = _mm512_add_pd(lo[a], _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
        hi[a] = _mm512_add_pd(hi[a], _mm512_cvtps_pd(_mm512_extractf32x8_ps(p, 1)));
      }
    }
    for (int a = 0; a < A; ++a) {
      const __m512 sums = _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo[a])), _mm512_cvtpd_ps(hi[a]), 1);
      _mm512_mask_storeu_ps(out[a] + r0, row_mask, sums);
    }
  }
}

void F16DotRowsMulti(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const uint16_t* x,
                     int64_t x_stride, int64_t n_x, float* out, int64_t out_stride) {
  const uint16_t* xs[4];
  float* outs[4];
  int64_t a = 0;
  auto group = [&](int n) {
    for (int i = 0; i < n; ++i) {
      xs[i] = x + (a + i) * x_stride;
      outs[i] = out + (a + i) * out_stride;
    }
    a += n;
  };
  while (n_x - a >= 4) {
    group(4);
    F16DotRowsA<4>(w, w_stride, n_rows, k, xs, outs);
  }
  if (n_x - a >= 2) {
    group(2);
    F16DotRowsA<2>(w, w_stride, n_rows, k, xs, outs);
  }
  if (n_x - a == 1) {
    group(1);
    F16DotRowsA<1>(w, w_stride, n_rows, k, xs, outs);
  }
}

void F16DotRows(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const uint16_t* x, float* out) {
  F16DotRowsMulti(w, w_stride, n_rows, k, x, 0, 1, out, 0);
}

// tinyBLAS<16, __m512>: one accumulator per output.
template <int R, int A>
void F16Tile(const uint16_t* w, int64_t w_stride, int64_t k, const float* x, int64_t x_stride, float* out,
             int64_t out_stride) {
  __m512 acc[R][A];
  for (int i = 0; i < R; ++i)
    for (int a = 0; a < A; ++a) acc[i][a] = _mm512_setzero_ps();
  for (int64_t l = 0; l < k; l += 16) {
    __m512 xv[A];
    for (int a = 0; a < A; ++a) xv[a] = _mm512_loadu_ps(x + a * x_stride + l);
    for (int i = 0; i < R; ++i) {
      const __m512 wv = LoadF16x16(w + i * w_stride + l);
      for (int a = 0; a < A; ++a) acc[i][a] = _mm512_fmadd_ps(wv, xv[a], acc[i][a]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int a = 0; a < A; ++a) out[a * out_stride + i] = _mm512_reduce_add_ps(acc[i][a]);
}

void F16GemmF32(const uint16_t* w, int64_t w_stride, int64_t n_rows, int64_t k, const float* x, int64_t x_stride,
                int64_t n_act, float* out, int64_t out_stride) {
  int64_t a = 0;
  for (; a + 4 <= n_act; a += 4) {
    int64_t r = 0;
    for (; r + 2 <= n_rows; r += 2)
      F16Tile<2, 4>(w + r * w_stride, w_stride, k, x + a * x_stride, x_stride, out + a * out_stride + r, out_stride);
    for (; r < n_rows; ++r)
      F16Tile<1, 4>(w + r * w_stride, w_stride, k, x + a * x_stride, x_stride, out + a * out_stride + r, out_stride);
  }
  for (; a < n_act; ++a) {
    int64_t r = 0;
    for (; r + 4 <= n_rows; r += 4)
      F16Tile<4, 1>(w + r * w_stride, w_stride, k, x + a * x_stride, x_stride, out + a * out_stride + r, out_stride);
    for (; r < n_rows; ++r)
      F16Tile<1, 1>(w + r * w_stride, w_stride, k, x + a * x_stride, x_stride, out + a * out_stride + r, out_stride);
  }
}

// ggml_v_expf, 16 lanes (see GgmlExpf in kernels_internal.h for the scalar twin).
inline __m512 ExpGgml(__m512 x) {
  const __m512 r = _mm512_set1_ps(0x1.8p23f);
  const __m512 z = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p+0f), r);
  const __m512 n = _mm512_sub_ps(z, r);
  const __m512 b = _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                    _mm512_fnmadd_ps(n, _mm512_set1_ps(0x1.62e4p-1f), x));
  const __m512 u = _mm512_mul_ps(b, b);
  const __m512 j = _mm512_fmadd_ps(
      _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                      _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
      u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, _mm512_set1_ps(1.0f)));
  const __m512 res = _mm512_scalef_ps(j, n);
  // Lanes where |n| > 192 or n is NaN (x = -inf): 0 for n <= 0, else +inf.
  const __mmask16 fine = _mm512_cmp_ps_mask(_mm512_abs_ps(n), _mm512_set1_ps(192), _CMP_LE_OQ);
  const __m512 alt = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(n, _mm512_setzero_ps(), _CMP_LE_OQ),
                                          _mm512_set1_ps(INFINITY), _mm512_setzero_ps());
  return _mm512_mask_blend_ps(fine, alt, res);
}

double SoftmaxExp(const float* x, float max, float* y, int64_t n) {
  double sum = 0.0;
  int64_t i = 0;
  const __m512 vmax = _mm512_set1_ps(max);
  for (; i + 16 <= n; i += 16) {
    const __m512 v = ExpGgml(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmax));
    _mm512_storeu_ps(y + i, v);
    sum += static_cast<double>(_mm512_reduce_add_ps(v));
  }
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - max);
    sum += static_cast<double>(y[i]);
  }
  return sum;
}

// ---------------------------------------------------------------- RMS norm sums
// Value j of 8 rows into vector j (v[r] lane j becomes v[j] lane r).
inline void Transpose8x8(__m256 (&v)[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 4h .. 4h+3; u[4h + c], 128-bit lane L: value 4L + c
    u[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);
    u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);
    u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);
    u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);
  }
  for (int c = 0; c < 4; ++c) {
    v[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
    v[4 + c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
  }
}

// Rows in groups of 8, one double lane each: 8 values of every row are loaded and
// transposed, and their float squares added in order, so each lane is ggml's chain.
// (One row alone gains nothing from this: its chain is the whole cost.)
void SumSquaresRows(const float* x, int64_t x_stride, int64_t n_rows, int64_t n, double* sums) {
  if (n_rows == 1) {
    SumSquaresRowsScalar(x, x_stride, n_rows, n, sums);
    return;
  }
  for (int64_t r0 = 0; r0 < n_rows; r0 += 8) {
    const int rows = static_cast<int>(std::min<int64_t>(8, n_rows - r0));
    const float* xr[8];
    for (int r = 0; r < 8; ++r) xr[r] = x + (r0 + std::min(r, rows - 1)) * x_stride;
    __m512d acc = _mm512_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 v[8];
      for (int r = 0; r < 8; ++r) v[r] = _mm256_loadu_ps(xr[r] + i);
      Transpose8x8(v);
      for (int j = 0; j < 8; ++j) acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_mul_ps(v[j], v[j])));
    }
    for (; i < n; ++i) {
      alignas(32) float sq[8];
      for (int r = 0; r < 8; ++r) sq[r] = xr[r][i] * xr[r][i];
      acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_load_ps(sq)));
    }
    alignas(64) double lanes[8];
    _mm512_store_pd(lanes, acc);
    for (int r = 0; r < rows; ++r) sums[r0 + r] = lanes[r];
  }
}

// I2sOutputsScalar, 16 values at a time; the last 1-15 under a mask.
void I2sOutputs(const int32_t* sums, int64_t n, int32_t act_sum, float act_scale, float w_scale, float* y) {
  const __m512 s = _mm512_set1_ps(static_cast<float>(act_sum));
  const __m512 d = _mm512_set1_ps(act_scale), m = _mm512_set1_ps(w_scale);
  for (int64_t r = 0; r < n; r += 16) {
    const __mmask16 k = n - r >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - r)) - 1);
    const __m512 v = _mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(k, sums + r));
    _mm512_mask_storeu_ps(y + r, k, _mm512_mul_ps(_mm512_div_ps(_mm512_sub_ps(v, s), d), m));
  }
}

// ScreenBoundsScalar, 8 rows at a time; the last 1-7 under a mask.
void ScreenBounds(const int32_t* isum, const float* scale, const float* slope_x, const float* slope_d, int64_t n,
                  double inv_t, double x_norm, double d_norm, double bound_scale, double* lo, double* hi) {
  const __m512d t = _mm512_set1_pd(inv_t), xn = _mm512_set1_pd(x_norm), dn = _mm512_set1_pd(d_norm);
  const __m512d u = _mm512_set1_pd(0x1p-50), bs = _mm512_set1_pd(bound_scale);
  const __m512d inf = _mm512_set1_pd(std::numeric_limits<double>::infinity());
  const __m512d minus_inf = _mm512_set1_pd(-std::numeric_limits<double>::infinity());
  const __m512d abs_mask = _mm512_castsi512_pd(_mm512_set1_epi64(0x7FFFFFFFFFFFFFFF));
  constexpr int kNotFinite = 0x01 | 0x08 | 0x10 | 0x80;  // fpclass: QNaN, +inf, -inf, SNaN
  for (int64_t r = 0; r < n; r += 8) {
    const __mmask8 m = n - r >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << (n - r)) - 1);
    const __m512d sum = _mm512_cvtepi32_pd(_mm256_maskz_loadu_epi32(m, isum + r));
    const __m512d sc = _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, scale + r));
    const __m512d approx = _mm512_mul_pd(_mm512_mul_pd(sum, sc), t);
    __m512d b = _mm512_add_pd(_mm512_mul_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, slope_x + r)), xn),
                              _mm512_mul_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, slope_d + r)), dn));
    b = _mm512_add_pd(b, _mm512_mul_pd(u, _mm512_add_pd(_mm512_and_pd(approx, abs_mask), b)));
    b = _mm512_mul_pd(b, bs);
    const __mmask8 bad = _mm512_fpclass_pd_mask(approx, kNotFinite) | _mm512_fpclass_pd_mask(b, kNotFinite);
    _mm512_mask_storeu_pd(lo + r, m, _mm512_mask_blend_pd(bad, _mm512_sub_pd(approx, b), minus_inf));
    _mm512_mask_storeu_pd(hi + r, m, _mm512_mask_blend_pd(bad, _mm512_add_pd(approx, b), inf));
  }
}

}  // namespace

const Kernels& Avx512Kernels() {
  static const Kernels k = [] {
    Kernels t = Avx2Kernels();  // TQ, Q8_K, i8s quantizer and conversions: AVX2 versions
    t.name = "avx512";
    t.path = KernelPath::kAvx512;
    t.i2s_gemv = I2sGemv;
    t.i2s_gemm = I2sGemm;
    t.i2s_prepare_act = PrepareAct;
    t.i2s_prepare_acts = PrepareActs;
    t.i2s_outputs = I2sOutputs;
    t.screen_bounds = ScreenBounds;
    t.f16_dot_rows = F16DotRows;
    t.f16_dot_rows_multi = F16DotRowsMulti;
    t.f16_gemm_f32 = F16GemmF32;
    t.i8_gemv = I8Gemv;
    t.i8_gemm = I8Gemm;
    t.softmax_exp = SoftmaxExp;
    t.sum_squares_rows = SumSquaresRows;
    return t;
  }();
  return k;
}

}  // namespace bitparity::kernels_internal
