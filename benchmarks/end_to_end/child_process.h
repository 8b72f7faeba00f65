// File: benchmarks/end_to_end/child_process.h
//
// Runs a program as a child process (posix_spawn, no shell) with stdin from
// /dev/null and stdout/stderr captured, and reports its peak RSS from wait4's
// rusage. Both engines are measured through this one function, so their memory
// figures come from the same kernel accounting (ru_maxrss of the exec'd program).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace bitparity::bench {

struct ChildResult {
  int exit_code = -1;    // -1 when killed by a signal
  int term_signal = 0;   // the signal that ended it, 0 if it exited
  std::string out, err;  // everything it wrote
  int64_t peak_rss_kib = 0;
  double wall_ms = 0;
  bool ok() const { return exit_code == 0; }
  // "exit 3" / "signal 9", plus the last stderr lines, for error messages.
  std::string Describe() const;
};

// argv[0] is the program path. `env` empty: inherit this process's environment.
// Errors: NotFound / PermissionDenied (cannot spawn), DeadlineExceeded (still
// running after timeout_s; it is killed), Internal (temp files, wait4).
absl::StatusOr<ChildResult> RunChild(const std::vector<std::string>& argv, double timeout_s,
                                     const std::vector<std::string>& env = {});

// The absolute path of the running executable (/proc/self/exe), for re-execution.
absl::StatusOr<std::string> SelfExecutable();

// True when `path` names an executable regular file.
bool IsExecutableFile(const std::string& path);

}  // namespace bitparity::bench
