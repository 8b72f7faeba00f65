#include "services/common/engine_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"

namespace bitparity {
namespace {

constexpr char kServiceName[] = "bitnet.v1.Engine";
// Extra gRPC threads beyond the evaluating slots and queue: health checks,
// GetModelInfo, Tokenize and the gRPC pollers themselves.
constexpr int kSpareThreads = 32;
// After cancelling, how long running requests get to notice and return.
constexpr int64_t kCancelWaitMs = 5000;
// How long gRPC gets to send the last responses once our work is done.
constexpr auto kFlushResponses = std::chrono::milliseconds(500);

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, ": cannot read '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(const ServerOptions& o) {
  if (o.tls_cert_file.empty() != o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (o.tls_cert_file.empty()) {
    if (!o.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  auto cert = ReadFile(o.tls_cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  auto key = ReadFile(o.tls_key_file, "--tls-key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(
      o.tls_client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!o.tls_client_ca_file.empty()) {
    auto ca = ReadFile(o.tls_client_ca_file, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(ssl);
}

// "host:port" -> host ("[::1]:5" -> "[::1]").
std::string HostOf(const std::string& address) {
  const size_t colon = address.rfind(':');
  return colon == std::string::npos ? address : address.substr(0, colon);
}

absl::Status WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    if (!out) return absl::UnavailableError(absl::StrCat("cannot write '", tmp, "'"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename '", tmp, "' to '", path, "'"));
  }
  return absl::OkStatus();
}

}  // namespace

void AddServerFlags(CLI::App& app, ServerOptions* o) {
  app.add_option("--listen", o->listen, "Address to serve on, host:port (port 0 = any free port)")
      ->capture_default_str();
  app.add_option("--max-concurrent", o->limits.max_concurrent,
                 "Evaluating requests that run at once, each with its own KV cache")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--queue", o->limits.max_queue,
                 "Evaluating requests that may wait for a slot; more get RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  app.add_option_function<int>(
         "--max-message-mb",
         [o](int mb) { o->limits.max_message_bytes = int64_t{mb} << 20; },
         "Largest request or response message, MiB (default 64)")
      ->check(CLI::Range(1, 2047));
  app.add_option("--tls-cert", o->tls_cert_file, "PEM certificate chain: serve TLS");
  app.add_option("--tls-key", o->tls_key_file, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", o->tls_client_ca_file,
                 "PEM CA: require client certificates signed by it (mutual TLS)");
  app.add_option("--metrics-port", o->metrics_port,
                 "Serve Prometheus metrics on this port (host of --listen; 0 = any; -1 = off)")
      ->capture_default_str();
  app.add_option("--port-file", o->port_file, "Write the bound gRPC port to this file");
  app.add_option("--drain-seconds", o->drain_seconds,
                 "On SIGTERM/SIGINT, time running requests get before they are cancelled")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
}

absl::StatusOr<std::unique_ptr<EngineServer>> EngineServer::Start(const ServerOptions& options,
                                                                  RequestLog* log) {
  auto creds = MakeCredentials(options);
  if (!creds.ok()) return creds.status();

  std::unique_ptr<EngineServer> s(new EngineServer());
  s->log_ = log;
  s->metrics_ = std::make_unique<ServiceMetrics>();
  s->service_ = std::make_unique<EngineService>(options.limits, s->metrics_.get(), log);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which lets a second server bind a port
  // that is in use and silently share its traffic; refuse that instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen, *creds, &s->port_);
  builder.RegisterService(s->service_.get());
  const int max_message =
      static_cast<int>(std::min<int64_t>(options.limits.max_message_bytes, INT_MAX));
  builder.SetMaxReceiveMessageSize(max_message);
  builder.SetMaxSendMessageSize(max_message);
  grpc::ResourceQuota quota("bitnet-engine");
  quota.SetMaxThreads(options.limits.max_concurrent + options.limits.max_queue + kSpareThreads);
  builder.SetResourceQuota(quota);
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    if (s->server_ != nullptr) s->server_->Shutdown(std::chrono::system_clock::now());
    s->server_.reset();
    s->stopped_ = true;
    return absl::UnavailableError(absl::StrCat("cannot serve on '", options.listen,
                                               "' (address in use or not valid?)"));
  }
  {
    std::lock_guard<std::mutex> lock(s->health_mu_);
    s->UpdateHealth();  // NOT_SERVING until a backend is installed
  }

  if (options.metrics_port >= 0) {
    auto port = s->metrics_->Expose(HostOf(options.listen), options.metrics_port);
    if (!port.ok()) {
      s->Shutdown(0);
      return port.status();
    }
    s->metrics_port_ = *port;
  }
  return s;
}

EngineServer::~EngineServer() {
  if (!stopped_) Shutdown(0);
}

void EngineServer::UpdateHealth() {
  const bool serving = has_backend_ && backend_ready_ && !draining_;
  if (serving_ == static_cast<int>(serving)) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  health->SetServingStatus(kServiceName, serving);
  // The first NOT_SERVING (start-up) is not news; every later change is.
  if (serving_ != -1 && log_ != nullptr) {
    log_->Write({{"event", "health"}, {"status", serving ? "SERVING" : "NOT_SERVING"}});
  }
  serving_ = serving;
}

void EngineServer::OnBackendReadiness(bool ready) {
  std::lock_guard<std::mutex> lock(health_mu_);
  backend_ready_ = ready;
  UpdateHealth();
}

void EngineServer::SetBackend(std::shared_ptr<EngineBackend> backend) {
  service_->SetBackend(backend);
  backend_ = backend;
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    has_backend_ = true;
    backend_ready_ = true;  // a backend that reports no readiness is always ready
  }
  // Called at once with the backend's current readiness, then on changes. Not
  // under health_mu_: the backend calls the observer under its own lock.
  backend->SetBatchObserver([metrics = metrics_.get()](const BatchStepReport& step) { metrics->BatchStep(step); });
  backend->SetReadinessObserver([this](bool ready) { OnBackendReadiness(ready); });
  std::lock_guard<std::mutex> lock(health_mu_);
  UpdateHealth();
}

void EngineServer::BeginDrain() {
  {
    std::lock_guard<std::mutex> lock(health_mu_);
    draining_ = true;
    UpdateHealth();
  }
  service_->BeginDrain();
}

void EngineServer::Shutdown(double grace_seconds) {
  if (stopped_) return;
  stopped_ = true;
  // New evaluating work is refused (UNAVAILABLE) from here on.
  BeginDrain();
  const int64_t grace_ms = static_cast<int64_t>(grace_seconds * 1000);
  if (!service_->WaitIdle(grace_ms)) {
    if (log_ != nullptr) {
      log_->Write({{"event", "cancelling"},
                   {"running", service_->gate().running()},
                   {"after_s", grace_seconds}});
    }
    // Generation stops within a decode step and answers with what it made.
    service_->CancelRunning();
    service_->WaitIdle(kCancelWaitMs);
  }
  // Only now stop gRPC: with work already finished, a short deadline lets the
  // last responses go out without waiting on idle client connections (gRPC
  // otherwise holds Shutdown for seconds while clients keep channels open).
  server_->Shutdown(std::chrono::system_clock::now() + kFlushResponses);
  server_->Wait();
  // The backend may outlive this server (it is shared): no calls into us later.
  if (backend_ != nullptr) {
    backend_->SetReadinessObserver(nullptr);
    backend_->SetBatchObserver(nullptr);
  }
}

namespace {

// SIGTERM/SIGINT arrive on whichever thread the kernel picks (OpenBLAS starts
// threads before main, so a blocked mask cannot cover them all); the handler
// only writes the signal number into a pipe, which is async-signal-safe.
int g_signal_pipe[2] = {-1, -1};

void OnStopSignal(int sig) {
  const int saved = errno;
  const char c = static_cast<char>(sig);
  ssize_t ignored = write(g_signal_pipe[1], &c, 1);
  (void)ignored;
  errno = saved;
}

// False (logged) when the signal pipe cannot be made.
bool InstallStopSignals(RequestLog& log) {
  if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    log.Write({{"event", "error"}, {"stage", "signals"}, {"message", "pipe2 failed"}});
    return false;
  }
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  return true;
}

const char* SignalName(int sig) { return sig == SIGTERM ? "SIGTERM" : "SIGINT"; }

// What the main thread waits for: a stop signal, or the end of the load.
// Shared, because an abandoned loader thread may still finish after we exit.
struct LoadEvents {
  std::mutex mu;
  std::condition_variable cv;
  int signal = 0;                  // guarded by mu
  bool loaded = false;             // guarded by mu
  absl::StatusOr<std::unique_ptr<EngineBackend>> backend{absl::UnknownError("not loaded")};
  std::atomic<bool> stop_load{false};
};

// Reads the signal pipe on its own thread and records the first stop signal.
class SignalWaiter {
 public:
  explicit SignalWaiter(std::shared_ptr<LoadEvents> events)
      : thread_([this, events] { Run(*events); }) {}
  ~SignalWaiter() {
    if (thread_.joinable()) Stop();
  }
  void Stop() {
    quit_.store(true);
    thread_.join();
  }

 private:
  void Run(LoadEvents& events) {
    while (!quit_.load()) {
      pollfd pfd{g_signal_pipe[0], POLLIN, 0};
      if (poll(&pfd, 1, 200) > 0 && (pfd.revents & POLLIN)) {
        char c = 0;
        if (read(g_signal_pipe[0], &c, 1) == 1) {
          std::lock_guard<std::mutex> lock(events.mu);
          events.signal = static_cast<unsigned char>(c);
          events.cv.notify_all();
          return;
        }
      }
    }
  }

  std::atomic<bool> quit_{false};
  std::thread thread_;  // last: it starts once quit_ exists
};

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// The life of one server process, phase by phase (see engine_server.h).
class ServerLife {
 public:
  explicit ServerLife(const ServerOptions& options) : options_(options) {}
  int Run(const BackendLoader& load);

 private:
  // Starts serving, logs "listening", writes the port file. False (logged, the
  // server shut down) on failure.
  bool StartServer();
  // The load runs on its own thread, so that a stop signal does not wait for it.
  void StartLoader(const BackendLoader& load);
  // The signal that came before the load ended; 0 when the load ended first.
  int WaitForLoadOrSignal();
  // A signal during the load: tell the loader to stop, give it kStopLoadWaitMs.
  int StopDuringLoad(int sig);
  // Installs the loaded backend. False (logged, the server shut down) when the load failed.
  bool InstallBackend();
  // Serves until a stop signal, then drains and stops.
  int ServeUntilSignal();

  const ServerOptions& options_;
  RequestLog log_;
  std::shared_ptr<LoadEvents> events_ = std::make_shared<LoadEvents>();
  std::unique_ptr<SignalWaiter> waiter_;
  std::unique_ptr<EngineServer> server_;
  std::chrono::steady_clock::time_point load_start_;
  std::thread loader_;
};

int ServerLife::Run(const BackendLoader& load) {
  if (!InstallStopSignals(log_)) return 1;
  waiter_ = std::make_unique<SignalWaiter>(events_);
  if (!StartServer()) {
    waiter_->Stop();
    return 1;
  }
  StartLoader(load);
  if (const int sig = WaitForLoadOrSignal(); sig != 0) return StopDuringLoad(sig);
  loader_.join();
  if (!InstallBackend()) {
    waiter_->Stop();
    return 1;
  }
  return ServeUntilSignal();
}

bool ServerLife::StartServer() {
  auto started = EngineServer::Start(options_, &log_);
  if (!started.ok()) {
    log_.Write({{"event", "error"}, {"stage", "start"}, {"message", started.status().ToString()}});
    return false;
  }
  server_ = std::move(*started);
  log_.Write({{"event", "listening"},
              {"address", options_.listen},
              {"port", server_->port()},
              {"tls", !options_.tls_cert_file.empty()},
              {"mtls", !options_.tls_client_ca_file.empty()},
              {"metrics_port", server_->metrics_port()}});
  if (!options_.port_file.empty()) {
    absl::Status st = WritePortFile(options_.port_file, server_->port());
    if (!st.ok()) {
      log_.Write({{"event", "error"}, {"stage", "port-file"}, {"message", st.ToString()}});
      server_->Shutdown(0);
      return false;
    }
  }
  return true;
}

void ServerLife::StartLoader(const BackendLoader& load) {
  load_start_ = std::chrono::steady_clock::now();
  loader_ = std::thread([events = events_, load] {
    absl::StatusOr<std::unique_ptr<EngineBackend>> backend =
        load([events] { return events->stop_load.load(); });
    std::lock_guard<std::mutex> lock(events->mu);
    events->backend = std::move(backend);
    events->loaded = true;
    events->cv.notify_all();
  });
}

int ServerLife::WaitForLoadOrSignal() {
  std::unique_lock<std::mutex> lock(events_->mu);
  events_->cv.wait(lock, [&] { return events_->loaded || events_->signal != 0; });
  return events_->loaded ? 0 : events_->signal;
}

int ServerLife::StopDuringLoad(int sig) {
  log_.Write({{"event", "interrupted"},
              {"stage", "load"},
              {"signal", SignalName(sig)},
              {"load_ms", MsSince(load_start_)}});
  events_->stop_load.store(true);
  bool returned = false;
  {
    std::unique_lock<std::mutex> lock(events_->mu);
    returned = events_->cv.wait_for(lock, std::chrono::milliseconds(kStopLoadWaitMs),
                                    [&] { return events_->loaded; });
  }
  server_->Shutdown(0);
  waiter_->Stop();
  if (!returned) {
    // Nothing left to wait for but the load itself; exit() would run static
    // destructors under the loader's feet, so leave at once.
    log_.Write({{"event", "stopped"}, {"load", "abandoned"}});
    std::fflush(nullptr);
    _exit(0);
  }
  loader_.join();
  events_->backend = absl::CancelledError("load interrupted");  // a loaded backend goes now
  log_.Write({{"event", "stopped"}, {"load", "interrupted"}});
  return 0;
}

bool ServerLife::InstallBackend() {
  absl::StatusOr<std::unique_ptr<EngineBackend>> backend = std::move(events_->backend);
  if (!backend.ok()) {
    log_.Write({{"event", "error"}, {"stage", "load"}, {"message", backend.status().ToString()}});
    server_->Shutdown(0);
    return false;
  }
  const BackendInfo& info = (*backend)->Info();
  log_.Write({{"event", "loaded"},
              {"engine", info.engine_name},
              {"model", info.file_name},
              {"sha256", info.sha256},
              {"simd", info.simd_path},
              {"threads", info.threads},
              {"max_context", info.max_context},
              {"fault_injection", info.fault_injection},
              {"load_ms", MsSince(load_start_)}});
  server_->SetBackend(std::shared_ptr<EngineBackend>(std::move(*backend)));
  return true;
}

int ServerLife::ServeUntilSignal() {
  int sig = 0;
  {
    std::unique_lock<std::mutex> lock(events_->mu);
    events_->cv.wait(lock, [&] { return events_->signal != 0; });
    sig = events_->signal;
  }
  log_.Write({{"event", "draining"},
              {"signal", SignalName(sig)},
              {"running", server_->service().gate().running()},
              {"grace_s", options_.drain_seconds}});
  server_->Shutdown(options_.drain_seconds);
  waiter_->Stop();
  log_.Write({{"event", "stopped"}});
  return 0;
}

}  // namespace

int RunEngineServer(const ServerOptions& options, const BackendLoader& load) {
  return ServerLife(options).Run(load);
}

}  // namespace bitparity
