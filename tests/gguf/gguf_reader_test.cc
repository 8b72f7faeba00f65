// Reader tests: one hand-built file per defect, each asserting the status code
// and the part of the message that names the problem; then the typed getters.
// To add a case: start from ValidFile() or a GgufBytes chain, introduce exactly
// one defect, and assert StatusIs(code, HasSubstr(...)).
#include <cstdint>
#include <limits>
#include <string>

#include "engine/gguf/gguf_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity {
namespace {

using ::bitparity::testing::GgufBytes;
using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr uint32_t kF32 = 0;
constexpr uint32_t kQ8_0 = 8;
constexpr uint32_t kI2S = 36;
constexpr uint64_t kHuge = uint64_t{1} << 60;

absl::StatusOr<std::unique_ptr<GgufFile>> Parse(const GgufBytes& b) {
  return GgufFile::FromBytes(b.str(), "test.gguf");
}

// A well-formed file: one key, two F32 tensors of 4 floats (16 bytes each).
GgufBytes ValidFile() {
  GgufBytes b;
  b.Header(2, 1).KvStr("general.architecture", "test");
  b.TensorInfo("a", {4}, kF32, 0).TensorInfo("b", {2, 2}, kF32, 32);
  b.PadTo(32).Zeros(48);
  return b;
}

TEST(GgufReaderTest, AcceptsValidFile) {
  auto f = Parse(ValidFile());
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ((*f)->alignment(), 32u);
  ASSERT_EQ((*f)->tensors().size(), 2u);
  const GgufTensorInfo* b = (*f)->FindTensor("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->num_elements, 4);
  EXPECT_EQ(b->byte_size, 16u);
  EXPECT_EQ((*f)->TensorData(*b) - (*f)->bytes().data(), static_cast<ptrdiff_t>((*f)->data_offset() + 32));
}

TEST(GgufReaderTest, AcceptsVersion2) {
  GgufBytes b;
  b.Header(0, 1, /*version=*/2).KvU32("x", 7);
  auto f = Parse(b);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ((*f)->version(), 2u);
}

TEST(GgufReaderTest, AcceptsTensorlessFileEndingBeforeAlignedDataStart) {
  // Vocab-only files from llama.cpp end right after the metadata.
  GgufBytes b;
  b.Header(0, 1).KvStr("k", "v");  // 24 + 9 + 4 + 9 = 46 bytes, not a multiple of 32
  ASSERT_NE(b.size() % 32, 0u);
  EXPECT_THAT(Parse(b), IsOk());
}

TEST(GgufReaderTest, RejectsMissingFile) {
  EXPECT_THAT(GgufFile::Open("/nonexistent/dir/model.gguf"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/dir/model.gguf")));
}

TEST(GgufReaderTest, RejectsEmptyFile) {
  EXPECT_THAT(Parse(GgufBytes()), StatusIs(absl::StatusCode::kDataLoss,
                                           HasSubstr("truncated at byte offset 0 reading magic")));
}

TEST(GgufReaderTest, RejectsBadMagic) {
  GgufBytes b;
  b.Raw("GGUX").U32(3).U64(0).U64(0);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("test.gguf"), HasSubstr("bad magic"))));
}

TEST(GgufReaderTest, RejectsVersion1AsUnimplemented) {
  GgufBytes b;
  b.Header(0, 0, /*version=*/1);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kUnimplemented,
                                 HasSubstr("unsupported GGUF version 1")));
}

TEST(GgufReaderTest, RejectsFutureVersionAsUnimplemented) {
  GgufBytes b;
  b.Header(0, 0, /*version=*/4);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kUnimplemented,
                                 HasSubstr("unsupported GGUF version 4")));
}

TEST(GgufReaderTest, RejectsBigEndianFileAsUnimplemented) {
  GgufBytes b;
  b.Raw("GGUF").U32(0x03000000).U64(0).U64(0);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("looks big-endian")));
}

TEST(GgufReaderTest, RejectsDirectory) {
  EXPECT_THAT(GgufFile::Open(::testing::TempDir()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a regular file")));
}

TEST(GgufReaderTest, RejectsTruncatedHeader) {
  GgufBytes b;
  b.Raw("GGUF").U32(3).U32(0);  // n_tensors cut after 4 of 8 bytes
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("truncated at byte offset 8 reading tensor count")));
}

TEST(GgufReaderTest, RejectsTruncationInsideKey) {
  GgufBytes b;
  b.Header(0, 1).U64(40).Raw("general.architecture");  // key of 40 bytes, 20 present
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("key of metadata entry 0 at byte offset 24"),
                                       HasSubstr("has length 40"))));
}

TEST(GgufReaderTest, RejectsTruncationBeforeValue) {
  GgufBytes b;
  b.Header(0, 1).Str("general.alignment").U32(4).U8(32);  // u32 value cut short
  // (13 bytes is the minimum entry size, so the count check passes and the value read fails)
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("reading general.alignment"),
                                       HasSubstr("need 4 bytes, 1 left"))));
}

TEST(GgufReaderTest, RejectsStringValuePastEndOfFile) {
  GgufBytes b;
  b.Header(0, 1).Str("general.name").U32(8).U64(1000).Raw("short");
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("general.name"), HasSubstr("has length 1000"),
                                       HasSubstr("5 bytes are left"))));
}

TEST(GgufReaderTest, RejectsHugeArrayCountWithoutAllocating) {
  GgufBytes b;
  b.Header(0, 1).Str("tokenizer.ggml.scores").U32(9).U32(6).U64(kHuge).F32(1.0f);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tokenizer.ggml.scores"),
                                       HasSubstr("count 1152921504606846976"))));
}

TEST(GgufReaderTest, RejectsHugeStringArrayCountWithoutAllocating) {
  GgufBytes b;
  b.Header(0, 1).Str("tokenizer.ggml.tokens").U32(9).U32(8).U64(kHuge).Str("a");
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tokenizer.ggml.tokens"),
                                       HasSubstr("count 1152921504606846976"))));
}

TEST(GgufReaderTest, RejectsHugeMetadataCount) {
  GgufBytes b;
  b.Header(0, kHuge).KvU32("x", 1);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("metadata count 1152921504606846976")));
}

TEST(GgufReaderTest, RejectsHugeTensorCount) {
  GgufBytes b;
  b.Header(kHuge, 0).TensorInfo("a", {4}, kF32, 0);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("tensor count 1152921504606846976")));
}

TEST(GgufReaderTest, RejectsInvalidValueType) {
  GgufBytes b;
  b.Header(0, 1).Str("general.name").U32(13).U32(0);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("'general.name' has invalid value type 13"),
                                       HasSubstr("byte offset 44"))));
}

TEST(GgufReaderTest, RejectsInvalidArrayElementType) {
  GgufBytes b;
  b.Header(0, 1).Str("list").U32(9).U32(99).U64(0);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("'list' has invalid array element type 99")));
}

TEST(GgufReaderTest, RejectsArraysNestedTooDeep) {
  GgufBytes b;
  b.Header(0, 1).Str("deep").U32(9);
  for (int i = 0; i < 40; ++i) b.U32(9).U64(1);  // array of array of ... 40 levels
  b.U32(0).U64(0);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("nests arrays deeper")));
}

TEST(GgufReaderTest, RejectsDuplicateKey) {
  GgufBytes b;
  b.Header(0, 2).KvU32("general.file_type", 40).KvU32("general.file_type", 1);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("duplicate key 'general.file_type'")));
}

TEST(GgufReaderTest, RejectsZeroAlignment) {
  GgufBytes b;
  b.Header(0, 1).KvU32("general.alignment", 0);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("'general.alignment' is 0, not a nonzero power of two")));
}

TEST(GgufReaderTest, RejectsNonPowerOfTwoAlignment) {
  GgufBytes b;
  b.Header(0, 1).KvU32("general.alignment", 48);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("'general.alignment' is 48, not a nonzero power of two")));
}

TEST(GgufReaderTest, RejectsAlignmentOfWrongType) {
  GgufBytes b;
  b.Header(0, 1).Str("general.alignment").U32(10).U64(32);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("'general.alignment' has type u64, expected u32")));
}

TEST(GgufReaderTest, RejectsTruncatedTensorInfo) {
  GgufBytes b;
  // The 8-byte offset is cut after 4 bytes.
  b.Header(1, 0).Str("blk.0.attn_q.weight").U32(2).I64(256).I64(256).U32(kI2S).U32(0);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                   HasSubstr("reading offset of tensor 'blk.0.attn_q.weight'")));
}

TEST(GgufReaderTest, RejectsZeroDims) {
  GgufBytes b;
  b.Header(1, 0).Str("a").U32(0).U32(kF32).U64(0).Zeros(64);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'a'"), HasSubstr("n_dims 0"))));
}

TEST(GgufReaderTest, RejectsFiveDims) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("a", {1, 1, 1, 1, 1}, kF32, 0).PadTo(32).Zeros(32);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'a'"), HasSubstr("n_dims 5"))));
}

TEST(GgufReaderTest, RejectsZeroDimension) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("w", {4, 0}, kF32, 0).PadTo(32).Zeros(32);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'w'"), HasSubstr("ne[1] = 0"))));
}

TEST(GgufReaderTest, RejectsNegativeDimension) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("w", {-4, 2}, kF32, 0).PadTo(32).Zeros(32);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'w'"), HasSubstr("ne[0] = -4"))));
}

TEST(GgufReaderTest, RejectsElementCountOverflow) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("w", {int64_t{1} << 32, int64_t{1} << 32}, kF32, 0).PadTo(32).Zeros(32);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'w'"), HasSubstr("overflows 63 bits"))));
}

TEST(GgufReaderTest, RejectsByteSizeOverflow) {
  // 2^61 f32 elements fit in 63 bits, their 2^63 bytes do not.
  GgufBytes b;
  b.Header(1, 0).TensorInfo("w", {int64_t{1} << 31, int64_t{1} << 30}, kF32, 0).PadTo(32).Zeros(32);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'w'"), HasSubstr("byte size overflows"))));
}

TEST(GgufReaderTest, RejectsUnknownTensorTypeAsUnimplemented) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("blk.0.ffn_up.weight", {256, 4}, 99, 0).PadTo(32).Zeros(1024);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kUnimplemented,
                                 AllOf(HasSubstr("tensor 'blk.0.ffn_up.weight'"),
                                       HasSubstr("unknown ggml type 99"))));
}

TEST(GgufReaderTest, RejectsMisalignedTensorOffset) {
  GgufBytes b;
  b.Header(2, 0).TensorInfo("a", {4}, kF32, 0).TensorInfo("b", {4}, kF32, 16).PadTo(32).Zeros(64);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'b'"), HasSubstr("offset 16"),
                                       HasSubstr("alignment 32"))));
}

TEST(GgufReaderTest, HonoursCustomAlignmentForOffsets) {
  GgufBytes b;
  b.Header(2, 1).KvU32("general.alignment", 16);
  b.TensorInfo("a", {4}, kF32, 0).TensorInfo("b", {4}, kF32, 16).PadTo(16).Zeros(32);
  auto f = Parse(b);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ((*f)->alignment(), 16u);
  EXPECT_EQ((*f)->data_offset() % 16, 0u);
}

TEST(GgufReaderTest, RejectsTruncatedTensorData) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("w", {64}, kF32, 0).PadTo(32).Zeros(255);  // needs 256
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'w'"),
                                       HasSubstr("runs past the end of the file"))));
}

TEST(GgufReaderTest, RejectsTensorOffsetPastEndWithoutWrapping) {
  // offset + size would wrap around 2^64 if added naively.
  GgufBytes b;
  b.Header(1, 0).TensorInfo("w", {64}, kF32, ~uint64_t{31}).PadTo(32).Zeros(256);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'w'"), HasSubstr("runs past the end"))));
}

TEST(GgufReaderTest, RejectsOverlappingTensors) {
  GgufBytes b;
  b.Header(2, 0).TensorInfo("a", {16}, kF32, 0).TensorInfo("b", {4}, kF32, 32).PadTo(32).Zeros(64);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("'a' [0, 64)"), HasSubstr("'b' [32, 48)"),
                                       HasSubstr("overlap"))));
}

TEST(GgufReaderTest, RejectsDuplicateTensorName) {
  GgufBytes b;
  b.Header(2, 0).TensorInfo("a", {4}, kF32, 0).TensorInfo("a", {4}, kF32, 32).PadTo(32).Zeros(64);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("duplicate tensor name 'a'")));
}

TEST(GgufReaderTest, RejectsRowNotMultipleOfBlockSize) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("q", {48, 2}, kQ8_0, 0).PadTo(32).Zeros(128);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'q'"),
                                       HasSubstr("row length 48 is not a multiple of the q8_0 block size 32"))));
}

TEST(GgufReaderTest, RejectsI2sElementCountNotMultipleOf128) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("blk.0.attn_q.weight", {96, 3}, kI2S, 0).PadTo(32).Zeros(128);
  EXPECT_THAT(Parse(b), StatusIs(absl::StatusCode::kDataLoss,
                                 AllOf(HasSubstr("tensor 'blk.0.attn_q.weight'"),
                                       HasSubstr("288 elements, not a multiple of 128"))));
}

TEST(GgufReaderTest, SizesI2sAsQuarterBytePlusScaleTrailer) {
  GgufBytes b;
  b.Header(1, 0).TensorInfo("w", {256, 2}, kI2S, 0).PadTo(32).Zeros(512 / 4 + 32);
  auto f = Parse(b);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ((*f)->tensors()[0].byte_size, 512u / 4 + 32);
}

// Every corruption of a valid file (flipped bytes, truncation) must give OK or a
// DataLoss / Unimplemented status, never a crash (run under -DBITPARITY_SANITIZE=ON
// to catch out-of-bounds reads). Fixed seed, printed on failure.
TEST(GgufReaderTest, SurvivesRandomCorruption) {
  GgufBytes b;
  b.Header(3, 4).KvStr("general.architecture", "bitnet-b1.58").KvU32("general.alignment", 32);
  b.Str("tokens").U32(9).U32(8).U64(3).Str("a").Str("bc").Str("");
  b.Str("nested").U32(9).U32(9).U64(1).U32(5).U64(2).Put<int32_t>(1).Put<int32_t>(2);
  b.TensorInfo("w", {128, 2}, kI2S, 0).TensorInfo("n", {8}, kF32, 96).TensorInfo("q", {32}, kQ8_0, 128);
  b.PadTo(32).Zeros(128 + 34);
  ASSERT_THAT(Parse(b), IsOk());
  const std::string good = b.str();
  uint64_t state = 20240611;
  auto next = [&state]() {  // splitmix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  for (int iter = 0; iter < 20000; ++iter) {
    std::string bad = good;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = next() % bad.size();
      // Half the time a random byte, half the time an extreme one (0x00 / 0xff).
      bad[at] = static_cast<char>(next() % 2 ? next() : (next() % 2 ? 0x00 : 0xff));
    }
    if (next() % 4 == 0) bad.resize(next() % bad.size());
    auto f = GgufFile::FromBytes(bad, "fuzz.gguf");
    if (f.ok()) continue;
    const absl::StatusCode code = f.status().code();
    ASSERT_TRUE(code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kUnimplemented)
        << "iteration " << iter << " (seed 20240611): " << f.status();
  }
}

// ---- typed getters ----

class GgufGetterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GgufBytes b;
    b.Header(0, 9);
    b.KvU32("u32", 4000000000u);
    b.Str("i32_neg").U32(5).Put<int32_t>(-7);
    b.Str("u8").U32(0).U8(200);
    b.Str("u64_big").U32(10).U64(uint64_t{1} << 63);
    b.Str("f64").U32(12).Put<double>(0.25);
    b.Str("flag").U32(7).U8(1);
    b.KvStr("name", "tiny");
    b.Str("ids").U32(9).U32(5).U64(3).Put<int32_t>(1).Put<int32_t>(-2).Put<int32_t>(3);
    b.Str("words").U32(9).U32(8).U64(2).Str("ab").Str("c");
    auto f = Parse(b);
    ASSERT_THAT(f, IsOk());
    file_ = std::move(*f);
  }
  std::unique_ptr<GgufFile> file_;
};

TEST_F(GgufGetterTest, ReadsValuesOfTheirOwnType) {
  EXPECT_EQ(*file_->GetUint32("u32"), 4000000000u);
  EXPECT_EQ(*file_->GetString("name"), "tiny");
  EXPECT_EQ(*file_->GetBool("flag"), true);
  EXPECT_EQ(*file_->GetFloat32("f64"), 0.25f);
  EXPECT_THAT(*file_->GetInt32Array("ids"), ::testing::ElementsAre(1, -2, 3));
  EXPECT_THAT(*file_->GetStringArray("words"), ::testing::ElementsAre("ab", "c"));
}

TEST_F(GgufGetterTest, WidensIntegersThatFit) {
  EXPECT_EQ(*file_->GetInt64("u32"), 4000000000);
  EXPECT_EQ(*file_->GetInt64("i32_neg"), -7);
  EXPECT_EQ(*file_->GetUint32("u8"), 200u);
}

TEST_F(GgufGetterTest, RejectsIntegersThatDoNotFit) {
  EXPECT_THAT(file_->GetUint32("i32_neg"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-7 does not fit in u32")));
  EXPECT_THAT(file_->GetInt64("u64_big"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not fit in i64")));
}

TEST_F(GgufGetterTest, ReportsMissingKeyAsNotFound) {
  EXPECT_THAT(file_->GetUint32("bitnet-b1.58.block_count"),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("test.gguf"), HasSubstr("'bitnet-b1.58.block_count'"))));
  EXPECT_FALSE(file_->HasKey("nope"));
}

TEST_F(GgufGetterTest, ReportsWrongTypeAsInvalidArgument) {
  EXPECT_THAT(file_->GetUint32("name"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'name' has type string")));
  EXPECT_THAT(file_->GetString("u32"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected string")));
  EXPECT_THAT(file_->GetBool("u8"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bool")));
  EXPECT_THAT(file_->GetFloat32("u32"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected f32 or f64")));
  EXPECT_THAT(file_->GetStringArray("ids"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("array of i32")));
  EXPECT_THAT(file_->GetFloat32Array("words"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("array of string")));
  EXPECT_THAT(file_->GetArray("u32"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("array")));
}

}  // namespace
}  // namespace bitparity
