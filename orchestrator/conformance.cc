#include "orchestrator/conformance.h"

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

namespace bitparity {
namespace v1 = ::bitnet::v1;

namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

const char* CodeName(grpc::StatusCode c) {
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                 "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int i = static_cast<int>(c);
  return i >= 0 && i <= 16 ? kNames[i] : "?";
}

std::string Describe(const grpc::Status& s) {
  if (s.ok()) return "OK";
  return absl::StrCat(CodeName(s.error_code()), ": ", s.error_message());
}

std::string IdsText(const std::vector<int32_t>& ids) { return "[" + absl::StrJoin(ids, ",") + "]"; }

// A packed little-endian row (the contract's byte payloads) as floats.
std::vector<float> F32Row(const std::string& bytes) {
  std::vector<float> row(bytes.size() / 4);
  std::memcpy(row.data(), bytes.data(), row.size() * 4);
  return row;
}

// A short, readable form of a request for the report (payloads can be long).
std::string Brief(const google::protobuf::Message& m) {
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

GreedyData& Probe::Greedy() {
  if (greedy_) return *greedy_;
  greedy_.emplace();
  GreedyData& g = *greedy_;
  const int n = TokensAllowed(o_.generate_tokens, static_cast<int>(prompt_.size()));
  g.request.mutable_input()->mutable_ids()->mutable_ids()->Add(prompt_.begin(), prompt_.end());
  g.request.set_max_new_tokens(std::max(1, n));
  g.request.set_ignore_eos(true);
  g.request.set_logprobs(true);
  g.request.set_top_logprobs(std::min(5, info_.limits().max_top_logprobs()));
  // The sequential mode: every step then is exactly one token through the network,
  // as the sequential EvalLogits below computes it.
  g.request.set_prefill_mode(v1::EVAL_MODE_SEQUENTIAL);
  g.status = Generate(g.request, &g.response);
  if (!g.status.ok() || g.response.ids().empty()) return g;
  // prompt + generated[0 .. n-2]; position len(prompt)-1+i predicts generated[i].
  std::vector<int32_t> seq = prompt_;
  seq.insert(seq.end(), g.response.ids().begin(), g.response.ids().end() - 1);
  g.eval_request.mutable_input()->mutable_ids()->mutable_ids()->Add(seq.begin(), seq.end());
  g.eval_request.set_mode(v1::EVAL_MODE_SEQUENTIAL);
  g.eval_request.mutable_positions()->set_kind(v1::Positions::LIST);
  for (int i = 0; i < g.response.ids_size(); ++i) {
    g.eval_request.mutable_positions()->add_list(static_cast<int>(prompt_.size()) - 1 + i);
  }
  v1::EvalLogitsResponse resp;
  g.eval_status = EvalLogits(g.eval_request, &resp);
  if (!g.eval_status.ok()) return g;
  for (const auto& p : resp.positions()) g.rows.push_back(F32Row(p.logits()));
  return g;
}

SpeedData& Probe::Speed() {
  if (speed_) return *speed_;
  // Long enough that the client's clock can tell a 10x lie from jitter: start at
  // speed_tokens and grow while the decode took under ~150 ms on the client's clock.
  const int cap = TokensAllowed(1024, static_cast<int>(prompt_.size()));
  int n = std::min(cap, std::max(2, o_.speed_tokens));
  for (;;) {
    SpeedData d;
    d.request.mutable_input()->mutable_ids()->mutable_ids()->Add(prompt_.begin(), prompt_.end());
    d.request.set_max_new_tokens(std::max(1, n));
    d.request.set_ignore_eos(true);
    grpc::ClientContext ctx;
    Deadline(&ctx, o_.call_timeout_s);
    const auto t0 = Clock::now();
    auto reader = stub_->GenerateStream(&ctx, d.request);
    v1::GenerateStreamResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_token()) {
        const double t = MsSince(t0);
        if (d.first_token_ms < 0) d.first_token_ms = t;
        d.last_token_ms = t;
        ++d.streamed_tokens;
      } else if (msg.has_summary()) {
        d.summary = msg.summary();
      }
    }
    d.status = reader->Finish();
    d.wall_ms = MsSince(t0);
    const bool long_enough = d.last_token_ms - d.first_token_ms >= 150;
    if (!d.status.ok() || long_enough || n >= cap) {
      speed_ = std::move(d);
      return *speed_;
    }
    n = std::min(cap, n * 4);
  }
}

// ---------------------------------------------------------------------------
// contract.*
// ---------------------------------------------------------------------------

void CheckHealth(Probe& p, Outcome& out) {
  for (const std::string service : {"", "bitnet.v1.Engine"}) {
    auto st = CheckHealthStatus(p.channel(), service, 10);
    const std::string req = absl::StrCat("grpc.health.v1.Health/Check service=\"", service, "\"");
    if (!st.ok()) return out.Fail(req, "SERVING", std::string(st.status().message()));
    if (*st != 1) return out.Fail(req, "SERVING (1)", absl::StrCat("status ", *st));
  }
}

void CheckReflection(Probe& p, Outcome& out) {
  auto bytes = ReflectionListServices(p.channel(), 10);
  const std::string req = "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo list_services";
  if (!bytes.ok()) return out.Fail(req, "a list of services", std::string(bytes.status().message()));
  if (!absl::StrContains(*bytes, "bitnet.v1.Engine")) {
    return out.Fail(req, "bitnet.v1.Engine listed", absl::StrCat(bytes->size(), " bytes without it"));
  }
}

bool IsLowerHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void CheckModelInfo(Probe& p, Outcome& out) {
  v1::GetModelInfoResponse info;
  grpc::Status s = p.Call([&](grpc::ClientContext* c) { return p.stub().GetModelInfo(c, {}, &info); });
  if (!s.ok()) return out.Fail("GetModelInfo {}", "OK", Describe(s));
  std::vector<std::string> bad;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) bad.push_back(what);
  };
  const v1::ModelFacts& m = info.model();
  const v1::RuntimeLimits& l = info.limits();
  // SHA-256 of the empty file: the 0-byte model this suite was written to catch.
  constexpr char kEmptySha[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  need(!info.engine().name().empty(), "engine.name is empty");
  need(!info.engine().version().empty(), "engine.version is empty");
  need(!m.architecture().empty(), "model.architecture is empty");
  need(!m.file_name().empty(), "model.file_name is empty");
  need(m.file_size_bytes() > 0, absl::StrCat("model.file_size_bytes = ", m.file_size_bytes()));
  need(m.sha256().size() == 64 && IsLowerHex(m.sha256()),
       absl::StrCat("model.sha256 = \"", m.sha256(), "\" is not 64 lower-case hex digits"));
  need(m.sha256() != kEmptySha, "model.sha256 is the SHA-256 of an empty file");
  need(m.n_vocab() > 0, absl::StrCat("model.n_vocab = ", m.n_vocab()));
  need(m.n_layer() > 0, absl::StrCat("model.n_layer = ", m.n_layer()));
  need(m.n_embd() > 0, absl::StrCat("model.n_embd = ", m.n_embd()));
  need(m.n_ff() > 0, absl::StrCat("model.n_ff = ", m.n_ff()));
  need(m.n_head() > 0 && m.head_dim() > 0, absl::StrCat("model.n_head = ", m.n_head(), ", head_dim = ", m.head_dim()));
  need(m.n_head_kv() > 0 && m.n_head() % std::max(1, m.n_head_kv()) == 0,
       absl::StrCat("model.n_head_kv = ", m.n_head_kv(), " does not divide n_head = ", m.n_head()));
  need(m.n_ctx_train() > 0, absl::StrCat("model.n_ctx_train = ", m.n_ctx_train()));
  need(m.bos_id() >= -1 && m.bos_id() < m.n_vocab(), absl::StrCat("model.bos_id = ", m.bos_id(), " outside [-1, n_vocab)"));
  need(m.eos_id() >= -1 && m.eos_id() < m.n_vocab(), absl::StrCat("model.eos_id = ", m.eos_id(), " outside [-1, n_vocab)"));
  need(m.tensor_types_size() > 0, "model.tensor_types is empty");
  for (const auto& t : m.tensor_types()) need(t.count() > 0, absl::StrCat("tensor_types ", t.type(), " count ", t.count()));
  need(m.max_token_bytes() >= 0, absl::StrCat("model.max_token_bytes = ", m.max_token_bytes()));
  need(l.max_context() > 0, absl::StrCat("limits.max_context = ", l.max_context()));
  need(l.max_concurrent_requests() > 0, absl::StrCat("limits.max_concurrent_requests = ", l.max_concurrent_requests()));
  need(l.max_queue() >= 0, absl::StrCat("limits.max_queue = ", l.max_queue()));
  need(l.max_message_bytes() > 0, absl::StrCat("limits.max_message_bytes = ", l.max_message_bytes()));
  need(l.max_new_tokens() > 0, absl::StrCat("limits.max_new_tokens = ", l.max_new_tokens()));
  need(l.max_top_k() == m.n_vocab(), absl::StrCat("limits.max_top_k = ", l.max_top_k(), ", n_vocab = ", m.n_vocab()));
  need(l.max_top_logprobs() >= 0 && l.max_top_logprobs() <= m.n_vocab(),
       absl::StrCat("limits.max_top_logprobs = ", l.max_top_logprobs()));
  need(info.memory().resident_bytes() > 0, absl::StrCat("memory.resident_bytes = ", info.memory().resident_bytes()));
  if (!bad.empty()) out.Fail("GetModelInfo {}", "a complete, plausible description", absl::StrJoin(bad, "; "));
  if (!info.fault_injection().empty()) out.Note("fault_injection = \"" + info.fault_injection() + "\"");
}

void CheckShapes(Probe& p, Outcome& out) {
  v1::EvalLogitsResponse* r;
  grpc::Status s = p.FullAll(&r);
  const std::string req = Brief(p.FullAllRequest());
  if (!s.ok()) return out.Fail(req, "OK", Describe(s));
  const std::vector<int32_t>& ids = p.prompt();
  const size_t row_bytes = static_cast<size_t>(p.n_vocab()) * 4;
  if (r->n_vocab() != p.n_vocab()) {
    return out.Fail(req, absl::StrCat("n_vocab ", p.n_vocab(), " (GetModelInfo)"), absl::StrCat(r->n_vocab()));
  }
  if (std::vector<int32_t>(r->token_ids().begin(), r->token_ids().end()) != ids) {
    return out.Fail(req, "token_ids = input.ids " + IdsText(ids),
                    IdsText(std::vector<int32_t>(r->token_ids().begin(), r->token_ids().end())));
  }
  if (r->mode() != v1::EVAL_MODE_BATCH) return out.Fail(req, "mode EVAL_MODE_BATCH", v1::EvalMode_Name(r->mode()));
  if (r->positions_size() != static_cast<int>(ids.size())) {
    return out.Fail(req, absl::StrCat(ids.size(), " positions"), absl::StrCat(r->positions_size()));
  }
  for (int i = 0; i < r->positions_size(); ++i) {
    const v1::PositionLogits& pl = r->positions(i);
    const std::string at = absl::StrCat("position ", i, ": ");
    if (pl.position() != i || pl.token_id() != ids[i]) {
      return out.Fail(req, at + absl::StrCat("position ", i, ", token_id ", ids[i]),
                      absl::StrCat("position ", pl.position(), ", token_id ", pl.token_id()));
    }
    if (pl.logits().size() != row_bytes) {
      return out.Fail(req, at + absl::StrCat(row_bytes, " bytes (n_vocab x 4)"), absl::StrCat(pl.logits().size(), " bytes"));
    }
    const bool last = i + 1 == r->positions_size();
    if (pl.has_next_token_logprob() == last) {
      return out.Fail(req, at + (last ? "no next_token_logprob" : "next_token_logprob set"),
                      pl.has_next_token_logprob() ? "set" : "absent");
    }
    const int32_t argmax = ArgMax(F32Row(pl.logits()));
    if (pl.argmax_id() != argmax) return out.Fail(req, at + absl::StrCat("argmax_id ", argmax), absl::StrCat(pl.argmax_id()));
  }
}

// One documented validation rule: a request that breaks it, the code the contract
// gives it and the field its message must name.
struct Rule {
  const char* name;
  grpc::StatusCode code;
  std::string field;
  // Sends the request; fills its description. nullopt: the rule cannot be
  // exercised on this server (the reason in *why).
  std::function<std::optional<grpc::Status>(Probe&, std::string* request, std::string* why)> send;
  bool optional_rpc = false;  // EvalTrace: UNIMPLEMENTED is a SKIP
};

v1::EvalLogitsRequest ValidEval(const Probe& p) {
  return p.PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::LAST, v1::LogitsOutput());
}
v1::GenerateRequest ValidGenerate(const Probe& p) {
  v1::GenerateRequest g;
  g.mutable_input()->mutable_ids()->mutable_ids()->Add(p.prompt().begin(), p.prompt().end());
  g.set_max_new_tokens(1);
  return g;
}
v1::EvalTraceRequest ValidTrace(const Probe& p) {
  v1::EvalTraceRequest t;
  t.mutable_input()->mutable_ids()->mutable_ids()->Add(p.prompt().begin(), p.prompt().end());
  return t;
}

Rule EvalRule(const char* name, grpc::StatusCode code, std::string field,
              std::function<void(const Probe&, v1::EvalLogitsRequest*)> mutate) {
  return {name, code, std::move(field), [mutate](Probe& p, std::string* request, std::string*) -> std::optional<grpc::Status> {
            v1::EvalLogitsRequest req = ValidEval(p);
            mutate(p, &req);
            *request = "EvalLogits " + Brief(req);
            v1::EvalLogitsResponse resp;
            return p.EvalLogits(req, &resp);
          }};
}
Rule GenerateRule(const char* name, grpc::StatusCode code, std::string field,
                  std::function<void(const Probe&, v1::GenerateRequest*)> mutate) {
  return {name, code, std::move(field), [mutate](Probe& p, std::string* request, std::string*) -> std::optional<grpc::Status> {
            v1::GenerateRequest req = ValidGenerate(p);
            mutate(p, &req);
            *request = "Generate " + Brief(req);
            v1::GenerateResponse resp;
            return p.Generate(req, &resp);
          }};
}
Rule TraceRule(const char* name, std::string field, std::function<void(const Probe&, v1::EvalTraceRequest*)> mutate) {
  Rule r{name, grpc::StatusCode::INVALID_ARGUMENT, std::move(field),
         [mutate](Probe& p, std::string* request, std::string*) -> std::optional<grpc::Status> {
           v1::EvalTraceRequest req = ValidTrace(p);
           mutate(p, &req);
           *request = "EvalTrace " + Brief(req);
           v1::EvalTraceResponse resp;
           return p.Call([&](grpc::ClientContext* c) { return p.stub().EvalTrace(c, req, &resp); });
         }};
  r.optional_rpc = true;
  return r;
}

constexpr auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
constexpr auto kOutOfRange = grpc::StatusCode::OUT_OF_RANGE;

// The rules of engine.proto, in its order. Limits are the ones GetModelInfo advertises.
std::vector<Rule> ValidationRules() {
  using ER = v1::EvalLogitsRequest;
  using GR = v1::GenerateRequest;
  std::vector<Rule> r;
  r.push_back(EvalRule("contract.validation.input_unset", kInvalid, "input", [](const Probe&, ER* q) { q->clear_input(); }));
  r.push_back(EvalRule("contract.validation.input_ids_empty", kInvalid, "input.ids",
                       [](const Probe&, ER* q) { q->mutable_input()->mutable_ids()->clear_ids(); }));
  r.push_back(EvalRule("contract.validation.input_ids_with_add_bos", kInvalid, "add_bos",
                       [](const Probe&, ER* q) { q->mutable_input()->set_add_bos(true); }));
  r.push_back(EvalRule("contract.validation.input_id_outside_vocab", kInvalid, "input.ids",
                       [](const Probe& p, ER* q) { q->mutable_input()->mutable_ids()->set_ids(0, p.n_vocab()); }));
  r.push_back(EvalRule("contract.validation.input_id_negative", kInvalid, "input.ids",
                       [](const Probe&, ER* q) { q->mutable_input()->mutable_ids()->set_ids(0, -1); }));
  r.push_back(EvalRule("contract.validation.mode_unknown", kInvalid, "mode",
                       [](const Probe&, ER* q) { q->set_mode(static_cast<v1::EvalMode>(7)); }));
  r.push_back(EvalRule("contract.validation.positions_kind_unknown", kInvalid, "positions.kind",
                       [](const Probe&, ER* q) { q->mutable_positions()->set_kind(static_cast<v1::Positions::Kind>(9)); }));
  r.push_back(EvalRule("contract.validation.positions_list_empty", kInvalid, "positions.list",
                       [](const Probe&, ER* q) { q->mutable_positions()->set_kind(v1::Positions::LIST); }));
  r.push_back(EvalRule("contract.validation.positions_list_outside", kInvalid, "positions.list", [](const Probe& p, ER* q) {
    q->mutable_positions()->set_kind(v1::Positions::LIST);
    q->mutable_positions()->add_list(static_cast<int>(p.prompt().size()));
  }));
  r.push_back(EvalRule("contract.validation.positions_list_not_increasing", kInvalid, "positions.list",
                       [](const Probe&, ER* q) {
                         q->mutable_positions()->set_kind(v1::Positions::LIST);
                         q->mutable_positions()->add_list(1);
                         q->mutable_positions()->add_list(0);
                       }));
  r.push_back(EvalRule("contract.validation.positions_list_without_kind_list", kInvalid, "positions.list",
                       [](const Probe&, ER* q) { q->mutable_positions()->add_list(0); }));
  r.push_back(EvalRule("contract.validation.output_kind_unknown", kInvalid, "output.kind",
                       [](const Probe&, ER* q) { q->mutable_output()->set_kind(static_cast<v1::LogitsOutput::Kind>(9)); }));
  r.push_back(EvalRule("contract.validation.output_format_unknown", kInvalid, "output.format",
                       [](const Probe&, ER* q) { q->mutable_output()->set_format(static_cast<v1::FloatFormat>(9)); }));
  r.push_back(EvalRule("contract.validation.output_top_k_zero", kInvalid, "output.top_k",
                       [](const Probe&, ER* q) { q->mutable_output()->set_kind(v1::LogitsOutput::TOP_K); }));
  r.push_back(TraceRule("contract.validation.trace_layer_outside", "layers",
                        [](const Probe& p, v1::EvalTraceRequest* q) { q->add_layers(p.info().model().n_layer() + 1); }));
  r.push_back(TraceRule("contract.validation.trace_layers_not_increasing", "layers", [](const Probe&, v1::EvalTraceRequest* q) {
    q->add_layers(1);
    q->add_layers(0);
  }));
  r.push_back(TraceRule("contract.validation.trace_format_unknown", "format",
                        [](const Probe&, v1::EvalTraceRequest* q) { q->set_format(static_cast<v1::FloatFormat>(9)); }));
  r.push_back(GenerateRule("contract.validation.max_new_tokens_zero", kInvalid, "max_new_tokens",
                           [](const Probe&, GR* q) { q->set_max_new_tokens(0); }));
  r.push_back(GenerateRule("contract.validation.temperature_negative", kInvalid, "sampling.temperature",
                           [](const Probe&, GR* q) { q->mutable_sampling()->set_temperature(-1); }));
  r.push_back(GenerateRule("contract.validation.temperature_nan", kInvalid, "sampling.temperature", [](const Probe&, GR* q) {
    q->mutable_sampling()->set_temperature(std::numeric_limits<float>::quiet_NaN());
  }));
  r.push_back(GenerateRule("contract.validation.temperature_over_100", kInvalid, "sampling.temperature",
                           [](const Probe&, GR* q) { q->mutable_sampling()->set_temperature(101); }));
  r.push_back(GenerateRule("contract.validation.sampling_top_k_negative", kInvalid, "sampling.top_k",
                           [](const Probe&, GR* q) { q->mutable_sampling()->set_top_k(-1); }));
  r.push_back(GenerateRule("contract.validation.top_p_zero", kInvalid, "sampling.top_p",
                           [](const Probe&, GR* q) { q->mutable_sampling()->set_top_p(0); }));
  r.push_back(GenerateRule("contract.validation.top_p_over_1", kInvalid, "sampling.top_p",
                           [](const Probe&, GR* q) { q->mutable_sampling()->set_top_p(1.5f); }));
  r.push_back(GenerateRule("contract.validation.min_p_one", kInvalid, "sampling.min_p",
                           [](const Probe&, GR* q) { q->mutable_sampling()->set_min_p(1); }));
  r.push_back(GenerateRule("contract.validation.repetition_penalty_zero", kInvalid, "sampling.repetition_penalty",
                           [](const Probe&, GR* q) { q->mutable_sampling()->set_repetition_penalty(0); }));
  r.push_back(GenerateRule("contract.validation.repetition_window_below_minus_1", kInvalid, "sampling.repetition_window",
                           [](const Probe&, GR* q) { q->mutable_sampling()->set_repetition_window(-2); }));
  r.push_back(GenerateRule("contract.validation.stop_sequence_empty", kInvalid, "stop_sequences",
                           [](const Probe&, GR* q) { q->add_stop_sequences(""); }));
  r.push_back(GenerateRule("contract.validation.stop_token_outside_vocab", kInvalid, "stop_token_ids",
                           [](const Probe& p, GR* q) { q->add_stop_token_ids(p.n_vocab()); }));
  r.push_back(GenerateRule("contract.validation.top_logprobs_without_logprobs", kInvalid, "top_logprobs",
                           [](const Probe&, GR* q) { q->set_top_logprobs(1); }));
  r.push_back(GenerateRule("contract.validation.prefill_mode_unknown", kInvalid, "prefill_mode",
                           [](const Probe&, GR* q) { q->set_prefill_mode(static_cast<v1::EvalMode>(7)); }));
  r.push_back({"contract.validation.detokenize_id_outside_vocab", kInvalid, "ids",
               [](Probe& p, std::string* request, std::string*) -> std::optional<grpc::Status> {
                 *request = absl::StrCat("Detokenize ids: ", p.n_vocab());
                 v1::DetokenizeResponse resp;
                 return p.Detokenize({p.n_vocab()}, &resp);
               }});

  // The limits GetModelInfo advertises.
  r.push_back(EvalRule("contract.limits.max_top_k", kInvalid, "output.top_k", [](const Probe& p, ER* q) {
    q->mutable_output()->set_kind(v1::LogitsOutput::TOP_K);
    q->mutable_output()->set_top_k(p.info().limits().max_top_k() + 1);
  }));
  r.push_back(GenerateRule("contract.limits.max_new_tokens", kInvalid, "max_new_tokens",
                           [](const Probe& p, GR* q) { q->set_max_new_tokens(p.info().limits().max_new_tokens() + 1); }));
  r.push_back(GenerateRule("contract.limits.max_top_logprobs", kInvalid, "top_logprobs", [](const Probe& p, GR* q) {
    q->set_logprobs(true);
    q->set_top_logprobs(p.info().limits().max_top_logprobs() + 1);
  }));
  r.push_back(GenerateRule("contract.limits.max_stop_sequences", kInvalid, "stop_sequences", [](const Probe& p, GR* q) {
    for (int i = 0; i <= p.info().limits().max_stop_sequences(); ++i) q->add_stop_sequences("x");
  }));
  r.push_back(GenerateRule("contract.limits.max_stop_sequence_bytes", kInvalid, "stop_sequences", [](const Probe& p, GR* q) {
    q->add_stop_sequences(std::string(p.info().limits().max_stop_sequence_bytes() + 1, 'x'));
  }));
  r.push_back(EvalRule("contract.limits.max_context_eval", kOutOfRange, "max_context", [](const Probe& p, ER* q) {
    auto* ids = q->mutable_input()->mutable_ids()->mutable_ids();
    while (ids->size() <= p.max_context()) ids->Add(p.prompt().back());
  }));
  r.push_back(GenerateRule("contract.limits.max_context_generate", kOutOfRange, "max_context", [](const Probe& p, GR* q) {
    // Within max_new_tokens, but the prompt plus it is one past max_context.
    const int n = p.max_context() - static_cast<int>(p.prompt().size()) + 1;
    q->set_max_new_tokens(std::max(1, std::min(n, p.info().limits().max_new_tokens())));
    auto* ids = q->mutable_input()->mutable_ids()->mutable_ids();
    while (ids->size() + q->max_new_tokens() <= p.max_context()) ids->Add(p.prompt().back());
  }));
  r.push_back({"contract.limits.max_context_tokenize", kOutOfRange, "max_context",
               [](Probe& p, std::string* request, std::string* why) -> std::optional<grpc::Status> {
                 const int mtb = p.info().model().max_token_bytes();
                 if (!p.info().model().has_tokenizer() || mtb <= 0) {
                   *why = "the server advertises no max_token_bytes (0): texts are tokenized in full";
                   return std::nullopt;
                 }
                 v1::TokenizeRequest req;
                 req.set_text(std::string(static_cast<size_t>(mtb) * (p.max_context() + 1) + 1, 'a'));
                 *request = absl::StrCat("Tokenize text: ", req.text().size(), " bytes of 'a'");
                 v1::TokenizeResponse resp;
                 return p.Call([&](grpc::ClientContext* c) { return p.stub().Tokenize(c, req, &resp); });
               }});
  r.push_back({"contract.limits.max_message_bytes", kInvalid, "bytes",
               [](Probe& p, std::string* request, std::string* why) -> std::optional<grpc::Status> {
                 const int64_t row = int64_t{p.n_vocab()} * 4;
                 const int64_t n = p.info().limits().max_message_bytes() / std::max<int64_t>(1, row) + 1;
                 if (n > p.max_context()) {
                   *why = absl::StrCat("max_context ", p.max_context(), " rows of ", row,
                                       " bytes cannot exceed max_message_bytes ", p.info().limits().max_message_bytes());
                   return std::nullopt;
                 }
                 v1::EvalLogitsRequest req = ValidEval(p);
                 req.mutable_positions()->set_kind(v1::Positions::ALL);
                 auto* ids = req.mutable_input()->mutable_ids()->mutable_ids();
                 while (ids->size() < n) ids->Add(p.prompt().back());
                 *request = absl::StrCat("EvalLogits ", n, " ids, positions ALL, output FULL F32 (", n * row, " bytes)");
                 v1::EvalLogitsResponse resp;
                 return p.EvalLogits(req, &resp);
               }});
  return r;
}

void RunRule(const Rule& rule, Probe& p, Outcome& out) {
  std::string request, why;
  std::optional<grpc::Status> s = rule.send(p, &request, &why);
  if (!s) return out.Skip(why);
  if (rule.optional_rpc && s->error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return out.Skip("EvalTrace is not implemented (UNIMPLEMENTED)");
  }
  const std::string expected = absl::StrCat(CodeName(rule.code), " with a message naming \"", rule.field, "\"");
  if (s->error_code() != rule.code || !absl::StrContains(s->error_message(), rule.field)) {
    return out.Fail(request, expected, Describe(*s));
  }
}

void CheckDeadline(Probe& p, Outcome& out) {
  // A generation ten times longer than the deadline (the client timed the same
  // request in speed.wall_clock's run), so that a server faster this time still
  // cannot finish in time.
  SpeedData& sd = p.Speed();
  if (!sd.status.ok()) return out.Fail(Brief(sd.request), "OK", "GenerateStream: " + Describe(sd.status));
  v1::GenerateRequest req = sd.request;
  const double deadline_ms = std::max(2.0, sd.wall_ms / 10);
  grpc::ClientContext ctx;
  p.Deadline(&ctx, deadline_ms / 1000);
  v1::GenerateResponse resp;
  grpc::Status s = p.stub().Generate(&ctx, req, &resp);
  const std::string desc = absl::StrCat("Generate ", Brief(req), " with a ", deadline_ms, " ms deadline");
  if (s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
    return out.Fail(desc, absl::StrCat("DEADLINE_EXCEEDED (the same generation took ", sd.wall_ms, " ms)"), Describe(s));
  }
  // The server must still answer: a deadline is not a crash or a stuck slot.
  v1::GenerateRequest small = ValidGenerate(p);
  s = p.Generate(small, &resp);
  if (!s.ok()) return out.Fail("Generate " + Brief(small) + " after the deadline", "OK", Describe(s));
}

void CheckCancellation(Probe& p, Outcome& out) {
  SpeedData& sd = p.Speed();
  if (!sd.status.ok()) return out.Fail(Brief(sd.request), "OK", "GenerateStream: " + Describe(sd.status));
  grpc::ClientContext ctx;
  p.Deadline(&ctx, p.options().call_timeout_s);
  auto reader = p.stub().GenerateStream(&ctx, sd.request);
  v1::GenerateStreamResponse msg;
  const std::string desc = "GenerateStream " + Brief(sd.request) + ", cancelled after the first token";
  const bool got = reader->Read(&msg);
  ctx.TryCancel();
  while (reader->Read(&msg)) {
  }
  grpc::Status s = reader->Finish();
  if (!got) return out.Fail(desc, "a first token", Describe(s));
  if (s.error_code() != grpc::StatusCode::CANCELLED) return out.Fail(desc, "CANCELLED", Describe(s));
  v1::GenerateRequest small = ValidGenerate(p);
  v1::GenerateResponse resp;
  s = p.Generate(small, &resp);
  if (!s.ok()) return out.Fail("Generate " + Brief(small) + " after the cancel", "OK", Describe(s));
}

void CheckStreamEqualsUnary(Probe& p, Outcome& out) {
  GreedyData& g = p.Greedy();
  if (!g.status.ok()) return out.Fail("Generate " + Brief(g.request), "OK", Describe(g.status));
  grpc::ClientContext ctx;
  p.Deadline(&ctx, p.options().call_timeout_s);
  auto reader = p.stub().GenerateStream(&ctx, g.request);
  v1::GenerateStreamResponse msg;
  std::vector<v1::GeneratedToken> tokens;
  v1::GenerateResponse summary;
  while (reader->Read(&msg)) {
    if (msg.has_token()) tokens.push_back(msg.token());
    if (msg.has_summary()) summary = msg.summary();
  }
  grpc::Status s = reader->Finish();
  const std::string gen_req = "GenerateStream and Generate " + Brief(g.request);
  if (!s.ok()) return out.Fail(gen_req, "OK", "GenerateStream: " + Describe(s));
  const v1::GenerateResponse& u = g.response;
  if (static_cast<int>(tokens.size()) != u.tokens_size()) {
    return out.Fail(gen_req, absl::StrCat(u.tokens_size(), " streamed tokens (as Generate)"), absl::StrCat(tokens.size()));
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].SerializeAsString() != u.tokens(static_cast<int>(i)).SerializeAsString()) {
      return out.Fail(gen_req, "token " + std::to_string(i) + " as Generate: " + Brief(u.tokens(static_cast<int>(i))),
                      Brief(tokens[i]));
    }
  }
  if (summary.ids_size() != u.ids_size() || !std::equal(u.ids().begin(), u.ids().end(), summary.ids().begin()) ||
      summary.raw_text() != u.raw_text() || summary.finish_reason() != u.finish_reason() ||
      summary.usage().SerializeAsString() != u.usage().SerializeAsString()) {
    return out.Fail(gen_req, "summary ids, raw_text, finish_reason, usage as Generate",
                    "differ: stream " + Brief(summary) + " vs unary ids " +
                        IdsText(std::vector<int32_t>(u.ids().begin(), u.ids().end())));
  }
  if (summary.tokens_size() != 0) return out.Fail(gen_req, "an empty tokens field in the summary", absl::StrCat(summary.tokens_size()));

  // EvalLogitsStream against EvalLogits: the same rows, byte for byte.
  v1::EvalLogitsResponse* full;
  s = p.FullAll(&full);
  const std::string eval_req = "EvalLogitsStream and EvalLogits " + Brief(p.FullAllRequest());
  if (!s.ok()) return out.Fail(eval_req, "OK", "EvalLogits: " + Describe(s));
  grpc::ClientContext ectx;
  p.Deadline(&ectx, p.options().call_timeout_s);
  auto er = p.stub().EvalLogitsStream(&ectx, p.FullAllRequest());
  v1::EvalLogitsStreamResponse em;
  int i = 0;
  bool first = true;
  std::string mismatch;
  while (er->Read(&em)) {
    if (first && (em.n_vocab() != full->n_vocab() || em.mode() != full->mode() ||
                  !std::equal(full->token_ids().begin(), full->token_ids().end(), em.token_ids().begin(), em.token_ids().end()))) {
      mismatch = "the first message's token_ids, n_vocab, mode";
    }
    first = false;
    if (mismatch.empty() && (i >= full->positions_size() ||
                             em.position().SerializeAsString() != full->positions(i).SerializeAsString())) {
      mismatch = absl::StrCat("position message ", i);
    }
    ++i;
  }
  s = er->Finish();
  if (!s.ok()) return out.Fail(eval_req, "OK", "EvalLogitsStream: " + Describe(s));
  if (mismatch.empty() && i != full->positions_size()) mismatch = absl::StrCat(i, " messages for ", full->positions_size(), " positions");
  if (!mismatch.empty()) return out.Fail(eval_req, "the same positions, byte for byte", mismatch + " differs");
}

// ---------------------------------------------------------------------------
// consistency.*
// ---------------------------------------------------------------------------

// A generated token within this much of the row's maximum logit counts as the
// argmax: an engine may break a near-tie the other way after float reordering.
constexpr float kTieLogit = 1e-3f;
// Log-probabilities of the same float32 row, computed in double by two callers.
constexpr double kLogprobTol = 1e-4;

bool GreedyReady(GreedyData& g, Outcome& out) {
  if (!g.status.ok()) {
    out.Fail("Generate " + Brief(g.request), "OK", Describe(g.status));
    return false;
  }
  if (g.response.ids().empty()) {
    out.Fail("Generate " + Brief(g.request), "at least one token (ignore_eos)", "none");
    return false;
  }
  if (!g.eval_status.ok()) {
    out.Fail("EvalLogits " + Brief(g.eval_request), "OK", Describe(g.eval_status));
    return false;
  }
  if (g.rows.size() != static_cast<size_t>(g.response.ids_size())) {
    out.Fail("EvalLogits " + Brief(g.eval_request), absl::StrCat(g.response.ids_size(), " rows"), absl::StrCat(g.rows.size()));
    return false;
  }
  return true;
}

void CheckGreedyMatchesLogits(Probe& p, Outcome& out) {
  GreedyData& g = p.Greedy();
  if (!GreedyReady(g, out)) return;
  const size_t np = p.prompt().size();
  for (int i = 0; i < g.response.ids_size(); ++i) {
    const std::vector<float>& row = g.rows[i];
    const int32_t id = g.response.ids(i);
    const int32_t best = ArgMax(row);
    const std::string req = absl::StrCat("Generate ", Brief(g.request), "; then EvalLogits SEQUENTIAL of prompt + the first ",
                                         i, " generated tokens, row at position ", np - 1 + i);
    if (id < 0 || id >= static_cast<int32_t>(row.size())) {
      return out.Fail(req, absl::StrCat("generated token ", i, " = argmax ", best), absl::StrCat(id, " (outside the vocabulary)"));
    }
    if (id != best && row[id] < row[best] - kTieLogit) {
      return out.Fail(req, absl::StrCat("generated token ", i, " = argmax ", best, " (logit ", row[best], ")"),
                      absl::StrCat(id, " (logit ", row[id], ")"));
    }
  }
}

void CheckLogprobsMatchLogits(Probe& p, Outcome& out) {
  GreedyData& g = p.Greedy();
  if (!GreedyReady(g, out)) return;
  if (g.response.tokens_size() != g.response.ids_size()) {
    return out.Fail("Generate " + Brief(g.request), absl::StrCat(g.response.ids_size(), " tokens"),
                    absl::StrCat(g.response.tokens_size()));
  }
  for (int i = 0; i < g.response.tokens_size(); ++i) {
    const v1::GeneratedToken& t = g.response.tokens(i);
    const std::vector<float>& row = g.rows[i];
    const std::string req = absl::StrCat("Generate ", Brief(g.request), "; token ", i, " against the EvalLogits SEQUENTIAL row");
    if (t.id() < 0 || t.id() >= static_cast<int32_t>(row.size())) return out.Fail(req, "an id in the vocabulary", absl::StrCat(t.id()));
    if (!t.has_logprob()) return out.Fail(req, "a logprob (logprobs = true)", "none");
    const double want = LogSoftmaxAt(row, t.id());
    if (!(std::fabs(t.logprob() - want) <= kLogprobTol)) {
      return out.Fail(req, absl::StrCat("logprob of id ", t.id(), " = log-softmax of the row = ", want), absl::StrCat(t.logprob()));
    }
    const std::vector<TokenLogit> top = TopK(row, t.top_size());
    if (t.top_size() != g.request.top_logprobs()) {
      return out.Fail(req, absl::StrCat(g.request.top_logprobs(), " alternatives"), absl::StrCat(t.top_size()));
    }
    for (int j = 0; j < t.top_size(); ++j) {
      const v1::TokenAlternative& a = t.top(j);
      const bool in_vocab = a.id() >= 0 && a.id() < static_cast<int32_t>(row.size());
      if (!in_vocab || std::fabs(a.logit() - row[a.id()]) > kTieLogit || a.logit() < top[j].logit - kTieLogit ||
          std::fabs(a.logprob() - LogSoftmaxAt(row, a.id())) > kLogprobTol) {
        return out.Fail(req, absl::StrCat("alternative ", j, " = id ", top[j].id, " logit ", top[j].logit, " logprob ",
                                          LogSoftmaxAt(row, top[j].id)),
                        absl::StrCat("id ", a.id(), " logit ", a.logit(), " logprob ", a.logprob()));
      }
    }
  }
}

void CheckTopKMatchesFull(Probe& p, Outcome& out) {
  v1::EvalLogitsResponse* full;
  grpc::Status s = p.FullAll(&full);
  if (!s.ok()) return out.Fail("EvalLogits " + Brief(p.FullAllRequest()), "OK", Describe(s));
  v1::LogitsOutput o;
  o.set_kind(v1::LogitsOutput::TOP_K);
  o.set_top_k(std::min(8, p.n_vocab()));
  const v1::EvalLogitsRequest req = p.PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::ALL, o);
  v1::EvalLogitsResponse r;
  s = p.EvalLogits(req, &r);
  const std::string desc = "EvalLogits " + Brief(req) + " against the FULL rows of the same request";
  if (!s.ok()) return out.Fail(desc, "OK", Describe(s));
  if (r.positions_size() != full->positions_size()) {
    return out.Fail(desc, absl::StrCat(full->positions_size(), " positions"), absl::StrCat(r.positions_size()));
  }
  for (int i = 0; i < r.positions_size(); ++i) {
    const std::vector<float> row = F32Row(full->positions(i).logits());
    const std::vector<TokenLogit> want = TopK(row, o.top_k());
    const v1::PositionLogits& got = r.positions(i);
    std::vector<std::string> w, g;
    for (const auto& t : want) w.push_back(absl::StrCat(t.id, ":", t.logit));
    for (int j = 0; j < got.top_ids_size() && j < got.top_logits_size(); ++j) {
      g.push_back(absl::StrCat(got.top_ids(j), ":", got.top_logits(j)));
    }
    if (w != g || got.top_ids_size() != got.top_logits_size()) {
      return out.Fail(desc, absl::StrCat("position ", i, " top ", absl::StrJoin(w, " ")), absl::StrJoin(g, " "));
    }
    if (got.argmax_id() != full->positions(i).argmax_id() ||
        got.has_next_token_logprob() != full->positions(i).has_next_token_logprob() ||
        std::fabs(got.next_token_logprob() - full->positions(i).next_token_logprob()) > 1e-9) {
      return out.Fail(desc, absl::StrCat("position ", i, " argmax_id and next_token_logprob as FULL: ",
                                         full->positions(i).argmax_id(), ", ", full->positions(i).next_token_logprob()),
                      absl::StrCat(got.argmax_id(), ", ", got.next_token_logprob()));
    }
  }
}

void CheckF16MatchesF32(Probe& p, Outcome& out) {
  v1::EvalLogitsResponse* full;
  grpc::Status s = p.FullAll(&full);
  if (!s.ok()) return out.Fail("EvalLogits " + Brief(p.FullAllRequest()), "OK", Describe(s));
  v1::LogitsOutput o;
  o.set_format(v1::FLOAT_FORMAT_F16);
  const v1::EvalLogitsRequest req = p.PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::ALL, o);
  v1::EvalLogitsResponse r;
  s = p.EvalLogits(req, &r);
  const std::string desc = "EvalLogits " + Brief(req) + " against the F32 rows of the same request";
  if (!s.ok()) return out.Fail(desc, "OK", Describe(s));
  if (r.positions_size() != full->positions_size()) {
    return out.Fail(desc, absl::StrCat(full->positions_size(), " positions"), absl::StrCat(r.positions_size()));
  }
  for (int i = 0; i < r.positions_size(); ++i) {
    const std::vector<float> row = F32Row(full->positions(i).logits());
    const std::string& got = r.positions(i).logits();
    if (got.size() != row.size() * 2) {
      return out.Fail(desc, absl::StrCat("position ", i, ": ", row.size() * 2, " bytes"), absl::StrCat(got.size(), " bytes"));
    }
    for (size_t v = 0; v < row.size(); ++v) {
      uint16_t h;
      std::memcpy(&h, got.data() + 2 * v, 2);
      if (h != Fp32ToFp16(row[v])) {
        return out.Fail(desc, absl::StrCat("position ", i, " id ", v, ": f32 ", row[v], " rounded to nearest even = f16 ",
                                           Fp16ToFp32(Fp32ToFp16(row[v]))),
                        absl::StrCat("f16 ", Fp16ToFp32(h)));
      }
    }
  }
}

void CheckTokenizeRoundTrip(Probe& p, Outcome& out) {
  if (!p.info().model().has_tokenizer()) return out.Skip("the model has no tokenizer (has_tokenizer = false)");
  v1::TokenizeRequest req;
  req.set_text(Probe::kPromptText);
  req.set_add_bos(false);
  req.set_return_pieces(true);
  v1::TokenizeResponse t;
  grpc::Status s = p.Call([&](grpc::ClientContext* c) { return p.stub().Tokenize(c, req, &t); });
  if (!s.ok()) return out.Fail("Tokenize " + Brief(req), "OK", Describe(s));
  const std::vector<int32_t> ids(t.ids().begin(), t.ids().end());
  if (t.pieces_size() != t.ids_size()) return out.Fail("Tokenize " + Brief(req), absl::StrCat(ids.size(), " pieces"), absl::StrCat(t.pieces_size()));
  std::string joined;
  for (const auto& piece : t.pieces()) joined += piece;
  v1::DetokenizeResponse d;
  s = p.Detokenize(ids, &d);
  const std::string dreq = "Detokenize " + IdsText(ids) + " (Tokenize's ids)";
  if (!s.ok()) return out.Fail(dreq, "OK", Describe(s));
  if (d.raw_text() != joined) return out.Fail(dreq, "Tokenize's pieces joined: \"" + joined + "\"", "\"" + d.raw_text() + "\"");
  // Text -> ids -> text gives the text back (SentencePiece models add one leading space).
  const std::string text = Probe::kPromptText;
  if (d.raw_text() != text && d.raw_text() != " " + text) {
    return out.Fail(dreq, "\"" + text + "\" (or with SentencePiece's one leading space)", "\"" + d.raw_text() + "\"");
  }
  // The server's own text tokenizes back to ids that give the same text.
  v1::TokenizeRequest again;
  again.set_text(d.raw_text());
  again.set_add_bos(false);
  v1::TokenizeResponse t2;
  s = p.Call([&](grpc::ClientContext* c) { return p.stub().Tokenize(c, again, &t2); });
  if (!s.ok()) return out.Fail("Tokenize " + Brief(again), "OK", Describe(s));
  v1::DetokenizeResponse d2;
  const std::vector<int32_t> ids2(t2.ids().begin(), t2.ids().end());
  s = p.Detokenize(ids2, &d2);
  if (!s.ok()) return out.Fail("Detokenize " + IdsText(ids2), "OK", Describe(s));
  if (d2.raw_text() != d.raw_text() && d2.raw_text() != " " + d.raw_text()) {
    return out.Fail("Tokenize then Detokenize of \"" + d.raw_text() + "\"", "\"" + d.raw_text() + "\"", "\"" + d2.raw_text() + "\"");
  }
}

void CheckGenerateTextMatchesIds(Probe& p, Outcome& out) {
  if (!p.info().model().has_tokenizer()) return out.Skip("the model has no tokenizer (has_tokenizer = false)");
  GreedyData& g = p.Greedy();
  if (!g.status.ok()) return out.Fail("Generate " + Brief(g.request), "OK", Describe(g.status));
  const std::vector<int32_t> ids(g.response.ids().begin(), g.response.ids().end());
  v1::DetokenizeResponse d;
  grpc::Status s = p.Detokenize(ids, &d);
  const std::string req = "Generate " + Brief(g.request) + "; Detokenize of its ids " + IdsText(ids);
  if (!s.ok()) return out.Fail(req, "OK", Describe(s));
  std::string joined;
  for (const auto& t : g.response.tokens()) joined += t.raw_text();
  // No stop sequence was asked for, so the whole text is the ids' text.
  if (d.raw_text() != g.response.raw_text()) {
    return out.Fail(req, "Generate's raw_text = Detokenize(ids) = \"" + d.raw_text() + "\"", "\"" + g.response.raw_text() + "\"");
  }
  if (joined != g.response.raw_text()) {
    return out.Fail(req, "the tokens' raw_text joined = raw_text \"" + g.response.raw_text() + "\"", "\"" + joined + "\"");
  }
}

void CheckDeterminism(Probe& p, Outcome& out) {
  v1::GenerateRequest req = ValidGenerate(p);
  req.set_max_new_tokens(std::max(1, p.TokensAllowed(p.options().generate_tokens, static_cast<int>(p.prompt().size()))));
  req.set_ignore_eos(true);
  req.set_logprobs(true);
  v1::Sampling* s = req.mutable_sampling();
  s->set_temperature(0.9f);
  s->set_top_k(40);
  s->set_top_p(0.95f);
  s->set_seed(1234);
  std::string first;
  for (int run = 0; run < 2; ++run) {
    v1::GenerateResponse r;
    grpc::Status st = p.Generate(req, &r);
    if (!st.ok()) return out.Fail("Generate " + Brief(req), "OK", Describe(st));
    r.clear_timings();  // the only part that may differ
    if (run == 0) first = r.SerializeAsString();
    else if (r.SerializeAsString() != first) {
      v1::GenerateResponse a;
      a.ParseFromString(first);
      return out.Fail("Generate " + Brief(req) + " twice", "the same response (timings aside): ids " +
                      IdsText(std::vector<int32_t>(a.ids().begin(), a.ids().end())),
                      "ids " + IdsText(std::vector<int32_t>(r.ids().begin(), r.ids().end())));
    }
  }
  const v1::EvalLogitsRequest ereq = p.PromptEval(v1::EVAL_MODE_SEQUENTIAL, v1::Positions::ALL, v1::LogitsOutput());
  for (int run = 0; run < 2; ++run) {
    v1::EvalLogitsResponse r;
    grpc::Status st = p.EvalLogits(ereq, &r);
    if (!st.ok()) return out.Fail("EvalLogits " + Brief(ereq), "OK", Describe(st));
    r.clear_timings();
    if (run == 0) first = r.SerializeAsString();
    else if (r.SerializeAsString() != first) return out.Fail("EvalLogits " + Brief(ereq) + " twice", "the same bytes", "different bytes");
  }
}

void CheckTraceFinalNorm(Probe& p, Outcome& out) {
  const int n_layer = p.info().model().n_layer();
  const int n_embd = p.info().model().n_embd();
  v1::EvalTraceRequest req = ValidTrace(p);
  req.mutable_positions()->set_kind(v1::Positions::ALL);
  req.add_layers(n_layer - 1);
  req.add_layers(n_layer);
  v1::EvalTraceResponse r;
  grpc::Status s = p.Call([&](grpc::ClientContext* c) { return p.stub().EvalTrace(c, req, &r); });
  const std::string desc = "EvalTrace " + Brief(req);
  if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) return out.Skip("EvalTrace is not implemented (UNIMPLEMENTED)");
  if (!s.ok()) return out.Fail(desc, "OK", Describe(s));
  const int n = static_cast<int>(p.prompt().size());
  if (r.n_layer() != n_layer || r.n_embd() != n_embd || r.residuals_size() != 2 * n ||
      !std::equal(r.token_ids().begin(), r.token_ids().end(), p.prompt().begin(), p.prompt().end())) {
    return out.Fail(desc, absl::StrCat("n_layer ", n_layer, ", n_embd ", n_embd, ", ", 2 * n, " residuals, token_ids = input"),
                    absl::StrCat("n_layer ", r.n_layer(), ", n_embd ", r.n_embd(), ", ", r.residuals_size(), " residuals"));
  }
  // The final norm is RMS norm times one gain vector g: h = x / rms(x) * g at every
  // position. Fit g by least squares over the positions, then every h must match.
  const double eps = p.info().model().rms_eps();
  std::vector<std::vector<double>> u(n), h(n);
  for (int i = 0; i < n; ++i) {
    const v1::LayerResidual& a = r.residuals(2 * i);
    const v1::LayerResidual& b = r.residuals(2 * i + 1);
    if (a.position() != i || b.position() != i || a.layer() != n_layer - 1 || b.layer() != n_layer ||
        a.hidden().size() != static_cast<size_t>(n_embd) * 4 || b.hidden().size() != a.hidden().size()) {
      return out.Fail(desc, absl::StrCat("position ", i, ": layers ", n_layer - 1, " and ", n_layer, " of ", n_embd, " floats"),
                      absl::StrCat("position ", a.position(), "/", b.position(), " layers ", a.layer(), "/", b.layer()));
    }
    const std::vector<float> x = F32Row(a.hidden()), y = F32Row(b.hidden());
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double rms = std::sqrt(ss / n_embd + eps);
    for (int d = 0; d < n_embd; ++d) {
      u[i].push_back(x[d] / rms);
      h[i].push_back(y[d]);
    }
  }
  double worst = 0, scale = 1e-6;
  int worst_pos = 0, worst_dim = 0;
  for (int d = 0; d < n_embd; ++d) {
    double num = 0, den = 0;
    for (int i = 0; i < n; ++i) {
      num += h[i][d] * u[i][d];
      den += u[i][d] * u[i][d];
    }
    const double g = den > 0 ? num / den : 0;
    for (int i = 0; i < n; ++i) {
      scale = std::max(scale, std::fabs(h[i][d]));
      const double e = std::fabs(h[i][d] - g * u[i][d]);
      if (e > worst) {
        worst = e;
        worst_pos = i;
        worst_dim = d;
      }
    }
  }
  if (worst > 1e-3 * scale) {
    return out.Fail(desc, "layer n_layer = rms_norm(layer n_layer-1) * one gain vector at every position (error <= 1e-3 of max |h|)",
                    absl::StrCat("error ", worst, " at position ", worst_pos, " dim ", worst_dim, " (max |h| ", scale, ")"));
  }
  out.Note(absl::StrCat("largest error ", worst, " of max |h| ", scale));
}

void CheckPerplexity(Probe& p, Outcome& out) {
  v1::EvalLogitsResponse* full;
  grpc::Status s = p.FullAll(&full);
  if (!s.ok()) return out.Fail("EvalLogits " + Brief(p.FullAllRequest()), "OK", Describe(s));
  v1::LogitsOutput o;
  o.set_kind(v1::LogitsOutput::NONE);
  const v1::EvalLogitsRequest req = p.PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::ALL, o);
  v1::EvalLogitsResponse r;
  s = p.EvalLogits(req, &r);
  const std::string desc = "EvalLogits " + Brief(req) + " against the FULL rows of the same request";
  if (!s.ok()) return out.Fail(desc, "OK", Describe(s));
  const std::vector<int32_t>& ids = p.prompt();
  if (r.positions_size() != static_cast<int>(ids.size())) {
    return out.Fail(desc, absl::StrCat(ids.size(), " positions"), absl::StrCat(r.positions_size()));
  }
  double nll_none = 0, nll_full = 0;
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    const double want = LogSoftmaxAt(F32Row(full->positions(static_cast<int>(i)).logits()), ids[i + 1]);
    const v1::PositionLogits& got = r.positions(static_cast<int>(i));
    if (!got.has_next_token_logprob() || std::fabs(got.next_token_logprob() - want) > 1e-6) {
      return out.Fail(desc, absl::StrCat("position ", i, " next_token_logprob = log-softmax of the FULL row at id ", ids[i + 1],
                                         " = ", want),
                      got.has_next_token_logprob() ? absl::StrCat(got.next_token_logprob()) : "absent");
    }
    if (!r.positions(static_cast<int>(i)).logits().empty()) return out.Fail(desc, "no logits bytes with NONE", "bytes");
    nll_none -= got.next_token_logprob();
    nll_full -= want;
  }
  const double m = std::max<size_t>(1, ids.size() - 1);
  out.Note(absl::StrCat("perplexity ", std::exp(nll_none / m), " (NONE) = ", std::exp(nll_full / m), " (FULL)"));
}

// ---------------------------------------------------------------------------
// speed.*
// ---------------------------------------------------------------------------

bool Near(double reported, double computed) {
  return std::fabs(reported - computed) <= 0.05 * std::max(std::fabs(computed), 1e-9) + 1e-6;
}

void CheckTimingsConsistent(Probe& p, Outcome& out) {
  SpeedData& d = p.Speed();
  const std::string req = "GenerateStream " + Brief(d.request);
  if (!d.status.ok()) return out.Fail(req, "OK", Describe(d.status));
  const v1::GenerateResponse& r = d.summary;
  const v1::GenerateTimings& t = r.timings();
  const int completion = r.ids_size();
  if (d.streamed_tokens != completion || r.usage().completion_tokens() != completion ||
      r.usage().prompt_tokens() != static_cast<int>(p.prompt().size()) ||
      r.usage().total_tokens() != r.usage().prompt_tokens() + completion) {
    return out.Fail(req, absl::StrCat("usage = ", p.prompt().size(), " prompt + ", d.streamed_tokens,
                                      " streamed tokens (", completion, " ids)"),
                    Brief(r.usage()));
  }
  for (double v : {t.queue_ms(), t.tokenize_ms(), t.prefill_ms(), t.decode_ms(), t.time_to_first_token_ms(),
                   t.prefill_tokens_per_s(), t.decode_tokens_per_s(), t.total_ms()}) {
    if (!(v >= 0 && std::isfinite(v))) return out.Fail(req, "finite, non-negative timings", Brief(t));
  }
  if (t.prefill_ms() > 0 && !Near(t.prefill_tokens_per_s(), r.usage().prompt_tokens() * 1000.0 / t.prefill_ms())) {
    return out.Fail(req, absl::StrCat("prefill_tokens_per_s = prompt_tokens / prefill_ms = ",
                                      r.usage().prompt_tokens() * 1000.0 / t.prefill_ms()),
                    absl::StrCat(t.prefill_tokens_per_s()));
  }
  if (completion >= 2 && t.decode_ms() > 0 && !Near(t.decode_tokens_per_s(), (completion - 1) * 1000.0 / t.decode_ms())) {
    return out.Fail(req, absl::StrCat("decode_tokens_per_s = (completion_tokens - 1) / decode_ms = ",
                                      (completion - 1) * 1000.0 / t.decode_ms()),
                    absl::StrCat(t.decode_tokens_per_s()));
  }
  if (t.time_to_first_token_ms() > t.total_ms() + 1e-6 || t.prefill_ms() + t.decode_ms() > t.total_ms() * 1.01 + 0.1) {
    return out.Fail(req, "time_to_first_token_ms and prefill_ms + decode_ms within total_ms", Brief(t));
  }
  // The server cannot have worked longer than the client waited.
  if (t.total_ms() > d.wall_ms * 1.05 + 1) {
    return out.Fail(req, absl::StrCat("total_ms <= the client's wall time ", d.wall_ms, " ms"), absl::StrCat(t.total_ms()));
  }
  v1::EvalLogitsResponse* full;
  grpc::Status s = p.FullAll(&full);
  const std::string ereq = "EvalLogits " + Brief(p.FullAllRequest());
  if (!s.ok()) return out.Fail(ereq, "OK", Describe(s));
  const v1::EvalTimings& e = full->timings();
  const size_t n = p.prompt().size();
  if (e.eval_ms() > 0 && !Near(e.tokens_per_s(), n * 1000.0 / e.eval_ms())) {
    return out.Fail(ereq, absl::StrCat("tokens_per_s = ", n, " tokens / eval_ms = ", n * 1000.0 / e.eval_ms()),
                    absl::StrCat(e.tokens_per_s()));
  }
  if (e.eval_ms() > e.total_ms() + 1e-6 || e.total_ms() > p.full_all_wall_ms() * 1.05 + 1) {
    return out.Fail(ereq, absl::StrCat("eval_ms <= total_ms <= the client's wall time ", p.full_all_wall_ms(), " ms"), Brief(e));
  }
}

void CheckWallClock(Probe& p, Outcome& out) {
  SpeedData& d = p.Speed();
  const std::string req = "GenerateStream " + Brief(d.request);
  if (!d.status.ok()) return out.Fail(req, "OK", Describe(d.status));
  const v1::GenerateTimings& t = d.summary.timings();
  if (d.streamed_tokens < 2) return out.Skip("fewer than two tokens streamed: no decode span to time");
  // Tokens are streamed as they are made: the client sees the decode steps
  // between its first and last token arrive.
  const double span = d.last_token_ms - d.first_token_ms;
  const ConformanceOptions& o = p.options();
  const double allowed = o.wall_clock_factor * t.decode_ms() + o.wall_clock_slack_ms;
  const double client_rate = (d.streamed_tokens - 1) * 1000.0 / std::max(span, 1e-3);
  const std::string seen = absl::StrCat("the client saw ", d.streamed_tokens - 1, " decode steps in ", span, " ms (",
                                        client_rate, " tokens/s); the server reported decode_ms ", t.decode_ms(),
                                        " and decode_tokens_per_s ", t.decode_tokens_per_s());
  if (span > allowed) {
    return out.Fail(req, absl::StrCat("first-to-last token span <= ", o.wall_clock_factor, " x decode_ms + ",
                                      o.wall_clock_slack_ms, " ms = ", allowed, " ms"),
                    seen);
  }
  if (t.decode_tokens_per_s() > o.wall_clock_factor * client_rate + 1000.0 * (d.streamed_tokens - 1) / o.wall_clock_slack_ms) {
    return out.Fail(req, absl::StrCat("decode_tokens_per_s <= ", o.wall_clock_factor, " x the client's rate"), seen);
  }
  out.Note(seen);
}

struct CheckDef {
  const char* name;
  const char* group;
  const char* catches;
  bool required;
  void (*run)(Probe&, Outcome&);
};

const CheckDef kChecks[] = {
    {"contract.health", "contract", "grpc.health.v1 does not report SERVING for \"\" and bitnet.v1.Engine", true, CheckHealth},
    {"contract.reflection", "contract", "server reflection is off or does not list bitnet.v1.Engine", true, CheckReflection},
    {"contract.model_info", "contract",
     "GetModelInfo incomplete or implausible (empty or 0-byte model, bad sha256, shapes, limits)", true, CheckModelInfo},
    {"contract.shapes", "contract", "EvalLogits rows, positions, token ids or argmax_id inconsistent with n_vocab and the input",
     true, CheckShapes},
    {"contract.deadline", "contract", "a passed deadline is not DEADLINE_EXCEEDED, or leaves the server unable to serve",
     true, CheckDeadline},
    {"contract.cancellation", "contract", "a cancelled stream is not CANCELLED, or leaves the server unable to serve", true,
     CheckCancellation},
    {"contract.stream_equals_unary", "contract", "GenerateStream or EvalLogitsStream differ from their unary forms", true,
     CheckStreamEqualsUnary},
    {"consistency.greedy_matches_logits", "consistency",
     "greedy tokens that are not the argmax of EvalLogits over prompt + tokens so far (fake or stale tokens)", true,
     CheckGreedyMatchesLogits},
    {"consistency.logprobs_match_logits", "consistency",
     "Generate's logprobs and alternatives that are not log-softmax of EvalLogits rows", true, CheckLogprobsMatchLogits},
    {"consistency.generate_text_matches_ids", "consistency", "Generate's text that is not the text of its ids", true,
     CheckGenerateTextMatchesIds},
    {"consistency.top_k_matches_full", "consistency", "TOP_K output that is not the top of the FULL rows", true,
     CheckTopKMatchesFull},
    {"consistency.f16_matches_f32", "consistency", "F16 output that is not the F32 rows rounded to nearest even", true,
     CheckF16MatchesF32},
    {"consistency.tokenize_round_trip", "consistency", "Tokenize pieces, Detokenize and text round trips disagree", true,
     CheckTokenizeRoundTrip},
    {"consistency.determinism", "consistency", "the same seeded request twice gives different bytes", true,
     CheckDeterminism},
    {"consistency.trace_final_norm", "consistency",
     "EvalTrace's last entry is not an RMS norm (one gain vector) of the last layer", false, CheckTraceFinalNorm},
    {"consistency.perplexity_none_equals_full", "consistency",
     "NONE-output next_token_logprob (perplexity) differs from the one of FULL rows", true, CheckPerplexity},
    {"speed.timings_consistent", "speed",
     "timings or usage that contradict each other or exceed the client's wall time (counted fake tokens)", true,
     CheckTimingsConsistent},
    {"speed.wall_clock", "speed", "reported decode time or tokens/s the client's clock does not see (a 10x claim)", true,
     CheckWallClock},
};

}  // namespace

const char* ConformanceStatusName(ConformanceStatus s) {
  switch (s) {
    case ConformanceStatus::kPass: return "pass";
    case ConformanceStatus::kFail: return "fail";
    case ConformanceStatus::kSkip: return "skip";
  }
  return "?";
}

const ConformanceCheck* ConformanceResult::FirstRequiredFailure() const {
  for (const ConformanceCheck& c : checks) {
    if (c.required && c.status == ConformanceStatus::kFail) return &c;
  }
  return nullptr;
}

int ConformanceResult::Count(ConformanceStatus s) const {
  return static_cast<int>(std::count_if(checks.begin(), checks.end(), [s](const ConformanceCheck& c) { return c.status == s; }));
}

ConformanceResult RunConformance(EngineClient& client, const ConformanceOptions& options) {
  const auto t0 = Clock::now();
  ConformanceResult result;
  result.address = client.endpoint().address;
  result.info = client.info();
  Probe probe(client, options);
  auto run_one = [&](const std::string& name, const char* group, const std::string& catches, bool required,
                     const std::function<void(Outcome&)>& run) {
    ConformanceCheck r;
    r.name = name;
    r.group = group;
    r.catches = catches;
    r.required = required;
    const auto c0 = Clock::now();
    // A check that failed because the server could not answer at all
    // (UNAVAILABLE: a worker that died, a restart) says nothing about the
    // contract: it runs again, with fresh shared answers, up to
    // options.unavailable_retries times; the last run stands.
    for (int attempt = 0;; ++attempt) {
      r.status = ConformanceStatus::kPass;
      r.request = r.expected = r.observed = r.note = "";
      Outcome out(&r);
      run(out);
      const bool unavailable = r.status == ConformanceStatus::kFail &&
                               absl::StrContains(r.observed, CodeName(grpc::StatusCode::UNAVAILABLE));
      if (!unavailable || attempt >= options.unavailable_retries) break;
      probe.Forget();
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << std::min(attempt, 4)));
    }
    r.ms = MsSince(c0);
    result.checks.push_back(std::move(r));
  };
  // The contract first (cheap), then the rules, then what evaluates.
  for (const CheckDef& c : kChecks) {
    if (std::string(c.group) != "contract") continue;
    if (std::string(c.name) == "contract.deadline") {
      for (const Rule& rule : ValidationRules()) {
        run_one(rule.name, "contract",
                absl::StrCat("a broken rule not answered ", CodeName(rule.code), " naming \"", rule.field, "\""),
                !rule.optional_rpc, [&](Outcome& out) { RunRule(rule, probe, out); });
      }
    }
    run_one(c.name, c.group, c.catches, c.required, [&](Outcome& out) { c.run(probe, out); });
  }
  for (const CheckDef& c : kChecks) {
    if (std::string(c.group) == "contract") continue;
    run_one(c.name, c.group, c.catches, c.required, [&](Outcome& out) { c.run(probe, out); });
  }
  result.wall_s = MsSince(t0) / 1000;
  return result;
}

absl::Status RequireConformance(EngineClient& client, const ConformanceOptions& options) {
  const ConformanceResult r = RunConformance(client, options);
  const ConformanceCheck* f = r.FirstRequiredFailure();
  if (f == nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      client.Describe(), " fails the conformance check ", f->name, " (", f->catches, "): request ", f->request,
      "; expected ", f->expected, "; observed ", f->observed, ". Run `bitparity conformance --a ", client.endpoint().address,
      "` for the whole report, or pass --no-conformance to compare anyway"));
}

}  // namespace bitparity
