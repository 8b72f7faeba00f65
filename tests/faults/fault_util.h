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
#include "tests/common/child_process.h"

extern char** environ;

namespace bitparity::faults {

using std::chrono::milliseconds;

inline const std::string kModel = std::string(BITPARITY_FIXTURES_DIR) + "/models/tiny-b158.gguf";
inline const std::string kBinDir = BITPARITY_BIN_DIR;
inline const std::string kNativeWorker = kBinDir + "/bitparity-native-worker";

// The whole file as bytes ("" if unreadable).
inline std::string ReadFile(const std::string& path) { return testing::ReadLogFile(path); }

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

using testing::ChildProcess;
using testing::DescribeWait;

}  // namespace bitparity::faults
