#include "cpp_ref_adapter/worker_backend.h"

#include <cstdio>
#include <functional>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/sha256.h"
#include "cpp_ref_adapter/worker_codec.h"
#include "nlohmann/json.hpp"

namespace bitparity::worker {

absl::StatusOr<std::unique_ptr<WorkerBackend>> WorkerBackend::Start(
    const WorkerBackendOptions& options, const StopFn& stop) {
  if (options.parallel > 1 && options.pool.workers != 1) {
    return absl::InvalidArgumentError(absl::StrCat("--parallel ", options.parallel,
                                                   " serves from one worker; --workers must be 1"));
  }
  std::unique_ptr<WorkerBackend> b(new WorkerBackend());
  b->options_ = options;
  absl::StatusOr<std::unique_ptr<WorkerPool>> pool = WorkerPool::Start(options.pool);
  if (!pool.ok()) return pool.status();
  b->pool_ = std::move(*pool);
  // On failure `b` goes, and with it the pool: its workers are stopped and reaped.
  absl::StatusOr<wpb::Hello> hello = b->pool_->WaitFirstHello(options.start_timeout, stop);
  if (!hello.ok()) {
    // Name the model: a worker that aborts while loading (bitnet.cpp's
    // GGML_ASSERT on a damaged file) leaves only a backtrace in its stderr.
    if (absl::IsUnavailable(hello.status()) && !options.model_path.empty()) {
      return absl::UnavailableError(
          absl::StrCat("cannot load ", options.model_path, ": ", hello.status().message()));
    }
    return hello.status();
  }
  b->info_ = FromProto(hello->info());
  if (b->info_.sha256.empty() && !options.model_path.empty()) {
    absl::StatusOr<std::string> sha = Sha256HexOfFile(options.model_path);
    if (!sha.ok()) return sha.status();
    b->info_.sha256 = *sha;
  }
  b->info_.build_extra["worker_command"] = options.pool.command.executable;
  b->info_.build_extra["workers"] = std::to_string(options.pool.workers);
  b->info_.build_extra["parallel"] = std::to_string(options.parallel);
  if (options.parallel > 1) b->mux_ = std::make_unique<WorkerMux>(b->pool_.get());
  return b;
}

std::optional<WorkerPoolStats> WorkerBackend::PoolStats() const {
  WorkerPoolStats s;
  s.workers = pool_->options().workers;
  s.ready = pool_->ready();
  s.restarts = pool_->restarts();
  s.retried_calls = retried_calls_.load();
  return s;
}

absl::Status WorkerBackend::Call(const char* what, wpb::Request& request, const StopFn& stop,
                                 const PartialFn& on_partial, const RetryPlan& plan, CallNotes* notes,
                                 wpb::Response* final_frame) const {
  // Each partial frame handed to `on_partial`, as a hash: a retry skips the
  // ones the caller has and checks that the fresh worker sent the same.
  std::vector<size_t> delivered;
  size_t repeats = 0;  // leading frames of the next attempt that the caller has
  int fruitless = 0;   // retries in a row that delivered no new frame
  for (int attempt = 0;; ++attempt) {
    bool worker_died = false;
    const size_t before = delivered.size();
    absl::Status st =
        CallOnce(what, request, stop, on_partial, repeats, &delivered, &worker_died, final_frame);
    if (!worker_died) return st;
    // The worker died before a final frame. Run the call again on a fresh
    // worker when nothing is lost by it: nothing reached the caller yet, or
    // what did can be sent again (the frames are deterministic; the copies are
    // checked and skipped). Bounded: retries that bring no new frame count, so
    // that a request that kills every worker it meets stops after
    // max_worker_retries of them; one that makes progress goes on.
    if (attempt > 0) fruitless = delivered.size() > before ? 0 : fruitless + 1;
    // Multiplexed (parallel): a batched call gives other results the next
    // time, so only a call none of whose frames went out runs again.
    const bool replayable = delivered.empty() || (plan.replay != Replay::kNever && mux_ == nullptr);
    if (!replayable || fruitless >= options_.max_worker_retries || attempt >= kMaxAttempts - 1) {
      if (attempt == 0) return st;
      return absl::Status(st.code(), absl::StrCat(st.message(), " (after ", attempt,
                                                  attempt == 1 ? " retry" : " retries",
                                                  " on a fresh worker)"));
    }
    // A resumable call asks the fresh worker only for the frames from the last
    // one delivered on (sent again, as a check); the others start over.
    repeats = delivered.size();
    if (plan.resume && !delivered.empty()) repeats = plan.resume(delivered.size(), &request);
    retried_calls_.fetch_add(1);
    if (notes != nullptr) {
      ++notes->worker_retries;
      notes->retry_reason = std::string(st.message());
    }
    if (pool_->options().log_events) {
      nlohmann::ordered_json j;
      j["event"] = "request_retried";
      j["worker"] = pool_->options().label;
      j["call"] = what;
      j["attempt"] = attempt + 2;
      j["frames_already_delivered"] = delivered.size();
      j["frames_sent_again"] = repeats;
      j["reason"] = st.message();
      const std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      std::fwrite(line.data(), 1, line.size(), stderr);
    }
  }
}

absl::Status WorkerBackend::CallOnce(const char* what, wpb::Request& request, const StopFn& stop,
                                     const PartialFn& on_partial, size_t repeats,
                                     std::vector<size_t>* delivered, bool* worker_died,
                                     wpb::Response* final_frame) const {
  if (mux_ != nullptr) {
    WorkerMux::Outcome outcome;
    absl::Status st = mux_->Call(what, request, stop, on_partial, final_frame, &outcome);
    delivered->resize(delivered->size() + outcome.partials);  // counted, never replayed
    *worker_died = outcome.worker_died;
    return st;
  }
  absl::StatusOr<WorkerPool::Lease> leased = pool_->Acquire(stop);
  if (!leased.ok()) return leased.status();
  WorkerPool::Lease lease = std::move(*leased);
  request.set_id(next_id_.fetch_add(1));
  const std::string& label = pool_->options().label;
  size_t partials = 0;  // partial frames of this attempt

  auto died = [&](WorkerPool::Lease l, const std::string& how) {
    WorkerPool::Death d = pool_->Discard(std::move(l), /*crashed=*/true);
    *worker_died = true;
    return absl::UnavailableError(absl::StrCat(label, " ", d.slot, " (pid ", d.pid, ") ", how,
                                               " during ", what, ": ", d.exit,
                                               "; last stderr lines: ", d.stderr_tail));
  };
  auto broken = [&](WorkerPool::Lease l, const std::string& how) {
    WorkerPool::Death d = pool_->Discard(std::move(l), /*crashed=*/true);
    return absl::InternalError(absl::StrCat(label, " ", d.slot, " (pid ", d.pid, ") ", how,
                                            " during ", what, "; it was replaced (", d.exit,
                                            "); last stderr lines: ", d.stderr_tail));
  };

  // A stopped worker (SIGSTOP, a debugger) answers nothing, and a request
  // without a deadline would wait for it forever: stopped for stopped_timeout,
  // it counts as hung. /proc is read at most every 100 ms.
  const auto stopped_timeout = pool_->options().stopped_timeout;
  WorkerPool::Clock::time_point stopped_since{}, next_look = WorkerPool::Clock::now();
  bool hung = false;
  const StopFn watch = [&] {
    if (stop && stop()) return true;
    const auto now = WorkerPool::Clock::now();
    if (now < next_look) return false;
    next_look = now + std::chrono::milliseconds(100);
    if (!lease.process().Stopped()) {
      stopped_since = {};
      return false;
    }
    if (stopped_since == WorkerPool::Clock::time_point{}) stopped_since = now;
    hung = now - stopped_since >= stopped_timeout;
    return hung;
  };
  // Abandoned (deadline, cancel, shutdown) or hung: a worker cannot be
  // interrupted mid-decode, so it is killed and replaced.
  auto abandon = [&](WorkerPool::Lease l) {
    WorkerPool::Death d = pool_->Discard(std::move(l), /*crashed=*/false);
    if (hung) {
      return absl::UnavailableError(absl::StrCat(
          label, " ", d.slot, " (pid ", d.pid, ") was stopped (SIGSTOP or a debugger) for over ",
          stopped_timeout.count(), " ms during ", what, "; it was killed and is restarting; its "
          "last stderr lines: ", d.stderr_tail));
    }
    return absl::CancelledError(absl::StrCat(what, " abandoned; ", label, " ", d.slot, " (pid ",
                                             d.pid, ") was killed and is restarting; its last "
                                             "stderr lines: ", d.stderr_tail));
  };

  if (absl::Status st = lease.process().Send(request, watch); !st.ok()) {
    if (absl::IsCancelled(st)) return abandon(std::move(lease));
    return died(std::move(lease), absl::StrCat("could not take the request (", st.message(), ")"));
  }
  for (;;) {
    wpb::Response resp;
    absl::Status st = lease.process().Receive(&resp, watch);
    if (absl::IsCancelled(st)) return abandon(std::move(lease));
    if (absl::IsUnavailable(st)) return died(std::move(lease), "died");
    // End of file inside a frame: the worker died while writing (a SIGKILL in
    // the middle of a large logits row), not a protocol error.
    if (absl::IsDataLoss(st) && absl::StartsWith(st.message(), "truncated frame: end of file")) {
      return died(std::move(lease), "died mid-frame");
    }
    if (!st.ok()) return broken(std::move(lease), absl::StrCat("sent a bad frame (", st.message(), ")"));
    if (resp.id() != request.id()) {
      return broken(std::move(lease), absl::StrCat("answered request ", resp.id(), " instead of ",
                                                   request.id()));
    }
    switch (resp.kind_case()) {
      case wpb::Response::kLogitsRow:
      case wpb::Response::kResidualRow:
      case wpb::Response::kToken: {
        if (!on_partial) return broken(std::move(lease), "sent an unexpected partial frame");
        resp.set_id(0);  // attempts differ only in the id
        const size_t hash = std::hash<std::string>()(resp.SerializeAsString());
        if (partials < repeats) {
          // A retry's copy of a frame the caller already has: skipped, but it
          // must be the same frame, or the two attempts disagree.
          if ((*delivered)[delivered->size() - repeats + partials++] != hash) {
            return broken(std::move(lease),
                          absl::StrCat("sent a different frame ", partials - 1,
                                       " than the worker that died (the retry is not "
                                       "deterministic)"));
          }
          continue;
        }
        ++partials;
        delivered->push_back(hash);
        if (absl::Status p = on_partial(resp); !p.ok()) {
          // The caller stopped listening (or the frame was malformed): the worker
          // is still sending, so it goes.
          pool_->Discard(std::move(lease), /*crashed=*/false);
          return p;
        }
        continue;
      }
      case wpb::Response::kError: {
        pool_->Release(std::move(lease));
        return FromProto(resp.error());
      }
      case wpb::Response::kHello:
      case wpb::Response::KIND_NOT_SET:
        return broken(std::move(lease), "sent an unexpected frame");
      default: {
        int64_t session_bytes = 0;
        if (resp.has_eval_done()) session_bytes = resp.eval_done().session_bytes();
        if (resp.has_generate_done()) session_bytes = resp.generate_done().session_bytes();
        if (resp.has_info()) session_bytes = resp.info().session_bytes();
        pool_->Release(std::move(lease), session_bytes);
        *final_frame = std::move(resp);
        return absl::OkStatus();
      }
    }
  }
}

absl::Status WorkerBackend::QuickCall(const char* what, wpb::Request& request,
                                      wpb::Response* final_frame) const {
  const auto deadline = WorkerPool::Clock::now() + options_.quick_timeout;
  bool timed_out = false;
  absl::Status st = Call(what, request,
                         [&] { return timed_out = WorkerPool::Clock::now() > deadline; }, nullptr,
                         RetryPlan{Replay::kAll, nullptr}, nullptr, final_frame);
  if (timed_out && absl::IsCancelled(st)) {
    return absl::DeadlineExceededError(absl::StrCat(what, " took longer than ",
                                                    options_.quick_timeout.count(), " ms: ",
                                                    st.message()));
  }
  return st;
}

absl::StatusOr<std::vector<int32_t>> WorkerBackend::Tokenize(absl::string_view text, bool add_bos,
                                                             bool parse_special) const {
  wpb::Request req;
  req.mutable_tokenize()->set_text(std::string(text));
  req.mutable_tokenize()->set_add_bos(add_bos);
  req.mutable_tokenize()->set_parse_special(parse_special);
  wpb::Response resp;
  if (absl::Status st = QuickCall("Tokenize", req, &resp); !st.ok()) return st;
  if (!resp.has_tokenize()) return absl::InternalError("worker answered Tokenize with another kind");
  return std::vector<int32_t>(resp.tokenize().ids().begin(), resp.tokenize().ids().end());
}

absl::StatusOr<ChatRendering> WorkerBackend::ApplyChatTemplate(absl::Span<const ChatTurn> chat,
                                                               absl::string_view tmpl,
                                                               bool add_assistant) const {
  wpb::Request req;
  ToProto(chat, tmpl, add_assistant, req.mutable_chat_template());
  wpb::Response resp;
  if (absl::Status st = QuickCall("ApplyChatTemplate", req, &resp); !st.ok()) return st;
  if (!resp.has_chat_template()) {
    return absl::InternalError("worker answered ApplyChatTemplate with another kind");
  }
  return FromProto(resp.chat_template());
}

absl::StatusOr<std::string> WorkerBackend::TokenPiece(int32_t id) const {
  wpb::Request req;
  req.mutable_token_piece()->set_id(id);
  wpb::Response resp;
  if (absl::Status st = QuickCall("TokenPiece", req, &resp); !st.ok()) return st;
  if (!resp.has_token_piece()) return absl::InternalError("worker answered TokenPiece with another kind");
  return resp.token_piece().piece();
}

absl::StatusOr<std::string> WorkerBackend::Detokenize(absl::Span<const int32_t> ids) const {
  wpb::Request req;
  req.mutable_detokenize()->mutable_ids()->Add(ids.begin(), ids.end());
  wpb::Response resp;
  if (absl::Status st = QuickCall("Detokenize", req, &resp); !st.ok()) return st;
  if (!resp.has_detokenize()) return absl::InternalError("worker answered Detokenize with another kind");
  return resp.detokenize().text();
}

absl::Status WorkerBackend::EvalLogits(absl::Span<const int32_t> ids, BackendEvalMode mode,
                                       const std::vector<int>& rows, const LogitsRowFn& on_row,
                                       const CancelledFn& cancelled, CallNotes* notes) {
  wpb::Request req;
  wpb::EvalLogitsRequest* r = req.mutable_eval_logits();
  r->mutable_ids()->Add(ids.begin(), ids.end());
  r->set_mode(ToProto(mode));
  r->mutable_rows()->Add(rows.begin(), rows.end());
  std::vector<float> logits;
  wpb::Response done;
  // After a death, the fresh worker evaluates the same rows (so that every
  // row rounds as before) but sends only those from the last delivered one on,
  // that one as a check.
  const ResumeFn resume = [](size_t delivered, wpb::Request* again) -> size_t {
    again->mutable_eval_logits()->set_skip_rows(static_cast<int32_t>(delivered - 1));
    return 1;
  };
  absl::Status st = Call(
      "EvalLogits", req, cancelled,
      [&](const wpb::Response& part) -> absl::Status {
        if (!part.has_logits_row()) return absl::InternalError("EvalLogits: unexpected partial frame");
        if (absl::Status b = BytesToFloats(part.logits_row().logits_f32le(), info_.n_vocab, &logits);
            !b.ok()) {
          return b;
        }
        return on_row(part.logits_row().row(), logits);
      },
      RetryPlan{Replay::kAll, resume}, notes, &done);
  if (!st.ok()) return st;
  if (!done.has_eval_done()) return absl::InternalError("worker answered EvalLogits with another kind");
  return absl::OkStatus();
}

absl::Status WorkerBackend::EvalTrace(absl::Span<const int32_t> ids, BackendEvalMode mode,
                                      const std::vector<int>& rows, const ResidualFn& on_residual,
                                      const CancelledFn& cancelled, CallNotes* notes) {
  wpb::Request req;
  wpb::EvalTraceRequest* r = req.mutable_eval_trace();
  r->mutable_ids()->Add(ids.begin(), ids.end());
  r->set_mode(ToProto(mode));
  r->mutable_rows()->Add(rows.begin(), rows.end());
  std::vector<float> hidden;
  wpb::Response done;
  absl::Status st = Call(
      "EvalTrace", req, cancelled,
      [&](const wpb::Response& part) -> absl::Status {
        if (!part.has_residual_row()) return absl::InternalError("EvalTrace: unexpected partial frame");
        const wpb::ResidualRow& rr = part.residual_row();
        if (absl::Status b = BytesToFloats(rr.hidden_f32le(), info_.n_embd, &hidden); !b.ok()) return b;
        on_residual(rr.layer(), rr.row(), hidden);
        return absl::OkStatus();
      },
      RetryPlan{Replay::kAll, nullptr}, notes, &done);
  if (!st.ok()) return st;
  if (!done.has_eval_done()) return absl::InternalError("worker answered EvalTrace with another kind");
  return absl::OkStatus();
}

absl::StatusOr<GenerationResult> WorkerBackend::Generate(absl::Span<const int32_t> prompt,
                                                         const GenerationSpec& spec,
                                                         const TokenFn& on_token,
                                                         const CancelledFn& cancelled, CallNotes* notes) {
  wpb::Request req;
  ToProto(spec, req.mutable_generate());
  req.mutable_generate()->mutable_prompt()->Add(prompt.begin(), prompt.end());
  GenerationResult result;
  wpb::Response done;
  absl::Status st = Call(
      "Generate", req, cancelled,
      [&](const wpb::Response& part) -> absl::Status {
        if (!part.has_token()) return absl::InternalError("Generate: unexpected partial frame");
        GeneratedTokenInfo token = FromProto(part.token());
        result.ids.push_back(token.id);
        result.text += token.text;
        result.tokens.push_back(std::move(token));
        return on_token ? on_token(result.tokens.back()) : absl::OkStatus();
      },
      // Streamed tokens cannot be taken back; collected ones are replayed (the
      // same seed on a fresh worker gives the same tokens, which is checked).
      RetryPlan{on_token ? Replay::kNever : Replay::kAll, nullptr}, notes, &done);
  if (absl::IsCancelled(st)) {
    // What was generated before the request was abandoned stays the caller's.
    result.finish = GenerationFinish::kCancelled;
    result.cancel_detail = std::string(st.message());
    return result;
  }
  if (!st.ok()) return st;
  if (!done.has_generate_done()) return absl::InternalError("worker answered Generate with another kind");
  const wpb::GenerateDone& g = done.generate_done();
  result.text = g.text();
  result.finish = FromProto(g.finish());
  result.prefill_ms = g.prefill_ms();
  result.decode_ms = g.decode_ms();
  result.first_token_ms = g.first_token_ms();
  result.decode_steps = g.decode_steps();
  return result;
}

}  // namespace bitparity::worker
