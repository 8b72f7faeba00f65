// Run-time kernel selection: feature detection, the override and the fallback.
#include <cstdlib>
#include <string>

#include "engine/kernels/cpu_features.h"
#include "engine/kernels/kernels.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

class DispatchTest : public ::testing::Test {
 protected:
  void TearDown() override { ForceKernelPath(std::nullopt); }
};

TEST_F(DispatchTest, ForceKernelPathSelectsTheScalarReference) {
  ForceKernelPath(KernelPath::kScalar);
  EXPECT_EQ(GetKernels().path, KernelPath::kScalar);
  EXPECT_STREQ(GetKernels().name, "scalar");
  ForceKernelPath(BestKernelPath());
  EXPECT_EQ(GetKernels().path, BestKernelPath());
}

TEST_F(DispatchTest, EnvironmentOverrideIsReadWhenNothingIsForced) {
  ForceKernelPath(std::nullopt);
  ASSERT_EQ(setenv("BITPARITY_KERNELS", "scalar", 1), 0);
  EXPECT_EQ(GetKernels().path, KernelPath::kScalar);
  ForceKernelPath(std::nullopt);
  ASSERT_EQ(setenv("BITPARITY_KERNELS", "no-such-path", 1), 0);
  EXPECT_EQ(GetKernels().path, BestKernelPath());  // ignored with a message
  ForceKernelPath(std::nullopt);
  unsetenv("BITPARITY_KERNELS");
  EXPECT_EQ(GetKernels().path, BestKernelPath());
}

TEST_F(DispatchTest, UnsupportedRequestFallsBackToASupportedPath) {
  for (KernelPath p : {KernelPath::kScalar, KernelPath::kAvx2, KernelPath::kAvx512}) {
    const Kernels& k = KernelsFor(p);
    EXPECT_TRUE(KernelPathSupported(k.path)) << k.name;
    EXPECT_LE(static_cast<int>(k.path), static_cast<int>(p));
    if (KernelPathSupported(p)) {
      EXPECT_EQ(k.path, p);
    }
  }
}

TEST_F(DispatchTest, EveryTableIsComplete) {
  for (KernelPath p : {KernelPath::kScalar, KernelPath::kAvx2, KernelPath::kAvx512}) {
    const Kernels& k = KernelsFor(p);
    EXPECT_NE(k.i2s_gemv, nullptr);
    EXPECT_NE(k.i2s_gemm, nullptr);
    EXPECT_NE(k.quantize_row_i8s, nullptr);
    EXPECT_NE(k.f16_dot_rows, nullptr);
    EXPECT_NE(k.f16_gemm_f32, nullptr);
    EXPECT_NE(k.tq1_0_q8k_dot, nullptr);
    EXPECT_NE(k.tq2_0_q8k_dot, nullptr);
    EXPECT_NE(k.quantize_row_q8k, nullptr);
    EXPECT_NE(k.fp16_to_fp32_row, nullptr);
    EXPECT_NE(k.fp32_to_fp16_row, nullptr);
  }
}

TEST_F(DispatchTest, ParsesPathNames) {
  EXPECT_EQ(*ParseKernelPath("avx512"), KernelPath::kAvx512);
  EXPECT_EQ(*ParseKernelPath("avx2"), KernelPath::kAvx2);
  EXPECT_EQ(*ParseKernelPath("scalar"), KernelPath::kScalar);
  EXPECT_EQ(ParseKernelPath("AVX2").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CpuFeaturesTest, ReportsAConsistentFeatureSet) {
  const CpuFeatures& f = GetCpuFeatures();
  std::printf("cpu features: %s; best kernel path: %s\n", CpuFeaturesString(f).c_str(),
              KernelPathName(BestKernelPath()));
  // AVX-512 sub-features imply the foundation.
  if (f.avx512bw || f.avx512vl || f.avx512vnni) {
    EXPECT_TRUE(f.avx512f);
  }
#if defined(__x86_64__)
  // Every x86-64 CPU this project targets has at least AVX2 (CI and dev boxes); a
  // scalar-only answer there would mean detection broke.
  EXPECT_TRUE(f.avx2 || std::getenv("BITPARITY_ALLOW_NO_AVX2") != nullptr) << CpuFeaturesString(f);
#endif
}

}  // namespace
}  // namespace bitparity
