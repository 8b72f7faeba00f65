#include "benchmarks/end_to_end/native_child.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "benchmarks/end_to_end/child_process.h"
#include "base/status_macros.h"

namespace bitparity::bench {
namespace {

std::vector<std::string> BaseArgs(const std::string& self, const char* command, const NativeOptions& o) {
  return {self, command, "--model", o.model, "--threads", std::to_string(o.threads), "--kernels", o.kernels, "--head", o.head,
          "--weight-memory", o.weight_memory};
}

absl::StatusOr<nlohmann::json> RunAndParse(const std::vector<std::string>& argv, double timeout_s,
                                           ChildResult& result) {
  ASSIGN_OR_RETURN(result, RunChild(argv, timeout_s));
  if (!result.ok()) {
    return absl::InternalError(absl::StrCat("native engine run failed (", argv[1], "): ", result.Describe()));
  }
  nlohmann::json j = nlohmann::json::parse(result.out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat("native engine run printed no JSON object: '", result.out, "'"));
  }
  return j;
}

}  // namespace

std::string FormatTests(const std::vector<BenchTest>& tests) {
  std::vector<std::string> names;
  for (const BenchTest& t : tests) names.push_back(t.Name());
  return absl::StrJoin(names, ",");
}

absl::StatusOr<std::vector<BenchTest>> ParseTests(const std::string& s) {
  std::vector<BenchTest> tests;
  for (absl::string_view name : absl::StrSplit(s, ',', absl::SkipEmpty())) {
    int n = 0;
    if (name.size() < 3 || !absl::SimpleAtoi(name.substr(2), &n) || n <= 0 ||
        (name.substr(0, 2) != "pp" && name.substr(0, 2) != "tg")) {
      return absl::InvalidArgumentError(absl::StrCat("bad test name '", name, "' (want ppN or tgN)"));
    }
    tests.push_back(name[0] == 'p' ? BenchTest{n, 0} : BenchTest{0, n});
  }
  if (tests.empty()) return absl::InvalidArgumentError("no tests given");
  return tests;
}

absl::StatusOr<NativeSpeedRun> RunNativeSpeedChild(const std::string& self, const NativeOptions& options,
                                                   const std::vector<BenchTest>& tests, double timeout_s) {
  std::vector<std::string> argv = BaseArgs(self, kNativeSpeedCommand, options);
  argv.insert(argv.end(), {"--tests", FormatTests(tests)});
  ChildResult child;
  ASSIGN_OR_RETURN(nlohmann::json j, RunAndParse(argv, timeout_s, child));
  NativeSpeedRun run;
  try {
    run.kernels = j.at("kernels").get<std::string>();
    run.weight_memory = j.at("weight_memory").get<std::string>();
    const nlohmann::json& results = j.at("tests");
    if (results.size() != tests.size()) return absl::DataLossError("native engine run: wrong number of tests");
    for (size_t i = 0; i < tests.size(); ++i) {
      TestSample s;
      s.test = {results[i].at("n_prompt").get<int>(), results[i].at("n_gen").get<int>()};
      s.ns = results[i].at("ns").get<double>();
      s.tokens_per_s = results[i].at("tokens_per_s").get<double>();
      if (!(s.test == tests[i])) return absl::DataLossError("native engine run: tests out of order");
      run.samples.push_back(s);
    }
    if (j.contains("head_candidates") && j.at("head_candidates").is_object()) {
      const nlohmann::json& c = j.at("head_candidates");
      run.candidates = CandidateStats{c.at("median").get<int>(), c.at("p99").get<int>(), c.at("max").get<int>(),
                                      c.at("tokens").get<int>()};
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("native engine run: unexpected JSON: ", e.what()));
  }
  return run;
}

absl::StatusOr<LoadSample> RunNativeLoadChild(const std::string& self, const NativeOptions& options,
                                              int context, double timeout_s) {
  std::vector<std::string> argv = BaseArgs(self, kNativeLoadCommand, options);
  argv.insert(argv.end(), {"--context", std::to_string(context)});
  ChildResult child;
  ASSIGN_OR_RETURN(nlohmann::json j, RunAndParse(argv, timeout_s, child));
  LoadSample s;
  s.peak_rss_kib = child.peak_rss_kib;
  if (!j.contains("load_ms") || !j["load_ms"].is_number()) {
    return absl::DataLossError("native load run: no load_ms in its JSON");
  }
  s.load_ms = j["load_ms"].get<double>();
  return s;
}

}  // namespace bitparity::bench
