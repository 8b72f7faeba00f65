// bitnet-cpp-server and bitparity-worker-server: bitnet.v1.Engine
// (proto/bitnet/v1/engine.proto) served by the shared service code over engine
// worker processes (worker_backend.h). The two binaries are this file built
// with a different default worker (BP_DEFAULT_WORKER): bitnet-cpp-worker
// (the user's bitnet.cpp build) or bitparity-native-worker (our engine).
// Lifecycle as every bitnet.v1 server: services/common/engine_server.h; health
// stays NOT_SERVING until the first worker has loaded its model, and is
// NOT_SERVING again while no worker is ready (all dead, waiting to restart).
#include "CLI/CLI.hpp"
#include "cpp_ref_adapter/worker_flags.h"
#include "services/common/engine_server.h"

#ifndef BP_SERVER_NAME
#error "BP_SERVER_NAME, BP_DEFAULT_WORKER and BP_WORKER_LABEL are set by CMake"
#endif

int main(int argc, char** argv) {
  CLI::App app{BP_SERVER_NAME ": the bitnet.v1.Engine gRPC service over " BP_WORKER_LABEL
                              " processes (default worker: " BP_DEFAULT_WORKER ")"};
  bitparity::ServerOptions server;
  bitparity::worker::WorkerServerFlags flags;
  bitparity::AddServerFlags(app, &server);
  bitparity::worker::AddWorkerServerFlags(app, &flags, BP_DEFAULT_WORKER);
  CLI11_PARSE(app, argc, argv);
  // One request per worker (--parallel per worker): without an explicit limit,
  // admit as many as the workers serve at once.
  if (app.count("--max-concurrent") == 0) server.limits.max_concurrent = flags.workers * flags.parallel;
  // A stop signal during start-up ends the wait for the first worker at once.
  return bitparity::RunEngineServer(server, [&](const bitparity::CancelledFn& stop) {
    return bitparity::worker::LoadWorkerBackend(flags, BP_DEFAULT_WORKER, BP_WORKER_LABEL, stop);
  });
}
