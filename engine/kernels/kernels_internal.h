// File: engine/kernels/kernels_internal.h
//
// Private to engine/kernels: the per-path tables (each defined in its own .cc, which
// is compiled with that path's -m flags) and small helpers the paths share. Only
// kernels.cc calls the table getters, after checking the CPU.
#pragma once

#include "engine/kernels/kernels.h"

namespace bitparity::kernels_internal {

const Kernels& ScalarKernels();
const Kernels& Avx2Kernels();
const Kernels& Avx512Kernels();

// Tree reduction of 16 float lanes as _mm512_reduce_add_ps computes it (GCC and
// clang): halves 16 -> 8 -> 4 -> 2 -> 1, each step lane[i] + lane[i + half].
inline float ReduceAdd16(const float v[16]) {
  float t8[8], t4[4];
  for (int i = 0; i < 8; ++i) t8[i] = v[i + 8] + v[i];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i + 4] + t8[i];
  const float a = t4[0] + t4[2];
  const float b = t4[1] + t4[3];
  return a + b;
}

// ggml's hsum_float_8 (AVX): (hi128 + lo128), then (0+2, 1+3), then the two.
inline float HsumFloat8(const float v[8]) {
  float r[4];
  for (int i = 0; i < 4; ++i) r[i] = v[i + 4] + v[i];
  const float a = r[0] + r[2];
  const float b = r[1] + r[3];
  return a + b;
}

}  // namespace bitparity::kernels_internal
