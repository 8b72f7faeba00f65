#include "engine/tokenizer/tokenizer.h"

#include <algorithm>
#include <climits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/special_tokens.h"
#include "engine/tokenizer/spm_tokenizer.h"
#include "base/utf8.h"
#include "engine/tokenizer/vocab.h"

namespace bitparity {

using tokenizer_internal::kAttrControl;
using tokenizer_internal::kAttrUnknown;

namespace {

// Words up to this length are memoised within one Encode call: prose repeats a few
// thousand words, and a hash lookup is far cheaper than re-running the merges.
constexpr size_t kMaxCachedWordBytes = 48;

absl::Status IdOutOfRange(int32_t id, int32_t n_vocab) {
  return absl::InvalidArgumentError(
      absl::StrCat("token id ", id, " is outside the vocabulary [0, ", n_vocab, ")"));
}

// Tokenizer::max_token_bytes(): L such that Encode of B bytes of text gives at least
// ceil(B / L) tokens. Encode splits the text into special-token matches and text
// fragments, and every byte of a fragment lands in exactly one output token's share
// (bytes of no token are the one exception, below), so it suffices that no token's
// share exceeds L:
//   * A special token cut out of the text (CONTROL/UNKNOWN with parse_special,
//     USER_DEFINED always) stands for its text, which is its piece with special=true.
//   * SentencePiece: a fragment is escaped first (each space becomes U+2581, 3 bytes;
//     add_space_prefix inserts a U+2581 that stands for no input byte), and escaping
//     never shrinks the text. A merged symbol is exactly a token's text, so its share
//     of input bytes is at most that text's length; a symbol that is no token becomes
//     one byte-fallback (or <unk>) token per escaped byte, each standing for at most
//     one input byte. The longest piece is not enough here: "▁▁▁▁" has the 4-byte
//     piece "    " but stands for 12 bytes of text made of U+2581 itself.
//   * Byte-level BPE: a merged symbol (or a whole pre-token under ignore_merges) is
//     the GPT-2 spelling of its bytes, one code point per byte, so its share is the
//     number of code points of the token's text, which is also the length of a NORMAL
//     token's piece (non-NORMAL tokens count their code points all the same). A
//     symbol that is not a token falls back to the one-byte-string tokens of its
//     spelling and silently drops bytes that have none (llama.cpp does the same), so
//     the bound holds only if no symbol can be a non-token: every byte's spelling is
//     a token and every merge makes a token. Otherwise there is no bound (0).
// Tokens added around the text (BOS, EOS) only add to the count. The same argument
// holds for llama.cpp's tokenizer, with one exception our tokenizer does not have:
// special tokens with the LSTRIP/RSTRIP attribute swallow neighbouring whitespace
// (cpp_ref_adapter/bitnet_cpp_worker.cc reports no bound for such vocabularies).
int32_t MaxTokenBytes(const tokenizer_internal::Vocab& v, const tokenizer_internal::BpeModel* bpe) {
  if (v.kind == TokenizerKind::kBytePairEncoding) {
    if (bpe == nullptr) return 0;
    for (const int32_t id : bpe->byte_token) {
      if (id < 0) return 0;
    }
    for (const auto& [pair, value] : bpe->merges) {
      if (static_cast<uint32_t>(value) == 0xFFFFFFFFu) return 0;  // merges into a non-token
    }
  }
  size_t longest = 0;
  for (int32_t id = 0; id < v.size(); ++id) {
    const absl::string_view text = v.text[id];
    size_t share = text.size();
    if (v.kind == TokenizerKind::kBytePairEncoding) {
      share = 0;  // code points: the bytes that do not continue a UTF-8 sequence
      for (const char c : text) share += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
    }
    longest = std::max({longest, share, v.pieces[id].size()});
  }
  return static_cast<int32_t>(std::min<size_t>(longest, INT32_MAX));
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromGguf(const GgufFile& file,
                                                                const LoadOptions& options) {
  auto tok = std::unique_ptr<Tokenizer>(new Tokenizer());
  ASSIGN_OR_RETURN(std::unique_ptr<tokenizer_internal::Vocab> vocab,
                   tokenizer_internal::LoadVocab(file, options));
  if (vocab->kind == TokenizerKind::kBytePairEncoding) {
    ASSIGN_OR_RETURN(tok->bpe_, tokenizer_internal::LoadBpeModel(file, *vocab));
    ASSIGN_OR_RETURN(tok->pre_tok_, tokenizer_internal::PreTokenizer::Create(vocab->pre_type));
  }
  tok->max_token_bytes_ = MaxTokenBytes(*vocab, tok->bpe_.get());
  tok->vocab_ = std::move(vocab);
  return tok;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(absl::string_view text,
                                                       const EncodeOptions& opts) const {
  const tokenizer_internal::Vocab& v = *vocab_;
  if (v.kind == TokenizerKind::kBytePairEncoding) {
    const size_t bad = FindInvalidUtf8(text);
    if (bad != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "text is not valid UTF-8 at byte ", bad, " of ", text.size(),
          " (byte-level BPE vocabularies need UTF-8 text)"));
    }
  }
  // add_bos = false is llama_tokenize(add_special = false): no EOS either.
  const bool add_bos = opts.add_bos.value_or(v.add_bos);
  const bool add_eos = opts.add_bos.value_or(true) && v.add_eos;
  if (add_bos && v.bos_id < 0) {
    return absl::FailedPreconditionError("BOS requested but the vocabulary has no BOS token");
  }

  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos) out.push_back(v.bos_id);
  const std::vector<tokenizer_internal::Fragment> fragments =
      tokenizer_internal::SplitSpecialTokens(v, text, opts.parse_special);

  // SPM puts a space before text that starts the input or follows a special token.
  bool after_special = true;
  for (const tokenizer_internal::Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    const absl::string_view part = text.substr(f.offset, f.length);
    if (v.kind == TokenizerKind::kSentencePiece) {
      std::string escaped = absl::StrReplaceAll(part, {{" ", "\xE2\x96\x81"}});
      if (v.add_space_prefix && after_special) escaped.insert(0, "\xE2\x96\x81");
      RETURN_IF_ERROR(tokenizer_internal::SpmEncode(v, escaped, &out));
    } else {
      RETURN_IF_ERROR(EncodeBpe(part, &out));
    }
    after_special = false;
  }
  if (add_eos) out.push_back(v.eos_id);
  return out;
}

absl::Status Tokenizer::EncodeBpe(absl::string_view text, std::vector<int32_t>* out) const {
  tokenizer_internal::BpeScratch scratch;
  // word -> (first index in *out, count) of its ids, for repeated short words.
  absl::flat_hash_map<absl::string_view, std::pair<uint32_t, uint32_t>> seen;
  return pre_tok_->Split(text, [&](absl::string_view word) {
    const bool cacheable = word.size() <= kMaxCachedWordBytes;
    if (cacheable) {
      const auto it = seen.find(word);
      if (it != seen.end()) {
        for (uint32_t k = 0; k < it->second.second; ++k) {
          const int32_t id = (*out)[it->second.first + k];
          out->push_back(id);
        }
        return;
      }
    }
    const size_t first = out->size();
    tokenizer_internal::BpeEncodeWord(*vocab_, *bpe_, word, &scratch, out);
    if (cacheable) {
      seen.emplace(word, std::make_pair(static_cast<uint32_t>(first),
                                        static_cast<uint32_t>(out->size() - first)));
    }
  });
}

absl::StatusOr<std::string> Tokenizer::TokenToPiece(int32_t id, bool special) const {
  if (id < 0 || id >= n_vocab()) return IdOutOfRange(id, n_vocab());
  if (!special && (vocab_->attrs[id] & (kAttrControl | kAttrUnknown))) return std::string();
  return std::string(vocab_->pieces[id]);
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids, bool special) const {
  std::string text;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    if (id < 0 || id >= n_vocab()) {
      return absl::InvalidArgumentError(absl::StrCat("ids[", i, "] = ", id,
                                                     " is outside the vocabulary [0, ", n_vocab(),
                                                     ")"));
    }
    if (!special && (vocab_->attrs[id] & (kAttrControl | kAttrUnknown))) continue;
    const absl::string_view piece = vocab_->pieces[id];
    text.append(piece.data(), piece.size());
  }
  return text;
}

int32_t Tokenizer::n_vocab() const { return vocab_->size(); }
int32_t Tokenizer::bos_id() const { return vocab_->bos_id; }
int32_t Tokenizer::eos_id() const { return vocab_->eos_id; }
bool Tokenizer::add_bos() const { return vocab_->add_bos; }
bool Tokenizer::add_eos() const { return vocab_->add_eos; }
bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  return vocab_->end_of_generation.contains(id);
}
TokenizerKind Tokenizer::kind() const { return vocab_->kind; }
const std::string& Tokenizer::pre() const { return vocab_->pre; }
absl::string_view Tokenizer::TokenText(int32_t id) const {
  if (id < 0 || id >= n_vocab()) return absl::string_view();
  return vocab_->text[id];
}

}  // namespace bitparity
