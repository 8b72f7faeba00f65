#include "benchmarks/end_to_end/bench_stats.h"

#include <algorithm>
#include <cmath>

namespace bitparity::bench {

Spread Summarize(const std::vector<double>& all) {
  // NaN marks a run that failed (reported separately): not a measurement.
  std::vector<double> samples;
  for (double v : all) {
    if (!std::isnan(v)) samples.push_back(v);
  }
  Spread s;
  s.samples = samples;
  s.n = static_cast<int>(samples.size());
  if (samples.empty()) return s;
  std::vector<double> sorted = samples;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  s.median = n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  s.min = sorted.front();
  s.max = sorted.back();
  double sum = 0;
  for (double v : sorted) sum += v;
  s.mean = sum / n;
  if (n > 1) {
    double ss = 0;
    for (double v : sorted) ss += (v - s.mean) * (v - s.mean);
    s.stddev = std::sqrt(ss / (n - 1));
  }
  return s;
}

}  // namespace bitparity::bench
