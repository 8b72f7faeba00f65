#include "engine/tokenizer/special_tokens.h"

namespace bitparity::tokenizer_internal {

std::vector<Fragment> SplitSpecialTokens(const Vocab& vocab, absl::string_view text,
                                         bool parse_special) {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});

  std::vector<Fragment> next;
  for (const int32_t id : vocab.special_tokens) {
    if (!parse_special && (vocab.attrs[id] & (kAttrControl | kAttrUnknown))) continue;
    const absl::string_view special = vocab.text[id];
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
      for (size_t hit; (hit = body.find(special, pos)) != absl::string_view::npos;
           pos = hit + special.size()) {
        if (hit > pos) next.push_back({-1, f.offset + pos, hit - pos});
        next.push_back({id, 0, 0});
        changed = true;
      }
      if (pos < body.size()) next.push_back({-1, f.offset + pos, body.size() - pos});
    }
    if (changed) fragments.swap(next);
  }
  return fragments;
}

}  // namespace bitparity::tokenizer_internal
