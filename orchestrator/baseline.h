// File: orchestrator/baseline.h
//
// `--baseline OLD.json`: compares this run's overall drift and speed with an
// earlier report and flags regressions: drift (mean|Δ|, max|Δ|, mean KL) grown
// beyond baseline_drift_factor × the old value (plus the drift floors), or a
// side's tokens/s dropped (time to first token grown) by more than
// baseline_speed_drop. Adds report["baseline"] and a "baseline" check.
#pragma once

#include <string>

#include "nlohmann/json.hpp"
#include "orchestrator/thresholds.h"

namespace bitparity {

void ApplyBaseline(nlohmann::json* report, const nlohmann::json& old, const std::string& old_path,
                   const Thresholds& t);

}  // namespace bitparity
