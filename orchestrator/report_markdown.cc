#include <string>

#include "fmt/format.h"
#include "orchestrator/reports.h"

namespace bitparity {
using nlohmann::json;

namespace {
std::string Cell(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out += c;
  }
  return out;
}
}  // namespace

std::string RenderMarkdown(const json& r) {
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  const json& v = r["verdict"];
  line(fmt::format("# bitparity: {}", v["agree"].get<bool>() ? "engines agree" : "engines disagree"));
  line("");
  line(fmt::format("**Verdict:** {} (exit {}) — {}", VerdictWord(v), Fig(v["exit_code"]),
                   Cell(v["summary"].get<std::string>())));
  line("");
  line("- " + Cell(SideLine(r, "a")));
  line("- " + Cell(SideLine(r, "b")));
  for (const char* side : {"a", "b"}) {
    for (const std::string& l : SideLintLines(r, side)) {
      line("  - model lint, side " + std::string(side == std::string("a") ? "A" : "B") + ": " + Cell(l));
    }
  }
  line(fmt::format("- prompts: {} from `{}` (sha256 `{}`), mode {}, noise floor = B {} vs B {}",
                   Fig(r["prompt_set"]["count"]), r["prompt_set"]["source"].get<std::string>(),
                   r["prompt_set"]["sha256"].get<std::string>().substr(0, 16), r["settings"]["mode"].get<std::string>(),
                   r["settings"]["noise_mode"].get<std::string>(), r["settings"]["mode"].get<std::string>()));
  line(fmt::format("- created {} on {} ({})", r["created_utc"].get<std::string>(),
                   r["host"].value("hostname", "?"), r["host"].value("cpu", "?")));
  if (const std::string res = ResilienceLine(r); !res.empty()) line("- " + Cell(res));
  line("");
  line("## Checks");
  line("");
  line("| check | status | summary |");
  line("|---|---|---|");
  for (const auto& c : r["checks"]) {
    line(fmt::format("| {} | {} | {} |", c["name"].get<std::string>(), c["status"].get<std::string>(),
                     Cell(c["summary"].get<std::string>())));
  }
  line("");
  line("## Drift, A vs B, all positions (B is the reference)");
  line("");
  line("| metric | mean | median | p99 | max | noise floor mean | noise floor max |");
  line("|---|---|---|---|---|---|---|");
  const json& o = r["overall"];
  for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{
           {"max\\|Δlogit\\|", "max_abs"}, {"mean\\|Δlogit\\|", "mean_abs"}, {"RMS Δlogit", "rms"},
           {"cosine", "cosine"}, {"KL(A‖B)", "kl"}, {"top-k overlap", "topk_overlap"},
           {"\\|Δp(next)\\|", "abs_dp_next"}}) {
    const json &s = o["drift"][key], &n = o["noise"][key];
    line(fmt::format("| {} | {} | {} | {} | {} | {} | {} |", label, Fig(s["mean"]), Fig(s["median"]), Fig(s["p99"]),
                     Fig(s["max"]), Fig(n["mean"]), Fig(n["max"])));
  }
  line("");
  line(fmt::format("Top-1 agreement {} (noise floor {}). Perplexity A {}, B {}, ratio {}.", Fig(o["top1_agreement"]),
                   Fig(o["noise_top1_agreement"]), Fig(o["ppl_a"], 6), Fig(o["ppl_b"], 6), Fig(o["ppl_ratio"], 6)));
  line("");
  const json& g = o["generation"];
  line(fmt::format("Greedy generation: {} of {} identical; {} diverge at a near tie, {} otherwise.", Fig(g["exact"]),
                   Fig(g["measured"]), Fig(g["near_tie_divergences"]), Fig(g["other_divergences"])));
  const json& loc = o["localization"];
  if (loc["traced_prompts"].get<int>() > 0) {
    line("");
    line(fmt::format("Localization: residual streams first diverge at **{}** ({} prompt(s) traced).",
                     loc["first_diverging_layer_name"].get<std::string>(), Fig(loc["traced_prompts"])));
  }
  line("");
  line("## Prompts");
  line("");
  line("| id | tokens | max\\|Δ\\| | mean\\|Δ\\| | mean KL | drift/noise | tokenization | drift | generation |");
  line("|---|---|---|---|---|---|---|---|---|");
  for (const auto& p : r["prompts"]) {
    const json& d = p["drift"];
    line(fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |", Cell(p["id"].get<std::string>()),
                     Fig(p["n_tokens"]), d.is_null() ? "n/a" : Fig(d["summary"]["max_abs"]["max"]),
                     d.is_null() ? "n/a" : Fig(d["summary"]["mean_abs"]["mean"]),
                     d.is_null() ? "n/a" : Fig(d["summary"]["kl"]["mean"]), Fig(p["drift_noise_ratio"], 3),
                     p["checks"]["tokenization"]["status"].get<std::string>(),
                     p["checks"]["drift"]["status"].get<std::string>(),
                     p["checks"]["generation"]["status"].get<std::string>()));
  }
  if (r["speed"].is_object()) {
    const json& s = r["speed"];
    line("");
    line("## Speed (median of runs)");
    line("");
    line("| metric | A | B | A/B |");
    line("|---|---|---|---|");
    for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{
             {"prefill tokens/s", "prefill_tokens_per_s"}, {"decode tokens/s", "decode_tokens_per_s"},
             {"time to first token (ms)", "ttft_ms"}}) {
      line(fmt::format("| {} | {} | {} | {} |", label, Fig(s["a"][key]["median"]), Fig(s["b"][key]["median"]),
                       Fig(s["ratio_a_over_b"][key], 3)));
    }
    for (size_t i = 0; i < s["a"]["load"].size() && i < s["b"]["load"].size(); ++i) {
      const json &la = s["a"]["load"][i], &lb = s["b"]["load"][i];
      line(fmt::format("| latency p50/p95/p99 ms @ concurrency {} | {}/{}/{} | {}/{}/{} | {} |", Fig(la["concurrency"]),
                       Fig(la["p50_ms"]), Fig(la["p95_ms"]), Fig(la["p99_ms"]), Fig(lb["p50_ms"]), Fig(lb["p95_ms"]),
                       Fig(lb["p99_ms"]),
                       lb["p50_ms"].get<double>() > 0 ? Fig(la["p50_ms"].get<double>() / lb["p50_ms"].get<double>(), 3)
                                                      : "n/a"));
    }
  }
  if (r.contains("batch_invariance") && r["batch_invariance"].is_object()) {
    const json& bi = r["batch_invariance"];
    line("");
    line("## Batch invariance");
    line("");
    line(fmt::format("Each probe prompt generated alone, then among {} concurrent streams; ids, logits and logprobs "
                     "compared bit for bit ({} greedy tokens, top-{} alternatives).",
                     Fig(bi["settings"]["others"]), Fig(bi["settings"]["max_new_tokens"]), Fig(bi["settings"]["top_n"])));
    line("");
    line("| side | prompt | bit-identical | tokens differ | values differ | max \\|drift\\| | first differing step | "
         "concurrent tokens |");
    line("|---|---|---|---|---|---|---|---|");
    for (const char* side : {"a", "b"}) {
      for (const auto& p : bi[side]["probes"]) {
        const std::string first = p["first_diff_step"].get<int>() < 0 ? "none" : Fig(p["first_diff_step"]);
        line(fmt::format("| {} | {} | {} | {} | {}/{} | {} | {} | {} |", side[0] == 'a' ? "A" : "B",
                         Cell(p["prompt"].get<std::string>()),
                         p["error"].is_null() ? (p["bit_identical"].get<bool>() ? "yes" : "**no**")
                                              : "error: " + Cell(p["error"].get<std::string>()),
                         Fig(p["tokens_differ"]), Fig(p["values_differ"]), Fig(p["values_compared"]),
                         Fig(p["max_abs_drift"]), first, Fig(p["concurrent_tokens"])));
      }
    }
  }
  if (r["baseline"].is_object()) {
    line("");
    line("## Baseline: `" + r["baseline"]["path"].get<std::string>() + "`");
    line("");
    line("| metric | old | new | limit | regression |");
    line("|---|---|---|---|---|");
    for (const auto& c : r["baseline"]["compared"]) {
      line(fmt::format("| {} | {} | {} | {} | {} |", Cell(c["metric"].get<std::string>()), Fig(c["old"]),
                       Fig(c["new"]), Fig(c["limit"]), c["regression"].get<bool>() ? "**yes**" : "no"));
    }
  }
  return out;
}

}  // namespace bitparity
