// File: engine/quant/tensor_type.h
//
// The tensor element types that GGUF files name by number (ggml's `enum ggml_type`,
// extended by bitnet.cpp with I2_S = 36 and friends), their block geometry, and the
// byte size of a tensor of a given shape. The GGUF reader uses this to bounds-check
// tensor data before anything touches it; the model code uses it to pick kernels.
//
// Block geometry: a row of `ne0` elements is stored as ne0 / block_size blocks of
// type_size bytes each. I2_S is the exception: it is not row-blocked; the whole
// tensor is packed as n/4 bytes followed by 32 bytes holding one float32 scale
// (see engine/quant/i2s.h), exactly as bitnet.cpp's ggml_nbytes computes it.
//
// Thread safety: everything here is a pure function over constant tables.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace bitparity {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
  kI2_S = 36,  // bitnet.cpp: packed 2-bit ternary + one float32 per-tensor scale
  // bitnet.cpp's lookup-table layouts: readable (their byte sizes are bitnet.cpp's
  // ggml_nbytes) so that lint can name them; the model refuses them.
  kTL1 = 38,
  kTL2 = 39,
};

struct GgmlTypeTraits {
  const char* name;    // ggml's name, e.g. "f16", "i2_s", "tq2_0"
  int64_t block_size;  // elements per block (1 for plain types)
  int64_t type_size;   // bytes per block
  bool computable;     // true if this engine can dequantize / multiply it
};

// Traits of a type number read from a file; nullptr if the number is unknown.
const GgmlTypeTraits* FindGgmlTypeTraits(uint32_t type);

// Traits of a known type (never null).
const GgmlTypeTraits& GgmlTypeTraitsOf(GgmlType type);

// "f16", "i2_s", ...; "type(N)" for unknown numbers.
std::string GgmlTypeName(uint32_t type);

// Bytes that a tensor of type `type` and shape `ne` (ggml order: ne[0] is the
// contiguous row length) occupies in a file. Errors, never overflow:
//   InvalidArgument  a dimension is <= 0, or ne[0] is not a multiple of the block size
//                    (for I2_S: the element count is not a multiple of 128; for TL2:
//                    not 2-D, or rows shorter than 256)
//   OutOfRange       the size does not fit in 63 bits
absl::StatusOr<uint64_t> TensorByteSize(GgmlType type, absl::Span<const int64_t> ne);

// Bytes of one row of `ne0` elements (not meaningful for I2_S, which is not row-blocked:
// there it returns ne0 / 4).
uint64_t RowByteSize(GgmlType type, int64_t ne0);

}  // namespace bitparity
