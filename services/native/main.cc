// bitnet-native-server: serves bitnet.v1.Engine (proto/bitnet/v1/engine.proto)
// with the bitparity engine. See services/common/engine_server.h for the
// lifecycle (health while loading, SIGTERM draining, exit codes).
#include "CLI/CLI.hpp"
#include "services/common/engine_server.h"
#include "services/native/native_flags.h"

int main(int argc, char** argv) {
  CLI::App app{"bitnet-native-server: the bitnet.v1.Engine gRPC service on the bitparity engine"};
  bitparity::ServerOptions server;
  bitparity::NativeFlags native;
  bitparity::AddServerFlags(app, &server);
  bitparity::AddNativeFlags(app, &native);
  CLI11_PARSE(app, argc, argv);
  // Requests the batch loop can hold must get past the admission gate: unless told
  // otherwise, as many run at once as one batch holds.
  if (app.count("--max-concurrent") == 0 && native.max_batch > server.limits.max_concurrent) {
    server.limits.max_concurrent = native.max_batch;
  }
  // The model load cannot stop midway: a stop signal during it abandons it
  // (RunEngineServer exits after kStopLoadWaitMs).
  return bitparity::RunEngineServer(server, [&](const bitparity::CancelledFn&) {
    return bitparity::LoadNativeBackend(native, server.limits.max_concurrent);
  });
}
