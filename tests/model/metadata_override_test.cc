// ModelOptions::metadata_overrides: an override reaches every metadata reader
// (tokenizer and model config), and TL1 / TL2 files are refused by name.
#include <memory>
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "engine/model/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_rewrite.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& model, std::vector<std::string> specs) {
  ModelOptions o;
  o.threads = 1;
  o.weight_memory = WeightMemory::kMmap;
  auto parsed = ParseMetadataOverrides(specs);
  if (!parsed.ok()) return parsed.status();
  o.metadata_overrides = *parsed;
  return Model::Load(FixturePath("models/" + model + ".gguf"), o);
}

std::vector<int32_t> Encode(const Model& m, const std::string& text) {
  auto ids = m.tokenizer()->Encode(text, {});
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

std::vector<float> LastLogits(const Model& m, const std::vector<int32_t>& ids) {
  Session s(m, 64);
  std::vector<float> last;
  absl::Status st = s.Eval(ids, EvalMode::kBatch, LogitRows::All(), [&](int, absl::Span<const float> row) {
    last.assign(row.begin(), row.end());
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st;
  return last;
}

TEST(MetadataOverrideModelTest, PreTokenizerOverrideChangesTokenization) {
  REQUIRE_FIXTURES();
  // tiny-b158-l3 has tokenizer.ggml.pre = llama-bpe, which keeps "'s" whole; the
  // 'default' pre-tokenizer splits it.
  const std::string text = "Hello world's 12345 tokens";
  auto base = Load("tiny-b158-l3", {});
  auto llama = Load("tiny-b158-l3", {"tokenizer.ggml.pre=str:llama-bpe"});
  auto deflt = Load("tiny-b158-l3", {"tokenizer.ggml.pre=str:default"});
  ASSERT_TRUE(base.ok() && llama.ok() && deflt.ok());
  EXPECT_EQ((*deflt)->tokenizer()->pre(), "default");
  EXPECT_EQ(Encode(**base, text), Encode(**llama, text));
  EXPECT_NE(Encode(**base, text), Encode(**deflt, text));
  EXPECT_EQ(Encode(**deflt, text).size(), Encode(**base, text).size() + 1);
}

TEST(MetadataOverrideModelTest, RopeFreqBaseOverrideChangesLogits) {
  REQUIRE_FIXTURES();
  auto base = Load("tiny-b158", {});
  auto same = Load("tiny-b158", {"bitnet-b1.58.rope.freq_base=float:10000"});
  auto other = Load("tiny-b158", {"bitnet-b1.58.rope.freq_base=float:100"});
  ASSERT_TRUE(base.ok() && same.ok() && other.ok());
  EXPECT_EQ((*other)->config().rope_theta, 100.0f);
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6};
  const std::vector<float> a = LastLogits(**base, ids);
  if ((*base)->config().rope_theta == 10000.0f) {
    EXPECT_EQ(a, LastLogits(**same, ids));
  }
  EXPECT_NE(a, LastLogits(**other, ids));
}

TEST(MetadataOverrideModelTest, RmsEpsOverrideChangesLogits) {
  REQUIRE_FIXTURES();
  auto base = Load("tiny-b158", {});
  auto other = Load("tiny-b158", {"bitnet-b1.58.attention.layer_norm_rms_epsilon=float:0.5"});
  ASSERT_TRUE(base.ok() && other.ok());
  const std::vector<int32_t> ids = {7, 8, 9};
  EXPECT_NE(LastLogits(**base, ids), LastLogits(**other, ids));
}

TEST(MetadataOverrideModelTest, MistypedOverrideFailsTheLoad) {
  REQUIRE_FIXTURES();
  EXPECT_THAT(Load("tiny-b158", {"bitnet-b1.58.rope.freq_base=int:100"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must be float:")));
}

TEST(MetadataOverrideModelTest, RefusesTl1FilesByName) {
  REQUIRE_FIXTURES();
  ::bitparity::testing::GgufEdits e;
  e.tensor = [](const std::string& name, GgmlType* type, std::vector<int64_t>*) {
    if (name == "blk.0.ffn_up.weight") *type = GgmlType::kTL1;
  };
  const std::string path = ::testing::TempDir() + "/metadata_override_tl1.gguf";
  ASSERT_TRUE(::bitparity::testing::RewriteGguf(FixturePath("models/tiny-b158.gguf"), path, e).ok());
  EXPECT_THAT(Model::Load(path, {}),
              StatusIs(absl::StatusCode::kUnimplemented,
                       AllOf(HasSubstr("blk.0.ffn_up.weight"), HasSubstr("TL1"), HasSubstr("I2_S"))));
}

}  // namespace
}  // namespace bitparity
