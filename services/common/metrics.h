// File: services/common/metrics.h
//
// The server's Prometheus metrics (prometheus-cpp), exposed in the text format
// on an optional HTTP port (/metrics):
//
//   bitnet_requests_total{rpc, code}             finished requests by status code
//   bitnet_request_errors_total{rpc, code}       the non-OK ones
//   bitnet_request_duration_seconds{rpc}         histogram, receipt to last byte handed to gRPC
//   bitnet_requests_in_flight                    evaluating requests running
//   bitnet_queue_depth                           evaluating requests waiting for a slot
//   bitnet_prompt_tokens_total                   tokens evaluated as input (eval and prefill)
//   bitnet_generated_tokens_total                tokens generated
//   bitnet_decode_tokens_per_second              histogram, per Generate request
//   bitnet_prefill_tokens_per_second             histogram, per Generate/Eval request
//   bitnet_worker_retries_total{rpc}             requests run again on a fresh worker
//                                                after theirs died (worker backends)
//   bitnet_output_head_requests_total{head}      Generate requests by the output head that
//                                                served them (exact, screened, int8)
//   bitnet_screened_head_candidates              histogram, per screened token: head rows
//                                                recomputed exactly (engine/model/screened_head.h)
//   bitnet_screened_head_fallbacks_total         screened tokens that ran the full exact head
//   bitnet_batch_sequences                       histogram, per step of a batching backend:
//                                                requests in the step (continuous batching)
//   bitnet_batch_step_seconds                    histogram, time of each step
//   bitnet_batch_queue_depth                     requests waiting for a place in the batch
//   bitnet_batch_kv_cache_bytes                  KV caches held by the running requests
//   bitnet_batch_tokens_total{kind}              tokens evaluated by steps (decode, prefill)
//   bitnet_batch_decode_tokens_per_second        aggregate decode rate of the last step
//
// Thread safety: all methods may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "services/common/engine_backend.h"

namespace bitparity {

class ServiceMetrics {
 public:
  ServiceMetrics();

  void RequestDone(const std::string& rpc, const std::string& code, double seconds);
  void SetGate(int running, int waiting);
  void PromptTokens(int64_t n);
  void GeneratedTokens(int64_t n);
  void DecodeRate(double tokens_per_s);
  void PrefillRate(double tokens_per_s);
  void WorkerRetries(const std::string& rpc, int n);
  void OutputHead(const std::string& head, const std::vector<int32_t>& candidates, int fallbacks);
  void BatchStep(const BatchStepReport& step);

  // Serves /metrics on host:port (port 0 = any free port). Returns the bound port.
  absl::StatusOr<int> Expose(const std::string& host, int port);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& errors_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Gauge& in_flight_;
  prometheus::Gauge& queue_depth_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& generated_tokens_;
  prometheus::Histogram& decode_rate_;
  prometheus::Histogram& prefill_rate_;
  prometheus::Family<prometheus::Counter>& worker_retries_;
  prometheus::Family<prometheus::Counter>& head_requests_;
  prometheus::Histogram& head_candidates_;
  prometheus::Counter& head_fallbacks_;
  prometheus::Histogram& batch_sequences_;
  prometheus::Histogram& batch_step_seconds_;
  prometheus::Gauge& batch_queue_depth_;
  prometheus::Gauge& batch_kv_bytes_;
  prometheus::Family<prometheus::Counter>& batch_tokens_;
  prometheus::Gauge& batch_decode_rate_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace bitparity
