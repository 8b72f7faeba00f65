// File: orchestrator/compare_command.h
//
// The whole of `bitparity compare` after flag parsing, shared with `bitparity
// demo`: run the comparison, build the JSON report, apply --baseline, decide the
// verdict, write the requested files and print the summary. Returns the exit code
// (0 agree, 1 disagree, 2 usage or connection error).
#pragma once

#include <string>

#include "orchestrator/compare.h"

namespace bitparity {

struct OutputOptions {
  std::string json_path, junit_path, html_path, markdown_path;
  std::string baseline_path;
  bool color = false;    // ANSI colors in the summary
  bool summary = true;   // print the summary table on stdout
  nlohmann::json shard;  // compare --shard: the report's "shard" object (shard.h); null otherwise
};

int CompareAndReport(EngineClient& a, EngineClient& b, const PromptSet& prompts, const CompareOptions& options,
                     const OutputOptions& out, const std::string& command_line, Progress* progress);

// Writes the files of `out` for a finished report; prints what it wrote on stderr.
// Returns false (after printing the error) when a file cannot be written.
bool WriteOutputs(const nlohmann::json& report, const OutputOptions& out);

}  // namespace bitparity
