// File: services/common/engine_service.h
//
// The one implementation of bitnet.v1.Engine, shared by every server. Each
// handler: validates the request (validation.h), waits for a slot at the
// admission gate (the evaluating RPCs only), calls the EngineBackend, converts
// the result (conversion.h), and returns the backend's absl::Status unchanged as
// the gRPC status. Every request gets one log line (request_log.h) and updates
// the metrics (metrics.h).
//
// Cancellation: a running request polls Abandoned() between layers and decode
// steps. A passed deadline ends it with DEADLINE_EXCEEDED, a client cancel with
// CANCELLED (the message keeps the backend's own account of the stop, e.g. the
// worker it killed), and CancelRunning() (shutdown) ends evaluation with CANCELLED and
// generation with an OK response whose finish reason is CANCELLED (the caller
// keeps what was generated).
//
// Lifecycle: until SetBackend(), every RPC but the health service answers
// UNAVAILABLE ("model is loading"). BeginDrain() refuses new evaluating work
// with UNAVAILABLE and lets running work finish.
//
// Thread safety: gRPC calls the handlers from many threads; the service's own
// state is atomics and the gate's lock.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "bitnet/v1/engine.grpc.pb.h"
#include "services/common/admission_gate.h"
#include "services/common/engine_backend.h"
#include "services/common/metrics.h"
#include "services/common/request_log.h"
#include "services/common/validation.h"

namespace bitparity {

class EngineService final : public bitnet::v1::Engine::Service {
 public:
  // `metrics` and `log` must outlive the service.
  EngineService(const ServiceLimits& limits, ServiceMetrics* metrics, RequestLog* log);

  // Installs the loaded engine (once).
  void SetBackend(std::shared_ptr<EngineBackend> backend);
  bool ready() const;

  void BeginDrain();
  void CancelRunning();
  // True when no evaluating request runs (waits up to timeout_ms).
  bool WaitIdle(int64_t timeout_ms);

  const ServiceLimits& limits() const { return limits_; }
  AdmissionGate& gate() { return gate_; }

  grpc::Status GetModelInfo(grpc::ServerContext* ctx, const bitnet::v1::GetModelInfoRequest* req,
                            bitnet::v1::GetModelInfoResponse* resp) override;
  grpc::Status Tokenize(grpc::ServerContext* ctx, const bitnet::v1::TokenizeRequest* req,
                        bitnet::v1::TokenizeResponse* resp) override;
  grpc::Status ApplyChatTemplate(grpc::ServerContext* ctx,
                                 const bitnet::v1::ApplyChatTemplateRequest* req,
                                 bitnet::v1::ApplyChatTemplateResponse* resp) override;
  grpc::Status Detokenize(grpc::ServerContext* ctx, const bitnet::v1::DetokenizeRequest* req,
                          bitnet::v1::DetokenizeResponse* resp) override;
  grpc::Status EvalLogits(grpc::ServerContext* ctx, const bitnet::v1::EvalLogitsRequest* req,
                          bitnet::v1::EvalLogitsResponse* resp) override;
  grpc::Status EvalLogitsStream(
      grpc::ServerContext* ctx, const bitnet::v1::EvalLogitsRequest* req,
      grpc::ServerWriter<bitnet::v1::EvalLogitsStreamResponse>* writer) override;
  grpc::Status EvalTrace(grpc::ServerContext* ctx, const bitnet::v1::EvalTraceRequest* req,
                         bitnet::v1::EvalTraceResponse* resp) override;
  grpc::Status Generate(grpc::ServerContext* ctx, const bitnet::v1::GenerateRequest* req,
                        bitnet::v1::GenerateResponse* resp) override;
  grpc::Status GenerateStream(
      grpc::ServerContext* ctx, const bitnet::v1::GenerateRequest* req,
      grpc::ServerWriter<bitnet::v1::GenerateStreamResponse>* writer) override;

 private:
  class Call;
  using PositionSink = std::function<absl::Status(bitnet::v1::PositionLogits&& position)>;
  using TokenSink = std::function<absl::Status(const bitnet::v1::GeneratedToken& token)>;

  absl::StatusOr<std::shared_ptr<EngineBackend>> Backend() const;
  // Shared by EvalLogits and EvalLogitsStream; `header` receives the resolved
  // sequence and mode before the first position.
  absl::Status RunEvalLogits(Call& call, const bitnet::v1::EvalLogitsRequest& req,
                             bool streaming,
                             const std::function<void(const std::vector<int32_t>& ids, int n_vocab,
                                                      bitnet::v1::EvalMode mode)>& header,
                             const PositionSink& sink, bitnet::v1::EvalTimings* timings);
  // Shared by Generate and GenerateStream; `sink` (may be null) gets each token.
  absl::Status RunGenerate(Call& call, const bitnet::v1::GenerateRequest& req,
                           const TokenSink& sink, bitnet::v1::GenerateResponse* resp);

  const ServiceLimits limits_;
  ServiceMetrics* const metrics_;
  RequestLog* const log_;
  AdmissionGate gate_;
  std::atomic<bool> cancel_running_{false};
  std::atomic<uint64_t> next_request_{0};
  const std::string request_prefix_;  // distinguishes this process's request ids

  mutable std::mutex backend_mu_;
  std::shared_ptr<EngineBackend> backend_ ABSL_GUARDED_BY(backend_mu_);
};

}  // namespace bitparity
