// File: fuzz/validation_fuzzer.cc
//
// libFuzzer target for bitnet.v1 request validation (services/common/validation.h):
// byte 0 picks the request type (EvalLogits, EvalTrace, Generate, Detokenize,
// Tokenize), the rest is parsed as that message's wire bytes, and the request goes
// through the same validation steps, in the same order, as EngineService runs
// before admission, against the test FakeBackend (100-token vocabulary, 2 layers,
// context 64). Never a crash, and every accepted value obeys its documented range:
//   - errors are InvalidArgument, OutOfRange or FailedPrecondition with a message;
//   - resolved ids are in [0, n_vocab) and fit the context with the reserved room;
//   - positions strictly increase inside [0, n_tokens); trace layers inside [0, n_layer];
//   - TOP_K is 1..n_vocab; size estimates are never negative;
//   - an accepted GenerateRequest has max_new_tokens >= 1 and sampling in range;
//   - ToGrpcStatus and ToValidUtf8 take any status / bytes.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bitnet/v1/engine.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "base/utf8.h"
#include "services/common/conversion.h"
#include "services/common/status_convert.h"
#include "services/common/validation.h"
#include "tests/services/fake_backend.h"

namespace {

namespace v1 = bitnet::v1;
using bitparity::testing::FakeBackend;

[[noreturn]] void Fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "validation_fuzzer: %s %s\n", what, detail.c_str());
  std::abort();
}

// A rejection must be one of the documented codes and say what is wrong.
void CheckError(const absl::Status& st) {
  if (st.ok()) return;
  const auto code = st.code();
  if (code != absl::StatusCode::kInvalidArgument && code != absl::StatusCode::kOutOfRange &&
      code != absl::StatusCode::kFailedPrecondition) {
    Fail("unexpected status code", st.ToString());
  }
  if (st.message().empty()) Fail("error without a message");
  (void)bitparity::ToGrpcStatus(st);
}

void CheckIds(const std::vector<int32_t>& ids, const bitparity::BackendInfo& info, int extra) {
  if (ids.empty()) Fail("accepted an empty input");
  for (int32_t id : ids) {
    if (id < 0 || id >= info.n_vocab) Fail("accepted id out of range", std::to_string(id));
  }
  if (static_cast<int64_t>(ids.size()) + extra > info.max_context) Fail("accepted past the context");
}

void CheckRows(const std::vector<int>& rows, int n) {
  for (size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || rows[i] >= n) Fail("position out of range");
    if (i > 0 && rows[i] <= rows[i - 1]) Fail("positions not strictly increasing");
  }
}

// Returns the first error (as the service does with ASSIGN_OR_RETURN).
absl::Status EvalLogits(const v1::EvalLogitsRequest& req, const FakeBackend& backend) {
  const auto& info = backend.Info();
  auto mode = bitparity::ResolveEvalMode(req.mode(), "mode");
  if (!mode.ok()) return mode.status();
  auto output = bitparity::ValidateLogitsOutput(req.output(), info.n_vocab);
  if (!output.ok()) return output.status();
  if (output->kind == v1::LogitsOutput::TOP_K && (output->top_k < 1 || output->top_k > info.n_vocab)) {
    Fail("accepted TOP_K out of range");
  }
  auto ids = bitparity::ResolveInput(req.input(), backend, 0, nullptr);
  if (!ids.ok()) return ids.status();
  CheckIds(*ids, info, 0);
  const int n = static_cast<int>(ids->size());
  auto rows = bitparity::ResolvePositions(req.positions(), n);
  if (!rows.ok()) return rows.status();
  CheckRows(*rows, n);
  const int64_t per_position = bitparity::PositionLogitsBytes(*output, info.n_vocab);
  if (per_position < 0) Fail("negative size estimate");
  return bitparity::CheckResponseSize(per_position * static_cast<int64_t>(rows->size()),
                                      int64_t{64} << 20, "the EvalLogits response", "fewer");
}

absl::Status EvalTrace(const v1::EvalTraceRequest& req, const FakeBackend& backend) {
  const auto& info = backend.Info();
  auto mode = bitparity::ResolveEvalMode(req.mode(), "mode");
  if (!mode.ok()) return mode.status();
  auto format = bitparity::ValidateFloatFormat(req.format(), "format");
  if (!format.ok()) return format.status();
  auto layers = bitparity::ResolveTraceLayers(req.layers(), info.n_layer);
  if (!layers.ok()) return layers.status();
  for (size_t i = 0; i < layers->size(); ++i) {
    if ((*layers)[i] < 0 || (*layers)[i] > info.n_layer) Fail("trace layer out of range");
    if (i > 0 && (*layers)[i] <= (*layers)[i - 1]) Fail("trace layers not strictly increasing");
  }
  auto ids = bitparity::ResolveInput(req.input(), backend, 0, nullptr);
  if (!ids.ok()) return ids.status();
  CheckIds(*ids, info, 0);
  const int n = static_cast<int>(ids->size());
  auto rows = bitparity::ResolvePositions(req.positions(), n);
  if (!rows.ok()) return rows.status();
  CheckRows(*rows, n);
  if (bitparity::LayerResidualBytes(*format, info.n_embd) < 0) Fail("negative size estimate");
  return absl::OkStatus();
}

absl::Status Generate(const v1::GenerateRequest& req, const FakeBackend& backend) {
  const auto& info = backend.Info();
  bitparity::ServiceLimits limits;
  auto spec = bitparity::ValidateGenerate(req, info, limits);
  if (!spec.ok()) return spec.status();
  const auto& s = spec->sampling;
  if (spec->max_new_tokens < 1) Fail("accepted max_new_tokens < 1");
  if (!(s.temperature >= 0.0f && s.temperature <= bitparity::kMaxTemperature)) Fail("temperature");
  if (s.top_k < 0 || s.top_k > info.n_vocab) Fail("top_k");
  if (!(s.top_p > 0.0f && s.top_p <= 1.0f)) Fail("top_p");
  if (!(s.min_p >= 0.0f && s.min_p <= 1.0f)) Fail("min_p");
  if (!(s.repetition_penalty > 0.0f && s.repetition_penalty <= bitparity::kMaxRepetitionPenalty)) {
    Fail("repetition_penalty");
  }
  if (static_cast<int>(spec->stop_sequences.size()) > limits.max_stop_sequences) Fail("stops");
  for (const auto& stop : spec->stop_sequences) {
    if (stop.empty() || static_cast<int>(stop.size()) > limits.max_stop_sequence_bytes) {
      Fail("stop sequence size");
    }
  }
  for (int32_t id : spec->stop_token_ids) {
    if (id < 0 || id >= info.n_vocab) Fail("stop token id out of range");
  }
  if (spec->logprobs_top_n > limits.max_top_logprobs) Fail("logprobs_top_n");
  auto ids = bitparity::ResolveInput(req.input(), backend, spec->max_new_tokens, nullptr);
  if (!ids.ok()) return ids.status();
  CheckIds(*ids, info, spec->max_new_tokens);
  return absl::OkStatus();
}

template <typename Message>
bool Parse(const uint8_t* data, size_t size, Message* m) {
  return m->ParseFromArray(data, static_cast<int>(size));
}

}  // namespace

// Parsing invalid UTF-8 into a string field is a normal parse failure; protobuf also
// logs it, once per input, which would drown the fuzzer's output and slow it down.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const FakeBackend* backend = new FakeBackend();
  const uint8_t kind = data[0] % 5;
  ++data;
  --size;
  absl::Status st;
  switch (kind) {
    case 0: {
      v1::EvalLogitsRequest req;
      if (!Parse(data, size, &req)) return 0;
      st = EvalLogits(req, *backend);
      break;
    }
    case 1: {
      v1::EvalTraceRequest req;
      if (!Parse(data, size, &req)) return 0;
      st = EvalTrace(req, *backend);
      break;
    }
    case 2: {
      v1::GenerateRequest req;
      if (!Parse(data, size, &req)) return 0;
      st = Generate(req, *backend);
      break;
    }
    case 3: {
      v1::DetokenizeRequest req;
      if (!Parse(data, size, &req)) return 0;
      st = bitparity::ValidateTokenIds(req.ids(), backend->Info().n_vocab, "ids");
      if (st.ok()) {
        auto text = backend->Detokenize(req.ids());
        if (text.ok()) (void)bitparity::ToValidUtf8(*text);
      }
      break;
    }
    case 4: {
      v1::TokenizeRequest req;
      if (!Parse(data, size, &req)) return 0;
      (void)bitparity::ToValidUtf8(req.text());
      return 0;
    }
  }
  CheckError(st);
  return 0;
}
