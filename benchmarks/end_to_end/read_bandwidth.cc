#include "benchmarks/end_to_end/read_bandwidth.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

namespace bitparity::bench {
namespace {

// Parses sysfs cache sizes such as "32768K" or "32M".
uint64_t ParseCacheSize(const std::string& s) {
  if (s.empty()) return 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (end != nullptr && (*end == 'K' || *end == 'k')) return v << 10;
  if (end != nullptr && (*end == 'M' || *end == 'm')) return v << 20;
  return v;
}

// Streams [p, p+n) with 16-byte loads, XOR-folded so the compiler cannot drop them.
// SSE2 is baseline x86-64, so this needs no dispatch; at 4 loads per iteration one
// core issues far more than its share of DRAM bandwidth.
uint64_t ReadRange(const uint8_t* p, uint64_t n) {
#if defined(__x86_64__)
  __m128i a = _mm_setzero_si128(), b = a, c = a, d = a;
  const uint64_t blocks = n / 64;
  for (uint64_t i = 0; i < blocks; ++i) {
    const __m128i* q = reinterpret_cast<const __m128i*>(p + i * 64);
    a = _mm_xor_si128(a, _mm_load_si128(q + 0));
    b = _mm_xor_si128(b, _mm_load_si128(q + 1));
    c = _mm_xor_si128(c, _mm_load_si128(q + 2));
    d = _mm_xor_si128(d, _mm_load_si128(q + 3));
  }
  const __m128i x = _mm_xor_si128(_mm_xor_si128(a, b), _mm_xor_si128(c, d));
  uint64_t out[2];
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), x);
  return out[0] ^ out[1];
#else
  uint64_t acc = 0;
  for (uint64_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    acc ^= v;
  }
  return acc;
#endif
}

}  // namespace

uint64_t LastLevelCacheBytes() {
  uint64_t best = 0;
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    std::ifstream type_file(dir + "/type"), size_file(dir + "/size");
    if (!type_file || !size_file) continue;
    std::string type, size;
    type_file >> type;
    size_file >> size;
    if (type == "Instruction") continue;
    best = std::max(best, ParseCacheSize(size));
  }
  return best;
}

uint64_t DefaultBandwidthBufferBytes() {
  return std::max<uint64_t>(16 * LastLevelCacheBytes(), uint64_t{512} << 20);
}

ReadBandwidthMeter::ReadBandwidthMeter(uint64_t buffer_bytes) : bytes_(buffer_bytes / 4096 * 4096) {
  data_ = static_cast<uint8_t*>(std::aligned_alloc(4096, bytes_));
  if (data_ != nullptr) {
    ::madvise(data_, bytes_, MADV_HUGEPAGE);  // fewer TLB misses, like a large mapped model
    // Distinct non-zero bytes: zero pages could be shared and never reach DRAM.
    for (uint64_t i = 0; i < bytes_; i += 8) {
      const uint64_t v = i * 0x9E3779B97F4A7C15ull + 1;
      std::memcpy(data_ + i, &v, 8);
    }
  }
}

ReadBandwidthMeter::~ReadBandwidthMeter() { std::free(data_); }

absl::StatusOr<double> ReadBandwidthMeter::Measure(int threads, int passes) const {
  if (threads < 1) return absl::InvalidArgumentError("bandwidth: threads must be >= 1");
  if (passes < 1) return absl::InvalidArgumentError("bandwidth: passes must be >= 1");
  if (data_ == nullptr) return absl::ResourceExhaustedError("bandwidth: could not allocate the buffer");
  // Slices are whole 64-byte blocks; the last thread takes the remainder.
  const uint64_t slice = bytes_ / threads / 64 * 64;
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    std::atomic<bool> go{false};
    std::atomic<int> ready{0};
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const uint64_t begin = t * slice;
        const uint64_t end = t == threads - 1 ? bytes_ : begin + slice;
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        sink.fetch_xor(ReadRange(data_ + begin, end - begin), std::memory_order_relaxed);
      });
    }
    // Start the clock only once every thread exists, so creation is not timed.
    while (ready.load() < threads) std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go.store(true, std::memory_order_release);
    for (std::thread& w : workers) w.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, static_cast<double>(bytes_) / s / 1e9);
  }
  if (sink.load() == 0x5EED) std::fputs("", stderr);  // keeps the reads observable
  return best;
}

}  // namespace bitparity::bench
