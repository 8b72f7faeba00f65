// File: orchestrator/conformance_probe.h
//
// Internal to `bitparity conformance` (conformance.h): the server under test as
// the checks see it (Probe: its stub, the prompt every check uses, and the
// answers several checks share, computed once), what a check reports
// (Outcome), and small helpers. The checks themselves are in
// conformance_contract.cc, conformance_consistency.cc and conformance_speed.cc.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/fp16.h"
#include "base/logits.h"
#include "orchestrator/health.h"
#include "bitnet/v1/engine.grpc.pb.h"
#include "orchestrator/conformance.h"

namespace bitparity::conformance {
namespace v1 = ::bitnet::v1;

using Clock = std::chrono::steady_clock;

inline double MsSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

inline const char* CodeName(grpc::StatusCode c) {
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                 "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(c);
  return i >= 0 && i <= 16 ? kNames[i] : "?";
}

inline std::string Describe(const grpc::Status& s) {
  if (s.ok()) return "OK";
  return absl::StrCat(CodeName(s.error_code()), ": ", s.error_message());
}

inline std::string IdsText(const std::vector<int32_t>& ids) { return "[" + absl::StrJoin(ids, ",") + "]"; }

// A packed little-endian row (the contract's byte payloads) as floats.
inline std::vector<float> F32Row(const std::string& bytes) {
  std::vector<float> row(bytes.size() / 4);
  std::memcpy(row.data(), bytes.data(), row.size() * 4);
  return row;
}

// A short, readable form of a request for the report (payloads can be long).
inline std::string Brief(const google::protobuf::Message& m) {
  std::string s = m.ShortDebugString();
  if (s.size() > 400) s = s.substr(0, 400) + " ...";
  return s;
}

// What a check reports: the first failure wins (later ones are usually its echo).
class Outcome {
 public:
  explicit Outcome(ConformanceCheck* r) : r_(r) {}
  bool failed() const { return r_->status == ConformanceStatus::kFail; }
  void Fail(const std::string& request, const std::string& expected, const std::string& observed) {
    if (failed()) return;
    r_->status = ConformanceStatus::kFail;
    r_->request = request;
    r_->expected = expected;
    r_->observed = observed;
  }
  void Skip(const std::string& why) {
    r_->status = ConformanceStatus::kSkip;
    r_->note = why;
  }
  void Note(const std::string& note) { r_->note = note; }

 private:
  ConformanceCheck* r_;
};

// One greedy generation and the sequential EvalLogits rows that must explain it.
struct GreedyData {
  v1::GenerateRequest request;
  grpc::Status status;
  v1::GenerateResponse response;
  v1::EvalLogitsRequest eval_request;
  grpc::Status eval_status;
  std::vector<std::vector<float>> rows;  // rows[i] predicts generated token i
};

// One streamed generation timed on the client.
struct SpeedData {
  v1::GenerateRequest request;
  grpc::Status status;
  v1::GenerateResponse summary;
  int streamed_tokens = 0;
  double first_token_ms = -1, last_token_ms = -1, wall_ms = 0;
};

// The server under test, the prompt every check uses and the answers several
// checks share (computed once, on first use).
class Probe {
 public:
  Probe(EngineClient& client, const ConformanceOptions& o)
      : channel_(client.channel()), stub_(v1::Engine::NewStub(channel_)), info_(client.info()), o_(o) {
    const v1::ModelFacts& m = info_.model();
    n_vocab_ = m.n_vocab();
    max_context_ = info_.limits().max_context();
    // A prompt in the server's own tokens when it can tokenize; fixed ids otherwise.
    if (m.has_tokenizer()) {
      v1::TokenizeRequest req;
      req.set_text(kPromptText);
      v1::TokenizeResponse resp;
      if (Call([&](grpc::ClientContext* c) { return stub_->Tokenize(c, req, &resp); }).ok()) {
        prompt_.assign(resp.ids().begin(), resp.ids().end());
      }
    }
    if (prompt_.size() < 2 || static_cast<int>(prompt_.size()) > max_context_ / 2) {
      prompt_.clear();
      if (m.bos_id() >= 0) prompt_.push_back(m.bos_id());
      for (int i = 1; static_cast<int>(prompt_.size()) < 8; ++i) {
        prompt_.push_back(static_cast<int32_t>((i * 7919L) % std::max(1, n_vocab_)));
      }
    }
  }

  static constexpr const char* kPromptText = "The quick brown fox jumps over the lazy dog. Once upon a time";

  const v1::GetModelInfoResponse& info() const { return info_; }
  v1::Engine::Stub& stub() { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const ConformanceOptions& options() const { return o_; }
  int n_vocab() const { return n_vocab_; }
  int max_context() const { return max_context_; }
  const std::vector<int32_t>& prompt() const { return prompt_; }

  void Deadline(grpc::ClientContext* ctx, double seconds) const {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6)));
  }

  // One unary call with the suite's deadline; RESOURCE_EXHAUSTED is retried (the
  // contract lets a caller retry it later), everything else is returned as is.
  grpc::Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& call) const {
    grpc::Status s;
    for (int attempt = 0; attempt < 40; ++attempt) {
      grpc::ClientContext ctx;
      Deadline(&ctx, o_.call_timeout_s);
      s = call(&ctx);
      if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return s;
  }

  grpc::Status EvalLogits(const v1::EvalLogitsRequest& req, v1::EvalLogitsResponse* resp) {
    return Call([&](grpc::ClientContext* c) { return stub_->EvalLogits(c, req, resp); });
  }
  grpc::Status Generate(const v1::GenerateRequest& req, v1::GenerateResponse* resp) {
    return Call([&](grpc::ClientContext* c) { return stub_->Generate(c, req, resp); });
  }
  grpc::Status Detokenize(const std::vector<int32_t>& ids, v1::DetokenizeResponse* resp) {
    v1::DetokenizeRequest req;
    req.mutable_ids()->Add(ids.begin(), ids.end());
    return Call([&](grpc::ClientContext* c) { return stub_->Detokenize(c, req, resp); });
  }

  // EvalLogits of the prompt in `mode`, every position, with `output`.
  v1::EvalLogitsRequest PromptEval(v1::EvalMode mode, v1::Positions::Kind positions, v1::LogitsOutput output) const {
    v1::EvalLogitsRequest req;
    req.mutable_input()->mutable_ids()->mutable_ids()->Add(prompt_.begin(), prompt_.end());
    req.set_mode(mode);
    req.mutable_positions()->set_kind(positions);
    *req.mutable_output() = output;
    return req;
  }

  // BATCH, ALL, FULL float32 of the prompt: the reference rows of several checks.
  const v1::EvalLogitsRequest& FullAllRequest() {
    if (!full_all_req_) full_all_req_ = PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::ALL, v1::LogitsOutput());
    return *full_all_req_;
  }
  const grpc::Status& FullAll(v1::EvalLogitsResponse** resp) {
    if (!full_all_status_) {
      const auto t0 = Clock::now();
      full_all_status_ = EvalLogits(FullAllRequest(), &full_all_);
      full_all_wall_ms_ = MsSince(t0);
    }
    *resp = &full_all_;
    return *full_all_status_;
  }
  double full_all_wall_ms() const { return full_all_wall_ms_; }

  // Generated tokens allowed for a prompt of `prompt_len` tokens.
  int TokensAllowed(int want, int prompt_len) const {
    return std::max(0, std::min({want, info_.limits().max_new_tokens(), max_context_ - prompt_len}));
  }

  GreedyData& Greedy();
  SpeedData& Speed();

  // Drops the shared answers, so that the next check asks the server again.
  void Forget() {
    full_all_req_.reset();
    full_all_status_.reset();
    full_all_ = v1::EvalLogitsResponse();
    greedy_.reset();
    speed_.reset();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Engine::Stub> stub_;
  v1::GetModelInfoResponse info_;
  ConformanceOptions o_;
  int n_vocab_ = 0, max_context_ = 0;
  std::vector<int32_t> prompt_;
  std::optional<v1::EvalLogitsRequest> full_all_req_;
  std::optional<grpc::Status> full_all_status_;
  v1::EvalLogitsResponse full_all_;
  double full_all_wall_ms_ = 0;
  std::optional<GreedyData> greedy_;
  std::optional<SpeedData> speed_;
};


// Valid requests on the probe's prompt, which checks break or extend.
inline v1::EvalLogitsRequest ValidEval(const Probe& p) {
  return p.PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::LAST, v1::LogitsOutput());
}
inline v1::GenerateRequest ValidGenerate(const Probe& p) {
  v1::GenerateRequest g;
  g.mutable_input()->mutable_ids()->mutable_ids()->Add(p.prompt().begin(), p.prompt().end());
  g.set_max_new_tokens(1);
  return g;
}
inline v1::EvalTraceRequest ValidTrace(const Probe& p) {
  v1::EvalTraceRequest t;
  t.mutable_input()->mutable_ids()->mutable_ids()->Add(p.prompt().begin(), p.prompt().end());
  return t;
}

}  // namespace bitparity::conformance
