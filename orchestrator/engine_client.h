// File: orchestrator/engine_client.h
//
// A checked client of one bitnet.v1.Engine server (one "side" of a comparison).
// Every call has a deadline, retries RESOURCE_EXHAUSTED (the contract says the
// caller may retry later) with backoff, checks the reply's completeness (sizes,
// positions, ids) and returns an absl::Status whose message names the side, the
// address and the RPC, e.g.
//   "side A (127.0.0.1:50051) EvalLogits: UNAVAILABLE: failed to connect ...".
// Thread safety: one EngineClient may be used from many threads at once (gRPC
// stubs are thread-safe); a LogitsStream belongs to one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bitnet/v1/engine.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace bitparity {

struct Endpoint {
  std::string label = "A";  // "A" or "B" in messages
  std::string address;      // host:port
  bool tls = false;         // TLS with the system roots unless ca_file is set
  std::string ca_file;      // PEM roots (implies tls)
  std::string cert_file;    // PEM client certificate (mutual TLS; implies tls)
  std::string key_file;     // PEM client key
  std::string server_name;  // TLS name override (e.g. "localhost" for a test cert)
};

struct ClientOptions {
  double call_timeout_s = 300;    // per RPC
  double connect_timeout_s = 10;  // the first GetModelInfo
  int max_retries = 30;           // RESOURCE_EXHAUSTED retries
};

// absl::Status from a grpc::Status, with a prefix.
absl::Status FromGrpc(const grpc::Status& s, const std::string& prefix);

// The label ("A", "B") of the side whose call failed with `s`, from the payload
// an EngineClient attaches to its failures; "" when none (not a client's error).
std::string FailedSide(const absl::Status& s);

// One server-streaming EvalLogits call, read position by position.
class LogitsStream {
 public:
  // Next position into *out; false at the end (then call Finish) or on error.
  bool Next(bitnet::v1::PositionLogits* out);
  // The first message's header fields (valid after the first Next()).
  const std::vector<int32_t>& token_ids() const { return token_ids_; }
  int n_vocab() const { return n_vocab_; }
  const bitnet::v1::EvalTimings& timings() const { return timings_; }
  absl::Status Finish();

 private:
  friend class EngineClient;
  const class EngineClient* client_ = nullptr;
  std::string prefix_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReader<bitnet::v1::EvalLogitsStreamResponse>> reader_;
  std::vector<int32_t> token_ids_;
  int n_vocab_ = 0;
  bitnet::v1::EvalTimings timings_;
  bool first_ = true;
};

// Per-token callback of a streamed generation: the token and its arrival time.
using TokenCallback = std::function<void(const bitnet::v1::GeneratedToken&, std::chrono::steady_clock::time_point)>;

class EngineClient {
 public:
  // Opens the channel and calls GetModelInfo (within connect_timeout_s) to prove
  // the server is there; Unavailable with a clear message when it is not.
  static absl::StatusOr<std::unique_ptr<EngineClient>> Connect(const Endpoint& endpoint,
                                                               const ClientOptions& options);

  const Endpoint& endpoint() const { return endpoint_; }
  const bitnet::v1::GetModelInfoResponse& info() const { return info_; }
  // The channel (TLS and message limits as configured), for callers that must
  // see raw gRPC codes (the conformance suite).
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }
  std::string Describe() const;  // "side A (host:port)"

  absl::StatusOr<bitnet::v1::GetModelInfoResponse> GetModelInfo();
  absl::StatusOr<std::vector<int32_t>> Tokenize(const std::string& text);
  absl::StatusOr<std::string> Detokenize(const std::vector<int32_t>& ids);
  // A chat as Input.chat sees it: ApplyChatTemplate, then Tokenize of the text
  // with parse_special (BOS as the model's default).
  absl::StatusOr<std::vector<int32_t>> TokenizeChat(const bitnet::v1::ChatMessages& chat);
  // ApplyChatTemplate, with the raw gRPC status: a refusal is an answer to
  // compare too (chat_compare.h).
  grpc::Status ApplyChatTemplate(const bitnet::v1::ApplyChatTemplateRequest& req,
                                 bitnet::v1::ApplyChatTemplateResponse* resp);
  // Opens the stream; completeness is checked by the caller per position.
  absl::StatusOr<std::unique_ptr<LogitsStream>> OpenLogitsStream(const bitnet::v1::EvalLogitsRequest& req);
  absl::StatusOr<bitnet::v1::EvalTraceResponse> EvalTrace(const bitnet::v1::EvalTraceRequest& req);
  absl::StatusOr<bitnet::v1::GenerateResponse> Generate(const bitnet::v1::GenerateRequest& req);
  // GenerateStream; returns the summary (its tokens filled in from the stream).
  absl::StatusOr<bitnet::v1::GenerateResponse> GenerateStream(const bitnet::v1::GenerateRequest& req,
                                                              const TokenCallback& on_token);

  // Calls the server answered only after running them again on a fresh worker
  // process (the `retried_after_worker_crash` trailer), summed over this
  // client's finished calls.
  int64_t server_retries() const { return server_retries_.load(); }

 private:
  friend class LogitsStream;
  EngineClient() = default;
  void SetDeadline(grpc::ClientContext* ctx, double seconds) const;
  std::string Prefix(const char* rpc) const;
  // Runs `call` until it is not RESOURCE_EXHAUSTED (bounded).
  grpc::Status WithRetry(const std::function<grpc::Status(grpc::ClientContext*)>& call) const;
  // A failed call as an absl::Status naming this side and the RPC, tagged with
  // the side (FailedSide).
  absl::Status Failure(const grpc::Status& s, const char* rpc) const;
  absl::Status Tagged(absl::Status s) const;
  // Adds a finished call's `retried_after_worker_crash` trailer to server_retries().
  void NoteTrailers(const grpc::ClientContext& ctx) const;

  Endpoint endpoint_;
  ClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<bitnet::v1::Engine::Stub> stub_;
  bitnet::v1::GetModelInfoResponse info_;
  mutable std::atomic<int64_t> server_retries_{0};
};

}  // namespace bitparity
