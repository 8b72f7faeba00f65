// GgufFile::ApplyOverrides: the --override-kv overlay every metadata reader sees.
#include <memory>
#include <string>

#include "engine/gguf/gguf_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::unique_ptr<GgufFile> OpenTiny() {
  auto f = GgufFile::Open(FixturePath("models/tiny-b158.gguf"));
  EXPECT_TRUE(f.ok()) << f.status();
  return f.ok() ? std::move(*f) : nullptr;
}

std::vector<MetadataOverride> Parse(std::vector<std::string> specs) {
  auto o = ParseMetadataOverrides(specs);
  EXPECT_TRUE(o.ok()) << o.status();
  return o.ok() ? *o : std::vector<MetadataOverride>{};
}

TEST(GgufOverridesTest, ReplacesValuesKeepingTheKeysType) {
  REQUIRE_FIXTURES();
  std::unique_ptr<GgufFile> f = OpenTiny();
  ASSERT_NE(f, nullptr);
  const GgufValueType rope_type = f->FindKey("bitnet-b1.58.rope.freq_base")->type;
  ASSERT_TRUE(f->ApplyOverrides(Parse({"bitnet-b1.58.rope.freq_base=float:1234.5",
                                       "bitnet-b1.58.context_length=int:77",
                                       "general.name=str:renamed"}))
                  .ok());
  EXPECT_EQ(*f->GetFloat32("bitnet-b1.58.rope.freq_base"), 1234.5f);
  EXPECT_EQ(f->FindKey("bitnet-b1.58.rope.freq_base")->type, rope_type);
  EXPECT_EQ(*f->GetInt64("bitnet-b1.58.context_length"), 77);
  EXPECT_EQ(*f->GetString("general.name"), "renamed");
  EXPECT_EQ(f->overrides().size(), 3u);
}

TEST(GgufOverridesTest, AddsAMissingKey) {
  REQUIRE_FIXTURES();
  std::unique_ptr<GgufFile> f = OpenTiny();
  ASSERT_NE(f, nullptr);
  ASSERT_FALSE(f->HasKey("x.added"));
  ASSERT_TRUE(f->ApplyOverrides(Parse({"x.added=str:v", "x.n=int:5"})).ok());
  EXPECT_EQ(*f->GetString("x.added"), "v");
  EXPECT_EQ(*f->GetUint32("x.n"), 5u);
}

TEST(GgufOverridesTest, RejectsATypeThatDiffersFromTheKeysAndChangesNothing) {
  REQUIRE_FIXTURES();
  std::unique_ptr<GgufFile> f = OpenTiny();
  ASSERT_NE(f, nullptr);
  const std::string name = *f->GetString("general.name");
  EXPECT_THAT(f->ApplyOverrides(Parse({"general.name=str:changed", "general.architecture=int:1"})),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("general.architecture"), HasSubstr("must be str:"),
                             HasSubstr("tiny-b158.gguf"))));
  EXPECT_EQ(*f->GetString("general.name"), name);
  EXPECT_TRUE(f->overrides().empty());
}

TEST(GgufOverridesTest, RejectsArraysAndIntsThatDoNotFit) {
  REQUIRE_FIXTURES();
  std::unique_ptr<GgufFile> f = OpenTiny();
  ASSERT_NE(f, nullptr);
  EXPECT_THAT(f->ApplyOverrides(Parse({"tokenizer.ggml.tokens=str:x"})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot be overridden")));
  EXPECT_THAT(f->ApplyOverrides(Parse({"bitnet-b1.58.block_count=int:-1"})),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("does not fit")));
}

}  // namespace
}  // namespace bitparity
