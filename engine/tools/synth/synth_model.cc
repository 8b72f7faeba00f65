#include "engine/tools/synth/synth_model.h"

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "base/fp16.h"
#include "engine/tools/synth/byte_bpe_vocab.h"
#include "engine/quant/i2s.h"
#include "engine/tools/synth/prng.h"

namespace bitparity::synth {
namespace {

constexpr char kArch[] = "bitnet-b1.58";
constexpr uint32_t kFileTypeMostlyI2S = 40;
constexpr char kBuiltinPre[] = "default";
constexpr char kAddBosKey[] = "tokenizer.ggml.add_bos_token";

// Thresholds on a 32-bit uniform for P(-1, 0, +1) = 0.3 / 0.4 / 0.3 (to within 1e-10).
constexpr uint32_t kMinusOneBelow = 1288490189u;  // round(0.3 * 2^32)
constexpr uint32_t kZeroBelow = 3006477107u;      // round(0.7 * 2^32)

constexpr int64_t kChunkBytes = 1 << 20;  // streaming unit for large tensors

std::string Key(absl::string_view suffix) { return absl::StrCat(kArch, ".", suffix); }

int8_t TritFrom32(uint32_t u) { return u < kMinusOneBelow ? -1 : (u < kZeroBelow ? 0 : 1); }

// Ternary projection of n = ne[0] * ne[1] elements, packed block by block.
absl::Status WriteTernary(GgufWriter& w, uint64_t seed, const std::string& name, int64_t k,
                          int64_t n) {
  TensorRandom rng = TensorRandom::ForTensor(seed, name);
  const float scale = static_cast<float>(std::sqrt(1.0 / (0.6 * static_cast<double>(k))));
  std::vector<uint8_t> buf;
  buf.reserve(kChunkBytes);
  int8_t trits[kI2sBlockElems];
  uint8_t block[kI2sBlockBytes];
  for (int64_t b = 0; b < n / kI2sBlockElems; ++b) {
    for (int64_t i = 0; i < kI2sBlockElems; i += 2) {
      const uint64_t r = rng.Next();
      trits[i] = TritFrom32(static_cast<uint32_t>(r >> 32));
      trits[i + 1] = TritFrom32(static_cast<uint32_t>(r));
    }
    I2sPackBlock(trits, block);
    buf.insert(buf.end(), block, block + kI2sBlockBytes);
    if (static_cast<int64_t>(buf.size()) >= kChunkBytes) {
      RETURN_IF_ERROR(w.WriteTensorData(buf));
      buf.clear();
    }
  }
  const auto trailer = I2sTrailer(scale);
  buf.insert(buf.end(), trailer.begin(), trailer.end());
  return w.WriteTensorData(buf);
}

// RMS-norm weight: 1 + 0.1 N(0,1), F32.
absl::Status WriteNorm(GgufWriter& w, uint64_t seed, const std::string& name, int64_t n) {
  TensorRandom rng = TensorRandom::ForTensor(seed, name);
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(1.0 + 0.1 * rng.Normal());
  return w.WriteTensorData(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)));
}

// Embedding: 0.08 N(0,1) rounded to F16, streamed in chunks.
absl::Status WriteEmbedding(GgufWriter& w, uint64_t seed, const std::string& name, int64_t n) {
  TensorRandom rng = TensorRandom::ForTensor(seed, name);
  std::vector<uint16_t> buf(kChunkBytes / 2);
  for (int64_t done = 0; done < n;) {
    const int64_t m = std::min<int64_t>(n - done, static_cast<int64_t>(buf.size()));
    for (int64_t i = 0; i < m; ++i) buf[i] = Fp32ToFp16(static_cast<float>(0.08 * rng.Normal()));
    RETURN_IF_ERROR(w.WriteTensorData(
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(buf.data()), m * sizeof(uint16_t))));
    done += m;
  }
  return absl::OkStatus();
}

enum class Kind { kEmbedding, kNorm, kTernary };

struct TensorPlan {
  std::string name;
  Kind kind;
  std::vector<int64_t> ne;
};

std::vector<TensorPlan> PlanTensors(const SynthConfig& c, int64_t n_vocab) {
  const int64_t head_dim = c.n_embd / c.n_head;
  const int64_t kv_dim = head_dim * c.n_head_kv;
  std::vector<TensorPlan> plan;
  plan.push_back({"token_embd.weight", Kind::kEmbedding, {c.n_embd, n_vocab}});
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    plan.push_back({p + "attn_norm.weight", Kind::kNorm, {c.n_embd}});
    plan.push_back({p + "attn_q.weight", Kind::kTernary, {c.n_embd, c.n_embd}});
    plan.push_back({p + "attn_k.weight", Kind::kTernary, {c.n_embd, kv_dim}});
    plan.push_back({p + "attn_v.weight", Kind::kTernary, {c.n_embd, kv_dim}});
    plan.push_back({p + "attn_output.weight", Kind::kTernary, {c.n_embd, c.n_embd}});
    plan.push_back({p + "attn_sub_norm.weight", Kind::kNorm, {c.n_embd}});
    plan.push_back({p + "ffn_norm.weight", Kind::kNorm, {c.n_embd}});
    plan.push_back({p + "ffn_gate.weight", Kind::kTernary, {c.n_embd, c.n_ff}});
    plan.push_back({p + "ffn_up.weight", Kind::kTernary, {c.n_embd, c.n_ff}});
    plan.push_back({p + "ffn_down.weight", Kind::kTernary, {c.n_ff, c.n_embd}});
    plan.push_back({p + "ffn_sub_norm.weight", Kind::kNorm, {c.n_ff}});
  }
  plan.push_back({"output_norm.weight", Kind::kNorm, {c.n_embd}});
  return plan;
}

GgmlType TypeOf(Kind k) {
  switch (k) {
    case Kind::kEmbedding: return GgmlType::kF16;
    case Kind::kNorm: return GgmlType::kF32;
    case Kind::kTernary: return GgmlType::kI2_S;
  }
  return GgmlType::kF32;
}

// The tokenizer: either a vocab GGUF (kept open while its keys are copied) or the
// built-in byte BPE vocabulary.
struct Vocabulary {
  std::unique_ptr<GgufFile> file;
  ByteBpeVocab builtin;
  int64_t n_vocab = 0;
};

absl::StatusOr<Vocabulary> LoadVocabulary(const SynthConfig& c) {
  Vocabulary v;
  if (!c.vocab_from.empty()) {
    ASSIGN_OR_RETURN(v.file, GgufFile::Open(c.vocab_from));
    ASSIGN_OR_RETURN(absl::Span<const absl::string_view> tokens,
                     v.file->GetStringArray("tokenizer.ggml.tokens"));
    if (tokens.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(c.vocab_from, ": tokenizer.ggml.tokens is empty"));
    }
    v.n_vocab = static_cast<int64_t>(tokens.size());
  } else {
    ASSIGN_OR_RETURN(v.builtin, BuildByteBpeVocab(c.n_vocab));
    v.n_vocab = static_cast<int64_t>(v.builtin.tokens.size());
  }
  if (v.n_vocab > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("vocabulary of ", v.n_vocab, " tokens is too large"));
  }
  return v;
}

absl::Status AddVocabulary(GgufWriter& w, const Vocabulary& v) {
  if (v.file != nullptr) {
    for (const GgufMetadataEntry& e : v.file->metadata()) {
      if (absl::StartsWith(e.key, "tokenizer.")) RETURN_IF_ERROR(w.AddValue(e.key, e.value));
    }
    // Like the fixture models (all add BOS), even when the vocab file leaves it unset
    // (llama.cpp's gpt-2 vocab does; llama.cpp would then not add BOS for BPE).
    if (!v.file->HasKey(kAddBosKey)) RETURN_IF_ERROR(w.AddBool(kAddBosKey, true));
    return absl::OkStatus();
  }
  const ByteBpeVocab& b = v.builtin;
  RETURN_IF_ERROR(w.AddString("tokenizer.ggml.model", "gpt2"));
  RETURN_IF_ERROR(w.AddString("tokenizer.ggml.pre", kBuiltinPre));
  RETURN_IF_ERROR(w.AddStringArray("tokenizer.ggml.tokens", b.tokens));
  RETURN_IF_ERROR(w.AddInt32Array("tokenizer.ggml.token_type", b.token_types));
  RETURN_IF_ERROR(w.AddStringArray("tokenizer.ggml.merges", b.merges));
  RETURN_IF_ERROR(w.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(b.eot_id)));
  RETURN_IF_ERROR(w.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(b.eot_id)));
  return w.AddBool(kAddBosKey, true);
}

}  // namespace

absl::StatusOr<SynthConfig> ShapePreset(absl::string_view name) {
  SynthConfig c;
  if (name == "tiny") return c;  // the defaults above
  if (name == "2b4t") {
    c.shape = "2b4t";
    c.n_layer = 30;
    c.n_embd = 2560;
    c.n_ff = 6912;
    c.n_head = 20;
    c.n_head_kv = 5;
    c.n_ctx = 4096;
    c.rope_theta = 500000.0f;
    c.n_vocab = 128256;
    return c;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown shape '", name, "' (known: tiny, 2b4t)"));
}

absl::Status ValidateSynthConfig(const SynthConfig& c) {
  constexpr int64_t kMaxDim = int64_t{1} << 20;  // keeps every product far from overflow
  const std::pair<const char*, int64_t> sizes[] = {
      {"layers", c.n_layer}, {"hidden", c.n_embd},   {"ffn", c.n_ff},
      {"heads", c.n_head},   {"kv-heads", c.n_head_kv}, {"context", c.n_ctx}};
  for (const auto& [flag, v] : sizes) {
    if (v <= 0 || v > kMaxDim) {
      return absl::InvalidArgumentError(absl::StrCat("--", flag, " ", v, " is out of range 1..", kMaxDim));
    }
  }
  if (c.n_embd % c.n_head != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--hidden ", c.n_embd,
                                                   " is not a multiple of --heads ", c.n_head));
  }
  if (c.n_head % c.n_head_kv != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--heads ", c.n_head,
                                                   " is not a multiple of --kv-heads ", c.n_head_kv));
  }
  if ((c.n_embd / c.n_head) % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("head size ", c.n_embd / c.n_head,
                                                   " (hidden / heads) must be even for RoPE"));
  }
  if (c.n_embd % kI2sBlockElems != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--hidden ", c.n_embd, " is not a multiple of ",
                                                   kI2sBlockElems, " (I2_S rows are whole blocks)"));
  }
  if (c.n_ff % kI2sBlockElems != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--ffn ", c.n_ff, " is not a multiple of ",
                                                   kI2sBlockElems, " (I2_S rows are whole blocks)"));
  }
  if (!(c.rope_theta > 0.0f) || !std::isfinite(c.rope_theta)) {
    return absl::InvalidArgumentError(absl::StrCat("--rope-theta ", c.rope_theta, " must be positive"));
  }
  if (c.vocab_from.empty() && (c.n_vocab < kMinByteBpeVocab || c.n_vocab > kMaxDim)) {
    return absl::InvalidArgumentError(absl::StrCat("--vocab ", c.n_vocab, " is out of range ",
                                                   kMinByteBpeVocab, "..", kMaxDim));
  }
  return absl::OkStatus();
}

absl::StatusOr<SynthResult> WriteSynthModel(const SynthConfig& c, const std::string& out_path) {
  RETURN_IF_ERROR(ValidateSynthConfig(c));
  ASSIGN_OR_RETURN(const Vocabulary vocab, LoadVocabulary(c));
  const int64_t n_vocab = vocab.n_vocab;
  GgufWriter w;
  RETURN_IF_ERROR(w.AddString("general.architecture", kArch));
  RETURN_IF_ERROR(w.AddString("general.name", absl::StrCat("bitnet-synth-", c.shape)));
  RETURN_IF_ERROR(w.AddUint32(Key("vocab_size"), static_cast<uint32_t>(n_vocab)));
  RETURN_IF_ERROR(w.AddUint32(Key("context_length"), static_cast<uint32_t>(c.n_ctx)));
  RETURN_IF_ERROR(w.AddUint32(Key("embedding_length"), static_cast<uint32_t>(c.n_embd)));
  RETURN_IF_ERROR(w.AddUint32(Key("block_count"), static_cast<uint32_t>(c.n_layer)));
  RETURN_IF_ERROR(w.AddUint32(Key("feed_forward_length"), static_cast<uint32_t>(c.n_ff)));
  RETURN_IF_ERROR(w.AddUint32(Key("rope.dimension_count"), static_cast<uint32_t>(c.n_embd / c.n_head)));
  RETURN_IF_ERROR(w.AddUint32(Key("attention.head_count"), static_cast<uint32_t>(c.n_head)));
  RETURN_IF_ERROR(w.AddUint32(Key("attention.head_count_kv"), static_cast<uint32_t>(c.n_head_kv)));
  RETURN_IF_ERROR(w.AddFloat32(Key("attention.layer_norm_rms_epsilon"), c.rms_eps));
  RETURN_IF_ERROR(w.AddFloat32(Key("rope.freq_base"), c.rope_theta));
  RETURN_IF_ERROR(w.AddUint32("general.file_type", kFileTypeMostlyI2S));
  RETURN_IF_ERROR(AddVocabulary(w, vocab));

  const std::vector<TensorPlan> plan = PlanTensors(c, n_vocab);
  for (const TensorPlan& t : plan) RETURN_IF_ERROR(w.AddTensor(t.name, TypeOf(t.kind), t.ne));
  RETURN_IF_ERROR(w.Open(out_path));
  for (const TensorPlan& t : plan) {
    int64_t n = 1;
    for (int64_t d : t.ne) n *= d;
    switch (t.kind) {
      case Kind::kEmbedding: RETURN_IF_ERROR(WriteEmbedding(w, c.seed, t.name, n)); break;
      case Kind::kNorm: RETURN_IF_ERROR(WriteNorm(w, c.seed, t.name, n)); break;
      case Kind::kTernary: RETURN_IF_ERROR(WriteTernary(w, c.seed, t.name, t.ne[0], n)); break;
    }
  }
  RETURN_IF_ERROR(w.Finish());
  return SynthResult{n_vocab, static_cast<int64_t>(plan.size()), w.file_size()};
}

}  // namespace bitparity::synth
