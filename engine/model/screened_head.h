// File: engine/model/screened_head.h
//
// The screened output head (ModelOptions::head = HeadMode::kScreened): the EXACT
// logits of the rows a greedy or top-k sampler can pick, reading an int8 copy of the
// head (half the bytes of the F16 head) plus only the candidate rows of the F16 head.
// Tokens are bit-identical to the exact head's (bitnet.cpp's single-row F16 product);
// the rows that cannot win are reported as -inf instead of their logit, so the mode
// serves only callers that look at the top k (engine/model/generate.cc decides).
//
// How. For the activation row x (after the final norm) and every head row r:
//   1. the int8 head gives approx_r and a bound B_r with |exact_r - approx_r| <= B_r,
//      where exact_r is the float the exact path computes (proof below);
//   2. lo_r = approx_r - B_r, hi_r = approx_r + B_r (then the repetition penalty,
//      which is monotone, maps both ends); L = the k-th largest lo_r;
//   3. a row with hi_r < L has at least k rows whose exact value is >= L > its own, so
//      it is not in the top k under any tie-break: only rows with hi_r >= L survive;
//   3b. when more than a few rows survive, each survivor's interval is narrowed by a
//      second int8 activation (below: the refinement), and L and the survivors are
//      taken again from the narrowed intervals;
//   4. the survivors are recomputed with the exact path's own kernel call
//      (fp32_to_fp16_row, then f16_dot_rows, one row per call: rows are independent
//      in that kernel) from the F16 rows, so their values are the exact path's bits.
//
// Proof of the bound. Notation: w = F16 row r (as reals), h = fp16(x) (the exact path
// rounds the activation to F16 first, NUMERICS.md "Output head"), n = cols.
// The int8 row: q (integers), s = its float scale. The int8 activation: a (integers)
// and its float scale t from quantize_row_i8s(h) (h as floats, exactly representable),
// so h ≈ a / t. Define (all real numbers)
//   approx* = s / t * Σ q_i a_i                       (Σ q_i a_i is an exact int32)
//   dot     = Σ w_i h_i                               (the real dot product)
//   exact   = the float the exact kernel returns.
// (a) dot - approx* = Σ (w_i - s q_i) h_i + s Σ q_i (h_i - a_i / t), so by
//     Cauchy-Schwarz |dot - approx*| <= ||w - s q||_2 ||h||_2 + ||s q||_2 ||h - a/t||_2
//     = E_r X + Q_r D. E_r, Q_r (and W_r = ||w||_2) are measured at load in double and
//     rounded up (Int8RowNorms); X = ||h||_2 and D = ||h - a/t||_2 are measured per
//     token in double and inflated by 1e-9 relative (a double sum of n <= 65536
//     squares errs by < 1e-11 relative).
// (b) |exact - dot| <= γ_{n+2} Σ |w_i h_i| <= γ_{n+2} W_r X, with u = 2^-24 and
//     γ_m = m u / (1 - m u). Why, for ANY accumulation order: each product w_i h_i of
//     two F16 values is exact in float (11 + 11 significant bits <= 24; the smallest
//     product 2^-48 is a normal float), so the kernel only rounds additions (FMA with
//     an exact product = one rounded add; the double tail adds round less than float
//     ones) and the final double -> float conversion. In any summation tree a term
//     passes through at most n - 1 additions, plus the conversion, and recursive
//     summation's error is then <= γ_depth Σ |terms| (Higham, Accuracy and Stability,
//     §4.2). This does not depend on the kernel's lane order, so a change there
//     cannot silently break the bound.
// (c) The approximation is computed in double as (double)isum * s * (1 / t): three
//     roundings of u_d = 2^-53, so |approx - approx*| <= 3.0001 u_d |approx|.
// Hence |exact - approx| <= B = E_r X + Q_r D + γ_{n+2} W_r X + 3.0001 u_d |approx|.
// The code adds 8 u_d (|approx| + B), which covers (c) and the double arithmetic of
// B (three roundings of positive terms), lo and hi (one each) with room to spare. A non-finite X, D, scale or bound makes the
// screen decline (the caller then runs the full exact head).
//
// The refinement. The activation term Q_r D is about half of B on a 2B-4T-shaped
// head; most survivors are there only because of it. A second int8 row a2 with scale
// t2 quantizes what a / t misses (h - a / t), so h ≈ a / t + a2 / t2 and (a) holds with
// approx2* = s / t * Σ q_i a_i + s / t2 * Σ q_i a2_i and D2 = ||h - a/t - a2/t2||_2
// in place of approx* and D (the same algebra). D2 is measured in double, inflated by
// 1e-9 relative plus 16 u_d X absolute (each term's rounding is below 3 u_d |h_i|).
// approx2 is two products of three roundings and one sum: |approx2 - approx2*| <=
// 4.0002 u_d (|p1| + |p2|); the code adds 8 u_d (|p1| + |p2| + B2). Both intervals hold
// the exact value, so their intersection does; L from the narrowed lower bounds is at
// least the first L (the k rows that gave it survived), so every row dropped by step 3
// stays dropped. The second product reads only the survivors' int8 rows, from memory.
//
// The repetition penalty (Sampler: l > 0 ? l / p : l * p, in float) is monotone in l,
// so it maps [lo, hi] onto an interval holding the penalized exact value; the ends
// are widened by 2^-20 relative (> the float rounding of l / p and l * p).
//
// Costs per token on the 2B-4T shape: 328 MB of int8 rows, 1 MB of norms, and
// cols * 2 bytes per candidate row of the F16 head. With ReadRowsFrom (Model::Load
// uses it) candidate rows are read with pread from the model file: a page fault on
// the mapping would map a whole page-cache folio (512 KiB on the VM this was written
// on, ~20 us under its paravirtualized paging), and over a few hundred tokens the
// whole F16 head would become resident, which the screened head exists to avoid.
//
// Thread safety: const methods may be called from any number of threads, each with
// its own ScreenScratch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/common/cache_aligned_vector.h"
#include "engine/kernels/kernels.h"
#include "engine/model/int8_head.h"
#include "engine/model/weights.h"
#include "engine/runtime/thread_pool.h"

namespace bitparity {

// What the caller will do with the logits row: keep the top_k rows after a repetition
// penalty (Sampler's order: penalty, then top-k). Greedy decoding is top_k = 1.
struct ScreenRequest {
  int top_k = 1;
  float repetition_penalty = 1.0f;        // 1 = off
  absl::Span<const int32_t> penalized;    // distinct ids the penalty applies to
};

struct ScreenResult {
  int64_t candidates = 0;  // rows that survived the screen (recomputed exactly)
  bool fallback = false;   // the screen declined or kept too many: the full exact head ran
};

// Per-sequence buffers, sized on first use.
struct ScreenScratch {
  std::vector<uint16_t> xh;          // [cols]  x rounded to F16: the exact path's input
  std::vector<float> xf;             // [cols]  the same values as float
  CacheAlignedVector<int8_t> xq;     // [cols]  their int8 quantization
  std::vector<int32_t> isum;         // [rows]  int8 dot products
  std::vector<double> lo, hi;        // [rows]  lo <= exact logit <= hi
  // The largest lo and hi of each block of kBoundBlockRows rows, so step 3 finds L
  // and the survivors without two passes over all of lo and hi.
  std::vector<double> block_lo, block_hi;
  std::vector<int32_t> candidates;   // rows with hi >= L, ascending
  std::vector<double> heap;          // [top_k] the k largest lo (a min-heap)
  double X = 0, D = 0, inv_t = 0;    // the activation's norms and 1 / its int8 scale
  // The refinement: what xq / t misses, its int8 quantization xq2 (scale 1 / inv_t2),
  // and what both miss (D2). refine = false when its scale is not finite.
  std::vector<float> xr;             // [cols]
  CacheAlignedVector<int8_t> xq2;    // [cols]
  double D2 = 0, inv_t2 = 0;
  bool refine = false;
  std::vector<int32_t> penalized;    // request.penalized, sorted
  std::vector<double> narrowed_lo;   // [survivors] for the second L
};

class ScreenedHead {
 public:
  // Quantizes `head` (F16 rows of at most 65536 values; other types are
  // InvalidArgument) and measures its norms on `pool`'s threads. `head` must outlive
  // the ScreenedHead (candidate rows are read from head.data). bound_scale multiplies
  // every bound: 1 in production; tests pass 0.1 to show an understated bound is caught.
  static absl::StatusOr<ScreenedHead> Build(const WeightMatrix& head, ThreadPool& pool, double bound_scale = 1.0);

  // The logits row for the activation x [cols] as far as `request` needs it: out
  // [rows] holds the exact path's value for every candidate and -inf elsewhere (the
  // whole exact row on a fallback). The top request.top_k rows after the penalty, in
  // RanksBefore order, are those of the exact row.
  ScreenResult Logits(const Kernels& k, ThreadPool& pool, const float* x, const ScreenRequest& request,
                      ScreenScratch& s, float* out) const;

  // Logits for m activation rows at once (a batch step of several sequences): the
  // int8 rows are read once for all of them. Row a's out and result are exactly what
  // Logits(x[a], *requests[a], *s[a]) gives alone.
  void LogitsBatch(const Kernels& k, ThreadPool& pool, int m, const float* const* x,
                   const ScreenRequest* const* requests, ScreenScratch* const* s, float* const* out,
                   ScreenResult* results) const;

  // Steps 1-2 alone (tests): s.xh, s.lo, s.hi for x, without a penalty. False when
  // the screen declines (non-finite activation or scale).
  bool Bounds(const Kernels& k, ThreadPool& pool, const float* x, ScreenScratch& s) const;

  // Candidate rows are read from the file `path` (the F16 head's bytes start at byte
  // `offset`) instead of from the head's memory. NotFound / Internal if it cannot be
  // opened. The bytes must be the same as the head's (the caller's model file).
  absl::Status ReadRowsFrom(const std::string& path, uint64_t offset);

  // The refinement's interval for head row r (step 3b, before any penalty), from a
  // Prepare'd s (Bounds). False when s has no refinement. Tests check it holds the
  // exact value.
  bool RefinedBound(const Kernels& k, const ScreenScratch& s, int64_t r, double* lo, double* hi) const;

  // The exact path for every row from s.xh (what Linear's single-row F16 product gives).
  void ExactAll(const Kernels& k, ThreadPool& pool, const ScreenScratch& s, float* out) const;

  int64_t rows() const { return head_.rows; }
  int64_t cols() const { return head_.cols; }
  // Bytes the screen reads per token (int8 rows, scales, row sums, norms).
  int64_t bytes() const;

 private:
  // Step 1: x rounded to F16 (s.xh, always), its int8 quantization and norms. False
  // when the screen declines (non-finite activation or scale).
  bool Prepare(const Kernels& k, const float* x, ScreenScratch& s) const;
  // Step 2 for the head rows of blocks [b0, b1) (kBoundBlockRows each) of every s:
  // s.isum, s.lo, s.hi, s.block_lo, s.block_hi. REQUIRES: Prepare(s) was true for
  // each. One i8_gemm reads each weight row once for all of them.
  void ScreenBlocks(const Kernels& k, int64_t b0, int64_t b1, const std::vector<ScreenScratch*>& s) const;
  // Step 2 for every head row on the pool's threads.
  void ScreenAll(const Kernels& k, ThreadPool& pool, const std::vector<ScreenScratch*>& s) const;
  // The bounds of step 2 from s.isum of blocks [b0, b1) (the kernels' screen_bounds),
  // and each block's largest lo and hi.
  void BoundBlocks(const Kernels& k, int64_t b0, int64_t b1, ScreenScratch& s) const;
  // Block b's maxima from s.lo / s.hi (after they change: the penalty).
  void UpdateBlock(ScreenScratch& s, int64_t b) const;
  int64_t blocks() const;  // of kBoundBlockRows rows, the last one partial
  // Step 3 for one row: the penalty on its bounds, L, and s.candidates. False when
  // the survivors are past a quarter of the rows (one pass of the full exact head is
  // cheaper then).
  bool SelectCandidates(const Kernels& k, const ScreenRequest& request, ScreenScratch& s) const;
  // Step 3b: narrows the survivors' intervals with RefinedBound and keeps those that
  // still reach the k-th largest lower bound.
  void Refine(const Kernels& k, const ScreenRequest& request, int top_k, ScreenScratch& s) const;
  // Steps 3-4 for m rows: candidates and exact rescoring, or the full exact head for a
  // row that was not prepared, kept too many rows, or met a NaN. A head row that
  // several of them kept is read from the file once.
  void FinishBatch(const Kernels& k, ThreadPool& pool, int m, const char* prepared,
                   const ScreenRequest* const* requests, ScreenScratch* const* s, float* const* out,
                   ScreenResult* results) const;

  WeightMatrix head_;   // the F16 head, in the file mapping
  Int8Head int8_;
  std::vector<float> slope_x_;  // [rows] E_r + γ W_r: multiplies X
  std::vector<float> slope_d_;  // [rows] Q_r: multiplies D
  double bound_scale_ = 1.0;
  std::shared_ptr<const int> fd_;  // ReadRowsFrom's file (closed with the last copy), or null
  uint64_t file_offset_ = 0;
};

}  // namespace bitparity
