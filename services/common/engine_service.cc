#include "services/common/engine_service.h"

#include <algorithm>

#include <chrono>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "base/utf8.h"
#include "services/common/chat_input.h"
#include "services/common/conversion.h"
#include "services/common/process_memory.h"
#include "services/common/status_convert.h"

namespace bitparity {

namespace v1 = bitnet::v1;
using Clock = std::chrono::steady_clock;

namespace {

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Keeps log lines short when a message quotes a long value.
std::string Truncated(absl::string_view s, size_t max = 300) {
  if (s.size() <= max) return std::string(s);
  return absl::StrCat(s.substr(0, max), "...");
}

}  // namespace

// One request in flight: its id, clock, log fields and cancellation state.
class EngineService::Call {
 public:
  Call(EngineService& service, grpc::ServerContext* ctx, const char* rpc)
      : service_(service), ctx_(ctx), rpc_(rpc), start_(Clock::now()) {
    const auto& md = ctx->client_metadata();
    auto it = md.find("x-request-id");
    if (it != md.end() && !it->second.empty() && it->second.size() <= 128) {
      id_.assign(it->second.data(), it->second.size());
    } else {
      id_ = absl::StrCat(service.request_prefix_, "-", service.next_request_.fetch_add(1));
    }
    ctx->AddInitialMetadata("x-request-id", id_);
    log_["event"] = "request";
    log_["id"] = id_;
    log_["rpc"] = rpc_;
    log_["peer"] = ctx->peer();
  }

  nlohmann::ordered_json& log() { return log_; }
  Clock::time_point start() const { return start_; }
  double ElapsedMs() const { return MsBetween(start_, Clock::now()); }

  // Why this request should stop now, or OK to go on.
  absl::Status Abandoned() const {
    if (service_.cancel_running_.load(std::memory_order_relaxed)) {
      return absl::CancelledError("server is shutting down; request cancelled");
    }
    // The deadline first: gRPC also marks a call past its deadline as cancelled.
    if (std::chrono::system_clock::now() > ctx_->deadline()) {
      return absl::DeadlineExceededError(
          absl::StrFormat("deadline exceeded after %.1f ms", ElapsedMs()));
    }
    if (ctx_->IsCancelled()) return absl::CancelledError("cancelled by the client");
    return absl::OkStatus();
  }

  CancelledFn Cancelled() const {
    return [this] { return !Abandoned().ok(); };
  }

  // A backend's Cancelled status means it saw Cancelled() fire: report why,
  // keeping the backend's own words (a worker backend names the worker it
  // killed and its last stderr lines).
  absl::Status Explain(const absl::Status& st) const {
    if (absl::IsCancelled(st)) {
      absl::Status why = Abandoned();
      if (!why.ok()) return WithDetail(why, st.message());
    }
    return st;
  }

  // `why` with the backend's `detail` appended (when it adds anything).
  static absl::Status WithDetail(const absl::Status& why, absl::string_view detail) {
    if (detail.empty() || detail == why.message()) return why;
    return absl::Status(why.code(), absl::StrCat(why.message(), "; ", detail));
  }

  bool ServerCancelled() const { return service_.cancel_running_.load(); }

  // What the backend noted about the call (a worker backend's retries).
  CallNotes* notes() { return &notes_; }

  grpc::Status Finish(const absl::Status& st) {
    const std::string code = absl::StatusCodeToString(st.code());
    const double total_ms = ElapsedMs();
    if (notes_.worker_retries > 0) {
      // The crash stays visible to the caller, the log and the metrics.
      ctx_->AddTrailingMetadata("retried_after_worker_crash",
                                std::to_string(notes_.worker_retries));
      log_["retried_after_worker_crash"] = notes_.worker_retries;
      log_["retry_reason"] = Truncated(notes_.retry_reason);
      if (service_.metrics_ != nullptr) service_.metrics_->WorkerRetries(rpc_, notes_.worker_retries);
    }
    if (!notes_.output_head.empty()) {
      // Which output head served a Generate (and how hard the screen worked).
      log_["output_head"] = notes_.output_head;
      if (!notes_.head_candidates.empty()) {
        std::vector<int32_t> c = notes_.head_candidates;
        std::sort(c.begin(), c.end());
        log_["head_candidates_median"] = c[c.size() / 2];
        log_["head_candidates_max"] = c.back();
        log_["head_fallbacks"] = notes_.head_fallbacks;
      }
      if (service_.metrics_ != nullptr) {
        service_.metrics_->OutputHead(notes_.output_head, notes_.head_candidates, notes_.head_fallbacks);
      }
    }
    log_["code"] = code;
    if (!st.ok()) log_["message"] = Truncated(st.message());
    log_["total_ms"] = total_ms;
    if (service_.log_ != nullptr) service_.log_->Write(log_);
    if (service_.metrics_ != nullptr) service_.metrics_->RequestDone(rpc_, code, total_ms / 1000.0);
    return ToGrpcStatus(st);
  }

 private:
  EngineService& service_;
  grpc::ServerContext* ctx_;
  const char* rpc_;
  Clock::time_point start_;
  std::string id_;
  nlohmann::ordered_json log_;
  CallNotes notes_;
};

EngineService::EngineService(const ServiceLimits& limits, ServiceMetrics* metrics, RequestLog* log)
    : limits_(limits),
      metrics_(metrics),
      log_(log),
      gate_(limits.max_concurrent, limits.max_queue),
      request_prefix_(absl::StrFormat(
          "%06x", static_cast<uint32_t>(
                      std::chrono::system_clock::now().time_since_epoch().count() & 0xFFFFFF))) {
  if (metrics_ != nullptr) {
    gate_.on_change = [m = metrics_](int running, int waiting) { m->SetGate(running, waiting); };
  }
}

void EngineService::SetBackend(std::shared_ptr<EngineBackend> backend) {
  std::lock_guard<std::mutex> lock(backend_mu_);
  backend_ = std::move(backend);
}

bool EngineService::ready() const {
  std::lock_guard<std::mutex> lock(backend_mu_);
  return backend_ != nullptr;
}

absl::StatusOr<std::shared_ptr<EngineBackend>> EngineService::Backend() const {
  std::lock_guard<std::mutex> lock(backend_mu_);
  if (backend_ == nullptr) {
    return absl::UnavailableError("the model is still loading; retry when health reports SERVING");
  }
  return backend_;
}

void EngineService::BeginDrain() { gate_.Close(); }
void EngineService::CancelRunning() { cancel_running_.store(true); }
bool EngineService::WaitIdle(int64_t timeout_ms) { return gate_.WaitIdle(timeout_ms); }

// ---------------------------------------------------------------------------
// GetModelInfo, Tokenize, Detokenize (not gated: cheap)
// ---------------------------------------------------------------------------

grpc::Status EngineService::GetModelInfo(grpc::ServerContext* ctx, const v1::GetModelInfoRequest*,
                                         v1::GetModelInfoResponse* resp) {
  Call call(*this, ctx, "GetModelInfo");
  absl::Status st = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<EngineBackend> backend, Backend());
    ASSIGN_OR_RETURN(ProcessMemory memory, ReadProcessMemory());
    // Measured here, the same way as this process, whatever the backend.
    const std::vector<ChildMemory> workers = ReadChildrenMemory(backend->WorkerPids());
    FillModelInfo(backend->Info(), limits_, memory, backend->SessionBytes(), workers,
                  backend->PoolStats(), resp);
    return absl::OkStatus();
  }();
  return call.Finish(st);
}

grpc::Status EngineService::Tokenize(grpc::ServerContext* ctx, const v1::TokenizeRequest* req,
                                     v1::TokenizeResponse* resp) {
  Call call(*this, ctx, "Tokenize");
  call.log()["text_bytes"] = req->text().size();
  absl::Status st = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<EngineBackend> backend, Backend());
    const BackendInfo& info = backend->Info();
    if (!info.has_tokenizer) {
      return absl::FailedPreconditionError("this model has no tokenizer");
    }
    const bool add_bos = req->has_add_bos() ? req->add_bos() : info.add_bos;
    // Not gated, and bounded by nothing but the message size otherwise: a text that
    // could not fit max_context is refused without being tokenized, as in the
    // evaluating RPCs (a shorter one is tokenized in full, even past max_context).
    RETURN_IF_ERROR(CheckTextFits(static_cast<int64_t>(req->text().size()), info.max_token_bytes,
                                  add_bos && info.bos_id >= 0 ? 1 : 0, 0, info.max_context,
                                  "text"));
    ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                     backend->Tokenize(req->text(), add_bos, req->parse_special()));
    resp->mutable_ids()->Add(ids.begin(), ids.end());
    if (req->return_pieces()) {
      for (int32_t id : ids) {
        ASSIGN_OR_RETURN(std::string piece, backend->TokenPiece(id));
        resp->add_pieces(std::move(piece));
      }
    }
    call.log()["tokens"] = ids.size();
    return absl::OkStatus();
  }();
  return call.Finish(st);
}

grpc::Status EngineService::Detokenize(grpc::ServerContext* ctx, const v1::DetokenizeRequest* req,
                                       v1::DetokenizeResponse* resp) {
  Call call(*this, ctx, "Detokenize");
  call.log()["tokens"] = req->ids_size();
  absl::Status st = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<EngineBackend> backend, Backend());
    const BackendInfo& info = backend->Info();
    if (!info.has_tokenizer) {
      return absl::FailedPreconditionError("this model has no tokenizer");
    }
    RETURN_IF_ERROR(ValidateTokenIds(req->ids(), info.n_vocab, "ids"));
    ASSIGN_OR_RETURN(std::string text, backend->Detokenize(req->ids()));
    resp->set_text(ToValidUtf8(text));
    resp->set_raw_text(std::move(text));
    return absl::OkStatus();
  }();
  return call.Finish(st);
}

grpc::Status EngineService::ApplyChatTemplate(grpc::ServerContext* ctx,
                                              const v1::ApplyChatTemplateRequest* req,
                                              v1::ApplyChatTemplateResponse* resp) {
  Call call(*this, ctx, "ApplyChatTemplate");
  call.log()["messages"] = req->chat().messages_size();
  absl::Status st = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<EngineBackend> backend, Backend());
    ASSIGN_OR_RETURN(RenderedChat r, RenderChatInput(req->chat(), *backend, "chat"));
    RETURN_IF_ERROR(CheckResponseSize(static_cast<int64_t>(r.text.size()) + 256,
                                      limits_.max_message_bytes, "the rendered conversation",
                                      "send fewer or shorter messages"));
    ASSIGN_OR_RETURN(std::string name, IdentifyChatTemplate(*backend, req->chat().chat_template()));
    call.log()["template"] = name;
    call.log()["text_bytes"] = r.text.size();
    resp->set_text(std::move(r.text));
    resp->set_template_name(std::move(name));
    resp->set_source(ToProtoChatTemplateSource(r.source));
    return absl::OkStatus();
  }();
  return call.Finish(st);
}

// ---------------------------------------------------------------------------
// EvalLogits, EvalLogitsStream
// ---------------------------------------------------------------------------

absl::Status EngineService::RunEvalLogits(
    Call& call, const v1::EvalLogitsRequest& req, bool streaming,
    const std::function<void(const std::vector<int32_t>&, int, v1::EvalMode)>& header,
    const PositionSink& sink, v1::EvalTimings* timings) {
  ASSIGN_OR_RETURN(std::shared_ptr<EngineBackend> backend, Backend());
  const BackendInfo& info = backend->Info();
  ASSIGN_OR_RETURN(BackendEvalMode mode, ResolveEvalMode(req.mode(), "mode"));
  ASSIGN_OR_RETURN(LogitsOutputSpec output, ValidateLogitsOutput(req.output(), info.n_vocab));
  double tokenize_ms = 0;
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, ResolveInput(req.input(), *backend, 0, &tokenize_ms));
  const int n = static_cast<int>(ids.size());
  ASSIGN_OR_RETURN(std::vector<int> rows, ResolvePositions(req.positions(), n));
  call.log()["mode"] = mode == BackendEvalMode::kBatch ? "batch" : "sequential";
  call.log()["input_tokens"] = n;
  call.log()["positions"] = rows.size();

  const int64_t per_position = PositionLogitsBytes(output, info.n_vocab);
  const int64_t header_bytes = 64 + 5 * int64_t{n};
  if (streaming) {
    RETURN_IF_ERROR(CheckResponseSize(per_position + header_bytes, limits_.max_message_bytes,
                                      "one EvalLogitsStream message",
                                      "ask for TOP_K or FLOAT16 output"));
  } else {
    RETURN_IF_ERROR(CheckResponseSize(
        per_position * static_cast<int64_t>(rows.size()) + header_bytes,
        limits_.max_message_bytes, "the EvalLogits response",
        "use EvalLogitsStream, TOP_K or FLOAT16 output, or fewer positions"));
  }

  ASSIGN_OR_RETURN(AdmissionGate::Ticket ticket, gate_.Enter([&] { return call.Abandoned(); }));
  header(ids, info.n_vocab, ToProtoEvalMode(mode));

  const auto t0 = Clock::now();
  size_t delivered = 0;
  absl::Status st = backend->EvalLogits(
      ids, mode, rows,
      [&](int row, absl::Span<const float> logits) -> absl::Status {
        if (delivered >= rows.size() || row != rows[delivered] ||
            static_cast<int>(logits.size()) != info.n_vocab) {
          return absl::InternalError(absl::StrCat("backend returned row ", row, " of ",
                                                  logits.size(), " logits; expected row ",
                                                  delivered < rows.size() ? rows[delivered] : -1,
                                                  " of ", info.n_vocab));
        }
        ++delivered;
        v1::PositionLogits position;
        std::optional<int32_t> next;
        if (row + 1 < n) next = ids[row + 1];
        FillPositionLogits(row, ids[row], next, logits, output, &position);
        return sink(std::move(position));
      },
      call.Cancelled(), call.notes());
  const double eval_ms = MsBetween(t0, Clock::now());
  RETURN_IF_ERROR(call.Explain(st));
  if (delivered != rows.size()) {
    return absl::InternalError(
        absl::StrCat("backend returned ", delivered, " of ", rows.size(), " logits rows"));
  }
  timings->set_queue_ms(ticket.queue_ms());
  timings->set_tokenize_ms(tokenize_ms);
  timings->set_eval_ms(eval_ms);
  timings->set_total_ms(call.ElapsedMs());
  timings->set_tokens_per_s(eval_ms > 0 ? n * 1000.0 / eval_ms : 0);
  call.log()["queue_ms"] = ticket.queue_ms();
  call.log()["eval_ms"] = eval_ms;
  if (metrics_ != nullptr) {
    metrics_->PromptTokens(n);
    if (eval_ms > 0) metrics_->PrefillRate(n * 1000.0 / eval_ms);
  }
  return absl::OkStatus();
}

grpc::Status EngineService::EvalLogits(grpc::ServerContext* ctx, const v1::EvalLogitsRequest* req,
                                       v1::EvalLogitsResponse* resp) {
  Call call(*this, ctx, "EvalLogits");
  absl::Status st = RunEvalLogits(
      call, *req, /*streaming=*/false,
      [&](const std::vector<int32_t>& ids, int n_vocab, v1::EvalMode mode) {
        resp->mutable_token_ids()->Add(ids.begin(), ids.end());
        resp->set_n_vocab(n_vocab);
        resp->set_mode(mode);
      },
      [&](v1::PositionLogits&& p) {
        *resp->add_positions() = std::move(p);
        return absl::OkStatus();
      },
      resp->mutable_timings());
  if (st.ok()) call.log()["response_bytes"] = resp->ByteSizeLong();
  return call.Finish(st);
}

grpc::Status EngineService::EvalLogitsStream(
    grpc::ServerContext* ctx, const v1::EvalLogitsRequest* req,
    grpc::ServerWriter<v1::EvalLogitsStreamResponse>* writer) {
  Call call(*this, ctx, "EvalLogitsStream");
  // One message is held back so that the last one can carry the timings.
  std::optional<v1::EvalLogitsStreamResponse> pending;
  v1::EvalLogitsStreamResponse first;
  bool first_sent = false;
  int64_t bytes = 0;
  int messages = 0;
  auto send = [&](v1::EvalLogitsStreamResponse& m) -> absl::Status {
    bytes += static_cast<int64_t>(m.ByteSizeLong());
    if (!writer->Write(m)) return absl::CancelledError("the client closed the stream");
    ++messages;
    return absl::OkStatus();
  };
  v1::EvalTimings timings;
  absl::Status st = RunEvalLogits(
      call, *req, /*streaming=*/true,
      [&](const std::vector<int32_t>& ids, int n_vocab, v1::EvalMode mode) {
        first.mutable_token_ids()->Add(ids.begin(), ids.end());
        first.set_n_vocab(n_vocab);
        first.set_mode(mode);
      },
      [&](v1::PositionLogits&& p) -> absl::Status {
        if (pending.has_value()) RETURN_IF_ERROR(send(*pending));
        if (!first_sent) {
          pending.emplace(std::move(first));
          first_sent = true;
        } else {
          pending.emplace();
        }
        *pending->mutable_position() = std::move(p);
        return absl::OkStatus();
      },
      &timings);
  if (st.ok() && pending.has_value()) {
    *pending->mutable_timings() = timings;
    st = call.Explain(send(*pending));
  }
  call.log()["messages"] = messages;
  call.log()["response_bytes"] = bytes;
  return call.Finish(st);
}

// ---------------------------------------------------------------------------
// EvalTrace
// ---------------------------------------------------------------------------

grpc::Status EngineService::EvalTrace(grpc::ServerContext* ctx, const v1::EvalTraceRequest* req,
                                      v1::EvalTraceResponse* resp) {
  Call call(*this, ctx, "EvalTrace");
  absl::Status st = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::shared_ptr<EngineBackend> backend, Backend());
    const BackendInfo& info = backend->Info();
    ASSIGN_OR_RETURN(BackendEvalMode mode, ResolveEvalMode(req->mode(), "mode"));
    ASSIGN_OR_RETURN(v1::FloatFormat format, ValidateFloatFormat(req->format(), "format"));
    ASSIGN_OR_RETURN(std::vector<int> layers, ResolveTraceLayers(req->layers(), info.n_layer));
    double tokenize_ms = 0;
    ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                     ResolveInput(req->input(), *backend, 0, &tokenize_ms));
    const int n = static_cast<int>(ids.size());
    ASSIGN_OR_RETURN(std::vector<int> rows, ResolvePositions(req->positions(), n));
    call.log()["mode"] = mode == BackendEvalMode::kBatch ? "batch" : "sequential";
    call.log()["input_tokens"] = n;
    call.log()["positions"] = rows.size();
    call.log()["layers"] = layers.size();
    RETURN_IF_ERROR(CheckResponseSize(
        LayerResidualBytes(format, info.n_embd) * static_cast<int64_t>(rows.size()) *
                static_cast<int64_t>(layers.size()) +
            64 + 5 * int64_t{n},
        limits_.max_message_bytes, "the EvalTrace response",
        "ask for fewer positions or layers, or FLOAT16"));

    ASSIGN_OR_RETURN(AdmissionGate::Ticket ticket, gate_.Enter([&] { return call.Abandoned(); }));
    // Slots indexed [row_index][layer_index]; the backend reports in its own order.
    std::vector<int> row_index(n, -1), layer_index(info.n_layer + 1, -1);
    for (size_t i = 0; i < rows.size(); ++i) row_index[rows[i]] = static_cast<int>(i);
    for (size_t i = 0; i < layers.size(); ++i) layer_index[layers[i]] = static_cast<int>(i);
    std::vector<std::optional<std::string>> slots(rows.size() * layers.size());
    absl::Status bad = absl::OkStatus();
    const auto t0 = Clock::now();
    absl::Status eval = backend->EvalTrace(
        ids, mode, rows,
        [&](int layer, int row, absl::Span<const float> hidden) {
          if (layer < 0 || layer > info.n_layer || row < 0 || row >= n ||
              static_cast<int>(hidden.size()) != info.n_embd) {
            if (bad.ok()) {
              bad = absl::InternalError(absl::StrCat("backend reported layer ", layer, " row ", row,
                                                     " with ", hidden.size(), " values"));
            }
            return;
          }
          if (row_index[row] < 0 || layer_index[layer] < 0) return;  // not asked for
          slots[row_index[row] * layers.size() + layer_index[layer]] = PackFloats(hidden, format);
        },
        call.Cancelled(), call.notes());
    const double eval_ms = MsBetween(t0, Clock::now());
    RETURN_IF_ERROR(call.Explain(eval));
    RETURN_IF_ERROR(bad);
    resp->mutable_token_ids()->Add(ids.begin(), ids.end());
    resp->set_n_layer(info.n_layer);
    resp->set_n_embd(info.n_embd);
    resp->set_mode(ToProtoEvalMode(mode));
    for (size_t r = 0; r < rows.size(); ++r) {
      for (size_t l = 0; l < layers.size(); ++l) {
        std::optional<std::string>& slot = slots[r * layers.size() + l];
        if (!slot.has_value()) {
          return absl::InternalError(absl::StrCat("backend reported no residual for position ",
                                                  rows[r], " layer ", layers[l]));
        }
        v1::LayerResidual* res = resp->add_residuals();
        res->set_position(rows[r]);
        res->set_layer(layers[l]);
        res->set_hidden(std::move(*slot));
      }
    }
    v1::EvalTimings* t = resp->mutable_timings();
    t->set_queue_ms(ticket.queue_ms());
    t->set_tokenize_ms(tokenize_ms);
    t->set_eval_ms(eval_ms);
    t->set_total_ms(call.ElapsedMs());
    t->set_tokens_per_s(eval_ms > 0 ? n * 1000.0 / eval_ms : 0);
    call.log()["queue_ms"] = ticket.queue_ms();
    call.log()["eval_ms"] = eval_ms;
    if (metrics_ != nullptr) metrics_->PromptTokens(n);
    return absl::OkStatus();
  }();
  if (st.ok()) call.log()["response_bytes"] = resp->ByteSizeLong();
  return call.Finish(st);
}

// ---------------------------------------------------------------------------
// Generate, GenerateStream
// ---------------------------------------------------------------------------

absl::Status EngineService::RunGenerate(Call& call, const v1::GenerateRequest& req,
                                        const TokenSink& sink, v1::GenerateResponse* resp) {
  ASSIGN_OR_RETURN(std::shared_ptr<EngineBackend> backend, Backend());
  const BackendInfo& info = backend->Info();
  ASSIGN_OR_RETURN(GenerationSpec spec, ValidateGenerate(req, info, limits_));
  double tokenize_ms = 0;
  ASSIGN_OR_RETURN(std::vector<int32_t> prompt,
                   ResolveInput(req.input(), *backend, spec.max_new_tokens, &tokenize_ms));
  call.log()["prompt_tokens"] = prompt.size();
  call.log()["max_new_tokens"] = spec.max_new_tokens;
  call.log()["temperature"] = spec.sampling.temperature;

  ASSIGN_OR_RETURN(AdmissionGate::Ticket ticket, gate_.Enter([&] { return call.Abandoned(); }));
  const auto gen_start = Clock::now();
  int index = 0;
  // Null for unary Generate: tokens are collected, not streamed, which lets a
  // worker backend replay them after a worker death (engine_backend.h).
  TokenFn on_token;
  if (sink) {
    on_token = [&](const GeneratedTokenInfo& token) -> absl::Status {
      v1::GeneratedToken g;
      FillGeneratedToken(index++, token, &g);
      return sink(g);
    };
  }
  absl::StatusOr<GenerationResult> result =
      backend->Generate(prompt, spec, on_token, call.Cancelled(), call.notes());
  if (!result.ok()) return call.Explain(result.status());
  GenerationResult& r = *result;
  // A deadline or a client cancel is the call's status; a server shutdown ends
  // generation early but still answers with what was made.
  if (r.finish == GenerationFinish::kCancelled && !call.ServerCancelled()) {
    absl::Status why = call.Abandoned();
    if (!why.ok()) return Call::WithDetail(why, r.cancel_detail);
  }

  resp->mutable_prompt_ids()->Add(prompt.begin(), prompt.end());
  resp->mutable_ids()->Add(r.ids.begin(), r.ids.end());
  resp->set_text(ToValidUtf8(r.text));
  resp->set_raw_text(r.text);
  resp->set_finish_reason(ToProtoFinishReason(r.finish));
  resp->set_output_head(call.notes()->output_head);
  if (!sink) {
    for (size_t i = 0; i < r.tokens.size(); ++i) {
      FillGeneratedToken(static_cast<int>(i), r.tokens[i], resp->add_tokens());
    }
  }
  const int completion = static_cast<int>(r.ids.size());
  v1::Usage* usage = resp->mutable_usage();
  usage->set_prompt_tokens(static_cast<int>(prompt.size()));
  usage->set_completion_tokens(completion);
  usage->set_total_tokens(static_cast<int>(prompt.size()) + completion);

  v1::GenerateTimings* t = resp->mutable_timings();
  t->set_queue_ms(ticket.queue_ms());
  t->set_tokenize_ms(tokenize_ms);
  t->set_prefill_ms(r.prefill_ms);
  t->set_decode_ms(r.decode_ms);
  if (completion > 0) {
    t->set_time_to_first_token_ms(MsBetween(call.start(), gen_start) + r.first_token_ms);
  }
  const double prefill_rate = r.prefill_ms > 0 ? prompt.size() * 1000.0 / r.prefill_ms : 0;
  const double decode_rate =
      r.decode_steps > 0 && r.decode_ms > 0 ? r.decode_steps * 1000.0 / r.decode_ms : 0;
  t->set_prefill_tokens_per_s(prefill_rate);
  t->set_decode_tokens_per_s(decode_rate);
  t->set_total_ms(call.ElapsedMs());

  call.log()["completion_tokens"] = completion;
  call.log()["finish"] = v1::FinishReason_Name(resp->finish_reason());
  call.log()["queue_ms"] = ticket.queue_ms();
  call.log()["prefill_ms"] = r.prefill_ms;
  call.log()["decode_ms"] = r.decode_ms;
  call.log()["decode_tokens_per_s"] = decode_rate;
  if (metrics_ != nullptr) {
    metrics_->PromptTokens(static_cast<int64_t>(prompt.size()));
    metrics_->GeneratedTokens(completion);
    if (prefill_rate > 0) metrics_->PrefillRate(prefill_rate);
    if (decode_rate > 0) metrics_->DecodeRate(decode_rate);
  }
  return absl::OkStatus();
}

grpc::Status EngineService::Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                                     v1::GenerateResponse* resp) {
  Call call(*this, ctx, "Generate");
  absl::Status st = RunGenerate(call, *req, nullptr, resp);
  return call.Finish(st);
}

grpc::Status EngineService::GenerateStream(grpc::ServerContext* ctx,
                                           const v1::GenerateRequest* req,
                                           grpc::ServerWriter<v1::GenerateStreamResponse>* writer) {
  Call call(*this, ctx, "GenerateStream");
  int messages = 0;
  auto sink = [&](const v1::GeneratedToken& token) -> absl::Status {
    v1::GenerateStreamResponse m;
    *m.mutable_token() = token;
    if (!writer->Write(m)) return absl::CancelledError("the client closed the stream");
    ++messages;
    return absl::OkStatus();
  };
  v1::GenerateStreamResponse last;
  absl::Status st = RunGenerate(call, *req, sink, last.mutable_summary());
  if (st.ok()) {
    if (writer->Write(last)) {
      ++messages;
    } else {
      st = call.Explain(absl::CancelledError("the client closed the stream"));
    }
  }
  call.log()["messages"] = messages;
  return call.Finish(st);
}

}  // namespace bitparity
