// File: base/xoshiro.h
//
// The seeded generator behind every random choice bitparity makes (sampling,
// synthetic weights), fully specified so that a seed gives the same stream on
// every compiler and standard library (std::*_distribution is
// implementation-defined, so it is not used):
//   - SplitMix64 (Steele, Lea, Flood 2014) expands a 64-bit seed into the state;
//   - xoshiro256** 1.0 (Blackman, Vigna 2018) is the generator.
//
//   Xoshiro256 rng(seed);
//   uint64_t bits = rng.Next();
//
// Thread safety: a generator is a value; use one per thread.
#pragma once

#include <cstdint>

namespace bitparity {

// Advances `state` and returns the next SplitMix64 output.
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Xoshiro256 {
 public:
  // The state is four successive SplitMix64 outputs from `seed`.
  explicit Xoshiro256(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& w : s_) w = SplitMix64(sm);
  }

  // A generator in a given state (REQUIRES: not all zero), for known-answer tests.
  static Xoshiro256 FromState(uint64_t s0, uint64_t s1, uint64_t s2, uint64_t s3) {
    Xoshiro256 g(0);
    g.s_[0] = s0, g.s_[1] = s1, g.s_[2] = s2, g.s_[3] = s3;
    return g;
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

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace bitparity
