#include "engine/tokenizer/special_tokens.h"

namespace bitparity::tokenizer_internal {
namespace {

// C isspace() in the "C" locale, which llama.cpp's LSTRIP/RSTRIP use.
bool IsAsciiSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

}  // namespace

std::vector<Fragment> SplitSpecialTokens(const Vocab& vocab, absl::string_view text,
                                         bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});

  std::vector<Fragment> next;
  for (const int32_t id : vocab.special_tokens) {
    if (!parse_special && (vocab.attrs[id] & (kAttrControl | kAttrUnknown))) continue;
    const absl::string_view special = vocab.text[id];
    const bool lstrip = (vocab.attrs[id] & kAttrLstrip) != 0;
    const bool rstrip = (vocab.attrs[id] & kAttrRstrip) != 0;
    if (special.empty()) continue;  // cannot happen: empty tokens are renamed at load
    // Occurrences are found left to right without overlap, in each text fragment
    // separately; earlier (longer) special tokens have already been cut out.
    next.clear();
    bool changed = false;
    for (const Fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      const absl::string_view body = text.substr(f.offset, f.length);
      size_t pos = 0;
      for (size_t hit; (hit = body.find(special, pos)) != absl::string_view::npos;) {
        size_t left_end = hit;
        if (lstrip) {
          while (left_end > pos && IsAsciiSpace(body[left_end - 1])) --left_end;
        }
        if (left_end > pos) next.push_back({-1, f.offset + pos, left_end - pos});
        next.push_back({id, 0, 0});
        changed = true;
        pos = hit + special.size();
        if (rstrip) {
          while (pos < body.size() && IsAsciiSpace(body[pos])) ++pos;
        }
      }
      if (pos < body.size()) next.push_back({-1, f.offset + pos, body.size() - pos});
    }
    if (changed) fragments.swap(next);
  }
  return fragments;
}

}  // namespace bitparity::tokenizer_internal
