// File: base/model_lint.h
//
// Checks of a model file's header that predict trouble before any token is run:
// the things that make bitnet.cpp, upstream llama.cpp and our engine read one GGUF
// differently, or degrade generation quietly. Written once, over a plain view of the
// header (ModelHeader), so that every side reports the same findings: bitnet-run lint
// and the native server fill it from engine/gguf (engine/gguf/model_header.h), the
// bitnet.cpp worker from ggml's own gguf reader, and no part crosses the layering.
//
//   ModelHeader h = ...;                      // after metadata overrides
//   std::vector<LintFinding> f = LintModel(h);
//   if (CountFindings(f, LintSeverity::kError) > 0) ...
//
// Each finding has a stable code (below), a one-line explanation and the fix (an
// --override-kv or a converter flag). Severities: error = a side refuses the file or
// the sides cannot agree; warning = it runs, but worse than it should; info = worth
// knowing, nothing to fix for bitparity (e.g. every I2_S file runs only on bitnet.cpp).
//
//   TOKENIZER_PRE_MISSING     warning  BPE vocabulary without tokenizer.ggml.pre
//   TOKENIZER_PRE_UNKNOWN     error    a pre name bitnet.cpp's llama.cpp refuses
//   BITNET_CPP_ONLY_TYPE      info     ggml type 36..38 (I2_S, I8_S, TL1): upstream refuses
//   TYPE_ID_CLASH             warning  ggml type 39: bitnet.cpp's TL2, upstream's MXFP4
//   CHAT_TEMPLATE_NO_EOS      warning  the chat template cannot produce EOS or EOT
//   SPECIAL_TOKEN_MISSING     warning  no BOS / EOS id although there is a vocabulary
//   SPECIAL_TOKEN_OUT_OF_RANGE error   a BOS / EOS / EOT id outside the vocabulary
//   I2S_ROW_NOT_BLOCKED       error    I2_S row length not a multiple of QK_I2_S (128)
//   TL_TYPE_UNSUPPORTED       error    TL1 / TL2 tensors: bitparity's engine refuses them
//
// "Cannot produce EOS/EOT", precisely: the template text contains neither the EOS
// token's text, nor the EOT token's text (tokenizer.ggml.eot_token_id, or when that
// key is absent the token llama.cpp infers: the first of "<|eot_id|>", "<|im_end|>",
// "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", DeepSeek's end of sentence,
// found in the vocabulary), nor the variable `eos_token` (which chat
// template renderers bind to the EOS text). A template renders only its own literal
// text, the messages and such variables, so it then never closes a turn with a token
// the model stops on, and generation runs to max_new_tokens.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "base/metadata_override.h"

namespace bitparity {

// The parts of a GGUF header the checks read, with metadata overrides applied.
struct ModelHeader {
  std::string file;  // for messages
  std::optional<std::string> tokenizer_model;  // tokenizer.ggml.model: "gpt2", "llama", ...
  std::optional<std::string> tokenizer_pre;    // tokenizer.ggml.pre
  std::optional<std::string> chat_template;    // tokenizer.chat_template
  std::optional<int64_t> bos_id;               // tokenizer.ggml.bos_token_id
  std::optional<int64_t> eos_id;               // tokenizer.ggml.eos_token_id
  std::optional<int64_t> eot_id;               // tokenizer.ggml.eot_token_id
  std::vector<std::string> tokens;             // tokenizer.ggml.tokens; empty: no vocabulary
  struct Tensor {
    std::string name;
    uint32_t type = 0;         // ggml type number as stored in the file
    std::vector<int64_t> ne;   // ne[0] is the row length
  };
  std::vector<Tensor> tensors;
};

// Metadata keys the checks read (the ones ApplyOverridesToHeader replaces).
inline constexpr char kKeyTokenizerModel[] = "tokenizer.ggml.model";
inline constexpr char kKeyTokenizerPre[] = "tokenizer.ggml.pre";
inline constexpr char kKeyChatTemplate[] = "tokenizer.chat_template";
inline constexpr char kKeyBosId[] = "tokenizer.ggml.bos_token_id";
inline constexpr char kKeyEosId[] = "tokenizer.ggml.eos_token_id";
inline constexpr char kKeyEotId[] = "tokenizer.ggml.eot_token_id";

// Replaces the header fields whose keys `overrides` name, for a reader that sees the
// file's own values (the bitnet.cpp worker; engine/gguf applies overrides itself).
// The overrides' types are checked against the file beforehand (CheckOverrideFitsKey).
void ApplyOverridesToHeader(absl::Span<const MetadataOverride> overrides, ModelHeader* header);

enum class LintSeverity { kError, kWarning, kInfo };
const char* LintSeverityName(LintSeverity s);  // "error" | "warning" | "info"
// The inverse of LintSeverityName; false for any other text.
bool ParseLintSeverity(const std::string& name, LintSeverity* s);

struct LintFinding {
  LintSeverity severity = LintSeverity::kInfo;
  std::string code;     // stable, e.g. "TOKENIZER_PRE_MISSING"
  std::string message;  // one line: what is wrong and what it does
  std::string fix;      // one line: the override or converter flag that fixes it
};

// bitnet.cpp's largest I2_S block (QK_I2_S in src/ggml-bitnet-mad.cpp: 128 on x86, 64
// on ARM); an I2_S row must hold whole blocks.
inline constexpr int64_t kQkI2s = 128;

// The pre-tokenizer names bitnet.cpp's llama.cpp (src/llama.cpp, llm_load_vocab) knows.
bool IsKnownPreTokenizer(const std::string& name);

// Every finding, errors first, then warnings, then infos, each in rule order.
std::vector<LintFinding> LintModel(const ModelHeader& header);

int CountFindings(absl::Span<const LintFinding> findings, LintSeverity severity);

// "warning TOKENIZER_PRE_MISSING: ... (fix: ...)".
std::string FormatFinding(const LintFinding& f);

}  // namespace bitparity
