#include "orchestrator/compare_command.h"

#include <cstdio>

#include "orchestrator/baseline.h"
#include "orchestrator/report_json.h"
#include "orchestrator/reports.h"
#include "orchestrator/verdict.h"

namespace bitparity {

bool WriteOutputs(const nlohmann::json& report, const OutputOptions& out) {
  struct File {
    const std::string& path;
    std::string (*render)(const nlohmann::json&);
    const char* what;
  };
  const File files[] = {
      {out.json_path, [](const nlohmann::json& r) { return r.dump(1) + "\n"; }, "JSON report"},
      {out.junit_path, &RenderJUnit, "JUnit XML"},
      {out.html_path, &RenderHtml, "HTML report"},
      {out.markdown_path, &RenderMarkdown, "Markdown report"},
  };
  bool ok = true;
  for (const File& f : files) {
    if (f.path.empty()) continue;
    absl::Status s = WriteTextFile(f.path, f.render(report));
    if (!s.ok()) {
      std::fprintf(stderr, "bitparity: %s\n", std::string(s.message()).c_str());
      ok = false;
    } else {
      std::fprintf(stderr, "bitparity: wrote the %s to %s\n", f.what, f.path.c_str());
    }
  }
  return ok;
}

int CompareAndReport(EngineClient& a, EngineClient& b, const PromptSet& prompts, const CompareOptions& options,
                     const OutputOptions& out, const std::string& command_line, Progress* progress) {
  // Read the baseline first: a bad path is a usage error, found before the run.
  nlohmann::json old;
  if (!out.baseline_path.empty()) {
    auto b_or = ReadJsonFile(out.baseline_path);
    absl::Status s = b_or.ok() ? CheckReportVersion(*b_or, out.baseline_path) : b_or.status();
    if (!s.ok()) {
      std::fprintf(stderr, "bitparity: --baseline: %s\n", std::string(s.message()).c_str());
      return 2;
    }
    old = *b_or;
  }
  absl::StatusOr<CompareRun> run = RunCompare(a, b, prompts, options, progress);
  if (!run.ok()) {
    std::fprintf(stderr, "bitparity: %s\n", std::string(run.status().message()).c_str());
    return 2;
  }
  nlohmann::json report = BuildReport(*run, command_line);
  if (!out.shard.is_null()) report["shard"] = out.shard;
  if (!out.baseline_path.empty()) ApplyBaseline(&report, old, out.baseline_path, options.thresholds);
  FinalizeVerdict(&report);
  const bool wrote = WriteOutputs(report, out);
  if (out.summary) std::fputs(RenderText(report, out.color).c_str(), stdout);
  std::fflush(stdout);
  const int code = report["verdict"]["exit_code"].get<int>();
  return wrote ? code : std::max(code, 2);
}

}  // namespace bitparity
