// File: orchestrator/merge.h
//
// `bitparity merge A.json B.json ...`: joins the reports of `compare --shard I/N`
// (all N shards, any order) into the report one unsharded run would have written.
// The shards must come from one comparison: the same prompt set (sha256 and
// order), settings, thresholds and models. The per-prompt results are put back in
// the prompt set's order, then the overall figures, the checks and the verdict are
// recomputed from them with the same code `compare` uses (OverallFromPrompts,
// SummarizeChecks, FinalizeVerdict), so they equal an unsharded run's.
// What a merged report cannot recompute, by nature:
//   - speed: each shard measures its own; the merged report keeps the lowest
//     shard's that has one (its "shards" list names every shard's run);
//   - localization: each shard traces up to trace_prompts of its own failing
//     prompts, so a merged report may hold up to N x trace_prompts traces;
//   - timing fields (wall_s, wall_ms, eval_ms_*), created_utc (the earliest
//     shard's), host and command.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace bitparity {

// InvalidArgument naming the file when the reports are not the complete set of
// shards of one comparison. The result has no "verdict" and no baseline yet.
absl::StatusOr<nlohmann::json> MergeShardReports(const std::vector<nlohmann::json>& reports,
                                                 const std::vector<std::string>& paths,
                                                 const std::string& command_line);

}  // namespace bitparity
