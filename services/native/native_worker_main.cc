// bitparity-native-worker: the bitparity engine (services/native's NativeBackend,
// the same code bitnet-native-server runs in process) behind the worker protocol.
// It lets every build exercise the supervisor (framing, pool, restarts, kills)
// with a real engine, with or without a bitnet.cpp checkout.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "CLI/CLI.hpp"
#include "cpp_ref_adapter/worker_main.h"
#include "services/native/native_flags.h"

namespace bitparity {
namespace {

// Test only (--test-crash-after-frames): the engine, except that the worker
// SIGKILLs itself right after handing on its Nth partial frame (a logits row, a
// residual row or a token) of a request, so that tests can kill a worker
// mid-request at an exact point. With a marker file it does so once per marker:
// the first worker to get there creates the file, the restarted ones find it
// and run normally.
class CrashAfterFramesBackend final : public EngineBackend {
 public:
  CrashAfterFramesBackend(std::unique_ptr<EngineBackend> inner, int frames, std::string marker)
      : inner_(std::move(inner)), frames_(frames), marker_(std::move(marker)) {}

  const BackendInfo& Info() const override { return inner_->Info(); }
  int64_t SessionBytes() const override { return inner_->SessionBytes(); }
  absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view text, bool add_bos,
                                                bool parse_special) const override {
    return inner_->Tokenize(text, add_bos, parse_special);
  }
  absl::StatusOr<std::string> TokenPiece(int32_t id) const override { return inner_->TokenPiece(id); }
  absl::StatusOr<std::string> Detokenize(absl::Span<const int32_t> ids) const override {
    return inner_->Detokenize(ids);
  }
  absl::StatusOr<ChatRendering> ApplyChatTemplate(absl::Span<const ChatTurn> chat,
                                                  absl::string_view tmpl,
                                                  bool add_assistant) const override {
    return inner_->ApplyChatTemplate(chat, tmpl, add_assistant);
  }
  absl::Status EvalLogits(absl::Span<const int32_t> ids, BackendEvalMode mode,
                          const std::vector<int>& rows, const LogitsRowFn& on_row,
                          const CancelledFn& cancelled, CallNotes* notes) override {
    int sent = 0;
    return inner_->EvalLogits(
        ids, mode, rows,
        [&](int row, absl::Span<const float> logits) {
          absl::Status st = on_row(row, logits);
          MaybeCrash(++sent);
          return st;
        },
        cancelled, notes);
  }
  absl::Status EvalTrace(absl::Span<const int32_t> ids, BackendEvalMode mode,
                         const std::vector<int>& rows, const ResidualFn& on_residual,
                         const CancelledFn& cancelled, CallNotes* notes) override {
    int sent = 0;
    return inner_->EvalTrace(
        ids, mode, rows,
        [&](int layer, int row, absl::Span<const float> hidden) {
          on_residual(layer, row, hidden);
          MaybeCrash(++sent);
        },
        cancelled, notes);
  }
  absl::StatusOr<GenerationResult> Generate(absl::Span<const int32_t> prompt,
                                            const GenerationSpec& spec, const TokenFn& on_token,
                                            const CancelledFn& cancelled,
                                            CallNotes* notes) override {
    int sent = 0;
    return inner_->Generate(
        prompt, spec,
        [&](const GeneratedTokenInfo& token) {
          absl::Status st = on_token ? on_token(token) : absl::OkStatus();
          MaybeCrash(++sent);
          return st;
        },
        cancelled, notes);
  }

 private:
  void MaybeCrash(int sent) {
    if (sent != frames_) return;
    if (!marker_.empty()) {
      // O_EXCL: exactly one worker wins the marker, even two at once.
      const int fd = ::open(marker_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) return;  // an earlier worker crashed already
      ::close(fd);
    }
    ::raise(SIGKILL);
  }

  std::unique_ptr<EngineBackend> inner_;
  const int frames_;
  const std::string marker_;
};

}  // namespace
}  // namespace bitparity

int main(int argc, char** argv) {
  bitparity::NativeFlags flags;
  int startup_delay_ms = 0;
  int crash_after_frames = 0;
  std::string crash_marker;
  return bitparity::worker::WorkerMain(
      argc, argv,
      "bitparity-native-worker: the bitparity engine as a worker process "
      "(cpp_ref_adapter/worker_protocol.h)",
      [&](CLI::App& app) {
        bitparity::AddNativeFlags(app, &flags);
        app.add_option("--startup-delay-ms", startup_delay_ms,
                       "Test only: wait this long before loading the model, to stand in for "
                       "a slow load (tests/cpp_ref_adapter)")
            ->check(CLI::Range(0, 24 * 3600 * 1000));
        app.add_option("--test-crash-after-frames", crash_after_frames,
                       "Test only: SIGKILL this worker right after it sends the Nth partial "
                       "frame (logits row, residual row, token) of a request (0: never)")
            ->check(CLI::Range(0, 1 << 30));
        app.add_option("--test-crash-once-marker", crash_marker,
                       "Test only: with --test-crash-after-frames, crash only if this file "
                       "does not exist yet, and create it (one crash per marker)");
      },
      [&]() -> absl::StatusOr<std::unique_ptr<bitparity::EngineBackend>> {
        if (startup_delay_ms > 0) {
          std::this_thread::sleep_for(std::chrono::milliseconds(startup_delay_ms));
        }
        // One request at a time per worker: one session is all it needs, and a
        // batch loop would have nothing to batch.
        flags.max_batch = 0;
        auto backend = bitparity::LoadNativeBackend(flags, /*max_concurrent=*/1);
        if (!backend.ok() || crash_after_frames == 0) return backend;
        return std::unique_ptr<bitparity::EngineBackend>(
            std::make_unique<bitparity::CrashAfterFramesBackend>(std::move(*backend),
                                                                 crash_after_frames, crash_marker));
      });
}
