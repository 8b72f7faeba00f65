// File: orchestrator/throughput_chart.h
//
// Throughput against concurrency as an inline SVG (no scripts, no downloads):
// one polyline per side, with a marker at each level, the x axis labelled
// with the concurrency levels themselves (evenly spaced, since levels are
// usually powers of two), the y axis in tokens/s from 0. Points whose value
// is undefined (null) are left out, and the legend says so.
#pragma once

#include <string>
#include <vector>

namespace bitparity {

struct ThroughputSeries {
  std::string name;   // "A 127.0.0.1:5000"
  std::string color;  // any SVG color
  std::vector<int> concurrency;
  std::vector<double> tokens_per_s;  // NaN: not defined at that level
};

std::string ThroughputChartSvg(const std::string& title, const std::string& ylabel,
                               const std::vector<ThroughputSeries>& series);

}  // namespace bitparity
