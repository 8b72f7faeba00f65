// File: orchestrator/thresholds.h
//
// The limits that turn measurements into a verdict. Drift is judged against the
// reference's noise floor: side B's own batch-vs-sequential difference on the same
// prompt (B is the reference by convention). Two kinds of drift matter:
//   - peaks: max|Δ| may reach a multiple of the noise floor's max|Δ| (different
//     kernels flip int8 activation roundings now and then, as B's two modes do);
//   - systematic drift: mean|Δ| and mean KL must stay a small fraction of the
//     noise floor's. A real bug (a wrong scale, a skipped norm, a shifted RoPE)
//     moves every logit a little, which the mean shows even when the peaks stay
//     inside the noise; an honest second implementation is exact on most rows.
// Each limit has an absolute floor so that a zero noise floor (an engine whose two
// modes agree bit for bit) does not demand bit-exactness.
//
// Set from a JSON config file (an object with these names) and `--set name=value`.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace bitparity {

struct Thresholds {
  // Drift per prompt (A vs B in the same mode) against B's noise floor.
  double drift_max_abs_noise_ratio = 2.0;   // max|Δ| <= ratio * noise max|Δ| (+ floor)
  double drift_max_abs_floor = 1e-4;
  double drift_mean_abs_noise_ratio = 0.1;  // mean|Δ| <= ratio * noise mean|Δ| (+ floor)
  double drift_mean_abs_floor = 1e-6;
  double drift_kl_noise_ratio = 0.1;        // mean KL <= ratio * noise mean KL (+ floor)
  double drift_kl_floor = 1e-9;
  double top1_agreement_slack = 0.1;        // top-1 agreement >= noise's agreement - slack
  // Generation.
  double near_tie_top_n = 5;                // each side's token within the other's top N
  double near_tie_max_logit_gap = 1.0;      // and at most this far below the chosen logit
  double allow_near_tie_divergence = 1;     // 1: a divergence at a near tie passes
  // Tokenization: prompts allowed to tokenize differently.
  double max_tokenization_mismatches = 0;
  // Localization: a layer diverges when its residual's relative RMS difference
  // exceeds ratio * B's own (batch vs sequential) difference at that layer, + floor.
  double trace_noise_ratio = 0.1;
  double trace_floor = 1e-6;
  // Speed (0 = off): side A's decode tokens/s must be at least this fraction of B's.
  double min_decode_speed_ratio = 0;
  // Baseline regressions (--baseline): drift may grow by this factor (+ floors), speed
  // may drop by this fraction.
  double baseline_drift_factor = 1.5;
  double baseline_speed_drop = 0.15;
  // Batch invariance (compare --batch-invariance): 1 makes a side that is not
  // bit-identical among concurrent streams (or could not be shown to be) fail
  // the verdict; 0 reports it as a finding (warn) only.
  double require_batch_invariance = 0;

  nlohmann::json ToJson() const;
  // Unknown names and non-numbers are InvalidArgument.
  absl::Status Set(const std::string& name, double value);
  absl::Status SetFromAssignment(const std::string& name_eq_value);  // "name=value"
  absl::Status MergeJson(const nlohmann::json& j);
  absl::Status LoadFile(const std::string& path);
  static std::vector<std::string> Names();
};

}  // namespace bitparity
