#include "engine/tokenizer/spm_tokenizer.h"

#include <queue>

#include "absl/container/flat_hash_map.h"
#include "base/status_macros.h"

#include "absl/strings/str_format.h"
#include "base/utf8.h"

namespace bitparity::tokenizer_internal {
namespace {

// Words up to this length are memoised within one call (see SpmEncode).
constexpr size_t kMaxCachedWordBytes = 48;

struct Symbol {
  int32_t prev;
  int32_t next;  // -1 at the end of the chain
  uint32_t start;
  uint32_t size;  // bytes; 0 once merged into the symbol on its left
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;  // bytes of left + right when queued
};

// Highest score on top; equal scores: smaller left index first.
struct SpmBigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
 public:
  SpmSession(const Vocab& vocab, absl::string_view text) : vocab_(vocab), text_(text) {}

  absl::Status Encode(std::vector<int32_t>* out) {
    const size_t n = text_.size();
    symbols_.reserve(n);
    for (size_t offs = 0; offs < n;) {
      const size_t len = std::min(Utf8LeadLength(static_cast<uint8_t>(text_[offs])), n - offs);
      const int32_t index = static_cast<int32_t>(symbols_.size());
      offs += len;
      symbols_.push_back({index - 1, offs == n ? -1 : index + 1, static_cast<uint32_t>(offs - len),
                          static_cast<uint32_t>(len)});
    }
    for (size_t i = 1; i < symbols_.size(); ++i) TryAddBigram(i - 1, i);

    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[bigram.left];
      Symbol& right = symbols_[bigram.right];
      // Stale entry: one side has been merged since it was queued.
      if (left.size == 0 || right.size == 0 || left.size + right.size != bigram.size) continue;
      left.size += right.size;
      right.size = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      TryAddBigram(left.prev, bigram.left);
      TryAddBigram(bigram.left, left.next);
    }

    for (int32_t i = symbols_.empty() ? -1 : 0; i != -1; i = symbols_[i].next) {
      const Symbol& s = symbols_[i];
      const absl::string_view piece = text_.substr(s.start, s.size);
      const int32_t id = vocab_.Find(piece);
      if (id >= 0) {
        out->push_back(id);
        continue;
      }
      // Only single characters can miss the vocabulary (merges always form tokens),
      // so llama.cpp's resegment() reduces to byte fallback.
      for (const char c : piece) {
        const uint8_t byte = static_cast<uint8_t>(c);
        int32_t byte_id = vocab_.byte_fallback[byte];
        if (byte_id < 0) byte_id = vocab_.unk_id;  // llama.cpp would throw here
        if (byte_id < 0) {
          return absl::FailedPreconditionError(absl::StrFormat(
              "SPM vocabulary has no token for byte 0x%02X (no <0x%02X>, no unknown token)",
              byte, byte));
        }
        out->push_back(byte_id);
      }
    }
    return absl::OkStatus();
  }

 private:
  void TryAddBigram(int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = symbols_[left];
    const uint32_t size = l.size + symbols_[right].size;
    const int32_t id = vocab_.Find(text_.substr(l.start, size));
    if (id < 0) return;
    queue_.push({vocab_.scores[id], left, right, size});
  }

  const Vocab& vocab_;
  absl::string_view text_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, SpmBigramLess> queue_;
};

}  // namespace

absl::Status SpmEncode(const Vocab& vocab, absl::string_view escaped, std::vector<int32_t>* out) {
  if (!vocab.spm_words_independent) return SpmSession(vocab, escaped).Encode(out);
  // Cut before each "▁" that follows something other than "▁" (byte-wise, at symbol
  // starts): no vocabulary token spans such a cut, and the merge order inside each
  // piece is unchanged, so the result equals one session over the whole text while
  // the queues stay small and repeated words are looked up instead of re-merged.
  constexpr absl::string_view kSpace = "\xE2\x96\x81";
  absl::flat_hash_map<absl::string_view, std::pair<uint32_t, uint32_t>> seen;
  auto encode_word = [&](absl::string_view word) -> absl::Status {
    const bool cacheable = word.size() <= kMaxCachedWordBytes;
    if (cacheable) {
      const auto it = seen.find(word);
      if (it != seen.end()) {
        for (uint32_t k = 0; k < it->second.second; ++k) {
          const int32_t id = (*out)[it->second.first + k];
          out->push_back(id);
        }
        return absl::OkStatus();
      }
    }
    const size_t first = out->size();
    RETURN_IF_ERROR(SpmSession(vocab, word).Encode(out));
    if (cacheable) {
      seen.emplace(word, std::make_pair(static_cast<uint32_t>(first),
                                        static_cast<uint32_t>(out->size() - first)));
    }
    return absl::OkStatus();
  };
  size_t word_start = 0;
  for (size_t pos = 0; pos < escaped.size();) {
    if (pos > word_start && escaped.substr(pos, 3) == kSpace &&
        (pos < 3 || escaped.substr(pos - 3, 3) != kSpace)) {
      RETURN_IF_ERROR(encode_word(escaped.substr(word_start, pos - word_start)));
      word_start = pos;
    }
    pos += Utf8LeadLength(static_cast<uint8_t>(escaped[pos]));
  }
  if (word_start < escaped.size()) RETURN_IF_ERROR(encode_word(escaped.substr(word_start)));
  return absl::OkStatus();
}

}  // namespace bitparity::tokenizer_internal
