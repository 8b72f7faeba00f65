// File: engine/tools/synth/prng.h
//
// The random numbers behind bitnet-synth's weights, fully specified here so that a
// seed gives the same model on every compiler and standard library (std::*_distribution
// is implementation-defined, so it is not used):
//   - SplitMix64 (Steele, Lea, Flood 2014) expands a 64-bit seed;
//   - xoshiro256** 1.0 (Blackman, Vigna 2018) is the generator;
//   - Uniform01() takes the top 53 bits; Normal() is Box-Muller on two uniforms and
//     hands out both results in turn. Box-Muller uses libm's log/sqrt/cos/sin, which
//     glibc computes to within an ulp; the weights are rounded to f32/f16 afterwards.
//
// Thread safety: a generator is a value; use one per thread.
#pragma once

#include <cmath>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace bitparity::synth {

inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// FNV-1a, 64-bit: mixes a tensor name into its seed.
inline uint64_t Fnv1a64(absl::string_view s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001B3ull;
  }
  return h;
}

class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& w : s_) w = SplitMix64(sm);
  }

  // The stream for one tensor: independent of the order tensors are generated in.
  static Xoshiro256 ForTensor(uint64_t seed, absl::string_view tensor_name) {
    uint64_t sm = seed ^ Fnv1a64(tensor_name);
    return Xoshiro256(SplitMix64(sm));
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

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
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  bool have_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace bitparity::synth
