#include "engine/model/int8_head.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/quant/dequantize.h"

namespace bitparity {

namespace {

// sqrt of a sum of squares accumulated in double (relative error < 1e-12 for any row
// this head admits), inflated past that error and rounded up to float.
float NormUp(double sum_sq) {
  const double n = std::sqrt(sum_sq) * (1.0 + 1e-9);
  float f = static_cast<float>(n);
  if (static_cast<double>(f) < n) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

}  // namespace

absl::StatusOr<Int8Head> Int8Head::Quantize(const WeightMatrix& head, ThreadPool& pool,
                                            std::vector<Int8RowNorms>* norms) {
  if (head.type != GgmlType::kF32 && head.type != GgmlType::kF16 && head.type != GgmlType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("the int8 output head needs an F32, F16 or BF16 output tensor; '",
                                                   head.name, "' is ", GgmlTypeName(static_cast<uint32_t>(head.type))));
  }
  if (head.cols > 65536) {
    return absl::InvalidArgumentError(
        absl::StrCat("the int8 output head supports rows of at most 65536 values; '", head.name, "' has ", head.cols));
  }
  Int8Head h;
  h.rows_ = head.rows;
  h.cols_ = head.cols;
  absl::StatusOr<HugePageBuffer> values = HugePageBuffer::Allocate(static_cast<size_t>(head.rows * head.cols));
  if (!values.ok()) return values.status();
  h.values_ = std::move(*values);
  h.row_scale_.resize(head.rows);
  h.row_sum_.resize(head.rows);
  if (norms != nullptr) norms->assign(head.rows, Int8RowNorms{});
  std::atomic<bool> failed{false};
  pool.ParallelFor(head.rows, [&](int64_t r0, int64_t r1, int) {
    std::vector<float> row(head.cols);
    for (int64_t r = r0; r < r1; ++r) {
      if (!DequantizeRow(head.type, head.Row(r), head.cols, row.data()).ok()) {
        failed = true;
        return;
      }
      float m = 0.0f;
      for (float v : row) m = std::max(m, std::fabs(v));
      const float scale = m / 127.0f;
      const float inv = m > 0.0f ? 127.0f / m : 0.0f;
      int8_t* q = reinterpret_cast<int8_t*>(h.values_.data()) + r * head.cols;
      int32_t sum = 0;
      for (int64_t j = 0; j < head.cols; ++j) {
        const float v = std::nearbyint(row[j] * inv);
        q[j] = static_cast<int8_t>(std::clamp(v, -127.0f, 127.0f));
        sum += q[j];
      }
      h.row_scale_[r] = scale;
      h.row_sum_[r] = sum;
      if (norms != nullptr) {
        // s * q is exact in double (float times a small integer).
        double err = 0, quant = 0, w2 = 0;
        for (int64_t j = 0; j < head.cols; ++j) {
          const double dq = static_cast<double>(scale) * q[j];
          const double e = static_cast<double>(row[j]) - dq;
          err += e * e;
          quant += dq * dq;
          w2 += static_cast<double>(row[j]) * row[j];
        }
        (*norms)[r] = {NormUp(err), NormUp(quant), NormUp(w2)};
      }
    }
  }, 256);
  if (failed) return absl::DataLossError(absl::StrCat("could not read the rows of '", head.name, "'"));
  return h;
}

void Int8Head::Forward(const Kernels& k, ThreadPool& pool, const float* x, int n, float* y) const {
  std::vector<int8_t> xq(static_cast<size_t>(n) * cols_);
  std::vector<float> act_scale(n);
  std::vector<int32_t> act_sum(n);
  for (int t = 0; t < n; ++t) k.quantize_row_i8s(x + t * cols_, cols_, xq.data() + t * cols_, &act_scale[t], &act_sum[t]);
  pool.ParallelFor(rows_, [&](int64_t r0, int64_t r1, int) {
    // Blocks of rows that stay in L2 while every token reads them.
    constexpr int64_t kBlockRows = 128;
    int32_t sums[kBlockRows];
    for (int64_t b0 = r0; b0 < r1; b0 += kBlockRows) {
      const int64_t b1 = std::min(r1, b0 + kBlockRows);
      for (int t = 0; t < n; ++t) {
        k.i8_gemv(values() + b0 * cols_, row_sum_.data() + b0, cols_, b1 - b0, xq.data() + t * cols_, sums);
        float* yt = y + static_cast<int64_t>(t) * rows_;
        for (int64_t r = b0; r < b1; ++r) yt[r] = static_cast<float>(sums[r - b0]) / act_scale[t] * row_scale_[r];
      }
    }
  }, 16);
}

int64_t Int8Head::bytes() const {
  return static_cast<int64_t>(rows_ * cols_ + row_scale_.size() * sizeof(float) + row_sum_.size() * sizeof(int32_t));
}

}  // namespace bitparity
