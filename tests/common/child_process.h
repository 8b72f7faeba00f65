// File: tests/common/child_process.h
//
// A binary run as a child process of the test, stderr in a file inside its own
// temporary folder, stdout to /dev/null; killed and reaped when dropped. Used by the
// tests that run our servers and workers as real processes. Children() lists this
// process's children (to prove that no worker is leaked or left a zombie).
//
//   ChildProcess server(kBinDir + "/bitnet-native-server", {"--port-file", pf, ...});
//   int port = server.WaitPort(pf);   // 0 if it exited first or after the timeout
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace bitparity::testing {

using std::chrono::milliseconds;

inline std::string ReadLogFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A child process of this test process as /proc shows it.
struct Child {
  int pid;
  char state;  // 'Z' zombie, 'T' stopped, ...
};

// Every child process of `parent`, from /proc.
inline std::vector<Child> ChildrenOf(int parent) {
  std::vector<Child> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  const int self = parent;
  while (dirent* e = readdir(d)) {
    const int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 4 >= stat.size()) continue;
    if (std::atoi(stat.c_str() + paren + 4) == self) out.push_back({pid, stat[paren + 2]});
  }
  closedir(d);
  return out;
}

// Every child process of this test process.
inline std::vector<Child> Children() { return ChildrenOf(getpid()); }

inline std::string Describe(const std::vector<Child>& children) {
  std::string s;
  for (const Child& c : children) absl::StrAppend(&s, c.pid, ":", std::string(1, c.state), " ");
  return s;
}

// A server (or any) binary as a child process, stderr to a file, in its own
// temporary folder; killed and reaped when dropped.
class ChildProcess {
 public:
  ChildProcess(const std::string& exe, std::vector<std::string> args) {
    char tmpl[] = "/tmp/bp-child-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    log_file_ = dir_ + "/stderr";
    args.insert(args.begin(), exe);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (posix_spawn(&pid_, exe.c_str(), &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~ChildProcess() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (!dir_.empty()) std::system(absl::StrCat("rm -rf ", dir_).c_str());
  }

  bool spawned() const { return pid_ > 0; }
  int pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  void Signal(int sig) { ::kill(pid_, sig); }

  // The port written to `port_file` (0 after `timeout` or if the process ended).
  int WaitPort(const std::string& port_file, milliseconds timeout = std::chrono::seconds(60)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) return port;
      if (Exited()) return 0;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return 0;
  }

  bool Exited() {
    if (!reaped_ && waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
    return reaped_;
  }

  // The wait status once it exited, or nullopt after `timeout`.
  std::optional<int> WaitExit(milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (!Exited()) {
      if (std::chrono::steady_clock::now() > until) return std::nullopt;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return status_;
  }

  std::string Log() const { return ReadLogFile(log_file_); }

  // Waits (up to `timeout`) until the log has a line containing `needle`; that line, or "".
  std::string WaitLogLine(const std::string& needle, milliseconds timeout = std::chrono::seconds(20)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    do {
      std::istringstream log(Log());
      for (std::string line; std::getline(log, line);) {
        if (line.find(needle) != std::string::npos) return line;
      }
      std::this_thread::sleep_for(milliseconds(10));
    } while (std::chrono::steady_clock::now() < until);
    return "";
  }

 private:
  std::string dir_, log_file_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// "exit code N" / "signal N" for a wait status.
inline std::string DescribeWait(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exit code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return absl::StrCat("wait status ", status);
}

}  // namespace bitparity::testing
