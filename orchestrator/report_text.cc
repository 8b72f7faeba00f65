#include <algorithm>
#include <vector>

#include "fmt/format.h"
#include "orchestrator/reports.h"

namespace bitparity {
using nlohmann::json;

std::string Fig(const json& v, int precision) {
  if (v.is_null()) return "n/a";
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (!v.is_number()) return v.is_string() ? v.get<std::string>() : v.dump();
  const double x = v.get<double>();
  if (x == 0) return "0";
  return fmt::format("{:.{}g}", x, precision);
}

std::string VerdictWord(const json& v) {
  const int code = v["exit_code"].get<int>();
  return code == 0 ? "PASS" : (code == 1 ? "FAIL" : "ERROR");
}

std::string ResilienceLine(const json& r) {
  const json& res = r["resilience"];
  if (!res.is_object()) return "";
  std::string out;
  bool any = false;
  for (const char* side : {"a", "b"}) {
    const json& s = res[side];
    const int64_t restarts = s["worker_restarts"].is_number_integer() ? s["worker_restarts"].get<int64_t>() : 0;
    any = any || s.value("prompt_retries", 0) > 0 || s.value("server_retries", 0) > 0 || restarts > 0;
    out += fmt::format("{}{}: {} prompt retries, {} server retries, {} worker restarts", out.empty() ? "" : "; ",
                       side[0] == 'a' ? "A" : "B", Fig(s["prompt_retries"]), Fig(s["server_retries"]),
                       Fig(s["worker_restarts"]));
  }
  const json& failed = res["failed_prompts"];
  if (!failed.empty()) {
    any = true;
    std::string ids;
    for (const json& f : failed) ids += (ids.empty() ? "" : ", ") + f["id"].get<std::string>();
    out += fmt::format("; {} prompt(s) missing after retries ({})", failed.size(), ids);
  }
  return any ? "survived: " + out : "";
}

std::string SideLine(const json& r, const char* side) {
  const json& s = r["sides"][side];
  const json& info = s["info"];
  std::string engine = "?";
  if (info.is_object() && info.contains("engine")) {
    const json& e = info["engine"];
    engine = fmt::format("{} {} ({})", e.value("name", "?"), e.value("version", "?"),
                         e.contains("build") ? e["build"].value("simd_path", "?") : "?");
  }
  std::string fault;
  if (info.is_object() && !info.value("fault_injection", "").empty()) {
    fault = " [FAULT INJECTED: " + info["fault_injection"].get<std::string>() + "]";
  }
  return fmt::format("side {}: {} at {}{}{}", side == std::string("a") ? "A" : "B (reference)", engine,
                     s["address"].get<std::string>(), s["tls"].get<bool>() ? " (TLS)" : "", fault);
}

std::vector<std::string> SideLintLines(const json& r, const char* side) {
  std::vector<std::string> out;
  const json& info = r["sides"][side]["info"];
  if (!info.is_object() || !info.contains("model") || !info["model"].contains("lint_findings")) return out;
  for (const json& f : info["model"]["lint_findings"]) {
    out.push_back(fmt::format("{} {}: {} (fix: {})", f.value("severity", "?"), f.value("code", "?"),
                              f.value("message", ""), f.value("fix", "")));
  }
  return out;
}

namespace {

std::string Status(const std::string& s, bool color) {
  std::string up = s;
  for (char& c : up) c = static_cast<char>(std::toupper(c));
  if (!color) return up;
  const char* code = s == "pass" ? "32" : (s == "fail" || s == "error") ? "31" : s == "warn" ? "33" : "36";
  return fmt::format("\033[{}m{}\033[0m", code, up);
}

}  // namespace

std::string RenderText(const json& r, bool color) {
  std::string out;
  auto line = [&](const std::string& s) { out += s + "\n"; };
  const json& model = r["sides"]["a"]["info"]["model"];
  line("bitparity compare");
  line("  " + SideLine(r, "a"));
  line("  " + SideLine(r, "b"));
  for (const char* side : {"a", "b"}) {
    for (const std::string& l : SideLintLines(r, side)) {
      line(fmt::format("  model lint, side {}: {}", side == std::string("a") ? "A" : "B", l));
    }
  }
  if (model.is_object()) {
    line(fmt::format("  model: {} ({}), {} layers, n_embd {}, vocab {}, sha256 {}…", model.value("name", ""),
                     model.value("architecture", ""), Fig(model["n_layer"]), Fig(model["n_embd"]),
                     Fig(model["n_vocab"]), model.value("sha256", "").substr(0, 16)));
  }
  line(fmt::format("  prompts: {} from {} (sha256 {}…); mode {}; noise floor = B {} vs B {}",
                   Fig(r["prompt_set"]["count"]), r["prompt_set"]["source"].get<std::string>(),
                   r["prompt_set"]["sha256"].get<std::string>().substr(0, 12),
                   r["settings"]["mode"].get<std::string>(), r["settings"]["noise_mode"].get<std::string>(),
                   r["settings"]["mode"].get<std::string>()));
  for (const auto& m : r["model_check"]["messages"]) line("  ! " + m.get<std::string>());
  for (const auto& w : r["warnings"]) line("  ! " + w.get<std::string>());
  if (const std::string res = ResilienceLine(r); !res.empty()) line("  ! " + res);
  line("");

  const json& o = r["overall"];
  line(fmt::format("{:<26} {:>10} {:>10} {:>10} {:>10}   {:>10} {:>10}   {:>8}", "drift A vs B (per position)",
                   "mean", "median", "p99", "max", "noise mean", "noise max", "mean/nf"));
  struct Row {
    const char* label;
    const char* key;
  };
  for (const Row& row : {Row{"max|Δlogit|", "max_abs"}, Row{"mean|Δlogit|", "mean_abs"}, Row{"RMS Δlogit", "rms"},
                         Row{"cosine", "cosine"}, Row{"KL(A‖B)", "kl"}, Row{"top-k overlap", "topk_overlap"},
                         Row{"|Δp(next token)|", "abs_dp_next"}}) {
    const json& s = o["drift"][row.key];
    const json& n = o["noise"][row.key];
    json ratio = nullptr;
    const bool is_difference = std::string(row.key) != "cosine" && std::string(row.key) != "topk_overlap";
    if (is_difference && s["mean"].is_number() && n["mean"].is_number() && n["mean"].get<double>() > 0) {
      ratio = s["mean"].get<double>() / n["mean"].get<double>();
    }
    // Column widths count bytes; pad the label by its display width.
    std::string label = row.label;
    int width = 0;
    for (unsigned char c : label) width += (c & 0xC0) != 0x80;
    line(fmt::format("{}{} {:>10} {:>10} {:>10} {:>10}   {:>10} {:>10}   {:>8}", label,
                     std::string(std::max(0, 26 - width), ' '), Fig(s["mean"]), Fig(s["median"]), Fig(s["p99"]),
                     Fig(s["max"]), Fig(n["mean"]), Fig(n["max"]), Fig(ratio, 3)));
  }
  line(fmt::format("top-1 agreement {} (noise floor {}); perplexity A {} B {} (A/B {})", Fig(o["top1_agreement"]),
                   Fig(o["noise_top1_agreement"]), Fig(o["ppl_a"], 6), Fig(o["ppl_b"], 6), Fig(o["ppl_ratio"], 6)));
  const json& g = o["generation"];
  line(fmt::format("greedy generation: {} of {} identical, {} diverge at a near tie, {} otherwise; mean common prefix {}",
                   Fig(g["exact"]), Fig(g["measured"]), Fig(g["near_tie_divergences"]), Fig(g["other_divergences"]),
                   Fig(g["mean_common_prefix"], 3)));
  const json& loc = o["localization"];
  if (loc["traced_prompts"].get<int>() > 0) {
    line(fmt::format("localization: {} prompt(s) traced; residual streams first diverge at {} (votes {})",
                     Fig(loc["traced_prompts"]), loc["first_diverging_layer_name"].get<std::string>(),
                     loc["votes"].dump()));
  }
  line("");

  // The prompts that drift most.
  std::vector<const json*> ps;
  for (const auto& p : r["prompts"]) ps.push_back(&p);
  std::stable_sort(ps.begin(), ps.end(), [](const json* x, const json* y) {
    auto v = [](const json* p) { return (*p)["drift_noise_ratio"].is_number() ? (*p)["drift_noise_ratio"].get<double>() : -1; };
    auto m = [](const json* p) {
      const json& d = (*p)["drift"];
      return d.is_null() || !d["summary"]["max_abs"]["max"].is_number() ? -1.0 : d["summary"]["max_abs"]["max"].get<double>();
    };
    return v(x) != v(y) ? v(x) > v(y) : m(x) > m(y);
  });
  line(fmt::format("{:<22} {:>6} {:>10} {:>10} {:>10} {:>8}  {:<6} {:<6} {:<6}", "worst prompts", "tokens",
                   "max|Δ|", "mean|Δ|", "mean KL", "mean/nf", "tok", "drift", "gen"));
  for (size_t i = 0; i < ps.size() && i < 8; ++i) {
    const json& p = *ps[i];
    const json& d = p["drift"];
    auto st = [&](const char* c) { return Status(p["checks"][c]["status"].get<std::string>(), color); };
    // Pad by visible width: the colored status has escape codes.
    auto pad = [&](const std::string& s, const std::string& raw) { return s + std::string(std::max<int>(0, 6 - raw.size()), ' '); };
    line(fmt::format("{:<22} {:>6} {:>10} {:>10} {:>10} {:>8}  {} {} {}", p["id"].get<std::string>().substr(0, 22),
                     Fig(p["n_tokens"]), d.is_null() ? "n/a" : Fig(d["summary"]["max_abs"]["max"]),
                     d.is_null() ? "n/a" : Fig(d["summary"]["mean_abs"]["mean"]),
                     d.is_null() ? "n/a" : Fig(d["summary"]["kl"]["mean"]), Fig(p["drift_noise_ratio"], 3),
                     pad(st("tokenization"), p["checks"]["tokenization"]["status"].get<std::string>()),
                     pad(st("drift"), p["checks"]["drift"]["status"].get<std::string>()),
                     pad(st("generation"), p["checks"]["generation"]["status"].get<std::string>())));
  }
  line("");

  if (r["speed"].is_object()) {
    const json& s = r["speed"];
    line(fmt::format("{:<30} {:>12} {:>12} {:>8}", "speed (median of runs)", "A", "B", "A/B"));
    for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{
             {"prefill tokens/s", "prefill_tokens_per_s"}, {"decode tokens/s", "decode_tokens_per_s"},
             {"time to first token (ms)", "ttft_ms"}}) {
      line(fmt::format("{:<30} {:>12} {:>12} {:>8}", label, Fig(s["a"][key]["median"]), Fig(s["b"][key]["median"]),
                       Fig(s["ratio_a_over_b"][key], 3)));
    }
    for (size_t i = 0; i < s["a"]["load"].size() && i < s["b"]["load"].size(); ++i) {
      const json &la = s["a"]["load"][i], &lb = s["b"]["load"][i];
      line(fmt::format("latency @ concurrency {:<2} p50/p95/p99 ms  A {}/{}/{}  B {}/{}/{}", Fig(la["concurrency"]),
                       Fig(la["p50_ms"]), Fig(la["p95_ms"]), Fig(la["p99_ms"]), Fig(lb["p50_ms"]), Fig(lb["p95_ms"]),
                       Fig(lb["p99_ms"])));
    }
    line("");
  }

  if (r.contains("batch_invariance") && r["batch_invariance"].is_object()) {
    const json& bi = r["batch_invariance"];
    line(fmt::format("batch invariance: {} probe prompt(s) of {} tokens, alone vs among {} concurrent streams",
                     Fig(bi["settings"]["prompts"]), Fig(bi["settings"]["max_new_tokens"]),
                     Fig(bi["settings"]["others"])));
    line(fmt::format("{:<6} {:>13} {:>13} {:>15} {:>12} {:>10} {:>11}", "side", "bit-identical", "tokens differ",
                     "values differ", "max |drift|", "first step", "concurrent"));
    for (const char* side : {"a", "b"}) {
      const json& s = bi[side];
      int first = -1;
      for (const auto& p : s["probes"]) {
        const int f = p["first_diff_step"].get<int>();
        if (f >= 0 && (first < 0 || f < first)) first = f;
      }
      int64_t concurrent = 0;
      for (const auto& p : s["probes"]) concurrent += p["concurrent_tokens"].get<int64_t>();
      line(fmt::format("{:<6} {:>13} {:>13} {:>15} {:>12} {:>10} {:>11}", side[0] == 'a' ? "A" : "B",
                       s["bit_identical"].get<bool>() ? "yes" : "NO", Fig(s["tokens_differ"]),
                       Fig(s["values_differ"]) + "/" + Fig(s["values_compared"]), Fig(s["max_abs_drift"]),
                       first < 0 ? std::string("none") : std::to_string(first), concurrent));
    }
    line("");
  }

  line(fmt::format("{:<18} {:<7} {}", "check", "status", "summary"));
  for (const auto& c : r["checks"]) {
    const std::string st = c["status"].get<std::string>();
    line(fmt::format("{:<18} {}{} {}", c["name"].get<std::string>(), Status(st, color),
                     std::string(std::max<int>(0, 7 - static_cast<int>(st.size())), ' '), c["summary"].get<std::string>()));
  }
  line("");
  const json& v = r["verdict"];
  const std::string word = VerdictWord(v);
  const std::string status = word == "PASS"   ? Status("pass", color) + " agree"
                             : word == "FAIL" ? Status("fail", color) + " disagree"
                                              : Status("error", color) + " incomplete";
  line(fmt::format("VERDICT: {} (exit {}) — {}", status, Fig(v["exit_code"]), v["summary"].get<std::string>()));
  return out;
}

}  // namespace bitparity
