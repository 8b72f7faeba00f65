#include "engine/model/model_config.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace bitparity {
namespace {

absl::StatusOr<int> RequiredInt(const GgufFile& f, const std::string& key) {
  if (!f.HasKey(key)) {
    return absl::FailedPreconditionError(absl::StrCat(f.path(), ": required metadata key '", key, "' is missing"));
  }
  ASSIGN_OR_RETURN(int64_t v, f.GetInt64(key));
  if (v <= 0 || v > (int64_t{1} << 30)) {
    return absl::DataLossError(absl::StrCat(f.path(), ": metadata '", key, "' = ", v, " is out of range"));
  }
  return static_cast<int>(v);
}

absl::StatusOr<int> OptionalInt(const GgufFile& f, const std::string& key, int fallback) {
  if (!f.HasKey(key)) return fallback;
  return RequiredInt(f, key);
}

absl::StatusOr<float> OptionalFloat(const GgufFile& f, const std::string& key, float fallback) {
  if (!f.HasKey(key)) return fallback;
  ASSIGN_OR_RETURN(float v, f.GetFloat32(key));
  if (!std::isfinite(v)) {
    return absl::DataLossError(absl::StrCat(f.path(), ": metadata '", key, "' is not finite"));
  }
  return v;
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromGguf(const GgufFile& f) {
  ModelConfig c;
  if (!f.HasKey("general.architecture")) {
    return absl::FailedPreconditionError(absl::StrCat(f.path(), ": required metadata key 'general.architecture' is missing"));
  }
  ASSIGN_OR_RETURN(c.arch_name, f.GetString("general.architecture"));
  if (c.arch_name == "bitnet-b1.58" || c.arch_name == "bitnet-25") {
    c.arch = Architecture::kBitnetB158;
  } else if (c.arch_name == "bitnet") {
    c.arch = Architecture::kBitnet;
  } else if (c.arch_name == "llama") {
    c.arch = Architecture::kLlama;
  } else {
    return absl::UnimplementedError(absl::StrCat(f.path(), ": architecture '", c.arch_name,
                                                 "' is not supported (bitnet-b1.58, bitnet-25, bitnet, llama)"));
  }
  if (f.HasKey("general.name")) {
    auto name = f.GetString("general.name");
    if (name.ok()) c.name = *name;
  }
  const std::string p = c.arch_name + ".";
  ASSIGN_OR_RETURN(c.n_layer, RequiredInt(f, p + "block_count"));
  ASSIGN_OR_RETURN(c.n_embd, RequiredInt(f, p + "embedding_length"));
  ASSIGN_OR_RETURN(c.n_ff, RequiredInt(f, p + "feed_forward_length"));
  ASSIGN_OR_RETURN(c.n_head, RequiredInt(f, p + "attention.head_count"));
  ASSIGN_OR_RETURN(c.n_head_kv, OptionalInt(f, p + "attention.head_count_kv", c.n_head));
  ASSIGN_OR_RETURN(c.n_ctx_train, RequiredInt(f, p + "context_length"));
  ASSIGN_OR_RETURN(c.rope_theta, OptionalFloat(f, p + "rope.freq_base", 10000.0f));
  ASSIGN_OR_RETURN(c.rms_eps, OptionalFloat(f, p + "attention.layer_norm_rms_epsilon", 1e-5f));
  ASSIGN_OR_RETURN(float scale_factor, OptionalFloat(f, p + "rope.scaling.factor", 0.0f));
  c.rope_freq_scale = scale_factor == 0.0f ? 1.0f : 1.0f / scale_factor;

  if (c.n_embd % c.n_head != 0) {
    return absl::DataLossError(absl::StrCat(f.path(), ": embedding_length ", c.n_embd,
                                            " is not a multiple of head_count ", c.n_head));
  }
  if (c.n_head % c.n_head_kv != 0) {
    return absl::DataLossError(absl::StrCat(f.path(), ": head_count ", c.n_head,
                                            " is not a multiple of head_count_kv ", c.n_head_kv));
  }
  c.head_dim = c.n_embd / c.n_head;
  ASSIGN_OR_RETURN(c.n_rot, OptionalInt(f, p + "rope.dimension_count", c.head_dim));
  if (c.n_rot > c.head_dim || c.n_rot % 2 != 0) {
    return absl::DataLossError(absl::StrCat(f.path(), ": rope.dimension_count ", c.n_rot,
                                            " must be even and at most the head size ", c.head_dim));
  }
  if (!(c.rope_theta > 0.0f) || !(c.rms_eps > 0.0f)) {
    return absl::DataLossError(absl::StrCat(f.path(), ": rope.freq_base and rms epsilon must be positive"));
  }
  if (c.arch == Architecture::kLlama) {
    c.rope_style = RopeStyle::kNormal;
    c.has_sub_norms = false;
  } else if (c.n_rot != c.head_dim) {
    // build_bitnet*() asserts n_embd_head == n_rot.
    return absl::DataLossError(absl::StrCat(f.path(), ": BitNet models rotate the whole head (n_rot ",
                                            c.n_rot, " != head size ", c.head_dim, ")"));
  }
  const GgufTensorInfo* embd = f.FindTensor("token_embd.weight");
  if (embd == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(f.path(), ": tensor 'token_embd.weight' is missing"));
  }
  if (embd->ne.size() != 2 || embd->ne[0] != c.n_embd) {
    return absl::DataLossError(absl::StrCat(f.path(), ": token_embd.weight must be [", c.n_embd, ", n_vocab]"));
  }
  c.n_vocab = static_cast<int>(embd->ne[1]);
  return c;
}

}  // namespace bitparity
