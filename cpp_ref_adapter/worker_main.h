// File: cpp_ref_adapter/worker_main.h
//
// The worker side of the protocol (worker_protocol.h, worker.proto), the same
// for every engine: a worker executable is an EngineBackend plus
//
//   int main(int argc, char** argv) {
//     MyFlags flags;
//     return bitparity::worker::WorkerMain(argc, argv, "my-worker: ...",
//         [&](CLI::App& app) { AddMyFlags(app, &flags); },   // --model, --threads, --max-context
//         [&] { return LoadMyBackend(flags); });
//   }
//
// Every worker takes at least --model, --threads and --max-context (the names
// of bitnet-native-server's flags), because the supervisor passes those.
// WorkerMain parses the flags, loads the backend, says Hello
// on stdout (or sends an Error frame and exits 1), then answers requests from
// stdin one at a time until stdin closes (exit 0). Anything the engine prints to
// stdout is redirected to stderr, so the protocol stream stays clean.
//
// A worker dies with its supervisor (PR_SET_PDEATHSIG). A one-request-at-a-time
// worker never needs a cancel message: the supervisor cancels a request by
// killing the worker (a Cancel frame reaching it is ignored). A worker that
// serves several requests at once (bitnet-cpp-worker --parallel N) brings its
// own serving loop (ServeFn) and answers the other kinds through AnswerRequest.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cpp_ref_adapter/worker.pb.h"
#include "services/common/engine_backend.h"

namespace CLI {
class App;
}

namespace bitparity::worker {

using AddFlagsFn = std::function<void(CLI::App& app)>;
using LoadBackendFn = std::function<absl::StatusOr<std::unique_ptr<EngineBackend>>()>;
// Serves requests from in_fd on out_fd after the Hello; returns the exit code.
using ServeFn = std::function<int(EngineBackend& backend, int in_fd, int out_fd)>;
// Sends one response frame.
using SendFn = std::function<absl::Status(const bitnet::worker::v1::Response&)>;

// One request of any kind but Cancel: partial frames through `send`, then the
// final frame (returned, not sent; an Error frame when the backend failed).
bitnet::worker::v1::Response AnswerRequest(EngineBackend& backend,
                                           const bitnet::worker::v1::Request& req,
                                           const SendFn& send);

// Answers requests read from in_fd on out_fd until in_fd closes. Returns the
// process exit code: 0 at end of input, 2 on a broken stream.
int ServeRequests(EngineBackend& backend, int in_fd, int out_fd);

// The whole life of a worker process (see the top of this file).
// `description` starts with the executable's name.
// `serve` (may be null: ServeRequests) replaces the one-at-a-time loop.
int WorkerMain(int argc, char** argv, const std::string& description, const AddFlagsFn& add_flags,
               const LoadBackendFn& load, const ServeFn& serve = nullptr);

}  // namespace bitparity::worker
