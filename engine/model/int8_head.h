// File: engine/model/int8_head.h
//
// The opt-in int8 output head (ModelOptions::head = HeadMode::kInt8). It CHANGES THE
// NUMERICS: logits are no longer those of bitnet.cpp's F16 head, so the mode is off by
// default and named wherever it is on (bitnet-run --head int8, the native server's
// --head int8, GetModelInfo build_extra.output_head). Why: the F16 head is more than
// half of the bytes a decode step reads on BitNet 2B-4T (657 of 1,178 MB); int8 halves
// them, and decode is memory-bound.
//
// Quantization at load: each head row gets one scale, max|w| / 127, and values
// round(w / scale) in [-127, 127]. At run time each activation row is quantized as the
// I2_S layers quantize theirs (quantize_row_i8s: 127 / max|x|), the dot product is an
// exact int32 (kernels' i8_gemv), and logit = isum / act_scale * row_scale.
// The drift this causes is measured with bitparity (README, "Int8 output head").
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/common/huge_page_buffer.h"
#include "engine/kernels/kernels.h"
#include "engine/model/weights.h"
#include "engine/runtime/thread_pool.h"

namespace bitparity {

// Per-row L2 norms the screened head's error bound needs (screened_head.h), measured
// in the same pass as the quantization, in double, then rounded UP to float (each is
// only ever used as an upper bound).
struct Int8RowNorms {
  float error = 0;  // ||w_r - s_r * q_r||_2: what the int8 row misses
  float quant = 0;  // ||s_r * q_r||_2: the dequantized int8 row
  float row = 0;    // ||w_r||_2: the float row itself
};

class Int8Head {
 public:
  // Quantizes `head` (F32, F16 or BF16 rows; others are InvalidArgument, as is a row
  // longer than 65536) on `pool`'s threads. With `norms`, also fills it ([rows]).
  static absl::StatusOr<Int8Head> Quantize(const WeightMatrix& head, ThreadPool& pool,
                                           std::vector<Int8RowNorms>* norms = nullptr);

  // x: [n][cols] floats -> y: [n][rows] logits. Rows are split across `pool`.
  void Forward(const Kernels& k, ThreadPool& pool, const float* x, int n, float* y) const;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  // Bytes a forward pass reads (values + scales + row sums).
  int64_t bytes() const;

  // The quantized rows, for callers that run i8_gemv themselves (screened_head.cc).
  const int8_t* values() const { return reinterpret_cast<const int8_t*>(values_.data()); }  // [rows][cols]
  const float* row_scales() const { return row_scale_.data(); }  // [rows]
  const int32_t* row_sums() const { return row_sum_.data(); }    // [rows]

 private:
  int64_t rows_ = 0, cols_ = 0;
  // [rows][cols], in 2 MiB pages: the decode step streams all of it (4 KiB pages
  // cost a TLB walk every 4 KiB, see engine/common/huge_page_buffer.h).
  HugePageBuffer values_;
  std::vector<float> row_scale_;   // [rows]: max|w| / 127
  std::vector<int32_t> row_sum_;   // [rows]: sum of the row's values
};

}  // namespace bitparity
