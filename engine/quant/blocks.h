// File: engine/quant/blocks.h
//
// The on-disk / in-memory block layouts of ggml's block-quantized types that this
// engine reads or produces, with their byte arithmetic checked at compile time.
// They match ggml's `block_*` structs byte for byte (little-endian, no padding), so
// a pointer into GGUF tensor data can be reinterpreted as an array of these.
//
//   Q8_0  (32 values):  fp16 d; int8 qs[32]                          = 2 + 32       = 34 B
//   Q8_K  (256 values): float d; int8 qs[256]; int16 bsums[16]       = 4 + 256 + 32 = 292 B
//   TQ1_0 (256 values): uint8 qs[48]; uint8 qh[4]; fp16 d            = 48 + 4 + 2   = 54 B
//       qs: 5 trits per byte (base 3, first trit most significant, scaled to a byte as
//       ceil(v * 256 / 243)); bytes 0..31 hold values [0,160) as 5 planes of 32, bytes
//       32..47 values [160,240) as 5 planes of 16; qh: 4 trits per byte for [240,256).
//   TQ2_0 (256 values): uint8 qs[64]; fp16 d                         = 64 + 2       = 66 B
//       qs: 2 bits per value; byte j*32+m, bits 2l..2l+1 hold value 128j + 32l + m.
//   Trits are stored as 0,1,2 meaning -1,0,+1; the value is (trit - 1) * d.
//
// Thread safety: plain data.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bitparity {

constexpr int kQK8_0 = 32;   // values per Q8_0 block
constexpr int kQK_K = 256;   // values per K-quant / TQ block

struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 2 + 32 bytes");

struct BlockQ8K {
  float d;               // float scale (1 / iscale)
  int8_t qs[kQK_K];      // quants
  int16_t bsums[kQK_K / 16];  // sums of each group of 16 quants
};
static_assert(sizeof(BlockQ8K) == 292, "Q8_K block is 4 + 256 + 32 bytes");

struct BlockTq1_0 {
  uint8_t qs[(kQK_K - 4 * kQK_K / 64) / 5];  // 48 bytes, 5 trits each
  uint8_t qh[kQK_K / 64];                    // 4 bytes, 4 trits each
  uint16_t d;                                // fp16 scale
};
static_assert(sizeof(BlockTq1_0) == 54, "TQ1_0 block is 48 + 4 + 2 bytes");

struct BlockTq2_0 {
  uint8_t qs[kQK_K / 4];  // 64 bytes, 4 values each
  uint16_t d;             // fp16 scale
};
static_assert(sizeof(BlockTq2_0) == 66, "TQ2_0 block is 64 + 2 bytes");

}  // namespace bitparity
