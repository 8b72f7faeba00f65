#include "engine/kernels/kernels.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/kernels/cpu_features.h"
#include "engine/kernels/kernels_internal.h"

namespace bitparity {
namespace {

using kernels_internal::Avx2Kernels;
using kernels_internal::Avx512Kernels;
using kernels_internal::ScalarKernels;

// The table GetKernels() returns; null until first use or after ForceKernelPath(nullopt).
std::atomic<const Kernels*> g_selected{nullptr};

const Kernels& DefaultKernels() {
  KernelPath want = BestKernelPath();
  if (const char* env = std::getenv("BITPARITY_KERNELS"); env != nullptr && *env != '\0') {
    absl::StatusOr<KernelPath> p = ParseKernelPath(env);
    if (p.ok()) {
      want = *p;
    } else {
      std::fprintf(stderr, "bitparity: ignoring BITPARITY_KERNELS: %s\n", std::string(p.status().message()).c_str());
    }
  }
  return KernelsFor(want);
}

}  // namespace

bool KernelPathSupported(KernelPath path) {
  const CpuFeatures& f = GetCpuFeatures();
  switch (path) {
    case KernelPath::kScalar:
      return true;
    case KernelPath::kAvx2:
      return f.avx2 && f.fma && f.f16c;
    case KernelPath::kAvx512:
      return f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni;
  }
  return false;
}

KernelPath BestKernelPath() {
  if (KernelPathSupported(KernelPath::kAvx512)) return KernelPath::kAvx512;
  if (KernelPathSupported(KernelPath::kAvx2)) return KernelPath::kAvx2;
  return KernelPath::kScalar;
}

const Kernels& KernelsFor(KernelPath path) {
  if (path == KernelPath::kAvx512 && KernelPathSupported(KernelPath::kAvx512)) return Avx512Kernels();
  if (path != KernelPath::kScalar && KernelPathSupported(KernelPath::kAvx2)) return Avx2Kernels();
  return ScalarKernels();
}

const Kernels& GetKernels() {
  const Kernels* k = g_selected.load(std::memory_order_acquire);
  if (k == nullptr) {
    k = &DefaultKernels();
    const Kernels* expected = nullptr;
    // First caller wins; a concurrent ForceKernelPath() is not overwritten.
    if (!g_selected.compare_exchange_strong(expected, k, std::memory_order_acq_rel)) k = expected;
  }
  return *k;
}

void ForceKernelPath(std::optional<KernelPath> path) {
  g_selected.store(path ? &KernelsFor(*path) : nullptr, std::memory_order_release);
}

absl::StatusOr<KernelPath> ParseKernelPath(std::string_view name) {
  if (name == "scalar") return KernelPath::kScalar;
  if (name == "avx2") return KernelPath::kAvx2;
  if (name == "avx512") return KernelPath::kAvx512;
  return absl::InvalidArgumentError(absl::StrCat("unknown kernel path '", std::string(name), "' (want scalar, avx2 or avx512)"));
}

const char* KernelPathName(KernelPath path) {
  switch (path) {
    case KernelPath::kScalar:
      return "scalar";
    case KernelPath::kAvx2:
      return "avx2";
    case KernelPath::kAvx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace bitparity
