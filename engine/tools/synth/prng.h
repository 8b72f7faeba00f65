// File: engine/tools/synth/prng.h
//
// The random numbers behind bitnet-synth's weights, fully specified here so that a
// seed gives the same model on every compiler and standard library:
//   - the generator is base/xoshiro.h's xoshiro256** seeded by SplitMix64;
//   - each tensor has its own stream, seeded by the model seed mixed with the
//     tensor's name (FNV-1a), so streams do not depend on the order tensors are
//     generated in;
//   - Uniform01() takes the top 53 bits; Normal() is Box-Muller on two uniforms and
//     hands out both results in turn. Box-Muller uses libm's log/sqrt/cos/sin, which
//     glibc computes to within an ulp; the weights are rounded to f32/f16 afterwards.
//
// Thread safety: a generator is a value; use one per thread.
#pragma once

#include <cmath>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "base/xoshiro.h"

namespace bitparity::synth {

// FNV-1a, 64-bit: mixes a tensor name into its seed.
inline uint64_t Fnv1a64(absl::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

class TensorRandom {
 public:
  // The stream for one tensor.
  static TensorRandom ForTensor(uint64_t seed, absl::string_view tensor_name) {
    uint64_t sm = seed ^ Fnv1a64(tensor_name);
    return TensorRandom(SplitMix64(sm));
  }

  uint64_t Next() { return gen_.Next(); }

  // Uniform in [0, 1), 53 bits.
  double Uniform01() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // Standard normal (Box-Muller).
  double Normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const double u1 = static_cast<double>((Next() >> 11) + 1) * 0x1.0p-53;  // (0, 1]: log is finite
    const double u2 = Uniform01();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double theta = 6.283185307179586476925286766559 * u2;
    spare_ = r * std::sin(theta);
    have_spare_ = true;
    return r * std::cos(theta);
  }

 private:
  explicit TensorRandom(uint64_t seed) : gen_(seed) {}
  Xoshiro256 gen_;
  bool have_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace bitparity::synth
