// base/metadata_override: llama.cpp's --override-kv spellings, and the type rules.
#include "base/metadata_override.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bitparity {
namespace {

using ::testing::HasSubstr;

TEST(MetadataOverrideTest, ParsesEachType) {
  absl::StatusOr<MetadataOverride> o = ParseMetadataOverride("a.b=int:-7");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->key, "a.b");
  EXPECT_EQ(o->type, OverrideType::kInt);
  EXPECT_EQ(o->int_value, -7);
  o = ParseMetadataOverride("llama.rope.freq_base=float:1e4");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->type, OverrideType::kFloat);
  EXPECT_EQ(o->float_value, 10000.0);
  o = ParseMetadataOverride("x=bool:false");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->type, OverrideType::kBool);
  EXPECT_FALSE(o->bool_value);
  o = ParseMetadataOverride("tokenizer.ggml.pre=str:llama-bpe");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->type, OverrideType::kStr);
  EXPECT_EQ(o->str_value, "llama-bpe");
}

TEST(MetadataOverrideTest, StrValueMayHoldEqualsAndColons) {
  absl::StatusOr<MetadataOverride> o = ParseMetadataOverride("k=str:a=b:c");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->key, "k");
  EXPECT_EQ(o->str_value, "a=b:c");
}

TEST(MetadataOverrideTest, RejectsMalformedSpecs) {
  for (const char* spec : {"noequals", "=int:1", "k=1", "k=long:1", "k=int:abc", "k=int:",
                           "k=int:1.5", "k=float:x", "k=float:inf", "k=bool:yes", "k=bool:1"}) {
    absl::StatusOr<MetadataOverride> o = ParseMetadataOverride(spec);
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << spec;
    EXPECT_THAT(std::string(o.status().message()), HasSubstr(spec));
  }
}

TEST(MetadataOverrideTest, KeyAndStrLimitsAre127Bytes) {
  const std::string k127(127, 'k'), v127(127, 'v');
  EXPECT_TRUE(ParseMetadataOverride(k127 + "=str:" + v127).ok());
  EXPECT_THAT(std::string(ParseMetadataOverride(k127 + "k=int:1").status().message()),
              HasSubstr("key longer than 127"));
  EXPECT_THAT(std::string(ParseMetadataOverride("k=str:" + v127 + "v").status().message()),
              HasSubstr("longer than 127"));
}

TEST(MetadataOverrideTest, FormatRoundTrips) {
  for (const char* spec : {"a=int:-9223372036854775808", "b=float:0.10000000000000001", "c=bool:true",
                           "d=str:", "e=str:llama-bpe"}) {
    absl::StatusOr<MetadataOverride> o = ParseMetadataOverride(spec);
    ASSERT_TRUE(o.ok()) << o.status();
    EXPECT_EQ(FormatMetadataOverride(*o), spec);
    absl::StatusOr<MetadataOverride> again = ParseMetadataOverride(FormatMetadataOverride(*o));
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(*again == *o) << spec;
  }
}

TEST(MetadataOverrideTest, RejectsTheSameKeyTwice) {
  absl::StatusOr<std::vector<MetadataOverride>> o = ParseMetadataOverrides({"a=int:1", "a=int:2"});
  EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("overridden twice"));
}

TEST(MetadataOverrideTest, TypeMustMatchTheKeysGgufType) {
  MetadataOverride f = *ParseMetadataOverride("k=float:1");
  MetadataOverride i = *ParseMetadataOverride("k=int:-1");
  MetadataOverride big = *ParseMetadataOverride("k=int:300");
  EXPECT_TRUE(CheckOverrideFitsKey(f, /*f32=*/6, "m.gguf").ok());
  EXPECT_TRUE(CheckOverrideFitsKey(f, /*f64=*/12, "m.gguf").ok());
  absl::Status s = CheckOverrideFitsKey(f, /*u32=*/4, "m.gguf");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("must be int:, not float:"));
  EXPECT_EQ(CheckOverrideFitsKey(i, /*u32=*/4, "m.gguf").code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(CheckOverrideFitsKey(i, /*i32=*/5, "m.gguf").ok());
  EXPECT_EQ(CheckOverrideFitsKey(big, /*u8=*/0, "m.gguf").code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(CheckOverrideFitsKey(i, /*array=*/9, "m.gguf").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bitparity
