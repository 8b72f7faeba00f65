// Writer tests: what the writer puts down, the reader reads back unchanged (every
// value type, nested arrays, tensors, alignment), and misuse gets a Status.
#include "engine/gguf/gguf_writer.h"

#include <cstdint>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity {
namespace {

using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

GgufArray Arr(GgufValueType element_type) {
  GgufArray a;
  a.element_type = element_type;
  return a;
}

std::vector<uint8_t> Iota(size_t n, uint8_t start) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(start + i * 7);
  return v;
}

TEST(GgufWriterTest, RoundTripsEveryValueType) {
  GgufWriter w;
  ASSERT_THAT(w.AddUint8("u8", 250), IsOk());
  ASSERT_THAT(w.AddInt8("i8", -100), IsOk());
  ASSERT_THAT(w.AddUint16("u16", 65000), IsOk());
  ASSERT_THAT(w.AddInt16("i16", -30000), IsOk());
  ASSERT_THAT(w.AddUint32("u32", 4000000000u), IsOk());
  ASSERT_THAT(w.AddInt32("i32", -2000000000), IsOk());
  ASSERT_THAT(w.AddFloat32("f32", 1.5f), IsOk());
  ASSERT_THAT(w.AddBool("bool", true), IsOk());
  ASSERT_THAT(w.AddString("str", std::string("h\0llo", 5)), IsOk());
  ASSERT_THAT(w.AddUint64("u64", std::numeric_limits<uint64_t>::max()), IsOk());
  ASSERT_THAT(w.AddInt64("i64", std::numeric_limits<int64_t>::min()), IsOk());
  ASSERT_THAT(w.AddFloat64("f64", -0.125), IsOk());
  ASSERT_THAT(w.AddString("empty", ""), IsOk());
  const std::string path = TempPath("values.gguf");
  ASSERT_THAT(w.Open(path), IsOk());
  ASSERT_THAT(w.Finish(), IsOk());

  auto f = GgufFile::Open(path);
  ASSERT_THAT(f, IsOk());
  const GgufFile& g = **f;
  ASSERT_EQ(g.metadata().size(), 13u);
  EXPECT_EQ(std::get<uint8_t>(g.FindKey("u8")->value), 250);
  EXPECT_EQ(std::get<int8_t>(g.FindKey("i8")->value), -100);
  EXPECT_EQ(std::get<uint16_t>(g.FindKey("u16")->value), 65000);
  EXPECT_EQ(std::get<int16_t>(g.FindKey("i16")->value), -30000);
  EXPECT_EQ(std::get<uint32_t>(g.FindKey("u32")->value), 4000000000u);
  EXPECT_EQ(std::get<int32_t>(g.FindKey("i32")->value), -2000000000);
  EXPECT_EQ(std::get<float>(g.FindKey("f32")->value), 1.5f);
  EXPECT_EQ(std::get<bool>(g.FindKey("bool")->value), true);
  EXPECT_EQ(std::get<absl::string_view>(g.FindKey("str")->value), std::string("h\0llo", 5));
  EXPECT_EQ(std::get<uint64_t>(g.FindKey("u64")->value), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(std::get<int64_t>(g.FindKey("i64")->value), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(std::get<double>(g.FindKey("f64")->value), -0.125);
  EXPECT_EQ(*g.GetString("empty"), "");
  EXPECT_EQ(g.FindKey("i16")->type, GgufValueType::kInt16);
  EXPECT_EQ(g.metadata()[0].key, "u8");  // insertion order kept
  EXPECT_EQ(g.file_size(), w.file_size());
}

TEST(GgufWriterTest, RoundTripsArraysOfEveryElementTypeAndNesting) {
  GgufWriter w;
  GgufArray u8 = Arr(GgufValueType::kUint8);
  u8.u8 = {1, 2, 255};
  GgufArray b = Arr(GgufValueType::kBool);
  b.u8 = {1, 0, 1};
  GgufArray i8 = Arr(GgufValueType::kInt8);
  i8.i8 = {-1, 2};
  GgufArray u16 = Arr(GgufValueType::kUint16);
  u16.u16 = {7};
  GgufArray i16 = Arr(GgufValueType::kInt16);
  i16.i16 = {-7, 8};
  GgufArray u32 = Arr(GgufValueType::kUint32);
  u32.u32 = {1u << 31};
  GgufArray u64 = Arr(GgufValueType::kUint64);
  u64.u64 = {uint64_t{1} << 40, 3};
  GgufArray i64 = Arr(GgufValueType::kInt64);
  i64.i64 = {-(int64_t{1} << 40)};
  GgufArray f64 = Arr(GgufValueType::kFloat64);
  f64.f64 = {0.5, -2.0};
  GgufArray empty = Arr(GgufValueType::kString);
  // [[1, 2], [], [["x"]]]: arrays nested two deep with mixed element types.
  GgufArray inner1 = Arr(GgufValueType::kInt32);
  inner1.i32 = {1, 2};
  GgufArray inner2 = Arr(GgufValueType::kFloat32);
  GgufArray strs = Arr(GgufValueType::kString);
  strs.strings = {"x"};
  GgufArray inner3 = Arr(GgufValueType::kArray);
  inner3.arrays = {strs};
  GgufArray nested = Arr(GgufValueType::kArray);
  nested.arrays = {inner1, inner2, inner3};
  for (auto& [key, arr] : std::vector<std::pair<std::string, GgufArray*>>{
           {"u8", &u8}, {"bool", &b}, {"i8", &i8}, {"u16", &u16}, {"i16", &i16}, {"u32", &u32},
           {"u64", &u64}, {"i64", &i64}, {"f64", &f64}, {"empty", &empty}, {"nested", &nested}}) {
    ASSERT_THAT(w.AddArray(key, *arr), IsOk()) << key;
  }
  const std::vector<std::string> tokens = {"a", "", "\xc4\xa0the"};
  ASSERT_THAT(w.AddStringArray("tokens", tokens), IsOk());
  const std::vector<int32_t> ids = {3, -1};
  ASSERT_THAT(w.AddInt32Array("ids", ids), IsOk());
  const std::vector<float> scores = {0.25f, -1e30f};
  ASSERT_THAT(w.AddFloat32Array("scores", scores), IsOk());

  const std::string path = TempPath("arrays.gguf");
  ASSERT_THAT(w.Open(path), IsOk());
  ASSERT_THAT(w.Finish(), IsOk());
  auto f = GgufFile::Open(path);
  ASSERT_THAT(f, IsOk());
  const GgufFile& g = **f;
  EXPECT_THAT((*g.GetArray("u8"))->u8, ElementsAre(1, 2, 255));
  EXPECT_EQ((*g.GetArray("bool"))->element_type, GgufValueType::kBool);
  EXPECT_THAT((*g.GetArray("bool"))->u8, ElementsAre(1, 0, 1));
  EXPECT_THAT((*g.GetArray("i8"))->i8, ElementsAre(-1, 2));
  EXPECT_THAT((*g.GetArray("u16"))->u16, ElementsAre(7));
  EXPECT_THAT((*g.GetArray("i16"))->i16, ElementsAre(-7, 8));
  EXPECT_THAT((*g.GetArray("u32"))->u32, ElementsAre(1u << 31));
  EXPECT_THAT((*g.GetArray("u64"))->u64, ElementsAre(uint64_t{1} << 40, 3));
  EXPECT_THAT((*g.GetArray("i64"))->i64, ElementsAre(-(int64_t{1} << 40)));
  EXPECT_THAT((*g.GetArray("f64"))->f64, ElementsAre(0.5, -2.0));
  EXPECT_EQ((*g.GetArray("empty"))->size(), 0u);
  EXPECT_EQ((*g.GetArray("empty"))->element_type, GgufValueType::kString);
  const GgufArray& n = **g.GetArray("nested");
  ASSERT_EQ(n.element_type, GgufValueType::kArray);
  ASSERT_EQ(n.arrays.size(), 3u);
  EXPECT_THAT(n.arrays[0].i32, ElementsAre(1, 2));
  EXPECT_EQ(n.arrays[1].element_type, GgufValueType::kFloat32);
  EXPECT_EQ(n.arrays[1].size(), 0u);
  ASSERT_EQ(n.arrays[2].arrays.size(), 1u);
  EXPECT_THAT(n.arrays[2].arrays[0].strings, ElementsAre("x"));
  EXPECT_THAT(*g.GetStringArray("tokens"), ElementsAre("a", "", "\xc4\xa0the"));
  EXPECT_THAT(*g.GetInt32Array("ids"), ElementsAre(3, -1));
  EXPECT_THAT(*g.GetFloat32Array("scores"), ElementsAre(0.25f, -1e30f));
}

TEST(GgufWriterTest, RoundTripsTensorsWithCustomAlignment) {
  GgufWriter w;
  ASSERT_THAT(w.SetAlignment(64), IsOk());
  ASSERT_THAT(w.AddString("general.architecture", "test"), IsOk());
  ASSERT_THAT(w.AddTensor("f32", GgmlType::kF32, {3, 5}), IsOk());          // 60 bytes
  ASSERT_THAT(w.AddTensor("i2s", GgmlType::kI2_S, {128, 2}), IsOk());       // 64 + 32 bytes
  ASSERT_THAT(w.AddTensor("f16", GgmlType::kF16, {7}), IsOk());             // 14 bytes
  ASSERT_THAT(w.AddTensor("q8", GgmlType::kQ8_0, {64, 1, 1, 2}), IsOk());   // 4 * 34 bytes
  const std::vector<uint8_t> d0 = Iota(60, 1), d1 = Iota(96, 2), d2 = Iota(14, 3), d3 = Iota(136, 4);
  const std::string path = TempPath("tensors.gguf");
  ASSERT_THAT(w.Open(path), IsOk());
  ASSERT_THAT(w.WriteTensor("f32", d0), IsOk());
  ASSERT_THAT(w.WriteTensor("i2s", d1), IsOk());
  ASSERT_THAT(w.WriteTensor("f16", d2), IsOk());
  ASSERT_THAT(w.WriteTensor("q8", d3), IsOk());
  ASSERT_THAT(w.Finish(), IsOk());

  auto f = GgufFile::Open(path);
  ASSERT_THAT(f, IsOk());
  const GgufFile& g = **f;
  EXPECT_EQ(g.alignment(), 64u);
  EXPECT_EQ(*g.GetUint32("general.alignment"), 64u);
  EXPECT_EQ(g.data_offset() % 64, 0u);
  EXPECT_EQ(g.file_size(), w.file_size());
  EXPECT_EQ(g.data_offset(), w.data_offset());
  const std::vector<std::pair<const char*, const std::vector<uint8_t>*>> want = {
      {"f32", &d0}, {"i2s", &d1}, {"f16", &d2}, {"q8", &d3}};
  for (const auto& [name, data] : want) {
    const GgufTensorInfo* t = g.FindTensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->offset % 64, 0u) << name;
    ASSERT_EQ(t->byte_size, data->size()) << name;
    EXPECT_EQ(std::vector<uint8_t>(g.TensorData(*t), g.TensorData(*t) + t->byte_size), *data) << name;
  }
  EXPECT_THAT(g.FindTensor("q8")->ne, ElementsAre(64, 1, 1, 2));
  EXPECT_EQ(g.FindTensor("i2s")->type, GgmlType::kI2_S);
}

TEST(GgufWriterTest, ChunkedWritesGiveTheSameFileAsWholeTensors) {
  auto declare = [](GgufWriter& w) {
    ASSERT_THAT(w.AddTensor("a", GgmlType::kF32, {10}), IsOk());
    ASSERT_THAT(w.AddTensor("b", GgmlType::kF16, {33}), IsOk());
  };
  const std::vector<uint8_t> a = Iota(40, 9), b = Iota(66, 5);
  GgufWriter whole;
  declare(whole);
  const std::string p1 = TempPath("whole.gguf");
  ASSERT_THAT(whole.Open(p1), IsOk());
  ASSERT_THAT(whole.WriteTensor("a", a), IsOk());
  ASSERT_THAT(whole.WriteTensor("b", b), IsOk());
  ASSERT_THAT(whole.Finish(), IsOk());

  GgufWriter chunked;
  declare(chunked);
  std::vector<uint8_t> both = a;
  both.insert(both.end(), b.begin(), b.end());
  const std::string p2 = TempPath("chunked.gguf");
  ASSERT_THAT(chunked.Open(p2), IsOk());
  // Chunks of 7 bytes cross the boundary between the tensors.
  for (size_t i = 0; i < both.size(); i += 7) {
    const size_t n = std::min<size_t>(7, both.size() - i);
    ASSERT_THAT(chunked.WriteTensorData(absl::MakeConstSpan(both.data() + i, n)), IsOk());
  }
  ASSERT_THAT(chunked.Finish(), IsOk());
  EXPECT_EQ(ReadAll(p1), ReadAll(p2));
  EXPECT_EQ(ReadAll(p1).size(), whole.file_size());
}

TEST(GgufWriterTest, HeaderBytesPlusDataIsAValidFile) {
  GgufWriter w;
  ASSERT_THAT(w.AddUint32("k", 1), IsOk());
  ASSERT_THAT(w.AddTensor("t", GgmlType::kF32, {8}), IsOk());
  std::string bytes = w.HeaderBytes();
  EXPECT_EQ(bytes.size(), w.data_offset());
  bytes.append(32, '\x01');
  auto f = GgufFile::FromBytes(bytes);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ((*f)->TensorData(*(*f)->FindTensor("t"))[0], 1);
}

TEST(GgufWriterTest, RejectsDuplicateKey) {
  GgufWriter w;
  ASSERT_THAT(w.AddUint32("general.file_type", 40), IsOk());
  EXPECT_THAT(w.AddString("general.file_type", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate metadata key")));
}

TEST(GgufWriterTest, RejectsDuplicateTensorNameAndBadShapes) {
  GgufWriter w;
  ASSERT_THAT(w.AddTensor("a", GgmlType::kF32, {4}), IsOk());
  EXPECT_THAT(w.AddTensor("a", GgmlType::kF32, {4}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate tensor name 'a'")));
  EXPECT_THAT(w.AddTensor("i", GgmlType::kI2_S, {100}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a multiple of 128")));
  EXPECT_THAT(w.AddTensor("z", GgmlType::kF32, {4, 0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not positive")));
  EXPECT_THAT(w.AddTensor("d", GgmlType::kF32, {1, 1, 1, 1, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("5 dimensions")));
  EXPECT_THAT(w.AddTensor(std::string(64, 'n'), GgmlType::kF32, {4}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 63")));
}

TEST(GgufWriterTest, RejectsBadAlignmentAndLateAlignment) {
  GgufWriter w;
  EXPECT_THAT(w.SetAlignment(0), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("power of two")));
  EXPECT_THAT(w.SetAlignment(24), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("power of two")));
  ASSERT_THAT(w.AddTensor("a", GgmlType::kF32, {4}), IsOk());
  EXPECT_THAT(w.SetAlignment(64), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("after")));
}

TEST(GgufWriterTest, RejectsOutOfOrderShortAndExcessData) {
  GgufWriter w;
  ASSERT_THAT(w.AddTensor("a", GgmlType::kF32, {4}), IsOk());
  ASSERT_THAT(w.AddTensor("b", GgmlType::kF32, {4}), IsOk());
  const std::string path = TempPath("misuse.gguf");
  ASSERT_THAT(w.Open(path), IsOk());
  EXPECT_THAT(w.AddUint32("late", 1), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("late")));
  const std::vector<uint8_t> sixteen(16), eight(8), big(40);
  EXPECT_THAT(w.WriteTensor("b", sixteen),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("next is 'a'")));
  EXPECT_THAT(w.WriteTensor("a", eight),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs 16 bytes, got 8")));
  ASSERT_THAT(w.WriteTensorData(eight), IsOk());
  EXPECT_THAT(w.Finish(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                   HasSubstr("tensor 'a' has 8 of 16 bytes")));
  EXPECT_THAT(w.WriteTensorData(big),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("past the last tensor")));
}

TEST(GgufWriterTest, AbandonedWriteLeavesNoFileBehind) {
  const std::string path = TempPath("abandoned.gguf");
  {
    GgufWriter w;
    ASSERT_THAT(w.AddTensor("a", GgmlType::kF32, {4}), IsOk());
    ASSERT_THAT(w.Open(path), IsOk());
  }
  EXPECT_FALSE(std::ifstream(path).good());
  EXPECT_FALSE(std::ifstream(path + ".tmp").good());
}

TEST(GgufWriterTest, ReportsUnwritableDirectory) {
  GgufWriter w;
  EXPECT_THAT(w.Open("/nonexistent/dir/out.gguf"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/dir/out.gguf.tmp")));
}

TEST(GgufWriterTest, CopiesReaderValuesThroughAddValue) {
  GgufWriter src;
  GgufArray a = Arr(GgufValueType::kString);
  a.strings = {"x", "y"};
  ASSERT_THAT(src.AddArray("arr", a), IsOk());
  ASSERT_THAT(src.AddInt16("i16", -3), IsOk());
  ASSERT_THAT(src.AddString("s", "str"), IsOk());
  auto f = GgufFile::FromBytes(src.HeaderBytes());
  ASSERT_THAT(f, IsOk());
  GgufWriter copy;
  for (const GgufMetadataEntry& e : (*f)->metadata()) ASSERT_THAT(copy.AddValue(e.key, e.value), IsOk());
  EXPECT_EQ(copy.HeaderBytes(), src.HeaderBytes());
}

}  // namespace
}  // namespace bitparity
