// File: tests/orchestrator/fake_engine.h
//
// Negative controls for `bitparity conformance`: a bitnet.v1.Engine test double
// on 127.0.0.1 that forwards every call to a real server (the native engine in
// process) and plants one defect on the way back. Each defect is what the suite
// was written to catch; each must fail the checks meant for it, by name, and no
// others. Defect::kNone is the faithful proxy: it must pass everything, which
// shows the proxy itself adds nothing the suite would notice.
//   kTokens100PlusI   Generate's ids are 100 + i (text and logprobs left as they were)
//   kUnrelatedLogits  EvalLogits rows reversed over the vocabulary, self-consistent
//                     (argmax, TOP_K, F16, logprobs all of the reversed rows)
//   kLyingTimings     every duration / 10 and every rate x 10 (a consistent 10x claim)
//   kSloppyErrors     INVALID_ARGUMENT and OUT_OF_RANGE answered as UNKNOWN "error"
//   kEmptyModel       GetModelInfo describes a 0-byte model (sha256 of nothing)
// Deadlines and cancellation reach the real server (ClientContext::FromServerContext).
// Besides the defects, FailGenerates(n) makes the next n Generate calls answer
// UNAVAILABLE, as a server whose worker died mid-stream does (bitparity's
// retries are tested with it).
#pragma once

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/fp16.h"
#include "base/logits.h"
#include "bitnet/v1/engine.grpc.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"

namespace bitparity::testing {

enum class Defect { kNone, kTokens100PlusI, kUnrelatedLogits, kLyingTimings, kSloppyErrors, kEmptyModel };

class FakeEngine final : public bitnet::v1::Engine::Service {
 public:
  FakeEngine(std::shared_ptr<grpc::Channel> upstream, Defect defect)
      : stub_(bitnet::v1::Engine::NewStub(upstream)), defect_(defect) {}

  grpc::Status GetModelInfo(grpc::ServerContext* ctx, const bitnet::v1::GetModelInfoRequest* req,
                            bitnet::v1::GetModelInfoResponse* resp) override {
    grpc::Status s = stub_->GetModelInfo(Up(ctx).get(), *req, resp);
    if (s.ok() && defect_ == Defect::kEmptyModel) {
      resp->mutable_model()->set_file_size_bytes(0);
      resp->mutable_model()->set_sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
    return Out(s);
  }
  grpc::Status Tokenize(grpc::ServerContext* ctx, const bitnet::v1::TokenizeRequest* req,
                        bitnet::v1::TokenizeResponse* resp) override {
    return Out(stub_->Tokenize(Up(ctx).get(), *req, resp));
  }
  grpc::Status Detokenize(grpc::ServerContext* ctx, const bitnet::v1::DetokenizeRequest* req,
                          bitnet::v1::DetokenizeResponse* resp) override {
    return Out(stub_->Detokenize(Up(ctx).get(), *req, resp));
  }
  grpc::Status EvalTrace(grpc::ServerContext* ctx, const bitnet::v1::EvalTraceRequest* req,
                         bitnet::v1::EvalTraceResponse* resp) override {
    grpc::Status s = stub_->EvalTrace(Up(ctx).get(), *req, resp);
    if (s.ok()) Lie(resp->mutable_timings());
    return Out(s);
  }

  grpc::Status EvalLogits(grpc::ServerContext* ctx, const bitnet::v1::EvalLogitsRequest* req,
                          bitnet::v1::EvalLogitsResponse* resp) override {
    grpc::Status s = stub_->EvalLogits(Up(ctx).get(), *req, resp);
    if (!s.ok()) return Out(s);
    Lie(resp->mutable_timings());
    if (defect_ != Defect::kUnrelatedLogits) return s;
    // The real rows, whatever output was asked for, then every figure from the reversed rows.
    bitnet::v1::EvalLogitsRequest full = *req;
    full.clear_output();
    bitnet::v1::EvalLogitsResponse rows;
    s = stub_->EvalLogits(Up(ctx).get(), full, &rows);
    if (!s.ok()) return s;
    for (int i = 0; i < resp->positions_size(); ++i) {
      Reverse(*req, *resp, rows.positions(i).logits(), resp->mutable_positions(i));
    }
    return s;
  }

  grpc::Status EvalLogitsStream(grpc::ServerContext* ctx, const bitnet::v1::EvalLogitsRequest* req,
                                grpc::ServerWriter<bitnet::v1::EvalLogitsStreamResponse>* writer) override {
    // The unary answer (with this fake's defect), one message per position.
    bitnet::v1::EvalLogitsResponse all;
    grpc::Status s = EvalLogits(ctx, req, &all);
    if (!s.ok()) return s;
    for (int i = 0; i < all.positions_size(); ++i) {
      bitnet::v1::EvalLogitsStreamResponse m;
      *m.mutable_position() = all.positions(i);
      if (i == 0) {
        *m.mutable_token_ids() = all.token_ids();
        m.set_n_vocab(all.n_vocab());
        m.set_mode(all.mode());
      }
      if (i + 1 == all.positions_size()) *m.mutable_timings() = all.timings();
      writer->Write(m);
    }
    return s;
  }

  void FailGenerates(int n) { unavailable_generates_.store(n); }

  grpc::Status Generate(grpc::ServerContext* ctx, const bitnet::v1::GenerateRequest* req,
                        bitnet::v1::GenerateResponse* resp) override {
    if (unavailable_generates_.fetch_sub(1) > 0) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "fake: worker 0 (pid 1) died during Generate");
    }
    grpc::Status s = stub_->Generate(Up(ctx).get(), *req, resp);
    if (s.ok()) Plant(resp);
    return Out(s);
  }

  grpc::Status GenerateStream(grpc::ServerContext* ctx, const bitnet::v1::GenerateRequest* req,
                              grpc::ServerWriter<bitnet::v1::GenerateStreamResponse>* writer) override {
    auto up = Up(ctx);
    auto reader = stub_->GenerateStream(up.get(), *req);
    bitnet::v1::GenerateStreamResponse m;
    while (reader->Read(&m)) {
      if (m.has_token() && defect_ == Defect::kTokens100PlusI) m.mutable_token()->set_id(100 + m.token().index());
      if (m.has_summary()) Plant(m.mutable_summary());
      if (!writer->Write(m)) break;
    }
    return Out(reader->Finish());
  }

 private:
  std::unique_ptr<grpc::ClientContext> Up(grpc::ServerContext* ctx) {
    return grpc::ClientContext::FromServerContext(*ctx);
  }

  grpc::Status Out(const grpc::Status& s) const {
    const bool bad_request = s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                             s.error_code() == grpc::StatusCode::OUT_OF_RANGE;
    if (defect_ == Defect::kSloppyErrors && bad_request) return grpc::Status(grpc::StatusCode::UNKNOWN, "error");
    return s;
  }

  void Lie(bitnet::v1::EvalTimings* t) const {
    if (defect_ != Defect::kLyingTimings) return;
    t->set_queue_ms(t->queue_ms() / 10);
    t->set_tokenize_ms(t->tokenize_ms() / 10);
    t->set_eval_ms(t->eval_ms() / 10);
    t->set_total_ms(t->total_ms() / 10);
    t->set_tokens_per_s(t->tokens_per_s() * 10);
  }

  void Plant(bitnet::v1::GenerateResponse* r) const {
    if (defect_ == Defect::kTokens100PlusI) {
      for (int i = 0; i < r->ids_size(); ++i) r->set_ids(i, 100 + i);
      for (int i = 0; i < r->tokens_size(); ++i) r->mutable_tokens(i)->set_id(100 + i);
    }
    if (defect_ == Defect::kLyingTimings) {
      bitnet::v1::GenerateTimings* t = r->mutable_timings();
      t->set_queue_ms(t->queue_ms() / 10);
      t->set_tokenize_ms(t->tokenize_ms() / 10);
      t->set_prefill_ms(t->prefill_ms() / 10);
      t->set_decode_ms(t->decode_ms() / 10);
      t->set_time_to_first_token_ms(t->time_to_first_token_ms() / 10);
      t->set_total_ms(t->total_ms() / 10);
      t->set_prefill_tokens_per_s(t->prefill_tokens_per_s() * 10);
      t->set_decode_tokens_per_s(t->decode_tokens_per_s() * 10);
    }
  }

  // Rewrites one position from the real F32 row reversed over the vocabulary.
  static void Reverse(const bitnet::v1::EvalLogitsRequest& req, const bitnet::v1::EvalLogitsResponse& resp,
                      const std::string& real_bytes, bitnet::v1::PositionLogits* p) {
    std::vector<float> row(real_bytes.size() / 4);
    std::memcpy(row.data(), real_bytes.data(), row.size() * 4);
    std::vector<float> fake(row.rbegin(), row.rend());
    p->set_argmax_id(ArgMax(fake));
    if (p->has_next_token_logprob()) p->set_next_token_logprob(LogSoftmaxAt(fake, resp.token_ids(p->position() + 1)));
    p->clear_top_ids();
    p->clear_top_logits();
    p->clear_logits();
    const auto& o = req.output();
    if (o.kind() == bitnet::v1::LogitsOutput::TOP_K) {
      for (const TokenLogit& t : TopK(fake, o.top_k())) {
        p->add_top_ids(t.id);
        p->add_top_logits(t.logit);
      }
    } else if (o.kind() == bitnet::v1::LogitsOutput::FULL) {
      std::string bytes;
      for (float v : fake) {
        if (o.format() == bitnet::v1::FLOAT_FORMAT_F16) {
          const uint16_t h = Fp32ToFp16(v);
          bytes.append(reinterpret_cast<const char*>(&h), 2);
        } else {
          bytes.append(reinterpret_cast<const char*>(&v), 4);
        }
      }
      p->set_logits(bytes);
    }
  }

  std::unique_ptr<bitnet::v1::Engine::Stub> stub_;
  Defect defect_;
  std::atomic<int> unavailable_generates_{0};
};

// A FakeEngine served on 127.0.0.1:0, with health and reflection as a real server has.
class FakeEngineServer {
 public:
  FakeEngineServer(const std::string& upstream_address, Defect defect) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    service_ = std::make_unique<FakeEngine>(
        grpc::CreateCustomChannel(upstream_address, grpc::InsecureChannelCredentials(), args), defect);
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.SetMaxReceiveMessageSize(-1);
    b.SetMaxSendMessageSize(-1);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    server_->GetHealthCheckService()->SetServingStatus("bitnet.v1.Engine", true);
  }
  ~FakeEngineServer() { server_->Shutdown(std::chrono::system_clock::now()); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  FakeEngine& engine() { return *service_; }

 private:
  std::unique_ptr<FakeEngine> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace bitparity::testing
