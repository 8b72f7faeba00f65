// File: services/native/native_backend.h
//
// The bitparity engine as an EngineBackend: one Model shared by every request.
// Generate goes through a BatchScheduler (batch_scheduler.h: continuous batching,
// every request bit-identical to being served alone) when options.batch.max_batch
// > 0, as bitnet-native-server runs it; otherwise each request runs on its own
// Session. EvalLogits and EvalTrace always take a Session from a pool (each with
// its own KV cache), made on first need and kept for reuse, so memory grows with
// the concurrency actually reached, up to the server's max_concurrent.
//
//   NativeBackendOptions o;  o.model_path = "tiny.gguf";  o.threads = 2;
//   ASSIGN_OR_RETURN(std::unique_ptr<NativeBackend> b, NativeBackend::Load(o));
//
// Evaluation goes through Session::Eval exactly as bitnet-run does, so the
// server's logits equal the in-process engine's bit for bit (same mode, same
// selected rows, same kernel path).
//
// Thread safety: every method may be called from many threads at once.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "engine/model/model.h"
#include "engine/model/session.h"
#include "services/common/engine_backend.h"
#include "services/native/batch_options.h"

namespace bitparity {

struct NativeBackendOptions {
  std::string model_path;
  int threads = 0;                     // kernel threads; 0 = online cores
  int max_context = 0;                 // positions per session; 0 = the model's n_ctx_train
  std::optional<KernelPath> kernels;   // unset = best the CPU supports
  FaultInjection fault;                // off by default
  HeadMode head = HeadMode::kExact;    // kInt8 changes the logits (engine/model/int8_head.h)
  WeightMemory weight_memory = WeightMemory::kHugePages;  // engine/model/weight_memory.h
  int max_idle_sessions = 2;           // sessions kept for reuse (= max_concurrent)
  std::vector<MetadataOverride> metadata_overrides;  // --override-kv (ModelOptions)
  BatchOptions batch = NoBatchLoop();  // the batch loop for Generate (max_context filled in)
};

class BatchScheduler;

class NativeBackend final : public EngineBackend {
 public:
  // Loads the model (errors as Model::Load) and hashes the file (~1 s per GB).
  static absl::StatusOr<std::unique_ptr<NativeBackend>> Load(const NativeBackendOptions& options);
  // Wraps a model that is already loaded (tests, benchmarks).
  static std::unique_ptr<NativeBackend> Wrap(std::shared_ptr<const Model> model, int max_context,
                                             int max_idle_sessions, BatchOptions batch = NoBatchLoop());

  ~NativeBackend() override;
  const BackendInfo& Info() const override { return info_; }
  int64_t SessionBytes() const override;
  void SetBatchObserver(BatchStepObserver observer) override;
  const Model& model() const { return *model_; }

  absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view text, bool add_bos,
                                                bool parse_special) const override;
  absl::StatusOr<std::string> TokenPiece(int32_t id) const override;
  absl::StatusOr<std::string> Detokenize(absl::Span<const int32_t> ids) const override;
  // engine/chat's port of bitnet.cpp's llama.cpp templates.
  absl::StatusOr<ChatRendering> ApplyChatTemplate(absl::Span<const ChatTurn> chat,
                                                  absl::string_view tmpl,
                                                  bool add_assistant) const override;
  absl::Status EvalLogits(absl::Span<const int32_t> ids, BackendEvalMode mode,
                          const std::vector<int>& rows, const LogitsRowFn& on_row,
                          const CancelledFn& cancelled, CallNotes* notes) override;
  absl::Status EvalTrace(absl::Span<const int32_t> ids, BackendEvalMode mode,
                         const std::vector<int>& rows, const ResidualFn& on_residual,
                         const CancelledFn& cancelled, CallNotes* notes) override;
  absl::StatusOr<GenerationResult> Generate(absl::Span<const int32_t> prompt,
                                            const GenerationSpec& spec, const TokenFn& on_token,
                                            const CancelledFn& cancelled, CallNotes* notes) override;

 private:
  class Lease;
  NativeBackend(std::shared_ptr<const Model> model, int max_context, int max_idle_sessions, BatchOptions batch);
  std::unique_ptr<Session> AcquireSession();
  void ReleaseSession(std::unique_ptr<Session> session);
  absl::Status RequireTokenizer() const;

  std::shared_ptr<const Model> model_;
  BackendInfo info_;
  const int max_context_;
  const int max_idle_sessions_;
  std::atomic<int64_t> session_bytes_{0};
  std::mutex mu_;
  std::vector<std::unique_ptr<Session>> idle_ ABSL_GUARDED_BY(mu_);
  BatchStepObserver batch_observer_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<BatchScheduler> scheduler_;  // null: Generate on Sessions
};

}  // namespace bitparity
