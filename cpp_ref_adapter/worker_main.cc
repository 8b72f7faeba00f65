#include "cpp_ref_adapter/worker_main.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "cpp_ref_adapter/worker.pb.h"
#include "cpp_ref_adapter/worker_codec.h"
#include "cpp_ref_adapter/worker_protocol.h"

namespace bitparity::worker {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

std::vector<int> Rows(const google::protobuf::RepeatedField<int32_t>& rows) {
  return std::vector<int>(rows.begin(), rows.end());
}

}  // namespace

wpb::Response AnswerRequest(EngineBackend& backend, const wpb::Request& req, const SendFn& send) {
  wpb::Response resp;
  resp.set_id(req.id());
  absl::Status st;
  const auto never = [] { return false; };  // cancelling = being killed
  switch (req.kind_case()) {
    case wpb::Request::kInfo: {
      ToProto(backend.Info(), resp.mutable_info()->mutable_info());
      resp.mutable_info()->set_session_bytes(backend.SessionBytes());
      break;
    }
    case wpb::Request::kTokenize: {
      const wpb::TokenizeRequest& r = req.tokenize();
      auto ids = backend.Tokenize(r.text(), r.add_bos(), r.parse_special());
      if (!ids.ok()) {
        st = ids.status();
        break;
      }
      resp.mutable_tokenize()->mutable_ids()->Add(ids->begin(), ids->end());
      break;
    }
    case wpb::Request::kDetokenize: {
      const auto& ids = req.detokenize().ids();
      auto text = backend.Detokenize(absl::MakeConstSpan(ids.data(), ids.size()));
      if (!text.ok()) {
        st = text.status();
        break;
      }
      resp.mutable_detokenize()->set_text(*text);
      break;
    }
    case wpb::Request::kTokenPiece: {
      auto piece = backend.TokenPiece(req.token_piece().id());
      if (!piece.ok()) {
        st = piece.status();
        break;
      }
      resp.mutable_token_piece()->set_piece(*piece);
      break;
    }
    case wpb::Request::kEvalLogits: {
      const wpb::EvalLogitsRequest& r = req.eval_logits();
      const auto t0 = Clock::now();
      int index = 0;  // of the row in r.rows()
      st = backend.EvalLogits(
          absl::MakeConstSpan(r.ids().data(), r.ids().size()), FromProto(r.mode()), Rows(r.rows()),
          [&](int row, absl::Span<const float> logits) {
            if (index++ < r.skip_rows()) return absl::OkStatus();  // the supervisor has it
            wpb::Response part;
            part.set_id(req.id());
            part.mutable_logits_row()->set_row(row);
            part.mutable_logits_row()->set_logits_f32le(FloatsToBytes(logits));
            return send(part);
          },
          never, nullptr);
      resp.mutable_eval_done()->set_eval_ms(MsSince(t0));
      resp.mutable_eval_done()->set_session_bytes(backend.SessionBytes());
      break;
    }
    case wpb::Request::kEvalTrace: {
      const wpb::EvalTraceRequest& r = req.eval_trace();
      const auto t0 = Clock::now();
      absl::Status send_status;
      st = backend.EvalTrace(
          absl::MakeConstSpan(r.ids().data(), r.ids().size()), FromProto(r.mode()), Rows(r.rows()),
          [&](int layer, int row, absl::Span<const float> hidden) {
            if (!send_status.ok()) return;
            wpb::Response part;
            part.set_id(req.id());
            part.mutable_residual_row()->set_layer(layer);
            part.mutable_residual_row()->set_row(row);
            part.mutable_residual_row()->set_hidden_f32le(FloatsToBytes(hidden));
            send_status = send(part);
          },
          never, nullptr);
      if (st.ok()) st = send_status;
      resp.mutable_eval_done()->set_eval_ms(MsSince(t0));
      resp.mutable_eval_done()->set_session_bytes(backend.SessionBytes());
      break;
    }
    case wpb::Request::kGenerate: {
      const wpb::GenerateRequest& r = req.generate();
      auto result = backend.Generate(
          absl::MakeConstSpan(r.prompt().data(), r.prompt().size()), FromProto(r),
          [&](const GeneratedTokenInfo& token) {
            wpb::Response part;
            part.set_id(req.id());
            ToProto(token, part.mutable_token());
            return send(part);
          },
          never, nullptr);
      if (!result.ok()) {
        st = result.status();
        break;
      }
      wpb::GenerateDone* done = resp.mutable_generate_done();
      done->set_text(result->text);
      done->set_finish(ToProto(result->finish));
      done->set_prefill_ms(result->prefill_ms);
      done->set_decode_ms(result->decode_ms);
      done->set_first_token_ms(result->first_token_ms);
      done->set_decode_steps(result->decode_steps);
      done->set_session_bytes(backend.SessionBytes());
      break;
    }
    case wpb::Request::kChatTemplate: {
      const wpb::ChatTemplateRequest& r = req.chat_template();
      auto rendering =
          backend.ApplyChatTemplate(ChatFromProto(r), r.chat_template(), r.add_assistant());
      if (!rendering.ok()) {
        st = rendering.status();
        break;
      }
      ToProto(*rendering, resp.mutable_chat_template());
      break;
    }
    default:
      st = absl::InvalidArgumentError(
          absl::StrCat("unknown worker request kind ", static_cast<int>(req.kind_case())));
  }
  if (!st.ok()) {
    resp.clear_kind();
    ToProto(st, resp.mutable_error());
  }
  return resp;
}

int ServeRequests(EngineBackend& backend, int in_fd, int out_fd) {
  bool broken_output = false;
  auto send = [&](const wpb::Response& m) -> absl::Status {
    absl::Status st = WriteFrame(out_fd, m);
    if (!st.ok()) broken_output = true;
    return st;
  };
  for (;;) {
    wpb::Request req;
    absl::Status st = ReadMessage(in_fd, &req);
    if (absl::IsUnavailable(st)) return 0;  // the supervisor closed our stdin
    if (!st.ok()) {
      std::fprintf(stderr, "worker: bad request stream: %s\n", st.ToString().c_str());
      return 2;
    }
    if (req.has_cancel()) continue;  // nothing runs between our requests: nothing to stop
    wpb::Response final_frame = AnswerRequest(backend, req, send);
    if (broken_output || !send(final_frame).ok()) {
      std::fprintf(stderr, "worker: cannot write to the supervisor; exiting\n");
      return 2;
    }
  }
}

int WorkerMain(int argc, char** argv, const std::string& description, const AddFlagsFn& add_flags,
               const LoadBackendFn& load, const ServeFn& serve) {
  // Die with the supervisor, even if it is SIGKILLed while we compute.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The server blocks SIGTERM/SIGINT in all threads and the mask survives exec.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_UNBLOCK, &all, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a closed pipe becomes EPIPE, then a clean exit

  CLI::App app{description};
  add_flags(app);
  CLI11_PARSE(app, argc, argv);
  const std::string name = description.substr(0, description.find(':'));

  // The protocol gets its own copy of stdout; fd 1 becomes stderr, so an engine
  // that prints to stdout cannot corrupt a frame.
  const int out_fd = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (out_fd < 0 || dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    std::perror("worker: cannot set up the protocol stream");
    return 2;
  }

  absl::StatusOr<std::unique_ptr<EngineBackend>> backend = load();
  if (!backend.ok()) {
    std::fprintf(stderr, "%s: cannot load the model: %s\n", name.c_str(),
                 backend.status().ToString().c_str());
    wpb::Response err;
    ToProto(backend.status(), err.mutable_error());
    (void)WriteFrame(out_fd, err);
    return 1;
  }
  wpb::Response hello;
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  hello.mutable_hello()->set_pid(getpid());
  ToProto((*backend)->Info(), hello.mutable_hello()->mutable_info());
  hello.mutable_hello()->set_session_bytes((*backend)->SessionBytes());
  if (!WriteFrame(out_fd, hello).ok()) return 2;
  if (serve) return serve(**backend, STDIN_FILENO, out_fd);
  return ServeRequests(**backend, STDIN_FILENO, out_fd);
}

}  // namespace bitparity::worker
