// File: benchmarks/end_to_end/bench_stats.h
//
// Median, min-max and standard deviation of repeated measurements (bitnet-bench
// reports every figure with its spread, never a single run).
#pragma once

#include <vector>

namespace bitparity::bench {

struct Spread {
  int n = 0;
  double median = 0, min = 0, max = 0, mean = 0;
  double stddev = 0;  // sample standard deviation (n - 1); 0 for one sample
  std::vector<double> samples;  // in measurement order
};

// Empty input gives n == 0 and zeros.
Spread Summarize(const std::vector<double>& samples);

}  // namespace bitparity::bench
