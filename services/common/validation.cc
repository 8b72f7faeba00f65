#include "services/common/validation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "services/common/chat_input.h"

namespace bitparity {

namespace v1 = bitnet::v1;

absl::Status ValidateTokenIds(absl::Span<const int32_t> ids, int n_vocab, const char* field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat(field, "[", i, "] = ", ids[i],
                                                     " is outside the vocabulary [0, ", n_vocab,
                                                     ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckContext(int n_tokens, int extra, int max_context, const char* what) {
  const int64_t need = int64_t{n_tokens} + extra;
  if (need > max_context) {
    if (extra > 0) {
      return absl::OutOfRangeError(absl::StrCat(what, ": ", n_tokens, " input tokens + ", extra,
                                                " new tokens = ", need,
                                                " positions, over the server's max_context ",
                                                max_context));
    }
    return absl::OutOfRangeError(absl::StrCat(what, ": ", n_tokens,
                                              " tokens, over the server's max_context ",
                                              max_context));
  }
  return absl::OkStatus();
}

absl::Status CheckTextFits(int64_t text_bytes, int max_token_bytes, int fixed, int extra,
                           int max_context, const char* field) {
  if (max_token_bytes <= 0) return absl::OkStatus();
  const int64_t at_least = (text_bytes + max_token_bytes - 1) / max_token_bytes;
  const int64_t left = std::max<int64_t>(0, int64_t{max_context} - extra - fixed);
  if (at_least <= left) return absl::OkStatus();
  std::string budget = absl::StrCat("the server's max_context ", max_context);
  if (extra > 0) absl::StrAppend(&budget, " - ", extra, " new tokens");
  if (fixed > 0) absl::StrAppend(&budget, " - ", fixed, " for BOS");
  return absl::OutOfRangeError(absl::StrCat(
      field, " has ", text_bytes, " bytes and cannot fit in ", left, " tokens (", budget,
      "): no token is longer than ", max_token_bytes, " bytes, so it is at least ", at_least,
      " tokens; refused without tokenizing"));
}

absl::Status ValidateInputShape(const v1::Input& input) {
  switch (input.kind_case()) {
    case v1::Input::kText:
      return absl::OkStatus();
    case v1::Input::kIds:
      if (input.ids().ids().empty()) {
        return absl::InvalidArgumentError("input.ids is empty: give at least one token id");
      }
      if (input.has_add_bos() || input.parse_special()) {
        return absl::InvalidArgumentError(
            "input.add_bos and input.parse_special apply to input.text only; input.ids are "
            "evaluated exactly as given (include the BOS id yourself)");
      }
      return absl::OkStatus();
    case v1::Input::kChat:
      return ValidateChatMessages(input.chat(), "input.chat");
    case v1::Input::KIND_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("input is empty: set input.text, input.ids or input.chat");
}

absl::StatusOr<std::vector<int32_t>> ResolveInput(const v1::Input& input,
                                                  const EngineBackend& backend, int extra,
                                                  double* tokenize_ms) {
  RETURN_IF_ERROR(ValidateInputShape(input));
  const BackendInfo& info = backend.Info();
  std::vector<int32_t> ids;
  if (tokenize_ms != nullptr) *tokenize_ms = 0;
  if (input.kind_case() == v1::Input::kText || input.kind_case() == v1::Input::kChat) {
    const bool chat = input.kind_case() == v1::Input::kChat;
    const char* field = chat ? "input.chat" : "input.text";
    if (!info.has_tokenizer) {
      return absl::FailedPreconditionError(
          absl::StrCat(field, ": this model has no tokenizer; send input.ids"));
    }
    const auto t0 = std::chrono::steady_clock::now();
    // A chat is rendered first, and its markers are special tokens (engine.proto).
    std::string rendered;
    if (chat) {
      ASSIGN_OR_RETURN(RenderedChat r, RenderChatInput(input.chat(), backend, field));
      rendered = std::move(r.text);
    }
    const std::string& text = chat ? rendered : input.text();
    const bool parse_special = chat || input.parse_special();
    const bool add_bos = input.has_add_bos() ? input.add_bos() : info.add_bos;
    RETURN_IF_ERROR(CheckTextFits(static_cast<int64_t>(text.size()), info.max_token_bytes,
                                  add_bos && info.bos_id >= 0 ? 1 : 0, extra, info.max_context,
                                  field));
    ASSIGN_OR_RETURN(ids, backend.Tokenize(text, add_bos, parse_special));
    if (tokenize_ms != nullptr) {
      *tokenize_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                         .count();
    }
    if (ids.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, " gave no tokens (empty text without BOS): nothing to evaluate"));
    }
    RETURN_IF_ERROR(ValidateTokenIds(ids, info.n_vocab, chat ? "tokenized input.chat"
                                                             : "tokenized input.text"));
  } else {
    ids.assign(input.ids().ids().begin(), input.ids().ids().end());
    RETURN_IF_ERROR(ValidateTokenIds(ids, info.n_vocab, "input.ids"));
  }
  RETURN_IF_ERROR(CheckContext(static_cast<int>(ids.size()), extra, info.max_context, "input"));
  return ids;
}

absl::StatusOr<BackendEvalMode> ResolveEvalMode(v1::EvalMode mode, const char* field) {
  switch (mode) {
    case v1::EVAL_MODE_UNSPECIFIED:
    case v1::EVAL_MODE_BATCH:
      return BackendEvalMode::kBatch;
    case v1::EVAL_MODE_SEQUENTIAL:
      return BackendEvalMode::kSequential;
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      field, " = ", static_cast<int>(mode), " is not an EvalMode (BATCH = 1, SEQUENTIAL = 2)"));
}

absl::StatusOr<std::vector<int>> ResolvePositions(const v1::Positions& positions, int n_tokens) {
  std::vector<int> rows;
  if (positions.kind() != v1::Positions::LIST && !positions.list().empty()) {
    return absl::InvalidArgumentError("positions.list is read only with positions.kind = LIST");
  }
  switch (positions.kind()) {
    case v1::Positions::LAST:
      rows.push_back(n_tokens - 1);
      return rows;
    case v1::Positions::ALL:
      rows.reserve(n_tokens);
      for (int i = 0; i < n_tokens; ++i) rows.push_back(i);
      return rows;
    case v1::Positions::LIST:
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("positions.kind = ", static_cast<int>(positions.kind()),
                       " is not a Positions.Kind (LAST = 0, ALL = 1, LIST = 2)"));
  }
  if (positions.list().empty()) {
    return absl::InvalidArgumentError("positions.list is empty: kind LIST needs at least one position");
  }
  rows.reserve(positions.list_size());
  for (int i = 0; i < positions.list_size(); ++i) {
    const int64_t given = positions.list(i);
    const int64_t p = given < 0 ? given + n_tokens : given;
    if (p < 0 || p >= n_tokens) {
      return absl::InvalidArgumentError(absl::StrCat(
          "positions.list[", i, "] = ", given, " is outside the sequence of ", n_tokens,
          " tokens (valid: 0 .. ", n_tokens - 1, ", or -1 .. -", n_tokens, " from the end)"));
    }
    if (!rows.empty() && p <= rows.back()) {
      return absl::InvalidArgumentError(absl::StrCat("positions.list must be strictly increasing: positions.list[", i,
                                                     "] = ", given, " (position ", p,
                                                     ") does not follow position ", rows.back()));
    }
    rows.push_back(static_cast<int>(p));
  }
  return rows;
}

absl::StatusOr<v1::FloatFormat> ValidateFloatFormat(v1::FloatFormat format, const char* field) {
  if (format == v1::FLOAT_FORMAT_F32 || format == v1::FLOAT_FORMAT_F16) return format;
  return absl::InvalidArgumentError(absl::StrCat(field, " = ", static_cast<int>(format),
                                                 " is not a FloatFormat (F32 = 0, F16 = 1)"));
}

absl::StatusOr<LogitsOutputSpec> ValidateLogitsOutput(const v1::LogitsOutput& output, int n_vocab) {
  LogitsOutputSpec spec;
  spec.kind = output.kind();
  switch (output.kind()) {
    case v1::LogitsOutput::FULL: {
      ASSIGN_OR_RETURN(spec.format, ValidateFloatFormat(output.format(), "output.format"));
      if (output.top_k() != 0) {
        return absl::InvalidArgumentError("output.top_k is read only with output.kind = TOP_K");
      }
      return spec;
    }
    case v1::LogitsOutput::TOP_K:
      if (output.top_k() < 1 || output.top_k() > n_vocab) {
        return absl::InvalidArgumentError(absl::StrCat("output.top_k = ", output.top_k(),
                                                       " must be in [1, ", n_vocab,
                                                       "] (the vocabulary size)"));
      }
      if (output.format() != v1::FLOAT_FORMAT_F32) {
        return absl::InvalidArgumentError(
            "output.format applies to kind FULL only (TOP_K logits are float32)");
      }
      spec.top_k = output.top_k();
      return spec;
    case v1::LogitsOutput::NONE:
      if (output.top_k() != 0 || output.format() != v1::FLOAT_FORMAT_F32) {
        return absl::InvalidArgumentError("output.top_k and output.format are unused with kind NONE");
      }
      return spec;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("output.kind = ", static_cast<int>(output.kind()),
                   " is not a LogitsOutput.Kind (FULL = 0, TOP_K = 1, NONE = 2)"));
}

absl::StatusOr<std::vector<int>> ResolveTraceLayers(
    const google::protobuf::RepeatedField<int32_t>& layers, int n_layer) {
  std::vector<int> out;
  if (layers.empty()) {
    for (int l = 0; l <= n_layer; ++l) out.push_back(l);
    return out;
  }
  for (int i = 0; i < layers.size(); ++i) {
    const int l = layers.Get(i);
    if (l < 0 || l > n_layer) {
      return absl::InvalidArgumentError(absl::StrCat("layers[", i, "] = ", l, " must be in [0, ",
                                                     n_layer, "] (", n_layer,
                                                     " = after the final norm)"));
    }
    if (!out.empty() && l <= out.back()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layers must be strictly increasing: layers[", i, "] = ", l));
    }
    out.push_back(l);
  }
  return out;
}

absl::StatusOr<SamplingSpec> ValidateSampling(const v1::Sampling& s, int n_vocab) {
  SamplingSpec spec;
  // Written as !(in range) so that NaN fails too.
  if (!(s.temperature() >= 0.0f && s.temperature() <= kMaxTemperature)) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.temperature = ", s.temperature(),
                                                   " must be in [0, ", kMaxTemperature,
                                                   "] (0 = greedy)"));
  }
  spec.temperature = s.temperature();
  if (s.top_k() < 0 || s.top_k() > n_vocab) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.top_k = ", s.top_k(),
                                                   " must be 0 (off) or in [1, ", n_vocab,
                                                   "] (the vocabulary size)"));
  }
  spec.top_k = s.top_k();
  if (s.has_top_p()) {
    if (!(s.top_p() > 0.0f && s.top_p() <= 1.0f)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sampling.top_p = ", s.top_p(), " must be in (0, 1] (unset = 1 = off)"));
    }
    spec.top_p = s.top_p();
  }
  if (!(s.min_p() >= 0.0f && s.min_p() < 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sampling.min_p = ", s.min_p(), " must be in [0, 1) (0 = off)"));
  }
  spec.min_p = s.min_p();
  if (s.has_repetition_penalty()) {
    if (!(s.repetition_penalty() > 0.0f && s.repetition_penalty() <= kMaxRepetitionPenalty)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sampling.repetition_penalty = ", s.repetition_penalty(), " must be in (0, ",
          kMaxRepetitionPenalty, "] (unset = 1 = off)"));
    }
    spec.repetition_penalty = s.repetition_penalty();
  }
  if (s.has_repetition_window()) {
    if (s.repetition_window() < -1) {
      return absl::InvalidArgumentError(absl::StrCat("sampling.repetition_window = ",
                                                     s.repetition_window(),
                                                     " must be >= 0, or -1 for all tokens"));
    }
    spec.repetition_window = s.repetition_window();
  }
  spec.seed = s.seed();
  return spec;
}

absl::StatusOr<GenerationSpec> ValidateGenerate(const v1::GenerateRequest& r,
                                                const BackendInfo& info,
                                                const ServiceLimits& limits) {
  GenerationSpec spec;
  if (r.max_new_tokens() < 1 || r.max_new_tokens() > info.max_context) {
    return absl::InvalidArgumentError(absl::StrCat("max_new_tokens = ", r.max_new_tokens(),
                                                   " must be in [1, ", info.max_context,
                                                   "] (the server's max_context)"));
  }
  spec.max_new_tokens = r.max_new_tokens();
  ASSIGN_OR_RETURN(spec.sampling, ValidateSampling(r.sampling(), info.n_vocab));

  if (r.stop_sequences_size() > limits.max_stop_sequences) {
    return absl::InvalidArgumentError(absl::StrCat("stop_sequences has ", r.stop_sequences_size(),
                                                   " entries; at most ",
                                                   limits.max_stop_sequences));
  }
  if (r.stop_sequences_size() > 0 && !info.has_tokenizer) {
    return absl::InvalidArgumentError(
        "stop_sequences need a tokenizer to decode text; this model has none (use stop_token_ids)");
  }
  for (int i = 0; i < r.stop_sequences_size(); ++i) {
    const std::string& s = r.stop_sequences(i);
    if (s.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("stop_sequences[", i, "] is empty"));
    }
    if (static_cast<int64_t>(s.size()) > limits.max_stop_sequence_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("stop_sequences[", i, "] is ", s.size(),
                                                     " bytes; at most ",
                                                     limits.max_stop_sequence_bytes));
    }
    spec.stop_sequences.push_back(s);
  }
  RETURN_IF_ERROR(ValidateTokenIds(r.stop_token_ids(), info.n_vocab, "stop_token_ids"));
  spec.stop_token_ids.assign(r.stop_token_ids().begin(), r.stop_token_ids().end());
  spec.ignore_eos = r.ignore_eos();

  if (r.top_logprobs() < 0 || r.top_logprobs() > limits.max_top_logprobs) {
    return absl::InvalidArgumentError(absl::StrCat("top_logprobs = ", r.top_logprobs(),
                                                   " must be in [0, ", limits.max_top_logprobs,
                                                   "]"));
  }
  if (r.top_logprobs() > 0 && !r.logprobs()) {
    return absl::InvalidArgumentError("top_logprobs needs logprobs = true");
  }
  spec.logprobs_top_n = r.logprobs() ? r.top_logprobs() : -1;
  ASSIGN_OR_RETURN(spec.prefill_mode, ResolveEvalMode(r.prefill_mode(), "prefill_mode"));
  return spec;
}

int64_t PositionLogitsBytes(const LogitsOutputSpec& output, int n_vocab) {
  constexpr int64_t kFixed = 64;  // position, token id, logprob, argmax, tags
  switch (output.kind) {
    case v1::LogitsOutput::FULL:
      return kFixed + int64_t{n_vocab} * (output.format == v1::FLOAT_FORMAT_F16 ? 2 : 4);
    case v1::LogitsOutput::TOP_K:
      return kFixed + int64_t{output.top_k} * (5 + 4);  // varint id <= 5 bytes + float
    default:
      return kFixed;
  }
}

int64_t LayerResidualBytes(v1::FloatFormat format, int n_embd) {
  return 32 + int64_t{n_embd} * (format == v1::FLOAT_FORMAT_F16 ? 2 : 4);
}

absl::Status CheckResponseSize(int64_t bytes, int64_t limit, const char* what, const char* hint) {
  if (bytes <= limit) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " would be ", bytes, " bytes, over the server's max message size of ", limit,
      " bytes; ", hint));
}

}  // namespace bitparity
