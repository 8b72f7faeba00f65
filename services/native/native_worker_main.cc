// bitparity-native-worker: the bitparity engine (services/native's NativeBackend,
// the same code bitnet-native-server runs in process) behind the worker protocol.
// It lets every build exercise the supervisor (framing, pool, restarts, kills)
// with a real engine, with or without a bitnet.cpp checkout.
#include <chrono>
#include <thread>

#include "CLI/CLI.hpp"
#include "cpp_ref_adapter/worker_main.h"
#include "services/native/native_flags.h"

int main(int argc, char** argv) {
  bitparity::NativeFlags flags;
  int startup_delay_ms = 0;
  return bitparity::worker::WorkerMain(
      argc, argv,
      "bitparity-native-worker: the bitparity engine as a worker process "
      "(cpp_ref_adapter/worker_protocol.h)",
      [&](CLI::App& app) {
        bitparity::AddNativeFlags(app, &flags);
        app.add_option("--startup-delay-ms", startup_delay_ms,
                       "Test only: wait this long before loading the model, to stand in for "
                       "a slow load (tests/cpp_ref_adapter)")
            ->check(CLI::Range(0, 24 * 3600 * 1000));
      },
      [&] {
        if (startup_delay_ms > 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(startup_delay_ms));
        }
        // One request at a time per worker: one session is all it needs.
        return bitparity::LoadNativeBackend(flags, /*max_concurrent=*/1);
      });
}
