#include "base/model_lint.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace bitparity {
namespace {

// ggml type numbers of bitnet.cpp's ggml (3rdparty/llama.cpp/ggml/include/ggml.h).
// Upstream ggml leaves 36..38 unused (its repacked IQ4_NL types were removed from
// files) and numbers MXFP4 39.
constexpr uint32_t kTypeI2S = 36;
constexpr uint32_t kTypeI8S = 37;
constexpr uint32_t kTypeTL1 = 38;
constexpr uint32_t kTypeTL2 = 39;

const char* BitnetTypeName(uint32_t t) {
  switch (t) {
    case kTypeI2S: return "I2_S";
    case kTypeI8S: return "I8_S";
    case kTypeTL1: return "TL1";
    case kTypeTL2: return "TL2";
  }
  return "?";
}

constexpr const char* kKnownPre[] = {
    "default", "llama3", "llama-v3", "llama-bpe", "deepseek-llm", "deepseek-coder", "falcon",
    "falcon3", "falcon_e", "mpt", "starcoder", "gpt-2", "phi-2", "jina-es", "jina-de",
    "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "refact", "command-r", "qwen2",
    "stablelm2", "olmo", "dbrx", "smaug-bpe", "poro-chat", "chatglm-bpe", "viking", "jais",
    "tekken", "smollm", "codeshell", "bloom", "gpt3-finnish", "exaone", "chameleon"};

// The pre name to suggest: LLaMA-3 vocabularies carry <|begin_of_text|>.
std::string SuggestedPre(const ModelHeader& h) {
  const bool llama3 =
      std::find(h.tokens.begin(), h.tokens.end(), "<|begin_of_text|>") != h.tokens.end();
  return llama3 ? "llama-bpe" : "<name> (llama-bpe for LLaMA-3 vocabularies, gpt-2 for GPT-2's)";
}

void CheckPreTokenizer(const ModelHeader& h, std::vector<LintFinding>* out) {
  // llama.cpp reads tokenizer.ggml.pre only for BPE ("gpt2") vocabularies.
  if (h.tokenizer_model.value_or("") != "gpt2") return;
  const std::string fix =
      absl::StrCat("--override-kv tokenizer.ggml.pre=str:", SuggestedPre(h),
                   ", or re-convert with a converter that writes tokenizer.ggml.pre");
  if (!h.tokenizer_pre.has_value() || h.tokenizer_pre->empty()) {
    out->push_back({LintSeverity::kWarning, "TOKENIZER_PRE_MISSING",
                    "BPE vocabulary without tokenizer.ggml.pre: llama.cpp falls back to the "
                    "'default' pre-tokenizer and warns that generation quality degrades",
                    fix});
  } else if (!IsKnownPreTokenizer(*h.tokenizer_pre)) {
    out->push_back({LintSeverity::kError, "TOKENIZER_PRE_UNKNOWN",
                    absl::StrCat("tokenizer.ggml.pre '", *h.tokenizer_pre,
                                 "' is unknown to bitnet.cpp's llama.cpp, which refuses to load "
                                 "the model"),
                    fix});
  }
}

void CheckTensorTypes(const ModelHeader& h, std::vector<LintFinding>* out) {
  std::map<uint32_t, std::pair<int, std::string>> seen;  // type -> count, first tensor
  for (const ModelHeader::Tensor& t : h.tensors) {
    if (t.type < kTypeI2S || t.type > kTypeTL2) continue;
    auto& [count, first] = seen[t.type];
    if (count++ == 0) first = t.name;
  }
  for (const auto& [type, cf] : seen) {
    const auto& [count, first] = cf;
    const std::string what = absl::StrCat(count, " tensor(s) of ggml type ", type, " (bitnet.cpp's ",
                                          BitnetTypeName(type), ", e.g. '", first, "')");
    const std::string fix =
        "none for bitnet.cpp; for upstream llama.cpp convert to TQ2_0 or TQ1_0 (ggml types 35, 34)";
    if (type == kTypeTL2) {
      out->push_back({LintSeverity::kWarning, "TYPE_ID_CLASH",
                      absl::StrCat(what, ": upstream llama.cpp numbers MXFP4 39 and reads these "
                                         "bytes as MXFP4; the file runs only on bitnet.cpp"),
                      fix});
    } else {
      out->push_back({LintSeverity::kInfo, "BITNET_CPP_ONLY_TYPE",
                      absl::StrCat(what, ": upstream llama.cpp has no type ", type,
                                   " and refuses the file; it runs only on bitnet.cpp"),
                      fix});
    }
  }
  for (uint32_t type : {kTypeTL1, kTypeTL2}) {
    auto it = seen.find(type);
    if (it == seen.end()) continue;
    out->push_back({LintSeverity::kError, "TL_TYPE_UNSUPPORTED",
                    absl::StrCat(it->second.first, " tensor(s) of ", BitnetTypeName(type),
                                 " (e.g. '", it->second.second,
                                 "'): bitparity's engine does not run bitnet.cpp's per-model "
                                 "lookup-table layouts and refuses the file"),
                    "convert to I2_S instead: python setup_env.py -md <model dir> -q i2_s"});
  }
}

void CheckI2sRows(const ModelHeader& h, std::vector<LintFinding>* out) {
  for (const ModelHeader::Tensor& t : h.tensors) {
    if (t.type != kTypeI2S || t.ne.empty() || t.ne[0] % kQkI2s == 0) continue;
    out->push_back({LintSeverity::kError, "I2S_ROW_NOT_BLOCKED",
                    absl::StrCat("I2_S tensor '", t.name, "' has rows of ", t.ne[0],
                                 " values, not a multiple of QK_I2_S = ", kQkI2s,
                                 ": bitnet.cpp's I2_S kernels only multiply whole blocks"),
                    "re-export the model with row lengths that are multiples of 128, or keep "
                    "this tensor in F16 / TQ2_0"});
  }
}

void CheckSpecialIds(const ModelHeader& h, std::vector<LintFinding>* out) {
  if (h.tokens.empty()) return;  // ids-only model: no specials expected
  const int64_t n = static_cast<int64_t>(h.tokens.size());
  const struct {
    const char* key;
    const std::optional<int64_t>& id;
    bool required;
  } ids[] = {{kKeyBosId, h.bos_id, true}, {kKeyEosId, h.eos_id, true}, {kKeyEotId, h.eot_id, false}};
  for (const auto& s : ids) {
    if (!s.id.has_value()) {
      if (!s.required) continue;
      out->push_back({LintSeverity::kWarning, "SPECIAL_TOKEN_MISSING",
                      absl::StrCat(s.key, " is missing: llama.cpp then guesses a default id "
                                          "(1/2 for SPM, 11 for BPE vocabularies), which may not "
                                          "be this vocabulary's"),
                      absl::StrCat("--override-kv ", s.key, "=int:<id>")});
    } else if (*s.id < 0 || *s.id >= n) {
      out->push_back({LintSeverity::kError, "SPECIAL_TOKEN_OUT_OF_RANGE",
                      absl::StrCat(s.key, " = ", *s.id, " is outside the vocabulary [0, ", n,
                                   "): llama.cpp replaces it with a default, engines disagree"),
                      absl::StrCat("--override-kv ", s.key, "=int:<id below ", n, ">")});
    }
  }
}

// llama.cpp's EOT when tokenizer.ggml.eot_token_id is absent: the first token whose
// text is one of these (src/llama.cpp, llm_load_vocab, "find EOT token").
constexpr const char* kInferredEot[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>",
                                        "<end_of_turn>", "<|endoftext|>", "<EOT>",
                                        "<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"};

std::string EotText(const ModelHeader& h) {
  const int64_t n = static_cast<int64_t>(h.tokens.size());
  if (h.eot_id.has_value()) return *h.eot_id >= 0 && *h.eot_id < n ? h.tokens[*h.eot_id] : "";
  for (const std::string& t : h.tokens) {
    if (std::find(std::begin(kInferredEot), std::end(kInferredEot), t) != std::end(kInferredEot)) return t;
  }
  return "";
}

void CheckChatTemplate(const ModelHeader& h, std::vector<LintFinding>* out) {
  if (!h.chat_template.has_value() || h.chat_template->empty() || h.tokens.empty()) return;
  const int64_t n = static_cast<int64_t>(h.tokens.size());
  const std::string eos = h.eos_id.has_value() && *h.eos_id >= 0 && *h.eos_id < n ? h.tokens[*h.eos_id] : "";
  const std::string eot = EotText(h);
  const std::string& tpl = *h.chat_template;
  if ((!eos.empty() && absl::StrContains(tpl, eos)) || (!eot.empty() && absl::StrContains(tpl, eot)) ||
      absl::StrContains(tpl, "eos_token")) {
    return;
  }
  out->push_back({LintSeverity::kWarning, "CHAT_TEMPLATE_NO_EOS",
                  absl::StrCat("tokenizer.chat_template contains neither the EOS text '", eos,
                               "'", eot.empty() ? "" : absl::StrCat(", the EOT text '", eot, "'"),
                               " nor eos_token: its turns never end with a token the model stops "
                               "on, so chat generation runs to the token limit"),
                  "--override-kv tokenizer.ggml.eot_token_id=int:<id of the template's turn "
                  "end>, or re-convert with the model's own chat template"});
}

}  // namespace

void ApplyOverridesToHeader(absl::Span<const MetadataOverride> overrides, ModelHeader* h) {
  for (const MetadataOverride& o : overrides) {
    if (o.type == OverrideType::kStr) {
      if (o.key == kKeyTokenizerModel) h->tokenizer_model = o.str_value;
      if (o.key == kKeyTokenizerPre) h->tokenizer_pre = o.str_value;
      if (o.key == kKeyChatTemplate) h->chat_template = o.str_value;
    } else if (o.type == OverrideType::kInt) {
      if (o.key == kKeyBosId) h->bos_id = o.int_value;
      if (o.key == kKeyEosId) h->eos_id = o.int_value;
      if (o.key == kKeyEotId) h->eot_id = o.int_value;
    }
  }
}

const char* LintSeverityName(LintSeverity s) {
  switch (s) {
    case LintSeverity::kError: return "error";
    case LintSeverity::kWarning: return "warning";
    case LintSeverity::kInfo: return "info";
  }
  return "unknown";
}

bool ParseLintSeverity(const std::string& name, LintSeverity* s) {
  for (LintSeverity x : {LintSeverity::kError, LintSeverity::kWarning, LintSeverity::kInfo}) {
    if (name == LintSeverityName(x)) {
      *s = x;
      return true;
    }
  }
  return false;
}

bool IsKnownPreTokenizer(const std::string& name) {
  return std::find(std::begin(kKnownPre), std::end(kKnownPre), name) != std::end(kKnownPre);
}

std::vector<LintFinding> LintModel(const ModelHeader& header) {
  std::vector<LintFinding> out;
  CheckPreTokenizer(header, &out);
  CheckTensorTypes(header, &out);
  CheckI2sRows(header, &out);
  CheckSpecialIds(header, &out);
  CheckChatTemplate(header, &out);
  std::stable_sort(out.begin(), out.end(), [](const LintFinding& a, const LintFinding& b) {
    return static_cast<int>(a.severity) < static_cast<int>(b.severity);
  });
  return out;
}

int CountFindings(absl::Span<const LintFinding> findings, LintSeverity severity) {
  return static_cast<int>(std::count_if(findings.begin(), findings.end(),
                                        [&](const LintFinding& f) { return f.severity == severity; }));
}

std::string FormatFinding(const LintFinding& f) {
  return absl::StrCat(LintSeverityName(f.severity), " ", f.code, ": ", f.message, " (fix: ", f.fix, ")");
}

}  // namespace bitparity
