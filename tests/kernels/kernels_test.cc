// Every SIMD kernel against its scalar twin (engine/kernels/kernels_scalar.cc), and the
// scalar twins against engine/quant's reference code. Shapes mix odd row counts with
// aligned K; the seed is fixed and printed. Integer results and (by design, see
// kernels.h) float results must be bit-identical across paths.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine/kernels/kernels.h"
#include "engine/quant/dequantize.h"
#include "base/fp16.h"
#include "engine/quant/i2s.h"
#include "engine/quant/q8.h"
#include "engine/quant/ternary.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

constexpr uint32_t kSeed = 0xB17A;  // printed by every test via SCOPED_TRACE
constexpr int64_t kRowCounts[] = {1, 3, 7, 33};
constexpr int64_t kI2sKs[] = {128, 384, 768, 1024, 2560, 6912};  // odd block and pair counts included
constexpr int64_t kTqKs[] = {256, 768, 2560};

// The scalar twin's F16 dot uses ggml's lane order; against a plain index-order float
// sum it can differ by rounding only: |diff| <= kF16DotRelTol * sum|w*x|.
constexpr double kF16DotRelTol = 1e-5;
// TQ dot: ggml's AVX2 lane order vs its generic order, same integers, float rounding.
constexpr double kTqDotRelTol = 1e-5;

std::string Case(int64_t rows, int64_t k, int64_t acts = 1) {
  return "seed=" + std::to_string(kSeed) + " rows=" + std::to_string(rows) + " k=" + std::to_string(k) +
         " acts=" + std::to_string(acts);
}

std::vector<uint8_t> RandomI2s(std::mt19937& rng, int64_t rows, int64_t k) {
  std::uniform_int_distribution<int> d(-1, 1);
  std::vector<int8_t> t(rows * k);
  for (auto& v : t) v = static_cast<int8_t>(d(rng));
  std::vector<uint8_t> buf(I2sTensorBytes(rows * k));
  EXPECT_TRUE(I2sPack(t.data(), rows * k, 0.5f, buf.data()).ok());
  return buf;
}

std::vector<int8_t> RandomQ(std::mt19937& rng, int64_t n) {
  std::uniform_int_distribution<int> d(-128, 127);
  std::vector<int8_t> q(n);
  for (auto& v : q) v = static_cast<int8_t>(d(rng));
  return q;
}

std::vector<float> RandomFloats(std::mt19937& rng, int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

std::vector<uint16_t> RandomF16(std::mt19937& rng, int64_t n, float scale = 1.0f) {
  std::vector<uint16_t> h(n);
  const std::vector<float> f = RandomFloats(rng, n, scale);
  for (int64_t i = 0; i < n; ++i) h[i] = Fp32ToFp16(f[i]);
  return h;
}

// Runs each test for every SIMD path this CPU supports.
class SimdVsScalarTest : public ::testing::TestWithParam<KernelPath> {
 protected:
  void SetUp() override {
    if (!KernelPathSupported(GetParam())) {
      GTEST_SKIP() << KernelPathName(GetParam()) << " not supported by this CPU";
    }
    ASSERT_EQ(KernelsFor(GetParam()).path, GetParam());
  }
  const Kernels& simd() const { return KernelsFor(GetParam()); }
  const Kernels& scalar() const { return KernelsFor(KernelPath::kScalar); }
};

// n rows of k activations (stride apart) in kernels K's own I2_S activation layout.
std::vector<int8_t> Prepared(const Kernels& K, const std::vector<int8_t>& q, int64_t k, int64_t n = 1,
                             int64_t stride = 0) {
  std::vector<int8_t> qa(q.size(), 0);
  for (int64_t a = 0; a < n; ++a) K.i2s_prepare_act(q.data() + a * stride, k, qa.data() + a * stride);
  return qa;
}

// n rows (stride apart) in kernels K's own I2_S batch layout (i2s_prepare_acts).
std::vector<int8_t> PreparedBatch(const Kernels& K, const std::vector<int8_t>& q, int64_t stride, int64_t k,
                                  int64_t n) {
  std::vector<int8_t> qa(n * k, 0);
  K.i2s_prepare_acts(q.data(), stride, k, n, qa.data());
  return qa;
}

// The batch layout is a permutation of the rows' values, and its tiles are
// independent: any kI2sActTile-aligned group of rows prepared alone lands where the
// whole puts it (linear.cc prepares tiles on different threads).
TEST_P(SimdVsScalarTest, I2sPrepareActsTilesAreIndependentPermutations) {
  std::mt19937 rng(kSeed + 5);
  for (int64_t k : {int64_t{128}, int64_t{384}, int64_t{2560}}) {
    for (int64_t acts : {1, 2, 3, 4, 5, 7, 8, 11}) {
      SCOPED_TRACE(Case(acts, k));
      const int64_t stride = k + 64;
      const auto q = RandomQ(rng, acts * stride);
      const auto whole = PreparedBatch(simd(), q, stride, k, acts);
      for (int64_t a0 = 0; a0 < acts; a0 += kI2sActTile) {
        const int64_t n = std::min<int64_t>(kI2sActTile, acts - a0);
        std::vector<int8_t> part(n * k, 0);
        simd().i2s_prepare_acts(q.data() + a0 * stride, stride, k, n, part.data());
        ASSERT_TRUE(std::equal(part.begin(), part.end(), whole.begin() + a0 * k)) << "tile at row " << a0;
        std::vector<int8_t> in, out(part);
        for (int64_t a = a0; a < a0 + n; ++a) in.insert(in.end(), q.begin() + a * stride, q.begin() + a * stride + k);
        std::sort(in.begin(), in.end());
        std::sort(out.begin(), out.end());
        ASSERT_EQ(in, out) << "tile at row " << a0 << " is not a permutation of its rows";
      }
    }
  }
}

TEST_P(SimdVsScalarTest, I2sGemvMatchesScalarExactly) {
  std::mt19937 rng(kSeed);
  for (int64_t rows : kRowCounts) {
    for (int64_t k : kI2sKs) {
      SCOPED_TRACE(Case(rows, k));
      const auto w = RandomI2s(rng, rows, k);
      const auto q = RandomQ(rng, k);
      std::vector<int32_t> a(rows, -1), b(rows, -2);
      simd().i2s_gemv(w.data(), k, rows, Prepared(simd(), q, k).data(), a.data());
      scalar().i2s_gemv(w.data(), k, rows, Prepared(scalar(), q, k).data(), b.data());
      ASSERT_EQ(a, b);
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(b[r], I2sDotRow(w.data() + r * k / 4, q.data(), k));
    }
  }
}

TEST_P(SimdVsScalarTest, I2sGemvDoesNotWrapOnExtremeActivations) {
  // All codes 2 (or 3) and q = -128 / 127 everywhere: far past int16 in every lane.
  for (uint8_t byte : {uint8_t{0xAA}, uint8_t{0xFF}}) {
    const int64_t k = 4096, rows = 5;
    std::vector<uint8_t> w(rows * k / 4, byte);
    for (int8_t v : {int8_t{-128}, int8_t{127}}) {
      std::vector<int8_t> q(k, v);
      std::vector<int32_t> a(rows), b(rows);
      simd().i2s_gemv(w.data(), k, rows, Prepared(simd(), q, k).data(), a.data());
      scalar().i2s_gemv(w.data(), k, rows, Prepared(scalar(), q, k).data(), b.data());
      const int32_t code = byte == 0xAA ? 2 : 3;
      for (int64_t r = 0; r < rows; ++r) {
        EXPECT_EQ(b[r], code * v * k);
        EXPECT_EQ(a[r], b[r]);
      }
    }
  }
}

TEST_P(SimdVsScalarTest, I2sGemvVeryLongRowsStayExact) {
  // Past the AVX-512 masked-sum bound (2^18 elements) the kernel switches method; both
  // sides of the switch must give the scalar integers, at the extreme values too.
  std::mt19937 rng(kSeed + 3);
  for (int64_t k : {int64_t{1} << 18, (int64_t{1} << 18) + 128}) {
    SCOPED_TRACE(Case(2, k));
    auto w = RandomI2s(rng, 2, k);
    std::fill(w.begin() + k / 4, w.end(), uint8_t{0xFF});  // row 1: every code 3
    auto q = RandomQ(rng, k);
    std::vector<int32_t> a(2), b(2);
    simd().i2s_gemv(w.data(), k, 2, Prepared(simd(), q, k).data(), a.data());
    scalar().i2s_gemv(w.data(), k, 2, Prepared(scalar(), q, k).data(), b.data());
    EXPECT_EQ(a, b);
    std::fill(q.begin(), q.end(), int8_t{127});
    simd().i2s_gemv(w.data(), k, 2, Prepared(simd(), q, k).data(), a.data());
    EXPECT_EQ(a[1], 3 * 127 * k);
  }
}

TEST_P(SimdVsScalarTest, I8GemvMatchesScalarExactly) {
  std::mt19937 rng(kSeed + 4);
  std::uniform_int_distribution<int> wd(-127, 127), xd(-128, 127);
  for (int64_t rows : kRowCounts) {
    for (int64_t k : {int64_t{1}, int64_t{31}, int64_t{64}, int64_t{200}, int64_t{2560}, int64_t{65536}}) {
      SCOPED_TRACE(Case(rows, k));
      std::vector<int8_t> w(rows * k), x(k);
      for (auto& v : w) v = static_cast<int8_t>(wd(rng));
      for (auto& v : x) v = static_cast<int8_t>(xd(rng));
      if (k == 65536) {  // the extremes: every product 127 * -128 or -127 * -128
        std::fill(x.begin(), x.end(), int8_t{-128});
        std::fill(w.begin(), w.begin() + k, int8_t{127});
      }
      std::vector<int32_t> sums(rows);
      for (int64_t r = 0; r < rows; ++r) sums[r] = std::accumulate(w.begin() + r * k, w.begin() + (r + 1) * k, 0);
      std::vector<int32_t> a(rows, -1), b(rows, -2);
      simd().i8_gemv(w.data(), sums.data(), k, rows, x.data(), a.data());
      scalar().i8_gemv(w.data(), sums.data(), k, rows, x.data(), b.data());
      ASSERT_EQ(a, b);
      if (k == 65536) {
        EXPECT_EQ(b[0], 127 * -128 * 65536);
      }
    }
  }
}

TEST_P(SimdVsScalarTest, I8GemmMatchesScalarAndGemvExactly) {
  std::mt19937 rng(kSeed + 9);
  std::uniform_int_distribution<int> wd(-127, 127), xd(-128, 127);
  for (int64_t rows : kRowCounts) {
    for (int64_t k : {int64_t{1}, int64_t{64}, int64_t{200}, int64_t{2560}, int64_t{65536}}) {
      for (int acts : {1, 2, 3, 4, 5, 8, 9, 16, 17}) {
        if (k == 65536 && acts > 2) continue;
        SCOPED_TRACE(Case(rows, k, acts));
        std::vector<int8_t> w(rows * k);
        for (auto& v : w) v = static_cast<int8_t>(wd(rng));
        std::vector<std::vector<int8_t>> x(acts, std::vector<int8_t>(k));
        for (auto& row : x)
          for (auto& v : row) v = static_cast<int8_t>(xd(rng));
        if (k == 65536) {  // the extremes: every product 127 * -128
          std::fill(x[0].begin(), x[0].end(), int8_t{-128});
          std::fill(w.begin(), w.begin() + k, int8_t{127});
        }
        std::vector<int32_t> sums(rows);
        for (int64_t r = 0; r < rows; ++r) sums[r] = std::accumulate(w.begin() + r * k, w.begin() + (r + 1) * k, 0);
        std::vector<std::vector<int32_t>> a(acts, std::vector<int32_t>(rows, -1)), b(acts, std::vector<int32_t>(rows, -2));
        std::vector<const int8_t*> xp;
        std::vector<int32_t*> ap, bp;
        for (int i = 0; i < acts; ++i) {
          xp.push_back(x[i].data());
          ap.push_back(a[i].data());
          bp.push_back(b[i].data());
        }
        simd().i8_gemm(w.data(), sums.data(), k, rows, acts, xp.data(), ap.data());
        scalar().i8_gemm(w.data(), sums.data(), k, rows, acts, xp.data(), bp.data());
        ASSERT_EQ(a, b);
        std::vector<int32_t> one(rows);
        for (int i = 0; i < acts; ++i) {
          simd().i8_gemv(w.data(), sums.data(), k, rows, x[i].data(), one.data());
          ASSERT_EQ(one, a[i]);
        }
        if (k == 65536) {
          EXPECT_EQ(b[0][0], 127 * -128 * 65536);
        }
      }
    }
  }
}

TEST_P(SimdVsScalarTest, I2sGemmMatchesGemvExactly) {
  std::mt19937 rng(kSeed + 1);
  for (int64_t rows : kRowCounts) {
    for (int64_t k : {int64_t{128}, int64_t{640}, int64_t{2560}}) {
      for (int64_t acts : {1, 2, 3, 4, 5, 6, 7, 8, 9}) {
        SCOPED_TRACE(Case(rows, k, acts));
        const auto w = RandomI2s(rng, rows, k);
        const int64_t q_stride = k + 32;  // padded rows
        const auto q = RandomQ(rng, acts * q_stride);
        const int64_t out_stride = rows + 3;
        std::vector<int32_t> a(acts * out_stride, 7), b(acts * out_stride, 7);
        const auto qa = PreparedBatch(simd(), q, q_stride, k, acts);
        simd().i2s_gemm(w.data(), k, rows, qa.data(), acts, a.data(), out_stride);
        scalar().i2s_gemm(w.data(), k, rows, PreparedBatch(scalar(), q, q_stride, k, acts).data(), acts, b.data(),
                          out_stride);
        ASSERT_EQ(a, b);
        const auto qa_rows = Prepared(simd(), q, k, acts, q_stride);
        std::vector<int32_t> one(rows);
        for (int64_t x = 0; x < acts; ++x) {
          simd().i2s_gemv(w.data(), k, rows, qa_rows.data() + x * q_stride, one.data());
          for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(one[r], a[x * out_stride + r]);
          for (int64_t r = rows; r < out_stride; ++r) ASSERT_EQ(a[x * out_stride + r], 7) << "wrote padding";
        }
      }
    }
  }
}

TEST_P(SimdVsScalarTest, QuantizeRowI8SIsBitExact) {
  std::mt19937 rng(kSeed + 2);
  for (int64_t n : {1, 7, 31, 32, 33, 128, 2560, 6912}) {
    SCOPED_TRACE(Case(1, n));
    for (float scale : {1e-7f, 1e-3f, 1.0f, 300.0f}) {
      auto x = RandomFloats(rng, n, scale);
      // Exact ties after scaling: make max|x| = 127 so that s == 1.
      if (n >= 8) {
        x[0] = 127.0f;
        x[1] = 2.5f;
        x[2] = -3.5f;
        x[3] = 0.5f;
        x[4] = -0.0f;
      }
      std::vector<int8_t> qa(n), qb(n);
      float sa, sb;
      int32_t suma, sumb;
      simd().quantize_row_i8s(x.data(), n, qa.data(), &sa, &suma);
      QuantizeRowI8S(x.data(), n, qb.data(), &sb, &sumb);
      ASSERT_EQ(qa, qb);
      ASSERT_EQ(FloatBits(sa), FloatBits(sb));
      ASSERT_EQ(suma, sumb);
    }
  }
}

TEST_P(SimdVsScalarTest, F16DotRowsIsBitExactWithTheScalarLaneOrder) {
  std::mt19937 rng(kSeed + 3);
  for (int64_t rows : kRowCounts) {
    // 32, 96, 160: attention's V product (n_kv a multiple of 32), mostly ggml's scalar tail.
    for (int64_t k : {int64_t{32}, int64_t{64}, int64_t{96}, int64_t{100}, int64_t{160}, int64_t{256}, int64_t{2560},
                      int64_t{2600}}) {
      SCOPED_TRACE(Case(rows, k));
      const int64_t stride = k + 8;
      const auto w = RandomF16(rng, rows * stride);
      const auto x = RandomF16(rng, k, 4.0f);
      std::vector<float> a(rows), b(rows);
      simd().f16_dot_rows(w.data(), stride, rows, k, x.data(), a.data());
      scalar().f16_dot_rows(w.data(), stride, rows, k, x.data(), b.data());
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(FloatBits(a[r]), FloatBits(b[r])) << "row " << r;
    }
  }
}

// The tail is a chain of double adds, rounded to float once at the end. To make the
// order visible in that float: even columns multiply to exactly +-65504^2 (~2^32) in
// a balanced sign pattern, odd columns to tiny values (<= 2^-13). A tiny term added
// while the running sum is +-2^32 is rounded away; one added while it is 0 survives.
// Which survive depends on the order, so a reordered or widened sum fails here.
TEST_P(SimdVsScalarTest, F16DotRowsTailRoundsLikeTheSequentialDoubleSum) {
  std::mt19937 rng(kSeed + 9);
  const uint16_t big = Fp32ToFp16(65504.0f);
  const uint16_t tiny = Fp32ToFp16(0x1p-24f);
  for (int64_t rows : {int64_t{1}, int64_t{9}, int64_t{17}, int64_t{40}}) {
    for (int64_t k : {int64_t{30}, int64_t{32}, int64_t{96}, int64_t{126}}) {
      SCOPED_TRACE(Case(rows, k));
      std::vector<uint16_t> x(k), w(rows * k);
      for (int64_t j = 0; j < k; ++j) x[j] = j % 2 == 0 ? big : tiny;
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<float> signs;
        for (int64_t j = 0; j < k; j += 2) signs.push_back(j % 4 == 0 ? 1.0f : -1.0f);
        std::shuffle(signs.begin(), signs.end(), rng);
        for (int64_t j = 0; j < k; ++j) {
          const float v = j % 2 == 0 ? signs[j / 2] * 65504.0f : static_cast<float>(1 + rng() % 2048);
          w[r * k + j] = Fp32ToFp16(v);
        }
      }
      std::vector<float> a(rows), b(rows);
      simd().f16_dot_rows(w.data(), k, rows, k, x.data(), a.data());
      scalar().f16_dot_rows(w.data(), k, rows, k, x.data(), b.data());
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(FloatBits(a[r]), FloatBits(b[r])) << "row " << r;
    }
  }
}

// Several vectors at once (attention's query heads of one KV head) give each vector's
// own f16_dot_rows bits: bodies, tails, blocks of 16 rows, and vectors longer than
// the kernel converts at once (k = 2600 with 4 vectors, 8300 with any).
TEST_P(SimdVsScalarTest, F16DotRowsMultiEqualsOneCallPerVector) {
  std::mt19937 rng(kSeed + 11);
  for (int64_t rows : {int64_t{1}, int64_t{5}, int64_t{16}, int64_t{35}}) {
    for (int64_t k : {int64_t{32}, int64_t{128}, int64_t{160}, int64_t{2600}, int64_t{8300}}) {
      for (int64_t n_x : {1, 2, 3, 4, 5, 9}) {
        SCOPED_TRACE(Case(rows, k, n_x));
        const int64_t stride = k + 8, x_stride = k + 16, out_stride = rows + 3;
        const auto w = RandomF16(rng, rows * stride);
        const auto x = RandomF16(rng, n_x * x_stride, 4.0f);
        std::vector<float> got(n_x * out_stride, -1.0f), want(rows);
        simd().f16_dot_rows_multi(w.data(), stride, rows, k, x.data(), x_stride, n_x, got.data(), out_stride);
        for (int64_t a = 0; a < n_x; ++a) {
          scalar().f16_dot_rows(w.data(), stride, rows, k, x.data() + a * x_stride, want.data());
          for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(FloatBits(got[a * out_stride + r]), FloatBits(want[r])) << a << "," << r;
          for (int64_t r = rows; r < out_stride; ++r) ASSERT_EQ(got[a * out_stride + r], -1.0f) << "wrote past row " << rows;
        }
      }
    }
  }
}

// RMS norm's sum of squares: each row's chain of double adds, in order, whatever
// rows share the vector. Large and tiny values mixed make a reordered sum visible.
TEST_P(SimdVsScalarTest, SumSquaresRowsKeepEachRowsOrder) {
  std::mt19937 rng(kSeed + 12);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t rows : {int64_t{1}, int64_t{2}, int64_t{7}, int64_t{8}, int64_t{13}}) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{64}, int64_t{2560}, int64_t{2563}}) {
      SCOPED_TRACE(Case(rows, n));
      const int64_t stride = n + 5;
      std::vector<float> x(rows * stride);
      for (size_t i = 0; i < x.size(); ++i) x[i] = u(rng) * (i % 5 == 0 ? 3e7f : 1e-3f);
      std::vector<double> a(rows, -1.0), b(rows);
      simd().sum_squares_rows(x.data(), stride, rows, n, a.data());
      scalar().sum_squares_rows(x.data(), stride, rows, n, b.data());
      for (int64_t r = 0; r < rows; ++r) {
        ASSERT_EQ(a[r], b[r]) << "row " << r;
        double want = 0.0;
        for (int64_t i = 0; i < n; ++i) want += static_cast<double>(x[r * stride + i] * x[r * stride + i]);
        ASSERT_EQ(b[r], want) << "row " << r;
      }
    }
  }
}

// I2_S float outputs: every path does I2sOutput's operations per value, in order,
// including int32 sums too large for a float to hold exactly and every tail length.
TEST_P(SimdVsScalarTest, I2sOutputsEqualI2sOutputPerValue) {
  std::mt19937 rng(kSeed + 13);
  std::uniform_int_distribution<int32_t> small(-40000, 40000), any(INT32_MIN / 2, INT32_MAX / 2);
  std::uniform_real_distribution<float> scale(0.01f, 300.0f);
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{15}, int64_t{16}, int64_t{17}, int64_t{2560}, int64_t{2563}}) {
    SCOPED_TRACE(Case(1, n));
    std::vector<int32_t> sums(n);
    for (int64_t i = 0; i < n; ++i) sums[i] = i % 3 == 0 ? any(rng) : small(rng);
    const int32_t act_sum = small(rng);
    const float act_scale = scale(rng), w_scale = scale(rng) / 100.0f;
    std::vector<float> a(n + 1, 7.0f), b(n + 1, 7.0f);
    simd().i2s_outputs(sums.data(), n, act_sum, act_scale, w_scale, a.data());
    scalar().i2s_outputs(sums.data(), n, act_sum, act_scale, w_scale, b.data());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(FloatBits(a[i]), FloatBits(b[i])) << "index " << i;
      ASSERT_EQ(FloatBits(b[i]), FloatBits(I2sOutput(sums[i], act_sum, act_scale, w_scale))) << "index " << i;
    }
    EXPECT_EQ(a[n], 7.0f) << "wrote past the end";
    EXPECT_EQ(b[n], 7.0f) << "wrote past the end";
  }
}

// The screened head's bounds: every path does the same double operations per row,
// including rows whose scale, approximation or bound is not finite (-inf, +inf out),
// and every tail length.
TEST_P(SimdVsScalarTest, ScreenBoundsEqualTheFormulaPerRow) {
  std::mt19937 rng(kSeed + 14);
  std::uniform_int_distribution<int32_t> isum(-3000000, 3000000);
  std::uniform_real_distribution<float> pos(1e-6f, 4.0f);
  auto bits = [](double d) {
    uint64_t u;
    std::memcpy(&u, &d, sizeof(u));
    return u;
  };
  const float inf = std::numeric_limits<float>::infinity();
  const double inv_t = 1.0 / 37.3, x_norm = 51.7, d_norm = 0.83, bound_scale = 1.0000001;
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{9}, int64_t{1024}, int64_t{1031}}) {
    SCOPED_TRACE(Case(1, n));
    std::vector<int32_t> sums(n);
    std::vector<float> scale(n), slope_x(n), slope_d(n);
    for (int64_t r = 0; r < n; ++r) {
      sums[r] = r % 11 == 0 ? INT32_MIN + static_cast<int32_t>(r) : isum(rng);
      scale[r] = pos(rng) * 1e-3f;
      slope_x[r] = pos(rng);
      slope_d[r] = pos(rng);
      if (r % 13 == 5) scale[r] = r % 2 ? inf : std::nanf("");   // approx not finite
      if (r % 17 == 3) slope_x[r] = std::numeric_limits<float>::max();  // b overflows below
    }
    const double xn = n > 8 ? 1e300 : x_norm;  // with FLT_MAX slopes: b = inf
    std::vector<double> lo_a(n + 1, 7.0), hi_a(n + 1, 7.0), lo_b(n + 1, 7.0), hi_b(n + 1, 7.0);
    simd().screen_bounds(sums.data(), scale.data(), slope_x.data(), slope_d.data(), n, inv_t, xn, d_norm, bound_scale,
                         lo_a.data(), hi_a.data());
    scalar().screen_bounds(sums.data(), scale.data(), slope_x.data(), slope_d.data(), n, inv_t, xn, d_norm,
                           bound_scale, lo_b.data(), hi_b.data());
    int not_finite = 0;
    for (int64_t r = 0; r < n; ++r) {
      ASSERT_EQ(bits(lo_a[r]), bits(lo_b[r])) << "row " << r;
      ASSERT_EQ(bits(hi_a[r]), bits(hi_b[r])) << "row " << r;
      const double approx = static_cast<double>(sums[r]) * static_cast<double>(scale[r]) * inv_t;
      double b = static_cast<double>(slope_x[r]) * xn + static_cast<double>(slope_d[r]) * d_norm;
      b = (b + 0x1p-50 * (std::fabs(approx) + b)) * bound_scale;
      if (std::isfinite(approx) && std::isfinite(b)) {
        ASSERT_EQ(bits(lo_b[r]), bits(approx - b)) << "row " << r;
        ASSERT_EQ(bits(hi_b[r]), bits(approx + b)) << "row " << r;
      } else {
        ++not_finite;
        ASSERT_EQ(lo_b[r], -std::numeric_limits<double>::infinity()) << "row " << r;
        ASSERT_EQ(hi_b[r], std::numeric_limits<double>::infinity()) << "row " << r;
      }
    }
    if (n > 13) {
      EXPECT_GT(not_finite, 0);  // the non-finite rows were exercised
    }
    EXPECT_EQ(lo_a[n], 7.0) << "wrote past the end";
    EXPECT_EQ(hi_a[n], 7.0) << "wrote past the end";
  }
}

// RoPE: both pair layouts, several heads with a stride past n_rot (untouched
// values), rotations too short for a vector, positions far enough out that the fused
// multiply-add and a separate product round differently.
TEST_P(SimdVsScalarTest, RopeHeadsEqualTheScalarRotation) {
  std::mt19937 rng(kSeed + 14);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f), angle(-3.2f, 3.2f);
  for (bool neox : {false, true}) {
    for (int n_rot : {2, 6, 16, 18, 64, 128}) {
      SCOPED_TRACE(Case(neox ? 1 : 0, n_rot));
      const int n_heads = 5, stride = n_rot + 6;
      std::vector<float> cache(n_rot);
      for (int i = 0; i < n_rot; i += 2) {
        const float t = angle(rng) * 1000.0f;
        cache[i] = std::cos(t);
        cache[i + 1] = std::sin(t);
      }
      std::vector<float> x(n_heads * stride);
      for (float& v : x) v = u(rng);
      std::vector<float> a = x, b = x;
      simd().rope_heads(cache.data(), n_rot, neox, a.data(), n_heads, stride);
      scalar().rope_heads(cache.data(), n_rot, neox, b.data(), n_heads, stride);
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(FloatBits(a[i]), FloatBits(b[i])) << "index " << i;
        if (static_cast<int>(i % stride) >= n_rot) ASSERT_EQ(FloatBits(b[i]), FloatBits(x[i])) << "index " << i;
      }
      // One pair by hand: the scalar twin is the fused formula.
      const int j0 = 0, j1 = neox ? n_rot / 2 : 1;
      EXPECT_EQ(FloatBits(b[j0]), FloatBits(std::fma(x[j0], cache[0], -(x[j1] * cache[1]))));
      EXPECT_EQ(FloatBits(b[j1]), FloatBits(std::fma(x[j0], cache[1], x[j1] * cache[0])));
    }
  }
}

TEST_P(SimdVsScalarTest, F16GemmF32IsBitExactWithTheScalarLaneOrder) {
  std::mt19937 rng(kSeed + 4);
  for (int64_t rows : kRowCounts) {
    for (int64_t k : {int64_t{16}, int64_t{272}, int64_t{2560}}) {
      for (int64_t acts : {1, 2, 4, 5, 8}) {
        SCOPED_TRACE(Case(rows, k, acts));
        const auto w = RandomF16(rng, rows * k);
        const int64_t x_stride = k + 16;
        const auto x = RandomFloats(rng, acts * x_stride, 3.0f);
        const int64_t out_stride = rows + 1;
        std::vector<float> a(acts * out_stride, 9.0f), b(acts * out_stride, 9.0f);
        simd().f16_gemm_f32(w.data(), k, rows, k, x.data(), x_stride, acts, a.data(), out_stride);
        scalar().f16_gemm_f32(w.data(), k, rows, k, x.data(), x_stride, acts, b.data(), out_stride);
        for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(FloatBits(a[i]), FloatBits(b[i])) << "index " << i;
      }
    }
  }
}

TEST_P(SimdVsScalarTest, TernaryQ8KDotsAreBitExact) {
  std::mt19937 rng(kSeed + 5);
  for (int64_t rows : kRowCounts) {
    for (int64_t k : kTqKs) {
      SCOPED_TRACE(Case(rows, k));
      const auto wf = RandomFloats(rng, rows * k);
      const int64_t nb = k / kQK_K;
      std::vector<BlockTq1_0> w1(rows * nb);
      std::vector<BlockTq2_0> w2(rows * nb);
      QuantizeRowTq1_0(wf.data(), w1.data(), rows * k);
      QuantizeRowTq2_0(wf.data(), w2.data(), rows * k);
      const auto xf = RandomFloats(rng, k, 2.0f);
      std::vector<BlockQ8K> y(nb);
      QuantizeRowQ8K(xf.data(), y.data(), k);
      std::vector<float> a(rows), b(rows);
      simd().tq1_0_q8k_dot(w1.data(), k, rows, y.data(), a.data());
      scalar().tq1_0_q8k_dot(w1.data(), k, rows, y.data(), b.data());
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(FloatBits(a[r]), FloatBits(b[r])) << "tq1 row " << r;
      simd().tq2_0_q8k_dot(w2.data(), k, rows, y.data(), a.data());
      scalar().tq2_0_q8k_dot(w2.data(), k, rows, y.data(), b.data());
      for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(FloatBits(a[r]), FloatBits(b[r])) << "tq2 row " << r;
    }
  }
}

TEST_P(SimdVsScalarTest, QuantizeRowQ8KIsBitExact) {
  std::mt19937 rng(kSeed + 6);
  for (int64_t k : {int64_t{256}, int64_t{1024}, int64_t{2560}}) {
    SCOPED_TRACE(Case(1, k));
    auto x = RandomFloats(rng, k);
    x[5] = 0.0f;
    if (k > 256) {
      for (int j = 0; j < 256; ++j) x[256 + j] = 0.0f;  // an all-zero block
    }
    if (k > 512) {
      x[520] = -9.0f;  // tie of magnitudes: the first (negative) one wins
      x[700] = 9.0f;
    }
    std::vector<BlockQ8K> a(k / kQK_K), b(k / kQK_K);
    std::memset(a.data(), 0x11, a.size() * sizeof(BlockQ8K));
    std::memset(b.data(), 0x22, b.size() * sizeof(BlockQ8K));
    simd().quantize_row_q8k(x.data(), k, a.data());
    QuantizeRowQ8K(x.data(), b.data(), k);
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(BlockQ8K)));
  }
}

TEST_P(SimdVsScalarTest, Fp16ConversionsMatchTheReferenceOnAllClasses) {
  // All 65536 halves -> float.
  std::vector<uint16_t> h(65536);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> fa(65536), fb(65536);
  simd().fp16_to_fp32_row(h.data(), fa.data(), 65536);
  scalar().fp16_to_fp32_row(h.data(), fb.data(), 65536);
  ASSERT_EQ(0, std::memcmp(fa.data(), fb.data(), fa.size() * 4));
  // Float -> half on random bit patterns (all classes) plus a dense sweep of the f16
  // range boundaries; this also checks engine/quant's Fp32ToFp16 against F16C.
  std::mt19937 rng(kSeed + 7);
  std::vector<float> f;
  for (int i = 0; i < 1 << 20; ++i) f.push_back(BitsToFloat(static_cast<uint32_t>(rng())));
  for (uint32_t base : {0x33000000u, 0x38800000u, 0x477FF000u, 0x7F800000u}) {
    for (uint32_t d = 0; d < 1u << 14; ++d) {
      f.push_back(BitsToFloat(base - (1u << 13) + d));
      f.push_back(BitsToFloat((base - (1u << 13) + d) | 0x80000000u));
    }
  }
  for (uint32_t e = 100; e < 145; ++e) {  // exact ties in every exponent of interest
    f.push_back(BitsToFloat(e << 23 | 0x1000u));
    f.push_back(BitsToFloat(e << 23 | 0x3000u));
  }
  std::vector<uint16_t> ha(f.size()), hb(f.size());
  simd().fp32_to_fp16_row(f.data(), ha.data(), static_cast<int64_t>(f.size()));
  scalar().fp32_to_fp16_row(f.data(), hb.data(), static_cast<int64_t>(f.size()));
  for (size_t i = 0; i < f.size(); ++i) {
    ASSERT_EQ(ha[i], hb[i]) << "float bits 0x" << std::hex << FloatBits(f[i]);
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, SimdVsScalarTest, ::testing::Values(KernelPath::kAvx2, KernelPath::kAvx512),
                         [](const auto& info) { return std::string(KernelPathName(info.param)); });

// ---- The scalar twins against engine/quant's plain reference code.

TEST(ScalarTwinTest, F16DotRowsIsCloseToAPlainFloatSum) {
  std::mt19937 rng(kSeed + 8);
  const int64_t k = 2560, rows = 7;
  const auto w = RandomF16(rng, rows * k);
  const auto x = RandomF16(rng, k);
  std::vector<float> got(rows);
  KernelsFor(KernelPath::kScalar).f16_dot_rows(w.data(), k, rows, k, x.data(), got.data());
  for (int64_t r = 0; r < rows; ++r) {
    double abs_sum = 0;
    for (int64_t i = 0; i < k; ++i) abs_sum += std::fabs(Fp16ToFp32(w[r * k + i]) * Fp16ToFp32(x[i]));
    EXPECT_NEAR(got[r], DotF16Ref(w.data() + r * k, x.data(), k), kF16DotRelTol * abs_sum) << "row " << r;
  }
}

TEST(ScalarTwinTest, F16GemmWithF16RoundedActivationsIsCloseToF16DotRows) {
  std::mt19937 rng(kSeed + 9);
  const int64_t k = 1024, rows = 3;
  const auto w = RandomF16(rng, rows * k);
  const auto x16 = RandomF16(rng, k);
  std::vector<float> x(k);
  for (int64_t i = 0; i < k; ++i) x[i] = Fp16ToFp32(x16[i]);
  std::vector<float> a(rows), b(rows);
  const Kernels& s = KernelsFor(KernelPath::kScalar);
  s.f16_dot_rows(w.data(), k, rows, k, x16.data(), a.data());
  s.f16_gemm_f32(w.data(), k, rows, k, x.data(), k, 1, b.data(), rows);
  for (int64_t r = 0; r < rows; ++r) {
    double abs_sum = 0;
    for (int64_t i = 0; i < k; ++i) abs_sum += std::fabs(Fp16ToFp32(w[r * k + i]) * x[i]);
    EXPECT_NEAR(a[r], b[r], kF16DotRelTol * abs_sum);
  }
}

TEST(ScalarTwinTest, TernaryDotsAreCloseToGgmlGenericOrder) {
  std::mt19937 rng(kSeed + 10);
  const int64_t k = 2560, nb = k / kQK_K;
  const auto wf = RandomFloats(rng, k);
  std::vector<BlockTq1_0> w1(nb);
  std::vector<BlockTq2_0> w2(nb);
  QuantizeRowTq1_0(wf.data(), w1.data(), k);
  QuantizeRowTq2_0(wf.data(), w2.data(), k);
  const auto xf = RandomFloats(rng, k);
  std::vector<BlockQ8K> y(nb);
  QuantizeRowQ8K(xf.data(), y.data(), k);
  std::vector<float> deq(k), yd(k);
  DequantizeRowTq2_0(w2.data(), deq.data(), k);
  DequantizeRowQ8K(y.data(), yd.data(), k);
  double abs_sum = 0;
  for (int64_t i = 0; i < k; ++i) abs_sum += std::fabs(deq[i] * yd[i]);
  float a, b;
  const Kernels& s = KernelsFor(KernelPath::kScalar);
  s.tq1_0_q8k_dot(w1.data(), k, 1, y.data(), &a);
  s.tq2_0_q8k_dot(w2.data(), k, 1, y.data(), &b);
  EXPECT_NEAR(a, DotTq1_0Q8K(w1.data(), y.data(), k), kTqDotRelTol * abs_sum);
  EXPECT_NEAR(b, DotTq2_0Q8K(w2.data(), y.data(), k), kTqDotRelTol * abs_sum);
  EXPECT_EQ(FloatBits(a), FloatBits(b));  // TQ1_0 and TQ2_0 of the same trits agree
}

}  // namespace
}  // namespace bitparity
