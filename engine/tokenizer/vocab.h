// File: engine/tokenizer/vocab.h
//
// The vocabulary a Tokenizer is built from: token strings, scores, attributes, the
// special ids and flags llama.cpp derives from the GGUF (llm_load_vocab), and the
// token -> piece cache. Internal to engine/tokenizer; immutable once built.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"

namespace bitparity::tokenizer_internal {

// tokenizer.ggml.token_type values (llama_token_type).
enum TokenType : int32_t {
  kTypeUndefined = 0,
  kTypeNormal = 1,
  kTypeUnknown = 2,
  kTypeControl = 3,
  kTypeUserDefined = 4,
  kTypeUnused = 5,
  kTypeByte = 6,
};

// Token attributes as llama.cpp keeps them (llama_token_attr bits).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0,
  kAttrUnknown = 1u << 0,
  kAttrUnused = 1u << 1,
  kAttrNormal = 1u << 2,
  kAttrControl = 1u << 3,
  kAttrUserDefined = 1u << 4,
  kAttrByte = 1u << 5,
  kAttrLstrip = 1u << 7,  // special-token split eats ASCII whitespace on its left
  kAttrRstrip = 1u << 8,  // ... and on its right
};

// Strings stored back to back; string i is [offsets[i], offsets[i+1]).
class StringTable {
 public:
  void Reserve(size_t count, size_t bytes) {
    offsets_.reserve(count + 1);
    data_.reserve(bytes);
  }
  void Add(absl::string_view s) {
    data_.append(s.data(), s.size());
    offsets_.push_back(static_cast<uint32_t>(data_.size()));
  }
  absl::string_view operator[](size_t i) const {
    return absl::string_view(data_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
  }
  size_t size() const { return offsets_.size() - 1; }
  size_t bytes() const { return data_.size(); }

 private:
  std::string data_;
  std::vector<uint32_t> offsets_ = {0};
};

struct Vocab {
  TokenizerKind kind = TokenizerKind::kSentencePiece;
  std::string pre;  // tokenizer.ggml.pre ("default" if absent, or the override); "" for SPM
  PreTokenizerType pre_type = PreTokenizerType::kDefault;  // BPE only

  StringTable text;                 // raw vocabulary strings, by id
  std::vector<float> scores;        // 0 when the GGUF has no scores
  std::vector<uint32_t> attrs;      // TokenAttr bits
  StringTable pieces;               // llama_token_to_piece(id, special=true), by id
  // Keys view into `text`, which never changes after loading.
  absl::flat_hash_map<absl::string_view, int32_t> token_to_id;

  int32_t bos_id = -1, eos_id = -1, unk_id = -1, eot_id = -1, eom_id = -1;
  int32_t sep_id = -1, pad_id = -1, cls_id = -1, mask_id = -1;
  int32_t fim_pre_id = -1, fim_suf_id = -1, fim_mid_id = -1;
  int32_t fim_pad_id = -1, fim_rep_id = -1, fim_sep_id = -1;

  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;  // SPM: prepend " " to text after BOS/special tokens
  bool ignore_merges = false;     // BPE: a pre-token that is itself a token skips merging
  // SPM: no token has U+2581 after anything but U+2581, so no merge can cross the
  // start of a "▁word" and such words can be tokenized one by one (same result).
  bool spm_words_independent = false;

  // CONTROL, USER_DEFINED and UNKNOWN ids, longest text first: the order in which
  // special-token text is split out of the input (tokenizer_st_partition).
  std::vector<int32_t> special_tokens;
  absl::flat_hash_set<int32_t> end_of_generation;

  // SPM byte fallback: the id of "<0xNN>", else of the one-byte string; -1 if neither.
  std::array<int32_t, 256> byte_fallback{};

  int32_t size() const { return static_cast<int32_t>(attrs.size()); }
  int32_t Find(absl::string_view s) const {
    auto it = token_to_id.find(s);
    return it == token_to_id.end() ? -1 : it->second;
  }
};

// Reads every tokenizer.ggml.* key except the merges (see Tokenizer::FromGguf for
// the errors and `options`). Heap-allocated because token_to_id views into `text`.
absl::StatusOr<std::unique_ptr<Vocab>> LoadVocab(const GgufFile& file,
                                                 const Tokenizer::LoadOptions& options = {});

}  // namespace bitparity::tokenizer_internal
