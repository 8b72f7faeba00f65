#include "orchestrator/conformance_report.h"

#include "fmt/format.h"
#include "orchestrator/reports.h"

namespace bitparity {
using nlohmann::json;

namespace {

// XML and HTML text and attributes escape the same five characters.
std::string Esc(const std::string& s) { return XmlEscape(s); }

std::string Str(const json& c, const char* key) { return c.value(key, std::string()); }

std::string Explain(const json& c) {
  return fmt::format("request:  {}\nexpected: {}\nobserved: {}", Str(c, "request"), Str(c, "expected"),
                     Str(c, "observed"));
}

}  // namespace

json ConformanceJson(const ConformanceResult& r) {
  json checks = json::array();
  for (const ConformanceCheck& c : r.checks) {
    json j = {{"name", c.name},         {"group", c.group}, {"required", c.required},
              {"status", ConformanceStatusName(c.status)}, {"catches", c.catches}, {"note", c.note},
              {"ms", c.ms}};
    if (c.status == ConformanceStatus::kFail) {
      j["request"] = c.request;
      j["expected"] = c.expected;
      j["observed"] = c.observed;
    }
    checks.push_back(std::move(j));
  }
  const auto& m = r.info.model();
  const ConformanceCheck* first = r.FirstRequiredFailure();
  return {{"schema", "bitparity.conformance"},
          {"version", 1},
          {"address", r.address},
          {"label", r.label},
          {"engine", {{"name", r.info.engine().name()}, {"version", r.info.engine().version()}}},
          {"model",
           {{"file_name", m.file_name()}, {"sha256", m.sha256()}, {"architecture", m.architecture()},
            {"n_vocab", m.n_vocab()}, {"n_layer", m.n_layer()}, {"n_embd", m.n_embd()}}},
          {"conforms", first == nullptr},
          {"first_failure", first == nullptr ? json() : json(first->name)},
          {"counts",
           {{"pass", r.Count(ConformanceStatus::kPass)}, {"fail", r.Count(ConformanceStatus::kFail)},
            {"skip", r.Count(ConformanceStatus::kSkip)}}},
          {"wall_s", r.wall_s},
          {"checks", checks}};
}

std::string RenderConformanceText(const json& r) {
  std::string out = fmt::format("bitparity conformance: {} {} at {} ({})\n", r["engine"]["name"].get<std::string>(),
                                r["engine"]["version"].get<std::string>(), r["address"].get<std::string>(),
                                r["model"]["file_name"].get<std::string>());
  for (const auto& c : r["checks"]) {
    const std::string status = c["status"];
    std::string tag = status == "pass" ? "PASS" : status == "fail" ? "FAIL" : "SKIP";
    out += fmt::format("  {}  {}{} ({:.0f} ms)", tag, c["name"].get<std::string>(),
                       c["required"].get<bool>() ? "" : " [optional]", c["ms"].get<double>());
    if (status == "skip") out += "  " + Str(c, "note");
    out += "\n";
    if (status == "fail") {
      out += fmt::format("        catches:  {}\n        request:  {}\n        expected: {}\n        observed: {}\n",
                         Str(c, "catches"), Str(c, "request"), Str(c, "expected"), Str(c, "observed"));
    }
  }
  out += fmt::format("{} passed, {} failed, {} skipped in {:.1f} s: {}\n", r["counts"]["pass"].get<int>(),
                     r["counts"]["fail"].get<int>(), r["counts"]["skip"].get<int>(), r["wall_s"].get<double>(),
                     r["conforms"].get<bool>() ? "the server conforms"
                                               : "the server does NOT conform (first required failure: " +
                                                     r["first_failure"].get<std::string>() + ")");
  return out;
}

std::string RenderConformanceJUnit(const json& r) {
  int failures = 0, skipped = 0;
  std::string cases;
  for (const auto& c : r["checks"]) {
    const std::string status = c["status"];
    cases += fmt::format("    <testcase classname=\"bitparity.conformance.{}\" name=\"{}\" time=\"{:.3f}\"",
                         Esc(Str(c, "group")), Esc(Str(c, "name")), c["ms"].get<double>() / 1000);
    if (status == "pass") {
      cases += Str(c, "note").empty() ? "/>\n" : fmt::format(">\n      <system-out>{}</system-out>\n    </testcase>\n", Esc(Str(c, "note")));
    } else if (status == "skip") {
      ++skipped;
      cases += fmt::format(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", Esc(Str(c, "note")));
    } else {
      ++failures;
      cases += fmt::format(">\n      <failure message=\"{}\" type=\"fail\">{}</failure>\n    </testcase>\n",
                           Esc(Str(c, "catches")), Esc(Explain(c)));
    }
  }
  const size_t tests = r["checks"].size();
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"bitparity.conformance\" tests=\"{}\" "
      "failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3f}\">\n  <testsuite name=\"{}\" tests=\"{}\" "
      "failures=\"{}\" errors=\"0\" skipped=\"{}\">\n{}  </testsuite>\n</testsuites>\n",
      tests, failures, skipped, r["wall_s"].get<double>(), Esc("bitparity.conformance " + Str(r, "address")), tests,
      failures, skipped, cases);
}

std::string RenderConformanceHtml(const json& r) {
  std::string rows;
  for (const auto& c : r["checks"]) {
    const std::string status = c["status"];
    std::string detail = status == "fail" ? "<pre>" + Esc(Explain(c)) + "</pre>" : Esc(Str(c, "note"));
    rows += fmt::format("<tr class=\"{}\"><td>{}</td><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{:.0f}</td></tr>\n",
                        status, status == "pass" ? "PASS" : status == "fail" ? "FAIL" : "SKIP", Esc(Str(c, "name")),
                        c["required"].get<bool>() ? "" : " (optional)", Esc(Str(c, "catches")), detail,
                        c["ms"].get<double>());
  }
  const bool ok = r["conforms"].get<bool>();
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bitparity conformance: {}</title>\n"
      "<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;"
      "padding:4px 8px;vertical-align:top;text-align:left}}tr.fail{{background:#fdd}}tr.skip{{background:#eee}}"
      "tr.pass td:first-child{{color:#070}}pre{{white-space:pre-wrap;margin:0}}.verdict{{font-size:1.3em}}</style>"
      "</head><body>\n<h1>bitparity conformance</h1>\n<p>{} {} at <code>{}</code>, model <code>{}</code> "
      "(sha256 <code>{}</code>)</p>\n<p class=\"verdict\">{}</p>\n<p>{} passed, {} failed, {} skipped in {:.1f} s</p>\n"
      "<table><tr><th>status</th><th>check</th><th>catches</th><th>details</th><th>ms</th></tr>\n{}</table>\n"
      "</body></html>\n",
      Esc(Str(r, "address")), Esc(r["engine"]["name"].get<std::string>()), Esc(r["engine"]["version"].get<std::string>()),
      Esc(Str(r, "address")), Esc(r["model"]["file_name"].get<std::string>()), Esc(r["model"]["sha256"].get<std::string>()),
      ok ? "The server conforms." : Esc("The server does NOT conform: " + r["first_failure"].get<std::string>() + " failed."),
      r["counts"]["pass"].get<int>(), r["counts"]["fail"].get<int>(), r["counts"]["skip"].get<int>(),
      r["wall_s"].get<double>(), rows);
}

}  // namespace bitparity
