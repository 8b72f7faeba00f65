// File: engine/model/fault_injection.h
//
// Deliberate, named perturbations of the forward pass. They exist so that bitparity
// can prove it catches real faults and names the layer where they start (issue: the
// orchestrator's fault-injection tests). All are off by default and each touches one
// layer only.
//
// Spec strings (the native server's --inject-fault flag, bitnet-run --fault):
//   flip-row:LAYER:TENSOR:ROW   negate output ROW of TENSOR (attn_q, attn_k, attn_v,
//                               attn_output, ffn_gate, ffn_up, ffn_down) in LAYER
//   skip-sub-norm:LAYER         skip attn_sub_norm's RMSNorm in LAYER (weights still applied)
//   rope-offset:LAYER           rotate the queries of LAYER as if one position later
//                               (keys stay put, so every query-key distance is off by one)
//   scale-error:LAYER:TENSOR    multiply TENSOR's output in LAYER by (1 + 1e-3)
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bitparity {

struct FaultInjection {
  enum class Kind { kNone, kFlipRow, kSkipSubNorm, kRopeOffset, kScaleError };
  Kind kind = Kind::kNone;
  int layer = -1;
  std::string tensor;  // kFlipRow, kScaleError: "attn_q", "ffn_down", ...
  int row = 0;         // kFlipRow
  float scale_error = 1e-3f;

  bool active() const { return kind != Kind::kNone; }
  bool Hits(int il, absl::string_view t) const { return layer == il && tensor == t; }
  std::string ToString() const;

  // InvalidArgument with the accepted forms in the message.
  static absl::StatusOr<FaultInjection> Parse(absl::string_view spec);
};

}  // namespace bitparity
