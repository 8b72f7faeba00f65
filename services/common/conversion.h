// File: services/common/conversion.h
//
// Engine results -> bitnet.v1 messages, as free functions (tested in
// tests/services/conversion_test.cc). The figures that both servers must
// compute identically (next-token log-probability, top-k order, argmax, float16
// rounding, UTF-8 repair) are computed here from the raw logits a backend hands
// back, with the rules of base/ (logits.h, fp16.h, utf8.h), so that they cannot
// differ between the native and the bitnet.cpp server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "bitnet/v1/engine.pb.h"
#include "services/common/engine_backend.h"
#include "services/common/process_memory.h"
#include "services/common/validation.h"

namespace bitparity {

// Little-endian float32 or float16 (round to nearest even) bytes.
std::string PackFloats(absl::Span<const float> values, bitnet::v1::FloatFormat format);

// Inverse of PackFloats (for clients and tests); InvalidArgument if the byte
// count is not a multiple of the element size.
absl::StatusOr<std::vector<float>> UnpackFloats(absl::string_view bytes,
                                                bitnet::v1::FloatFormat format);

// Fills one position's logits row. `next_id` is the input token that follows
// `position` (absent for the last position).
void FillPositionLogits(int position, int32_t token_id, std::optional<int32_t> next_id,
                        absl::Span<const float> logits, const LogitsOutputSpec& output,
                        bitnet::v1::PositionLogits* out);

bitnet::v1::FinishReason ToProtoFinishReason(GenerationFinish finish);
bitnet::v1::EvalMode ToProtoEvalMode(BackendEvalMode mode);

void FillGeneratedToken(int index, const GeneratedTokenInfo& token, bitnet::v1::GeneratedToken* out);

// `memory`: this process; `workers`: the backend's worker processes (none when
// the engine runs in process), summed into worker_resident_bytes and
// worker_peak_resident_bytes and listed one by one.
void FillModelInfo(const BackendInfo& info, const ServiceLimits& limits,
                   const ProcessMemory& memory, int64_t session_bytes,
                   absl::Span<const ChildMemory> workers,
                   const std::optional<WorkerPoolStats>& pool,
                   bitnet::v1::GetModelInfoResponse* out);

}  // namespace bitparity
