// File: engine/tokenizer/pre_tokenizer.h
//
// Byte-level BPE pre-tokenizers: split text into words with the regexes that
// llama.cpp (llm_tokenizer_bpe) picks by tokenizer.ggml.pre, run on PCRE2 in UTF +
// UCP mode with JIT. A pre-tokenizer is a list of stages; each stage splits every
// piece of the previous one into its matches and the text between them.
//
//   "gpt-2"      's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   "llama-bpe"  '[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]|[^\r\n\p{L}\p{N}]?\p{L}+
//                |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   "default"    [\p{P}$+<=>^~|]+, then gpt-2, then \p{N}+, then [0-9]{3}
//
// \s is Unicode White_Space here (PCRE2's own \s adds U+180E), which is the set
// llama.cpp's hand-written splitters (unicode.cpp) use; their results equal these
// regexes', so the regexes are the specification.
#pragma once

#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bitparity::tokenizer_internal {

enum class PreTokenizerType { kDefault, kGpt2, kLlama3 };

// Maps tokenizer.ggml.pre to a type; Unimplemented for names we do not support.
absl::StatusOr<PreTokenizerType> ParsePreTokenizerName(absl::string_view name);

class PreTokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(PreTokenizerType type);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Calls emit() with consecutive non-empty words that together spell `text`.
  // REQUIRES: text is well-formed UTF-8 (it is not checked again here).
  // ResourceExhausted if PCRE2 runs out of its match budget. Thread-safe.
  absl::Status Split(absl::string_view text,
                     absl::FunctionRef<void(absl::string_view)> emit) const;

 private:
  class Regex;
  struct Scratch;  // per-call PCRE2 match state
  PreTokenizer();
  absl::Status SplitStage(size_t stage, absl::string_view piece, Scratch& scratch,
                          absl::FunctionRef<void(absl::string_view)> emit) const;

  std::vector<std::unique_ptr<Regex>> stages_;
};

}  // namespace bitparity::tokenizer_internal
