// The HTML report: one self-contained file. Inline CSS and server-side SVG charts;
// no scripts, fonts, images or links that would make a network request.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "fmt/format.h"
#include "orchestrator/reports.h"
#include "orchestrator/throughput_chart.h"

namespace bitparity {
using nlohmann::json;

namespace {

std::string Esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string Color(size_t i, size_t n) {
  return fmt::format("hsl({},70%,42%)", static_cast<int>(360.0 * i / std::max<size_t>(1, n)));
}

std::vector<double> Doubles(const json& a) {
  std::vector<double> v;
  if (!a.is_array()) return v;
  for (const auto& x : a) v.push_back(x.is_number() ? x.get<double>() : NAN);
  return v;
}

struct Series {
  explicit Series(std::string n = "", std::string c = "") : name(std::move(n)), color(std::move(c)) {}
  std::string name, color;
  std::vector<double> x, y;
  bool dashed = false;
  double width = 1.5;
  double opacity = 0.9;
};

// A line chart; log_y plots log10(max(y, floor)).
std::string LineChart(const std::string& title, const std::vector<Series>& series, const std::string& xlabel,
                      const std::string& ylabel, bool log_y, int w = 920, int h = 300, bool legend = true,
                      double marker_x = NAN, const std::string& marker_label = "") {
  const double L = 70, R = 20, T = 28, B = 40;
  const double pw = w - L - R, ph = h - T - B;
  double xmin = 1e300, xmax = -1e300, ymin = 1e300, ymax = -1e300;
  const double floor = 1e-8;
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, floor)) : y; };
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, ty(s.y[i]));
      ymax = std::max(ymax, ty(s.y[i]));
    }
  }
  if (xmin > xmax) { xmin = 0; xmax = 1; }
  if (ymin > ymax) { ymin = 0; ymax = 1; }
  if (log_y) { ymin = std::floor(ymin); ymax = std::ceil(ymax); }
  if (!log_y) ymin = std::min(0.0, ymin);
  if (xmax == xmin) xmax = xmin + 1;
  if (ymax == ymin) ymax = ymin + 1;
  auto X = [&](double x) { return L + (x - xmin) / (xmax - xmin) * pw; };
  auto Y = [&](double y) { return T + ph - (ty(y) - ymin) / (ymax - ymin) * ph; };
  auto Yt = [&](double t) { return T + ph - (t - ymin) / (ymax - ymin) * ph; };
  std::string s = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
                              "role=\"img\" aria-label=\"{}\">\n",
                              w, h, w, h, Esc(title));
  s += fmt::format("<text x=\"{}\" y=\"18\" class=\"ct\">{}</text>\n", L, Esc(title));
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"pa\"/>\n", L, T, pw, ph);
  // y ticks
  const int ny = log_y ? static_cast<int>(ymax - ymin) : 4;
  for (int i = 0; i <= ny; ++i) {
    const double t = ymin + (ymax - ymin) * i / std::max(1, ny);
    const double yy = Yt(t);
    s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"gr\"/>", L, L + pw, yy, yy);
    const std::string lab = log_y ? fmt::format("1e{}", static_cast<int>(std::lround(t))) : Fig(json(t), 3);
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" class=\"tk\" text-anchor=\"end\">{}</text>\n", L - 6, yy + 4, lab);
  }
  // Small integer ranges (layers) get one tick per integer.
  const bool int_ticks = xmax - xmin <= 12 && std::floor(xmin) == xmin && std::floor(xmax) == xmax;
  const int nx = int_ticks ? static_cast<int>(xmax - xmin) : 5;
  for (int i = 0; i <= nx; ++i) {
    const double xv = xmin + (xmax - xmin) * i / nx;
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tk\" text-anchor=\"middle\">{}</text>", X(xv), T + ph + 16,
                     Fig(json(std::round(xv * 10) / 10), 4));
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" class=\"al\" text-anchor=\"middle\">{}</text>", L + pw / 2, h - 6, Esc(xlabel));
  s += fmt::format("<text x=\"14\" y=\"{}\" class=\"al\" text-anchor=\"middle\" transform=\"rotate(-90 14 {})\">{}</text>\n",
                   T + ph / 2, T + ph / 2, Esc(ylabel + (log_y ? " (log)" : "")));
  if (std::isfinite(marker_x)) {
    s += fmt::format("<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1}\" y2=\"{2}\" stroke=\"#c0392b\" stroke-dasharray=\"2 2\"/>"
                     "<text x=\"{3:.1f}\" y=\"{4}\" class=\"tk\">{5}</text>\n",
                     X(marker_x), T, T + ph, X(marker_x) + 4, T + ph - 6, Esc(marker_label));
  }
  for (const auto& se : series) {
    std::string pts;
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      if (!std::isfinite(se.y[i])) continue;
      pts += fmt::format("{:.1f},{:.1f} ", X(se.x[i]), Y(se.y[i]));
    }
    if (se.x.size() == 1) {
      s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}</title></circle>\n",
                       X(se.x[0]), Y(se.y[0]), se.color, Esc(se.name));
      continue;
    }
    s += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"{}\" stroke-opacity=\"{}\"{} points=\"{}\">"
                     "<title>{}</title></polyline>\n",
                     se.color, se.width, se.opacity, se.dashed ? " stroke-dasharray=\"4 3\"" : "", pts, Esc(se.name));
  }
  if (legend && series.size() <= 6) {
    double lx = L + 10;
    for (const auto& se : series) {
      s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2\"{}/>", lx, lx + 18,
                       T + 12, T + 12, se.color, se.dashed ? " stroke-dasharray=\"4 3\"" : "");
      s += fmt::format("<text x=\"{}\" y=\"{}\" class=\"tk\">{}</text>", lx + 22, T + 16, Esc(se.name));
      lx += 30 + 7.0 * se.name.size();
    }
  }
  s += "</svg>\n";
  return s;
}

struct Bar {
  std::string label;
  std::vector<double> values;  // one per group member
};

// Grouped bars: one group per Bar, one colored bar per member.
std::string BarChart(const std::string& title, const std::vector<Bar>& bars, const std::vector<std::string>& members,
                     const std::vector<std::string>& colors, const std::string& ylabel, int w = 440, int h = 260) {
  const double L = 60, R = 10, T = 28, B = 44;
  const double pw = w - L - R, ph = h - T - B;
  double ymax = 0;
  for (const auto& b : bars) for (double v : b.values) if (std::isfinite(v)) ymax = std::max(ymax, v);
  if (ymax <= 0) ymax = 1;
  ymax *= 1.12;
  std::string s = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" "
                              "role=\"img\" aria-label=\"{}\">\n",
                              w, h, w, h, Esc(title));
  s += fmt::format("<text x=\"{}\" y=\"18\" class=\"ct\">{}</text>\n", L, Esc(title));
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" class=\"pa\"/>\n", L, T, pw, ph);
  for (int i = 0; i <= 4; ++i) {
    const double v = ymax * i / 4, yy = T + ph - ph * i / 4;
    s += fmt::format("<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" class=\"gr\"/><text x=\"{}\" y=\"{:.1f}\" "
                     "class=\"tk\" text-anchor=\"end\">{}</text>\n",
                     L, L + pw, yy, yy, L - 6, yy + 4, Fig(json(v), 3));
  }
  const double gw = pw / std::max<size_t>(1, bars.size());
  const double bw = gw * 0.7 / std::max<size_t>(1, members.size());
  for (size_t g = 0; g < bars.size(); ++g) {
    for (size_t m = 0; m < bars[g].values.size() && m < members.size(); ++m) {
      const double v = std::isfinite(bars[g].values[m]) ? bars[g].values[m] : 0;
      const double x = L + g * gw + gw * 0.15 + m * bw, bh = v / ymax * ph;
      s += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{} {}: {}"
                       "</title></rect><text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tk\" text-anchor=\"middle\">{}</text>\n",
                       x, T + ph - bh, bw * 0.92, bh, colors[m], Esc(bars[g].label), Esc(members[m]), Fig(json(v)),
                       x + bw / 2, T + ph - bh - 3, Fig(json(v), 3));
    }
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" class=\"tk\" text-anchor=\"middle\">{}</text>\n", L + g * gw + gw / 2,
                     T + ph + 16, Esc(bars[g].label));
  }
  double lx = L + 8;
  for (size_t m = 0; m < members.size(); ++m) {
    s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" "
                     "class=\"tk\">{}</text>",
                     lx, h - 14, colors[m], lx + 14, h - 5, Esc(members[m]));
    lx += 24 + 7.0 * members[m].size();
  }
  s += fmt::format("<text x=\"12\" y=\"{}\" class=\"al\" text-anchor=\"middle\" transform=\"rotate(-90 12 {})\">{}</text>",
                   T + ph / 2, T + ph / 2, Esc(ylabel));
  s += "</svg>\n";
  return s;
}

// Histogram of log10(KL) per position, A vs B and the noise floor; KL = 0 in its own bin.
std::string KlHistogram(const json& r) {
  std::vector<double> ab, nf;
  for (const auto& p : r["prompts"]) {
    if (p["drift"].is_null()) continue;
    for (double v : Doubles(p["drift"]["positions"]["kl"])) ab.push_back(v);
    for (double v : Doubles(p["drift"]["noise_positions"]["kl"])) nf.push_back(v);
  }
  const int lo = -12, hi = 1;
  std::vector<Bar> bars;
  bars.push_back({"0", {0, 0}});
  for (int e = lo; e < hi; ++e) bars.push_back({fmt::format("1e{}", e), {0, 0}});
  auto add = [&](const std::vector<double>& v, int m) {
    for (double x : v) {
      if (!std::isfinite(x)) continue;
      if (x <= 0) { bars[0].values[m]++; continue; }
      int e = static_cast<int>(std::floor(std::log10(x)));
      e = std::clamp(e, lo, hi - 1);
      bars[1 + e - lo].values[m]++;
    }
  };
  add(ab, 0);
  add(nf, 1);
  return BarChart("KL divergence per position (bins by decade; 0 = identical rows)", bars,
                  {"KL(A‖B)", "noise floor: KL(B other mode‖B)"}, {"#c0392b", "#7f8c8d"}, "positions", 920, 280);
}

std::string StatusBadge(const std::string& s) { return fmt::format("<span class=\"b {}\">{}</span>", Esc(s), Esc(s)); }

std::string SummaryTable(const json& o) {
  std::string h = "<table><tr><th>A vs B, per position</th><th>mean</th><th>median</th><th>p99</th><th>max</th>"
                  "<th>noise mean</th><th>noise max</th></tr>\n";
  for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{
           {"max|Δlogit|", "max_abs"}, {"mean|Δlogit|", "mean_abs"}, {"RMS Δlogit", "rms"}, {"cosine", "cosine"},
           {"KL(A‖B)", "kl"}, {"top-k overlap", "topk_overlap"}, {"|Δp(next token)|", "abs_dp_next"}}) {
    const json &s = o["drift"][key], &n = o["noise"][key];
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     Esc(label), Fig(s["mean"]), Fig(s["median"]), Fig(s["p99"]), Fig(s["max"]), Fig(n["mean"]),
                     Fig(n["max"]));
  }
  h += "</table>\n";
  return h;
}

// The document head: metadata and the one inline style sheet.
std::string DocumentHead(const json& r) {
  const bool agree = r["verdict"]["agree"].get<bool>();
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n";
  // An empty data: icon stops the browser from asking for /favicon.ico.
  h += "<link rel=\"icon\" href=\"data:,\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += fmt::format("<title>bitparity: {}</title>\n", agree ? "engines agree" : "engines disagree");
  h += R"(<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px;margin:0 0 8px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
.verdict{padding:12px 16px;border-radius:6px;font-size:16px;margin:12px 0}
.verdict.pass{background:#e3f6e8;border:1px solid #2e8b57}.verdict.fail{background:#fbe4e4;border:1px solid #c0392b}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4} .b{padding:1px 6px;border-radius:3px;font-size:12px;font-weight:600}
.b.pass{background:#2e8b57;color:#fff}.b.fail,.b.error{background:#c0392b;color:#fff}.b.warn{background:#e67e22;color:#fff}
.b.skip,.b.info{background:#95a5a6;color:#fff}
.ct{font-size:13px;font-weight:600;fill:#222}.tk{font-size:10px;fill:#555}.al{font-size:11px;fill:#333}
.pa{fill:#fcfcfc;stroke:#ccc}.gr{stroke:#eee}
pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap}
details{margin:6px 0} summary{cursor:pointer} .muted{color:#666;font-size:13px} .warn{color:#b35900}
</style></head><body>
)";
  return h;
}

// The verdict banner.
std::string VerdictSection(const json& r) {
  const json& v = r["verdict"];
  const bool agree = v["agree"].get<bool>();
  std::string h = "<h1>bitparity: do two engines agree?</h1>\n";
  const bool error = v["exit_code"].get<int>() == 2;
  h += fmt::format("<div class=\"verdict {}\"><b>{}</b> (exit {}) — {}</div>\n", agree ? "pass" : "fail",
                   agree ? "AGREE" : (error ? "ERROR" : "DISAGREE"), Fig(v["exit_code"]),
                   Esc(v["summary"].get<std::string>()));
  return h;
}

// What was compared, how and where, then the run's warnings.
std::string RunFacts(const json& r) {
  std::string h = "<ul>\n";
  h += "<li>" + Esc(SideLine(r, "a")) + "</li>\n<li>" + Esc(SideLine(r, "b")) + "</li>\n";
  for (const char* side : {"a", "b"}) {
    for (const std::string& l : SideLintLines(r, side)) {
      h += "<li class=\"lint\">model lint, side " + std::string(side == std::string("a") ? "A" : "B") + ": " +
           Esc(l) + "</li>\n";
    }
  }
  const json& model = r["sides"]["a"]["info"]["model"];
  if (model.is_object()) {
    h += fmt::format("<li>model {} ({}): {} layers, n_embd {}, vocab {}, sha256 <code>{}</code></li>\n",
                     Esc(model.value("name", "")), Esc(model.value("architecture", "")), Fig(model["n_layer"]),
                     Fig(model["n_embd"]), Fig(model["n_vocab"]), Esc(model.value("sha256", "")));
  }
  h += fmt::format("<li>{} prompts from <code>{}</code> (sha256 <code>{}</code>); mode {}; the noise floor is B's own "
                   "{}-vs-{} difference</li>\n",
                   Fig(r["prompt_set"]["count"]), Esc(r["prompt_set"]["source"].get<std::string>()),
                   Esc(r["prompt_set"]["sha256"].get<std::string>().substr(0, 16)),
                   Esc(r["settings"]["mode"].get<std::string>()), Esc(r["settings"]["noise_mode"].get<std::string>()),
                   Esc(r["settings"]["mode"].get<std::string>()));
  h += fmt::format("<li class=\"muted\">{} on {} ({}), bitparity {}; {}</li>\n", Esc(r["created_utc"].get<std::string>()),
                   Esc(r["host"].value("hostname", "?")), Esc(r["host"].value("cpu", "?")),
                   Esc(r["tool"]["version"].get<std::string>()), Esc(r["conventions"].get<std::string>()));
  h += "</ul>\n";
  for (const auto& m : r["model_check"]["messages"]) h += "<p class=\"warn\">⚠ " + Esc(m.get<std::string>()) + "</p>\n";
  for (const auto& w : r["warnings"]) h += "<p class=\"warn\">⚠ " + Esc(w.get<std::string>()) + "</p>\n";
  if (const std::string res = ResilienceLine(r); !res.empty()) h += "<p class=\"warn\">⚠ " + Esc(res) + "</p>\n";
  return h;
}

std::string ChecksSection(const json& r) {
  std::string h = "<h2>Checks</h2>\n<table><tr><th>check</th><th>status</th><th>summary</th></tr>\n";
  for (const auto& c : r["checks"]) {
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", Esc(c["name"].get<std::string>()),
                     StatusBadge(c["status"].get<std::string>()), Esc(c["summary"].get<std::string>()));
  }
  h += "</table>\n";
  return h;
}

// max|Δlogit| per position of every prompt on one chart, each over its noise floor.
std::string DriftOfEveryPrompt(const json& r) {
  std::vector<Series> ss;
  const size_t n = r["prompts"].size();
  size_t i = 0;
  for (const auto& p : r["prompts"]) {
    ++i;
    if (p["drift"].is_null()) continue;
    Series s;
    s.name = p["id"].get<std::string>() + " (A vs B)";
    s.color = Color(i, n);
    s.x = Doubles(p["drift"]["positions"]["position"]);
    s.y = Doubles(p["drift"]["positions"]["max_abs"]);
    s.width = 1.2;
    s.opacity = 0.8;
    ss.push_back(s);
    Series nf = s;
    nf.name = p["id"].get<std::string>() + " (noise floor)";
    nf.color = "#999";
    nf.y = Doubles(p["drift"]["noise_positions"]["max_abs"]);
    nf.dashed = true;
    nf.width = 0.8;
    nf.opacity = 0.35;
    ss.push_back(nf);
  }
  return LineChart("max|Δlogit| per position, every prompt (colored: A vs B; grey dashed: B's noise floor; 0 at the bottom)",
                   ss, "position", "max|Δlogit|", true, 920, 320, false);
}

std::string DriftSection(const json& r) {
  const json& o = r["overall"];
  std::string h = "<h2>Teacher-forced logit drift</h2>\n";
  h += SummaryTable(o);
  h += fmt::format("<p>Top-1 agreement {} (noise floor {}). Perplexity A {}, B {}, ratio A/B {}.</p>\n",
                   Fig(o["top1_agreement"]), Fig(o["noise_top1_agreement"]), Fig(o["ppl_a"], 6), Fig(o["ppl_b"], 6),
                   Fig(o["ppl_ratio"], 6));
  h += DriftOfEveryPrompt(r);
  h += KlHistogram(r);
  return h;
}

std::string GenerationSection(const json& r) {
  const json& g = r["overall"]["generation"];
  std::string h = "<h2>Greedy generation</h2>\n";
  h += fmt::format("<p>{} of {} generations identical; {} diverge at a near tie (each side's token within the other's "
                   "top-{} and at most {} logits below), {} otherwise. Mean common prefix {} tokens.</p>\n",
                   Fig(g["exact"]), Fig(g["measured"]), Fig(g["near_tie_divergences"]),
                   Fig(r["thresholds"]["near_tie_top_n"]), Fig(r["thresholds"]["near_tie_max_logit_gap"]),
                   Fig(g["other_divergences"]), Fig(g["mean_common_prefix"], 3));
  return h;
}

// One traced prompt: residual-stream difference per layer against B's own noise.
std::string LayerChart(const json& p) {
  const json& l = p["localization"];
  Series a("A vs B", "#c0392b"), nf("noise floor (B other mode vs B)", "#7f8c8d");
  nf.dashed = true;
  for (const auto& layer : l["layers"]) {
    a.x.push_back(layer["layer"].get<double>());
    a.y.push_back(layer["rel_diff"].get<double>());
    nf.x.push_back(layer["layer"].get<double>());
    nf.y.push_back(layer["noise_rel_diff"].get<double>());
  }
  const int first = l["first_diverging_layer"].get<int>();
  return LineChart(fmt::format("{}: residual-stream difference per layer (layer {} = after the final norm)",
                               p["id"].get<std::string>(), l["n_layer"].get<int>()),
                   {a, nf}, "layer", "rms(A-B)/rms(B)", true, 920, 240, true, first >= 0 ? first : NAN,
                   "divergence starts: " + l["first_diverging_layer_name"].get<std::string>());
}

// Only when some prompt was traced.
std::string LocalizationSection(const json& r) {
  const json& loc = r["overall"]["localization"];
  if (loc["traced_prompts"].get<int>() <= 0) return "";
  std::string h = "<h2>Localization (EvalTrace)</h2>\n";
  h += fmt::format("<p>Residual streams first diverge at <b>{}</b> (first diverging layer per traced prompt: "
                   "<code>{}</code>). A layer exceeds the noise when its relative RMS difference is above {}× B's own "
                   "difference at that layer (floor {}); the divergence starts where the difference jumps most "
                   "relative to the layer before, up to the first exceeding layer (a small fault hides under the "
                   "noise in its own layer and is amplified by the next layer's int8 quantization).</p>\n",
                   Esc(loc["first_diverging_layer_name"].get<std::string>()), Esc(loc["votes"].dump()),
                   Fig(r["thresholds"]["trace_noise_ratio"]), Fig(r["thresholds"]["trace_floor"]));
  for (const auto& p : r["prompts"]) {
    if (!p["localization"].is_null()) h += LayerChart(p);
  }
  return h;
}

// Throughput and latency bars, A beside B.
std::string SpeedCharts(const json& s) {
  const std::vector<std::string> members = {"A", "B (reference)"};
  const std::vector<std::string> colors = {"#2980b9", "#7f8c8d"};
  auto med = [&](const char* side, const char* key) { return s[side][key]["median"].get<double>(); };
  std::string h = BarChart("throughput (tokens/s, higher is better)",
                           {{"prefill", {med("a", "prefill_tokens_per_s"), med("b", "prefill_tokens_per_s")}},
                            {"decode", {med("a", "decode_tokens_per_s"), med("b", "decode_tokens_per_s")}}},
                           members, colors, "tokens/s");
  std::vector<Bar> lat = {{"TTFT", {med("a", "ttft_ms"), med("b", "ttft_ms")}}};
  for (size_t i = 0; i < s["a"]["load"].size() && i < s["b"]["load"].size(); ++i) {
    lat.push_back({fmt::format("p50 @{}", s["a"]["load"][i]["concurrency"].get<int>()),
                   {s["a"]["load"][i]["p50_ms"].get<double>(), s["b"]["load"][i]["p50_ms"].get<double>()}});
    lat.push_back({fmt::format("p99 @{}", s["a"]["load"][i]["concurrency"].get<int>()),
                   {s["a"]["load"][i]["p99_ms"].get<double>(), s["b"]["load"][i]["p99_ms"].get<double>()}});
  }
  h += BarChart("latency (ms, lower is better)", lat, members, colors, "ms");
  return h;
}

// Every speed figure with its spread, then the latency under load.
std::string SpeedTable(const json& s) {
  std::string h = "<table><tr><th>metric</th><th>A median (min–max, sd)</th><th>B median (min–max, sd)</th><th>A/B</th></tr>\n";
  for (const auto& [label, key] : std::vector<std::pair<std::string, std::string>>{
           {"prefill tokens/s", "prefill_tokens_per_s"}, {"decode tokens/s", "decode_tokens_per_s"},
           {"time to first token, client (ms)", "ttft_ms"}, {"time to first token, server (ms)", "server_ttft_ms"}}) {
    auto cell = [&](const char* side) {
      const json& x = s[side][key];
      return fmt::format("{} ({}–{}, {})", Fig(x["median"]), Fig(x["min"]), Fig(x["max"]), Fig(x["stdev"], 2));
    };
    const json ratio = s["ratio_a_over_b"].contains(key) ? s["ratio_a_over_b"][key] : json(nullptr);
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", Esc(label), cell("a"), cell("b"),
                     Fig(ratio, 3));
  }
  for (size_t i = 0; i < s["a"]["load"].size() && i < s["b"]["load"].size(); ++i) {
    const json &la = s["a"]["load"][i], &lb = s["b"]["load"][i];
    h += fmt::format("<tr><td>latency p50/p95/p99 at concurrency {} ({} requests)</td><td>{} / {} / {} ms, {} tok/s"
                     "</td><td>{} / {} / {} ms, {} tok/s</td><td></td></tr>\n",
                     Fig(la["concurrency"]), Fig(la["requests"]), Fig(la["p50_ms"]), Fig(la["p95_ms"]),
                     Fig(la["p99_ms"]), Fig(la["tokens_per_s"]), Fig(lb["p50_ms"]), Fig(lb["p95_ms"]),
                     Fig(lb["p99_ms"]), Fig(lb["tokens_per_s"]));
  }
  h += "</table>\n";
  return h;
}

// Tokens/s per side against concurrency: the streaming aggregate decode rate
// when it was measured, else the load test's generated tokens over wall time.
std::string ThroughputAgainstConcurrency(const json& s) {
  const bool streams = s["a"].contains("streams") && s["b"].contains("streams");
  const char* list = streams ? "streams" : "load";
  const char* key = streams ? "aggregate_decode_tokens_per_s" : "tokens_per_s";
  std::vector<ThroughputSeries> series;
  const char* colors[] = {"#2980b9", "#7f8c8d"};
  for (const char* side : {"a", "b"}) {
    ThroughputSeries t;
    t.name = side[0] == 'a' ? "A" : "B (reference)";
    t.color = colors[side[0] == 'a' ? 0 : 1];
    for (const auto& l : s[side][list]) {
      t.concurrency.push_back(l["concurrency"].get<int>());
      t.tokens_per_s.push_back(l[key].is_number() ? l[key].get<double>() : NAN);
    }
    series.push_back(std::move(t));
  }
  return ThroughputChartSvg(streams ? "aggregate decode tokens/s against concurrency"
                                    : "load tokens/s against concurrency (generated tokens / wall time)",
                            "tokens/s", series);
}

// Only when speed was measured.
std::string SpeedSection(const json& r) {
  if (!r["speed"].is_object()) return "";
  const json& s = r["speed"];
  std::string h = "<h2>Speed</h2>\n";
  h += fmt::format("<p class=\"muted\">Median of {} runs after {} warm-up (spread in the table); sides measured one "
                   "after the other. Timed prompt: {} tokens, {} new tokens.</p>\n",
                   Fig(r["settings"]["speed_runs"]), Fig(r["settings"]["speed_warmup"]),
                   Fig(s["a"]["prompt_tokens"]), Fig(r["settings"]["speed_max_new_tokens"]));
  h += SpeedCharts(s);
  h += ThroughputAgainstConcurrency(s);
  h += SpeedTable(s);
  return h;
}

// Only with --batch-invariance: per side and probe, alone vs among K streams.
std::string BatchInvarianceSection(const json& r) {
  if (!r.contains("batch_invariance") || !r["batch_invariance"].is_object()) return "";
  const json& bi = r["batch_invariance"];
  std::string h = "<h2>Batch invariance</h2>\n";
  h += fmt::format("<p class=\"muted\">Each probe prompt generated alone, then among {} concurrent streams started at "
                   "staggered times; ids, logits and logprobs (top-{}) compared bit for bit over {} greedy tokens. "
                   "Concurrent tokens: the other streams' tokens that arrived while the probe decoded (0: not "
                   "exercised).</p>\n",
                   Fig(bi["settings"]["others"]), Fig(bi["settings"]["top_n"]), Fig(bi["settings"]["max_new_tokens"]));
  h += "<table><tr><th>side</th><th>prompt</th><th>bit-identical</th><th>tokens differ</th><th>values differ</th>"
       "<th>max |drift|</th><th>first differing step</th><th>concurrent tokens</th></tr>\n";
  for (const char* side : {"a", "b"}) {
    for (const auto& p : bi[side]["probes"]) {
      const std::string status = !p["error"].is_null() ? "error" : p["bit_identical"].get<bool>() ? "pass" : "warn";
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td>"
                       "<td>{}</td></tr>\n",
                       side[0] == 'a' ? "A" : "B", Esc(p["prompt"].get<std::string>()), StatusBadge(status),
                       p["error"].is_null() ? "" : " " + Esc(p["error"].get<std::string>()), Fig(p["tokens_differ"]),
                       Fig(p["values_differ"]), Fig(p["values_compared"]), Fig(p["max_abs_drift"]),
                       p["first_diff_step"].get<int>() < 0 ? "none" : Fig(p["first_diff_step"]),
                       Fig(p["concurrent_tokens"]));
    }
  }
  h += "</table>\n";
  return h;
}

// Only with --baseline.
std::string BaselineSection(const json& r) {
  if (!r["baseline"].is_object()) return "";
  std::string h = "<h2>Baseline</h2>\n";
  h += fmt::format("<p>Against <code>{}</code> ({}).</p>\n", Esc(r["baseline"]["path"].get<std::string>()),
                   Esc(r["baseline"]["created_utc"].get<std::string>()));
  h += "<table><tr><th>metric</th><th>old</th><th>new</th><th>limit</th><th>regression</th></tr>\n";
  for (const auto& c : r["baseline"]["compared"]) {
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                     Esc(c["metric"].get<std::string>()), Fig(c["old"]), Fig(c["new"]), Fig(c["limit"]),
                     c["regression"].get<bool>() ? StatusBadge("fail") : StatusBadge("pass"));
  }
  h += "</table>\n";
  return h;
}

// One row per prompt: its headline figures and its three checks.
std::string PromptTable(const json& r) {
  std::string h = "<h2>Prompts</h2>\n<table><tr><th>id</th><th>tokens</th><th>max|Δ|</th><th>mean|Δ|</th><th>mean KL</th>"
                  "<th>drift / noise</th><th>tokenization</th><th>drift</th><th>generation</th></tr>\n";
  for (const auto& p : r["prompts"]) {
    const json& d = p["drift"];
    h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                     "<td>{}</td></tr>\n",
                     Esc(p["id"].get<std::string>()), Fig(p["n_tokens"]),
                     d.is_null() ? "n/a" : Fig(d["summary"]["max_abs"]["max"]),
                     d.is_null() ? "n/a" : Fig(d["summary"]["mean_abs"]["mean"]),
                     d.is_null() ? "n/a" : Fig(d["summary"]["kl"]["mean"]), Fig(p["drift_noise_ratio"], 3),
                     StatusBadge(p["checks"]["tokenization"]["status"].get<std::string>()),
                     StatusBadge(p["checks"]["drift"]["status"].get<std::string>()),
                     StatusBadge(p["checks"]["generation"]["status"].get<std::string>()));
  }
  h += "</table>\n";
  return h;
}

// A measured prompt's drift per position against the noise floor, and its figures.
std::string PromptDrift(const json& d) {
  Series mx("max|Δ| A vs B", "#c0392b"), mn("mean|Δ| A vs B", "#e67e22"), nmx("max|Δ| noise floor", "#7f8c8d"),
      nmn("mean|Δ| noise floor", "#bdc3c7");
  nmx.dashed = nmn.dashed = true;
  mx.x = mn.x = nmx.x = nmn.x = Doubles(d["positions"]["position"]);
  mx.y = Doubles(d["positions"]["max_abs"]);
  mn.y = Doubles(d["positions"]["mean_abs"]);
  nmx.y = Doubles(d["noise_positions"]["max_abs"]);
  nmn.y = Doubles(d["noise_positions"]["mean_abs"]);
  std::string h = LineChart("drift per position", {mx, mn, nmx, nmn}, "position", "|Δlogit|", true, 920, 240);
  h += fmt::format("<p class=\"muted\">perplexity A {} B {} (ratio {}); top-1 agreement {} (noise {}); "
                   "cosine min {}; top-k overlap min {}</p>\n",
                   Fig(d["ppl_a"], 6), Fig(d["ppl_b"], 6), Fig(d["ppl_ratio"], 6), Fig(d["top1_agreement"]),
                   Fig(d["noise_top1_agreement"]), Fig(d["summary"]["cosine"]["min"], 6),
                   Fig(d["summary"]["topk_overlap"]["min"]));
  return h;
}

// One prompt, folded: its error, its check reasons, drift and generations.
std::string PromptDetails(const json& p) {
  std::string h = fmt::format("<details><summary><b>{}</b> {} — {}</summary>\n", Esc(p["id"].get<std::string>()),
                              Esc(p["category"].get<std::string>()), Esc(p["text_preview"].get<std::string>()));
  if (!p["error"].is_null()) {
    h += fmt::format("<p class=\"warn\">{}: {}</p>\n", Esc(p["error"]["code"].get<std::string>()),
                     Esc(p["error"]["message"].get<std::string>()));
  }
  if (!p["truncated_from"].is_null()) {
    h += fmt::format("<p class=\"muted\">truncated from {} to {} tokens to fit the context</p>\n",
                     Fig(p["truncated_from"]), Fig(p["n_tokens"]));
  }
  for (const char* c : {"tokenization", "drift", "generation"}) {
    for (const auto& reason : p["checks"][c]["reasons"]) {
      h += fmt::format("<p>{} {}</p>\n", StatusBadge(p["checks"][c]["status"].get<std::string>()),
                       Esc(reason.get<std::string>()));
    }
  }
  if (!p["drift"].is_null()) h += PromptDrift(p["drift"]);
  const json& gen = p["generation"];
  if (!gen.is_null()) {
    h += fmt::format("<p>generation ({} common tokens{}):</p><pre>A: {}\nB: {}</pre>\n", Fig(gen["common_prefix"]),
                     gen["exact_match"].get<bool>() ? ", identical" : "", Esc(gen["text_a"].get<std::string>()),
                     Esc(gen["text_b"].get<std::string>()));
  }
  h += "</details>\n";
  return h;
}

std::string PromptsSection(const json& r) {
  std::string h = PromptTable(r);
  for (const auto& p : r["prompts"]) h += PromptDetails(p);
  return h;
}

// How the run was made, in full, folded away.
std::string ProvenanceSection(const json& r) {
  std::string h = "<h2>Provenance</h2>\n";
  h += fmt::format("<p class=\"muted\">command: <code>{}</code></p>\n", Esc(r["command"].get<std::string>()));
  h += "<details><summary>thresholds</summary><pre>" + Esc(r["thresholds"].dump(2)) + "</pre></details>\n";
  h += "<details><summary>settings</summary><pre>" + Esc(r["settings"].dump(2)) + "</pre></details>\n";
  h += "<details><summary>side A GetModelInfo</summary><pre>" + Esc(r["sides"]["a"]["info"].dump(2)) + "</pre></details>\n";
  h += "<details><summary>side B GetModelInfo</summary><pre>" + Esc(r["sides"]["b"]["info"].dump(2)) + "</pre></details>\n";
  h += "<details><summary>host</summary><pre>" + Esc(r["host"].dump(2)) + "</pre></details>\n";
  return h;
}

}  // namespace

std::string RenderHtml(const json& r) {
  std::string h = DocumentHead(r);
  h += VerdictSection(r);
  h += RunFacts(r);
  h += ChecksSection(r);
  h += DriftSection(r);
  h += GenerationSection(r);
  h += LocalizationSection(r);
  h += BatchInvarianceSection(r);
  h += SpeedSection(r);
  h += BaselineSection(r);
  h += PromptsSection(r);
  h += ProvenanceSection(r);
  h += "</body></html>\n";
  return h;
}

}  // namespace bitparity
