// File: orchestrator/verdict.h
//
// Measurements -> pass/fail. JudgePrompt applies the thresholds (thresholds.h) to
// one prompt's tokenization, drift and generation; FinalizeVerdict reads the
// report's "checks" array and writes its "verdict" (exit code 0 agree, 1 disagree,
// 2 connection error).
#pragma once

#include "nlohmann/json.hpp"
#include "orchestrator/compare.h"
#include "orchestrator/thresholds.h"

namespace bitparity {

void JudgePrompt(const Thresholds& t, PromptResult* p);

// Which layer `l` of a model with `n_layer` blocks is, in words ("layer 2",
// "the final norm").
std::string LayerName(int l, int n_layer);

void FinalizeVerdict(nlohmann::json* report);

}  // namespace bitparity
