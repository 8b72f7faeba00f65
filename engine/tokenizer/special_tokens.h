// File: engine/tokenizer/special_tokens.h
//
// Splits special-token text out of the input before the tokenizer proper runs, as
// llama.cpp's tokenizer_st_partition does: for each special token in Vocab order
// (longest text first), every occurrence inside the remaining text fragments becomes
// that token's id. CONTROL and UNKNOWN tokens take part only with parse_special;
// USER_DEFINED tokens always do. A token with the LSTRIP (RSTRIP) attribute also
// drops the ASCII whitespace just before (after) each occurrence.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/tokenizer/vocab.h"

namespace bitparity::tokenizer_internal {

struct Fragment {
  int32_t token = -1;  // >= 0: this special token; -1: text [offset, offset + length)
  size_t offset = 0;
  size_t length = 0;
};

// Fragments in text order; text fragments are never empty. Empty text gives none.
std::vector<Fragment> SplitSpecialTokens(const Vocab& vocab, absl::string_view text,
                                         bool parse_special);

}  // namespace bitparity::tokenizer_internal
