#include "tests/layering/include_rules.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>

namespace bitparity::layering {
namespace {

namespace fs = std::filesystem;

struct Rule {
  std::string folder;                    // files under it follow the rule
  std::vector<std::string> forbidden;    // include path prefixes they may not use
  std::string why;
};

// Include prefixes of every part of ours, and of the RPC stack.
const std::vector<std::string> kRpc = {"grpc/", "grpcpp/", "grpc++/", "google/protobuf/"};

std::vector<Rule> Rules() {
  auto with_rpc = [](std::vector<std::string> v) {
    v.insert(v.end(), kRpc.begin(), kRpc.end());
    return v;
  };
  return {
      {"base/",
       with_rpc({"engine/", "services/", "cpp_ref_adapter/", "orchestrator/", "proto/", "bitnet/",
                 "tests/", "benchmarks/", "fuzz/"}),
       "base/ is the leaf: it includes nothing of ours but base/, and no gRPC or protobuf"},
      {"engine/",
       with_rpc({"services/", "cpp_ref_adapter/", "orchestrator/", "proto/", "bitnet/", "tests/",
                 "benchmarks/", "fuzz/"}),
       "engine/ sees base/ and engine/ only: no service code, contract, gRPC or protobuf"},
      {"services/common/",
       {"engine/", "services/native/", "cpp_ref_adapter/", "orchestrator/", "tests/"},
       "services/common is shared by both servers and never uses the engine"},
      {"services/native/",
       {"orchestrator/", "tests/"},
       "the native server never includes the orchestrator"},
      {"cpp_ref_adapter/",
       {"engine/", "services/native/", "orchestrator/", "tests/"},
       "the bitnet.cpp side never borrows our engine"},
      {"orchestrator/",
       {"engine/", "services/", "cpp_ref_adapter/", "tests/"},
       "the orchestrator compares engines through the bitnet.v1 contract only"},
  };
}

bool IsSource(const fs::path& p) {
  const std::string ext = p.extension().string();
  return ext == ".h" || ext == ".cc" || ext == ".cpp" || ext == ".hpp";
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

std::vector<IncludeViolation> FindLayeringViolations(const std::string& root) {
  static const std::regex kInclude(R"(^\s*#\s*include\s*[<"]([^">]+)[">])");
  std::vector<IncludeViolation> out;
  for (const Rule& rule : Rules()) {
    const fs::path dir = fs::path(root) / rule.folder;
    if (!fs::is_directory(dir)) continue;
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (entry.is_regular_file() && IsSource(entry.path())) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      const std::string rel = fs::relative(file, root).generic_string();
      std::ifstream in(file);
      if (!in) {
        out.push_back({rel, 0, "", "unreadable"});
        continue;
      }
      std::string line;
      for (int n = 1; std::getline(in, line); ++n) {
        std::smatch m;
        if (!std::regex_search(line, m, kInclude)) continue;
        const std::string included = m[1].str();
        for (const std::string& prefix : rule.forbidden) {
          if (StartsWith(included, prefix)) {
            out.push_back({rel, n, included, rule.why});
            break;
          }
        }
      }
    }
  }
  return out;
}

std::string Describe(const IncludeViolation& v) {
  return v.file + ":" + std::to_string(v.line) + ": includes \"" + v.included + "\": " + v.rule;
}

}  // namespace bitparity::layering
