// File: engine/gguf/gguf_format.h
//
// The GGUF container format (versions 2 and 3), as read by gguf_reader.cc and
// written by gguf_writer.cc. All integers are little-endian; the reader and writer
// assume a little-endian host (x86-64, aarch64) and say so with a static_assert.
//
// A file is, in order:
//
//   header          magic "GGUF" (4 bytes) | version u32 | n_tensors u64 | n_kv u64
//   n_kv entries    key (string) | value_type u32 | value
//   n_tensors infos name (string) | n_dims u32 | ne[n_dims] u64 | ggml_type u32 | offset u64
//   padding         zeros up to the next multiple of `alignment`
//   tensor data     each tensor at data_start + offset; offsets are multiples of
//                   `alignment`; gaps between tensors are zero padding
//
// string = length u64 | length bytes of UTF-8, no terminator.
// value  = a scalar of its type's size (bool is one byte), a string, or an array:
//          element_type u32 | count u64 | count elements (arrays may nest).
// `alignment` is 32 unless the metadata holds `general.alignment` (u32, a nonzero
// power of two).
//
// Version 1 used u32 counts and lengths and is not supported; the layout above is
// common to v2 and v3. v3 also allows big-endian files: their magic bytes are the
// same, but the version then reads as 0x03000000 here, so they are rejected as an
// unsupported version (Unimplemented) with a hint.
#pragma once

#include <cstdint>

namespace bitparity::gguf_format {

// "GGUF" read as a little-endian u32.
constexpr uint32_t kMagic = 0x46554747;
constexpr uint32_t kMinVersion = 2;
constexpr uint32_t kMaxVersion = 3;

constexpr uint64_t kMagicSize = 4;
constexpr uint64_t kVersionSize = 4;
constexpr uint64_t kCountSize = 8;  // n_tensors, n_kv, string length, array count
constexpr uint64_t kHeaderSize = kMagicSize + kVersionSize + kCountSize + kCountSize;  // 24

constexpr uint64_t kTypeSize = 4;  // a value_type or ggml_type field
constexpr uint64_t kMinStringSize = kCountSize;  // an empty string is just its length

// Smallest possible metadata entry: empty key, type, one-byte value.
constexpr uint64_t kMinKvSize = kMinStringSize + kTypeSize + 1;  // 13
// Smallest possible tensor info: empty name, n_dims, one dimension, type, offset.
constexpr uint64_t kMinTensorInfoSize = kMinStringSize + 4 + 8 + kTypeSize + 8;  // 32
// Smallest encoding of an array value: element_type + count.
constexpr uint64_t kArrayHeaderSize = kTypeSize + kCountSize;  // 12

constexpr uint32_t kMaxDims = 4;        // GGML_MAX_DIMS
constexpr int kMaxArrayNesting = 16;    // deeper nesting is treated as corruption
constexpr uint64_t kDefaultAlignment = 32;  // GGUF_DEFAULT_ALIGNMENT
constexpr const char kAlignmentKey[] = "general.alignment";

// Encoded size of a fixed-size value type (the numbering of GgufValueType), or 0
// for string (8 + length), array (12 + elements) and unknown type numbers.
constexpr uint64_t FixedValueSize(uint32_t value_type) {
  switch (value_type) {
    case 0: case 1: case 7: return 1;    // u8, i8, bool
    case 2: case 3: return 2;            // u16, i16
    case 4: case 5: case 6: return 4;    // u32, i32, f32
    case 10: case 11: case 12: return 8; // u64, i64, f64
    default: return 0;
  }
}
constexpr uint32_t kMaxValueType = 12;  // f64

// Rounds `x` up to a multiple of `alignment` (a power of two). REQUIRES: no overflow,
// i.e. x <= UINT64_MAX - alignment.
constexpr uint64_t AlignUp(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) & ~(alignment - 1);
}

constexpr bool IsPowerOfTwo(uint64_t x) { return x != 0 && (x & (x - 1)) == 0; }

}  // namespace bitparity::gguf_format
