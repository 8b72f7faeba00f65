// File: engine/quant/i2s.h
//
// bitnet.cpp's I2_S weight format (ggml type 36, x86 layout) and its int8 activation
// quantizer, as plain scalar reference code. The fast kernels live in engine/kernels
// and are tested against these.
//
// Layout of a tensor of n elements (n a multiple of 128), flattened row-major:
//   bytes [0, n/4):     128-element blocks of 32 bytes. In block b, byte g (0..31) is
//                       c[g]<<6 | c[32+g]<<4 | c[64+g]<<2 | c[96+g], where c[j] is the
//                       2-bit code of element 128b + j.
//   bytes [n/4, n/4+4): float32 per-tensor scale; then 28 bytes of padding.
// Codes: 0 -> -1, 1 -> 0, 2 -> +1. Code 3 never appears in files bitnet.cpp writes;
// decoding reads it as 0, CheckI2sCodes() reports it so a loader can reject the file,
// and the integer dot products use the raw code (3), as bitnet.cpp's kernel does.
// A row of ne0 elements (ne0 a multiple of 128) starts at byte r * ne0 / 4.
//
// Matmul arithmetic (ggml.c, I2_S mul_mat), for weight row w and activation row x:
//   QuantizeRowI8S(x) -> int8 q, act_scale s, act_sum S
//   sum = I2sDotRow(w, q) = sum_j code_j * q_j        (integer, exact)
//   y   = I2sOutput(sum, S, s, w_scale) = ((float)sum - (float)S) / s * w_scale
// so that y = sum_j (code_j - 1) * q_j / s * w_scale.
//
// Thread safety: pure functions.
//
//   float s; int32_t S;
//   QuantizeRowI8S(x, k, q.data(), &s, &S);
//   float y = I2sOutput(I2sDotRow(w_row, q.data(), k), S, s, I2sReadScale(w, n));
#pragma once

#include <array>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"

namespace bitparity {

constexpr int64_t kI2sBlockElems = 128;  // elements per packed block
constexpr int64_t kI2sBlockBytes = 32;   // bytes per packed block (2 bits per element)
constexpr int64_t kI2sTrailerBytes = 32; // scale (float32) + padding after the packed data

// Bytes of an I2_S tensor of n elements: n/4 + 32.
constexpr int64_t I2sTensorBytes(int64_t n) { return n / 4 + kI2sTrailerBytes; }

// The 2-bit code (0..3) of element i of the tensor starting at `data`.
inline uint8_t I2sCodeAt(const uint8_t* data, int64_t i) {
  const int64_t j = i % kI2sBlockElems;
  const uint8_t byte = data[(i / kI2sBlockElems) * kI2sBlockBytes + j % 32];
  return (byte >> (6 - 2 * (j / 32))) & 3;
}

// Code -> ternary value: 0 -> -1, 1 -> 0, 2 -> +1, 3 -> 0.
inline int8_t I2sCodeToTrit(uint8_t code) { return code == 0 ? -1 : (code == 2 ? 1 : 0); }

// The per-tensor scale of an I2_S tensor of n elements (the float at byte n/4).
float I2sReadScale(const uint8_t* data, int64_t n);

// Decodes `n` elements (n a multiple of 128) starting at `data` (a row start or the
// tensor start) into trits in {-1, 0, +1}.
void I2sDecodeTrits(const uint8_t* data, int64_t n, int8_t* trits);

// Decodes `n` elements to float: trit * scale.
void I2sDequantize(const uint8_t* data, int64_t n, float scale, float* out);

// Packs one 128-element block of trits (each -1, 0 or +1) into its 32 bytes:
// byte[g] = c[g]<<6 | c[32+g]<<4 | c[64+g]<<2 | c[96+g], code c = trit + 1.
// REQUIRES: every trit in {-1, 0, 1} (I2sPack checks; this does not).
void I2sPackBlock(const int8_t* trits, uint8_t* out);

// The 32 bytes that follow the packed data: the float32 scale, then zeros.
std::array<uint8_t, kI2sTrailerBytes> I2sTrailer(float scale);

// Packs n trits (each -1, 0 or +1; n a multiple of 128) and the scale into
// out[0, n/4 + 32). InvalidArgument if n is not a multiple of 128 or a trit is
// out of range (names the index).
absl::Status I2sPack(const int8_t* trits, int64_t n, float scale, uint8_t* out);

// DataLoss naming the first element whose code is 3, OK otherwise.
absl::Status CheckI2sCodes(const uint8_t* data, int64_t n);

// Integer sum over one row of n elements (n a multiple of 128): sum_j code_j * q_j
// (raw codes 0..3).
int32_t I2sDotRow(const uint8_t* row, const int8_t* q, int64_t n);

// bitnet.cpp's activation quantizer (quantize_row_i8_s): m = max(max|x|, 1e-5) in
// double; s = (float)(127 / m); q = clamp(round_half_even(x[i] * s), -128, 127) with
// x[i] * s a float product; *sum = sum of q. REQUIRES: x finite.
void QuantizeRowI8S(const float* x, int64_t n, int8_t* q, float* scale, int32_t* sum);

// ggml.c's float epilogue of the I2_S matmul, in its exact operation order.
inline float I2sOutput(int32_t sum, int32_t act_sum, float act_scale, float w_scale) {
  return (static_cast<float>(sum) - static_cast<float>(act_sum)) / act_scale * w_scale;
}

// ggml's nearest_int: round half to even via the 1.5 * 2^23 trick.
// REQUIRES: |f| <= 4194303.
inline int NearestInt(float f) {
  const float v = f + 12582912.f;  // the float add does the rounding (no -ffast-math here)
  uint32_t i;
  std::memcpy(&i, &v, sizeof(i));
  return static_cast<int>(i & 0x007FFFFFu) - 0x00400000;
}

}  // namespace bitparity
