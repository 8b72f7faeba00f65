#include "benchmarks/end_to_end/llama_bench_runner.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "benchmarks/end_to_end/child_process.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace bitparity::bench {

absl::StatusOr<LlamaBenchOutput> ParseLlamaBenchJson(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::DataLossError("llama-bench output is not JSON");
  if (!j.is_array()) return absl::DataLossError("llama-bench output is not a JSON array of tests");
  LlamaBenchOutput out;
  try {
    for (const nlohmann::json& t : j) {
      LlamaBenchTest r;
      r.test = {t.at("n_prompt").get<int>(), t.at("n_gen").get<int>()};
      r.n_threads = t.at("n_threads").get<int>();
      r.samples_ts = t.at("samples_ts").get<std::vector<double>>();
      r.samples_ns = t.at("samples_ns").get<std::vector<double>>();
      r.avg_ts = t.at("avg_ts").get<double>();
      r.stddev_ts = t.at("stddev_ts").get<double>();
      if (r.samples_ts.empty()) return absl::DataLossError(absl::StrCat("llama-bench test ", r.test.Name(), " has no samples"));
      for (double v : r.samples_ts) {
        if (!(v > 0)) return absl::DataLossError(absl::StrCat("llama-bench test ", r.test.Name(), " has a rate <= 0"));
      }
      if (out.build_commit.empty() && t.contains("build_commit")) out.build_commit = t["build_commit"].get<std::string>();
      if (out.model_type.empty() && t.contains("model_type")) out.model_type = t["model_type"].get<std::string>();
      out.tests.push_back(std::move(r));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::DataLossError(absl::StrCat("llama-bench output: ", e.what()));
  }
  return out;
}

absl::StatusOr<std::vector<TestSample>> RunLlamaBench(const std::string& llama_bench, const std::string& model,
                                                      int threads, const std::vector<BenchTest>& tests,
                                                      double timeout_s, std::string* build_commit) {
  std::vector<std::string> pp, tg;
  for (const BenchTest& t : tests) (t.is_decode() ? tg : pp).push_back(std::to_string(t.is_decode() ? t.n_gen : t.n_prompt));
  // llama-bench skips a 0 entry, so "-p 0" runs no pp test (and "-n 0" no tg test).
  const std::vector<std::string> argv = {
      llama_bench, "-m", model, "-t", std::to_string(threads), "-r", "1", "-o", "json",
      "-p", pp.empty() ? "0" : absl::StrJoin(pp, ","), "-n", tg.empty() ? "0" : absl::StrJoin(tg, ",")};
  ASSIGN_OR_RETURN(ChildResult child, RunChild(argv, timeout_s));
  if (!child.ok()) return absl::InternalError(absl::StrCat("llama-bench failed: ", child.Describe()));
  ASSIGN_OR_RETURN(LlamaBenchOutput parsed, ParseLlamaBenchJson(child.out));
  if (build_commit != nullptr) *build_commit = parsed.build_commit;
  std::vector<TestSample> samples;
  for (const BenchTest& want : tests) {
    const LlamaBenchTest* found = nullptr;
    for (const LlamaBenchTest& t : parsed.tests) {
      if (t.test == want) found = &t;
    }
    if (found == nullptr) return absl::DataLossError(absl::StrCat("llama-bench output has no ", want.Name(), " test"));
    TestSample s;
    s.test = want;
    s.tokens_per_s = found->samples_ts.front();
    s.ns = found->samples_ns.empty() ? 0 : found->samples_ns.front();
    samples.push_back(s);
  }
  return samples;
}

}  // namespace bitparity::bench
