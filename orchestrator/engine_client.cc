#include "orchestrator/engine_client.h"

#include "absl/strings/match.h"

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace bitparity {
namespace v1 = ::bitnet::v1;

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::Status FromGrpc(const grpc::Status& s, const std::string& prefix) {
  if (s.ok()) return absl::OkStatus();
  static const char* kNames[] = {"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                                 "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                                 "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                                 "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  const int code = static_cast<int>(s.error_code());
  const char* name = code >= 0 && code <= 16 ? kNames[code] : "?";
  // gRPC and absl share the canonical codes one to one.
  return absl::Status(static_cast<absl::StatusCode>(code), absl::StrCat(prefix, ": ", name, ": ", s.error_message()));
}

namespace {
constexpr char kSidePayload[] = "bitparity.dev/failed-side";
}  // namespace

std::string FailedSide(const absl::Status& s) {
  const auto side = s.GetPayload(kSidePayload);  // absl::optional<absl::Cord>
  return side.has_value() ? std::string(*side) : "";
}

absl::Status EngineClient::Tagged(absl::Status s) const {
  if (!s.ok()) s.SetPayload(kSidePayload, absl::Cord(endpoint_.label));
  return s;
}

absl::Status EngineClient::Failure(const grpc::Status& s, const char* rpc) const {
  return Tagged(FromGrpc(s, Prefix(rpc)));
}

void EngineClient::NoteTrailers(const grpc::ClientContext& ctx) const {
  const auto& trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("retried_after_worker_crash");
  if (it == trailers.end()) return;
  int64_t n = 0;
  if (absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &n) && n > 0) {
    server_retries_.fetch_add(n);
  }
}

std::string EngineClient::Describe() const {
  return absl::StrCat("side ", endpoint_.label, " (", endpoint_.address, ")");
}

std::string EngineClient::Prefix(const char* rpc) const { return absl::StrCat(Describe(), " ", rpc); }

void EngineClient::SetDeadline(grpc::ClientContext* ctx, double seconds) const {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)));
}

grpc::Status EngineClient::WithRetry(const std::function<grpc::Status(grpc::ClientContext*)>& call) const {
  grpc::Status s;
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, options_.call_timeout_s);
    s = call(&ctx);
    NoteTrailers(ctx);
    if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED || attempt >= options_.max_retries) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 25 << std::min(attempt, 6))));
  }
}

absl::StatusOr<std::unique_ptr<EngineClient>> EngineClient::Connect(const Endpoint& endpoint,
                                                                    const ClientOptions& options) {
  std::unique_ptr<EngineClient> c(new EngineClient());
  c->endpoint_ = endpoint;
  c->options_ = options;
  if (endpoint.address.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("side ", endpoint.label, ": no address given"));
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  grpc::ChannelArguments args;
  // Full logits rows of large vocabularies exceed gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  const bool tls = endpoint.tls || !endpoint.ca_file.empty() || !endpoint.cert_file.empty();
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!endpoint.ca_file.empty()) {
      auto ca = ReadFile(endpoint.ca_file, "TLS CA file");
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (endpoint.cert_file.empty() != endpoint.key_file.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("side ", endpoint.label, ": a client certificate needs both --cert and --key"));
    }
    if (!endpoint.cert_file.empty()) {
      auto cert = ReadFile(endpoint.cert_file, "TLS certificate");
      if (!cert.ok()) return cert.status();
      auto key = ReadFile(endpoint.key_file, "TLS key");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    if (!endpoint.server_name.empty()) args.SetSslTargetNameOverride(endpoint.server_name);
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  // dns:///service:50051 (e.g. a Kubernetes headless Service): every address the
  // name resolves to is a backend and calls are balanced round-robin over them
  // (gRPC's own round_robin policy; the default pick_first would use one replica).
  // The same for explicit lists, ipv4:10.0.0.1:50051,10.0.0.2:50051 (and ipv6:).
  if (absl::StartsWith(endpoint.address, "dns:") || absl::StartsWith(endpoint.address, "ipv4:") ||
      absl::StartsWith(endpoint.address, "ipv6:")) {
    args.SetLoadBalancingPolicyName("round_robin");
  }
  c->channel_ = grpc::CreateCustomChannel(endpoint.address, creds, args);
  c->stub_ = v1::Engine::NewStub(c->channel_);

  // The first call waits for the connection (a server that is still binding is fine)
  // and retries UNAVAILABLE (a server that is still loading its model), within
  // connect_timeout_s.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(options.connect_timeout_s * 1000));
  v1::GetModelInfoResponse info;
  grpc::Status s;
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         std::max(deadline - std::chrono::steady_clock::now(), std::chrono::steady_clock::duration(
                                                                                   std::chrono::milliseconds(1)))));
    ctx.set_wait_for_ready(true);
    s = c->stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!s.ok()) {
    if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      return absl::UnavailableError(absl::StrCat("cannot reach ", c->Describe(), " within ", options.connect_timeout_s,
                                                 " s (is the server running? TLS settings right?)"));
    }
    absl::Status st = FromGrpc(s, c->Prefix("GetModelInfo"));
    return absl::Status(st.code(), absl::StrCat(st.message(), " (is the server running? TLS settings right?)"));
  }
  if (!info.has_model() || info.model().n_vocab() <= 0 || info.model().n_layer() <= 0) {
    return c->Tagged(absl::DataLossError(absl::StrCat(c->Prefix("GetModelInfo"), ": incomplete reply (no model facts)")));
  }
  c->info_ = info;
  return c;
}

absl::StatusOr<v1::GetModelInfoResponse> EngineClient::GetModelInfo() {
  v1::GetModelInfoResponse info;
  grpc::Status s = WithRetry([&](grpc::ClientContext* ctx) {
    return stub_->GetModelInfo(ctx, v1::GetModelInfoRequest(), &info);
  });
  if (!s.ok()) return Failure(s, "GetModelInfo");
  return info;
}

absl::StatusOr<std::vector<int32_t>> EngineClient::Tokenize(const std::string& text) {
  v1::TokenizeRequest req;
  req.set_text(text);
  v1::TokenizeResponse resp;
  grpc::Status s = WithRetry([&](grpc::ClientContext* ctx) { return stub_->Tokenize(ctx, req, &resp); });
  if (!s.ok()) return Failure(s, "Tokenize");
  std::vector<int32_t> ids(resp.ids().begin(), resp.ids().end());
  const int n_vocab = info_.model().n_vocab();
  for (int32_t id : ids) {
    if (id < 0 || id >= n_vocab) {
      return Tagged(absl::DataLossError(absl::StrCat(Prefix("Tokenize"), ": id ", id, " outside the vocabulary")));
    }
  }
  return ids;
}

absl::StatusOr<std::string> EngineClient::Detokenize(const std::vector<int32_t>& ids) {
  v1::DetokenizeRequest req;
  for (int32_t id : ids) req.add_ids(id);
  v1::DetokenizeResponse resp;
  grpc::Status s = WithRetry([&](grpc::ClientContext* ctx) { return stub_->Detokenize(ctx, req, &resp); });
  if (!s.ok()) return Failure(s, "Detokenize");
  return resp.text();
}

absl::StatusOr<std::vector<int32_t>> EngineClient::TokenizeChat(const v1::ChatMessages& chat) {
  v1::ApplyChatTemplateRequest req;
  *req.mutable_chat() = chat;
  v1::ApplyChatTemplateResponse rendered;
  grpc::Status s = ApplyChatTemplate(req, &rendered);
  if (!s.ok()) return Failure(s, "ApplyChatTemplate");
  v1::TokenizeRequest treq;
  treq.set_text(rendered.text());
  treq.set_parse_special(true);
  v1::TokenizeResponse resp;
  s = WithRetry([&](grpc::ClientContext* ctx) { return stub_->Tokenize(ctx, treq, &resp); });
  if (!s.ok()) return Failure(s, "Tokenize");
  std::vector<int32_t> ids(resp.ids().begin(), resp.ids().end());
  for (int32_t id : ids) {
    if (id < 0 || id >= info_.model().n_vocab()) {
      return Tagged(absl::DataLossError(absl::StrCat(Prefix("Tokenize"), ": id ", id, " outside the vocabulary")));
    }
  }
  return ids;
}

grpc::Status EngineClient::ApplyChatTemplate(const v1::ApplyChatTemplateRequest& req,
                                             v1::ApplyChatTemplateResponse* resp) {
  return WithRetry([&](grpc::ClientContext* ctx) {
    resp->Clear();
    return stub_->ApplyChatTemplate(ctx, req, resp);
  });
}

absl::StatusOr<std::unique_ptr<LogitsStream>> EngineClient::OpenLogitsStream(const v1::EvalLogitsRequest& req) {
  auto st = std::make_unique<LogitsStream>();
  st->client_ = this;
  st->prefix_ = Prefix("EvalLogitsStream");
  st->ctx_ = std::make_unique<grpc::ClientContext>();
  SetDeadline(st->ctx_.get(), options_.call_timeout_s);
  st->reader_ = stub_->EvalLogitsStream(st->ctx_.get(), req);
  return st;
}

bool LogitsStream::Next(v1::PositionLogits* out) {
  v1::EvalLogitsStreamResponse msg;
  if (!reader_->Read(&msg)) return false;
  if (first_) {
    token_ids_.assign(msg.token_ids().begin(), msg.token_ids().end());
    n_vocab_ = msg.n_vocab();
    first_ = false;
  }
  if (msg.has_timings()) timings_ = msg.timings();
  *out = std::move(*msg.mutable_position());
  return true;
}

absl::Status LogitsStream::Finish() {
  grpc::Status s = reader_->Finish();
  client_->NoteTrailers(*ctx_);
  return client_->Tagged(FromGrpc(s, prefix_));
}

absl::StatusOr<v1::EvalTraceResponse> EngineClient::EvalTrace(const v1::EvalTraceRequest& req) {
  v1::EvalTraceResponse resp;
  grpc::Status s = WithRetry([&](grpc::ClientContext* ctx) { return stub_->EvalTrace(ctx, req, &resp); });
  if (!s.ok()) return Failure(s, "EvalTrace");
  const size_t bytes = static_cast<size_t>(resp.n_embd()) * (req.format() == v1::FLOAT_FORMAT_F16 ? 2 : 4);
  for (const auto& r : resp.residuals()) {
    if (r.hidden().size() != bytes) {
      return Tagged(absl::DataLossError(absl::StrCat(Prefix("EvalTrace"), ": residual of layer ", r.layer(), " position ",
                                              r.position(), " has ", r.hidden().size(), " bytes, expected ", bytes)));
    }
  }
  return resp;
}

absl::StatusOr<v1::GenerateResponse> EngineClient::Generate(const v1::GenerateRequest& req) {
  v1::GenerateResponse resp;
  grpc::Status s = WithRetry([&](grpc::ClientContext* ctx) { return stub_->Generate(ctx, req, &resp); });
  if (!s.ok()) return Failure(s, "Generate");
  if (resp.ids_size() == 0 || resp.finish_reason() == v1::FINISH_REASON_UNSPECIFIED) {
    return Tagged(absl::DataLossError(absl::StrCat(Prefix("Generate"), ": incomplete reply (no ids or no finish reason)")));
  }
  if (req.logprobs() && resp.tokens_size() != resp.ids_size()) {
    return Tagged(absl::DataLossError(absl::StrCat(Prefix("Generate"), ": ", resp.tokens_size(), " token records for ",
                                            resp.ids_size(), " ids")));
  }
  return resp;
}

absl::StatusOr<v1::GenerateResponse> EngineClient::GenerateStream(const v1::GenerateRequest& req,
                                                                  const TokenCallback& on_token) {
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, options_.call_timeout_s);
    auto reader = stub_->GenerateStream(&ctx, req);
    v1::GenerateStreamResponse msg;
    v1::GenerateResponse summary;
    std::vector<v1::GeneratedToken> tokens;
    bool have_summary = false;
    while (reader->Read(&msg)) {
      if (msg.has_token()) {
        if (on_token) on_token(msg.token(), std::chrono::steady_clock::now());
        tokens.push_back(msg.token());
      } else if (msg.has_summary()) {
        summary = msg.summary();
        have_summary = true;
      }
    }
    grpc::Status s = reader->Finish();
    NoteTrailers(ctx);
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && tokens.empty() && attempt < options_.max_retries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(1000, 25 << std::min(attempt, 6))));
      continue;
    }
    if (!s.ok()) return Failure(s, "GenerateStream");
    if (!have_summary || summary.ids_size() != static_cast<int>(tokens.size())) {
      return Tagged(absl::DataLossError(absl::StrCat(Prefix("GenerateStream"), ": incomplete stream (",
                                              tokens.size(), " tokens, summary ", have_summary ? "present" : "missing",
                                              ")")));
    }
    for (auto& t : tokens) *summary.add_tokens() = std::move(t);
    return summary;
  }
}

}  // namespace bitparity
