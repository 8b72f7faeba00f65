// File: engine/tokenizer/pre_tokenizer.h
//
// Byte-level BPE pre-tokenizers: every tokenizer.ggml.pre name that the llama.cpp copy
// inside bitnet.cpp accepts (llm_load_vocab), the flags it derives from the name, and
// its list of regexes (llm_tokenizer_bpe's regex_exprs, verbatim). Each regex splits
// every piece of the previous one into its matches and the text between them; how a
// regex is run (hand-written splitter, "collapsed" categories, or std::wregex) follows
// llama.cpp's unicode_regex_split and is described in llama_regex.h.
#pragma once

#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bitparity::tokenizer_internal {

class LlamaRegex;

// llama.cpp's LLAMA_VOCAB_PRE_TYPE_* (one per regex list).
enum class PreTokenizerType {
  kDefault,
  kLlama3,
  kDeepseekLlm,
  kDeepseekCoder,
  kFalcon,
  kMpt,
  kStarcoder,
  kGpt2,
  kRefact,
  kCommandR,
  kStablelm2,
  kQwen2,
  kOlmo,
  kDbrx,
  kSmaug,
  kPoro,
  kChatglm4,
  kViking,
  kJais,
  kTekken,
  kSmollm,
  kCodeshell,
  kBloom,
  kGpt3Finnish,
  kExaone,
  kChameleon,
  kFalcon3,
  kFalconE,
};

// What llm_load_vocab sets from tokenizer.ggml.pre besides the regexes.
struct PreTokenizerRules {
  PreTokenizerType type = PreTokenizerType::kDefault;
  // A pre-token that is itself a token is emitted whole, merges or not.
  bool ignore_merges = false;
  // Default add_bos (tokenizer.ggml.add_bos_token still overrides it).
  bool add_bos = false;
  // llama_detokenize's space clean-up. Token pieces (our Decode) do not use it.
  bool clean_spaces = true;
  // chatglm-bpe: the BOS id is cleared before the tokenizer.ggml.*_token_id keys are read.
  bool clear_bos_id = false;
  // jina-v2-*: the token "<mask>" gets the LSTRIP attribute; llama.cpp fails to load
  // the vocabulary when it has no such token.
  bool mask_lstrip = false;
};

// Unimplemented, naming `name`, for a name llama.cpp does not know either.
absl::StatusOr<PreTokenizerRules> LookupPreTokenizer(absl::string_view name);

class PreTokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(PreTokenizerType type);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Calls emit() with consecutive non-empty words that together spell `text`.
  // REQUIRES: text is well-formed UTF-8 (it is not checked again here).
  // ResourceExhausted if PCRE2 runs out of memory, or for text of 4 GiB or more.
  // Thread-safe.
  absl::Status Split(absl::string_view text,
                     absl::FunctionRef<void(absl::string_view)> emit) const;

 private:
  PreTokenizer();
  std::vector<std::unique_ptr<LlamaRegex>> stages_;
  bool need_collapsed_ = false;
  bool need_wide_ = false;
};

}  // namespace bitparity::tokenizer_internal
