#include "benchmarks/end_to_end/bandwidth_child.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "benchmarks/end_to_end/child_process.h"
#include "base/status_macros.h"

namespace bitparity::bench {

absl::StatusOr<double> RunReadBandwidthChild(const std::string& self, uint64_t buffer_bytes, int threads,
                                             int passes, double timeout_s) {
  const std::vector<std::string> argv = {self, kReadBandwidthCommand, "--bytes", std::to_string(buffer_bytes),
                                         "--threads", std::to_string(threads), "--passes", std::to_string(passes)};
  ASSIGN_OR_RETURN(ChildResult child, RunChild(argv, timeout_s));
  if (!child.ok()) return absl::InternalError(absl::StrCat("bandwidth measurement failed: ", child.Describe()));
  double gbps = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(child.out), &gbps) || !(gbps > 0)) {
    return absl::DataLossError(absl::StrCat("bandwidth measurement printed '", child.out, "', not a rate"));
  }
  return gbps;
}

}  // namespace bitparity::bench
