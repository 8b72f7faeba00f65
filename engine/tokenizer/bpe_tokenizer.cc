#include "engine/tokenizer/bpe_tokenizer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_reader.h"
#include "base/gpt2_bytes.h"
#include "base/utf8.h"

namespace bitparity::tokenizer_internal {
namespace {

constexpr char kMergesKey[] = "tokenizer.ggml.merges";
constexpr uint32_t kNoToken = 0xFFFFFFFFu;

uint64_t PairKey(int32_t left, int32_t right) {
  return (uint64_t{static_cast<uint32_t>(left)} << 32) | static_cast<uint32_t>(right);
}

// Lowest rank on top of the heap; equal ranks: smaller left index first.
struct BigramLess {
  bool operator()(const BpeScratch::Bigram& a, const BpeScratch::Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

void AddBigram(const BpeModel& bpe, int32_t left, int32_t right, BpeScratch* s) {
  if (left < 0 || right < 0) return;
  const int32_t left_id = s->symbols[left].id;
  const int32_t right_id = s->symbols[right].id;
  if (left_id < 0 || right_id < 0) return;
  const auto it = bpe.merges.find(PairKey(left_id, right_id));
  if (it == bpe.merges.end()) return;
  s->heap.push_back({static_cast<int32_t>(it->second >> 32), left, right,
                     s->symbols[left].size + s->symbols[right].size});
  std::push_heap(s->heap.begin(), s->heap.end(), BigramLess());
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> LoadBpeModel(const GgufFile& file, const Vocab& vocab) {
  if (!file.HasKey(kMergesKey)) {
    return absl::NotFoundError(
        absl::StrCat(file.path(), ": BPE vocabulary without ", kMergesKey));
  }
  auto merges_or = file.GetStringArray(kMergesKey);
  if (!merges_or.ok()) {
    return absl::DataLossError(absl::StrCat(file.path(), ": ", merges_or.status().message()));
  }
  const absl::Span<const absl::string_view> merges = *merges_or;
  if (merges.size() > static_cast<size_t>(INT32_MAX)) {
    return absl::DataLossError(absl::StrCat(file.path(), ": ", merges.size(), " merges"));
  }

  auto bpe = std::make_unique<BpeModel>();
  bpe->merges.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const absl::string_view m = merges[rank];
    // Split at the first space after the first byte, as llama.cpp does.
    const size_t space = m.size() > 1 ? m.find(' ', 1) : absl::string_view::npos;
    if (space == absl::string_view::npos) {
      return absl::DataLossError(absl::StrCat(file.path(), ": ", kMergesKey, "[", rank, "] = '",
                                              m, "' is not 'left right'"));
    }
    const absl::string_view left = m.substr(0, space);
    const absl::string_view right = m.substr(space + 1);
    const int32_t left_id = vocab.Find(left);
    const int32_t right_id = vocab.Find(right);
    // Symbols are always tokens (or unmergeable), so a merge naming a non-token
    // could never apply in llama.cpp either: the file is inconsistent.
    if (left_id < 0 || right_id < 0) {
      return absl::DataLossError(absl::StrCat(file.path(), ": ", kMergesKey, "[", rank, "] = '",
                                              m, "' names '", left_id < 0 ? left : right,
                                              "', which is not a token"));
    }
    joined.assign(left.data(), left.size());
    joined.append(right.data(), right.size());
    const int32_t merged_id = vocab.Find(joined);
    const uint64_t value = (uint64_t{rank} << 32) |
                           (merged_id < 0 ? kNoToken : static_cast<uint32_t>(merged_id));
    bpe->merges.try_emplace(PairKey(left_id, right_id), value);  // first rank wins
  }

  std::string spelled;
  for (int b = 0; b < 256; ++b) {
    spelled.clear();
    AppendUtf8(Gpt2ByteToCodePoint(static_cast<uint8_t>(b)), &spelled);
    bpe->byte_token[b] = vocab.Find(spelled);
    const char raw = static_cast<char>(b);
    bpe->raw_byte_token[b] = vocab.Find(absl::string_view(&raw, 1));
  }
  return bpe;
}

void BpeEncodeWord(const Vocab& vocab, const BpeModel& bpe, absl::string_view word,
                   BpeScratch* s, std::vector<int32_t>* out) {
  if (vocab.ignore_merges) {
    // LLaMA-3: a pre-token that is a whole token is taken as is, merges or not.
    s->spelled.clear();
    for (const char c : word) AppendUtf8(Gpt2ByteToCodePoint(static_cast<uint8_t>(c)), &s->spelled);
    const int32_t id = vocab.Find(s->spelled);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }

  const int32_t n = static_cast<int32_t>(word.size());
  s->symbols.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    s->symbols[i] = {bpe.byte_token[static_cast<uint8_t>(word[i])], i - 1, i + 1 == n ? -1 : i + 1,
                     static_cast<uint32_t>(i), 1};
  }
  s->heap.clear();
  for (int32_t i = 1; i < n; ++i) AddBigram(bpe, i - 1, i, s);

  while (!s->heap.empty()) {
    std::pop_heap(s->heap.begin(), s->heap.end(), BigramLess());
    const BpeScratch::Bigram b = s->heap.back();
    s->heap.pop_back();
    BpeScratch::Symbol& left = s->symbols[b.left];
    BpeScratch::Symbol& right = s->symbols[b.right];
    // Stale entry: a side has changed since it was queued. Symbols only grow to the
    // right, so unchanged sizes mean unchanged texts (llama.cpp compares the texts).
    if (left.size == 0 || right.size == 0 || left.size + right.size != b.size) continue;
    const uint64_t merge = bpe.merges.find(PairKey(left.id, right.id))->second;
    left.size += right.size;
    left.id = static_cast<int32_t>(static_cast<uint32_t>(merge));
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) s->symbols[right.next].prev = b.left;
    AddBigram(bpe, left.prev, b.left, s);
    AddBigram(bpe, b.left, left.next, s);
  }

  for (int32_t i = n > 0 ? 0 : -1; i != -1; i = s->symbols[i].next) {
    const BpeScratch::Symbol& sym = s->symbols[i];
    if (sym.id >= 0) {
      out->push_back(sym.id);
      continue;
    }
    // Not a token: llama.cpp looks up each byte of the byte-unicode spelling as a
    // one-byte string and keeps the hits.
    for (uint32_t k = sym.start; k < sym.start + sym.size; ++k) {
      s->spelled.clear();
      AppendUtf8(Gpt2ByteToCodePoint(static_cast<uint8_t>(word[k])), &s->spelled);
      for (const char c : s->spelled) {
        const int32_t id = bpe.raw_byte_token[static_cast<uint8_t>(c)];
        if (id >= 0) out->push_back(id);
      }
    }
  }
}

}  // namespace bitparity::tokenizer_internal
