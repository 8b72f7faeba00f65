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
// Rows per block of the bounds' block maxima (ScreenScratch::block_lo / block_hi).
// Step 3 then reads 2 doubles per block and the rows of the few blocks that reach L,
// instead of all of lo and hi (2 x 1 MB per sequence for a 128256-row head).
constexpr int64_t kBoundBlockRows = 64;
static_assert(kMinScreenRows % kBoundBlockRows == 0);
// Candidate rows per thread hand-off (one F16 row is cols * 2 bytes).
constexpr int64_t kMinRescoreRows = 32;
// Survivors past this many are narrowed by the refinement (screened_head.h): one
// int8 row from memory each, against one F16 row read from the file each that it
// usually saves.
constexpr int64_t kRefineAbove = 8;

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
  s.block_lo.resize(blocks());
  s.block_hi.resize(blocks());
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
  // The refinement (screened_head.h): what a / t misses, quantized again.
  s.xr.resize(n);
  s.xq2.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    s.xr[i] = static_cast<float>(static_cast<double>(s.xf[i]) - static_cast<double>(s.xq[i]) / t);
  }
  float t2 = 0;
  int32_t a2_sum = 0;
  k.quantize_row_i8s(s.xr.data(), n, s.xq2.data(), &t2, &a2_sum);
  s.refine = std::isfinite(t2) && t2 > 0;
  if (s.refine) {
    double e2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double e = static_cast<double>(s.xf[i]) - static_cast<double>(s.xq[i]) / t -
                       static_cast<double>(s.xq2[i]) / t2;
      e2 += e * e;
    }
    s.D2 = std::sqrt(e2) * (1.0 + 1e-9) + 16 * kUnitD * s.X;
    s.inv_t2 = 1.0 / static_cast<double>(t2);
    s.refine = std::isfinite(s.D2) && std::isfinite(s.inv_t2);
  }
  return std::isfinite(s.X) && std::isfinite(s.D);
}

int64_t ScreenedHead::blocks() const { return (rows() + kBoundBlockRows - 1) / kBoundBlockRows; }

void ScreenedHead::ScreenBlocks(const Kernels& k, int64_t b0, int64_t b1, const std::vector<ScreenScratch*>& s) const {
  const int64_t n = cols();
  const int64_t r0 = b0 * kBoundBlockRows, r1 = std::min(rows(), b1 * kBoundBlockRows);
  std::vector<const int8_t*> xq(s.size());
  std::vector<int32_t*> isum(s.size());
  for (size_t a = 0; a < s.size(); ++a) {
    xq[a] = s[a]->xq.data();
    isum[a] = s[a]->isum.data() + r0;
  }
  k.i8_gemm(int8_.values() + r0 * n, int8_.row_sums() + r0, n, r1 - r0, static_cast<int>(s.size()), xq.data(),
            isum.data());
  for (ScreenScratch* one : s) BoundBlocks(k, b0, b1, *one);
}

void ScreenedHead::ScreenAll(const Kernels& k, ThreadPool& pool, const std::vector<ScreenScratch*>& s) const {
  pool.ParallelFor(blocks(), [&](int64_t b0, int64_t b1, int) { ScreenBlocks(k, b0, b1, s); },
                   kMinScreenRows / kBoundBlockRows);
}

void ScreenedHead::BoundBlocks(const Kernels& k, int64_t b0, int64_t b1, ScreenScratch& s) const {
  // 8 u_d of (|approx| + B) covers proof (c) and this arithmetic (screened_head.h).
  static_assert(8 * kUnitD == 0x1p-50, "the kernels' screen_bounds adds 2^-50 (|approx| + b)");
  const int64_t r0 = b0 * kBoundBlockRows, r1 = std::min(rows(), b1 * kBoundBlockRows);
  k.screen_bounds(s.isum.data() + r0, int8_.row_scales() + r0, slope_x_.data() + r0, slope_d_.data() + r0, r1 - r0,
                  s.inv_t, s.X, s.D, bound_scale_, s.lo.data() + r0, s.hi.data() + r0);
  for (int64_t b = b0; b < b1; ++b) UpdateBlock(s, b);
}

void ScreenedHead::UpdateBlock(ScreenScratch& s, int64_t b) const {
  const int64_t r0 = b * kBoundBlockRows, r1 = std::min(rows(), r0 + kBoundBlockRows);
  s.block_lo[b] = *std::max_element(s.lo.begin() + r0, s.lo.begin() + r1);
  s.block_hi[b] = *std::max_element(s.hi.begin() + r0, s.hi.begin() + r1);
}

bool ScreenedHead::Bounds(const Kernels& k, ThreadPool& pool, const float* x, ScreenScratch& s) const {
  if (!Prepare(k, x, s)) return false;
  ScreenAll(k, pool, {&s});
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
  if (!screened.empty()) ScreenAll(k, pool, screened);
  FinishBatch(k, pool, m, prepared.data(), requests, s, out, results);
}

bool ScreenedHead::RefinedBound(const Kernels& k, const ScreenScratch& s, int64_t r, double* lo, double* hi) const {
  if (!s.refine) return false;
  const int64_t n = cols();
  int32_t isum2 = 0;
  k.i8_gemv(int8_.values() + r * n, int8_.row_sums() + r, n, 1, s.xq2.data(), &isum2);
  const double scale = int8_.row_scales()[r];
  const double p1 = static_cast<double>(s.isum[r]) * scale * s.inv_t;
  const double p2 = static_cast<double>(isum2) * scale * s.inv_t2;
  const double approx = p1 + p2;
  double b = slope_x_[r] * s.X + slope_d_[r] * s.D2;
  b += 8 * kUnitD * (std::fabs(p1) + std::fabs(p2) + b);  // the refinement's rounding
  b *= bound_scale_;
  const bool ok = std::isfinite(approx) && std::isfinite(b);
  *lo = ok ? approx - b : -kInf;
  *hi = ok ? approx + b : kInf;
  return true;
}

bool ScreenedHead::SelectCandidates(const Kernels& k, const ScreenRequest& request, ScreenScratch& s) const {
  const int64_t rows_n = rows();
  const int top_k = std::max(1, request.top_k);
  // The penalty moves both ends of a penalized row's interval (monotone map), and
  // its block's maxima with them.
  if (request.repetition_penalty != 1.0f) {
    for (int32_t id : request.penalized) {
      if (id < 0 || id >= rows_n) continue;
      s.lo[id] = PenaltyLow(s.lo[id], request.repetition_penalty);
      s.hi[id] = PenaltyHigh(s.hi[id], request.repetition_penalty);
      UpdateBlock(s, id / kBoundBlockRows);
    }
  }
  // L: the k-th largest lower bound; survivors: hi >= L, found in the blocks whose
  // largest hi reaches L (bounds are never NaN: screen_bounds gives -inf / +inf).
  double L;
  if (top_k == 1) {
    L = *std::max_element(s.block_lo.begin(), s.block_lo.end());
  } else {
    L = KthLargest(s.lo, rows_n, top_k, s.heap);
  }
  s.candidates.clear();
  for (int64_t b = 0; b < blocks(); ++b) {
    if (!(s.block_hi[b] >= L)) continue;
    const int64_t r1 = std::min(rows_n, (b + 1) * kBoundBlockRows);
    for (int64_t r = b * kBoundBlockRows; r < r1; ++r) {
      if (s.hi[r] >= L) s.candidates.push_back(static_cast<int32_t>(r));
    }
  }
  // Past a quarter of the rows, one streaming pass over the head is cheaper.
  if (static_cast<int64_t>(s.candidates.size()) * 4 > rows_n) return false;
  if (s.refine && static_cast<int64_t>(s.candidates.size()) > kRefineAbove) Refine(k, request, top_k, s);
  return true;
}

void ScreenedHead::Refine(const Kernels& k, const ScreenRequest& request, int top_k, ScreenScratch& s) const {
  s.penalized.assign(request.penalized.begin(), request.penalized.end());
  std::sort(s.penalized.begin(), s.penalized.end());
  const bool penalty = request.repetition_penalty != 1.0f;
  // Narrow every survivor's interval (the same penalty map on the refined one).
  s.narrowed_lo.clear();
  for (int32_t r : s.candidates) {
    double lo2, hi2;
    RefinedBound(k, s, r, &lo2, &hi2);
    if (penalty && std::binary_search(s.penalized.begin(), s.penalized.end(), r)) {
      lo2 = PenaltyLow(lo2, request.repetition_penalty);
      hi2 = PenaltyHigh(hi2, request.repetition_penalty);
    }
    s.lo[r] = std::max(s.lo[r], lo2);
    s.hi[r] = std::min(s.hi[r], hi2);
    s.narrowed_lo.push_back(s.lo[r]);
  }
  // The k-th largest narrowed lower bound; the k rows that gave the first L are among
  // the survivors, so this L is at least that one.
  const int64_t n = static_cast<int64_t>(s.narrowed_lo.size());
  const double L = top_k == 1 ? *std::max_element(s.narrowed_lo.begin(), s.narrowed_lo.end())
                              : KthLargest(s.narrowed_lo, n, top_k, s.heap);
  size_t kept = 0;
  for (int32_t r : s.candidates) {
    if (s.hi[r] >= L) s.candidates[kept++] = r;
  }
  s.candidates.resize(kept);
}

void ScreenedHead::FinishBatch(const Kernels& k, ThreadPool& pool, int m, const char* prepared,
                               const ScreenRequest* const* requests, ScreenScratch* const* s, float* const* out,
                               ScreenResult* results) const {
  const int64_t rows_n = rows();
  // Step 3, the rows side by side: each scans its own bounds (two passes over rows_n
  // doubles) and clears its own logits row.
  std::vector<char> selected(m, 0);
  pool.ParallelFor(m, [&](int64_t a0, int64_t a1, int) {
    for (int64_t a = a0; a < a1; ++a) {
      results[a] = ScreenResult();
      if (!prepared[a]) continue;
      selected[a] = SelectCandidates(k, *requests[a], *s[a]);
      results[a].candidates = static_cast<int64_t>(s[a]->candidates.size());
      if (selected[a]) std::fill(out[a], out[a] + rows_n, -std::numeric_limits<float>::infinity());
    }
  });

  // Step 4: every (head row, sequence) pair, grouped by head row, so a row that
  // several sequences kept is read once. Each product is the exact path's kernel,
  // one candidate row per call.
  std::vector<std::pair<int32_t, int32_t>> pairs;  // (head row, sequence)
  for (int a = 0; a < m; ++a) {
    if (!selected[a]) continue;
    for (int32_t r : s[a]->candidates) pairs.emplace_back(r, a);
  }
  std::sort(pairs.begin(), pairs.end());
  std::vector<int64_t> group_begin;  // pairs[group_begin[g] ..] share a head row
  for (size_t i = 0; i < pairs.size(); ++i) {
    if (i == 0 || pairs[i].first != pairs[i - 1].first) group_begin.push_back(static_cast<int64_t>(i));
  }
  group_begin.push_back(static_cast<int64_t>(pairs.size()));
  const uint16_t* w = reinterpret_cast<const uint16_t*>(head_.data);
  const int64_t stride = static_cast<int64_t>(head_.row_bytes / sizeof(uint16_t));
  const int64_t groups = static_cast<int64_t>(group_begin.size()) - 1;
  pool.ParallelFor(groups, [&](int64_t g0, int64_t g1, int) {
    thread_local std::vector<uint16_t> row;  // one row read from the file
    row.resize(stride);
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t r = pairs[group_begin[g]].first;
      const uint16_t* wr = w + r * stride;
      if (fd_ != nullptr) {
        const ssize_t got = ::pread(*fd_, row.data(), head_.row_bytes, static_cast<off_t>(file_offset_ + r * head_.row_bytes));
        if (got == static_cast<ssize_t>(head_.row_bytes)) wr = row.data();  // else: the mapping's same bytes
      }
      for (int64_t i = group_begin[g]; i < group_begin[g + 1]; ++i) {
        const int a = pairs[i].second;
        k.f16_dot_rows(wr, stride, 1, cols(), s[a]->xh.data(), out[a] + r);
      }
    }
  }, kMinRescoreRows);

  // The full exact head where the screen did not decide. A NaN among a row's
  // survivors would rank differently against -inf than against the real rows: the
  // full head decides that row too.
  for (int a = 0; a < m; ++a) {
    bool full = !selected[a];
    for (size_t i = 0; !full && i < s[a]->candidates.size(); ++i) full = std::isnan(out[a][s[a]->candidates[i]]);
    if (!full) continue;
    ExactAll(k, pool, *s[a], out[a]);  // REQUIRES: s.xh holds x in F16 (always filled)
    results[a].fallback = true;
    if (results[a].candidates == 0) results[a].candidates = rows_n;
  }
}

}  // namespace bitparity
