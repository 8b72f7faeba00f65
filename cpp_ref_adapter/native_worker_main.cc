// bitparity-native-worker: the bitparity engine (services/native's NativeBackend,
// the same code bitnet-native-server runs in process) behind the worker protocol.
// It lets every build exercise the supervisor (framing, pool, restarts, kills)
// with a real engine, with or without a bitnet.cpp checkout.
#include "CLI/CLI.hpp"
#include "cpp_ref_adapter/worker_main.h"
#include "services/native/native_flags.h"

int main(int argc, char** argv) {
  bitparity::NativeFlags flags;
  return bitparity::worker::WorkerMain(
      argc, argv,
      "bitparity-native-worker: the bitparity engine as a worker process "
      "(cpp_ref_adapter/worker_protocol.h)",
      [&](CLI::App& app) { bitparity::AddNativeFlags(app, &flags); },
      // One request at a time per worker: one session is all it needs.
      [&] { return bitparity::LoadNativeBackend(flags, /*max_concurrent=*/1); });
}
