// File: engine/common/cache_aligned_vector.h
//
// A std::vector whose data starts on a 64-byte cache line, for the activations the
// int8 kernels read 64 bytes at a time. malloc aligns to 16 bytes, so a plain vector's
// 64-byte loads may each straddle two lines. Zen 5, one thread, kernels_bench
// BM_I2sGemmDecodeLayers/2/8 (the 30 layers' products for 8 rows, the activations
// 16 bytes past a line): 52-63 ms against 47-50 ms aligned.
#pragma once

#include <vector>

#include <boost/align/aligned_allocator.hpp>

namespace bitparity {

constexpr size_t kCacheLineBytes = 64;

template <typename T>
using CacheAlignedVector = std::vector<T, boost::alignment::aligned_allocator<T, kCacheLineBytes>>;

}  // namespace bitparity
