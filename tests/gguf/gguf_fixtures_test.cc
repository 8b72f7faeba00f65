// The shared fixtures (../shared/fixtures): every model and vocab GGUF loads, and
// tiny-b158's metadata and I2_S tensors match golden/tiny-b158/manifest.json and
// the README's description.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::IsOk;

std::vector<std::string> GgufFilesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".gguf") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufFixturesTest, LoadsEveryModelAndVocab) {
  REQUIRE_FIXTURES();
  const std::vector<std::string> models = GgufFilesIn(FixturePath("models"));
  const std::vector<std::string> vocabs = GgufFilesIn(FixturePath("tokenizers"));
  EXPECT_GE(models.size(), 6u);
  EXPECT_GE(vocabs.size(), 3u);
  for (const std::vector<std::string>* list : {&models, &vocabs}) {
    for (const std::string& path : *list) {
      auto f = GgufFile::Open(path);
      ASSERT_THAT(f, IsOk()) << path;
      EXPECT_TRUE((*f)->HasKey("general.architecture")) << path;
      EXPECT_TRUE((*f)->HasKey("tokenizer.ggml.tokens")) << path;
      for (const GgufTensorInfo& t : (*f)->tensors()) {
        EXPECT_LE((*f)->data_offset() + t.offset + t.byte_size, (*f)->file_size()) << path << " " << t.name;
      }
    }
  }
}

TEST(GgufFixturesTest, TinyB158MatchesManifestHyperParameters) {
  REQUIRE_FIXTURES();
  std::ifstream in(FixturePath("golden/tiny-b158/manifest.json"));
  ASSERT_TRUE(in.good());
  const nlohmann::json m = nlohmann::json::parse(in)["model"];
  auto f = GgufFile::Open(FixturePath("models/tiny-b158.gguf"));
  ASSERT_THAT(f, IsOk());
  const GgufFile& g = **f;
  const std::string arch = m["arch"];
  ASSERT_EQ(arch, "bitnet-b1.58");
  EXPECT_EQ(*g.GetString("general.architecture"), arch);
  EXPECT_EQ(*g.GetInt64(arch + ".block_count"), m["n_layer"].get<int64_t>());
  EXPECT_EQ(*g.GetInt64(arch + ".embedding_length"), m["n_embd"].get<int64_t>());
  EXPECT_EQ(*g.GetInt64(arch + ".feed_forward_length"), m["n_ff"].get<int64_t>());
  EXPECT_EQ(*g.GetInt64(arch + ".attention.head_count"), m["n_head"].get<int64_t>());
  EXPECT_EQ(*g.GetInt64(arch + ".attention.head_count_kv"), m["n_head_kv"].get<int64_t>());
  EXPECT_EQ(*g.GetInt64(arch + ".context_length"), m["n_ctx_train"].get<int64_t>());
  EXPECT_FLOAT_EQ(*g.GetFloat32(arch + ".rope.freq_base"), m["rope_freq_base"].get<float>());
  EXPECT_FLOAT_EQ(*g.GetFloat32(arch + ".attention.layer_norm_rms_epsilon"), m["rms_eps"].get<float>());
  EXPECT_EQ(g.GetStringArray("tokenizer.ggml.tokens")->size(), m["n_vocab"].get<size_t>());
  EXPECT_EQ(*g.GetInt64("tokenizer.ggml.bos_token_id"), m["bos"].get<int64_t>());
  EXPECT_EQ(*g.GetInt64("tokenizer.ggml.eos_token_id"), m["eos"].get<int64_t>());
  EXPECT_EQ(*g.GetBool("tokenizer.ggml.add_bos_token"), m["add_bos"].get<bool>());
  EXPECT_EQ(*g.GetUint32("general.file_type"), 40u);
  // 11 tensors per layer + token_embd + output_norm; the head is tied.
  EXPECT_EQ(g.tensors().size(), 11u * 4 + 2);
  EXPECT_EQ(g.FindTensor("output.weight"), nullptr);
  const GgufTensorInfo* embd = g.FindTensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, GgmlType::kF16);
  EXPECT_THAT(embd->ne, ::testing::ElementsAre(256, 50257));
}

TEST(GgufFixturesTest, TinyB158I2sTensorsAreType36WithQuarterSizePlusScale) {
  REQUIRE_FIXTURES();
  auto f = GgufFile::Open(FixturePath("models/tiny-b158.gguf"));
  ASSERT_THAT(f, IsOk());
  int n_i2s = 0;
  for (const GgufTensorInfo& t : (*f)->tensors()) {
    if (t.type != GgmlType::kI2_S) continue;
    ++n_i2s;
    EXPECT_EQ(static_cast<uint32_t>(t.type), 36u) << t.name;
    EXPECT_EQ(t.byte_size, static_cast<uint64_t>(t.num_elements) / 4 + 32) << t.name;
    EXPECT_EQ(t.ne.size(), 2u) << t.name;
  }
  EXPECT_EQ(n_i2s, 7 * 4);
  const GgufTensorInfo* q = (*f)->FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->byte_size, 256u * 256 / 4 + 32);
}

}  // namespace
}  // namespace bitparity
