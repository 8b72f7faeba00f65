// File: orchestrator/demo.h
//
// `bitparity demo`, the README's first command. With no addresses it:
//   1. writes a small model with bitnet-synth on first use (into the cache dir,
//      $XDG_CACHE_HOME/bitparity or ~/.cache/bitparity);
//   2. starts two servers on free loopback ports: A = bitnet-native-server on its
//      fastest kernels; B = bitnet-cpp-server when it was built next to this binary,
//      else bitnet-native-server on its scalar reference kernels (and says so);
//   3. runs `compare` on the built-in prompts and writes the HTML (plus JSON and
//      Markdown) report, printing its path;
//   4. stops both servers on exit, on Ctrl-C and on SIGTERM.
#pragma once

#include <string>

#include "orchestrator/compare.h"

namespace bitparity {

struct DemoOptions {
  std::string cache_dir;     // "" = $XDG_CACHE_HOME/bitparity, ~/.cache/bitparity
  std::string out_dir;       // "" = <cache_dir>/demo
  std::string model;         // "" = the synth model
  std::string bin_dir;       // "" = this executable's folder
  int server_threads = 0;    // 0 = the servers' default
  int prompts = 0;           // 0 = all built-in prompts
  bool color = false;
  CompareOptions compare;
};

// The exit code (as compare), or 2 when the servers cannot be started.
int RunDemo(const DemoOptions& options, const std::string& command_line, Progress* progress);

// Where the demo caches its model: $XDG_CACHE_HOME/bitparity, else ~/.cache/bitparity,
// else /tmp/bitparity-cache.
std::string DefaultCacheDir();

}  // namespace bitparity
