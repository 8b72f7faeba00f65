// File: engine/kernels/cpu_features.h
//
// What the CPU (and the OS, via XCR0) lets this process execute, read once with
// cpuid + xgetbv. engine/kernels uses it to pick a kernel path at run time; nothing
// else should test instruction sets by hand.
//
// A feature is reported only if both the CPU has it and the OS saves the register
// state it needs (AVX: XMM+YMM; AVX-512: + opmask, ZMM_Hi256, Hi16_ZMM; AMX: tile
// config + tile data). Linux additionally requires a per-process arch_prctl request
// before AMX tiles may be used; amx_int8 here means "available to request".
//
// Thread safety: GetCpuFeatures() is initialised once (thread-safe static) and then
// read-only.
//
//   if (GetCpuFeatures().avx512vnni) { ... }
//   LOG(INFO) << CpuFeaturesString(GetCpuFeatures());  // "avx2 fma f16c avx512f ..."
#pragma once

#include <string>

namespace bitparity {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512dq = false;
  bool avx512vnni = false;
  bool avx512bf16 = false;
  bool avx512fp16 = false;
  bool amx_int8 = false;
};

const CpuFeatures& GetCpuFeatures();

// Space-separated names of the features present, e.g. "avx2 fma f16c".
std::string CpuFeaturesString(const CpuFeatures& f);

}  // namespace bitparity
