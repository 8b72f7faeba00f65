// File: engine/tokenizer/tokenizer.h
//
// Text <-> token ids, identical to the llama.cpp copy inside bitnet.cpp
// (llama_tokenize / llama_token_to_piece). Two vocabulary kinds:
//
//   kSentencePiece     tokenizer.ggml.model = "llama" (LLaMA-1/2, 1bitLLM BitNet models):
//                      prepend one space (add_space_prefix), spaces -> U+2581, merge
//                      neighbouring symbols by best vocabulary score, bytes without a
//                      token fall back to <0xNN> tokens.
//   kBytePairEncoding  tokenizer.ggml.model = "gpt2" (GPT-2, LLaMA-3 / BitNet-2B-4T):
//                      regex pre-tokenizer chosen by tokenizer.ggml.pre, GPT-2
//                      byte-to-unicode mapping, merges applied by rank.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> gguf, GgufFile::Open(path));
//   ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tok, Tokenizer::FromGguf(*gguf));
//   ASSIGN_OR_RETURN(std::vector<int32_t> ids, tok->Encode("Hello world"));  // BOS added
//   ASSIGN_OR_RETURN(std::string text, tok->Decode(ids));  // "Hello world" (BOS hidden)
//
// Pre-tokenizers (tokenizer.ggml.pre): all 37 names that bitnet.cpp's llama.cpp knows
// ("default" also when the key is missing), with its regexes and its per-name rules
// (whole-word tokens skipping merges, default add_bos, chatglm-bpe's cleared BOS id,
// jina-v2-*'s <mask> LSTRIP); see pre_tokenizer.h. Any other value is Unimplemented.
//
// Input text (documented behaviour for bad input):
//   * SentencePiece works on bytes exactly as llama.cpp does: invalid UTF-8 is split
//     at lead bytes and comes out as byte-fallback tokens; it never fails. (So a
//     truncated sequence can swallow the U+2581 of a following space, which then
//     decodes as the bytes E2 96 81: same ids, same text as bitnet.cpp.)
//   * Byte-level BPE requires well-formed UTF-8 (RFC 3629). Anything else is
//     InvalidArgument naming the byte offset. llama.cpp throws std::invalid_argument
//     on most such input (truncated sequences, stray continuation bytes) and silently
//     re-encodes overlong forms and surrogates; we reject all of them.
//   * Empty text gives [] (plus BOS/EOS when they are added).
//   * Size: time is O(n log n), memory O(n); 10 MB of ordinary text takes ~0.2 s.
//     Merging inside one pre-token is llama.cpp's priority-queue algorithm, so a
//     single pre-token of n bytes (10 MB of 'a', of spaces, one SPM run without
//     spaces) costs about 1 us per byte and ~40 bytes of memory per byte.
//     The regex engine (PCRE2 JIT) needs no deep stack and has no step limit.
//
// Decoding: TokenToPiece/Decode return llama_token_to_piece bytes, concatenated.
// Control and unknown tokens (BOS, EOS, <unk>...) are "" unless `special`. SPM pieces
// keep their leading space: Decode(Encode("Hi", {.add_bos=false})) == " Hi" for SPM
// (llama_detokenize strips it; the golden `greedy.text` and the server do not).
// Pieces may end inside a UTF-8 sequence (byte tokens): streamed generation holds
// such tails back (base/generation_text.h).
//
// Unicode tables: the regex classes (\p{L}, \p{N}, \p{P}, White_Space) come from PCRE2
// (Unicode 14 in Debian 12); llama.cpp has its own tables. They differ only for code
// points assigned after Unicode 14.
//
// Thread safety: a Tokenizer is immutable after FromGguf; every const method may be
// called from many threads at once.
// A Tokenizer copies what it needs: the GgufFile may be closed afterwards.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace bitparity {

class GgufFile;

namespace tokenizer_internal {
struct Vocab;
struct BpeModel;
class PreTokenizer;
}  // namespace tokenizer_internal

enum class TokenizerKind {
  kSentencePiece,     // tokenizer.ggml.model = "llama"
  kBytePairEncoding,  // tokenizer.ggml.model = "gpt2"
};

class Tokenizer {
 public:
  // Reads the tokenizer.ggml.* keys: model, tokens, scores, token_type, merges,
  // bos/eos/unk/pad/eot/eom/fim ids, add_bos_token/add_eos_token, add_space_prefix, pre.
  // Errors: NotFound (no tokenizer.ggml.model or tokens), Unimplemented (unknown model
  // or pre-tokenizer), DataLoss (array lengths that disagree, duplicate tokens, a merge
  // without a space or naming a string that is not a token, a malformed <0xNN> byte
  // token, BPE token text that is not UTF-8, add_bos/add_eos without a valid id).
  // Special ids outside [0, n_vocab) are ignored, as llama.cpp does (it warns).
  struct LoadOptions {
    // Use this tokenizer.ggml.pre value instead of the file's ("" = "default", as llama.cpp's
    // --override-kv tokenizer.ggml.pre=str:NAME does): every rule that follows from the
    // name follows from this one. Ignored for SentencePiece vocabularies.
    std::optional<std::string> pre_tokenizer;
  };
  // Also FailedPrecondition when the pre-tokenizer needs a token the vocabulary lacks
  // (jina-v2-* without "<mask>", which llama.cpp also fails to load).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file,
                                                             const LoadOptions& options);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromGguf(const GgufFile& file) {
    return FromGguf(file, LoadOptions());
  }

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  struct EncodeOptions {
    // BOS: unset = the model's add_bos flag. false also suppresses EOS, i.e. it is
    // llama_tokenize(add_special=false), the convention of the known-answer files.
    // true on a vocabulary without a BOS id is FailedPrecondition.
    std::optional<bool> add_bos;
    // Split text equal to CONTROL tokens (e.g. <|begin_of_text|>) out as those ids.
    // USER_DEFINED tokens are always split out, as in llama.cpp.
    bool parse_special = false;
  };
  // InvalidArgument for BPE text that is not UTF-8 (see top of file);
  // ResourceExhausted if the regex engine runs out of its memory budget.
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              const EncodeOptions& opts) const;
  // Default options. (An overload rather than `opts = {}`: a nested struct with
  // member initializers cannot be a default argument inside its own class.)
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text) const {
    return Encode(text, EncodeOptions());
  }

  // Bytes of one token as llama_token_to_piece(special) gives them: byte tokens ->
  // the raw byte, SPM U+2581 -> space, GPT-2 byte-unicode -> bytes; CONTROL and
  // UNKNOWN tokens -> "" unless `special`; USER_DEFINED -> their text.
  // InvalidArgument for an id outside [0, n_vocab).
  absl::StatusOr<std::string> TokenToPiece(int32_t id, bool special = false) const;

  // Concatenated pieces; may end in a partial UTF-8 sequence (the caller's business).
  // InvalidArgument (naming the position) for an id outside [0, n_vocab).
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids, bool special = false) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;  // -1 when absent
  int32_t eos_id() const;  // -1 when absent
  bool add_bos() const;
  bool add_eos() const;
  // EOS, EOT, EOM, the FIM pad/repo/sep tokens and tokens named like <|eot_id|>,
  // <|endoftext|>, <|im_end|>... (llama.cpp's special_eog_ids).
  bool IsEndOfGeneration(int32_t id) const;
  TokenizerKind kind() const;
  // tokenizer.ggml.pre as read ("default" when absent); "" for SentencePiece.
  const std::string& pre() const;
  // Raw vocabulary string ("" for an id out of range). Empty GGUF strings read as
  // "[EMPTY_<id>]", as in llama.cpp.
  absl::string_view TokenText(int32_t id) const;

  // The most bytes of input text that one token of an Encode result can stand for,
  // so that Encode of B bytes gives at least ceil(B / max_token_bytes()) tokens,
  // BOS/EOS not counted: a bound on a text's token count that costs nothing (the
  // servers refuse a text that cannot fit the context before tokenizing it). Never
  // less than the longest TokenToPiece(id, special=true); for byte-level BPE it is
  // exactly that, for SentencePiece the longest token text (a token of k U+2581 has a
  // k-byte piece but stands for 3k bytes of text that contains U+2581 itself).
  // 0 when the vocabulary admits no such bound: byte-level BPE in which some byte or
  // some merge result is not a token, so that bytes can vanish from the result.
  // Computed once in FromGguf; the argument is in tokenizer.cc (MaxTokenBytes).
  int32_t max_token_bytes() const { return max_token_bytes_; }

 private:
  Tokenizer();
  absl::Status EncodeBpe(absl::string_view text, std::vector<int32_t>* out) const;

  std::unique_ptr<const tokenizer_internal::Vocab> vocab_;
  std::unique_ptr<const tokenizer_internal::BpeModel> bpe_;         // kBytePairEncoding only
  std::unique_ptr<const tokenizer_internal::PreTokenizer> pre_tok_;  // kBytePairEncoding only
  int32_t max_token_bytes_ = 0;
};

}  // namespace bitparity
