#include "benchmarks/end_to_end/llama_cli_load.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "benchmarks/end_to_end/child_process.h"
#include "base/status_macros.h"

namespace bitparity::bench {

absl::StatusOr<double> ParseLlamaLoadTimeMs(const std::string& log) {
  static constexpr char kKey[] = "load time =";
  const size_t at = log.rfind(kKey);
  if (at == std::string::npos) return absl::NotFoundError("no 'load time = ... ms' line in llama-cli's output");
  const char* start = log.c_str() + at + sizeof(kKey) - 1;
  char* end = nullptr;
  const double ms = std::strtod(start, &end);
  if (end == start || !(ms >= 0)) return absl::NotFoundError("llama-cli's 'load time =' line has no number");
  return ms;
}

absl::StatusOr<LoadSample> RunLlamaCliLoad(const std::string& llama_cli, const std::string& model, int threads,
                                           int context, double timeout_s) {
  const std::vector<std::string> argv = {llama_cli, "-m", model, "-p", "Hello", "-n", "1",
                                         "-c", std::to_string(context), "-t", std::to_string(threads),
                                         "--temp", "0", "--no-warmup"};
  ASSIGN_OR_RETURN(ChildResult child, RunChild(argv, timeout_s));
  if (!child.ok()) return absl::InternalError(absl::StrCat("llama-cli failed: ", child.Describe()));
  LoadSample s;
  ASSIGN_OR_RETURN(s.load_ms, ParseLlamaLoadTimeMs(child.err + child.out));
  s.peak_rss_kib = child.peak_rss_kib;
  return s;
}

}  // namespace bitparity::bench
