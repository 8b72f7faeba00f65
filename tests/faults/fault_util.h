// File: tests/faults/fault_util.h
//
// Shared by the fault tests: this process's child processes (to prove that no
// worker is leaked or left a zombie), a server binary run as a child process
// with its stderr in a file, and worker-pool options for bitparity-native-worker
// (our engine as a worker: the supervisor is tested without bitnet.cpp).
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
#include "cpp_ref_adapter/worker_backend.h"

extern char** environ;

namespace bitparity::faults {

using std::chrono::milliseconds;

inline const std::string kModel = std::string(BITPARITY_FIXTURES_DIR) + "/models/tiny-b158.gguf";
inline const std::string kBinDir = BITPARITY_BIN_DIR;
inline const std::string kNativeWorker = kBinDir + "/bitparity-native-worker";

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Child {
  int pid;
  char state;  // 'Z' zombie, 'T' stopped, ...
};

// Every child process of this test process, from /proc.
inline std::vector<Child> Children() {
  std::vector<Child> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  const int self = getpid();
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

inline std::string Describe(const std::vector<Child>& children) {
  std::string s;
  for (const Child& c : children) absl::StrAppend(&s, c.pid, ":", std::string(1, c.state), " ");
  return s;
}

// Pool options for bitparity-native-worker on `model`, quick to restart.
inline worker::WorkerBackendOptions NativeWorkerOptions(const std::string& model, int workers) {
  worker::WorkerBackendOptions o;
  o.pool.command.executable = kNativeWorker;
  o.pool.command.args = {"--model", model, "--threads", "1", "--max-context", "512"};
  o.pool.workers = workers;
  o.pool.label = "bitparity worker";
  o.pool.backoff_initial = milliseconds(50);
  o.pool.backoff_max = milliseconds(400);
  o.pool.hello_timeout = std::chrono::seconds(60);
  o.model_path = model;
  o.start_timeout = std::chrono::seconds(60);
  return o;
}

// A server (or any) binary as a child process, stderr to a file, in its own
// temporary folder; killed and reaped when dropped.
class ChildProcess {
 public:
  ChildProcess(const std::string& exe, std::vector<std::string> args) {
    char tmpl[] = "/tmp/bp-fault-XXXXXX";
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

  std::string Log() const { return ReadFile(log_file_); }

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

}  // namespace bitparity::faults
