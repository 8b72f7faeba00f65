#include "services/common/conversion.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "base/fp16.h"
#include "base/logits.h"
#include "base/utf8.h"

namespace bitparity {

namespace v1 = bitnet::v1;

namespace {

void AppendLe16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v & 0xFF));
  out->push_back(static_cast<char>(v >> 8));
}

void AppendLe32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

std::string PackFloats(absl::Span<const float> values, v1::FloatFormat format) {
  std::string out;
  if (format == v1::FLOAT_FORMAT_F16) {
    out.reserve(values.size() * 2);
    for (float v : values) AppendLe16(&out, Fp32ToFp16(v));
  } else {
    out.reserve(values.size() * 4);
    for (float v : values) AppendLe32(&out, FloatBits(v));
  }
  return out;
}

absl::StatusOr<std::vector<float>> UnpackFloats(absl::string_view bytes, v1::FloatFormat format) {
  const size_t width = format == v1::FLOAT_FORMAT_F16 ? 2 : 4;
  if (bytes.size() % width != 0) {
    return absl::InvalidArgumentError(absl::StrCat("packed floats: ", bytes.size(),
                                                   " bytes is not a multiple of ", width));
  }
  std::vector<float> out(bytes.size() / width);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < out.size(); ++i, p += width) {
    if (width == 2) {
      out[i] = Fp16ToFp32(static_cast<uint16_t>(p[0] | (p[1] << 8)));
    } else {
      out[i] = BitsToFloat(static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
                           (static_cast<uint32_t>(p[2]) << 16) |
                           (static_cast<uint32_t>(p[3]) << 24));
    }
  }
  return out;
}

void FillPositionLogits(int position, int32_t token_id, std::optional<int32_t> next_id,
                        absl::Span<const float> logits, const LogitsOutputSpec& output,
                        v1::PositionLogits* out) {
  out->set_position(position);
  out->set_token_id(token_id);
  out->set_argmax_id(ArgMax(logits));
  if (next_id.has_value()) out->set_next_token_logprob(LogSoftmaxAt(logits, *next_id));
  switch (output.kind) {
    case v1::LogitsOutput::FULL:
      out->set_logits(PackFloats(logits, output.format));
      break;
    case v1::LogitsOutput::TOP_K:
      for (const TokenLogit& t : TopK(logits, output.top_k)) {
        out->add_top_ids(t.id);
        out->add_top_logits(t.logit);
      }
      break;
    default:
      break;
  }
}

v1::FinishReason ToProtoFinishReason(GenerationFinish finish) {
  switch (finish) {
    case GenerationFinish::kLength:
      return v1::FINISH_REASON_LENGTH;
    case GenerationFinish::kEos:
      return v1::FINISH_REASON_EOS;
    case GenerationFinish::kStopSequence:
      return v1::FINISH_REASON_STOP_SEQUENCE;
    case GenerationFinish::kStopToken:
      return v1::FINISH_REASON_STOP_TOKEN;
    case GenerationFinish::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

v1::EvalMode ToProtoEvalMode(BackendEvalMode mode) {
  return mode == BackendEvalMode::kSequential ? v1::EVAL_MODE_SEQUENTIAL : v1::EVAL_MODE_BATCH;
}

void FillGeneratedToken(int index, const GeneratedTokenInfo& token, v1::GeneratedToken* out) {
  out->set_index(index);
  out->set_id(token.id);
  out->set_raw_text(token.text);
  out->set_text(ToValidUtf8(token.text));
  if (token.logprob.has_value()) out->set_logprob(*token.logprob);
  for (const TokenAlternativeInfo& alt : token.top) {
    v1::TokenAlternative* a = out->add_top();
    a->set_id(alt.id);
    a->set_logit(alt.logit);
    a->set_logprob(alt.logprob);
  }
}

void FillModelInfo(const BackendInfo& info, const ServiceLimits& limits,
                   const ProcessMemory& memory, int64_t session_bytes,
                   absl::Span<const ChildMemory> workers,
                   const std::optional<WorkerPoolStats>& pool, v1::GetModelInfoResponse* out) {
  v1::EngineInfo* engine = out->mutable_engine();
  engine->set_name(info.engine_name);
  engine->set_version(info.engine_version);
  v1::BuildInfo* build = engine->mutable_build();
  build->set_compiler(info.compiler);
  build->set_build_type(info.build_type);
  build->set_simd_path(info.simd_path);
  for (const std::string& f : info.cpu_features) build->add_cpu_features(f);
  for (const auto& [k, v] : info.build_extra) (*build->mutable_extra())[k] = v;

  v1::ModelFacts* m = out->mutable_model();
  m->set_architecture(info.architecture);
  m->set_name(info.model_name);
  m->set_file_name(info.file_name);
  m->set_file_size_bytes(info.file_size_bytes);
  m->set_sha256(info.sha256);
  m->set_n_layer(info.n_layer);
  m->set_n_embd(info.n_embd);
  m->set_n_ff(info.n_ff);
  m->set_n_head(info.n_head);
  m->set_n_head_kv(info.n_head_kv);
  m->set_head_dim(info.head_dim);
  m->set_n_vocab(info.n_vocab);
  m->set_n_ctx_train(info.n_ctx_train);
  m->set_rope_freq_base(info.rope_freq_base);
  m->set_rms_eps(info.rms_eps);
  m->set_bos_id(info.bos_id);
  m->set_eos_id(info.eos_id);
  m->set_add_bos(info.add_bos);
  m->set_has_tokenizer(info.has_tokenizer);
  m->set_max_token_bytes(info.max_token_bytes);
  for (const auto& [type, count] : info.tensor_types) {
    v1::TensorTypeCount* t = m->add_tensor_types();
    t->set_type(type);
    t->set_count(count);
  }
  for (const MetadataOverride& o : info.metadata_overrides) {
    v1::MetadataOverride* p = m->add_metadata_overrides();
    p->set_key(o.key);
    p->set_type(OverrideTypeName(o.type));
    p->set_value(OverrideValueText(o));
  }
  for (const LintFinding& f : info.lint_findings) {
    v1::ModelLintFinding* p = m->add_lint_findings();
    p->set_severity(LintSeverityName(f.severity));
    p->set_code(f.code);
    p->set_message(f.message);
    p->set_fix(f.fix);
  }

  v1::RuntimeLimits* l = out->mutable_limits();
  l->set_threads(info.threads);
  l->set_max_context(info.max_context);
  l->set_max_concurrent_requests(limits.max_concurrent);
  l->set_max_queue(limits.max_queue);
  l->set_max_message_bytes(limits.max_message_bytes);
  l->set_max_new_tokens(info.max_context);
  l->set_max_top_k(info.n_vocab);
  l->set_max_top_logprobs(limits.max_top_logprobs);
  l->set_max_stop_sequences(limits.max_stop_sequences);
  l->set_max_stop_sequence_bytes(limits.max_stop_sequence_bytes);

  v1::MemoryUsage* mem = out->mutable_memory();
  mem->set_resident_bytes(memory.resident_bytes);
  mem->set_peak_resident_bytes(memory.peak_resident_bytes);
  mem->set_session_bytes(session_bytes);
  int64_t worker_rss = 0, worker_peak = 0;
  for (const ChildMemory& w : workers) {
    v1::WorkerMemoryUsage* wm = mem->add_workers();
    wm->set_pid(w.pid);
    wm->set_resident_bytes(w.memory.resident_bytes);
    wm->set_peak_resident_bytes(w.memory.peak_resident_bytes);
    worker_rss += w.memory.resident_bytes;
    worker_peak += w.memory.peak_resident_bytes;
  }
  mem->set_worker_resident_bytes(worker_rss);
  mem->set_worker_peak_resident_bytes(worker_peak);
  if (pool.has_value()) {
    v1::WorkerPoolStatus* wp = out->mutable_worker_pool();
    wp->set_workers(pool->workers);
    wp->set_ready(pool->ready);
    wp->set_restarts(pool->restarts);
    wp->set_retried_after_worker_crash(pool->retried_calls);
  }

  out->set_fault_injection(info.fault_injection);
  out->set_output_head(info.output_head);
}

}  // namespace bitparity
