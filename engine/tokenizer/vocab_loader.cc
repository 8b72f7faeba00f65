// LoadVocab: the tokenizer.ggml.* keys -> Vocab, with llama.cpp's defaults and
// derived data (llm_load_vocab): special ids, EOG set, special-token order, pieces.
#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "base/gpt2_bytes.h"
#include "base/utf8.h"
#include "engine/tokenizer/vocab.h"

namespace bitparity::tokenizer_internal {
namespace {

constexpr char kSpaceEscape[] = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

uint32_t AttrFromType(int32_t type) {
  switch (type) {
    case kTypeUnknown: return kAttrUnknown;
    case kTypeUnused: return kAttrUnused;
    case kTypeNormal: return kAttrNormal;
    case kTypeControl: return kAttrControl;
    case kTypeUserDefined: return kAttrUserDefined;
    case kTypeByte: return kAttrByte;
    default: return kAttrUndefined;
  }
}

absl::Status Lost(const GgufFile& file, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(file.path(), ": ", what));
}

// An optional key read with a typed getter: absent -> nullopt, wrong type -> DataLoss.
template <typename T, typename Getter>
absl::StatusOr<std::optional<T>> Optional(const GgufFile& file, absl::string_view key,
                                          Getter get) {
  if (!file.HasKey(key)) return std::optional<T>();
  absl::StatusOr<T> v = get(key);
  if (!v.ok()) return Lost(file, v.status().message());
  return std::optional<T>(*std::move(v));
}

// Special ids that llama.cpp finds by token text when no key names them.
struct TextRule {
  int32_t Vocab::*id;
  std::vector<absl::string_view> texts;
};

// Token texts that end generation (llama.cpp's special_eog_ids).
const std::vector<absl::string_view>& EogTexts() {
  static const auto* texts = new std::vector<absl::string_view>{
      "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
      "<EOT>"};
  return *texts;
}

absl::Status BuildPieces(const GgufFile& file, Vocab& v) {
  std::string piece;
  v.pieces.Reserve(v.text.size(), v.text.bytes());
  for (int32_t id = 0; id < v.size(); ++id) {
    const absl::string_view text = v.text[id];
    const uint32_t attr = v.attrs[id];
    piece.clear();
    if (attr & (kAttrUnknown | kAttrControl | kAttrUserDefined)) {
      piece.assign(text.data(), text.size());
    } else if (v.kind == TokenizerKind::kSentencePiece) {
      if (attr & kAttrNormal) {
        piece = absl::StrReplaceAll(text, {{kSpaceEscape, " "}});
      } else if (attr & kAttrByte) {
        // "<0xNN>": llama.cpp reads text.substr(3, 2) with strtol (throws if shorter).
        if (text.size() < 3) {
          return Lost(file, absl::StrCat("byte token ", id, " '", text, "' is not <0xNN>"));
        }
        const std::string hex(text.substr(3, 2));
        piece.push_back(static_cast<char>(std::strtol(hex.c_str(), nullptr, 16)));
      }
    } else if (attr & kAttrNormal) {
      // Undo GPT-2 byte-unicode; llama.cpp marks code points outside it this way.
      if (FindInvalidUtf8(text) != absl::string_view::npos) {
        return Lost(file, absl::StrCat("BPE token ", id, " is not valid UTF-8"));
      }
      for (size_t pos = 0; pos < text.size();) {
        const size_t begin = pos;
        const int byte = Gpt2CodePointToByte(DecodeUtf8(text, &pos));
        if (byte >= 0) {
          piece.push_back(static_cast<char>(byte));
          continue;
        }
        piece += "[UNK_BYTE_0x";
        for (size_t k = begin; k < pos; ++k) {
          absl::StrAppendFormat(&piece, "%02x", static_cast<uint8_t>(text[k]));
        }
        absl::StrAppend(&piece, text, "]");
      }
    }
    v.pieces.Add(piece);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> OptionalString(const GgufFile& file,
                                                          absl::string_view key) {
  return Optional<std::string>(file, key, [&](absl::string_view k) { return file.GetString(k); });
}

absl::StatusOr<std::optional<bool>> OptionalBool(const GgufFile& file, absl::string_view key) {
  return Optional<bool>(file, key, [&](absl::string_view k) { return file.GetBool(k); });
}

// Model type and the flags that follow from it (and, for BPE, from the pre-tokenizer
// name, as llm_load_vocab sets them before it reads the other keys).
absl::Status ApplyModelType(const GgufFile& file, const Tokenizer::LoadOptions& options,
                            Vocab& v) {
  if (!file.HasKey("tokenizer.ggml.model")) {
    return absl::NotFoundError(absl::StrCat(file.path(), ": no tokenizer.ggml.model"));
  }
  ASSIGN_OR_RETURN(const std::optional<std::string> model,
                   OptionalString(file, "tokenizer.ggml.model"));
  if (*model == "llama") {
    v.kind = TokenizerKind::kSentencePiece;
    v.bos_id = 1;
    v.eos_id = 2;
    v.unk_id = 0;
    v.add_space_prefix = true;
    v.add_bos = true;
    v.add_eos = false;
  } else if (*model == "gpt2") {
    v.kind = TokenizerKind::kBytePairEncoding;
    v.bos_id = 11;  // llama.cpp's defaults for gpt2 vocabularies
    v.eos_id = 11;
    ASSIGN_OR_RETURN(const std::optional<std::string> pre,
                     OptionalString(file, "tokenizer.ggml.pre"));
    v.pre = options.pre_tokenizer.value_or(pre.value_or("default"));
    if (v.pre.empty()) v.pre = "default";  // llama.cpp: an empty name is "default" too
    absl::StatusOr<PreTokenizerRules> rules = LookupPreTokenizer(v.pre);
    if (!rules.ok()) {
      return absl::Status(rules.status().code(),
                          absl::StrCat(file.path(), ": ", rules.status().message()));
    }
    v.pre_type = rules->type;
    v.ignore_merges = rules->ignore_merges;
    v.add_bos = rules->add_bos;
    if (rules->clear_bos_id) v.bos_id = -1;
  } else {
    return absl::UnimplementedError(absl::StrCat(file.path(), ": tokenizer.ggml.model = '", *model,
                                                 "' (supported: llama, gpt2)"));
  }
  ASSIGN_OR_RETURN(const std::optional<bool> space_prefix,
                   OptionalBool(file, "tokenizer.ggml.add_space_prefix"));
  if (space_prefix) v.add_space_prefix = *space_prefix;
  return absl::OkStatus();
}

// Token strings, scores, types as the file has them, their sizes checked.
struct TokenArrays {
  absl::Span<const absl::string_view> tokens;
  std::optional<absl::Span<const float>> scores;
  std::optional<absl::Span<const int32_t>> types;
};

absl::StatusOr<TokenArrays> ReadTokenArrays(const GgufFile& file) {
  if (!file.HasKey("tokenizer.ggml.tokens")) {
    return absl::NotFoundError(absl::StrCat(file.path(), ": no tokenizer.ggml.tokens"));
  }
  ASSIGN_OR_RETURN(const std::optional<absl::Span<const absl::string_view>> tokens,
                   Optional<absl::Span<const absl::string_view>>(
                       file, "tokenizer.ggml.tokens",
                       [&](absl::string_view k) { return file.GetStringArray(k); }));
  const size_t n = tokens->size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) {
    return Lost(file, absl::StrCat("tokenizer.ggml.tokens has ", n, " entries"));
  }
  ASSIGN_OR_RETURN(const std::optional<absl::Span<const float>> scores,
                   Optional<absl::Span<const float>>(
                       file, "tokenizer.ggml.scores",
                       [&](absl::string_view k) { return file.GetFloat32Array(k); }));
  ASSIGN_OR_RETURN(const std::optional<absl::Span<const int32_t>> types,
                   Optional<absl::Span<const int32_t>>(
                       file, "tokenizer.ggml.token_type",
                       [&](absl::string_view k) { return file.GetInt32Array(k); }));
  if (scores && scores->size() != n) {
    return Lost(file, absl::StrCat("tokenizer.ggml.scores has ", scores->size(), " entries for ",
                                   n, " tokens"));
  }
  if (types && types->size() != n) {
    return Lost(file, absl::StrCat("tokenizer.ggml.token_type has ", types->size(),
                                   " entries for ", n, " tokens"));
  }
  return TokenArrays{*tokens, scores, types};
}

// Fills text, scores, attrs and token_to_id; a repeated token text is an error.
absl::Status StoreTokens(const GgufFile& file, const TokenArrays& arrays, Vocab& v) {
  const size_t n = arrays.tokens.size();
  size_t bytes = 0;
  for (const absl::string_view t : arrays.tokens) bytes += t.size();
  v.text.Reserve(n, bytes);
  for (size_t i = 0; i < n; ++i) {
    if (arrays.tokens[i].empty()) {
      v.text.Add(absl::StrCat("[EMPTY_", i, "]"));  // llama.cpp's name for it
    } else {
      v.text.Add(arrays.tokens[i]);
    }
  }
  v.scores.assign(n, 0.0f);
  if (arrays.scores) std::copy(arrays.scores->begin(), arrays.scores->end(), v.scores.begin());
  v.attrs.assign(n, kAttrNormal);
  if (arrays.types) {
    for (size_t i = 0; i < n; ++i) v.attrs[i] = AttrFromType((*arrays.types)[i]);
  }
  v.token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const auto [it, inserted] = v.token_to_id.try_emplace(v.text[i], static_cast<int32_t>(i));
    if (!inserted) {
      return Lost(file, absl::StrCat("token ", i, " '", v.text[i], "' repeats token ",
                                     it->second));
    }
  }
  return absl::OkStatus();
}

// Special ids from keys; out-of-range values are ignored (llama.cpp warns).
absl::Status ApplySpecialIdKeys(const GgufFile& file, Vocab& v) {
  const int32_t n_vocab = v.size();
  // Default ids that do not exist in a small vocabulary are no ids at all.
  for (int32_t* id : {&v.bos_id, &v.eos_id, &v.unk_id}) {
    if (*id >= n_vocab) *id = -1;
  }
  const std::pair<const char*, int32_t Vocab::*> id_keys[] = {
      {"tokenizer.ggml.bos_token_id", &Vocab::bos_id},
      {"tokenizer.ggml.eos_token_id", &Vocab::eos_id},
      {"tokenizer.ggml.eot_token_id", &Vocab::eot_id},
      {"tokenizer.ggml.eom_token_id", &Vocab::eom_id},
      {"tokenizer.ggml.unknown_token_id", &Vocab::unk_id},
      {"tokenizer.ggml.seperator_token_id", &Vocab::sep_id},  // sic, the GGUF key
      {"tokenizer.ggml.padding_token_id", &Vocab::pad_id},
      {"tokenizer.ggml.cls_token_id", &Vocab::cls_id},
      {"tokenizer.ggml.mask_token_id", &Vocab::mask_id},
      {"tokenizer.ggml.fim_pre_token_id", &Vocab::fim_pre_id},
      {"tokenizer.ggml.fim_suf_token_id", &Vocab::fim_suf_id},
      {"tokenizer.ggml.fim_mid_token_id", &Vocab::fim_mid_id},
      {"tokenizer.ggml.fim_pad_token_id", &Vocab::fim_pad_id},
      {"tokenizer.ggml.fim_rep_token_id", &Vocab::fim_rep_id},
      {"tokenizer.ggml.fim_sep_token_id", &Vocab::fim_sep_id},
      {"tokenizer.ggml.prefix_token_id", &Vocab::fim_pre_id},  // deprecated names
      {"tokenizer.ggml.suffix_token_id", &Vocab::fim_suf_id},
      {"tokenizer.ggml.middle_token_id", &Vocab::fim_mid_id},
  };
  for (const auto& [key, member] : id_keys) {
    if (!file.HasKey(key)) continue;
    const absl::StatusOr<int64_t> id = file.GetInt64(key);
    if (!id.ok()) return Lost(file, id.status().message());
    if (*id >= 0 && *id < n_vocab) v.*member = static_cast<int32_t>(*id);
  }
  return absl::OkStatus();
}

// add_bos_token / add_eos_token override the model type's defaults; each needs its id.
absl::Status ApplyAddBosEos(const GgufFile& file, Vocab& v) {
  ASSIGN_OR_RETURN(const std::optional<bool> add_bos,
                   OptionalBool(file, "tokenizer.ggml.add_bos_token"));
  ASSIGN_OR_RETURN(const std::optional<bool> add_eos,
                   OptionalBool(file, "tokenizer.ggml.add_eos_token"));
  if (add_bos) v.add_bos = *add_bos;
  if (add_eos) v.add_eos = *add_eos;
  if (v.add_bos && v.bos_id < 0) return Lost(file, "add_bos_token is set but there is no BOS id");
  if (v.add_eos && v.eos_id < 0) return Lost(file, "add_eos_token is set but there is no EOS id");
  return absl::OkStatus();
}

// Ids llama.cpp recognises by text when no key gave them; such tokens become
// CONTROL. If several candidates exist llama.cpp takes whichever its hash map
// yields first; we take the lowest id.
void FindSpecialIdsByText(Vocab& v) {
  const TextRule rules[] = {
      {&Vocab::eot_id,
       {"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>",
        "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>"}},
      {&Vocab::eom_id, {"<|eom_id|>"}},
      {&Vocab::fim_pre_id,
       {"<|fim_prefix|>", "<fim-prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
        "<PRE>"}},
      {&Vocab::fim_suf_id,
       {"<|fim_suffix|>", "<fim-suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
        "<SUF>"}},
      {&Vocab::fim_mid_id,
       {"<|fim_middle|>", "<fim-middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
        "<MID>"}},
      {&Vocab::fim_pad_id, {"<|fim_pad|>", "<fim-pad>", "<PAD>"}},
      {&Vocab::fim_rep_id, {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"}},
      {&Vocab::fim_sep_id, {"<|file_sep|>"}},
  };
  for (const TextRule& rule : rules) {
    int32_t& id = v.*rule.id;
    if (id >= 0) continue;
    for (const absl::string_view t : rule.texts) {
      const int32_t found = v.Find(t);
      if (found >= 0 && (id < 0 || found < id)) id = found;
    }
    if (id >= 0) v.attrs[id] = kAttrControl;
  }
}

// The ids that end generation; the EOG texts also become CONTROL.
void CollectEndOfGeneration(Vocab& v) {
  for (const int32_t id : {v.fim_pad_id, v.fim_rep_id, v.fim_sep_id}) {
    if (id >= 0) v.end_of_generation.insert(id);
  }
  for (const absl::string_view t : EogTexts()) {
    const int32_t id = v.Find(t);
    if (id < 0) continue;
    v.end_of_generation.insert(id);
    v.attrs[id] = kAttrControl;
  }
  for (const int32_t id : {v.eos_id, v.eot_id, v.eom_id}) {
    if (id >= 0) v.end_of_generation.insert(id);
  }
}

// Special-token partition order: longest text first. std::sort, like llama.cpp,
// so that equal lengths come out in the same order with the same libstdc++.
void OrderSpecialTokens(Vocab& v) {
  for (int32_t id = 0; id < v.size(); ++id) {
    if (v.attrs[id] & (kAttrControl | kAttrUserDefined | kAttrUnknown)) {
      v.special_tokens.push_back(id);
    }
  }
  const Vocab& cv = v;
  std::sort(v.special_tokens.begin(), v.special_tokens.end(),
            [&cv](int32_t a, int32_t b) { return cv.text[a].size() > cv.text[b].size(); });
}

// SPM byte fallback: "<0xNN>", else the byte itself as a one-byte token.
void FindByteFallback(Vocab& v) {
  for (int b = 0; b < 256; ++b) {
    int32_t id = v.Find(absl::StrFormat("<0x%02X>", b));
    if (id < 0) {
      const char raw = static_cast<char>(b);
      id = v.Find(absl::string_view(&raw, 1));
    }
    v.byte_fallback[b] = id;
  }
}

// True when no token has U+2581 after anything but U+2581 (Vocab::spm_words_independent).
bool SpmWordsIndependent(const Vocab& v) {
  for (int32_t id = 0; id < v.size(); ++id) {
    const absl::string_view t = v.text[id];
    for (size_t k = t.find(kSpaceEscape, 1); k != absl::string_view::npos;
         k = t.find(kSpaceEscape, k + 1)) {
      if (k < 3 || t.substr(k - 3, 3) != kSpaceEscape) return false;
    }
  }
  return true;
}

// Per-name token attributes, set after the special-token list is made, as in
// llm_load_vocab (so they change how a special token splits, not which are special).
absl::Status ApplyPreTokenizerAttrs(const GgufFile& file, Vocab& v) {
  if (v.kind != TokenizerKind::kBytePairEncoding) return absl::OkStatus();
  ASSIGN_OR_RETURN(const PreTokenizerRules rules, LookupPreTokenizer(v.pre));
  if (!rules.mask_lstrip) return absl::OkStatus();
  const int32_t mask = v.Find("<mask>");
  if (mask < 0) {
    // llama.cpp's token_to_id.at("<mask>") throws, and the load fails.
    return absl::FailedPreconditionError(
        absl::StrCat(file.path(), ": tokenizer.ggml.pre = '", v.pre,
                     "' needs a '<mask>' token, which this vocabulary lacks"));
  }
  v.attrs[mask] |= kAttrLstrip;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Vocab>> LoadVocab(const GgufFile& file,
                                                 const Tokenizer::LoadOptions& options) {
  auto v = std::make_unique<Vocab>();
  RETURN_IF_ERROR(ApplyModelType(file, options, *v));
  ASSIGN_OR_RETURN(const TokenArrays arrays, ReadTokenArrays(file));
  RETURN_IF_ERROR(StoreTokens(file, arrays, *v));
  RETURN_IF_ERROR(ApplySpecialIdKeys(file, *v));
  RETURN_IF_ERROR(ApplyAddBosEos(file, *v));
  FindSpecialIdsByText(*v);
  CollectEndOfGeneration(*v);
  OrderSpecialTokens(*v);
  RETURN_IF_ERROR(ApplyPreTokenizerAttrs(file, *v));
  FindByteFallback(*v);
  if (v->kind == TokenizerKind::kSentencePiece) v->spm_words_independent = SpmWordsIndependent(*v);
  RETURN_IF_ERROR(BuildPieces(file, *v));
  return v;
}

}  // namespace bitparity::tokenizer_internal
