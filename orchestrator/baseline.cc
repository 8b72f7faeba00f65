#include "orchestrator/baseline.h"

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "orchestrator/report_json.h"

namespace bitparity {
using nlohmann::json;

namespace {

// j at a path of keys, or null.
const json* At(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object() || !cur->contains(k)) return nullptr;
    cur = &(*cur)[k];
  }
  return cur;
}

}  // namespace

void ApplyBaseline(json* report, const json& old, const std::string& old_path, const Thresholds& t) {
  json& r = *report;
  json b;
  b["path"] = old_path;
  b["created_utc"] = old.value("created_utc", "");
  b["compared"] = json::array();
  b["regressions"] = json::array();
  b["notes"] = json::array();
  if (old.value("prompt_set", json::object()).value("sha256", "") != r["prompt_set"].value("sha256", "")) {
    b["notes"].push_back("the baseline used a different prompt set: drift figures are not strictly comparable");
  }
  // Drift: lower is better.
  struct DriftMetric {
    const char* name;
    std::initializer_list<const char*> path;
    double floor;
  };
  const DriftMetric drift[] = {
      {"drift mean|Δ| (mean over positions)", {"overall", "drift", "mean_abs", "mean"}, t.drift_mean_abs_floor},
      {"drift max|Δ|", {"overall", "drift", "max_abs", "max"}, t.drift_max_abs_floor},
      {"drift mean KL", {"overall", "drift", "kl", "mean"}, t.drift_kl_floor},
  };
  for (const auto& m : drift) {
    const json *o = At(old, m.path), *n = At(r, m.path);
    if (!o || !n || !o->is_number() || !n->is_number()) continue;
    const double limit = t.baseline_drift_factor * o->get<double>() + m.floor;
    const bool reg = n->get<double>() > limit;
    json row = {{"metric", m.name}, {"old", *o}, {"new", *n}, {"limit", limit}, {"regression", reg}};
    b["compared"].push_back(row);
    if (reg) b["regressions"].push_back(row);
  }
  // Speed: higher tokens/s is better, lower time to first token is better.
  for (const char* side : {"a", "b"}) {
    for (const char* metric : {"prefill_tokens_per_s", "decode_tokens_per_s", "ttft_ms"}) {
      const json *o = At(old, {"speed", side, metric, "median"}), *n = At(r, {"speed", side, metric, "median"});
      if (!o || !n || !o->is_number() || !n->is_number() || o->get<double>() <= 0) continue;
      const bool higher_better = std::string(metric) != "ttft_ms";
      const double limit = higher_better ? (1 - t.baseline_speed_drop) * o->get<double>()
                                         : (1 + t.baseline_speed_drop) * o->get<double>();
      const bool reg = higher_better ? n->get<double>() < limit : n->get<double>() > limit;
      json row = {{"metric", absl::StrCat("side ", side == std::string("a") ? "A" : "B", " ", metric, " (median)")},
                  {"old", *o}, {"new", *n}, {"limit", limit}, {"regression", reg}};
      b["compared"].push_back(row);
      if (reg) b["regressions"].push_back(row);
    }
  }
  b["pass"] = b["regressions"].empty();
  std::string summary;
  if (b["regressions"].empty()) {
    summary = fmt::format("no regression against {} ({} figures compared)", old_path, b["compared"].size());
  } else {
    const json& f = b["regressions"][0];
    summary = fmt::format("{} regression(s) against {}; first: {} {} -> {} (limit {:.4g})", b["regressions"].size(),
                          old_path, f["metric"].get<std::string>(), f["old"].dump(), f["new"].dump(),
                          f["limit"].get<double>());
  }
  r["baseline"] = b;
  const CheckStatus status = b["pass"].get<bool>() ? CheckStatus::kPass : CheckStatus::kFail;
  r["checks"].push_back({{"name", "baseline"}, {"status", CheckStatusName(status)}, {"summary", summary}});
}

}  // namespace bitparity
