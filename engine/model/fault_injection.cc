#include "engine/model/fault_injection.h"

#include <cmath>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/model/ops.h"

namespace bitparity {
namespace {

constexpr const char* kForms =
    "expected one of flip-row:LAYER:TENSOR:ROW, skip-sub-norm:LAYER, rope-offset:LAYER, "
    "scale-error:LAYER:TENSOR (TENSOR: attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down)";

bool IsTensorRole(absl::string_view t) {
  for (const char* r : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
    if (t == r) return true;
  }
  return false;
}

}  // namespace

void FaultInjection::Perturb(const ModelConfig& c, const ForwardStep& step) const {
  if (!active() || layer != step.layer) return;
  for (int t = 0; t < step.n; ++t) {
    float* y = step.out + static_cast<int64_t>(t) * step.width;
    if (kind == Kind::kFlipRow && step.name == tensor && row < step.width) {
      y[row] = -y[row];  // same as negating that weight row
    } else if (kind == Kind::kScaleError && step.name == tensor) {
      for (int i = 0; i < step.width; ++i) y[i] *= 1.0f + scale_error;
    } else if (kind == Kind::kSkipSubNorm && step.name == "attn_sub_norm") {
      const float* x = step.in + static_cast<int64_t>(t) * step.width;
      double sum = 0;
      for (int i = 0; i < step.width; ++i) sum += static_cast<double>(x[i]) * x[i];
      const float rms = static_cast<float>(std::sqrt(sum / step.width + c.rms_eps));
      for (int i = 0; i < step.width; ++i) y[i] *= rms;
    } else if (kind == Kind::kRopeOffset && step.name == "rope_q") {
      std::vector<float> one(c.n_rot);
      RopeCache(1.0f, c.n_rot, c.rope_theta, c.rope_freq_scale, one.data());
      for (int h = 0; h < c.n_head; ++h) RopeApply(c.rope_style, one.data(), c.n_rot, y + h * c.head_dim);
    }
  }
}

absl::StatusOr<FaultInjection> FaultInjection::Parse(absl::string_view spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, ':');
  auto bad = [&] { return absl::InvalidArgumentError(absl::StrCat("bad fault spec '", spec, "': ", kForms)); };
  FaultInjection f;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[1], &f.layer) || f.layer < 0) return bad();
  const std::string& kind = parts[0];
  if (kind == "flip-row" && parts.size() == 4) {
    f.kind = Kind::kFlipRow;
    f.tensor = parts[2];
    if (!absl::SimpleAtoi(parts[3], &f.row) || f.row < 0) return bad();
  } else if (kind == "skip-sub-norm" && parts.size() == 2) {
    f.kind = Kind::kSkipSubNorm;
  } else if (kind == "rope-offset" && parts.size() == 2) {
    f.kind = Kind::kRopeOffset;
  } else if (kind == "scale-error" && parts.size() == 3) {
    f.kind = Kind::kScaleError;
    f.tensor = parts[2];
  } else {
    return bad();
  }
  if ((f.kind == Kind::kFlipRow || f.kind == Kind::kScaleError) && !IsTensorRole(f.tensor)) return bad();
  return f;
}

std::string FaultInjection::ToString() const {
  switch (kind) {
    case Kind::kNone: return "none";
    case Kind::kFlipRow: return absl::StrCat("flip-row:", layer, ":", tensor, ":", row);
    case Kind::kSkipSubNorm: return absl::StrCat("skip-sub-norm:", layer);
    case Kind::kRopeOffset: return absl::StrCat("rope-offset:", layer);
    case Kind::kScaleError: return absl::StrCat("scale-error:", layer, ":", tensor);
  }
  return "?";
}

}  // namespace bitparity
