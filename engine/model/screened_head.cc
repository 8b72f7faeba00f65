// The screened output head: int8 screen with a proven bound, exact rescoring of the
// survivors (the proof is in screened_head.h).
#include "engine/model/screened_head.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/fp16.h"
#include "engine/quant/tensor_type.h"

namespace bitparity {
namespace {

constexpr double kUnitF = 0x1p-24;  // float unit roundoff
constexpr double kUnitD = 0x1p-53;  // double unit roundoff
constexpr double kInf = std::numeric_limits<double>::infinity();

// Rows per thread hand-off (the screen of one row is ~40 vector ops).
constexpr int64_t kMinScreenRows = 1024;
// Candidate rows per thread hand-off (one F16 row is cols * 2 bytes).
constexpr int64_t kMinRescoreRows = 32;

float RoundUp(double v) {
  float f = static_cast<float>(v);
  if (static_cast<double>(f) < v) f = std::nextafter(f, std::numeric_limits<float>::infinity());
  return f;
}

// Sampler's repetition penalty on a float logit, and on a bound in double: the same
// monotone map, widened outwards by 2^-20 relative (more than the float rounding).
double PenaltyLow(double l, float p) {
  const double v = l > 0 ? l / p : l * p;
  return v - std::fabs(v) * 0x1p-20;
}
double PenaltyHigh(double l, float p) {
  const double v = l > 0 ? l / p : l * p;
  return v + std::fabs(v) * 0x1p-20;
}

// The k-th largest of lo (k <= lo.size()), with a k-entry min-heap in `heap`.
double KthLargest(const std::vector<double>& lo, int64_t n, int k, std::vector<double>& heap) {
  heap.assign(lo.begin(), lo.begin() + k);
  std::make_heap(heap.begin(), heap.end(), std::greater<double>());
  for (int64_t r = k; r < n; ++r) {
    if (lo[r] > heap.front()) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<double>());
      heap.back() = lo[r];
      std::push_heap(heap.begin(), heap.end(), std::greater<double>());
    }
  }
  return heap.front();
}

}  // namespace

absl::StatusOr<ScreenedHead> ScreenedHead::Build(const WeightMatrix& head, ThreadPool& pool, double bound_scale) {
  if (head.type != GgmlType::kF16) {
    return absl::InvalidArgumentError(absl::StrCat("the screened output head needs an F16 output tensor; '", head.name,
                                                   "' is ", GgmlTypeName(static_cast<uint32_t>(head.type))));
  }
  std::vector<Int8RowNorms> norms;
  absl::StatusOr<Int8Head> q = Int8Head::Quantize(head, pool, &norms);
  if (!q.ok()) return q.status();
  ScreenedHead h;
  h.head_ = head;
  h.int8_ = std::move(*q);
  h.bound_scale_ = bound_scale;
  // γ_{n+2} of the exact path's float summation (proof (b)).
  const double m = static_cast<double>(head.cols + 2) * kUnitF;
  const double gamma = m / (1.0 - m);
  h.slope_x_.resize(head.rows);
  h.slope_d_.resize(head.rows);
  for (int64_t r = 0; r < head.rows; ++r) {
    const Int8RowNorms& n = norms[r];
    h.slope_x_[r] = RoundUp((static_cast<double>(n.error) + gamma * n.row) * (1.0 + 1e-12));
    h.slope_d_[r] = n.quant;
  }
  return h;
}

absl::Status ScreenedHead::ReadRowsFrom(const std::string& path, uint64_t offset) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  fd_ = std::shared_ptr<const int>(new int(fd), [](const int* p) {
    ::close(*p);
    delete p;
  });
  file_offset_ = offset;
  return absl::OkStatus();
}

int64_t ScreenedHead::bytes() const {
  return int8_.bytes() + static_cast<int64_t>((slope_x_.size() + slope_d_.size()) * sizeof(float));
}

bool ScreenedHead::Prepare(const Kernels& k, const float* x, ScreenScratch& s) const {
  const int64_t n = cols(), rows_n = rows();
  s.xh.resize(n);
  s.xf.resize(n);
  s.xq.resize(n);
  s.isum.resize(rows_n);
  s.lo.resize(rows_n);
  s.hi.resize(rows_n);
  // The exact path's input, and its norm.
  k.fp32_to_fp16_row(x, s.xh.data(), n);
  k.fp16_to_fp32_row(s.xh.data(), s.xf.data(), n);
  double x2 = 0;
  for (int64_t i = 0; i < n; ++i) x2 += static_cast<double>(s.xf[i]) * s.xf[i];
  if (!std::isfinite(x2)) return false;
  // Its int8 quantization and what that misses (proof (a): D).
  float t = 0;
  int32_t a_sum = 0;
  k.quantize_row_i8s(s.xf.data(), n, s.xq.data(), &t, &a_sum);
  if (!(std::isfinite(t) && t > 0)) return false;
  double d2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double e = static_cast<double>(s.xf[i]) - static_cast<double>(s.xq[i]) / t;
    d2 += e * e;
  }
  s.X = std::sqrt(x2) * (1.0 + 1e-9);
  s.D = std::sqrt(d2) * (1.0 + 1e-9);
  s.inv_t = 1.0 / static_cast<double>(t);  // rounded: covered by the 8 u_d below
  return std::isfinite(s.X) && std::isfinite(s.D);
}

void ScreenedHead::ScreenRowsBatch(const Kernels& k, int64_t r0, int64_t r1,
                                   const std::vector<ScreenScratch*>& s) const {
  const int64_t n = cols();
  std::vector<const int8_t*> xq(s.size());
  std::vector<int32_t*> isum(s.size());
  for (size_t a = 0; a < s.size(); ++a) {
    xq[a] = s[a]->xq.data();
    isum[a] = s[a]->isum.data() + r0;
  }
  k.i8_gemm(int8_.values() + r0 * n, int8_.row_sums() + r0, n, r1 - r0, static_cast<int>(s.size()), xq.data(),
            isum.data());
  for (ScreenScratch* one : s) BoundRows(r0, r1, *one);
}

void ScreenedHead::BoundRows(int64_t r0, int64_t r1, ScreenScratch& s) const {
  const float* scales = int8_.row_scales();
  for (int64_t r = r0; r < r1; ++r) {
    const double approx = static_cast<double>(s.isum[r]) * scales[r] * s.inv_t;
    double b = slope_x_[r] * s.X + slope_d_[r] * s.D;
    b += 8 * kUnitD * (std::fabs(approx) + b);  // proof (c) and this arithmetic
    b *= bound_scale_;
    const bool ok = std::isfinite(approx) && std::isfinite(b);
    s.lo[r] = ok ? approx - b : -kInf;
    s.hi[r] = ok ? approx + b : kInf;
  }
}

bool ScreenedHead::Bounds(const Kernels& k, ThreadPool& pool, const float* x, ScreenScratch& s) const {
  if (!Prepare(k, x, s)) return false;
  const std::vector<ScreenScratch*> one = {&s};
  pool.ParallelFor(rows(), [&](int64_t r0, int64_t r1, int) { ScreenRowsBatch(k, r0, r1, one); }, kMinScreenRows);
  return true;
}

void ScreenedHead::ExactAll(const Kernels& k, ThreadPool& pool, const ScreenScratch& s, float* out) const {
  const uint16_t* w = reinterpret_cast<const uint16_t*>(head_.data);
  const int64_t stride = static_cast<int64_t>(head_.row_bytes / sizeof(uint16_t));
  pool.ParallelFor(rows(), [&](int64_t r0, int64_t r1, int) {
    k.f16_dot_rows(w + r0 * stride, stride, r1 - r0, cols(), s.xh.data(), out + r0);
  }, 16);
}

ScreenResult ScreenedHead::Logits(const Kernels& k, ThreadPool& pool, const float* x, const ScreenRequest& request,
                                  ScreenScratch& s, float* out) const {
  ScreenResult result;
  LogitsBatch(k, pool, 1, &x, std::array<const ScreenRequest*, 1>{&request}.data(),
              std::array<ScreenScratch*, 1>{&s}.data(), &out, &result);
  return result;
}

void ScreenedHead::LogitsBatch(const Kernels& k, ThreadPool& pool, int m, const float* const* x,
                               const ScreenRequest* const* requests, ScreenScratch* const* s, float* const* out,
                               ScreenResult* results) const {
  const int64_t rows_n = rows();
  // Step 1 per row; a row that needs (nearly) every logit skips the screen.
  std::vector<char> prepared(m);
  for (int a = 0; a < m; ++a) {
    if (std::max(1, requests[a]->top_k) >= rows_n) {
      s[a]->xh.resize(cols());
      k.fp32_to_fp16_row(x[a], s[a]->xh.data(), cols());
      prepared[a] = false;
    } else {
      prepared[a] = Prepare(k, x[a], *s[a]);  // fills s.xh before it can decline
    }
  }
  // Step 2: one int8 product for every prepared row, each block of weight rows read
  // from memory once for all of them.
  std::vector<ScreenScratch*> screened;
  for (int a = 0; a < m; ++a) {
    if (prepared[a]) screened.push_back(s[a]);
  }
  if (!screened.empty()) {
    pool.ParallelFor(rows_n, [&](int64_t r0, int64_t r1, int) { ScreenRowsBatch(k, r0, r1, screened); },
                     kMinScreenRows);
  }
  for (int a = 0; a < m; ++a) results[a] = Finish(k, pool, prepared[a], *requests[a], *s[a], out[a]);
}

ScreenResult ScreenedHead::Finish(const Kernels& k, ThreadPool& pool, bool prepared, const ScreenRequest& request,
                                  ScreenScratch& s, float* out) const {
  const int64_t rows_n = rows();
  ScreenResult result;
  auto full = [&] {  // REQUIRES: s.xh holds x in F16
    ExactAll(k, pool, s, out);
    result.fallback = true;
    if (result.candidates == 0) result.candidates = rows_n;
    return result;
  };
  if (!prepared) return full();
  const int top_k = std::max(1, request.top_k);
  // The penalty moves both ends of a penalized row's interval (monotone map).
  if (request.repetition_penalty != 1.0f) {
    for (int32_t id : request.penalized) {
      if (id < 0 || id >= rows_n) continue;
      s.lo[id] = PenaltyLow(s.lo[id], request.repetition_penalty);
      s.hi[id] = PenaltyHigh(s.hi[id], request.repetition_penalty);
    }
  }
  // L: the k-th largest lower bound; survivors: hi >= L.
  double L;
  if (top_k == 1) {
    L = *std::max_element(s.lo.begin(), s.lo.end());
  } else {
    L = KthLargest(s.lo, rows_n, top_k, s.heap);
  }
  s.candidates.clear();
  for (int64_t r = 0; r < rows_n; ++r) {
    if (s.hi[r] >= L) s.candidates.push_back(static_cast<int32_t>(r));
  }
  result.candidates = static_cast<int64_t>(s.candidates.size());
  // Past a quarter of the rows, one streaming pass over the head is cheaper.
  if (result.candidates * 4 > rows_n) return full();

  // Exact rescoring: the exact path's kernel, one candidate row per call.
  const uint16_t* w = reinterpret_cast<const uint16_t*>(head_.data);
  const int64_t stride = static_cast<int64_t>(head_.row_bytes / sizeof(uint16_t));
  std::fill(out, out + rows_n, -std::numeric_limits<float>::infinity());
  pool.ParallelFor(result.candidates, [&](int64_t c0, int64_t c1, int) {
    thread_local std::vector<uint16_t> row;  // one row read from the file
    row.resize(stride);
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t r = s.candidates[c];
      const uint16_t* wr = w + r * stride;
      if (fd_ != nullptr) {
        const ssize_t got = ::pread(*fd_, row.data(), head_.row_bytes, static_cast<off_t>(file_offset_ + r * head_.row_bytes));
        if (got == static_cast<ssize_t>(head_.row_bytes)) wr = row.data();  // else: the mapping's same bytes
      }
      k.f16_dot_rows(wr, stride, 1, cols(), s.xh.data(), out + r);
    }
  }, kMinRescoreRows);
  // A NaN among the survivors would rank differently against -inf than against the
  // real rows: let the full head decide.
  for (int32_t r : s.candidates) {
    if (std::isnan(out[r])) return full();
  }
  return result;
}

}  // namespace bitparity
