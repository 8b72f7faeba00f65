// File: orchestrator/bench.h
//
// `bitparity bench --a ADDR [--b ADDR]`: the speed part of compare alone, at
// several concurrency levels, for one or two servers (one after the other):
//   - timed single generations (prefill/decode tokens/s, TTFT; speed.h);
//   - a load of Generate requests per level (request latency p50/p95/p99);
//   - concurrent streaming decode per level (stream_bench.h: aggregate and
//     per-stream decode tokens/s, TTFT and inter-token latency p50/p99), with
//     each side's scaling (level k over level 1) and the A/B ratios per level.
// Prints a table; --json writes {"schema": "bitparity.bench", "schema_version": 1,
// ...} (described by orchestrator/schema/bench.schema.json); --html writes a
// self-contained page with throughput against concurrency as an SVG chart.
#pragma once

#include <string>

#include "nlohmann/json.hpp"
#include "orchestrator/engine_client.h"
#include "orchestrator/progress.h"
#include "orchestrator/prompt_set.h"
#include "orchestrator/speed.h"

namespace bitparity {

inline constexpr const char* kBenchSchema = "bitparity.bench";
inline constexpr int kBenchSchemaVersion = 1;

struct BenchOutputs {
  std::string json_path, html_path;
};

// b may be null. Returns the exit code (0, or 2 on an RPC failure).
int RunBench(EngineClient& a, EngineClient* b, const PromptSet& prompts, const SpeedOptions& options,
             const BenchOutputs& outputs, const std::string& command_line, Progress* progress);

// Renderers of a bench JSON document (bench_report.cc).
std::string RenderBenchText(const nlohmann::json& bench);
std::string RenderBenchHtml(const nlohmann::json& bench);

}  // namespace bitparity
