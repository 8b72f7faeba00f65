// The opt-in int8 output head (engine/model/int8_head.h): it changes the logits, so
// these tests pin what it promises instead: close to the exact F16 head, the same
// argmax on a real prompt, identical numbers on every kernel path, and a clear error
// where it cannot apply.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "engine/model/int8_head.h"
#include "engine/model/model.h"
#include "engine/model/session.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;

// p0_en of the tiny-b158 golden fixture: "The quick brown fox jumps over the lazy dog."
const std::vector<int32_t> kPrompt = {50256, 464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13};

std::unique_ptr<Model> Load(HeadMode head, std::optional<KernelPath> kernels = std::nullopt,
                            WeightMemory memory = WeightMemory::kHugePages) {
  ModelOptions o;
  o.threads = 2;
  o.head = head;
  o.kernels = kernels;
  o.weight_memory = memory;
  auto m = Model::Load(FixturePath("models/tiny-b158.gguf"), o);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(*m) : nullptr;
}

std::map<int, std::vector<float>> AllLogits(const Model& m) {
  Session s(m, 64);
  std::map<int, std::vector<float>> out;
  absl::Status st = s.Eval(kPrompt, EvalMode::kBatch, LogitRows::All(), [&](int row, absl::Span<const float> l) {
    out[row].assign(l.begin(), l.end());
    return absl::OkStatus();
  });
  EXPECT_TRUE(st.ok()) << st;
  return out;
}

TEST(Int8HeadTest, ExactIsTheDefault) {
  EXPECT_EQ(ModelOptions{}.head, HeadMode::kExact);
  auto m = Load(HeadMode::kExact);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->head_mode(), HeadMode::kExact);
  EXPECT_EQ(m->int8_head(), nullptr);
}

TEST(Int8HeadTest, CloseToTheExactHeadWithTheSameArgmax) {
  auto exact = Load(HeadMode::kExact);
  auto int8 = Load(HeadMode::kInt8);
  ASSERT_NE(exact, nullptr);
  ASSERT_NE(int8, nullptr);
  ASSERT_EQ(int8->head_mode(), HeadMode::kInt8);
  const auto a = AllLogits(*exact), b = AllLogits(*int8);
  ASSERT_EQ(a.size(), kPrompt.size());
  ASSERT_EQ(b.size(), kPrompt.size());
  int same_argmax = 0;
  double worst = 0, spread = 0;
  for (const auto& [row, la] : a) {
    const std::vector<float>& lb = b.at(row);
    ASSERT_EQ(la.size(), lb.size());
    double max_abs = 0, lo = la[0], hi = la[0];
    for (size_t i = 0; i < la.size(); ++i) {
      max_abs = std::max(max_abs, std::fabs(double{la[i]} - lb[i]));
      lo = std::min<double>(lo, la[i]);
      hi = std::max<double>(hi, la[i]);
    }
    worst = std::max(worst, max_abs);
    spread = std::max(spread, hi - lo);
    same_argmax += std::max_element(la.begin(), la.end()) - la.begin() == std::max_element(lb.begin(), lb.end()) - lb.begin();
  }
  // Not equal (the mode changes the numbers) but small next to the logits' range:
  // measured max |Δ| 0.08 on this model, whose logits span ~15.
  EXPECT_GT(worst, 0.0) << "the int8 head reproduced the F16 head exactly: is it really on?";
  EXPECT_LT(worst, 0.02 * spread);
  EXPECT_GE(same_argmax, static_cast<int>(kPrompt.size()) - 1);
}

// The int8 head hands the float head's pages back after quantizing (they are read
// again only by the embedding lookup): from a huge-page copy or from the mapping,
// the embeddings and logits must come out the same.
TEST(Int8HeadTest, SameLogitsWithTheWeightsInHugePagesOrInTheMapping) {
  auto huge = Load(HeadMode::kInt8);
  auto mapped = Load(HeadMode::kInt8, std::nullopt, WeightMemory::kMmap);
  ASSERT_NE(huge, nullptr);
  ASSERT_NE(mapped, nullptr);
  EXPECT_EQ(AllLogits(*huge), AllLogits(*mapped));
}

TEST(Int8HeadTest, SameLogitsOnEveryKernelPath) {
  auto scalar = Load(HeadMode::kInt8, KernelPath::kScalar);
  ASSERT_NE(scalar, nullptr);
  const auto ref = AllLogits(*scalar);
  for (KernelPath p : {KernelPath::kAvx2, KernelPath::kAvx512}) {
    if (!KernelPathSupported(p)) continue;
    SCOPED_TRACE(KernelPathName(p));
    auto m = Load(HeadMode::kInt8, p);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(AllLogits(*m), ref);
  }
}

TEST(Int8HeadTest, ParsesItsNameAndRejectsOthers) {
  EXPECT_EQ(*ParseHeadMode("exact"), HeadMode::kExact);
  EXPECT_EQ(*ParseHeadMode("int8"), HeadMode::kInt8);
  EXPECT_EQ(ParseHeadMode("int4").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_STREQ(HeadModeName(HeadMode::kInt8), "int8");
}

TEST(Int8HeadTest, UnsupportedHeadTypeIsInvalidArgumentNamingIt) {
  ThreadPool pool(1);
  WeightMatrix w;
  w.name = "output.weight";
  w.type = GgmlType::kQ8_0;
  w.rows = 2;
  w.cols = 32;
  auto h = Int8Head::Quantize(w, pool);
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(h.status().message().find("output.weight"), std::string::npos);
}

}  // namespace
}  // namespace bitparity
