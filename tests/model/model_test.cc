// engine/model: Model::Load errors (one hand-made broken GGUF per defect, built with
// GgufWriter into the test's temp dir), FaultInjection::Parse, and the Session
// contract on the tiny-b158 fixture: argument errors, context limits, evaluation in
// pieces, Reset/Truncate, thread-count and kernel-path independence, cancellation,
// residual tracing, and where each injected fault first shows in the residual stream.
//
// "Bit for bit" below means float == on every value: the engine promises it where
// the arithmetic is the same (integer I2_S dots, fixed reduction order).
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/model/attention.h"
#include "engine/model/fault_injection.h"
#include "engine/model/linear.h"
#include "engine/model/model.h"
#include "engine/model/ops.h"
#include "engine/model/session.h"
#include "engine/model/weight_memory.h"
#include "engine/runtime/thread_pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_test_util.h"
#include "tests/model/handmade_model.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::HandmadeModelSpec;
using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::bitparity::testing::WriteHandmadeModel;
using ::testing::AllOf;
using ::testing::HasSubstr;

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/model_test_" + name; }

// p0_en of the tiny-b158 golden fixture: "The quick brown fox jumps over the lazy dog."
const std::vector<int32_t> kPrompt = {50256, 464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13};

using Rows = std::map<int, std::vector<float>>;

// Evaluates `tokens` and returns the logits rows handed out, by row index.
Rows EvalRows(Session& s, absl::Span<const int32_t> tokens, EvalMode mode, const LogitRows& rows,
              const EvalHooks* hooks = nullptr) {
  Rows out;
  absl::Status st = s.Eval(tokens, mode, rows,
                           [&](int row, absl::Span<const float> l) {
                             out[row].assign(l.begin(), l.end());
                             return absl::OkStatus();
                           },
                           hooks);
  EXPECT_THAT(st, IsOk());
  return out;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double{a[i]} - b[i]));
  return m;
}

const char* ModeName(EvalMode m) { return m == EvalMode::kBatch ? "batch" : "seq"; }

absl::StatusOr<std::unique_ptr<Model>> LoadTiny(ModelOptions o = {}) {
  if (o.threads == 0) o.threads = 1;
  return Model::Load(FixturePath("models/tiny-b158.gguf"), o);
}

// ---- Model::Load -------------------------------------------------------------------

// Relu2Gate computes relu(g) with a bit mask so it vectorizes; it must give exactly
// what ggml's `g > 0 ? g : 0` gives, for every sign, zero, infinity and NaN.
TEST(OpsTest, Relu2GateEqualsTheBranchyFormulaBitForBit) {
  const float inf = INFINITY, nan = NAN;
  std::vector<float> g = {1.5f, -1.5f, 0.0f, -0.0f, inf, -inf, nan, 1e-30f, -1e-30f, 3e19f, 2.0f, -7.0f};
  std::vector<float> up = {2.0f, 2.0f, -1.0f, -1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f, inf, nan};
  for (int i = 0; i < 1000; ++i) {  // a long run too, past any vector width and tail
    g.push_back(std::sin(i * 0.37f) * 4.0f);
    up.push_back(std::cos(i * 0.11f));
  }
  std::vector<float> got = g;
  Relu2Gate(got.data(), up.data(), static_cast<int>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    const float r = g[i] > 0.0f ? g[i] : 0.0f;
    const float want = (r * r) * up[i];
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got[i])) << i;
    } else {
      EXPECT_EQ(std::signbit(got[i]), std::signbit(want)) << i;
      EXPECT_EQ(got[i], want) << i << ": g " << g[i] << " up " << up[i];
    }
  }
}

TEST(ModelLoadTest, MissingFileIsNotFoundNamingIt) {
  const std::string path = TempPath("does_not_exist.gguf");
  EXPECT_THAT(Model::Load(path), StatusIs(absl::StatusCode::kNotFound, HasSubstr(path)));
}

TEST(ModelLoadTest, HandmadeModelWithoutDefectsLoads) {
  // The control for the defect tests below: the same writer, no defect, loads.
  const std::string path = TempPath("good.gguf");
  ASSERT_THAT(WriteHandmadeModel(path, HandmadeModelSpec{}), IsOk());
  auto m = Model::Load(path);
  ASSERT_THAT(m, IsOk());
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.arch, Architecture::kLlama);
  EXPECT_EQ(c.n_layer, 1);
  EXPECT_EQ(c.n_embd, 32);
  EXPECT_EQ(c.n_vocab, 16);
  EXPECT_EQ(c.kv_dim(), 16);
  EXPECT_EQ((*m)->tokenizer(), nullptr);
}

TEST(ModelLoadTest, UnknownArchitectureIsUnimplemented) {
  const std::string path = TempPath("mamba.gguf");
  HandmadeModelSpec s;
  s.arch = "mamba";
  ASSERT_THAT(WriteHandmadeModel(path, s), IsOk());
  EXPECT_THAT(Model::Load(path), StatusIs(absl::StatusCode::kUnimplemented, AllOf(HasSubstr("mamba"), HasSubstr(path))));
}

TEST(ModelLoadTest, MissingRequiredTensorIsFailedPreconditionNamingIt) {
  for (const char* name : {"blk.0.ffn_up.weight", "output_norm.weight", "blk.1.attn_norm.weight"}) {
    SCOPED_TRACE(name);
    const std::string path = TempPath("missing.gguf");
    HandmadeModelSpec s;
    s.n_layer = 2;
    s.omit_tensor = name;
    ASSERT_THAT(WriteHandmadeModel(path, s), IsOk());
    EXPECT_THAT(Model::Load(path), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(name)));
  }
}

TEST(ModelLoadTest, TensorOfWrongShapeIsDataLossNamingIt) {
  const std::string path = TempPath("badshape.gguf");
  HandmadeModelSpec s;
  s.reshape_tensor = "blk.0.attn_k.weight";
  s.reshape_to = {32, 8};  // expected [32, 16]: 1 kv head of 16
  ASSERT_THAT(WriteHandmadeModel(path, s), IsOk());
  EXPECT_THAT(Model::Load(path), StatusIs(absl::StatusCode::kDataLoss,
                                          AllOf(HasSubstr("blk.0.attn_k.weight"), HasSubstr("[32, 8]"),
                                                HasSubstr("expected [32, 16]"))));
}

TEST(ModelLoadTest, NormVectorOfWrongLengthIsDataLoss) {
  const std::string path = TempPath("badnorm.gguf");
  HandmadeModelSpec s;
  s.reshape_tensor = "blk.0.ffn_norm.weight";
  s.reshape_to = {31};
  ASSERT_THAT(WriteHandmadeModel(path, s), IsOk());
  EXPECT_THAT(Model::Load(path), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("blk.0.ffn_norm.weight")));
}

TEST(ModelLoadTest, FaultNamingALayerPastTheModelIsInvalidArgument) {
  REQUIRE_FIXTURES();
  ModelOptions o;
  auto f = FaultInjection::Parse("skip-sub-norm:4");  // tiny-b158 has layers 0..3
  ASSERT_THAT(f, IsOk());
  o.fault = *f;
  EXPECT_THAT(LoadTiny(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("layer 4")));
  o.fault = *FaultInjection::Parse("skip-sub-norm:3");
  EXPECT_THAT(LoadTiny(o), IsOk());
}

// A flip-row fault past the tensor's rows would inject nothing, and a fault-injection
// run would wrongly conclude that bitparity missed it: Load refuses it, as it refuses
// a layer past the model.
TEST(ModelLoadTest, FlipRowPastTheTensorIsInvalidArgument) {
  REQUIRE_FIXTURES();
  ModelOptions o;
  auto f = FaultInjection::Parse("flip-row:1:attn_q:256");
  ASSERT_THAT(f, IsOk());
  o.fault = *f;
  auto m = LoadTiny(o);
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 256")))
      << "a flip-row fault past the tensor's rows must be refused";
  o.fault = *FaultInjection::Parse("flip-row:1:attn_q:255");  // the last row is fine
  EXPECT_THAT(LoadTiny(o), IsOk());
}

TEST(ModelLoadTest, ReportsTinyB158Facts) {
  REQUIRE_FIXTURES();
  auto m = LoadTiny();
  ASSERT_THAT(m, IsOk());
  const ModelConfig& c = (*m)->config();
  EXPECT_EQ(c.arch_name, "bitnet-b1.58");
  EXPECT_EQ(c.n_layer, 4);
  EXPECT_EQ(c.n_embd, 256);
  EXPECT_EQ(c.n_vocab, 50257);
  using Counts = std::vector<std::pair<std::string, int>>;
  EXPECT_EQ((*m)->TensorTypeCounts(), (Counts{{"f16", 1}, {"f32", 17}, {"i2_s", 28}}));
  EXPECT_EQ((*m)->threads(), 1);
  ASSERT_NE((*m)->tokenizer(), nullptr);
}

// ---- FaultInjection::Parse ---------------------------------------------------------

TEST(FaultInjectionTest, ParsesTheFourForms) {
  auto a = FaultInjection::Parse("flip-row:1:attn_q:7");
  ASSERT_THAT(a, IsOk());
  EXPECT_EQ(a->kind, FaultInjection::Kind::kFlipRow);
  EXPECT_EQ(a->layer, 1);
  EXPECT_EQ(a->tensor, "attn_q");
  EXPECT_EQ(a->row, 7);
  EXPECT_EQ(a->ToString(), "flip-row:1:attn_q:7");

  auto b = FaultInjection::Parse("skip-sub-norm:2");
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(b->kind, FaultInjection::Kind::kSkipSubNorm);
  EXPECT_EQ(b->layer, 2);
  EXPECT_EQ(b->ToString(), "skip-sub-norm:2");

  auto c = FaultInjection::Parse("rope-offset:0");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->kind, FaultInjection::Kind::kRopeOffset);
  EXPECT_EQ(c->layer, 0);
  EXPECT_EQ(c->ToString(), "rope-offset:0");

  auto d = FaultInjection::Parse("scale-error:3:ffn_down");
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->kind, FaultInjection::Kind::kScaleError);
  EXPECT_EQ(d->layer, 3);
  // The hook changes only the step it names, in the layer it names.
  ModelConfig cfg;
  auto perturbed = [&](absl::string_view step, int layer) {
    float row[2] = {1.0f, -2.0f};
    d->Perturb(cfg, {step, layer, 1, 2, nullptr, row});
    return row[0] != 1.0f || row[1] != -2.0f;
  };
  EXPECT_TRUE(perturbed("ffn_down", 3));
  EXPECT_FALSE(perturbed("ffn_down", 2));
  EXPECT_FALSE(perturbed("ffn_up", 3));
  EXPECT_EQ(d->ToString(), "scale-error:3:ffn_down");

  EXPECT_FALSE(FaultInjection{}.active());
  EXPECT_EQ(FaultInjection{}.ToString(), "none");
}

TEST(FaultInjectionTest, RejectsGarbageListingTheForms) {
  for (const char* spec : {"", "garbage", "flip-row", "flip-row:1", "flip-row:1:attn_q", "flip-row:1:attn_q:x",
                           "flip-row:1:attn_q:-1", "flip-row:1:attn_z:0", "flip-row:-1:attn_q:0",
                           "skip-sub-norm", "skip-sub-norm:x", "skip-sub-norm:1:2", "rope-offset:",
                           "scale-error:1", "scale-error:1:output", "scale-error:1:ffn_down:0",
                           "Skip-Sub-Norm:1"}) {
    SCOPED_TRACE(spec);
    EXPECT_THAT(FaultInjection::Parse(spec),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr(absl::StrCat("'", spec, "'")), HasSubstr("flip-row:LAYER:TENSOR:ROW"))));
  }
}

// ---- Session on tiny-b158 ----------------------------------------------------------

class SessionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::bitparity::testing::HaveFixtures()) return;
    auto m = LoadTiny();
    if (m.ok()) model_ = std::move(*m).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_FIXTURES();
    ASSERT_NE(model_, nullptr) << "tiny-b158.gguf did not load";
  }
  const Model& model() { return *model_; }
  int n_vocab() { return model_->config().n_vocab; }

  static Model* model_;
};
Model* SessionTest::model_ = nullptr;

TEST_F(SessionTest, RejectsTokenIdsOutsideTheVocabularyNamingTheIndex) {
  Session s(model(), 64);
  const std::vector<int32_t> negative = {464, 2068, -1};
  EXPECT_THAT(s.Eval(negative, EvalMode::kBatch, LogitRows::Last(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("-1"), HasSubstr("index 2"))));
  const std::vector<int32_t> too_big = {n_vocab(), 464};
  EXPECT_THAT(s.Eval(too_big, EvalMode::kSequential, LogitRows::Last(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("50257"), HasSubstr("index 0"))));
  EXPECT_EQ(s.n_past(), 0);
  // The largest valid id is accepted.
  const std::vector<int32_t> last = {n_vocab() - 1};
  EXPECT_THAT(s.Eval(last, EvalMode::kBatch, LogitRows::None(), nullptr), IsOk());
  EXPECT_EQ(s.n_past(), 1);
}

TEST_F(SessionTest, RejectsEmptyInput) {
  Session s(model(), 64);
  EXPECT_THAT(s.Eval({}, EvalMode::kBatch, LogitRows::Last(), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no tokens")));
  EXPECT_EQ(s.n_past(), 0);
}

TEST_F(SessionTest, SequencePastTheContextIsOutOfRange) {
  Session s(model(), 8);
  EXPECT_EQ(s.max_context(), 8);
  const std::vector<int32_t> nine(kPrompt.begin(), kPrompt.begin() + 9);
  EXPECT_THAT(s.Eval(nine, EvalMode::kBatch, LogitRows::Last(), nullptr),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("exceeds the context of 8")));
  EXPECT_EQ(s.n_past(), 0);
  // Across two calls: 5 fit, 4 more do not, and the 5 stay.
  const std::vector<int32_t> five(kPrompt.begin(), kPrompt.begin() + 5), four(kPrompt.begin() + 5, kPrompt.begin() + 9);
  ASSERT_THAT(s.Eval(five, EvalMode::kBatch, LogitRows::None(), nullptr), IsOk());
  EXPECT_THAT(s.Eval(four, EvalMode::kSequential, LogitRows::Last(), nullptr),
              StatusIs(absl::StatusCode::kOutOfRange, AllOf(HasSubstr("9 tokens"), HasSubstr("5 cached"))));
  EXPECT_EQ(s.n_past(), 5);
  // Exactly filling the context is fine.
  const std::vector<int32_t> three(kPrompt.begin() + 5, kPrompt.begin() + 8);
  EXPECT_THAT(s.Eval(three, EvalMode::kBatch, LogitRows::None(), nullptr), IsOk());
  EXPECT_EQ(s.n_past(), 8);
}

TEST_F(SessionTest, DefaultContextIsTheTrainingContext) {
  Session s(model());
  EXPECT_EQ(s.max_context(), 512);
  EXPECT_GT(s.AllocatedBytes(), 0u);
}

TEST_F(SessionTest, RejectsBadLogitRowListsBeforeEvaluating) {
  Session s(model(), 64);
  const std::vector<int32_t> three(kPrompt.begin(), kPrompt.begin() + 3);
  EXPECT_THAT(s.Eval(three, EvalMode::kBatch, LogitRows::List({0, 3}), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row 3")));
  EXPECT_THAT(s.Eval(three, EvalMode::kBatch, LogitRows::List({-1}), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("row -1")));
  EXPECT_THAT(s.Eval(three, EvalMode::kBatch, LogitRows::List({1, 1}), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("strictly increasing")));
  EXPECT_THAT(s.Eval(three, EvalMode::kSequential, LogitRows::List({2, 0}), nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("strictly increasing")));
  EXPECT_EQ(s.n_past(), 0);
}

TEST_F(SessionTest, LogitRowsChooseWhichRowsAreHandedOut) {
  const std::vector<int32_t> five(kPrompt.begin(), kPrompt.begin() + 5);
  for (EvalMode mode : {EvalMode::kBatch, EvalMode::kSequential}) {
    SCOPED_TRACE(ModeName(mode));
    auto keys = [](const Rows& r) {
      std::vector<int> k;
      for (const auto& [row, v] : r) {
        k.push_back(row);
        EXPECT_EQ(v.size(), 50257u);
      }
      return k;
    };
    Session a(model(), 64), b(model(), 64), c(model(), 64), d(model(), 64);
    EXPECT_EQ(keys(EvalRows(a, five, mode, LogitRows::None())), std::vector<int>{});
    EXPECT_EQ(keys(EvalRows(b, five, mode, LogitRows::Last())), std::vector<int>{4});
    EXPECT_EQ(keys(EvalRows(c, five, mode, LogitRows::All())), (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(keys(EvalRows(d, five, mode, LogitRows::List({0, 2}))), (std::vector<int>{0, 2}));
    EXPECT_EQ(a.n_past(), 5);
  }
}

TEST_F(SessionTest, LogitsCallbackErrorIsReturned) {
  Session s(model(), 64);
  absl::Status st = s.Eval(kPrompt, EvalMode::kBatch, LogitRows::All(), [](int row, absl::Span<const float>) {
    return row == 2 ? absl::ResourceExhaustedError("client went away") : absl::OkStatus();
  });
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("client went away")));
}

TEST_F(SessionTest, BatchInPiecesGivesTheSameLastRowAsOneBatch) {
  Session whole(model(), 64), pieces(model(), 64);
  const Rows one = EvalRows(whole, kPrompt, EvalMode::kBatch, LogitRows::Last());
  const std::vector<int32_t> prefix(kPrompt.begin(), kPrompt.begin() + 6), suffix(kPrompt.begin() + 6, kPrompt.end());
  EvalRows(pieces, prefix, EvalMode::kBatch, LogitRows::None());
  EXPECT_EQ(pieces.n_past(), 6);
  const Rows two = EvalRows(pieces, suffix, EvalMode::kBatch, LogitRows::Last());
  EXPECT_EQ(pieces.n_past(), 11);
  ASSERT_EQ(one.count(10), 1u);
  ASSERT_EQ(two.count(4), 1u);
  EXPECT_EQ(MaxAbsDiff(one.at(10), two.at(4)), 0.0) << "prefix+suffix batch differs from one batch";
}

TEST_F(SessionTest, SequentialInPiecesEqualsOneSequentialEvalBitForBit) {
  Session whole(model(), 64), pieces(model(), 64);
  const Rows one = EvalRows(whole, kPrompt, EvalMode::kSequential, LogitRows::All());
  Rows joined;
  int offset = 0;
  for (int len : {1, 4, 2, 4}) {
    const std::vector<int32_t> part(kPrompt.begin() + offset, kPrompt.begin() + offset + len);
    for (auto& [row, v] : EvalRows(pieces, part, EvalMode::kSequential, LogitRows::All())) joined[offset + row] = v;
    offset += len;
  }
  ASSERT_EQ(offset, static_cast<int>(kPrompt.size()));
  ASSERT_EQ(joined.size(), one.size());
  for (const auto& [row, v] : one) EXPECT_EQ(v, joined.at(row)) << "row " << row;
}

TEST_F(SessionTest, ResetThenReevalReproducesTheLogits) {
  for (EvalMode mode : {EvalMode::kBatch, EvalMode::kSequential}) {
    SCOPED_TRACE(ModeName(mode));
    Session s(model(), 64);
    const Rows first = EvalRows(s, kPrompt, mode, LogitRows::All());
    // Something else in between, so the cache holds other values.
    s.Reset();
    EXPECT_EQ(s.n_past(), 0);
    const std::vector<int32_t> other = {50256, 15496, 995, 11, 616};
    EvalRows(s, other, mode, LogitRows::None());
    s.Reset();
    const Rows again = EvalRows(s, kPrompt, mode, LogitRows::All());
    ASSERT_EQ(first.size(), again.size());
    for (const auto& [row, v] : first) EXPECT_EQ(v, again.at(row)) << "row " << row;
  }
}

// Attention reads the cache up to the used length rounded up to 32, those cells with
// weight 0: cells an earlier, longer use of the cache left there must be cleared (an
// inf would make 0 * inf = NaN), and only those (zero_from marks where zeros start).
TEST_F(SessionTest, AttentionClearsTheStaleCacheCellsItReads) {
  const ModelConfig& c = model().config();
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-1, 1);
  auto random = [&](int n) {
    std::vector<float> v(n);
    for (float& x : v) x = u(rng);
    return v;
  };
  const int long_n = 40, short_n = 10;
  const std::vector<float> q = random(long_n * c.q_dim()), k = random(long_n * c.kv_dim()),
                           v = random(long_n * c.kv_dim());
  std::vector<AttentionScratch> scratch;
  KvCache used(c, 64), fresh(c, 64);
  std::vector<float> out(long_n * c.q_dim()), want(short_n * c.q_dim()), got(short_n * c.q_dim());
  Attention(model(), used, 0, 0, long_n, q.data(), k.data(), v.data(), out.data(), scratch);
  EXPECT_EQ(used.zero_from(0), long_n);
  // The first use's cells after the short sequence become infinities.
  for (int g = 0; g < c.n_head_kv; ++g) {
    for (int pos = short_n; pos < long_n; ++pos) {
      std::fill(used.K(0, g) + pos * c.head_dim, used.K(0, g) + (pos + 1) * c.head_dim, uint16_t{0x7C00});
      for (int d = 0; d < c.head_dim; ++d) used.Vt(0, g)[d * used.capacity() + pos] = 0x7C00;
    }
  }
  Attention(model(), fresh, 0, 0, short_n, q.data(), k.data(), v.data(), want.data(), scratch);
  Attention(model(), used, 0, 0, short_n, q.data(), k.data(), v.data(), got.data(), scratch);
  EXPECT_EQ(got, want);
  for (float x : got) ASSERT_TRUE(std::isfinite(x));
  // Cells 32..39 were past this read: still stale, so the mark stays.
  EXPECT_EQ(used.zero_from(0), long_n);
  EXPECT_EQ(fresh.zero_from(0), short_n);
}

TEST_F(SessionTest, TruncateThenReevalReproducesTheLogits) {
  for (EvalMode mode : {EvalMode::kBatch, EvalMode::kSequential}) {
    SCOPED_TRACE(ModeName(mode));
    Session reference(model(), 64), s(model(), 64);
    const Rows ref = EvalRows(reference, kPrompt, mode, LogitRows::Last());
    // Evaluate the prompt with a different ending, cut back to the common prefix,
    // then evaluate the real ending.
    std::vector<int32_t> detour(kPrompt.begin(), kPrompt.begin() + 6);
    detour.insert(detour.end(), {318, 257, 1332, 13});
    EvalRows(s, detour, mode, LogitRows::None());
    s.Truncate(6);
    EXPECT_EQ(s.n_past(), 6);
    s.Truncate(100);  // never grows
    EXPECT_EQ(s.n_past(), 6);
    const std::vector<int32_t> suffix(kPrompt.begin() + 6, kPrompt.end());
    const Rows got = EvalRows(s, suffix, mode, LogitRows::Last());
    EXPECT_EQ(ref.at(10), got.at(4));
  }
}

TEST_F(SessionTest, LogitsAreIdenticalWithOneAndTwoThreads) {
  ModelOptions o;
  o.threads = 2;
  auto two = LoadTiny(o);
  ASSERT_THAT(two, IsOk());
  ASSERT_EQ((*two)->threads(), 2);
  for (EvalMode mode : {EvalMode::kBatch, EvalMode::kSequential}) {
    SCOPED_TRACE(ModeName(mode));
    Session s1(model(), 64), s2(**two, 64);
    const Rows a = EvalRows(s1, kPrompt, mode, LogitRows::All());
    const Rows b = EvalRows(s2, kPrompt, mode, LogitRows::All());
    ASSERT_EQ(a.size(), kPrompt.size());
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [row, v] : a) EXPECT_EQ(v, b.at(row)) << "row " << row;
  }
}

// Where the weights live changes no value: the huge-page copy (the default) and the
// file mapping give the same logits bit for bit, and the model says which it used.
TEST_F(SessionTest, HugePageCopyAndFileMappingGiveIdenticalLogits) {
  ModelOptions o;
  o.weight_memory = WeightMemory::kMmap;
  auto mapped = LoadTiny(o);
  ASSERT_THAT(mapped, IsOk());
  EXPECT_EQ((*mapped)->weight_memory(), WeightMemory::kMmap);
  const bool thp = HugePageBuffer::TransparentHugePageMode() != "never";
  EXPECT_EQ(model().weight_memory(), thp ? WeightMemory::kHugePages : WeightMemory::kMmap);
  for (EvalMode mode : {EvalMode::kBatch, EvalMode::kSequential}) {
    SCOPED_TRACE(ModeName(mode));
    Session s1(model(), 64), s2(**mapped, 64);
    const Rows a = EvalRows(s1, kPrompt, mode, LogitRows::All());
    const Rows b = EvalRows(s2, kPrompt, mode, LogitRows::All());
    ASSERT_EQ(a.size(), kPrompt.size());
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [row, v] : a) EXPECT_EQ(v, b.at(row)) << "row " << row;
  }
}

// LinearShared (q, k, v and gate, up in one hand-off) must give what one Linear call
// per matrix gives, bit for bit, for one token (gemv) and a batch (gemm), with chunks
// of the pool spanning two matrices.
TEST_F(SessionTest, LinearSharedEqualsOneLinearPerMatrix) {
  ModelOptions o;
  o.threads = 2;
  auto two = LoadTiny(o);
  ASSERT_THAT(two, IsOk());
  const Model& m = **two;
  const LayerWeights& l = m.weights().layers[0];
  const int E = m.config().n_embd;
  for (int n : {1, 5}) {
    SCOPED_TRACE(n);
    std::vector<float> x(static_cast<size_t>(n) * E);
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i)) * 2.0f;
    const WeightMatrix* ws[] = {&l.wq, &l.wk, &l.wv, &l.gate, &l.up};
    std::vector<std::vector<float>> alone(5), shared(5);
    LinearScratch scratch;
    for (int i = 0; i < 5; ++i) {
      alone[i].resize(static_cast<size_t>(n) * ws[i]->rows);
      shared[i].resize(alone[i].size());
      Linear(m, *ws[i], x.data(), n, alone[i].data(), scratch);
    }
    LinearShared(m, {{ws[0], shared[0].data()}, {ws[1], shared[1].data()}, {ws[2], shared[2].data()}},
                 x.data(), n, scratch);
    LinearShared(m, {{ws[3], shared[3].data()}, {ws[4], shared[4].data()}}, x.data(), n, scratch);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(alone[i], shared[i]) << ws[i]->name;
  }
}

// The huge-page copy starts every tensor on a 64-byte line (GGUF aligns to 32, so
// half of the I2_S matrices start mid-line in the file) with the file's bytes, and
// leaves the skipped range (a head read from the mapping) uncopied, for every fixture
// model.
TEST(WeightMemoryTest, TheCopyStartsEveryTensorOnACacheLineWithTheFileBytes) {
  REQUIRE_FIXTURES();
  ThreadPool pool(2);
  int mid_line_in_files = 0;
  for (const std::string& path : ::bitparity::testing::FixtureModels()) {
    SCOPED_TRACE(path);
    auto copied = GgufFile::Open(path);
    auto plain = GgufFile::Open(path);
    ASSERT_THAT(copied, IsOk());
    ASSERT_THAT(plain, IsOk());
    const std::vector<GgufTensorInfo>& tensors = (*plain)->tensors();
    ASSERT_FALSE(tensors.empty());
    // skip the largest tensor, as Model::Load skips a screened or int8 head
    size_t skipped = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].byte_size > tensors[skipped].byte_size) skipped = i;
    }
    const uint64_t skip_begin = tensors[skipped].offset, skip_end = skip_begin + tensors[skipped].byte_size;
    absl::StatusOr<HugePageBuffer> buf = CopyTensorDataToHugePages(**copied, pool, skip_begin, skip_end);
    ASSERT_THAT(buf, IsOk());
    for (size_t i = 0; i < tensors.size(); ++i) {
      const GgufTensorInfo& t = tensors[i];
      const uint8_t* in_copy = (*copied)->TensorData((*copied)->tensors()[i]);
      const uint8_t* in_file = (*plain)->TensorData(t);
      if (reinterpret_cast<uintptr_t>(in_file) % 64 != 0) ++mid_line_in_files;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(in_copy) % 64, 0u) << t.name;
      EXPECT_GE(in_copy, buf->data()) << t.name;
      EXPECT_LE(in_copy + t.byte_size, buf->data() + buf->size()) << t.name;
      const std::vector<uint8_t> got(in_copy, in_copy + t.byte_size);
      if (i == skipped) {
        EXPECT_EQ(got, std::vector<uint8_t>(t.byte_size, 0)) << t.name << " was skipped";
      } else {
        EXPECT_EQ(got, std::vector<uint8_t>(in_file, in_file + t.byte_size)) << t.name;
      }
    }
  }
  EXPECT_GT(mid_line_in_files, 0) << "no fixture tensor starts mid-line: the test shows no realignment";
}

TEST(WeightMemoryTest, ParsesBothNamesAndRejectsOthers) {
  EXPECT_EQ(*ParseWeightMemory("hugepages"), WeightMemory::kHugePages);
  EXPECT_EQ(*ParseWeightMemory("mmap"), WeightMemory::kMmap);
  EXPECT_THAT(ParseWeightMemory("huge"),
              StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("huge"), HasSubstr("hugepages or mmap"))));
  EXPECT_STREQ(WeightMemoryName(WeightMemory::kMmap), "mmap");
  EXPECT_STREQ(WeightMemoryName(WeightMemory::kHugePages), "hugepages");
}

TEST_F(SessionTest, ScalarKernelsAgreeWithTheDefaultPath) {
  ModelOptions o;
  o.kernels = KernelPath::kScalar;
  auto scalar = LoadTiny(o);
  ASSERT_THAT(scalar, IsOk());
  for (EvalMode mode : {EvalMode::kBatch, EvalMode::kSequential}) {
    Session s1(model(), 64), s2(**scalar, 64);
    const Rows a = EvalRows(s1, kPrompt, mode, LogitRows::All());
    const Rows b = EvalRows(s2, kPrompt, mode, LogitRows::All());
    double worst = 0;
    for (const auto& [row, v] : a) worst = std::max(worst, MaxAbsDiff(v, b.at(row)));
    std::printf("[model] tiny-b158 %-5s kernels %s vs %s: max |dlogit| = %.3g over %zu rows\n", ModeName(mode),
                model().kernels().name, (*scalar)->kernels().name, worst, a.size());
    EXPECT_LE(worst, 1e-3) << ModeName(mode);
  }
}

TEST_F(SessionTest, CancelledBatchKeepsNothingAndCanBeRerun) {
  Session s(model(), 64), reference(model(), 64);
  EvalHooks hooks;
  int polls = 0;
  hooks.cancelled = [&] { return ++polls >= 2; };  // during layer 1 of the only chunk
  int rows_seen = 0;
  absl::Status st = s.Eval(kPrompt, EvalMode::kBatch, LogitRows::All(),
                           [&](int, absl::Span<const float>) {
                             ++rows_seen;
                             return absl::OkStatus();
                           },
                           &hooks);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(s.n_past(), 0);
  EXPECT_EQ(rows_seen, 0);
  // The session is usable afterwards and gives the same answer as a fresh one.
  EXPECT_EQ(EvalRows(s, kPrompt, EvalMode::kBatch, LogitRows::Last()),
            EvalRows(reference, kPrompt, EvalMode::kBatch, LogitRows::Last()));
}

TEST_F(SessionTest, CancelledSequentialEvalKeepsOnlyFullyEvaluatedTokens) {
  Session s(model(), 64), reference(model(), 64);
  EvalHooks hooks;
  bool stop = false;
  hooks.cancelled = [&] { return stop; };
  std::vector<int> rows;
  absl::Status st = s.Eval(kPrompt, EvalMode::kSequential, LogitRows::All(),
                           [&](int row, absl::Span<const float>) {
                             rows.push_back(row);
                             if (row == 2) stop = true;  // tokens 0..2 are done; cancel inside token 3
                             return absl::OkStatus();
                           },
                           &hooks);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(rows, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(s.n_past(), 3);
  // Continuing from the 3 kept tokens gives the logits of an uninterrupted run.
  const std::vector<int32_t> rest(kPrompt.begin() + 3, kPrompt.end());
  const Rows cont = EvalRows(s, rest, EvalMode::kSequential, LogitRows::Last());
  const Rows ref = EvalRows(reference, kPrompt, EvalMode::kSequential, LogitRows::Last());
  EXPECT_EQ(cont.at(7), ref.at(10));
}

TEST_F(SessionTest, ResidualTraceReportsEveryLayerForTracedRowsOnly) {
  const ModelConfig& c = model().config();
  for (EvalMode mode : {EvalMode::kBatch, EvalMode::kSequential}) {
    SCOPED_TRACE(ModeName(mode));
    Session s(model(), 64);
    EvalHooks hooks;
    hooks.trace_rows = {0, 3};
    std::map<int, std::vector<int>> layers_by_row;
    bool sizes_ok = true, finite = true;
    hooks.on_residual = [&](int layer, int row, absl::Span<const float> h) {
      layers_by_row[row].push_back(layer);
      sizes_ok &= static_cast<int>(h.size()) == c.n_embd;
      for (float v : h) finite &= std::isfinite(v);
    };
    const std::vector<int32_t> five(kPrompt.begin(), kPrompt.begin() + 5);
    EvalRows(s, five, mode, LogitRows::Last(), &hooks);
    std::vector<int> expected;
    for (int l = 0; l <= c.n_layer; ++l) expected.push_back(l);
    ASSERT_EQ(layers_by_row.size(), 2u);
    EXPECT_EQ(layers_by_row[0], expected);
    EXPECT_EQ(layers_by_row[3], expected);
    EXPECT_TRUE(sizes_ok);
    EXPECT_TRUE(finite);
  }
}

// ---- fault injection: where each fault first shows -------------------------------

// Residual vectors of the traced row, by layer (n_layer + 1 of them).
std::vector<std::vector<float>> TraceLastRow(const Model& m, absl::Span<const int32_t> tokens) {
  const int n_layer = m.config().n_layer;
  std::vector<std::vector<float>> by_layer(n_layer + 1);
  EvalHooks hooks;
  hooks.trace_rows = {static_cast<int>(tokens.size()) - 1};
  hooks.on_residual = [&](int layer, int, absl::Span<const float> h) { by_layer[layer].assign(h.begin(), h.end()); };
  Session s(m, 64);
  absl::Status st = s.Eval(tokens, EvalMode::kBatch, LogitRows::None(), nullptr, &hooks);
  EXPECT_THAT(st, IsOk());
  return by_layer;
}

class FaultTraceTest : public SessionTest, public ::testing::WithParamInterface<std::pair<const char*, int>> {};

TEST_P(FaultTraceTest, FaultFirstChangesTheResidualAtItsLayer) {
  const auto [spec, layer] = GetParam();
  ModelOptions o;
  auto f = FaultInjection::Parse(spec);
  ASSERT_THAT(f, IsOk());
  o.fault = *f;
  auto faulty = LoadTiny(o);
  ASSERT_THAT(faulty, IsOk());
  // The last row of a multi-token prompt: a single token attends only to itself,
  // which would hide faults in Q and K.
  const auto clean = TraceLastRow(model(), kPrompt);
  const auto bad = TraceLastRow(**faulty, kPrompt);
  const int n_layer = model().config().n_layer;
  ASSERT_EQ(clean.size(), static_cast<size_t>(n_layer + 1));
  for (int l = 0; l < layer; ++l) EXPECT_EQ(clean[l], bad[l]) << spec << " changed layer " << l;
  const double at = MaxAbsDiff(clean[layer], bad[layer]);
  const double final_diff = MaxAbsDiff(clean[n_layer], bad[n_layer]);
  std::printf("[fault] %-24s max |d residual| at layer %d: %.3g, after final norm: %.3g\n", spec, layer, at,
              final_diff);
  // Every fault moves its layer's residual stream by far more than rounding noise.
  EXPECT_GT(at, 1e-3) << spec << " barely changed layer " << layer;
}

INSTANTIATE_TEST_SUITE_P(Faults, FaultTraceTest,
                         ::testing::Values(std::make_pair("flip-row:1:attn_q:0", 1), std::make_pair("skip-sub-norm:2", 2),
                                           std::make_pair("rope-offset:1", 1),
                                           std::make_pair("scale-error:3:ffn_down", 3)),
                         [](const ::testing::TestParamInfo<std::pair<const char*, int>>& i) {
                           std::string s = i.param.first;
                           for (char& ch : s) if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace bitparity
