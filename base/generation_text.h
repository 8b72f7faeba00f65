// File: base/generation_text.h
//
// The text rules of token-by-token generation, written once for every engine
// bitparity serves (the native engine's Generate, the bitnet.cpp worker), so that
// two servers that answer differently differ in their tokens, not in how they
// cut text:
//   - a UTF-8 sequence whose lead byte arrived without all its continuation bytes
//     is held back, as llama.cpp's server does (nothing is released while the
//     tail is incomplete);
//   - text that could still become a stop sequence is held back;
//   - a stop sequence ends generation, and the text from it on is dropped;
//   - end-of-generation and stop tokens add no text;
//   - on the last step everything held is released (a partial UTF-8 tail too),
//     except after an end-of-generation or stop token.
//
//   GenerationText text(stop_sequences);
//   GenerationText::Step s = text.Push(piece, /*adds_text=*/true, /*last=*/false);
//   // s.text: bytes to hand out with this token; s.stopped: a stop sequence matched.
//
// Thread safety: one generation, one thread.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace bitparity {

class GenerationText {
 public:
  // Empty stop sequences are ignored.
  explicit GenerationText(std::vector<std::string> stop_sequences);

  struct Step {
    std::string text;      // bytes this token completes (may be empty)
    bool stopped = false;  // a stop sequence appeared; generation ends here
  };

  // One generated token. `piece`: its bytes. `adds_text`: false for an
  // end-of-generation or stop token (then `piece` is ignored and the step is
  // final). `last`: no token follows (length or context reached).
  Step Push(absl::string_view piece, bool adds_text, bool last);

  // Everything handed out so far (stop sequence excluded).
  const std::string& text() const { return text_; }

 private:
  std::vector<std::string> stops_;
  size_t longest_stop_ = 0;
  std::string utf8_held_;  // bytes of an incomplete UTF-8 tail
  std::string pending_;    // complete text not yet handed out (may start a stop)
  std::string text_;
};

// Length of the longest suffix of `text` that is a proper prefix of some stop
// sequence: that much text must be held back, as it may still become a stop.
// Empty stop sequences are ignored.
size_t HeldBackForStops(absl::string_view text, const std::vector<std::string>& stops);

}  // namespace bitparity
