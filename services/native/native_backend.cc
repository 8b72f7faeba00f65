#include "services/native/native_backend.h"

#include "services/native/batch_scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "engine/chat/chat_template.h"
#include "engine/gguf/model_header.h"
#include "engine/kernels/cpu_features.h"
#include "engine/model/generate.h"
#include "engine/sampling/sampler.h"

#ifndef BITPARITY_VERSION
#error "BITPARITY_VERSION must be defined by the build"
#endif
#ifndef BITPARITY_BUILD_TYPE
#error "BITPARITY_BUILD_TYPE must be defined by the build"
#endif

namespace bitparity {
namespace {

std::string CompilerName() {
#if defined(__clang__)
  return absl::StrCat("Clang ", __clang_major__, ".", __clang_minor__, ".", __clang_patchlevel__);
#elif defined(__GNUC__)
  return absl::StrCat("GCC ", __GNUC__, ".", __GNUC_MINOR__, ".", __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

EvalMode ToEngineMode(BackendEvalMode mode) {
  return mode == BackendEvalMode::kSequential ? EvalMode::kSequential : EvalMode::kBatch;
}

GenerationFinish ToFinish(FinishReason r) {
  switch (r) {
    case FinishReason::kLength: return GenerationFinish::kLength;
    case FinishReason::kEos: return GenerationFinish::kEos;
    case FinishReason::kStopSequence: return GenerationFinish::kStopSequence;
    case FinishReason::kStopToken: return GenerationFinish::kStopToken;
    case FinishReason::kCancelled: return GenerationFinish::kCancelled;
  }
  return GenerationFinish::kLength;
}

GeneratedTokenInfo ToTokenInfo(const GeneratedToken& t, bool logprobs) {
  GeneratedTokenInfo out;
  out.id = t.id;
  out.text = t.text;
  if (logprobs) out.logprob = t.logprob;
  for (size_t i = 0; i < t.top.size(); ++i) {
    out.top.push_back({t.top[i].id, t.top[i].logit,
                       i < t.top_logprobs.size() ? t.top_logprobs[i] : 0.0});
  }
  return out;
}

BackendInfo DescribeModel(const Model& m, int max_context) {
  BackendInfo info;
  const ModelConfig& c = m.config();
  info.engine_name = "bitparity-native";
  info.engine_version = BITPARITY_VERSION;
  info.compiler = CompilerName();
  info.build_type = BITPARITY_BUILD_TYPE;
  info.simd_path = m.kernels().name;
  for (absl::string_view f :
       absl::StrSplit(CpuFeaturesString(GetCpuFeatures()), ' ', absl::SkipEmpty())) {
    info.cpu_features.emplace_back(f);
  }
  info.build_extra["best_kernel_path"] = KernelPathName(BestKernelPath());
  // Named wherever it is on: the int8 head does not reproduce bitnet.cpp's logits.
  info.build_extra["output_head"] = m.head_mode() == HeadMode::kInt8       ? "int8 (approximate)"
                                    : m.head_mode() == HeadMode::kScreened ? "screened (exact tokens)"
                                                                           : "exact";
  info.output_head = HeadModeName(m.head_mode());
  info.build_extra["weight_memory"] = WeightMemoryName(m.weight_memory());

  info.architecture = c.arch_name;
  info.model_name = c.name;
  const std::string& path = m.file().path();
  const size_t slash = path.rfind('/');
  info.file_name = slash == std::string::npos ? path : path.substr(slash + 1);
  info.file_size_bytes = static_cast<int64_t>(m.file().bytes().size());
  info.sha256 = m.Sha256();
  info.n_layer = c.n_layer;
  info.n_embd = c.n_embd;
  info.n_ff = c.n_ff;
  info.n_head = c.n_head;
  info.n_head_kv = c.n_head_kv;
  info.head_dim = c.head_dim;
  info.n_vocab = c.n_vocab;
  info.n_ctx_train = c.n_ctx_train;
  info.rope_freq_base = c.rope_theta;
  info.rms_eps = c.rms_eps;
  if (const Tokenizer* tok = m.tokenizer()) {
    info.has_tokenizer = true;
    info.bos_id = tok->bos_id();
    info.eos_id = tok->eos_id();
    info.add_bos = tok->add_bos();
    info.max_token_bytes = tok->max_token_bytes();
  }
  info.tensor_types = m.TensorTypeCounts();
  info.metadata_overrides = m.file().overrides();
  info.lint_findings = LintModel(ModelHeaderOf(m.file()));
  info.threads = m.threads();
  info.max_context = max_context;
  info.fault_injection = m.fault().active() ? m.fault().ToString() : "";
  return info;
}

}  // namespace

// A session borrowed from the pool for one request; returned (reset) on exit.
class NativeBackend::Lease {
 public:
  explicit Lease(NativeBackend& b) : backend_(b), session_(b.AcquireSession()) {}
  ~Lease() { backend_.ReleaseSession(std::move(session_)); }
  Session& operator*() { return *session_; }

 private:
  NativeBackend& backend_;
  std::unique_ptr<Session> session_;
};

NativeBackend::NativeBackend(std::shared_ptr<const Model> model, int max_context,
                             int max_idle_sessions, BatchOptions batch)
    : model_(std::move(model)),
      max_context_(max_context > 0 ? max_context : model_->config().n_ctx_train),
      max_idle_sessions_(std::max(1, max_idle_sessions)) {
  info_ = DescribeModel(*model_, max_context_);
  if (batch.max_batch > 0) {
    batch.max_context = max_context_;
    scheduler_ = std::make_unique<BatchScheduler>(model_, batch);
    scheduler_->on_step = [this](const BatchStepReport& step) {
      std::lock_guard<std::mutex> lock(mu_);
      if (batch_observer_) batch_observer_(step);
    };
    const BatchOptions& o = scheduler_->options();
    info_.build_extra["batching"] = absl::StrCat(
        "continuous, batch-invariant: max_batch ", o.max_batch, ", prefill_chunk ", o.prefill_chunk,
        ", step_tokens ", o.step_tokens,
        ", kv_budget_mib ", (o.kv_budget_bytes > 0 ? o.kv_budget_bytes : o.max_batch * scheduler_->KvBytes(max_context_)) >> 20);
  }
}

NativeBackend::~NativeBackend() = default;

int64_t NativeBackend::SessionBytes() const {
  return session_bytes_.load() + (scheduler_ != nullptr ? scheduler_->kv_bytes_in_use() : 0);
}

void NativeBackend::SetBatchObserver(BatchStepObserver observer) {
  std::lock_guard<std::mutex> lock(mu_);
  batch_observer_ = std::move(observer);
}

absl::StatusOr<std::unique_ptr<NativeBackend>> NativeBackend::Load(
    const NativeBackendOptions& options) {
  ModelOptions mo;
  mo.threads = options.threads;
  mo.kernels = options.kernels;
  mo.fault = options.fault;
  mo.head = options.head;
  mo.weight_memory = options.weight_memory;
  mo.metadata_overrides = options.metadata_overrides;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(options.model_path, mo));
  return Wrap(std::shared_ptr<const Model>(std::move(model)), options.max_context,
              options.max_idle_sessions, options.batch);
}

std::unique_ptr<NativeBackend> NativeBackend::Wrap(std::shared_ptr<const Model> model,
                                                   int max_context, int max_idle_sessions, BatchOptions batch) {
  return std::unique_ptr<NativeBackend>(
      new NativeBackend(std::move(model), max_context, max_idle_sessions, batch));
}

std::unique_ptr<Session> NativeBackend::AcquireSession() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<Session> s = std::move(idle_.back());
      idle_.pop_back();
      return s;
    }
  }
  auto s = std::make_unique<Session>(*model_, max_context_);
  session_bytes_ += static_cast<int64_t>(s->AllocatedBytes());
  return s;
}

void NativeBackend::ReleaseSession(std::unique_ptr<Session> session) {
  session->Reset();
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(idle_.size()) < max_idle_sessions_) {
    idle_.push_back(std::move(session));
  } else {
    session_bytes_ -= static_cast<int64_t>(session->AllocatedBytes());
  }
}

absl::Status NativeBackend::RequireTokenizer() const {
  if (model_->tokenizer() == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat(info_.file_name, " has no tokenizer: send token ids"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> NativeBackend::Tokenize(absl::string_view text, bool add_bos,
                                                             bool parse_special) const {
  RETURN_IF_ERROR(RequireTokenizer());
  Tokenizer::EncodeOptions o;
  o.add_bos = add_bos;
  o.parse_special = parse_special;
  return model_->tokenizer()->Encode(text, o);
}

absl::StatusOr<std::string> NativeBackend::TokenPiece(int32_t id) const {
  RETURN_IF_ERROR(RequireTokenizer());
  return model_->tokenizer()->TokenToPiece(id, /*special=*/false);
}

absl::StatusOr<std::string> NativeBackend::Detokenize(absl::Span<const int32_t> ids) const {
  RETURN_IF_ERROR(RequireTokenizer());
  return model_->tokenizer()->Decode(ids, /*special=*/false);
}

absl::StatusOr<ChatRendering> NativeBackend::ApplyChatTemplate(absl::Span<const ChatTurn> chat,
                                                               absl::string_view tmpl,
                                                               bool add_assistant) const {
  ChatRendering out;
  std::string model_template;
  if (tmpl.empty()) {
    // As llama_chat_apply_template(model, nullptr, ...): the model's own, else chatml.
    if (model_->file().HasKey("tokenizer.chat_template")) {
      ASSIGN_OR_RETURN(std::string value, model_->file().GetString("tokenizer.chat_template"));
      model_template = chat::ModelChatTemplate(value);
      out.source = ChatTemplateSource::kModel;
    } else {
      model_template = std::string(chat::kDefaultTemplate);
      out.source = ChatTemplateSource::kDefault;
    }
    tmpl = model_template;
  }
  std::vector<chat::ChatMessage> messages;
  messages.reserve(chat.size());
  for (const ChatTurn& t : chat) messages.push_back({t.role, t.content});
  out.text = chat::RenderChat(tmpl, messages, add_assistant);
  return out;
}

absl::Status NativeBackend::EvalLogits(absl::Span<const int32_t> ids, BackendEvalMode mode,
                                       const std::vector<int>& rows, const LogitsRowFn& on_row,
                                       const CancelledFn& cancelled, CallNotes* /*notes*/) {
  Lease session(*this);
  EvalHooks hooks;
  hooks.cancelled = cancelled;
  // Never screened (no HeadScreen): EvalLogits returns every logit exactly.
  // rows is strictly increasing inside [0, n): as many rows as tokens means all.
  const LogitRows wanted = rows.size() == ids.size() ? LogitRows::All() : LogitRows::List(rows);
  return (*session).Eval(ids, ToEngineMode(mode), wanted, on_row, &hooks);
}

absl::Status NativeBackend::EvalTrace(absl::Span<const int32_t> ids, BackendEvalMode mode,
                                      const std::vector<int>& rows, const ResidualFn& on_residual,
                                      const CancelledFn& cancelled, CallNotes* /*notes*/) {
  Lease session(*this);
  EvalHooks hooks;
  hooks.cancelled = cancelled;
  hooks.on_residual = on_residual;
  hooks.trace_rows = rows;
  return (*session).Eval(ids, ToEngineMode(mode), LogitRows::None(),
                         [](int, absl::Span<const float>) { return absl::OkStatus(); }, &hooks);
}

absl::StatusOr<GenerationResult> NativeBackend::Generate(absl::Span<const int32_t> prompt,
                                                         const GenerationSpec& spec,
                                                         const TokenFn& on_token,
                                                         const CancelledFn& cancelled, CallNotes* notes) {
  GenerateOptions o;
  o.max_new_tokens = spec.max_new_tokens;
  o.sampling.temperature = spec.sampling.temperature;
  o.sampling.top_k = spec.sampling.top_k;
  o.sampling.top_p = spec.sampling.top_p;
  o.sampling.min_p = spec.sampling.min_p;
  o.sampling.repetition_penalty = spec.sampling.repetition_penalty;
  o.sampling.repetition_window = spec.sampling.repetition_window;
  o.sampling.seed = spec.sampling.seed;
  o.stop_token_ids = spec.stop_token_ids;
  o.stop_sequences = spec.stop_sequences;
  o.ignore_eos = spec.ignore_eos;
  o.prefill_mode = ToEngineMode(spec.prefill_mode);
  o.logprobs_top_n = spec.logprobs_top_n;
  RETURN_IF_ERROR(ValidateSamplingParams(o.sampling, info_.n_vocab));

  const bool logprobs = spec.logprobs_top_n >= 0;
  TokenCallback cb;
  if (on_token) {
    cb = [&](const GeneratedToken& t) { return on_token(ToTokenInfo(t, logprobs)); };
  }
  absl::StatusOr<GenerateResult> generated;
  if (scheduler_ != nullptr) {
    generated = scheduler_->Generate(prompt, o, cb, cancelled);
  } else {
    Lease session(*this);
    generated = bitparity::Generate(*session, prompt, o, cb, cancelled);
  }
  if (!generated.ok()) return generated.status();
  GenerateResult& r = *generated;
  if (notes != nullptr) {  // which head served it: GetModelInfo's choice, per request
    notes->output_head = HeadModeName(r.head.path);
    notes->head_candidates = r.head.candidates;
    notes->head_fallbacks = r.head.fallbacks;
  }
  GenerationResult out;
  out.ids = std::move(r.ids);
  for (const GeneratedToken& t : r.tokens) out.tokens.push_back(ToTokenInfo(t, logprobs));
  out.text = std::move(r.text);
  out.finish = ToFinish(r.finish_reason);
  out.prefill_ms = r.timings.prefill_ms;
  out.decode_ms = r.timings.decode_ms;
  out.first_token_ms = r.timings.first_token_ms;
  out.decode_steps = r.timings.decode_steps;
  return out;
}

}  // namespace bitparity
