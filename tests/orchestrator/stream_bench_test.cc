// SummarizeStreams (orchestrator/stream_bench.h) on hand-built token arrival
// times, and the throughput chart (throughput_chart.h) parsed back as XML.
#include "orchestrator/stream_bench.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "orchestrator/throughput_chart.h"
#include "tests/orchestrator/junit_lite.h"

namespace bitparity {
namespace {

// A stream started at `start` whose n tokens arrive at first, first + step, ...
StreamTrace Trace(double start, double first, double step, int n) {
  StreamTrace t;
  t.ok = true;
  t.start_s = start;
  for (int i = 0; i < n; ++i) t.arrivals_s.push_back(first + step * i);
  return t;
}

TEST(SummarizeStreams, OneStreamIsItsOwnDecodeRate) {
  // 11 tokens, 10 ms apart: 10 decode steps in 0.1 s.
  const StreamLevel l = SummarizeStreams(1, 11, {{Trace(0, 0.05, 0.01, 11)}});
  EXPECT_NEAR(l.aggregate_decode_tokens_per_s, 100, 1e-9);
  EXPECT_NEAR(l.per_stream_decode_tokens_per_s, 100, 1e-9);
  EXPECT_NEAR(l.ttft_p50_ms, 50, 1e-9);
  EXPECT_NEAR(l.itl_p50_ms, 10, 1e-9);
  EXPECT_NEAR(l.itl_p99_ms, 10, 1e-9);
  EXPECT_EQ(l.streams, 1);
  EXPECT_EQ(l.tokens, 11);
  EXPECT_EQ(l.short_streams, 0);
  EXPECT_EQ(l.window_tokens, 10);
}

TEST(SummarizeStreams, AggregateCountsOnlyTheWindowInWhichAllStreamsDecode) {
  // Times in units of u = 1/128 s (exact in binary), from 16u = 0.125 s.
  // Stream 0: 10 tokens at 16u, 17u, ..., 25u.
  // Stream 1: 10 tokens at 19u, 21u, ..., 37u.
  // Window (19u, 25u]: stream 0 has 20u..25u (6 tokens), stream 1 has 21u,
  // 23u, 25u (3 tokens): 9 tokens in 6u.
  const double u = 1.0 / 128;
  const StreamLevel l = SummarizeStreams(2, 10, {{Trace(0, 16 * u, u, 10), Trace(0, 19 * u, 2 * u, 10)}});
  EXPECT_DOUBLE_EQ(l.window_s, 6 * u);
  EXPECT_EQ(l.window_tokens, 9);
  EXPECT_DOUBLE_EQ(l.aggregate_decode_tokens_per_s, 9 / (6 * u));
  // Per stream: 9 / 9u = 128 and 9 / 18u = 64; the median of two interpolates.
  EXPECT_DOUBLE_EQ(l.per_stream_decode_tokens_per_s, 96);
  EXPECT_DOUBLE_EQ(l.ttft_p50_ms, (16 + 19) / 2.0 * u * 1e3);
  EXPECT_GE(l.ttft_p99_ms, l.ttft_p50_ms);
  EXPECT_GE(l.itl_p99_ms, l.itl_p50_ms);
  EXPECT_DOUBLE_EQ(l.itl_p99_ms, 2 * u * 1e3);
  EXPECT_DOUBLE_EQ(l.level_tokens_per_s, 20 / (37 * u));
}

TEST(SummarizeStreams, StreamsRunOneAfterAnotherHaveNoAggregate) {
  const StreamLevel l = SummarizeStreams(2, 5, {{Trace(0, 0.01, 0.01, 5), Trace(0, 0.10, 0.01, 5)}});
  EXPECT_TRUE(std::isnan(l.aggregate_decode_tokens_per_s));
  EXPECT_EQ(l.rounds_with_window, 0);
  EXPECT_NEAR(l.per_stream_decode_tokens_per_s, 100, 1e-9);
  // Level throughput: 10 tokens from the calls' start (0) to the last arrival (0.14 s).
  EXPECT_NEAR(l.level_tokens_per_s, 10 / 0.14, 1e-9);
}

TEST(SummarizeStreams, FailedAndShortStreamsAreCounted) {
  StreamTrace failed;
  failed.error = "UNAVAILABLE";
  const StreamLevel l = SummarizeStreams(2, 8, {{Trace(0, 0.01, 0.01, 5), failed}});
  EXPECT_EQ(l.streams, 2);
  EXPECT_EQ(l.failed, 1);
  EXPECT_EQ(l.short_streams, 1);
  EXPECT_EQ(l.first_error, "UNAVAILABLE");
}

TEST(StreamScaling, LevelKOverLevelOne) {
  StreamLevel one, eight;
  one.concurrency = 1;
  one.aggregate_decode_tokens_per_s = 100;
  one.itl_p99_ms = 10;
  eight.concurrency = 8;
  eight.aggregate_decode_tokens_per_s = 400;
  eight.itl_p99_ms = 25;
  const nlohmann::json s = StreamScaling({one, eight});
  ASSERT_EQ(s.size(), 2u);
  EXPECT_DOUBLE_EQ(s[1]["aggregate_decode_tokens_per_s"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(s[1]["itl_p99_ms"].get<double>(), 2.5);
  EXPECT_TRUE(s[1]["ttft_p50_ms"].is_null());  // undefined at both levels
}

// Every element named `name` under `n`, depth first.
void Collect(const testing::XmlNode& n, const std::string& name, std::vector<const testing::XmlNode*>* out) {
  if (n.name == name) out->push_back(&n);
  for (const auto& c : n.children) Collect(c, name, out);
}

TEST(ThroughputChart, IsWellFormedSvgWithOneLinePerSideAndTheLevelsAsLabels) {
  const std::string svg = ThroughputChartSvg(
      "aggregate decode tokens/s", "tokens/s",
      {{"A 127.0.0.1:1", "#2980b9", {1, 2, 4, 8}, {100, 190, 350, 600}},
       {"B <ref> & co", "#7f8c8d", {1, 2, 4, 8}, {90, 120, NAN, 130}}});
  testing::XmlNode root;
  std::string error;
  ASSERT_TRUE(testing::ParseXml(svg, &root, &error)) << error << "\n" << svg;
  EXPECT_EQ(root.name, "svg");
  EXPECT_EQ(root.attrs["xmlns"], "http://www.w3.org/2000/svg");
  std::vector<const testing::XmlNode*> lines, texts;
  Collect(root, "polyline", &lines);
  Collect(root, "text", &texts);
  ASSERT_EQ(lines.size(), 2u);
  // Side B's undefined point at 4 is left out: 3 points.
  auto points = [](const testing::XmlNode* n) {
    int commas = 0;
    for (char c : n->attrs.at("points")) commas += c == ',';
    return commas;
  };
  EXPECT_EQ(points(lines[0]), 4);
  EXPECT_EQ(points(lines[1]), 3);
  std::vector<std::string> levels;
  bool xlabel = false, ylabel = false;
  for (const auto* t : texts) {
    if (t->attrs.count("class") && t->attrs.at("class") == "tk level") levels.push_back(t->text);
    xlabel = xlabel || t->text == "concurrent streams";
    ylabel = ylabel || t->text == "tokens/s";
  }
  EXPECT_EQ(levels, (std::vector<std::string>{"1", "2", "4", "8"}));
  EXPECT_TRUE(xlabel);
  EXPECT_TRUE(ylabel);
}

}  // namespace
}  // namespace bitparity
