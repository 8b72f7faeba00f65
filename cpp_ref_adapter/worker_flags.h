// File: cpp_ref_adapter/worker_flags.h
//
// The engine flags of the worker-backed servers (bitnet-cpp-server,
// bitparity-worker-server), named as bitnet-native-server's so that both kinds
// of server start the same way:
//   --model/-m, --threads/-t, --max-context     passed through to every worker
//   --workers N                                 worker processes (default 1)
//   --worker PATH                               worker executable (default: the
//                                               one installed beside the server)
//   --override-kv KEY=TYPE:VALUE (repeatable)   metadata overrides, checked here and
//                                               passed through to every worker
//   --worker-arg ARG (repeatable)               extra worker arguments, e.g.
//                                               --worker-arg=--kernels=scalar
//   --worker-start-timeout S, --worker-backoff-max S, --worker-stopped-timeout S,
//   --worker-stderr
//   --parallel N                                N requests at once in one worker by
//                                               continuous batching (bitnet-cpp-worker)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cpp_ref_adapter/worker_backend.h"

namespace CLI {
class App;
}

namespace bitparity::worker {

struct WorkerServerFlags {
  std::string model;
  int threads = 0;
  int max_context = 0;
  int workers = 1;
  std::string worker;  // empty: default_worker beside this executable
  std::vector<std::string> worker_args;
  std::vector<std::string> override_kv;  // KEY=TYPE:VALUE (base/metadata_override.h)
  double start_timeout_s = 120;
  double backoff_max_s = 10;
  double stopped_timeout_s = 5;
  bool worker_stderr = false;
  int parallel = 1;  // > 1: bitnet-cpp-worker --parallel N (worker_mux.h)
};

// `default_worker`: file name of the worker looked up beside /proc/self/exe.
void AddWorkerServerFlags(CLI::App& app, WorkerServerFlags* flags, const std::string& default_worker);

// The pool options the flags describe (worker command with its arguments).
// InvalidArgument for a malformed --override-kv, before any worker starts.
absl::StatusOr<WorkerBackendOptions> MakeWorkerBackendOptions(const WorkerServerFlags& flags,
                                                              const std::string& default_worker,
                                                              const std::string& label);

// MakeWorkerBackendOptions + WorkerBackend::Start (`stop`: see there).
absl::StatusOr<std::unique_ptr<EngineBackend>> LoadWorkerBackend(const WorkerServerFlags& flags,
                                                                 const std::string& default_worker,
                                                                 const std::string& label,
                                                                 const StopFn& stop = nullptr);

// The folder of the running executable ("" if /proc/self/exe is unreadable).
std::string ExecutableDir();

}  // namespace bitparity::worker
