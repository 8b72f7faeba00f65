#include "engine/model/weights.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/quant/i2s.h"

namespace bitparity {
namespace {

bool IsMatrixType(GgmlType t) {
  switch (t) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ8_0:
    case GgmlType::kTQ1_0:
    case GgmlType::kTQ2_0:
    case GgmlType::kI2_S:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<const GgufTensorInfo*> Find(const GgufFile& f, const std::string& name) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(f.path(), ": required tensor '", name, "' is missing"));
  }
  return t;
}

absl::StatusOr<WeightMatrix> BindMatrix(const GgufFile& f, const std::string& name, int64_t cols,
                                        int64_t rows) {
  ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(f, name));
  if (t->ne.size() != 2 || t->ne[0] != cols || t->ne[1] != rows) {
    std::string shape;
    for (int64_t d : t->ne) absl::StrAppend(&shape, shape.empty() ? "" : ", ", d);
    return absl::DataLossError(absl::StrCat(f.path(), ": tensor '", name, "' has shape [", shape,
                                            "], expected [", cols, ", ", rows, "]"));
  }
  if (!IsMatrixType(t->type)) {
    return absl::UnimplementedError(absl::StrCat(f.path(), ": tensor '", name, "' has type ",
                                                 GgmlTypeName(static_cast<uint32_t>(t->type)),
                                                 ", which this engine cannot multiply"));
  }
  WeightMatrix m;
  m.name = name;
  m.type = t->type;
  m.data = f.TensorData(*t);
  m.cols = cols;
  m.rows = rows;
  m.row_bytes = RowByteSize(t->type, cols);
  if (t->type == GgmlType::kI2_S) {
    if (cols % kI2sBlockElems != 0) {
      return absl::DataLossError(absl::StrCat(f.path(), ": I2_S tensor '", name, "' has rows of ", cols,
                                              " values, not a multiple of ", kI2sBlockElems));
    }
    m.i2s_scale = I2sReadScale(m.data, cols * rows);
  }
  return m;
}

absl::StatusOr<const float*> BindVector(const GgufFile& f, const std::string& name, int64_t n) {
  ASSIGN_OR_RETURN(const GgufTensorInfo* t, Find(f, name));
  if (t->num_elements != n) {
    return absl::DataLossError(absl::StrCat(f.path(), ": tensor '", name, "' has ", t->num_elements,
                                            " values, expected ", n));
  }
  if (t->type != GgmlType::kF32) {
    return absl::UnimplementedError(absl::StrCat(f.path(), ": norm tensor '", name, "' must be f32, is ",
                                                 GgmlTypeName(static_cast<uint32_t>(t->type))));
  }
  return reinterpret_cast<const float*>(f.TensorData(*t));
}

// blk.N.<what>.scale: an optional {1} F32 tensor multiplying a matmul's output.
absl::StatusOr<float> OptionalScale(const GgufFile& f, const std::string& name) {
  const GgufTensorInfo* t = f.FindTensor(name);
  if (t == nullptr) return 1.0f;
  if (t->num_elements != 1 || t->type != GgmlType::kF32) {
    return absl::DataLossError(absl::StrCat(f.path(), ": scale tensor '", name, "' must be one f32"));
  }
  float v;
  std::memcpy(&v, f.TensorData(*t), sizeof(v));
  return v;
}

}  // namespace

absl::StatusOr<Weights> Weights::Bind(const GgufFile& f, const ModelConfig& c) {
  Weights w;
  ASSIGN_OR_RETURN(w.token_embd, BindMatrix(f, "token_embd.weight", c.n_embd, c.n_vocab));
  if (w.token_embd.type == GgmlType::kI2_S) {
    return absl::UnimplementedError(absl::StrCat(f.path(), ": an I2_S token_embd is not supported"));
  }
  ASSIGN_OR_RETURN(w.output_norm, BindVector(f, "output_norm.weight", c.n_embd));
  // bitnet.cpp's BitNet graphs always use token_embd as the head, even when an
  // output.weight exists; LLaMA uses output.weight when present.
  w.output = w.token_embd;
  if (c.arch == Architecture::kLlama && f.FindTensor("output.weight") != nullptr) {
    ASSIGN_OR_RETURN(w.output, BindMatrix(f, "output.weight", c.n_embd, c.n_vocab));
  }
  const bool bitnet = c.arch != Architecture::kLlama;
  for (int il = 0; il < c.n_layer; ++il) {
    const std::string p = absl::StrCat("blk.", il, ".");
    LayerWeights l;
    ASSIGN_OR_RETURN(l.attn_norm, BindVector(f, p + "attn_norm.weight", c.n_embd));
    ASSIGN_OR_RETURN(l.ffn_norm, BindVector(f, p + "ffn_norm.weight", c.n_embd));
    if (bitnet) {
      ASSIGN_OR_RETURN(l.attn_sub_norm, BindVector(f, p + "attn_sub_norm.weight", c.n_embd));
      ASSIGN_OR_RETURN(l.ffn_sub_norm, BindVector(f, p + "ffn_sub_norm.weight", c.n_ff));
    }
    ASSIGN_OR_RETURN(l.wq, BindMatrix(f, p + "attn_q.weight", c.n_embd, c.q_dim()));
    ASSIGN_OR_RETURN(l.wk, BindMatrix(f, p + "attn_k.weight", c.n_embd, c.kv_dim()));
    ASSIGN_OR_RETURN(l.wv, BindMatrix(f, p + "attn_v.weight", c.n_embd, c.kv_dim()));
    ASSIGN_OR_RETURN(l.wo, BindMatrix(f, p + "attn_output.weight", c.q_dim(), c.n_embd));
    ASSIGN_OR_RETURN(l.gate, BindMatrix(f, p + "ffn_gate.weight", c.n_embd, c.n_ff));
    ASSIGN_OR_RETURN(l.up, BindMatrix(f, p + "ffn_up.weight", c.n_embd, c.n_ff));
    ASSIGN_OR_RETURN(l.down, BindMatrix(f, p + "ffn_down.weight", c.n_ff, c.n_embd));
    if (c.arch == Architecture::kBitnet) {
      ASSIGN_OR_RETURN(l.wq_scale, OptionalScale(f, p + "attn_q.scale"));
      ASSIGN_OR_RETURN(l.wk_scale, OptionalScale(f, p + "attn_k.scale"));
      ASSIGN_OR_RETURN(l.wv_scale, OptionalScale(f, p + "attn_v.scale"));
      ASSIGN_OR_RETURN(l.wo_scale, OptionalScale(f, p + "attn_output.scale"));
      ASSIGN_OR_RETURN(l.gate_scale, OptionalScale(f, p + "ffn_gate.scale"));
      ASSIGN_OR_RETURN(l.up_scale, OptionalScale(f, p + "ffn_up.scale"));
      ASSIGN_OR_RETURN(l.down_scale, OptionalScale(f, p + "ffn_down.scale"));
    }
    w.layers.push_back(std::move(l));
  }
  return w;
}

}  // namespace bitparity
