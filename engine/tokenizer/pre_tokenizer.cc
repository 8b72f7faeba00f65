#include "engine/tokenizer/pre_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/utf8.h"

namespace bitparity::tokenizer_internal {
namespace {

// Unicode White_Space, the \s of Python's and Rust's regex engines (see header).
#define BP_WS "\\p{White_Space}"
#define BP_NWS "\\P{White_Space}"

constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d"
    "| ?\\p{L}+"
    "| ?\\p{N}+"
    "| ?[^" BP_WS "\\p{L}\\p{N}]+"
    "|" BP_WS "+(?!" BP_NWS ")"
    "|" BP_WS "+";

// LLaMA-3's (?i:'s|'t|...) spelled out with ASCII classes, as llama.cpp does:
// PCRE2's caseless matching would also accept U+017F (long s) for 's'.
constexpr const char* kLlama3Pattern =
    "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
    "|\\p{N}{1,3}"
    "| ?[^" BP_WS "\\p{L}\\p{N}]+[\\r\\n]*"
    "|" BP_WS "*[\\r\\n]+"
    "|" BP_WS "+(?!" BP_NWS ")"
    "|" BP_WS "+";

// llama.cpp's fallback list for tokenizer.ggml.pre = "default".
constexpr const char* kDefaultPunctPattern = "[\\p{P}$+<=>^~|]+";
constexpr const char* kDefaultDigitsPattern = "\\p{N}+";
constexpr const char* kDefaultThreeDigitsPattern = "[0-9]{3}";

#undef BP_WS
#undef BP_NWS

// The JIT runs on a 32 KiB machine-stack block by default; if a pattern ever needs
// more, the match is retried on a heap stack of up to this size.
constexpr size_t kMaxJitStackBytes = size_t{64} << 20;

std::string Pcre2ErrorText(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0) return absl::StrCat("error ", code);
  return reinterpret_cast<const char*>(buf);
}

}  // namespace

class PreTokenizer::Regex {
 public:
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(const char* pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    if (code == nullptr) {
      return absl::InternalError(absl::StrCat("PCRE2 cannot compile pre-tokenizer regex '", pattern,
                                              "' at ", offset, ": ", Pcre2ErrorText(error)));
    }
    auto re = std::unique_ptr<Regex>(new Regex(code));
    // Without JIT support (some architectures) the interpreter gives the same results.
    re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return re;
  }
  ~Regex() { pcre2_code_free(code_); }

  const pcre2_code* code() const { return code_; }
  bool jit() const { return jit_; }

 private:
  explicit Regex(pcre2_code* code) : code_(code) {}
  pcre2_code* code_;
  bool jit_ = false;
};

// One match-data block per stage (stages nest) and, only if needed, a big JIT stack.
struct PreTokenizer::Scratch {
  std::vector<pcre2_match_data*> match_data;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;

  explicit Scratch(size_t stages) {
    for (size_t i = 0; i < stages; ++i) match_data.push_back(pcre2_match_data_create(1, nullptr));
    // Our patterns do linear work per match, but a match may be as long as the
    // text (10 MB of spaces), and \s*[\r\n]+ backtracks over all of it first:
    // PCRE2's default budget (1e7 steps) would refuse that.
    context = pcre2_match_context_create(nullptr);
    if (context != nullptr) pcre2_set_match_limit(context, UINT32_MAX);
  }
  ~Scratch() {
    for (pcre2_match_data* md : match_data) pcre2_match_data_free(md);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  bool GrowJitStack() {
    if (jit_stack != nullptr || context == nullptr) return false;
    jit_stack = pcre2_jit_stack_create(size_t{1} << 20, kMaxJitStackBytes, nullptr);
    if (jit_stack == nullptr) return false;
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
    return true;
  }
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;

absl::StatusOr<PreTokenizerType> ParsePreTokenizerName(absl::string_view name) {
  if (name == "default") return PreTokenizerType::kDefault;
  if (name == "gpt-2" || name == "phi-2" || name == "jina-es" || name == "jina-de" ||
      name == "jina-v1-en" || name == "jina-v2-es" || name == "jina-v2-de" ||
      name == "jina-v2-code") {
    return PreTokenizerType::kGpt2;
  }
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" || name == "dbrx" ||
      name == "smaug-bpe") {
    return PreTokenizerType::kLlama3;
  }
  return absl::UnimplementedError(
      absl::StrCat("unsupported BPE pre-tokenizer tokenizer.ggml.pre = '", name,
                   "' (supported: default, gpt-2, llama-bpe and their aliases)"));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::Create(PreTokenizerType type) {
  std::vector<const char*> patterns;
  switch (type) {
    case PreTokenizerType::kDefault:
      patterns = {kDefaultPunctPattern, kGpt2Pattern, kDefaultDigitsPattern,
                  kDefaultThreeDigitsPattern};
      break;
    case PreTokenizerType::kGpt2:
      patterns = {kGpt2Pattern};
      break;
    case PreTokenizerType::kLlama3:
      patterns = {kLlama3Pattern};
      break;
  }
  auto pre = std::unique_ptr<PreTokenizer>(new PreTokenizer());
  for (const char* p : patterns) {
    ASSIGN_OR_RETURN(std::unique_ptr<Regex> re, Regex::Compile(p));
    pre->stages_.push_back(std::move(re));
  }
  return pre;
}

absl::Status PreTokenizer::Split(absl::string_view text,
                                 absl::FunctionRef<void(absl::string_view)> emit) const {
  if (text.empty()) return absl::OkStatus();
  Scratch scratch(stages_.size());
  return SplitStage(0, text, scratch, emit);
}

absl::Status PreTokenizer::SplitStage(size_t stage, absl::string_view piece, Scratch& scratch,
                                      absl::FunctionRef<void(absl::string_view)> emit) const {
  if (stage == stages_.size()) {
    emit(piece);
    return absl::OkStatus();
  }
  const Regex& re = *stages_[stage];
  pcre2_match_data* md = scratch.match_data[stage];
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  size_t done = 0;   // end of the last piece handed on
  size_t start = 0;  // where the next match attempt begins
  while (start < piece.size()) {
    int rc;
    if (re.jit()) {
      // pcre2_jit_match skips the UTF check, which the caller has done once.
      rc = pcre2_jit_match(re.code(), subject, piece.size(), start, 0, md, scratch.context);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT && scratch.GrowJitStack()) continue;
    } else {
      rc = pcre2_match(re.code(), subject, piece.size(), start, PCRE2_NO_UTF_CHECK, md,
                       scratch.context);
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      const std::string msg = absl::StrCat("pre-tokenizer regex failed at byte ", start, " of a ",
                                           piece.size(), "-byte piece: ", Pcre2ErrorText(rc));
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_MATCHLIMIT ||
          rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
          rc == PCRE2_ERROR_NOMEMORY) {
        return absl::ResourceExhaustedError(msg);
      }
      return absl::InternalError(msg);
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const size_t begin = ov[0], end = ov[1];
    if (end == begin) {
      // None of our patterns matches empty; step one code point so this stays finite.
      start = begin + Utf8LeadLength(static_cast<uint8_t>(piece[begin]));
      continue;
    }
    // Text between matches is a word of its own, as in llama.cpp's regex split.
    if (begin > done) RETURN_IF_ERROR(SplitStage(stage + 1, piece.substr(done, begin - done), scratch, emit));
    RETURN_IF_ERROR(SplitStage(stage + 1, piece.substr(begin, end - begin), scratch, emit));
    done = start = end;
  }
  if (done < piece.size()) RETURN_IF_ERROR(SplitStage(stage + 1, piece.substr(done), scratch, emit));
  return absl::OkStatus();
}

}  // namespace bitparity::tokenizer_internal
