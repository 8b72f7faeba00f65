// File: engine/model/fault_injection.h
//
// Deliberate, named perturbations of the forward pass. They exist so that bitparity
// can prove it catches real faults and names the layer where they start (the
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
//
// The forward pass (engine/model/forward.cc) has one hook for all of them: after
// each named step it hands that step's rows to Perturb(), which changes them only
// when the fault hits that step.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/model/model_config.h"

namespace bitparity {

// One named step of one layer of the forward pass, as the fault hook sees it.
struct ForwardStep {
  absl::string_view name;     // a matrix role ("attn_q" ... "ffn_down"), "rope_q", "attn_sub_norm"
  int layer = 0;
  int n = 0;                  // rows (tokens)
  int width = 0;              // floats per row
  const float* in = nullptr;  // attn_sub_norm: the rows before the norm; else unused
  float* out = nullptr;       // the step's output rows, changed in place
};

struct FaultInjection {
  enum class Kind { kNone, kFlipRow, kSkipSubNorm, kRopeOffset, kScaleError };
  Kind kind = Kind::kNone;
  int layer = -1;
  std::string tensor;  // kFlipRow, kScaleError: "attn_q", "ffn_down", ...
  int row = 0;         // kFlipRow
  float scale_error = 1e-3f;

  bool active() const { return kind != Kind::kNone; }
  std::string ToString() const;

  // InvalidArgument with the accepted forms in the message.
  static absl::StatusOr<FaultInjection> Parse(absl::string_view spec);

  // The hook: perturbs step.out when this fault hits `step`, as the spec forms above
  // say. skip-sub-norm undoes the norm's scaling (out * rms(in)); rope-offset rotates
  // the already-rotated queries by one more position.
  void Perturb(const ModelConfig& c, const ForwardStep& step) const;
};

}  // namespace bitparity
