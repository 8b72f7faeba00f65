// File: benchmarks/end_to_end/read_bandwidth.h
//
// The memory-bandwidth ceiling for decode: a multi-threaded streaming read of a
// buffer several times larger than the last-level cache, so every byte comes from
// DRAM, as a decode step's weights do. bitnet-bench divides the bytes a decoded
// token reads by this figure to get the ceiling tokens/s.
//
//   ReadBandwidthMeter meter(DefaultBandwidthBufferBytes());
//   ASSIGN_OR_RETURN(double gbps, meter.Measure(/*threads=*/2, /*passes=*/5));
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"

namespace bitparity::bench {

// Size of the largest data/unified cache the OS reports (sysfs), 0 if unknown.
uint64_t LastLevelCacheBytes();

// max(16 x LLC, 512 MiB): large enough that no pass is served from cache.
uint64_t DefaultBandwidthBufferBytes();

class ReadBandwidthMeter {
 public:
  // Allocates and touches the buffer once (so page faults are not timed).
  explicit ReadBandwidthMeter(uint64_t buffer_bytes);
  ~ReadBandwidthMeter();
  uint64_t buffer_bytes() const { return bytes_; }

  // Reads the whole buffer `passes` times, split evenly over `threads` threads that
  // start together; returns the best pass in GB/s (1e9 bytes/s): a ceiling is
  // what the machine can stream, and the best pass is the least disturbed one.
  // Errors: InvalidArgument (threads < 1 or passes < 1).
  absl::StatusOr<double> Measure(int threads, int passes) const;

 private:
  uint64_t bytes_;
  uint8_t* data_ = nullptr;
};

}  // namespace bitparity::bench
