// File: benchmarks/end_to_end/bitnet_cpp_tools.h
//
// Finds bitnet.cpp's llama-bench (speed) and llama-cli (load time, peak RSS) in a
// built checkout ($BITNET_CPP_DIR/build/bin), or says why bitnet.cpp cannot be
// measured, so the report can state it instead of silently showing one engine.
#pragma once

#include <string>

namespace bitparity::bench {

struct BitnetCppTools {
  std::string dir;          // the checkout, "" when not given
  std::string llama_bench;  // "" when absent: bitnet.cpp speed not measured
  std::string llama_cli;    // "" when absent: bitnet.cpp load/RSS not measured
  std::string why_not;      // set when llama_bench is ""
  std::string why_no_cli;   // set when llama_cli is ""
  bool has_bench() const { return !llama_bench.empty(); }
  bool has_cli() const { return !llama_cli.empty(); }
};

// `dir` is the --bitnet-cpp-dir flag, or $BITNET_CPP_DIR when the flag is empty.
BitnetCppTools LocateBitnetCpp(const std::string& dir);

}  // namespace bitparity::bench
