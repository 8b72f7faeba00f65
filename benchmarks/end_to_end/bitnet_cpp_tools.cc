#include "benchmarks/end_to_end/bitnet_cpp_tools.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "benchmarks/end_to_end/child_process.h"

namespace bitparity::bench {

BitnetCppTools LocateBitnetCpp(const std::string& dir) {
  BitnetCppTools t;
  t.dir = dir;
  if (t.dir.empty()) {
    if (const char* env = std::getenv("BITNET_CPP_DIR")) t.dir = env;
  }
  if (t.dir.empty()) {
    t.why_not = "BITNET_CPP_DIR is not set (nor --bitnet-cpp-dir)";
    t.why_no_cli = t.why_not;
    return t;
  }
  const std::string bench = absl::StrCat(t.dir, "/build/bin/llama-bench");
  const std::string cli = absl::StrCat(t.dir, "/build/bin/llama-cli");
  if (IsExecutableFile(bench)) {
    t.llama_bench = bench;
  } else {
    t.why_not = absl::StrCat(bench, " is missing or not executable (is the checkout built?)");
  }
  if (IsExecutableFile(cli)) {
    t.llama_cli = cli;
  } else {
    t.why_no_cli = absl::StrCat(cli, " is missing or not executable");
  }
  return t;
}

}  // namespace bitparity::bench
