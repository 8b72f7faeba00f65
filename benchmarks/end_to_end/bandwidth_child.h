// File: benchmarks/end_to_end/bandwidth_child.h
//
// Runs the read-bandwidth measurement (read_bandwidth.h) in a child process
// (bitnet-bench __read-bandwidth). Why a child: peak RSS is read from wait4, and a
// spawned program's ru_maxrss starts from its parent's high-water mark, so the
// parent must never hold the large buffer itself.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace bitparity::bench {

inline constexpr char kReadBandwidthCommand[] = "__read-bandwidth";

// GB/s (best of `passes`). Errors: the child failed or printed no number.
absl::StatusOr<double> RunReadBandwidthChild(const std::string& self, uint64_t buffer_bytes, int threads,
                                             int passes, double timeout_s);

}  // namespace bitparity::bench
