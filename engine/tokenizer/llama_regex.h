// File: engine/tokenizer/llama_regex.h
//
// One entry of llama.cpp's regex_exprs (llm_tokenizer_bpe), run with the semantics of
// llama.cpp's unicode_regex_split rather than of the regex text itself. llama.cpp runs
// each entry in one of three ways, and so do we:
//
//   kCustom     the GPT-2 and LLaMA-3 regexes, which have hand-written splitters
//               (unicode_regex_split_custom_*). We run equivalent PCRE2 UTF patterns
//               on the real text, with \s = Unicode White_Space.
//   kCollapsed  entries containing \p{L}, \p{N} or \p{P}: llama.cpp maps every non-ASCII
//               code point of the text to one byte (White_Space -> 0x0B, letter 0xD2,
//               number 0xD1, punctuation 0xD3, anything else 0xD0), rewrites those
//               three classes to byte sets, and runs std::regex on the bytes. We do the
//               same, on PCRE2 in byte mode. So \p{M}, \p{S}... are not classes there,
//               and a non-ASCII letter is neither [a-z] nor [A-Z] (tekken).
//   kWide       entries without those classes: std::wregex on the code points, with
//               every non-ASCII White_Space code point replaced by 0x0B first (so
//               U+3000 no longer matches a class range that spans it, as in
//               deepseek's [ࠀ-一]). We run PCRE2 in UTF mode without UCP (\s, \d, \w
//               ASCII, like std::wregex in the C locale) on the replaced text.
//
// For std::regex's ECMAScript grammar and PCRE2 to agree, entries use only what the two
// read alike: classes, ranges, groups, (?:), (?=), (?!), greedy quantifiers, and `$`
// (compiled with PCRE2_DOLLAR_ENDONLY, since ECMAScript's $ is only the end of input).
// Each entry is applied to each piece of the previous one on its own: lookaheads and
// $ see the end of the piece, as in llama.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bitparity::tokenizer_internal {

// llama.cpp's GPT-2 regex, and its LLaMA-3 regex as llm_tokenizer_bpe passes it
// (the case-insensitive contractions spelled out), verbatim. unicode_regex_split
// recognises both by their exact text and runs hand-written splitters for them.
inline constexpr char kGpt2Regex[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
inline constexpr char kLlama3Regex[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

enum class RegexMode { kCustom, kCollapsed, kWide };

// The text of one Split call in the three forms the modes read. Positions (called code
// points below) are code points when a collapsed or wide form is needed, since those
// forms change byte lengths; otherwise they are bytes of the text, which is all the
// custom splitters read.
class RegexSubjects {
 public:
  // REQUIRES: text is well-formed UTF-8 and shorter than 4 GiB; outlives this object.
  RegexSubjects(absl::string_view text, bool need_collapsed, bool need_wide);

  size_t code_points() const { return n_cp_; }
  // Byte offset in the original text of code point `cp` (cp <= code_points()).
  size_t OriginalByte(size_t cp) const { return Byte(offsets_, cp); }

  struct View {
    absl::string_view bytes;
    const std::vector<uint32_t>* offsets;  // byte of each code point; null: one byte each
  };
  View Get(RegexMode mode) const;

  static size_t Byte(const std::vector<uint32_t>* offsets, size_t cp) {
    return offsets == nullptr ? cp : (*offsets)[cp];
  }
  static size_t Byte(const std::vector<uint32_t>& offsets, size_t cp) {
    return offsets.empty() ? cp : offsets[cp];
  }

 private:
  absl::string_view text_;
  size_t n_cp_ = 0;
  std::vector<uint32_t> offsets_;  // empty when the text is ASCII
  std::string collapsed_;          // one byte per code point
  std::string wide_;               // text with non-ASCII White_Space -> 0x0B
  std::vector<uint32_t> wide_offsets_;
  bool wide_is_text_ = true;
};

class LlamaRegex {
 public:
  // `expr` is llama.cpp's regex text, verbatim. Internal error if it does not compile
  // (or mixes \p classes with non-ASCII text, which llama.cpp rejects too).
  static absl::StatusOr<std::unique_ptr<LlamaRegex>> Compile(absl::string_view expr);
  ~LlamaRegex();
  LlamaRegex(const LlamaRegex&) = delete;
  LlamaRegex& operator=(const LlamaRegex&) = delete;

  RegexMode mode() const { return mode_; }

  // Splits each word of `words` (lengths in positions, summing to the text) into its
  // matches and the runs between them; returns the new lengths.
  // ResourceExhausted if PCRE2 runs out of memory. Thread-safe.
  absl::StatusOr<std::vector<uint32_t>> Split(const RegexSubjects& subjects,
                                              const std::vector<uint32_t>& words) const;

  // The PCRE2 pattern actually compiled (for error messages and tests).
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  LlamaRegex();
  RegexMode mode_ = RegexMode::kCustom;
  std::string pattern_;
  std::unique_ptr<Code> code_;
};

}  // namespace bitparity::tokenizer_internal
