// File: services/common/engine_backend.h
//
// What a bitnet.v1 server needs from an engine. EngineService (engine_service.h)
// validates every request, enforces limits, deadlines and cancellation, and then
// calls one of these methods with inputs that are already known to be valid:
// ids inside the vocabulary, sequences that fit max_context, rows strictly
// increasing and inside the sequence. So a backend is only the engine, and two
// servers that answer differently differ in their engines.
//
// Implementations: services/native (the bitparity engine in process) and
// cpp_ref_adapter (bitnet.cpp in worker processes).
//
// Every evaluating method starts from an empty sequence (a fresh KV cache) and
// must poll `cancelled` between layers or tokens (at least once per decode step);
// when it returns true, the method stops and returns absl::CancelledError (eval)
// or a result with FinishReason::kCancelled (generation).
//
// Thread safety: every method may be called from several threads at once, up to
// the server's max_concurrent_requests; each call is one independent sequence.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/metadata_override.h"
#include "base/model_lint.h"

namespace bitparity {

// Facts that do not change while a backend serves (GetModelInfo).
struct BackendInfo {
  // Engine and build.
  std::string engine_name;  // "bitparity-native", "bitnet.cpp"
  std::string engine_version;
  std::string compiler;
  std::string build_type;
  std::string simd_path;  // kernel path in use: "avx2", "scalar", ...
  std::vector<std::string> cpu_features;
  std::map<std::string, std::string> build_extra;
  std::string output_head;  // "exact" | "screened" | "int8"; "" when the engine has no choice

  // Model.
  std::string architecture;
  std::string model_name;
  std::string file_name;
  int64_t file_size_bytes = 0;
  std::string sha256;  // lower-case hex
  int n_layer = 0;
  int n_embd = 0;
  int n_ff = 0;
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  int n_vocab = 0;
  int n_ctx_train = 0;
  float rope_freq_base = 0;
  float rms_eps = 0;
  int bos_id = -1;
  int eos_id = -1;
  bool add_bos = false;
  bool has_tokenizer = false;
  // The most bytes of text one token can stand for, so that a text of B bytes is
  // at least ceil(B / max_token_bytes) tokens (engine/tokenizer/tokenizer.h,
  // Tokenizer::max_token_bytes(), has the argument): the service refuses a text that
  // cannot fit max_context before tokenizing it. 0 = no such bound is known (no
  // tokenizer, or a vocabulary where it does not hold): every text is tokenized.
  int max_token_bytes = 0;
  std::vector<std::pair<std::string, int>> tensor_types;  // sorted by type name
  std::vector<MetadataOverride> metadata_overrides;       // --override-kv, in order
  std::vector<LintFinding> lint_findings;                 // LintModel of the header

  // Runtime.
  int threads = 0;
  int max_context = 0;          // positions one sequence may hold
  std::string fault_injection;  // "" when the forward pass is the real one
};

// Evaluation mode, as in the contract (bitnet.v1.EvalMode).
enum class BackendEvalMode { kBatch, kSequential };

// Receives the logits row (n_vocab floats, valid only during the call) of
// sequence position `row`. A non-OK return stops the evaluation with that status.
using LogitsRowFn = std::function<absl::Status(int row, absl::Span<const float> logits)>;

// Receives the residual stream (n_embd floats, valid only during the call) of
// position `row` after layer `layer` (0-based), and after the final norm as
// layer == n_layer.
using ResidualFn = std::function<void(int layer, int row, absl::Span<const float> hidden)>;

using CancelledFn = std::function<bool()>;

// Sampling settings, already validated (see validation.h for the ranges).
struct SamplingSpec {
  float temperature = 0.0f;  // 0 = greedy
  int32_t top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  int32_t repetition_window = 64;
  uint64_t seed = 0;
};

struct GenerationSpec {
  int max_new_tokens = 16;
  SamplingSpec sampling;
  std::vector<std::string> stop_sequences;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  BackendEvalMode prefill_mode = BackendEvalMode::kBatch;
  int logprobs_top_n = -1;  // -1: no logprobs; 0: the chosen token's; N: plus top N
};

enum class GenerationFinish { kLength, kEos, kStopSequence, kStopToken, kCancelled };

struct TokenAlternativeInfo {
  int32_t id = 0;
  float logit = 0;
  double logprob = 0;
};

struct GeneratedTokenInfo {
  int32_t id = 0;
  std::string text;  // bytes this token completes (partial UTF-8 held back)
  std::optional<double> logprob;
  std::vector<TokenAlternativeInfo> top;
};

// Called once per generated token, in order; a non-OK return stops generation
// with that status.
using TokenFn = std::function<absl::Status(const GeneratedTokenInfo& token)>;

struct GenerationResult {
  std::vector<int32_t> ids;
  std::vector<GeneratedTokenInfo> tokens;
  std::string text;  // exact bytes, stop sequence removed
  GenerationFinish finish = GenerationFinish::kLength;
  double prefill_ms = 0;
  double decode_ms = 0;
  double first_token_ms = 0;  // from the start of prefill to the first token
  int decode_steps = 0;       // tokens evaluated one at a time
  // With finish == kCancelled: the backend's own account of the stop (a worker
  // backend names the worker it killed and its last stderr lines). EngineService
  // keeps it in the DEADLINE_EXCEEDED / CANCELLED message; may be empty.
  std::string cancel_detail;
};

// What a backend says about one call besides its result. The evaluating
// methods take a CallNotes* (may be null: nobody listens).
struct CallNotes {
  // Times the call was run again from the start on a fresh worker process
  // because the one serving it died (worker backends only; see
  // cpp_ref_adapter/worker_backend.h for when that is safe), and the last death
  // in words. The service reports it (trailer, log line, metric).
  int worker_retries = 0;
  std::string retry_reason;
  // Generate: the output head that served it ("exact", "screened", "int8"; "" when
  // the backend does not say), and with "screened" the rows recomputed exactly per
  // token and the tokens that fell back to the full exact head.
  std::string output_head;
  std::vector<int32_t> head_candidates;
  int head_fallbacks = 0;
};

// Counters of a backend whose engine runs in worker processes (GetModelInfo).
struct WorkerPoolStats {
  int workers = 0;          // slots
  int ready = 0;            // workers alive and serving (idle or busy)
  int64_t restarts = 0;     // workers started again since the pool started
  int64_t retried_calls = 0;  // calls run again after their worker died
};

// One turn of a conversation (bitnet.v1.ChatMessage), already validated: role
// non-empty, no NUL bytes anywhere.
struct ChatTurn {
  std::string role;
  std::string content;
};

// Where a chat template came from (bitnet.v1.ChatTemplateSource).
enum class ChatTemplateSource { kRequest, kModel, kDefault };

// A conversation rendered by a backend's chat templates.
struct ChatRendering {
  // nullopt when no built-in template matches (llama_chat_apply_template < 0);
  // the service words that error, the same for both servers.
  std::optional<std::string> text;
  ChatTemplateSource source = ChatTemplateSource::kRequest;
};

// What one step of a batching backend's loop did (continuous batching: several
// requests' tokens in one forward pass; services/native/batch_scheduler.h).
struct BatchStepReport {
  int sequences = 0;       // requests in the step
  int decode_rows = 0;     // of them, decoding one token
  int prefill_tokens = 0;  // prompt tokens in the step
  int waiting = 0;         // requests queued for a place in the batch
  int64_t kv_bytes = 0;    // KV caches held by running requests
  double seconds = 0;      // the step's forward pass and sampling
};
using BatchStepObserver = std::function<void(const BatchStepReport& step)>;

// Called with whether the backend can serve now (see SetReadinessObserver).
using ReadinessObserver = std::function<void(bool ready)>;

class EngineBackend {
 public:
  virtual ~EngineBackend() = default;

  virtual const BackendInfo& Info() const = 0;

  // Bytes of KV caches and scratch buffers the backend holds now.
  virtual int64_t SessionBytes() const = 0;

  // Processes other than this one that run the engine now: live worker
  // processes, children of the server process (starting ones included).
  // GetModelInfo reports their memory beside the server's own. Empty (the
  // default) when the engine runs in the server process.
  virtual std::vector<int> WorkerPids() const { return {}; }

  // The worker pool's counters; nullopt (the default) when the engine runs in
  // the server process.
  virtual std::optional<WorkerPoolStats> PoolStats() const { return std::nullopt; }

  // Readiness after load. A backend that can lose the ability to serve while it
  // is installed (every worker process dead and waiting to restart) calls
  // `observer` with false then, and with true once it can serve again: at once
  // with the current readiness when installed, then on each change, never two
  // calls at a time. nullptr removes the observer; once this returns, the previous one is
  // not called again. The default suits a backend that is ready from load to
  // destruction: it never calls the observer, so the server keeps SERVING.
  virtual void SetReadinessObserver(ReadinessObserver observer) { (void)observer; }

  // A backend that batches Generate requests calls `observer` after each step, on
  // its loop thread (metrics). Set before serving; the default never calls it.
  virtual void SetBatchObserver(BatchStepObserver observer) { (void)observer; }

  // Text -> ids (add_bos already resolved against Info().add_bos).
  // FailedPrecondition when the model has no tokenizer.
  virtual absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view text, bool add_bos,
                                                        bool parse_special) const = 0;
  // The bytes of one token (special=false).
  virtual absl::StatusOr<std::string> TokenPiece(int32_t id) const = 0;
  // Concatenated pieces (special=false).
  virtual absl::StatusOr<std::string> Detokenize(absl::Span<const int32_t> ids) const = 0;

  // Renders `chat` as bitnet.cpp's llama_chat_apply_template(model, tmpl, chat,
  // add_assistant) does: `tmpl` is a built-in name or a template text; empty
  // means the model's tokenizer.chat_template, or "chatml" (kDefault) when the
  // model has none. The default suits backends without chat templates.
  virtual absl::StatusOr<ChatRendering> ApplyChatTemplate(absl::Span<const ChatTurn> chat,
                                                          absl::string_view tmpl,
                                                          bool add_assistant) const {
    (void)chat, (void)tmpl, (void)add_assistant;
    return absl::UnimplementedError("this backend renders no chat templates");
  }

  // Evaluates `ids` from position 0 and calls on_row for each of `rows` (strictly
  // increasing indices into ids), in increasing order.
  virtual absl::Status EvalLogits(absl::Span<const int32_t> ids, BackendEvalMode mode,
                                  const std::vector<int>& rows, const LogitsRowFn& on_row,
                                  const CancelledFn& cancelled, CallNotes* notes) = 0;

  // Evaluates `ids` from position 0 and reports every layer's residual stream
  // (and the final norm's) for each of `rows`.
  virtual absl::Status EvalTrace(absl::Span<const int32_t> ids, BackendEvalMode mode,
                                 const std::vector<int>& rows, const ResidualFn& on_residual,
                                 const CancelledFn& cancelled, CallNotes* notes) = 0;

  // Prefills `prompt`, then generates token by token, calling on_token for each
  // (on_token may be null: the tokens are then only collected in the result,
  // as for the unary Generate RPC, which lets a worker backend replay them).
  virtual absl::StatusOr<GenerationResult> Generate(absl::Span<const int32_t> prompt,
                                                    const GenerationSpec& spec,
                                                    const TokenFn& on_token,
                                                    const CancelledFn& cancelled, CallNotes* notes) = 0;
};

}  // namespace bitparity
