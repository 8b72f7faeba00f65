// The contract.* checks of bitparity conformance (conformance.h).
#include "orchestrator/conformance_checks.h"

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

namespace bitparity::conformance {

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
  r.push_back(EvalRule("contract.validation.input_chat_empty", kInvalid, "input.chat.messages",
                       [](const Probe&, ER* q) { q->mutable_input()->mutable_chat(); }));
  {
    // Rendering is the backend's: a server whose engine renders no templates
    // answers UNIMPLEMENTED, a SKIP.
    Rule chat = EvalRule("contract.validation.input_chat_unknown_template", kInvalid, "input.chat.chat_template",
                         [](const Probe&, ER* q) {
                           v1::ChatMessages* c = q->mutable_input()->mutable_chat();
                           v1::ChatMessage* m = c->add_messages();
                           m->set_role("user");
                           m->set_content("Hello");
                           c->set_chat_template("no-such-template");
                         });
    chat.optional_rpc = true;
    r.push_back(std::move(chat));
  }
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
    return out.Skip(absl::StrCat("not implemented by this server: ", Describe(*s)));
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


}  // namespace bitparity::conformance
