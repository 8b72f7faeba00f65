#include "services/common/metrics.h"

#include <exception>

#include "absl/strings/str_cat.h"

namespace bitparity {
namespace {

prometheus::Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

prometheus::Histogram::BucketBoundaries RateBuckets() {
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000};
}

}  // namespace

ServiceMetrics::ServiceMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(prometheus::BuildCounter()
                    .Name("bitnet_requests_total")
                    .Help("Finished bitnet.v1.Engine requests by RPC and status code")
                    .Register(*registry_)),
      errors_(prometheus::BuildCounter()
                  .Name("bitnet_request_errors_total")
                  .Help("Finished requests with a non-OK status, by RPC and code")
                  .Register(*registry_)),
      duration_(prometheus::BuildHistogram()
                    .Name("bitnet_request_duration_seconds")
                    .Help("Time from receiving a request to finishing its response")
                    .Register(*registry_)),
      in_flight_(prometheus::BuildGauge()
                     .Name("bitnet_requests_in_flight")
                     .Help("Evaluating requests running now")
                     .Register(*registry_)
                     .Add({})),
      queue_depth_(prometheus::BuildGauge()
                       .Name("bitnet_queue_depth")
                       .Help("Evaluating requests waiting for a slot")
                       .Register(*registry_)
                       .Add({})),
      prompt_tokens_(prometheus::BuildCounter()
                         .Name("bitnet_prompt_tokens_total")
                         .Help("Input tokens evaluated (EvalLogits, EvalTrace, prefill)")
                         .Register(*registry_)
                         .Add({})),
      generated_tokens_(prometheus::BuildCounter()
                            .Name("bitnet_generated_tokens_total")
                            .Help("Tokens generated")
                            .Register(*registry_)
                            .Add({})),
      decode_rate_(prometheus::BuildHistogram()
                       .Name("bitnet_decode_tokens_per_second")
                       .Help("Decode speed of each Generate request")
                       .Register(*registry_)
                       .Add({}, RateBuckets())),
      prefill_rate_(prometheus::BuildHistogram()
                        .Name("bitnet_prefill_tokens_per_second")
                        .Help("Prompt evaluation speed of each evaluating request")
                        .Register(*registry_)
                        .Add({}, RateBuckets())),
      worker_retries_(prometheus::BuildCounter()
                          .Name("bitnet_worker_retries_total")
                          .Help("Requests run again on a fresh worker process after the worker "
                                "serving them died")
                          .Register(*registry_)),
      head_requests_(prometheus::BuildCounter()
                         .Name("bitnet_output_head_requests_total")
                         .Help("Generate requests by the output head that served them")
                         .Register(*registry_)),
      head_candidates_(prometheus::BuildHistogram()
                           .Name("bitnet_screened_head_candidates")
                           .Help("Per screened token: output head rows recomputed exactly")
                           .Register(*registry_)
                           .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512,
                                                                            1024, 2048, 4096, 8192, 16384, 32768})),
      head_fallbacks_(prometheus::BuildCounter()
                          .Name("bitnet_screened_head_fallbacks_total")
                          .Help("Screened tokens that ran the full exact output head instead")
                          .Register(*registry_)
                          .Add({})),
      batch_sequences_(prometheus::BuildHistogram()
                           .Name("bitnet_batch_sequences")
                           .Help("Requests evaluated together in one step of the batch loop")
                           .Register(*registry_)
                           .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64})),
      batch_step_seconds_(prometheus::BuildHistogram()
                              .Name("bitnet_batch_step_seconds")
                              .Help("Time of one step of the batch loop (forward pass and sampling)")
                              .Register(*registry_)
                              .Add({}, LatencyBuckets())),
      batch_queue_depth_(prometheus::BuildGauge()
                             .Name("bitnet_batch_queue_depth")
                             .Help("Generate requests waiting for a place in the batch")
                             .Register(*registry_)
                             .Add({})),
      batch_kv_bytes_(prometheus::BuildGauge()
                          .Name("bitnet_batch_kv_cache_bytes")
                          .Help("KV cache bytes held by the requests in the batch")
                          .Register(*registry_)
                          .Add({})),
      batch_tokens_(prometheus::BuildCounter()
                        .Name("bitnet_batch_tokens_total")
                        .Help("Tokens evaluated by the batch loop, by kind (decode, prefill)")
                        .Register(*registry_)),
      batch_decode_rate_(prometheus::BuildGauge()
                             .Name("bitnet_batch_decode_tokens_per_second")
                             .Help("Decode tokens per second of the last step (all its requests together)")
                             .Register(*registry_)
                             .Add({})) {}

void ServiceMetrics::RequestDone(const std::string& rpc, const std::string& code, double seconds) {
  requests_.Add({{"rpc", rpc}, {"code", code}}).Increment();
  if (code != "OK") errors_.Add({{"rpc", rpc}, {"code", code}}).Increment();
  duration_.Add({{"rpc", rpc}}, LatencyBuckets()).Observe(seconds);
}

void ServiceMetrics::SetGate(int running, int waiting) {
  in_flight_.Set(running);
  queue_depth_.Set(waiting);
}

void ServiceMetrics::PromptTokens(int64_t n) { prompt_tokens_.Increment(static_cast<double>(n)); }
void ServiceMetrics::GeneratedTokens(int64_t n) {
  generated_tokens_.Increment(static_cast<double>(n));
}
void ServiceMetrics::DecodeRate(double tokens_per_s) { decode_rate_.Observe(tokens_per_s); }
void ServiceMetrics::PrefillRate(double tokens_per_s) { prefill_rate_.Observe(tokens_per_s); }
void ServiceMetrics::WorkerRetries(const std::string& rpc, int n) {
  worker_retries_.Add({{"rpc", rpc}}).Increment(n);
}

void ServiceMetrics::OutputHead(const std::string& head, const std::vector<int32_t>& candidates, int fallbacks) {
  head_requests_.Add({{"head", head}}).Increment();
  for (int32_t c : candidates) head_candidates_.Observe(c);
  if (fallbacks > 0) head_fallbacks_.Increment(fallbacks);
}

void ServiceMetrics::BatchStep(const BatchStepReport& step) {
  batch_sequences_.Observe(step.sequences);
  batch_step_seconds_.Observe(step.seconds);
  batch_queue_depth_.Set(step.waiting);
  batch_kv_bytes_.Set(static_cast<double>(step.kv_bytes));
  if (step.decode_rows > 0) batch_tokens_.Add({{"kind", "decode"}}).Increment(step.decode_rows);
  if (step.prefill_tokens > 0) batch_tokens_.Add({{"kind", "prefill"}}).Increment(step.prefill_tokens);
  if (step.seconds > 0) batch_decode_rate_.Set(step.decode_rows / step.seconds);
}

absl::StatusOr<int> ServiceMetrics::Expose(const std::string& host, int port) {
  // prometheus-cpp (civetweb) reports a failed bind by throwing; keep it inside.
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(absl::StrCat(host, ":", port));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", host, ":", port, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(absl::StrCat("metrics: no port bound on ", host, ":", port));
  }
  return ports.front();
}

}  // namespace bitparity
