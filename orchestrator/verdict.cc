#include "orchestrator/verdict.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "orchestrator/report_json.h"

namespace bitparity {
namespace {

double Mean(const std::vector<double>& v) {
  return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}
double Max(const std::vector<double>& v) { return v.empty() ? 0 : *std::max_element(v.begin(), v.end()); }
double Rate(const std::vector<int>& v) {
  return v.empty() ? 1 : static_cast<double>(std::accumulate(v.begin(), v.end(), 0)) / v.size();
}

}  // namespace

std::string LayerName(int l, int n_layer) {
  if (l < 0) return "none";
  if (l >= n_layer) return "the final norm";
  return absl::StrCat("layer ", l);
}

void JudgePrompt(const Thresholds& t, PromptResult* p) {
  if (!p->error_code.empty()) {
    for (CheckResult* c : {&p->tokenization_check, &p->drift_check, &p->generation_check}) {
      // An ids prompt has nothing to tokenize: its tokenization check stays skipped.
      if (c == &p->tokenization_check && !p->prompt.is_text()) continue;
      if (c->status == CheckStatus::kSkip) {
        c->status = CheckStatus::kError;
        c->reasons.push_back(absl::StrCat(p->error_code, ": ", p->error_message));
      }
    }
  }
  // Tokenization.
  const TokenizationResult& tk = p->tokenization;
  if (tk.checked) {
    p->tokenization_check.status = tk.agree ? CheckStatus::kPass : CheckStatus::kFail;
    if (!tk.agree) {
      p->tokenization_check.reasons.push_back(fmt::format(
          "tokenizers differ at index {} (A id {}, B id {}; {} vs {} tokens); the run goes on with A's ids",
          tk.first_diff, tk.id_a, tk.id_b, tk.n_a, tk.n_b));
    }
  }
  // Drift against B's noise floor.
  const DriftResult& d = p->drift;
  if (d.measured) {
    CheckResult& c = p->drift_check;
    c.status = CheckStatus::kPass;
    const double max_ab = Max(d.ab.max_abs), max_n = Max(d.noise.max_abs);
    const double mean_ab = Mean(d.ab.mean_abs), mean_n = Mean(d.noise.mean_abs);
    const double kl_ab = Mean(d.ab.kl), kl_n = Mean(d.noise.kl);
    const double top1_ab = Rate(d.ab.top1_agree), top1_n = Rate(d.noise.top1_agree);
    p->drift_noise_ratio = mean_n > 0 ? mean_ab / mean_n : (mean_ab > 0 ? std::numeric_limits<double>::infinity() : 0);
    const double lim_max = std::max(t.drift_max_abs_floor, t.drift_max_abs_noise_ratio * max_n);
    const double lim_mean = std::max(t.drift_mean_abs_floor, t.drift_mean_abs_noise_ratio * mean_n);
    const double lim_kl = std::max(t.drift_kl_floor, t.drift_kl_noise_ratio * kl_n);
    if (max_ab > lim_max) {
      c.status = CheckStatus::kFail;
      c.reasons.push_back(fmt::format("max|Δlogit| {:.4g} > {:.4g} ({}× the noise floor's {:.4g})", max_ab, lim_max,
                                      t.drift_max_abs_noise_ratio, max_n));
    }
    if (mean_ab > lim_mean) {
      c.status = CheckStatus::kFail;
      c.reasons.push_back(fmt::format("mean|Δlogit| {:.4g} > {:.4g} ({}× the noise floor's {:.4g}): systematic drift",
                                      mean_ab, lim_mean, t.drift_mean_abs_noise_ratio, mean_n));
    }
    if (kl_ab > lim_kl) {
      c.status = CheckStatus::kFail;
      c.reasons.push_back(fmt::format("mean KL(A‖B) {:.4g} > {:.4g} ({}× the noise floor's {:.4g})", kl_ab, lim_kl,
                                      t.drift_kl_noise_ratio, kl_n));
    }
    if (top1_ab < top1_n - t.top1_agreement_slack) {
      c.status = CheckStatus::kFail;
      c.reasons.push_back(fmt::format("top-1 agreement {:.3f} < the noise floor's {:.3f} - {}", top1_ab, top1_n,
                                      t.top1_agreement_slack));
    }
  }
  // Generation.
  const GenerationComparison& g = p->generation;
  if (g.measured) {
    CheckResult& c = p->generation_check;
    if (g.exact_match) {
      c.status = CheckStatus::kPass;
    } else if (g.divergence && g.divergence->near_tie && t.allow_near_tie_divergence != 0) {
      c.status = CheckStatus::kPass;
      c.reasons.push_back(fmt::format("diverged at token {} at a near tie (A {} vs B {}, gaps {:.3g} / {:.3g})",
                                      g.divergence->index, g.divergence->token_a, g.divergence->token_b,
                                      g.divergence->gap_a, g.divergence->gap_b));
    } else {
      c.status = CheckStatus::kFail;
      if (g.divergence && g.divergence->token_a >= 0 && g.divergence->token_b >= 0) {
        const NearTie& n = *g.divergence;
        c.reasons.push_back(fmt::format(
            "diverged at token {} (A {} vs B {}), not a near tie: B's token {} A's top-{}{}, A's token {} B's top-{}{}",
            n.index, n.token_a, n.token_b, n.b_in_a_top ? "in" : "not in", static_cast<int>(t.near_tie_top_n),
            n.b_in_a_top ? fmt::format(" (gap {:.3g})", n.gap_a) : "", n.a_in_b_top ? "in" : "not in",
            static_cast<int>(t.near_tie_top_n), n.a_in_b_top ? fmt::format(" (gap {:.3g})", n.gap_b) : ""));
      } else {
        c.reasons.push_back(fmt::format("lengths differ after {} common tokens ({} vs {}; finish {} vs {})",
                                        g.common_prefix, g.ids_a.size(), g.ids_b.size(), g.finish_a, g.finish_b));
      }
    }
  }
}

void FinalizeVerdict(nlohmann::json* report) {
  nlohmann::json& r = *report;
  std::vector<std::string> failed;
  bool missing_prompts = false;  // the errors check: prompts still failing after retries
  for (const auto& c : r["checks"]) {
    const std::optional<CheckStatus> s = ReadCheckStatus(c["status"]);
    if (s == CheckStatus::kFail || s == CheckStatus::kError) failed.push_back(c["name"].get<std::string>());
    if (s == CheckStatus::kError && c["name"] == "errors") missing_prompts = true;
  }
  const bool lost = r.value("connection_lost", false);
  nlohmann::json v;
  v["agree"] = failed.empty() && !lost;
  // Incomplete results are an ERROR (2), never a pass (0) nor a disagreement (1).
  v["exit_code"] = lost || missing_prompts ? 2 : (failed.empty() ? 0 : 1);
  v["failed_checks"] = failed;
  std::string summary;
  if (missing_prompts) {
    summary = std::string("ERROR: some prompts could not be compared even after retries (see the errors check") +
              (lost ? "; a server stopped answering" : "") + "): results are incomplete";
  } else if (lost) {
    summary = "ERROR: connection lost during the run: results are incomplete";
  } else if (failed.empty()) {
    summary = "the engines agree within the thresholds";
  } else {
    summary = "the engines disagree: " + failed.front();
    for (size_t i = 1; i < failed.size(); ++i) summary += ", " + failed[i];
    const auto& loc = r["overall"]["localization"];
    if (loc.is_object() && loc.value("first_diverging_layer", -1) >= 0) {
      summary += "; divergence starts at " + loc["first_diverging_layer_name"].get<std::string>();
    }
  }
  v["summary"] = summary;
  r["verdict"] = v;
}

}  // namespace bitparity
