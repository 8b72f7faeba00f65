// File: services/common/validation.h
//
// Request validation for bitnet.v1, as free functions so that every rule is
// tested without a server (tests/services/validation_test.cc). Each returns
// InvalidArgument with a message naming the field, the value and the accepted
// range, or OutOfRange for a sequence that does not fit the context; both
// servers reject the same bad input with the same status and message.
//
// The ranges here are the ones documented in proto/bitnet/v1/engine.proto.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "bitnet/v1/engine.pb.h"
#include "services/common/engine_backend.h"

namespace bitparity {

// Server-wide limits (flags of the servers).
struct ServiceLimits {
  int max_concurrent = 2;   // evaluating requests running at once
  int max_queue = 8;        // evaluating requests waiting for a slot
  int64_t max_message_bytes = int64_t{64} << 20;
  int max_top_logprobs = 20;
  int max_stop_sequences = 16;
  int max_stop_sequence_bytes = 256;
};

// Sampling bounds beyond the obvious ones (documented in the proto).
inline constexpr float kMaxTemperature = 100.0f;
inline constexpr float kMaxRepetitionPenalty = 100.0f;

// Ids in [0, n_vocab). `field` names the ids in the message ("input.ids").
absl::Status ValidateTokenIds(absl::Span<const int32_t> ids, int n_vocab, const char* field);

// n_tokens + extra <= max_context, else OutOfRange naming both numbers.
absl::Status CheckContext(int n_tokens, int extra, int max_context, const char* what);

// Before tokenizing: a text of `text_bytes` bytes is at least ceil(text_bytes /
// max_token_bytes) tokens (BackendInfo::max_token_bytes: no token stands for more
// bytes of text), plus `fixed` tokens added to it (BOS). If that and `extra`
// reserved positions exceed max_context, the text cannot fit whatever it tokenizes
// to: OutOfRange naming the bytes, the bound and the positions left, so that a long
// text is refused without being tokenized. OK when max_token_bytes <= 0 (no bound
// known). `field` names the text in the message ("input.text").
absl::Status CheckTextFits(int64_t text_bytes, int max_token_bytes, int fixed, int extra,
                           int max_context, const char* field);

// The shape of an Input before tokenization: a kind is set, ids non-empty.
absl::Status ValidateInputShape(const bitnet::v1::Input& input);

// Tokenizes text input (a chat input is first rendered through the backend's chat
// templates, chat_input.h, then tokenized with parse_special) or takes ids, checks
// every id against the vocabulary,
// non-emptiness and the context (`extra` positions are reserved after the input,
// e.g. max_new_tokens). A text that cannot fit by its length alone (CheckTextFits)
// is refused before it is tokenized. `tokenize_ms` receives the time spent tokenizing.
absl::StatusOr<std::vector<int32_t>> ResolveInput(const bitnet::v1::Input& input,
                                                  const EngineBackend& backend, int extra,
                                                  double* tokenize_ms);

// EVAL_MODE_UNSPECIFIED -> batch; an unknown enum number is InvalidArgument.
absl::StatusOr<BackendEvalMode> ResolveEvalMode(bitnet::v1::EvalMode mode, const char* field);

// Selected positions, strictly increasing, each in [0, n_tokens).
absl::StatusOr<std::vector<int>> ResolvePositions(const bitnet::v1::Positions& positions,
                                                  int n_tokens);

// Checked logits output: FULL (f32/f16), TOP_K (1..n_vocab) or NONE.
struct LogitsOutputSpec {
  bitnet::v1::LogitsOutput::Kind kind = bitnet::v1::LogitsOutput::FULL;
  bitnet::v1::FloatFormat format = bitnet::v1::FLOAT_FORMAT_F32;
  int top_k = 0;
};
absl::StatusOr<LogitsOutputSpec> ValidateLogitsOutput(const bitnet::v1::LogitsOutput& output,
                                                      int n_vocab);

// Trace layers, strictly increasing, each in [0, n_layer]; empty = all.
absl::StatusOr<std::vector<int>> ResolveTraceLayers(
    const google::protobuf::RepeatedField<int32_t>& layers, int n_layer);

absl::StatusOr<bitnet::v1::FloatFormat> ValidateFloatFormat(bitnet::v1::FloatFormat format,
                                                            const char* field);

// Sampling fields -> SamplingSpec with the defaults of unset optionals applied.
absl::StatusOr<SamplingSpec> ValidateSampling(const bitnet::v1::Sampling& sampling, int n_vocab);

// Everything in a GenerateRequest except the input itself (ResolveInput).
absl::StatusOr<GenerationSpec> ValidateGenerate(const bitnet::v1::GenerateRequest& request,
                                                const BackendInfo& info,
                                                const ServiceLimits& limits);

// Bytes one PositionLogits takes on the wire (an upper bound).
int64_t PositionLogitsBytes(const LogitsOutputSpec& output, int n_vocab);
// Bytes one LayerResidual takes on the wire (an upper bound).
int64_t LayerResidualBytes(bitnet::v1::FloatFormat format, int n_embd);

// bytes <= limit, else InvalidArgument naming both and `hint` (what to do instead).
absl::Status CheckResponseSize(int64_t bytes, int64_t limit, const char* what, const char* hint);

}  // namespace bitparity
