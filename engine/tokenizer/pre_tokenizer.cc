#include "engine/tokenizer/pre_tokenizer.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/tokenizer/llama_regex.h"

namespace bitparity::tokenizer_internal {
namespace {

using T = PreTokenizerType;

// Every tokenizer.ggml.pre name of llm_load_vocab, in its order, with the flags it sets.
// Fields: type, ignore_merges, add_bos, clean_spaces, clear_bos_id, mask_lstrip.
struct NamedRules {
  absl::string_view name;
  PreTokenizerRules rules;
};
constexpr NamedRules kPreTokenizers[] = {
    {"default", {T::kDefault, false, false, true, false, false}},          // DEFAULT
    {"llama3", {T::kLlama3, true, true, true, false, false}},              // LLAMA3
    {"llama-v3", {T::kLlama3, true, true, true, false, false}},            // LLAMA3
    {"llama-bpe", {T::kLlama3, true, true, true, false, false}},           // LLAMA3
    {"deepseek-llm", {T::kDeepseekLlm, false, false, false, false, false}},     // DEEPSEEK_LLM
    {"deepseek-coder", {T::kDeepseekCoder, false, false, false, false, false}}, // DEEPSEEK_CODER
    {"falcon", {T::kFalcon, false, false, true, false, false}},            // FALCON
    {"falcon3", {T::kFalcon3, false, false, true, false, false}},          // FALCON_3
    {"falcon_e", {T::kFalconE, false, false, true, false, false}},         // FALCON_E
    {"mpt", {T::kMpt, false, false, true, false, false}},                  // MPT
    {"starcoder", {T::kStarcoder, false, false, true, false, false}},      // STARCODER
    {"gpt-2", {T::kGpt2, false, false, true, false, false}},               // GPT2
    {"phi-2", {T::kGpt2, false, false, true, false, false}},               // GPT2
    {"jina-es", {T::kGpt2, false, false, true, false, false}},             // GPT2
    {"jina-de", {T::kGpt2, false, false, true, false, false}},             // GPT2
    {"jina-v1-en", {T::kGpt2, false, false, true, false, false}},          // GPT2
    {"jina-v2-es", {T::kGpt2, false, false, true, false, true}},           // GPT2 + <mask> LSTRIP
    {"jina-v2-de", {T::kGpt2, false, false, true, false, true}},           // GPT2 + <mask> LSTRIP
    {"jina-v2-code", {T::kGpt2, false, false, true, false, true}},         // GPT2 + <mask> LSTRIP
    {"refact", {T::kRefact, false, false, true, false, false}},            // REFACT
    {"command-r", {T::kCommandR, false, false, false, false, false}},      // COMMAND_R
    {"qwen2", {T::kQwen2, false, false, false, false, false}},             // QWEN2
    {"stablelm2", {T::kStablelm2, false, false, true, false, false}},      // STABLELM2
    {"olmo", {T::kOlmo, false, false, true, false, false}},                // OLMO
    {"dbrx", {T::kDbrx, false, false, true, false, false}},                // DBRX
    {"smaug-bpe", {T::kSmaug, false, false, true, false, false}},          // SMAUG
    {"poro-chat", {T::kPoro, false, false, false, false, false}},          // PORO
    {"chatglm-bpe", {T::kChatglm4, false, false, true, true, false}},      // CHATGLM4
    {"viking", {T::kViking, false, false, false, false, false}},           // VIKING
    {"jais", {T::kJais, false, false, true, false, false}},                // JAIS
    {"tekken", {T::kTekken, true, true, false, false, false}},             // TEKKEN
    {"smollm", {T::kSmollm, false, false, false, false, false}},           // SMOLLM
    {"codeshell", {T::kCodeshell, false, false, true, false, false}},      // CODESHELL
    {"bloom", {T::kBloom, false, false, true, false, false}},              // BLOOM
    {"gpt3-finnish", {T::kGpt3Finnish, false, false, true, false, false}}, // GPT3_FINNISH
    {"exaone", {T::kExaone, false, false, true, false, false}},            // EXAONE
    {"chameleon", {T::kChameleon, false, true, false, false, false}},      // CHAMELEON
};

// llama.cpp's regex_exprs by type, copied verbatim from llm_tokenizer_bpe (llama-vocab.cpp).
constexpr const char* kQwen2Expr =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
constexpr const char* kPoroExpr = " ?[^(\\s|.,!?…。，、।۔،)]+";

std::vector<const char*> RegexExprs(PreTokenizerType type) {
  using T = PreTokenizerType;
  switch (type) {
    case T::kLlama3:
      return {kLlama3Regex};
    case T::kDbrx:
      return {kLlama3Regex};
    case T::kSmaug:
      return {kLlama3Regex};
    case T::kDeepseekLlm:
      return {
        "[\r\n]",
        "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
        "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
        "\\s+$",
        "[一-龥ࠀ-一가-퟿]+",
        "\\p{N}+",
    };
    case T::kDeepseekCoder:
      return {
        "[\r\n]",
        "\\s?\\p{L}+",
        "\\s?\\p{P}+",
        "[一-龥ࠀ-一가-퟿]+",
        "\\p{N}",
    };
    case T::kFalcon:
      return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2Regex, "[0-9][0-9][0-9]"};
    case T::kFalcon3:
      return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2Regex, "[0-9]"};
    case T::kFalconE:
      return {"[\\p{P}\\$\\+<=>\\^~\\|`]+", kGpt2Regex, "[0-9]"};
    case T::kStarcoder:
      return {"\\p{N}", kGpt2Regex};
    case T::kRefact:
      return {"\\p{N}", kGpt2Regex};
    case T::kCommandR:
      return {"\\p{N}", kGpt2Regex};
    case T::kSmollm:
      return {"\\p{N}", kGpt2Regex};
    case T::kCodeshell:
      return {"\\p{N}", kGpt2Regex};
    case T::kExaone:
      return {"\\p{N}", kGpt2Regex};
    case T::kGpt2:
      return {kGpt2Regex};
    case T::kMpt:
      return {kGpt2Regex};
    case T::kOlmo:
      return {kGpt2Regex};
    case T::kJais:
      return {kGpt2Regex};
    case T::kStablelm2:
      return {kQwen2Expr};
    case T::kQwen2:
      return {kQwen2Expr};
    case T::kPoro:
      return {kPoroExpr};
    case T::kBloom:
      return {kPoroExpr};
    case T::kGpt3Finnish:
      return {kPoroExpr};
    case T::kChatglm4:
      return {kLlama3Regex};
    case T::kViking:
      return {kPoroExpr, "\\p{N}"};
    case T::kTekken:
      return {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"};
    case T::kChameleon:
      return {
        "<sentinel:[0-9]+>",
        "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
        "([\\t\\n]|    |  )",
        "\\p{N}",
        "[\\p{P}!-/:-@\\[-`{-~]",
        kGpt2Regex,
    };
    case T::kDefault:
      return {"[\\p{P}\\$\\+<=>\\^~\\|]+", kGpt2Regex, "\\p{N}+", "[0-9][0-9][0-9]"};
  }
  return {};
}

}  // namespace

absl::StatusOr<PreTokenizerRules> LookupPreTokenizer(absl::string_view name) {
  for (const NamedRules& entry : kPreTokenizers) {
    if (entry.name == name) return entry.rules;
  }
  return absl::UnimplementedError(
      absl::StrCat("unknown BPE pre-tokenizer tokenizer.ggml.pre = '", name,
                   "' (bitnet.cpp's llama.cpp does not know it either)"));
}

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(PreTokenizerType type) {
  auto pre = std::unique_ptr<PreTokenizer>(new PreTokenizer());
  for (const char* expr : RegexExprs(type)) {
    ASSIGN_OR_RETURN(std::unique_ptr<LlamaRegex> re, LlamaRegex::Compile(expr));
    pre->need_collapsed_ |= re->mode() == RegexMode::kCollapsed;
    pre->need_wide_ |= re->mode() == RegexMode::kWide;
    pre->stages_.push_back(std::move(re));
  }
  return pre;
}

absl::Status PreTokenizer::Split(absl::string_view text,
                                 absl::FunctionRef<void(absl::string_view)> emit) const {
  if (text.empty()) return absl::OkStatus();
  if (text.size() >= std::numeric_limits<uint32_t>::max()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("pre-tokenizer: text of ", text.size(), " bytes is over 4 GiB"));
  }
  const RegexSubjects subjects(text, need_collapsed_, need_wide_);
  // Word lengths in code points, as llama.cpp's bpe_offsets.
  std::vector<uint32_t> words = {static_cast<uint32_t>(subjects.code_points())};
  for (const auto& stage : stages_) {
    ASSIGN_OR_RETURN(words, stage->Split(subjects, words));
  }
  size_t cp = 0;
  for (const uint32_t len : words) {
    const size_t begin = subjects.OriginalByte(cp);
    cp += len;
    emit(text.substr(begin, subjects.OriginalByte(cp) - begin));
  }
  return absl::OkStatus();
}

}  // namespace bitparity::tokenizer_internal
