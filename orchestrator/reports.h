// File: orchestrator/reports.h
//
// Renderers of a JSON report (report_json.h): each takes the finished report
// (verdict included) and returns the document as a string.
//   RenderText      the terminal summary table
//   RenderMarkdown  the same as GitHub Markdown (--markdown)
//   RenderJUnit     JUnit XML: one testsuite per check, one testcase per prompt (--junit)
//   RenderHtml      one self-contained HTML file: inline CSS and SVG charts, no
//                   scripts, no network requests (--html, `bitparity report`)
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace bitparity {

std::string RenderText(const nlohmann::json& report, bool color);
std::string RenderMarkdown(const nlohmann::json& report);
std::string RenderJUnit(const nlohmann::json& report);
std::string RenderHtml(const nlohmann::json& report);

// Text for XML and HTML (text and attribute values): & < > " ' escaped, the
// control characters XML 1.0 forbids replaced by spaces.
std::string XmlEscape(const std::string& s);
// Shared by the renderers: a figure as text ("0.0123", "1.2e-07", "n/a" for null).
std::string Fig(const nlohmann::json& v, int precision = 4);
// "side A: bitparity-native 0.1.0 (avx512) at 127.0.0.1:5000"
std::string SideLine(const nlohmann::json& report, const char* side);
// The side's model lint findings from its GetModelInfo (model.lint_findings), one
// line each: "warning TOKENIZER_PRE_MISSING: ... (fix: ...)"; empty when none.
std::vector<std::string> SideLintLines(const nlohmann::json& report, const char* side);
// What the servers went through and how the run survived it ("" when nothing
// happened): "survived: A 0 prompt retries, 3 server retries, 4 worker
// restarts; B ...; 1 prompt missing (p7)".
std::string ResilienceLine(const nlohmann::json& report);
// The verdict in one word, from its exit code: "PASS" (0), "FAIL" (1: the
// engines disagree) or "ERROR" (2: incomplete results).
std::string VerdictWord(const nlohmann::json& verdict);

}  // namespace bitparity
