// The built-in byte-level BPE vocabulary of bitnet-synth: GPT-2's byte alphabet,
// consistent merges, exact size, and it actually tokenizes text.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_split.h"
#include "base/gpt2_bytes.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/tools/synth/byte_bpe_vocab.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity::synth {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::HasSubstr;

// Plain BPE (lowest-rank pair first) over one pre-tokenized word, as llama.cpp's
// llm_tokenizer_bpe does; returns token ids.
std::vector<int> Encode(const ByteBpeVocab& v, const std::string& word) {
  absl::flat_hash_map<std::string, int> id;
  for (size_t i = 0; i < v.tokens.size(); ++i) id[v.tokens[i]] = static_cast<int>(i);
  absl::flat_hash_map<std::string, int> rank;
  for (size_t i = 0; i < v.merges.size(); ++i) rank[v.merges[i]] = static_cast<int>(i);
  std::vector<std::string> sym;
  for (unsigned char c : word) sym.push_back(Gpt2ByteSpelling(c));
  while (sym.size() > 1) {
    int best = -1, best_rank = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      auto it = rank.find(sym[i] + " " + sym[i + 1]);
      if (it != rank.end() && (best < 0 || it->second < best_rank)) {
        best = static_cast<int>(i);
        best_rank = it->second;
      }
    }
    if (best < 0) break;
    sym[best] += sym[best + 1];
    sym.erase(sym.begin() + best + 1);
  }
  std::vector<int> ids;
  for (const std::string& s : sym) ids.push_back(id.at(s));
  return ids;
}

TEST(SynthVocabTest, ByteTokensMatchGpt2Vocabulary) {
  REQUIRE_FIXTURES();
  auto gpt2 = GgufFile::Open(FixturePath("tokenizers/ggml-vocab-gpt-2.gguf"));
  ASSERT_THAT(gpt2, IsOk());
  auto theirs = (*gpt2)->GetStringArray("tokenizer.ggml.tokens");
  ASSERT_THAT(theirs, IsOk());
  auto ours = BuildByteBpeVocab(300);
  ASSERT_THAT(ours, IsOk());
  for (int i = 0; i < 256; ++i) EXPECT_EQ(ours->tokens[i], (*theirs)[i]) << "id " << i;
}

TEST(SynthVocabTest, HasExactSizeWithEndOfTextLast) {
  for (int64_t n : {257, 258, 1000, 4096, 20000}) {
    auto v = BuildByteBpeVocab(n);
    ASSERT_THAT(v, IsOk());
    ASSERT_EQ(static_cast<int64_t>(v->tokens.size()), n);
    ASSERT_EQ(v->token_types.size(), v->tokens.size());
    EXPECT_EQ(v->eot_id, n - 1);
    EXPECT_EQ(v->tokens.back(), "<|endoftext|>");
    EXPECT_EQ(v->token_types.back(), 3);
    EXPECT_EQ(std::count(v->token_types.begin(), v->token_types.end(), 1), n - 1);
  }
}

TEST(SynthVocabTest, MergesAreConsistentAndTokensUnique) {
  auto v = BuildByteBpeVocab(20000);  // reaches the filler merges
  ASSERT_THAT(v, IsOk());
  absl::flat_hash_map<std::string, int> id;
  for (size_t i = 0; i < v->tokens.size(); ++i) {
    EXPECT_TRUE(id.emplace(v->tokens[i], static_cast<int>(i)).second) << "duplicate " << v->tokens[i];
    EXPECT_EQ(v->tokens[i].find(' '), std::string::npos) << "id " << i;
  }
  ASSERT_EQ(v->merges.size(), v->tokens.size() - 257);
  for (size_t r = 0; r < v->merges.size(); ++r) {
    std::vector<std::string> parts = absl::StrSplit(v->merges[r], ' ');
    ASSERT_EQ(parts.size(), 2u) << v->merges[r];
    ASSERT_TRUE(id.contains(parts[0]) && id.contains(parts[1])) << v->merges[r];
    auto result = id.find(parts[0] + parts[1]);
    ASSERT_NE(result, id.end()) << v->merges[r];
    // Both parts exist before the merge that uses them.
    EXPECT_LT(id[parts[0]], result->second) << v->merges[r];
    EXPECT_LT(id[parts[1]], result->second) << v->merges[r];
  }
}

TEST(SynthVocabTest, TokenizesCommonWordsAsSingleTokensAndAnyBytesLosslessly) {
  auto v = BuildByteBpeVocab(4096);
  ASSERT_THAT(v, IsOk());
  for (const char* w : {" the", " and", " of", " people", "the", " The"}) {
    EXPECT_EQ(Encode(*v, w).size(), 1u) << "'" << w << "'";
  }
  const std::string odd = std::string(" zq\x01\xff\xe2\x82\xac", 8);
  std::string round;
  for (int t : Encode(*v, odd)) round += v->tokens[t];
  std::string expect;
  for (unsigned char c : odd) expect += Gpt2ByteSpelling(c);
  EXPECT_EQ(round, expect);
}

TEST(SynthVocabTest, IsDeterministic) {
  auto a = BuildByteBpeVocab(5000);
  auto b = BuildByteBpeVocab(5000);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->tokens, b->tokens);
  EXPECT_EQ(a->merges, b->merges);
}

TEST(SynthVocabTest, RejectsTooSmallVocabulary) {
  EXPECT_THAT(BuildByteBpeVocab(256), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("at least 257")));
}

}  // namespace
}  // namespace bitparity::synth
