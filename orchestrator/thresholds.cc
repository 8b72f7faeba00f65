#include "orchestrator/thresholds.h"

#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace bitparity {
namespace {

// One table of (name, member) so that JSON, --set and the docs cannot drift apart.
std::vector<std::pair<const char*, double Thresholds::*>> Fields() {
  return {
      {"drift_max_abs_noise_ratio", &Thresholds::drift_max_abs_noise_ratio},
      {"drift_max_abs_floor", &Thresholds::drift_max_abs_floor},
      {"drift_mean_abs_noise_ratio", &Thresholds::drift_mean_abs_noise_ratio},
      {"drift_mean_abs_floor", &Thresholds::drift_mean_abs_floor},
      {"drift_kl_noise_ratio", &Thresholds::drift_kl_noise_ratio},
      {"drift_kl_floor", &Thresholds::drift_kl_floor},
      {"top1_agreement_slack", &Thresholds::top1_agreement_slack},
      {"near_tie_top_n", &Thresholds::near_tie_top_n},
      {"near_tie_max_logit_gap", &Thresholds::near_tie_max_logit_gap},
      {"allow_near_tie_divergence", &Thresholds::allow_near_tie_divergence},
      {"max_tokenization_mismatches", &Thresholds::max_tokenization_mismatches},
      {"trace_noise_ratio", &Thresholds::trace_noise_ratio},
      {"trace_floor", &Thresholds::trace_floor},
      {"min_decode_speed_ratio", &Thresholds::min_decode_speed_ratio},
      {"baseline_drift_factor", &Thresholds::baseline_drift_factor},
      {"baseline_speed_drop", &Thresholds::baseline_speed_drop},
      {"require_batch_invariance", &Thresholds::require_batch_invariance},
  };
}

}  // namespace

nlohmann::json Thresholds::ToJson() const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, member] : Fields()) j[name] = this->*member;
  return j;
}

std::vector<std::string> Thresholds::Names() {
  std::vector<std::string> n;
  for (const auto& f : Fields()) n.push_back(f.first);
  return n;
}

absl::Status Thresholds::Set(const std::string& name, double value) {
  for (const auto& [n, member] : Fields()) {
    if (name == n) {
      if (value < 0) return absl::InvalidArgumentError(absl::StrCat("threshold ", name, " must be >= 0"));
      this->*member = value;
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown threshold '", name, "' (known: ", absl::StrJoin(Names(), ", "), ")"));
}

absl::Status Thresholds::SetFromAssignment(const std::string& a) {
  const size_t eq = a.find('=');
  double v = 0;
  if (eq == std::string::npos || !absl::SimpleAtod(a.substr(eq + 1), &v)) {
    return absl::InvalidArgumentError(absl::StrCat("expected NAME=NUMBER, got '", a, "'"));
  }
  return Set(a.substr(0, eq), v);
}

absl::Status Thresholds::MergeJson(const nlohmann::json& j) {
  if (!j.is_object()) return absl::InvalidArgumentError("thresholds must be a JSON object");
  for (const auto& [k, v] : j.items()) {
    if (k == "$comment") continue;
    if (v.is_boolean()) {
      if (absl::Status s = Set(k, v.get<bool>() ? 1 : 0); !s.ok()) return s;
      continue;
    }
    if (!v.is_number()) return absl::InvalidArgumentError(absl::StrCat("threshold ", k, " must be a number"));
    if (absl::Status s = Set(k, v.get<double>()); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Thresholds::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read thresholds file '", path, "'"));
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not valid JSON"));
  // Accept either the object itself or a report-like {"thresholds": {...}}.
  if (j.is_object() && j.contains("thresholds") && j["thresholds"].is_object()) j = j["thresholds"];
  absl::Status s = MergeJson(j);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  return s;
}

}  // namespace bitparity
