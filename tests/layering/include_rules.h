// File: tests/layering/include_rules.h
//
// The layering of bitparity as data, checked against every #include in the tree:
//
//   base/             includes nothing of ours but base/, and no gRPC or protobuf
//   engine/           base/ and engine/ only: no service, contract, gRPC or protobuf
//   services/common/  base/, services/common/ and the contract: never the engine
//   services/native/  the one part that uses the engine: the native server, and the
//                     native worker (the engine behind cpp_ref_adapter's worker protocol)
//   cpp_ref_adapter/  base/, services/common/ and its own files: never the engine
//   orchestrator/     base/, its own files and the contract: it compares through it
//
// Tests, benchmarks and fuzzers may include any part. The build enforces the same
// rules through each target's include view (bp_include_view in CMakeLists.txt);
// this check names the file and line, and also covers headers no target compiles.
#pragma once

#include <string>
#include <vector>

namespace bitparity::layering {

struct IncludeViolation {
  std::string file;      // relative to the root, e.g. "services/common/conversion.cc"
  int line = 0;          // 1-based
  std::string included;  // the path between the quotes or brackets
  std::string rule;      // which rule it breaks, in words
};

// Every #include under `root`'s layered folders that breaks a rule, in file and
// line order. Unreadable files are reported as violations too (rule "unreadable").
std::vector<IncludeViolation> FindLayeringViolations(const std::string& root);

// "file:line: includes \"x\": rule" for a failure message.
std::string Describe(const IncludeViolation& v);

}  // namespace bitparity::layering
