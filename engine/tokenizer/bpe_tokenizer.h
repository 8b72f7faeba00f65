// File: engine/tokenizer/bpe_tokenizer.h
//
// Byte-level BPE (tokenizer.ggml.model = "gpt2") after pre-tokenization: the word's
// bytes start as one symbol each (the token spelling Gpt2ByteSpelling(byte)); the
// neighbouring pair with the lowest merge rank is merged until no pair has a rank
// (ties: leftmost pair first), as llama.cpp's llm_tokenizer_bpe_session does.
// Merges are keyed by token ids, so the table is two integers per merge.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/vocab.h"

namespace bitparity {
class GgufFile;
}

namespace bitparity::tokenizer_internal {

struct BpeModel {
  // (left id << 32 | right id) -> (rank << 32 | merged id, or 0xFFFFFFFF when the
  // concatenation is not a token; such a symbol can take part in no further merge).
  absl::flat_hash_map<uint64_t, uint64_t> merges;
  // Id of the token spelling byte b in GPT-2 byte-unicode; -1 if the vocab lacks it.
  std::array<int32_t, 256> byte_token{};
  // Id of the one-byte string b: llama.cpp's last resort for a symbol that is not a
  // token (it emits these for each byte of the symbol's byte-unicode text).
  std::array<int32_t, 256> raw_byte_token{};
};

// Reads tokenizer.ggml.merges ("left right", rank = index). NotFound if absent;
// DataLoss for an entry without a space or whose sides are not tokens. A repeated
// pair keeps its first (lowest) rank, as llama.cpp does.
absl::StatusOr<std::unique_ptr<BpeModel>> LoadBpeModel(const GgufFile& file, const Vocab& vocab);

// Reusable buffers for BpeEncodeWord (one per Encode call).
struct BpeScratch {
  struct Symbol {
    int32_t id;  // -1: not a token
    int32_t prev;
    int32_t next;
    uint32_t start;
    uint32_t size;  // bytes of the word; 0 once merged away
  };
  struct Bigram {  // 16 bytes: a 10 MB one-word input queues up to ~3e7 of these
    int32_t rank;
    int32_t left;
    int32_t right;
    uint32_t size;  // bytes of left + right when queued
  };
  std::vector<Symbol> symbols;
  std::vector<Bigram> heap;
  std::string spelled;  // the word in byte-unicode (ignore_merges lookup)
};

// Appends the ids of one pre-tokenized word (raw bytes, non-empty).
void BpeEncodeWord(const Vocab& vocab, const BpeModel& bpe, absl::string_view word,
                   BpeScratch* scratch, std::vector<int32_t>* out);

}  // namespace bitparity::tokenizer_internal
