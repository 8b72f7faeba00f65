// File: engine/tokenizer/spm_tokenizer.h
//
// llama.cpp's SentencePiece (SPM) tokenizer for one text fragment: split into UTF-8
// characters (by lead byte, so invalid UTF-8 is just bytes), then repeatedly merge
// the neighbouring pair whose concatenation is the vocabulary token with the highest
// score (ties: leftmost pair first). Symbols that are not tokens fall back to byte
// tokens <0xNN>, else to the unknown token.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/tokenizer/vocab.h"

namespace bitparity::tokenizer_internal {

// `escaped` is the fragment after llama.cpp's preprocessing: the optional leading
// space added and every ' ' replaced by U+2581. Appends its ids to *out.
// FailedPrecondition if a byte has neither a byte token nor an unknown token.
absl::Status SpmEncode(const Vocab& vocab, absl::string_view escaped, std::vector<int32_t>* out);

}  // namespace bitparity::tokenizer_internal
