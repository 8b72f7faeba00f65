#include "engine/tokenizer/llama_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/utf8.h"

namespace bitparity::tokenizer_internal {
namespace {

// llama.cpp's two regexes with hand-written splitters (unicode_regex_split_custom),
// matched on their exact text as llama.cpp does.
const absl::string_view kGpt2SplitterExpr = kGpt2Regex;
constexpr absl::string_view kLlama3OriginalExpr =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+"
    "[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const absl::string_view kLlama3AdaptedExpr = kLlama3Regex;

// What those splitters do, as PCRE2 UTF patterns on the real text. \s is Unicode
// White_Space, the set of llama.cpp's tables (PCRE2's own UCP \s adds U+180E).
#define BP_WS "\\p{White_Space}"
#define BP_NWS "\\P{White_Space}"
// The GPT-2 splitter also takes whitespace that the regex text would leave alone
// (a run before a non-space keeps its last character): hence the final \s+.
constexpr const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d"
    "| ?\\p{L}+"
    "| ?\\p{N}+"
    "| ?[^" BP_WS "\\p{L}\\p{N}]+"
    "|" BP_WS "+(?!" BP_NWS ")"
    "|" BP_WS "+";
// (?i:'s|...) spelled with ASCII classes, as llama.cpp's splitter does: PCRE2's
// caseless matching would also accept U+017F (long s) for 's'.
constexpr const char* kLlama3Pattern =
    "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"
    "|\\p{N}{1,3}"
    "| ?[^" BP_WS "\\p{L}\\p{N}]+[\\r\\n]*"
    "|" BP_WS "*[\\r\\n]+"
    "|" BP_WS "+(?!" BP_NWS ")"
    "|" BP_WS "+";
#undef BP_WS
#undef BP_NWS

// Collapsed bytes (unicode_regex_split's k_ucat_cpt) and the ASCII members of each
// class (k_ucat_map), byte for byte as llama.cpp writes them into the regex.
constexpr char kCollapsedSpace = 0x0B;
constexpr char kCollapsedOther = static_cast<char>(0xD0);
struct CollapsedClass {
  absl::string_view name;
  char byte;
  absl::string_view ascii;
};
constexpr std::array<CollapsedClass, 3> kCollapsedClasses = {{
    {"\\p{N}", static_cast<char>(0xD1), "\x30-\x39"},
    {"\\p{L}", static_cast<char>(0xD2), "\x41-\x5A\x61-\x7A"},
    {"\\p{P}", static_cast<char>(0xD3),
     "\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\\\x5B-\\\x5D\x5F\\\x7B\\\x7D"},
}};

bool UsesCollapsedClass(absl::string_view expr) {
  for (const CollapsedClass& c : kCollapsedClasses) {
    if (expr.find(c.name) != absl::string_view::npos) return true;
  }
  return false;
}

// unicode_regex_split's rewrite of \p{N}, \p{L}, \p{P} into byte sets, step for step
// (including its notion of "inside []", which ignores escaped brackets).
std::string CollapseRegex(absl::string_view expr) {
  std::string out;
  bool inside = false;
  for (size_t i = 0; i < expr.size(); ++i) {
    if (expr[i] == '[' && (i == 0 || expr[i - 1] != '\\')) {
      out += '[';
      inside = true;
      continue;
    }
    if (inside && expr[i] == ']' && expr[i - 1] != '\\') {
      out += ']';
      inside = false;
      continue;
    }
    if (expr[i] == '\\' && i + 4 < expr.size() && expr[i + 1] == 'p' && expr[i + 2] == '{' &&
        expr[i + 4] == '}') {
      const absl::string_view pat = expr.substr(i, 5);
      const auto it = std::find_if(kCollapsedClasses.begin(), kCollapsedClasses.end(),
                                   [&](const CollapsedClass& c) { return c.name == pat; });
      if (it != kCollapsedClasses.end()) {
        if (!inside) out += '[';
        out += it->byte;
        out.append(it->ascii.data(), it->ascii.size());
        if (!inside) out += ']';
        i += 4;
        continue;
      }
    }
    out += expr[i];
  }
  return out;
}

std::string Pcre2ErrorText(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0) return absl::StrCat("error ", code);
  return reinterpret_cast<const char*>(buf);
}

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

// Collapsed byte of every code point >= 0x80 (llama.cpp's unicode_cpt_flags, read
// through PCRE2's Unicode tables). Built once, on first use: each class regex runs
// over one string holding all code points.
const std::vector<uint8_t>& CollapseTable() {
  static const std::vector<uint8_t>* table = [] {
    auto* t = new std::vector<uint8_t>(kMaxCodePoint + 1, static_cast<uint8_t>(kCollapsedOther));
    for (uint32_t c = 0; c < 0x80; ++c) (*t)[c] = static_cast<uint8_t>(c);
    std::string all;
    all.reserve(4 * (kMaxCodePoint + 1));
    for (uint32_t c = 0x80; c <= kMaxCodePoint; ++c) {
      if (c < 0xD800 || c > 0xDFFF) AppendUtf8(c, &all);
    }
    // Later rows win: White_Space comes before any category, as in llama.cpp.
    const std::pair<const char*, char> rows[] = {{"\\p{N}+", kCollapsedClasses[0].byte},
                                                 {"\\p{L}+", kCollapsedClasses[1].byte},
                                                 {"\\p{P}+", kCollapsedClasses[2].byte},
                                                 {"\\p{White_Space}+", kCollapsedSpace}};
    for (const auto& [pattern, byte] : rows) {
      int error = 0;
      PCRE2_SIZE offset = 0;
      pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                       PCRE2_UTF, &error, &offset, nullptr);
      if (code == nullptr) continue;  // cannot happen for these fixed patterns
      pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
      pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
      size_t start = 0;
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(all.data());
      while (pcre2_match(code, subject, all.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr) > 0) {
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        for (size_t pos = ov[0]; pos < ov[1];) (*t)[DecodeUtf8(all, &pos)] = static_cast<uint8_t>(byte);
        start = ov[1];
      }
      pcre2_match_data_free(md);
      pcre2_code_free(code);
    }
    return t;
  }();
  return *table;
}

bool IsAscii(absl::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

// Maps byte offsets of one view to code points. Queries must not decrease (they walk
// a piece left to right), so the scan is linear over the piece.
class CodePointCursor {
 public:
  CodePointCursor(const std::vector<uint32_t>* offsets, size_t first_cp)
      : offsets_(offsets), cp_(first_cp) {}
  size_t At(size_t byte) {
    if (offsets_ == nullptr) return byte;
    while ((*offsets_)[cp_] < byte) ++cp_;
    return cp_;
  }

 private:
  const std::vector<uint32_t>* offsets_;
  size_t cp_;
};

// The JIT runs on a 32 KiB machine-stack block by default; if a pattern ever needs
// more, the match is retried on a heap stack of up to this size.
constexpr size_t kMaxJitStackBytes = size_t{64} << 20;

struct MatchScratch {
  pcre2_match_data* match_data = pcre2_match_data_create(1, nullptr);
  pcre2_match_context* context = pcre2_match_context_create(nullptr);
  pcre2_jit_stack* jit_stack = nullptr;

  MatchScratch() {
    // Our patterns do linear work per match, but a match may be as long as the
    // text (10 MB of spaces), and \s*[\r\n]+ backtracks over all of it first:
    // PCRE2's default budget (1e7 steps) would refuse that.
    if (context != nullptr) pcre2_set_match_limit(context, UINT32_MAX);
  }
  ~MatchScratch() {
    pcre2_match_data_free(match_data);
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;

  bool GrowJitStack() {
    if (jit_stack != nullptr || context == nullptr) return false;
    jit_stack = pcre2_jit_stack_create(size_t{1} << 20, kMaxJitStackBytes, nullptr);
    if (jit_stack == nullptr) return false;
    pcre2_jit_stack_assign(context, nullptr, jit_stack);
    return true;
  }
};

}  // namespace

RegexSubjects::RegexSubjects(absl::string_view text, bool need_collapsed, bool need_wide)
    : text_(text) {
  if (!(need_collapsed || need_wide) || IsAscii(text)) {
    // Only the text itself is read (custom splitters), or every form is the text, one
    // byte per code point: positions can be bytes, and no index is needed.
    n_cp_ = text.size();
    return;
  }
  offsets_.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size(); pos += Utf8LeadLength(static_cast<uint8_t>(text[pos]))) {
    offsets_.push_back(static_cast<uint32_t>(pos));
  }
  n_cp_ = offsets_.size();
  offsets_.push_back(static_cast<uint32_t>(text.size()));
  const std::vector<uint8_t>* table = need_collapsed || need_wide ? &CollapseTable() : nullptr;
  if (need_collapsed) {
    collapsed_.resize(n_cp_);
    for (size_t i = 0; i < n_cp_; ++i) {
      size_t pos = offsets_[i];
      collapsed_[i] = static_cast<char>((*table)[DecodeUtf8(text, &pos)]);
    }
  }
  if (need_wide) {
    for (size_t i = 0; i < n_cp_ && wide_is_text_; ++i) {
      size_t pos = offsets_[i];
      const uint32_t cp = DecodeUtf8(text, &pos);
      wide_is_text_ = !(cp >= 0x80 && (*table)[cp] == kCollapsedSpace);
    }
    if (!wide_is_text_) {
      wide_.reserve(text.size());
      wide_offsets_.reserve(n_cp_ + 1);
      for (size_t i = 0; i < n_cp_; ++i) {
        wide_offsets_.push_back(static_cast<uint32_t>(wide_.size()));
        size_t pos = offsets_[i];
        const uint32_t cp = DecodeUtf8(text, &pos);
        if (cp >= 0x80 && (*table)[cp] == kCollapsedSpace) {
          wide_ += kCollapsedSpace;
        } else {
          wide_.append(text.data() + offsets_[i], pos - offsets_[i]);
        }
      }
      wide_offsets_.push_back(static_cast<uint32_t>(wide_.size()));
    }
  }
}

RegexSubjects::View RegexSubjects::Get(RegexMode mode) const {
  const std::vector<uint32_t>* text_offsets = offsets_.empty() ? nullptr : &offsets_;
  switch (mode) {
    case RegexMode::kCustom:
      break;
    case RegexMode::kCollapsed:
      if (text_offsets != nullptr) return {collapsed_, nullptr};
      break;
    case RegexMode::kWide:
      if (!wide_is_text_) return {wide_, &wide_offsets_};
      break;
  }
  return {text_, text_offsets};
}

struct LlamaRegex::Code {
  pcre2_code* code = nullptr;
  bool jit = false;
  bool utf = true;
  ~Code() { pcre2_code_free(code); }
};

LlamaRegex::LlamaRegex() = default;
LlamaRegex::~LlamaRegex() = default;

absl::StatusOr<std::unique_ptr<LlamaRegex>> LlamaRegex::Compile(absl::string_view expr) {
  auto re = std::unique_ptr<LlamaRegex>(new LlamaRegex());
  re->code_ = std::make_unique<Code>();
  uint32_t options = PCRE2_DOLLAR_ENDONLY;
  if (expr == kGpt2SplitterExpr) {
    re->mode_ = RegexMode::kCustom;
    re->pattern_ = kGpt2Pattern;
  } else if (expr == kLlama3OriginalExpr || expr == kLlama3AdaptedExpr) {
    re->mode_ = RegexMode::kCustom;
    re->pattern_ = kLlama3Pattern;
  } else if (UsesCollapsedClass(expr)) {
    if (!IsAscii(expr)) {
      return absl::InternalError(absl::StrCat("pre-tokenizer regex '", expr,
                                              "' mixes unicode classes with non-ASCII text"));
    }
    re->mode_ = RegexMode::kCollapsed;
    re->pattern_ = CollapseRegex(expr);
  } else {
    re->mode_ = RegexMode::kWide;
    re->pattern_ = std::string(expr);
  }
  // Custom patterns need \p{}: UTF only, no UCP (\s stays ASCII; see the patterns).
  if (re->mode_ != RegexMode::kCollapsed) options |= PCRE2_UTF;
  re->code_->utf = re->mode_ != RegexMode::kCollapsed;
  int error = 0;
  PCRE2_SIZE offset = 0;
  re->code_->code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(re->pattern_.data()), re->pattern_.size(),
                    options, &error, &offset, nullptr);
  if (re->code_->code == nullptr) {
    return absl::InternalError(absl::StrCat("PCRE2 cannot compile pre-tokenizer regex '", expr,
                                            "' at ", offset, ": ", Pcre2ErrorText(error)));
  }
  // Without JIT support (some architectures) the interpreter gives the same results.
  re->code_->jit = pcre2_jit_compile(re->code_->code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

absl::StatusOr<std::vector<uint32_t>> LlamaRegex::Split(const RegexSubjects& subjects,
                                                        const std::vector<uint32_t>& words) const {
  const RegexSubjects::View view = subjects.Get(mode_);
  MatchScratch scratch;
  if (scratch.match_data == nullptr) return absl::ResourceExhaustedError("PCRE2 match data");
  std::vector<uint32_t> out;
  out.reserve(words.size());
  size_t word_start = 0;  // code point
  for (const uint32_t len : words) {
    const size_t a = word_start, b = word_start + len;
    word_start = b;
    const size_t base = RegexSubjects::Byte(view.offsets, a);
    const size_t n = RegexSubjects::Byte(view.offsets, b) - base;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(view.bytes.data() + base);
    CodePointCursor cursor(view.offsets, a);
    const auto cp_of = [&](size_t rel) { return cursor.At(base + rel); };
    size_t done = 0;   // end of the last word handed on (bytes into the piece)
    size_t done_cp = a;  // the same, as a position
    size_t start = 0;  // where the next match attempt begins
    while (start < n) {
      int rc;
      if (code_->jit) {
        // pcre2_jit_match skips the UTF check; the caller checked the text once.
        rc = pcre2_jit_match(code_->code, subject, n, start, 0, scratch.match_data,
                             scratch.context);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && scratch.GrowJitStack()) continue;
      } else {
        rc = pcre2_match(code_->code, subject, n, start, PCRE2_NO_UTF_CHECK, scratch.match_data,
                         scratch.context);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        const std::string msg = absl::StrCat("pre-tokenizer regex failed at byte ", start,
                                             " of a ", n, "-byte piece: ", Pcre2ErrorText(rc));
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_MATCHLIMIT ||
            rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_NOMEMORY) {
          return absl::ResourceExhaustedError(msg);
        }
        return absl::InternalError(msg);
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(scratch.match_data);
      const size_t begin = ov[0], end = ov[1];
      if (end == begin) {
        // None of llama.cpp's regexes matches empty; step one code point to stay finite.
        start = begin + (code_->utf ? Utf8LeadLength(static_cast<uint8_t>(subject[begin])) : 1);
        continue;
      }
      // Text between matches is a word of its own, as in llama.cpp's regex split.
      const size_t begin_cp = cp_of(begin);
      if (begin > done) out.push_back(static_cast<uint32_t>(begin_cp - done_cp));
      const size_t end_cp = cp_of(end);
      out.push_back(static_cast<uint32_t>(end_cp - begin_cp));
      done = start = end;
      done_cp = end_cp;
    }
    if (done < n) out.push_back(static_cast<uint32_t>(b - done_cp));
  }
  return out;
}

}  // namespace bitparity::tokenizer_internal
