#include "engine/common/status_macros.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/utf8.h"

namespace bitparity {

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool special)
    : tokenizer_(tokenizer), special_(special) {}

absl::StatusOr<std::string> StreamingDetokenizer::Push(int32_t id) {
  ASSIGN_OR_RETURN(const std::string piece, tokenizer_.TokenToPiece(id, special_));
  pending_ += piece;
  // As llama.cpp's server: while the tail is an unfinished sequence, send nothing.
  if (tokenizer_internal::IncompleteUtf8Tail(pending_) > 0) return std::string();
  std::string ready;
  ready.swap(pending_);
  return ready;
}

std::string StreamingDetokenizer::Flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

}  // namespace bitparity
