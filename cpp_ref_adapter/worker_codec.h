// File: cpp_ref_adapter/worker_codec.h
//
// Conversions between the EngineBackend types (services/common/engine_backend.h)
// and the worker messages (worker.proto), used on both sides of the pipe. They
// copy values one to one; validation stays with the service and the engines.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "cpp_ref_adapter/worker.pb.h"
#include "services/common/engine_backend.h"

namespace bitparity::worker {

namespace wpb = ::bitnet::worker::v1;

void ToProto(const BackendInfo& in, wpb::BackendInfo* out);
BackendInfo FromProto(const wpb::BackendInfo& in);

wpb::EvalMode ToProto(BackendEvalMode mode);
BackendEvalMode FromProto(wpb::EvalMode mode);

void ToProto(const GenerationSpec& in, wpb::GenerateRequest* out);
GenerationSpec FromProto(const wpb::GenerateRequest& in);

void ToProto(const GeneratedTokenInfo& in, wpb::TokenFrame* out);
GeneratedTokenInfo FromProto(const wpb::TokenFrame& in);

wpb::Finish ToProto(GenerationFinish finish);
GenerationFinish FromProto(wpb::Finish finish);

// A chat template request and its answer (protocol 3).
void ToProto(absl::Span<const ChatTurn> chat, absl::string_view tmpl, bool add_assistant,
             wpb::ChatTemplateRequest* out);
std::vector<ChatTurn> ChatFromProto(const wpb::ChatTemplateRequest& in);
void ToProto(const ChatRendering& in, wpb::ChatTemplateResponse* out);
ChatRendering FromProto(const wpb::ChatTemplateResponse& in);

// A non-OK status as an Error frame, and back.
void ToProto(const absl::Status& status, wpb::Error* out);
absl::Status FromProto(const wpb::Error& error);

// float32 values as little-endian bytes, and back (DataLoss when the byte count
// is not `expected` floats).
std::string FloatsToBytes(absl::Span<const float> values);
absl::Status BytesToFloats(const std::string& bytes, size_t expected, std::vector<float>* out);

}  // namespace bitparity::worker
