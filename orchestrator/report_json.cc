#include "orchestrator/report_json.h"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "orchestrator/host_info.h"
#include "orchestrator/verdict.h"

namespace bitparity {
namespace v1 = ::bitnet::v1;
using nlohmann::json;

namespace {

// JSON has no NaN or infinity: an undefined figure is null.
json Num(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

json SummaryJson(const std::vector<double>& x) {
  const Summary s = Summarize(x);
  return {{"n", s.n}, {"mean", Num(s.mean)}, {"median", Num(s.median)}, {"p99", Num(s.p99)}, {"max", Num(s.max)},
          {"min", Num(s.min)}};
}

std::vector<double> Abs(std::vector<double> v) {
  for (double& x : v) x = std::fabs(x);
  return v;
}

json SeriesSummary(const DriftSeries& s) {
  return {{"max_abs", SummaryJson(s.max_abs)}, {"mean_abs", SummaryJson(s.mean_abs)}, {"rms", SummaryJson(s.rms)},
          {"cosine", SummaryJson(s.cosine)},   {"kl", SummaryJson(s.kl)},
          {"topk_overlap", SummaryJson(s.topk_overlap)}, {"abs_dp_next", SummaryJson(Abs(s.dp_next))}};
}

double RateOrNan(const std::vector<int>& v) {
  if (v.empty()) return NAN;
  double n = 0;
  for (int x : v) n += x;
  return n / v.size();
}

double MeanOrNan(const std::vector<double>& v) {
  if (v.empty()) return NAN;
  double s = 0;
  for (double x : v) s += x;
  return s / v.size();
}
double MaxOrZero(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, x);
  return m;
}

json Ratio(double x, double y) {
  if (y > 0) return Num(x / y);
  return x == 0 ? json(0.0) : json(nullptr);
}

json RatiosToNoise(const DriftSeries& ab, const DriftSeries& n) {
  return {{"max_abs", Ratio(MaxOrZero(ab.max_abs), MaxOrZero(n.max_abs))},
          {"mean_abs", Ratio(MeanOrNan(ab.mean_abs), MeanOrNan(n.mean_abs))},
          {"kl", Ratio(MeanOrNan(ab.kl), MeanOrNan(n.kl))}};
}

json CheckJson(const CheckResult& c) { return {{"status", CheckStatusName(c.status)}, {"reasons", c.reasons}}; }

json PromptJson(const PromptResult& p) {
  json j;
  j["id"] = p.prompt.id;
  j["category"] = p.prompt.category;
  j["kind"] = p.prompt.is_text() ? "text" : p.prompt.is_chat() ? "chat" : "ids";
  if (p.prompt.is_text() || p.prompt.is_chat()) {
    // A chat shows its last message (the one the model answers).
    const std::string& t = p.prompt.is_text() ? *p.prompt.text : p.prompt.chat.back().content;
    // Keep reports small; cut on a UTF-8 boundary.
    size_t cut = std::min<size_t>(t.size(), 160);
    while (cut < t.size() && (static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) --cut;
    j["text_preview"] = t.substr(0, cut) + (cut < t.size() ? "…" : "");
  } else {
    j["text_preview"] = absl::StrCat("[", p.prompt.ids.size(), " ids]");
  }
  j["n_tokens"] = p.ids.size();
  j["truncated_from"] = p.truncated_from >= 0 ? json(p.truncated_from) : json(nullptr);
  j["error"] = p.error_code.empty() ? json(nullptr) : json({{"code", p.error_code}, {"message", p.error_message}});
  j["attempts"] = p.attempts;
  j["retry_reasons"] = p.retry_reasons;
  const TokenizationResult& t = p.tokenization;
  j["tokenization"] = {{"checked", t.checked}, {"agree", t.agree}, {"n_a", t.n_a}, {"n_b", t.n_b},
                       {"first_diff", t.first_diff}, {"id_a", t.id_a}, {"id_b", t.id_b}};
  const DriftResult& d = p.drift;
  if (d.measured) {
    json dj;
    dj["positions"] = {{"position", d.ab.position}, {"token", d.ab.token},   {"max_abs", d.ab.max_abs},
                       {"mean_abs", d.ab.mean_abs}, {"rms", d.ab.rms},       {"cosine", d.ab.cosine},
                       {"kl", d.ab.kl},             {"top1_agree", d.ab.top1_agree},
                       {"topk_overlap", d.ab.topk_overlap}, {"dp_next", d.ab.dp_next}};
    // Every column of the noise series too: `bitparity merge` recomputes the overall
    // noise summary from the per-prompt series alone.
    dj["noise_positions"] = {{"max_abs", d.noise.max_abs}, {"mean_abs", d.noise.mean_abs}, {"kl", d.noise.kl},
                             {"rms", d.noise.rms},         {"cosine", d.noise.cosine},
                             {"top1_agree", d.noise.top1_agree}, {"topk_overlap", d.noise.topk_overlap},
                             {"dp_next", d.noise.dp_next}};
    dj["summary"] = SeriesSummary(d.ab);
    dj["noise_summary"] = SeriesSummary(d.noise);
    dj["top1_agreement"] = Num(RateOrNan(d.ab.top1_agree));
    dj["noise_top1_agreement"] = Num(RateOrNan(d.noise.top1_agree));
    dj["ratio_to_noise"] = RatiosToNoise(d.ab, d.noise);
    dj["n_predicted"] = d.n_predicted;
    dj["nll_a"] = d.nll_a;
    dj["nll_b"] = d.nll_b;
    const double ppl_a = Perplexity(d.nll_a, d.n_predicted), ppl_b = Perplexity(d.nll_b, d.n_predicted);
    dj["ppl_a"] = Num(ppl_a);
    dj["ppl_b"] = Num(ppl_b);
    dj["ppl_ratio"] = Num(ppl_a / ppl_b);
    dj["ppl_noise"] = Num(Perplexity(d.nll_noise, d.n_predicted));
    dj["eval_ms_a"] = d.eval_ms_a;
    dj["eval_ms_b"] = d.eval_ms_b;
    j["drift"] = dj;
  } else {
    j["drift"] = nullptr;
  }
  const GenerationComparison& g = p.generation;
  if (g.measured) {
    json gj = {{"ids_a", g.ids_a}, {"ids_b", g.ids_b}, {"text_a", g.text_a}, {"text_b", g.text_b},
               {"finish_a", g.finish_a}, {"finish_b", g.finish_b}, {"exact_match", g.exact_match},
               {"common_prefix", g.common_prefix}};
    if (g.divergence) {
      const NearTie& n = *g.divergence;
      gj["divergence"] = {{"index", n.index},           {"token_a", n.token_a},       {"token_b", n.token_b},
                          {"b_in_a_top", n.b_in_a_top}, {"a_in_b_top", n.a_in_b_top}, {"gap_a", n.gap_a},
                          {"gap_b", n.gap_b},           {"near_tie", n.near_tie}};
    } else {
      gj["divergence"] = nullptr;
    }
    j["generation"] = gj;
  } else {
    j["generation"] = nullptr;
  }
  if (p.localization) {
    const Localization& l = *p.localization;
    json lj;
    lj["positions"] = l.positions;
    lj["n_layer"] = l.n_layer;
    lj["layers"] = json::array();
    for (const LayerDiff& d : l.layers) {
      lj["layers"].push_back({{"layer", d.layer}, {"name", LayerName(d.layer, l.n_layer)},
                              {"rel_diff", d.rel_diff}, {"rel_diff_max", d.rel_diff_max},
                              {"noise_rel_diff", d.noise_rel_diff}, {"cosine", d.cosine}, {"diverged", d.diverged},
                              {"growth", d.growth}});
    }
    lj["first_exceeding_layer"] = l.first_exceeding_layer;
    lj["first_diverging_layer"] = l.first_diverging_layer;
    lj["first_diverging_layer_name"] = LayerName(l.first_diverging_layer, l.n_layer);
    j["localization"] = lj;
  } else {
    j["localization"] = nullptr;
  }
  j["checks"] = {{"tokenization", CheckJson(p.tokenization_check)},
                 {"drift", CheckJson(p.drift_check)},
                 {"generation", CheckJson(p.generation_check)}};
  j["drift_noise_ratio"] = Num(p.drift_noise_ratio);
  j["wall_ms"] = p.wall_ms;
  return j;
}

// A column of a per-prompt series; null (a NaN when written) reads back as NaN.
template <typename T>
void AppendColumn(std::vector<T>* dst, const json& cols, const char* name) {
  if (!cols.contains(name)) return;
  for (const json& v : cols[name]) {
    if constexpr (std::is_same_v<T, double>) {
      dst->push_back(v.is_number() ? v.get<double>() : NAN);
    } else {
      dst->push_back(v.get<T>());
    }
  }
}

void AppendSeries(DriftSeries* dst, const json& cols) {
  AppendColumn(&dst->position, cols, "position");
  AppendColumn(&dst->token, cols, "token");
  AppendColumn(&dst->max_abs, cols, "max_abs");
  AppendColumn(&dst->mean_abs, cols, "mean_abs");
  AppendColumn(&dst->rms, cols, "rms");
  AppendColumn(&dst->cosine, cols, "cosine");
  AppendColumn(&dst->kl, cols, "kl");
  AppendColumn(&dst->topk_overlap, cols, "topk_overlap");
  AppendColumn(&dst->dp_next, cols, "dp_next");
  AppendColumn(&dst->top1_agree, cols, "top1_agree");
}

}  // namespace

const char* CheckStatusName(CheckStatus s) {
  switch (s) {
    case CheckStatus::kPass: return "pass";
    case CheckStatus::kFail: return "fail";
    case CheckStatus::kSkip: return "skip";
    case CheckStatus::kError: return "error";
    case CheckStatus::kWarn: return "warn";
    case CheckStatus::kInfo: return "info";
  }
  return "error";  // not reached: the switch covers every status
}

std::optional<CheckStatus> ParseCheckStatus(std::string_view name) {
  for (CheckStatus s : {CheckStatus::kPass, CheckStatus::kFail, CheckStatus::kSkip, CheckStatus::kError,
                        CheckStatus::kWarn, CheckStatus::kInfo}) {
    if (name == CheckStatusName(s)) return s;
  }
  return std::nullopt;
}

std::optional<CheckStatus> ReadCheckStatus(const json& status) {
  if (!status.is_string()) return std::nullopt;
  return ParseCheckStatus(status.get_ref<const std::string&>());
}

json OverallFromPrompts(const json& prompts, int n_layer) {
  DriftSeries all, noise;
  double nll_a = 0, nll_b = 0;
  int n_pred = 0, errors = 0, tok_checked = 0, tok_agree = 0, gen = 0, exact = 0, near = 0, other = 0;
  double prefix_sum = 0;
  std::map<int, int> votes;
  int traced = 0;
  for (const json& p : prompts) {
    if (!p["error"].is_null()) errors++;
    const json& t = p["tokenization"];
    if (t["checked"].get<bool>()) {
      tok_checked++;
      tok_agree += t["agree"].get<bool>();
    }
    const json& d = p["drift"];
    if (d.is_object()) {
      AppendSeries(&all, d["positions"]);
      AppendSeries(&noise, d["noise_positions"]);
      nll_a += d["nll_a"].get<double>();
      nll_b += d["nll_b"].get<double>();
      n_pred += d["n_predicted"].get<int>();
    }
    const json& g = p["generation"];
    if (g.is_object()) {
      gen++;
      prefix_sum += g["common_prefix"].get<int>();
      if (g["exact_match"].get<bool>()) exact++;
      else if (g["divergence"].is_object() && g["divergence"]["near_tie"].get<bool>()) near++;
      else other++;
    }
    if (p["localization"].is_object()) {
      traced++;
      votes[p["localization"]["first_diverging_layer"].get<int>()]++;
    }
  }
  json o;
  o["prompts"] = prompts.size();
  o["prompts_with_errors"] = errors;
  o["positions"] = all.size();
  o["drift"] = SeriesSummary(all);
  o["noise"] = SeriesSummary(noise);
  o["top1_agreement"] = Num(RateOrNan(all.top1_agree));
  o["noise_top1_agreement"] = Num(RateOrNan(noise.top1_agree));
  o["ratio_to_noise"] = RatiosToNoise(all, noise);
  o["n_predicted"] = n_pred;
  o["nll_a"] = nll_a;
  o["nll_b"] = nll_b;
  const double ppl_a = Perplexity(nll_a, n_pred), ppl_b = Perplexity(nll_b, n_pred);
  o["ppl_a"] = Num(ppl_a);
  o["ppl_b"] = Num(ppl_b);
  o["ppl_ratio"] = Num(ppl_a / ppl_b);
  o["tokenization"] = {{"checked", tok_checked}, {"agree", tok_agree}};
  o["generation"] = {{"measured", gen},
                     {"exact", exact},
                     {"near_tie_divergences", near},
                     {"other_divergences", other},
                     {"mean_common_prefix", gen > 0 ? json(prefix_sum / gen) : json(nullptr)}};
  // The layer most traced prompts point at (ties: the earlier layer) is where the
  // divergence starts.
  int best = -1, best_votes = 0;
  json vj = json::object();
  for (const auto& [layer, n] : votes) {
    vj[LayerName(layer, n_layer)] = n;
    if (layer >= 0 && n > best_votes) {
      best = layer;
      best_votes = n;
    }
  }
  o["localization"] = {{"traced_prompts", traced},
                       {"first_diverging_layer", best},
                       {"first_diverging_layer_name", LayerName(best, n_layer)},
                       {"votes", vj}};
  return o;
}


json ProtoToJson(const google::protobuf::Message& m) {
  std::string s;
  google::protobuf::util::JsonPrintOptions opt;
  opt.preserve_proto_field_names = true;
  opt.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(m, &s, opt).ok()) return nullptr;
  return json::parse(s, nullptr, false);
}

namespace {

// The per-prompt checks of a report, counted, with the first failure of each.
struct PromptCheckCounts {
  int tok_fail = 0, drift_fail = 0, drift_n = 0, gen_fail = 0, gen_n = 0, errors = 0, near = 0;
  std::string first_tok, first_drift, first_gen, first_err;
};

PromptCheckCounts CountPromptChecks(const json& prompts) {
  PromptCheckCounts n;
  for (const auto& p : prompts) {
    const auto& c = p["checks"];
    auto first_reason = [&](const char* check) {
      return p["id"].get<std::string>() + ": " + c[check]["reasons"][0].get<std::string>();
    };
    const std::optional<CheckStatus> tok = ReadCheckStatus(c["tokenization"]["status"]);
    const std::optional<CheckStatus> drift = ReadCheckStatus(c["drift"]["status"]);
    const std::optional<CheckStatus> gen = ReadCheckStatus(c["generation"]["status"]);
    if (tok == CheckStatus::kFail && n.tok_fail++ == 0) n.first_tok = first_reason("tokenization");
    if (drift == CheckStatus::kPass || drift == CheckStatus::kFail) n.drift_n++;
    if (drift == CheckStatus::kFail && n.drift_fail++ == 0) n.first_drift = first_reason("drift");
    if (gen == CheckStatus::kPass || gen == CheckStatus::kFail) n.gen_n++;
    if (gen == CheckStatus::kFail && n.gen_fail++ == 0) n.first_gen = first_reason("generation");
    // A generation that passes with a reason diverged at a near tie.
    if (gen == CheckStatus::kPass && !c["generation"]["reasons"].empty()) n.near++;
    if (!p["error"].is_null() && n.errors++ == 0) {
      n.first_err = p["id"].get<std::string>() + ": " + p["error"]["message"].get<std::string>();
    }
  }
  return n;
}

json CheckSummary(const char* name, CheckStatus status, const std::string& summary) {
  return {{"name", name}, {"status", CheckStatusName(status)}, {"summary", summary}};
}

// pass when none failed, skip when none was measured.
CheckStatus CountedStatus(int failed, int measured) {
  return measured == 0 ? CheckStatus::kSkip : (failed > 0 ? CheckStatus::kFail : CheckStatus::kPass);
}

// One side's batch-invariance check: a side that is not bit-identical among
// concurrent streams is a named finding (warn), a failure only when required.
json BatchInvarianceCheck(const json& bi, const char* side, bool required) {
  const json& s = bi[side];
  const std::string name = absl::StrCat("batch_invariance_", side);
  const std::string label = side[0] == 'a' ? "side A" : "side B";
  const int k = bi["settings"]["others"].get<int>();
  const size_t n = s["probes"].size();
  int64_t concurrent = 0;
  int differing = 0;
  std::string first;  // the first differing probe
  for (const json& p : s["probes"]) {
    concurrent += p["concurrent_tokens"].get<int64_t>();
    if (p["error"].is_null() && !p["bit_identical"].get<bool>() && differing++ == 0) {
      first = absl::StrCat(p["prompt"].get<std::string>(), ", first at step ", p["first_diff_step"].get<int>());
    }
  }
  if (s["errors"].get<int>() > 0) {
    std::string msg;
    for (const json& p : s["probes"]) {
      if (!p["error"].is_null()) {
        msg = p["error"].get<std::string>();
        break;
      }
    }
    return CheckSummary(name.c_str(), CheckStatus::kError,
                        absl::StrCat(label, ": ", s["errors"].get<int>(), " of ", n, " probe(s) failed: ", msg));
  }
  if (!s["bit_identical"].get<bool>()) {
    return CheckSummary(
        name.c_str(), required ? CheckStatus::kFail : CheckStatus::kWarn,
        absl::StrCat(label, " is not batch-invariant: ", differing, " of ", n, " probe(s) differ among ", k,
                     " concurrent streams; ", s["tokens_differ"].get<int64_t>(), " token(s) and ",
                     s["values_differ"].get<int64_t>(), " of ", s["values_compared"].get<int64_t>(),
                     " logit/logprob value(s) differ, max |drift| ", s["max_abs_drift"].dump(), " (", first, ")"));
  }
  if (!s["exercised"].get<bool>()) {
    return CheckSummary(
        name.c_str(), required ? CheckStatus::kFail : CheckStatus::kInfo,
        absl::StrCat(label, ": not exercised: on some probe no other stream's token arrived while it decoded (",
                     concurrent, " concurrent tokens in all; the server ran the streams one after another?); "
                     "identical as far as that shows"));
  }
  return CheckSummary(name.c_str(), CheckStatus::kPass,
                      absl::StrCat(label, " bit-identical alone and among ", k, " concurrent streams (", n,
                                   " probe(s), ", s["values_compared"].get<int64_t>(), " values, ", concurrent,
                                   " concurrent tokens)"));
}

}  // namespace

json SummarizeChecks(const json& r, const Thresholds& t) {
  json checks = json::array();
  const auto& mc = r["model_check"];
  checks.push_back({{"name", "model"}, {"status", mc["status"]},
                    {"summary", mc["messages"].empty() ? "same model file and shape"
                                                         : mc["messages"][0].get<std::string>()}});
  const PromptCheckCounts n = CountPromptChecks(r["prompts"]);
  checks.push_back(CheckSummary(
      "tokenization", n.tok_fail > t.max_tokenization_mismatches ? CheckStatus::kFail : CheckStatus::kPass,
      n.tok_fail == 0 ? "all text prompts tokenize identically"
                      : absl::StrCat(n.tok_fail, " prompt(s) tokenize differently; first: ", n.first_tok)));
  checks.push_back(CheckSummary(
      "drift", CountedStatus(n.drift_fail, n.drift_n),
      n.drift_fail == 0 ? absl::StrCat(n.drift_n, " prompt(s) within the noise-floor thresholds")
                        : absl::StrCat(n.drift_fail, " of ", n.drift_n,
                                       " prompt(s) drift beyond the thresholds; first: ", n.first_drift)));
  checks.push_back(CheckSummary(
      "generation", CountedStatus(n.gen_fail, n.gen_n),
      n.gen_fail == 0 ? absl::StrCat(n.gen_n, " greedy generation(s) agree (", n.near, " diverge at a near tie)")
                      : absl::StrCat(n.gen_fail, " of ", n.gen_n, " generation(s) diverge; first: ", n.first_gen)));
  // A prompt missing from the comparison (still failing after its retries)
  // leaves the run incomplete: an error, never a pass or a disagreement.
  checks.push_back(CheckSummary(
      "errors", n.errors > 0 ? CheckStatus::kError : CheckStatus::kPass,
      n.errors == 0 ? absl::StrCat("all ", r["prompts"].size(), " prompts completed on both sides")
                    : absl::StrCat(n.errors, " of ", r["prompts"].size(),
                                   " prompt(s) missing after retries; first: ", n.first_err)));
  const auto& loc = r["overall"]["localization"];
  if (loc["traced_prompts"].get<int>() > 0) {
    checks.push_back(CheckSummary("localization", CheckStatus::kInfo,
                                  loc["first_diverging_layer"].get<int>() >= 0
                                      ? "residual streams first diverge at " +
                                            loc["first_diverging_layer_name"].get<std::string>()
                                      : std::string("no layer's residuals diverge beyond the noise")));
  }
  if (r["speed"].is_object() && t.min_decode_speed_ratio > 0) {
    const json& ratio = r["speed"]["ratio_a_over_b"]["decode_tokens_per_s"];
    const bool ok = ratio.is_number() && ratio.get<double>() >= t.min_decode_speed_ratio;
    checks.push_back(CheckSummary("speed", ok ? CheckStatus::kPass : CheckStatus::kFail,
                                  absl::StrCat("decode tokens/s A/B ", ratio.is_number() ? ratio.dump() : "n/a",
                                               " (minimum ", t.min_decode_speed_ratio, ")")));
  }
  if (r.contains("batch_invariance") && r["batch_invariance"].is_object()) {
    for (const char* side : {"a", "b"}) {
      checks.push_back(BatchInvarianceCheck(r["batch_invariance"], side, t.require_batch_invariance != 0));
    }
  }
  if (!r["speed_error"].is_null()) {
    checks.push_back(
        {{"name", "speed"}, {"status", CheckStatusName(CheckStatus::kError)}, {"summary", r["speed_error"]}});
  }
  return checks;
}

namespace {

json SideResilienceJson(const SideResilience& s) {
  return {{"prompt_retries", s.prompt_retries},
          {"server_retries", s.server_retries},
          {"worker_restarts", s.worker_restarts.has_value() ? json(*s.worker_restarts) : json(nullptr)}};
}

json ResilienceJson(const CompareRun& run) {
  json failed = json::array();
  for (const PromptResult& p : run.prompts) {
    if (p.error_code.empty()) continue;
    failed.push_back({{"id", p.prompt.id}, {"code", p.error_code}, {"message", p.error_message},
                      {"attempts", p.attempts}});
  }
  return {{"a", SideResilienceJson(run.resilience_a)},
          {"b", SideResilienceJson(run.resilience_b)},
          {"failed_prompts", failed}};
}

}  // namespace

json BuildReport(const CompareRun& run, const std::string& command_line) {
  json r;
  r["schema"] = kReportSchema;
  r["schema_version"] = kReportSchemaVersion;
  r["tool"] = {{"name", "bitparity"}, {"version", BITPARITY_VERSION}};
  r["created_utc"] = run.started_utc;
  r["command"] = command_line;
  r["host"] = HostInfo();
  r["reference_side"] = "b";
  r["conventions"] =
      "B is the reference: KL(P_A||P_B) with P from side A, deltas A-B, ratios A/B; the noise floor is B's own "
      "difference between its two evaluation modes on the same prompt";
  auto side = [](const Endpoint& e, const v1::GetModelInfoResponse& info) {
    return json{{"label", e.label},
                {"address", e.address},
                {"tls", e.tls || !e.ca_file.empty() || !e.cert_file.empty()},
                {"info", ProtoToJson(info)}};
  };
  r["sides"] = {{"a", side(run.a, run.info_a)}, {"b", side(run.b, run.info_b)}};
  r["model_check"] = {{"status", CheckStatusName(run.model_check.status)}, {"messages", run.model_check.messages}};
  r["prompt_set"] = {{"source", run.prompt_source}, {"sha256", run.prompt_sha256}, {"count", run.prompts.size()}};
  const CompareOptions& o = run.options;
  const bool batch = o.mode != v1::EVAL_MODE_SEQUENTIAL;
  r["settings"] = {{"mode", batch ? "batch" : "sequential"},
                   {"noise_mode", batch ? "sequential" : "batch"},
                   {"jobs", o.jobs},
                   {"top_k", o.top_k},
                   {"max_new_tokens", o.max_new_tokens},
                   {"sampling", "greedy (temperature 0)"},
                   {"seed", 0},
                   {"ignore_eos", o.ignore_eos},
                   {"localize", o.localize},
                   {"trace_prompts", o.trace_prompts},
                   {"trace_positions", o.trace_positions},
                   {"speed", o.speed},
                   {"speed_runs", o.speed_options.runs},
                   {"speed_warmup", o.speed_options.warmup},
                   {"speed_max_new_tokens", o.speed_options.max_new_tokens},
                   {"speed_concurrency", o.speed_options.concurrency},
                   {"speed_requests", o.speed_options.requests}};
  r["thresholds"] = o.thresholds.ToJson();
  r["prompts"] = json::array();
  for (const PromptResult& p : run.prompts) r["prompts"].push_back(PromptJson(p));
  r["overall"] = OverallFromPrompts(r["prompts"], run.info_a.model().n_layer());
  if (run.speed_a && run.speed_b) {
    r["speed"] = {{"a", SideSpeedToJson(*run.speed_a)},
                  {"b", SideSpeedToJson(*run.speed_b)},
                  {"ratio_a_over_b", SpeedRatios(*run.speed_a, *run.speed_b)}};
  } else {
    r["speed"] = nullptr;
  }
  r["speed_error"] = run.speed_error.empty() ? json(nullptr) : json(run.speed_error);
  r["batch_invariance"] = nullptr;
  if (run.invariance_a && run.invariance_b) {
    const BatchInvarianceOptions& bo = o.batch_invariance;
    r["batch_invariance"] = {{"settings",
                              {{"others", bo.others},
                               {"prompts", bo.prompts},
                               {"max_new_tokens", bo.max_new_tokens},
                               {"top_n", bo.top_n},
                               {"other_stream_tokens", OtherStreamTokens(bo)},
                               {"require", o.thresholds.require_batch_invariance != 0}}},
                             {"a", SideInvarianceToJson(*run.invariance_a)},
                             {"b", SideInvarianceToJson(*run.invariance_b)}};
  }
  r["resilience"] = ResilienceJson(run);
  r["warnings"] = run.warnings;
  r["connection_lost"] = run.connection_lost;
  r["wall_s"] = run.wall_s;
  r["baseline"] = nullptr;
  r["checks"] = SummarizeChecks(r, o.thresholds);
  return r;
}

absl::Status WriteTextFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write '", path, "'"));
  out << content;
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat("writing '", path, "' failed"));
  return absl::OkStatus();
}

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat("'", path, "' is not valid JSON"));
  return j;
}

absl::Status CheckReportVersion(const json& j, const std::string& source) {
  if (!j.is_object() || j.value("schema", "") != kReportSchema) {
    return absl::InvalidArgumentError(absl::StrCat("'", source, "' is not a bitparity report (no \"schema\": \"",
                                                   kReportSchema, "\")"));
  }
  if (!j.contains("schema_version") || !j["schema_version"].is_number_integer() ||
      j["schema_version"].get<int>() != kReportSchemaVersion) {
    return absl::InvalidArgumentError(absl::StrCat("'", source, "' has schema_version ",
                                                   j.contains("schema_version") ? j["schema_version"].dump() : "none",
                                                   "; this bitparity reads version ", kReportSchemaVersion));
  }
  return absl::OkStatus();
}

}  // namespace bitparity
