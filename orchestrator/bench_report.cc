// Renderers of a bench JSON document (bench.h): the terminal table and the
// self-contained HTML page with the throughput chart.
#include <cmath>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "orchestrator/bench.h"
#include "orchestrator/reports.h"
#include "orchestrator/throughput_chart.h"

namespace bitparity {
using nlohmann::json;

namespace {

const char* const kSides[] = {"a", "b"};

std::string Upper(const char* side) { return side[0] == 'a' ? "A" : "B"; }

// The scaling entry of `side` at `concurrency` (null when absent).
json ScalingAt(const json& speed, int concurrency) {
  if (!speed.contains("scaling")) return nullptr;
  for (const json& s : speed["scaling"]) {
    if (s["concurrency"] == concurrency) return s;
  }
  return nullptr;
}

json At(const json& j, const char* key) { return j.is_object() && j.contains(key) ? j[key] : json(nullptr); }

}  // namespace

std::string RenderBenchText(const json& r) {
  const json& o = r["options"];
  std::string t = fmt::format("bitparity bench: timed prompt {} tokens, {} new tokens, {} runs after {} warm-up\n",
                              Fig(r["sides"]["a"]["speed"]["prompt_tokens"]), Fig(o["max_new_tokens"]),
                              Fig(o["runs"]), Fig(o["warmup"]));
  for (const char* side : kSides) {
    if (!r["sides"].contains(side)) continue;
    const json& s = r["sides"][side]["speed"];
    t += fmt::format("side {} {}\n", Upper(side), r["sides"][side]["address"].get<std::string>());
    t += fmt::format("  prefill {} tok/s (min {}, max {})  decode {} tok/s (min {}, max {})  TTFT {} ms\n",
                     Fig(s["prefill_tokens_per_s"]["median"]), Fig(s["prefill_tokens_per_s"]["min"]),
                     Fig(s["prefill_tokens_per_s"]["max"]), Fig(s["decode_tokens_per_s"]["median"]),
                     Fig(s["decode_tokens_per_s"]["min"]), Fig(s["decode_tokens_per_s"]["max"]),
                     Fig(s["ttft_ms"]["median"]));
    // The request-latency load (--requests 0 skips it).
    const json& load = o["requests"].get<int>() > 0 ? s["load"] : json::array();
    if (!load.empty()) {
      t += fmt::format("  {:<12} {:>10} {:>10} {:>10} {:>10} {:>12} {:>7}\n", "concurrency", "p50 ms", "p95 ms",
                       "p99 ms", "req/s", "tokens/s", "failed");
    }
    for (const json& l : load) {
      t += fmt::format("  {:<12} {:>10} {:>10} {:>10} {:>10} {:>12} {:>7}\n", Fig(l["concurrency"]), Fig(l["p50_ms"]),
                       Fig(l["p95_ms"]), Fig(l["p99_ms"]), Fig(l["requests_per_s"]), Fig(l["tokens_per_s"]),
                       Fig(l["failed"]));
    }
    if (!s.contains("streams")) continue;
    t += fmt::format("  streaming decode: k streams of {} tokens started together, {} round(s) per level, the "
                     "levels' rounds interleaved; scaling = level k / level 1\n",
                     Fig(o["stream_max_new_tokens"]), Fig(o["stream_rounds"]));
    t += fmt::format("  {:<12} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}\n", "concurrency",
                     "agg tok/s", "per-strm", "level tok/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99", "agg x1",
                     "ITLp99x1", "failed");
    for (const json& l : s["streams"]) {
      const json sc = ScalingAt(s, l["concurrency"].get<int>());
      t += fmt::format("  {:<12} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}\n",
                       Fig(l["concurrency"]), Fig(l["aggregate_decode_tokens_per_s"]),
                       Fig(l["per_stream_decode_tokens_per_s"]), Fig(l["level_tokens_per_s"]),
                       Fig(l["ttft_p50_ms"]), Fig(l["ttft_p99_ms"]), Fig(l["itl_p50_ms"]), Fig(l["itl_p99_ms"]),
                       Fig(At(sc, "aggregate_decode_tokens_per_s"), 3), Fig(At(sc, "itl_p99_ms"), 3),
                       Fig(l["failed"]));
    }
  }
  if (r.contains("ratio_a_over_b")) {
    const json& ratio = r["ratio_a_over_b"];
    t += fmt::format("A/B: prefill {}, decode {}, TTFT {}\n", Fig(ratio["prefill_tokens_per_s"], 3),
                     Fig(ratio["decode_tokens_per_s"], 3), Fig(ratio["ttft_ms"], 3));
    for (const json& l : ratio.value("streams", json::array())) {
      t += fmt::format("A/B streaming at {}: aggregate {}, per-stream {}, level {}, TTFT p50 {} p99 {}, ITL p50 {} "
                       "p99 {}\n",
                       Fig(l["concurrency"]), Fig(l["aggregate_decode_tokens_per_s"], 3),
                       Fig(l["per_stream_decode_tokens_per_s"], 3), Fig(l["level_tokens_per_s"], 3),
                       Fig(l["ttft_p50_ms"], 3),
                       Fig(l["ttft_p99_ms"], 3), Fig(l["itl_p50_ms"], 3), Fig(l["itl_p99_ms"], 3));
    }
  }
  return t;
}

std::string RenderBenchHtml(const json& r) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<link rel=\"icon\" href=\"data:,\">\n"
                  "<title>bitparity bench</title>\n";
  h += R"(<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#222;max-width:1000px}
h1{font-size:22px} h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4} .ct{font-size:13px;font-weight:600;fill:#222}.tk{font-size:10px;fill:#555}.al{font-size:11px;fill:#333}
.muted{color:#666;font-size:13px} pre{background:#f6f6f6;padding:8px;font-size:12px;white-space:pre-wrap}
</style></head><body>
<h1>bitparity bench</h1>
)";
  h += fmt::format("<p class=\"muted\">{} on {}; command <code>{}</code></p>\n", XmlEscape(r["created_utc"].get<std::string>()),
                   XmlEscape(r["host"].value("hostname", "?")), XmlEscape(r["command"].get<std::string>()));
  const char* colors[] = {"#2980b9", "#7f8c8d"};
  std::vector<ThroughputSeries> series;
  for (size_t i = 0; i < 2; ++i) {
    const char* side = kSides[i];
    if (!r["sides"].contains(side) || !r["sides"][side]["speed"].contains("streams")) continue;
    ThroughputSeries s;
    s.name = Upper(side) + " " + r["sides"][side]["address"].get<std::string>();
    s.color = colors[i];
    for (const json& l : r["sides"][side]["speed"]["streams"]) {
      s.concurrency.push_back(l["concurrency"].get<int>());
      const json& v = l["aggregate_decode_tokens_per_s"];
      s.tokens_per_s.push_back(v.is_number() ? v.get<double>() : NAN);
    }
    series.push_back(std::move(s));
  }
  if (!series.empty()) {
    h += "<h2>Throughput against concurrency</h2>\n";
    h += ThroughputChartSvg("aggregate decode tokens/s (higher is better)", "tokens/s", series);
    h += "<p class=\"muted\">" + XmlEscape(r["definitions"]["aggregate_decode_tokens_per_s"].get<std::string>()) +
         "</p>\n";
  }
  for (const char* side : kSides) {
    if (!r["sides"].contains(side)) continue;
    const json& s = r["sides"][side]["speed"];
    h += fmt::format("<h2>Side {} {}</h2>\n", Upper(side), XmlEscape(r["sides"][side]["address"].get<std::string>()));
    h += fmt::format("<p>prefill {} tokens/s, decode {} tokens/s, TTFT {} ms (medians of single generations)</p>\n",
                     Fig(s["prefill_tokens_per_s"]["median"]), Fig(s["decode_tokens_per_s"]["median"]),
                     Fig(s["ttft_ms"]["median"]));
    if (!s.contains("streams")) continue;
    h += "<table><tr><th>concurrency</th><th>aggregate tok/s</th><th>per-stream tok/s</th><th>level tok/s</th>"
         "<th>TTFT p50 ms</th>"
         "<th>TTFT p99 ms</th><th>ITL p50 ms</th><th>ITL p99 ms</th><th>aggregate / level 1</th>"
         "<th>ITL p99 / level 1</th><th>failed</th></tr>\n";
    for (const json& l : s["streams"]) {
      const json sc = ScalingAt(s, l["concurrency"].get<int>());
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                       "<td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       Fig(l["concurrency"]), Fig(l["aggregate_decode_tokens_per_s"]),
                       Fig(l["per_stream_decode_tokens_per_s"]), Fig(l["level_tokens_per_s"]), Fig(l["ttft_p50_ms"]), Fig(l["ttft_p99_ms"]),
                       Fig(l["itl_p50_ms"]), Fig(l["itl_p99_ms"]), Fig(At(sc, "aggregate_decode_tokens_per_s"), 3),
                       Fig(At(sc, "itl_p99_ms"), 3), Fig(l["failed"]));
    }
    h += "</table>\n";
  }
  if (r.contains("ratio_a_over_b") && r["ratio_a_over_b"].contains("streams")) {
    h += "<h2>A/B per level</h2>\n<table><tr><th>concurrency</th><th>aggregate</th><th>per-stream</th><th>level</th>"
         "<th>TTFT p50</th>"
         "<th>TTFT p99</th><th>ITL p50</th><th>ITL p99</th></tr>\n";
    for (const json& l : r["ratio_a_over_b"]["streams"]) {
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                       "</tr>\n",
                       Fig(l["concurrency"]), Fig(l["aggregate_decode_tokens_per_s"], 3),
                       Fig(l["per_stream_decode_tokens_per_s"], 3), Fig(l["level_tokens_per_s"], 3),
                       Fig(l["ttft_p50_ms"], 3),
                       Fig(l["ttft_p99_ms"], 3), Fig(l["itl_p50_ms"], 3), Fig(l["itl_p99_ms"], 3));
    }
    h += "</table>\n";
  }
  h += "<h2>Options</h2>\n<pre>" + XmlEscape(r["options"].dump(2)) + "</pre>\n</body></html>\n";
  return h;
}

}  // namespace bitparity
