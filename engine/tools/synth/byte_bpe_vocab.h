// File: engine/tools/synth/byte_bpe_vocab.h
//
// bitnet-synth's built-in tokenizer: a small but real byte-level BPE vocabulary in
// the GPT-2 style (tokenizer.ggml.model "gpt2", pre-tokenizer "default"), built
// deterministically with no data files:
//   ids 0..255       the 256 byte tokens, GPT-2's bytes_to_unicode() characters in
//                    GPT-2's order ("!" is 0, "Ā" = byte 0x00 is 188, "Ġ" = space);
//   ids 256..n-2     merges, in rank order: first BPE trained on an embedded list of
//                    common English words (Zipf-weighted, as " word", "word" and
//                    " Word"; ties broken by the lexicographically smallest pair);
//                    when those are exhausted, filler merges that append the most
//                    frequent English letters to existing tokens ("<token> e", ...),
//                    in token-id order, until the size is reached;
//   id n-1           "<|endoftext|>" (token type CONTROL), both BOS and EOS.
// Every merge "a b" has a and b as earlier tokens and "ab" as a token, so the
// vocabulary tokenizes any text (bytes are always reachable).
//
// Thread safety: pure function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace bitparity::synth {

struct ByteBpeVocab {
  std::vector<std::string> tokens;   // tokenizer.ggml.tokens
  std::vector<int32_t> token_types;  // tokenizer.ggml.token_type: 1 NORMAL, 3 CONTROL
  std::vector<std::string> merges;   // tokenizer.ggml.merges, "left right" in rank order
  int32_t eot_id = 0;                // <|endoftext|>: bos and eos
};

constexpr int64_t kMinByteBpeVocab = 257;  // 256 bytes + <|endoftext|>
constexpr const char kByteBpeEndOfText[] = "<|endoftext|>";

// InvalidArgument if n_vocab < 257 or too large for int32 token ids.
absl::StatusOr<ByteBpeVocab> BuildByteBpeVocab(int64_t n_vocab);

}  // namespace bitparity::synth
