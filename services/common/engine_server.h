// File: services/common/engine_server.h
//
// Starting, serving and stopping a bitnet.v1 server, the same way for every
// backend. A server binary's main only parses flags and calls RunEngineServer:
//
//   int main(int argc, char** argv) {
//     CLI::App app{"..."};
//     ServerOptions server;  AddServerFlags(app, &server);
//     ... backend flags ...
//     CLI11_PARSE(app, argc, argv);
//     return RunEngineServer(server, [&](const CancelledFn& stop) {
//       return LoadMyBackend(..., stop);
//     });
//   }
//
// Order of events (each one JSON line on stderr, see request_log.h):
//   1. bind the listening port (127.0.0.1:0 picks a free one; --port-file
//      receives it), health NOT_SERVING, every RPC UNAVAILABLE "loading";
//   2. load the backend (on its own thread), health SERVING; from then on
//      health follows the backend's readiness (EngineBackend::
//      SetReadinessObserver: a worker server is NOT_SERVING while all its
//      workers are dead and waiting to restart);
//   3. on SIGTERM or SIGINT: health NOT_SERVING, new evaluating requests get
//      UNAVAILABLE, running ones get --drain-seconds to finish and are then
//      cancelled (generation returns what it has, finish reason CANCELLED);
//      the server stops and the process exits 0.
// A signal during step 2 does not wait for the load: the loader is told to stop
// (a worker pool kills its starting workers), gets kStopLoadWaitMs to return,
// and the process exits 0 (event "interrupted", then "stopped"); a load that
// cannot be interrupted (a large model being read) is abandoned at that point.
// Start or load errors exit 1.
//
// TLS: --tls-cert and --tls-key (PEM) serve TLS; --tls-client-ca also requires
// and verifies client certificates signed by that CA (mutual TLS).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "grpcpp/server.h"
#include "services/common/engine_backend.h"
#include "services/common/engine_service.h"
#include "services/common/metrics.h"
#include "services/common/request_log.h"
#include "services/common/validation.h"

namespace CLI {
class App;
}

namespace bitparity {

struct ServerOptions {
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 = any free port
  ServiceLimits limits;
  std::string tls_cert_file;       // PEM certificate chain
  std::string tls_key_file;        // PEM private key
  std::string tls_client_ca_file;  // PEM CA: require and verify client certificates
  int metrics_port = -1;           // -1 = no metrics endpoint; 0 = any free port
  std::string port_file;           // receives the bound port, for scripts and tests
  double drain_seconds = 10;       // grace for running requests on shutdown
};

// Adds --listen, --max-concurrent, --queue, --max-message-mb, --tls-*,
// --metrics-port, --port-file and --drain-seconds to `app`.
void AddServerFlags(CLI::App& app, ServerOptions* options);

// A started gRPC server around one EngineService.
class EngineServer {
 public:
  // Binds and starts serving (health NOT_SERVING until SetBackend).
  // InvalidArgument for bad TLS options, NotFound for unreadable files,
  // Unavailable when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<EngineServer>> Start(const ServerOptions& options,
                                                             RequestLog* log);
  ~EngineServer();

  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  EngineService& service() { return *service_; }
  ServiceMetrics& metrics() { return *metrics_; }

  // Installs the backend and reports SERVING while the backend says it is
  // ready (EngineBackend::SetReadinessObserver), until the drain.
  void SetBackend(std::shared_ptr<EngineBackend> backend);
  // Health NOT_SERVING for good; new evaluating requests get UNAVAILABLE.
  void BeginDrain();
  // BeginDrain, give running work `grace_seconds` to finish, cancel what is
  // left (generation answers with what it made, finish reason CANCELLED), then
  // stop gRPC. During the grace period the port stays open, and new evaluating
  // requests get UNAVAILABLE, so clients move elsewhere instead of timing out.
  void Shutdown(double grace_seconds);

 private:
  EngineServer() = default;
  void OnBackendReadiness(bool ready);
  // SERVING when a backend is installed and ready and no drain has begun.
  void UpdateHealth() ABSL_EXCLUSIVE_LOCKS_REQUIRED(health_mu_);

  std::unique_ptr<ServiceMetrics> metrics_;
  std::unique_ptr<EngineService> service_;
  std::unique_ptr<grpc::Server> server_;
  RequestLog* log_ = nullptr;
  int port_ = 0;
  int metrics_port_ = -1;
  bool stopped_ = false;
  std::shared_ptr<EngineBackend> backend_;  // to remove our observer on shutdown

  std::mutex health_mu_;
  bool has_backend_ ABSL_GUARDED_BY(health_mu_) = false;
  bool backend_ready_ ABSL_GUARDED_BY(health_mu_) = false;
  bool draining_ ABSL_GUARDED_BY(health_mu_) = false;
  int serving_ ABSL_GUARDED_BY(health_mu_) = -1;  // last status set: -1 none, 0, 1
};

// Loads the engine. `stop` turns true when a stop signal arrives during the
// load; a loader that can, polls it and returns early (any status).
using BackendLoader =
    std::function<absl::StatusOr<std::unique_ptr<EngineBackend>>(const CancelledFn& stop)>;

// How long RunEngineServer waits for an interrupted load to return before it
// abandons it (see the top of the file).
inline constexpr int64_t kStopLoadWaitMs = 2000;

// The whole life of a server process (see the top of this file). Returns the
// exit code: 0 after a signal-initiated shutdown (also during the load), 1 when
// start or load fails.
int RunEngineServer(const ServerOptions& options, const BackendLoader& load);

}  // namespace bitparity
