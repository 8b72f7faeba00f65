// File: orchestrator/bench.h
//
// `bitparity bench --a ADDR [--b ADDR]`: the speed part of compare alone, at
// several concurrency levels, for one or two servers (one after the other).
// Prints a table; --json writes {"schema": "bitparity.bench", "schema_version": 1, ...}.
#pragma once

#include <string>

#include "orchestrator/engine_client.h"
#include "orchestrator/progress.h"
#include "orchestrator/prompt_set.h"
#include "orchestrator/speed.h"

namespace bitparity {

// b may be null. Returns the exit code (0, or 2 on an RPC failure).
int RunBench(EngineClient& a, EngineClient* b, const PromptSet& prompts, const SpeedOptions& options,
             const std::string& json_path, const std::string& command_line, Progress* progress);

}  // namespace bitparity
