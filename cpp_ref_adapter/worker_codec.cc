#include "cpp_ref_adapter/worker_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/utf8.h"

namespace bitparity::worker {

// The wire says little-endian; memcpy is only right on a little-endian host.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "worker frames assume a little-endian host");

void ToProto(const BackendInfo& in, wpb::BackendInfo* out) {
  out->set_engine_name(in.engine_name);
  out->set_engine_version(in.engine_version);
  out->set_compiler(in.compiler);
  out->set_build_type(in.build_type);
  out->set_simd_path(in.simd_path);
  for (const std::string& f : in.cpu_features) out->add_cpu_features(f);
  for (const auto& [k, v] : in.build_extra) (*out->mutable_build_extra())[k] = v;
  out->set_architecture(in.architecture);
  out->set_model_name(in.model_name);
  out->set_file_name(in.file_name);
  out->set_file_size_bytes(in.file_size_bytes);
  out->set_sha256(in.sha256);
  out->set_n_layer(in.n_layer);
  out->set_n_embd(in.n_embd);
  out->set_n_ff(in.n_ff);
  out->set_n_head(in.n_head);
  out->set_n_head_kv(in.n_head_kv);
  out->set_head_dim(in.head_dim);
  out->set_n_vocab(in.n_vocab);
  out->set_n_ctx_train(in.n_ctx_train);
  out->set_rope_freq_base(in.rope_freq_base);
  out->set_rms_eps(in.rms_eps);
  out->set_bos_id(in.bos_id);
  out->set_eos_id(in.eos_id);
  out->set_add_bos(in.add_bos);
  out->set_has_tokenizer(in.has_tokenizer);
  out->set_max_token_bytes(in.max_token_bytes);
  for (const auto& [type, count] : in.tensor_types) {
    wpb::TensorTypeCount* t = out->add_tensor_types();
    t->set_type(type);
    t->set_count(count);
  }
  out->set_threads(in.threads);
  out->set_max_context(in.max_context);
  out->set_fault_injection(in.fault_injection);
  for (const MetadataOverride& o : in.metadata_overrides) {
    out->add_metadata_overrides(FormatMetadataOverride(o));
  }
  for (const LintFinding& f : in.lint_findings) {
    wpb::LintFinding* p = out->add_lint_findings();
    p->set_severity(LintSeverityName(f.severity));
    p->set_code(f.code);
    p->set_message(f.message);
    p->set_fix(f.fix);
  }
}

BackendInfo FromProto(const wpb::BackendInfo& in) {
  BackendInfo out;
  out.engine_name = in.engine_name();
  out.engine_version = in.engine_version();
  out.compiler = in.compiler();
  out.build_type = in.build_type();
  out.simd_path = in.simd_path();
  out.cpu_features.assign(in.cpu_features().begin(), in.cpu_features().end());
  for (const auto& [k, v] : in.build_extra()) out.build_extra[k] = v;
  out.architecture = in.architecture();
  out.model_name = in.model_name();
  out.file_name = in.file_name();
  out.file_size_bytes = in.file_size_bytes();
  out.sha256 = in.sha256();
  out.n_layer = in.n_layer();
  out.n_embd = in.n_embd();
  out.n_ff = in.n_ff();
  out.n_head = in.n_head();
  out.n_head_kv = in.n_head_kv();
  out.head_dim = in.head_dim();
  out.n_vocab = in.n_vocab();
  out.n_ctx_train = in.n_ctx_train();
  out.rope_freq_base = in.rope_freq_base();
  out.rms_eps = in.rms_eps();
  out.bos_id = in.bos_id();
  out.eos_id = in.eos_id();
  out.add_bos = in.add_bos();
  out.has_tokenizer = in.has_tokenizer();
  out.max_token_bytes = in.max_token_bytes();
  for (const wpb::TensorTypeCount& t : in.tensor_types()) {
    out.tensor_types.emplace_back(t.type(), t.count());
  }
  out.threads = in.threads();
  out.max_context = in.max_context();
  out.fault_injection = in.fault_injection();
  // The worker wrote these with FormatMetadataOverride / LintSeverityName, so they
  // parse; anything else (a worker of another build) is left out, not guessed.
  for (const std::string& spec : in.metadata_overrides()) {
    absl::StatusOr<MetadataOverride> o = ParseMetadataOverride(spec);
    if (o.ok()) out.metadata_overrides.push_back(*std::move(o));
  }
  for (const wpb::LintFinding& f : in.lint_findings()) {
    LintFinding x;
    if (!ParseLintSeverity(f.severity(), &x.severity)) continue;
    x.code = f.code();
    x.message = f.message();
    x.fix = f.fix();
    out.lint_findings.push_back(std::move(x));
  }
  return out;
}

wpb::EvalMode ToProto(BackendEvalMode mode) {
  return mode == BackendEvalMode::kBatch ? wpb::EVAL_MODE_BATCH : wpb::EVAL_MODE_SEQUENTIAL;
}

BackendEvalMode FromProto(wpb::EvalMode mode) {
  return mode == wpb::EVAL_MODE_SEQUENTIAL ? BackendEvalMode::kSequential : BackendEvalMode::kBatch;
}

void ToProto(const GenerationSpec& in, wpb::GenerateRequest* out) {
  out->set_max_new_tokens(in.max_new_tokens);
  wpb::Sampling* s = out->mutable_sampling();
  s->set_temperature(in.sampling.temperature);
  s->set_top_k(in.sampling.top_k);
  s->set_top_p(in.sampling.top_p);
  s->set_min_p(in.sampling.min_p);
  s->set_repetition_penalty(in.sampling.repetition_penalty);
  s->set_repetition_window(in.sampling.repetition_window);
  s->set_seed(in.sampling.seed);
  for (const std::string& stop : in.stop_sequences) out->add_stop_sequences(stop);
  out->mutable_stop_token_ids()->Add(in.stop_token_ids.begin(), in.stop_token_ids.end());
  out->set_ignore_eos(in.ignore_eos);
  out->set_prefill_mode(ToProto(in.prefill_mode));
  out->set_logprobs_top_n(in.logprobs_top_n);
}

GenerationSpec FromProto(const wpb::GenerateRequest& in) {
  GenerationSpec out;
  out.max_new_tokens = in.max_new_tokens();
  const wpb::Sampling& s = in.sampling();
  out.sampling.temperature = s.temperature();
  out.sampling.top_k = s.top_k();
  out.sampling.top_p = s.top_p();
  out.sampling.min_p = s.min_p();
  out.sampling.repetition_penalty = s.repetition_penalty();
  out.sampling.repetition_window = s.repetition_window();
  out.sampling.seed = s.seed();
  out.stop_sequences.assign(in.stop_sequences().begin(), in.stop_sequences().end());
  out.stop_token_ids.assign(in.stop_token_ids().begin(), in.stop_token_ids().end());
  out.ignore_eos = in.ignore_eos();
  out.prefill_mode = FromProto(in.prefill_mode());
  out.logprobs_top_n = in.logprobs_top_n();
  return out;
}

void ToProto(const GeneratedTokenInfo& in, wpb::TokenFrame* out) {
  out->set_id(in.id);
  out->set_text(in.text);
  out->set_has_logprob(in.logprob.has_value());
  if (in.logprob) out->set_logprob(*in.logprob);
  for (const TokenAlternativeInfo& a : in.top) {
    wpb::TokenAlternative* t = out->add_top();
    t->set_id(a.id);
    t->set_logit(a.logit);
    t->set_logprob(a.logprob);
  }
}

GeneratedTokenInfo FromProto(const wpb::TokenFrame& in) {
  GeneratedTokenInfo out;
  out.id = in.id();
  out.text = in.text();
  if (in.has_logprob()) out.logprob = in.logprob();
  for (const wpb::TokenAlternative& t : in.top()) {
    out.top.push_back(TokenAlternativeInfo{t.id(), t.logit(), t.logprob()});
  }
  return out;
}

wpb::Finish ToProto(GenerationFinish finish) {
  switch (finish) {
    case GenerationFinish::kLength: return wpb::FINISH_LENGTH;
    case GenerationFinish::kEos: return wpb::FINISH_EOS;
    case GenerationFinish::kStopSequence: return wpb::FINISH_STOP_SEQUENCE;
    case GenerationFinish::kStopToken: return wpb::FINISH_STOP_TOKEN;
    case GenerationFinish::kCancelled: return wpb::FINISH_CANCELLED;
  }
  return wpb::FINISH_LENGTH;
}

GenerationFinish FromProto(wpb::Finish finish) {
  switch (finish) {
    case wpb::FINISH_EOS: return GenerationFinish::kEos;
    case wpb::FINISH_STOP_SEQUENCE: return GenerationFinish::kStopSequence;
    case wpb::FINISH_STOP_TOKEN: return GenerationFinish::kStopToken;
    case wpb::FINISH_CANCELLED: return GenerationFinish::kCancelled;
    default: return GenerationFinish::kLength;
  }
}

void ToProto(absl::Span<const ChatTurn> chat, absl::string_view tmpl, bool add_assistant,
             wpb::ChatTemplateRequest* out) {
  for (const ChatTurn& t : chat) {
    wpb::ChatTurn* m = out->add_chat();
    m->set_role(t.role);
    m->set_content(t.content);
  }
  out->set_chat_template(std::string(tmpl));
  out->set_add_assistant(add_assistant);
}

std::vector<ChatTurn> ChatFromProto(const wpb::ChatTemplateRequest& in) {
  std::vector<ChatTurn> out;
  out.reserve(in.chat_size());
  for (const wpb::ChatTurn& t : in.chat()) out.push_back({t.role(), t.content()});
  return out;
}

void ToProto(const ChatRendering& in, wpb::ChatTemplateResponse* out) {
  out->set_recognised(in.text.has_value());
  if (in.text.has_value()) out->set_text(*in.text);
  switch (in.source) {
    case ChatTemplateSource::kRequest: out->set_source(wpb::CHAT_TEMPLATE_SOURCE_REQUEST); break;
    case ChatTemplateSource::kModel: out->set_source(wpb::CHAT_TEMPLATE_SOURCE_MODEL); break;
    case ChatTemplateSource::kDefault: out->set_source(wpb::CHAT_TEMPLATE_SOURCE_DEFAULT); break;
  }
}

ChatRendering FromProto(const wpb::ChatTemplateResponse& in) {
  ChatRendering out;
  if (in.recognised()) out.text = in.text();
  switch (in.source()) {
    case wpb::CHAT_TEMPLATE_SOURCE_MODEL: out.source = ChatTemplateSource::kModel; break;
    case wpb::CHAT_TEMPLATE_SOURCE_DEFAULT: out.source = ChatTemplateSource::kDefault; break;
    default: out.source = ChatTemplateSource::kRequest; break;
  }
  return out;
}

void ToProto(const absl::Status& status, wpb::Error* out) {
  out->set_code(static_cast<int>(status.code()));
  // Error.message is a proto `string`, which must be UTF-8: a worker error quoting a
  // path or a vocabulary entry with other bytes would make the whole frame
  // unparseable (found by fuzz/worker_frame_fuzzer).
  out->set_message(ToValidUtf8(status.message()));
}

absl::Status FromProto(const wpb::Error& error) {
  const int code = error.code();
  // An unknown or OK code from a worker is still a failure.
  if (code <= 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::InternalError(absl::StrCat("worker error (code ", code, "): ", error.message()));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), error.message());
}

std::string FloatsToBytes(absl::Span<const float> values) {
  std::string out(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

absl::Status BytesToFloats(const std::string& bytes, size_t expected, std::vector<float>* out) {
  if (bytes.size() != expected * sizeof(float)) {
    return absl::DataLossError(absl::StrCat("worker sent ", bytes.size(), " bytes; expected ",
                                            expected, " float32 values"));
  }
  out->resize(expected);
  if (expected > 0) std::memcpy(out->data(), bytes.data(), bytes.size());
  return absl::OkStatus();
}

}  // namespace bitparity::worker
