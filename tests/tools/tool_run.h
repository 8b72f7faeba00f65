// File: tests/tools/tool_run.h
//
// Runs one of the built tools (BITPARITY_BIN_DIR/<tool>) as a real process with
// posix_spawn (no shell, so arguments arrive byte for byte), capturing stdout and
// stderr through files in the test's temp dir.
//
//   ToolRun r = RunTool("bitnet-run", {"lint", "--model", path});
//   EXPECT_EQ(r.exit_code, 0) << r.err;
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

extern char** environ;

namespace bitparity::testing {

struct ToolRun {
  int exit_code = -1;  // -1: did not exit normally
  std::string out, err;
};

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline ToolRun RunTool(const std::string& tool, const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string stem = absl::StrCat(::testing::TempDir(), "/tool_run_", getpid(), "_", counter++);
  const std::string out_path = stem + ".out", err_path = stem + ".err";
  const std::string exe = absl::StrCat(BITPARITY_BIN_DIR, "/", tool);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  ToolRun r;
  const int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    r.err = absl::StrCat("posix_spawn(", exe, ") failed: ", std::strerror(rc));
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  r.out = ReadWholeFile(out_path);
  r.err = ReadWholeFile(err_path);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return r;
}

}  // namespace bitparity::testing
