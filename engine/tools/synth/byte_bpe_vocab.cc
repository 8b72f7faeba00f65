#include "engine/tools/synth/byte_bpe_vocab.h"

#include <algorithm>
#include <limits>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/gpt2_bytes.h"

namespace bitparity::synth {
namespace {

constexpr int32_t kTypeNormal = 1;
constexpr int32_t kTypeControl = 3;

// The most common English words, most frequent first (weights follow Zipf's law).
constexpr const char kWords[] =
    "the of and to a in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there one all we their been has would when if "
    "will more no out so said what up its about into than them can only other new some "
    "could time these two may then do first any my now such like our over man me even most "
    "made after also did many before must through back years where much your way well down "
    "should because each just those people how too little state good very make world still "
    "own see men work long get here between both life being under never day same another "
    "know while last might us great old year off come since against go came right used take "
    "three states himself few house use during without again place american around however "
    "home small found thought went say part once general high upon school every does got "
    "united left number course war until always away something fact though water less "
    "public put think almost hand enough far took head yet government system better set "
    "told nothing night end why called didn eyes find going look asked later knew point "
    "next program city business give group toward young days let room president side social "
    "given present several order national possible rather second face per among form "
    "important often things looked early white case john become large big need four within "
    "felt along children saw best church ever least power development light thing seemed "
    "family interest want members mind country area others done turned although open god "
    "service certain kind problem began different door thus help sense means whole matter "
    "perhaps itself york times law human line above name example action company hands local "
    "show whether five history gave today either act feet across taken past quite anything "
    "seen having death week experience body word half really field am car words already "
    "themselves information tell together college shall money period held keep sure free "
    "seems real behind cannot miss political air question making office brought whose "
    "special major heard problems ago became federal moment study available known result "
    "street economic boy position reason change south board individual job society areas "
    "west close turn love community true court force full seem wife future age wanted "
    "department voice center woman control common necessary policy following front sometimes "
    "six girl clear further land run students provide feel party able mother music education "
    "university child effect level stood military town short morning total outside rate "
    "figure class art century washington north usually leave therefore evidence percent "
    "black strong believe play surface mean data model story language code number token";

// Letters by English frequency, for the filler merges.
constexpr const char kLetters[] = "etaoinshrdlcumwfgypbvkjxqz";

struct Pair {
  int a;
  int b;
  bool operator==(const Pair& o) const { return a == o.a && b == o.b; }
  template <typename H>
  friend H AbslHashValue(H h, const Pair& p) {
    return H::combine(std::move(h), p.a, p.b);
  }
};

struct TrainingWord {
  std::vector<int> symbols;  // token ids
  int64_t weight;
};

class Builder {
 public:
  explicit Builder(int64_t target) : target_(target) {
    // GPT-2's bytes_to_unicode order: the printable bytes first, then the rest.
    std::vector<int> order;
    for (int b = '!'; b <= '~'; ++b) order.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) order.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) order.push_back(b);
    std::vector<bool> seen(256, false);
    for (int b : order) seen[b] = true;
    for (int b = 0; b < 256; ++b) {
      if (!seen[b]) order.push_back(b);
    }
    for (int b : order) {
      byte_token_[b] = static_cast<int>(vocab_.tokens.size());
      AddToken(Gpt2ByteSpelling(static_cast<uint8_t>(b)));
    }
  }

  bool Full() const { return static_cast<int64_t>(vocab_.tokens.size()) >= target_ - 1; }

  // BPE training over the embedded word list.
  void Train() {
    std::vector<TrainingWord> words;
    std::vector<absl::string_view> list = absl::StrSplit(kWords, ' ', absl::SkipEmpty());
    for (size_t rank = 0; rank < list.size(); ++rank) {
      const int64_t w = std::max<int64_t>(1, 4000 / static_cast<int64_t>(rank + 1));
      std::string cap(list[rank]);
      cap[0] = absl::ascii_toupper(cap[0]);
      AddWord(&words, absl::StrCat(" ", list[rank]), w);
      AddWord(&words, std::string(list[rank]), std::max<int64_t>(1, w / 4));
      AddWord(&words, absl::StrCat(" ", cap), std::max<int64_t>(1, w / 4));
    }
    while (!Full()) {
      absl::flat_hash_map<Pair, int64_t> counts;
      for (const TrainingWord& w : words) {
        for (size_t i = 0; i + 1 < w.symbols.size(); ++i) counts[{w.symbols[i], w.symbols[i + 1]}] += w.weight;
      }
      if (counts.empty()) return;
      // Highest count; ties go to the smallest (left, right) strings so the result
      // does not depend on hash order.
      const std::pair<const Pair, int64_t>* best = nullptr;
      for (const auto& kv : counts) {
        if (best == nullptr || kv.second > best->second ||
            (kv.second == best->second && Less(kv.first, best->first))) {
          best = &kv;
        }
      }
      const Pair p = best->first;
      const int merged = AddMerge(p.a, p.b);
      for (TrainingWord& w : words) {
        std::vector<int> out;
        out.reserve(w.symbols.size());
        for (size_t i = 0; i < w.symbols.size(); ++i) {
          if (i + 1 < w.symbols.size() && w.symbols[i] == p.a && w.symbols[i + 1] == p.b) {
            out.push_back(merged);
            ++i;
          } else {
            out.push_back(w.symbols[i]);
          }
        }
        w.symbols = std::move(out);
      }
    }
  }

  // Filler merges: "<token> <letter>" for tokens in id order.
  void Fill() {
    for (size_t i = 0; !Full(); ++i) {
      for (const char* l = kLetters; *l != '\0' && !Full(); ++l) {
        const int right = byte_token_[static_cast<unsigned char>(*l)];
        if (index_.contains(vocab_.tokens[i] + vocab_.tokens[right])) continue;
        AddMerge(static_cast<int>(i), right);
      }
    }
  }

  ByteBpeVocab Finish() {
    vocab_.eot_id = static_cast<int32_t>(vocab_.tokens.size());
    vocab_.tokens.push_back(kByteBpeEndOfText);
    vocab_.token_types.push_back(kTypeControl);
    return std::move(vocab_);
  }

 private:
  void AddWord(std::vector<TrainingWord>* words, const std::string& raw, int64_t weight) {
    TrainingWord w{{}, weight};
    for (unsigned char c : raw) w.symbols.push_back(byte_token_[c]);
    words->push_back(std::move(w));
  }

  bool Less(const Pair& x, const Pair& y) const {
    const auto& t = vocab_.tokens;
    return std::tie(t[x.a], t[x.b]) < std::tie(t[y.a], t[y.b]);
  }

  int AddToken(std::string s) {
    auto [it, inserted] = index_.emplace(s, static_cast<int>(vocab_.tokens.size()));
    if (inserted) {
      vocab_.tokens.push_back(std::move(s));
      vocab_.token_types.push_back(kTypeNormal);
    }
    return it->second;
  }

  // Records "a b" and returns the id of "ab" (new unless another merge made it).
  int AddMerge(int a, int b) {
    vocab_.merges.push_back(absl::StrCat(vocab_.tokens[a], " ", vocab_.tokens[b]));
    return AddToken(vocab_.tokens[a] + vocab_.tokens[b]);
  }

  int64_t target_;
  ByteBpeVocab vocab_;
  absl::flat_hash_map<std::string, int> index_;
  int byte_token_[256] = {};
};

}  // namespace

absl::StatusOr<ByteBpeVocab> BuildByteBpeVocab(int64_t n_vocab) {
  if (n_vocab < kMinByteBpeVocab || n_vocab > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("built-in vocabulary size ", n_vocab,
                                                   " is out of range: need at least ",
                                                   kMinByteBpeVocab,
                                                   " (256 byte tokens + <|endoftext|>)"));
  }
  Builder b(n_vocab);
  b.Train();
  b.Fill();
  return b.Finish();
}

}  // namespace bitparity::synth
