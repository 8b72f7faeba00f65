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
#include <ostream>
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

using testing::Child;
using testing::Children;
using testing::Describe;

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

// A worker executable the pool can run: our engine (bitparity-native-worker, every
// build) or bitnet.cpp (bitnet-cpp-worker, built when CMake was given
// -DBITNET_CPP_DIR; ctest then sets BITNET_CPP_DIR for this binary).
struct WorkerKind {
  std::string name;  // "native", "bitnet_cpp": the test-name suffix
  std::string executable;
  std::string label;
};
// Test names and ctest's listing show the kind by name, not as bytes.
inline void PrintTo(const WorkerKind& kind, std::ostream* os) { *os << kind.name; }
inline const WorkerKind kNativeWorkerKind = {"native", kNativeWorker, "bitparity worker"};
inline const WorkerKind kBitnetCppWorkerKind = {"bitnet_cpp", kBinDir + "/bitnet-cpp-worker",
                                                "bitnet.cpp worker"};

// Why a test over `kind` cannot run here ("" = it can): bitnet-cpp-worker needs
// BITNET_CPP_DIR in the environment and the binary built; skipped by name otherwise,
// as the other bitnet.cpp tests are.
inline std::string WorkerKindUnavailable(const WorkerKind& kind) {
  if (kind.name == kBitnetCppWorkerKind.name) {
    const char* dir = std::getenv("BITNET_CPP_DIR");
    if (dir == nullptr || *dir == '\0') {
      return "bitnet-cpp-worker: BITNET_CPP_DIR is not set (configure with "
             "-DBITNET_CPP_DIR=<built bitnet.cpp checkout>; ctest then sets it)";
    }
  }
  if (access(kind.executable.c_str(), X_OK) != 0) {
    return kind.executable + " is not built" +
           (kind.name == kBitnetCppWorkerKind.name ? " (configure with -DBITNET_CPP_DIR)" : "");
  }
  return "";
}

// Pool options for `kind` on `model` (1 thread, max context 512), quick to restart.
inline worker::WorkerBackendOptions WorkerOptions(const WorkerKind& kind, const std::string& model,
                                                  int workers) {
  worker::WorkerBackendOptions o = NativeWorkerOptions(model, workers);
  o.pool.command.executable = kind.executable;
  o.pool.label = kind.label;
  return o;
}

using testing::ChildProcess;
using testing::DescribeWait;

}  // namespace bitparity::faults
