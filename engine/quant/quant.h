// File: engine/quant/quant.h
//
// engine/quant: how tensors are stored, and the scalar reference arithmetic on them.
// Everything here is plain, portable C++ written to be read next to ggml; it is the
// ground truth the SIMD kernels in engine/kernels are tested against, and the code a
// "scalar reference" run uses.
//
//   tensor_type.h type numbers, block geometry, tensor byte sizes
//   fp16.h        F16 / BF16 <-> float, bit-exact with F16C / ggml
//   blocks.h      Q8_0, Q8_K, TQ1_0, TQ2_0 block structs (byte layouts)
//   i2s.h         bitnet.cpp's I2_S weights + int8 activation quantizer + integer dot
//   ternary.h     TQ1_0 / TQ2_0 quantize, dequantize, dot with Q8_K
//   q8.h          Q8_0 and Q8_K quantize / dequantize, Q8_0 dot
//   dequantize.h  any supported row -> float32; F16 reference dot
//
// Ownership: functions read caller-owned buffers and write caller-owned buffers; no
// allocation except small stack scratch. Units: element counts (not bytes) unless a
// name says bytes. Thread safety: all functions are pure and reentrant.
//
// Example (one I2_S output element, exactly as bitnet.cpp computes it):
//   float s; int32_t S;
//   QuantizeRowI8S(x, k, q, &s, &S);
//   float y = I2sOutput(I2sDotRow(w + r * k / 4, q, k), S, s, I2sReadScale(w, n_rows * k));
#pragma once

#include "engine/quant/blocks.h"
#include "engine/quant/dequantize.h"
#include "base/fp16.h"
#include "engine/quant/tensor_type.h"
#include "engine/quant/i2s.h"
#include "engine/quant/q8.h"
#include "engine/quant/ternary.h"
