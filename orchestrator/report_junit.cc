#include <string>

#include "fmt/format.h"
#include "orchestrator/reports.h"

namespace bitparity {
using nlohmann::json;

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids most control characters.
        if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') out += ' ';
        else out += static_cast<char>(c);
    }
  }
  return out;
}

namespace {

struct Case {
  std::string name, status, message, detail;
  double seconds = 0;
};

std::string Suite(const std::string& name, const std::vector<Case>& cases, int* tests, int* failures, int* errors,
                  int* skipped) {
  int f = 0, e = 0, s = 0;
  for (const auto& c : cases) {
    f += c.status == "fail";
    e += c.status == "error";
    s += c.status == "skip";
  }
  *tests += cases.size();
  *failures += f;
  *errors += e;
  *skipped += s;
  std::string out = fmt::format("  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
                                XmlEscape(name), cases.size(), f, e, s);
  for (const auto& c : cases) {
    out += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\"", XmlEscape(name), XmlEscape(c.name), c.seconds);
    if (c.status == "pass" || c.status == "info" || c.status == "warn") {
      out += c.message.empty() ? "/>\n" : fmt::format(">\n      <system-out>{}</system-out>\n    </testcase>\n", XmlEscape(c.message));
    } else if (c.status == "skip") {
      out += fmt::format(">\n      <skipped message=\"{}\"/>\n    </testcase>\n", XmlEscape(c.message));
    } else {
      const char* tag = c.status == "fail" ? "failure" : "error";
      out += fmt::format(">\n      <{} message=\"{}\" type=\"{}\">{}</{}>\n    </testcase>\n", tag, XmlEscape(c.message),
                         c.status, XmlEscape(c.detail), tag);
    }
  }
  out += "  </testsuite>\n";
  return out;
}

}  // namespace

std::string RenderJUnit(const json& r) {
  int tests = 0, failures = 0, errors = 0, skipped = 0;
  std::string body;
  std::vector<Case> run;
  for (const auto& c : r["checks"]) {
    run.push_back({c["name"].get<std::string>(), c["status"].get<std::string>(), c["summary"].get<std::string>(),
                   c["summary"].get<std::string>()});
  }
  body += Suite("bitparity.run", run, &tests, &failures, &errors, &skipped);
  for (const char* check : {"tokenization", "drift", "generation"}) {
    std::vector<Case> cases;
    for (const auto& p : r["prompts"]) {
      const json& c = p["checks"][check];
      std::string msg, detail;
      for (const auto& reason : c["reasons"]) {
        if (msg.empty()) msg = reason.get<std::string>();
        detail += reason.get<std::string>() + "\n";
      }
      if (c["status"] == "skip" && msg.empty()) {
        msg = std::string(check) == "tokenization" ? "ids prompt: nothing to tokenize" : "not measured";
      }
      detail += fmt::format("prompt: {}\nmode: {}\n", p["text_preview"].get<std::string>(),
                            r["settings"]["mode"].get<std::string>());
      cases.push_back({p["id"].get<std::string>(), c["status"].get<std::string>(), msg, detail,
                       p["wall_ms"].get<double>() / 1000.0});
    }
    body += Suite(std::string("bitparity.") + check, cases, &tests, &failures, &errors, &skipped);
  }
  // One case per side and probe prompt: bit-identical alone and among concurrent streams.
  if (r.contains("batch_invariance") && r["batch_invariance"].is_object()) {
    const json& bi = r["batch_invariance"];
    const bool required = bi["settings"].value("require", false);
    std::vector<Case> cases;
    for (const char* side : {"a", "b"}) {
      for (const auto& p : bi[side]["probes"]) {
        const bool identical = p["bit_identical"].get<bool>();
        std::string status = !p["error"].is_null() ? "error" : identical ? "pass" : required ? "fail" : "warn";
        std::string msg = !p["error"].is_null() ? p["error"].get<std::string>()
                          : identical
                              ? fmt::format("bit-identical among {} concurrent streams", Fig(bi["settings"]["others"]))
                              : fmt::format("not bit-identical: {} token(s), {} of {} value(s) differ, max |drift| {}, "
                                            "first at step {}",
                                            Fig(p["tokens_differ"]), Fig(p["values_differ"]), Fig(p["values_compared"]),
                                            Fig(p["max_abs_drift"]), Fig(p["first_diff_step"]));
        cases.push_back({std::string(side[0] == 'a' ? "A " : "B ") + p["prompt"].get<std::string>(), status, msg,
                         msg + fmt::format("\nconcurrent tokens: {}", Fig(p["concurrent_tokens"]))});
      }
    }
    body += Suite("bitparity.batch_invariance", cases, &tests, &failures, &errors, &skipped);
  }
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"bitparity\" tests=\"{}\" failures=\"{}\" "
      "errors=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n{}</testsuites>\n",
      tests, failures, errors, skipped, r.value("wall_s", 0.0), body);
}

}  // namespace bitparity
