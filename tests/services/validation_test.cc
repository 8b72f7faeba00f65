// Request validation rules of bitnet.v1 (services/common/validation.h), without a
// server: each rule accepts its boundary values and rejects the first value past
// them with the documented code and a message naming the field.
#include "services/common/validation.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/fake_backend.h"
#include "tests/services/status_matchers.h"

namespace bitparity {
namespace {

namespace v1 = bitnet::v1;
using ::bitparity::testing::FakeBackend;
using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Input TextInput(const std::string& text) {
  v1::Input in;
  in.set_text(text);
  return in;
}

v1::Input IdsInput(std::initializer_list<int32_t> ids) {
  v1::Input in;
  for (int32_t id : ids) in.mutable_ids()->add_ids(id);
  return in;
}

TEST(ResolveInput, TextUsesTheModelsBosDefault) {
  FakeBackend backend;
  auto ids = ResolveInput(TextInput("ab"), backend, 0, nullptr);
  ASSERT_THAT(ids, IsOk());
  EXPECT_THAT(*ids, ElementsAre(1, 'a' % 90 + 10, 'b' % 90 + 10));
}

TEST(ResolveInput, ExplicitAddBosFalseWins) {
  FakeBackend backend;
  v1::Input in = TextInput("a");
  in.set_add_bos(false);
  auto ids = ResolveInput(in, backend, 0, nullptr);
  ASSERT_THAT(ids, IsOk());
  EXPECT_THAT(*ids, ElementsAre('a' % 90 + 10));
}

TEST(ResolveInput, RejectsMissingInput) {
  FakeBackend backend;
  EXPECT_THAT(ResolveInput(v1::Input(), backend, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("input is empty")));
}

TEST(ResolveInput, RejectsEmptyIds) {
  FakeBackend backend;
  v1::Input in;
  in.mutable_ids();
  EXPECT_THAT(ResolveInput(in, backend, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("input.ids is empty")));
}

TEST(ResolveInput, RejectsEmptyTextWithoutBos) {
  FakeBackend backend;
  v1::Input in = TextInput("");
  in.set_add_bos(false);
  EXPECT_THAT(ResolveInput(in, backend, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gave no tokens")));
}

TEST(ResolveInput, EmptyTextWithBosIsJustBos) {
  FakeBackend backend;
  auto ids = ResolveInput(TextInput(""), backend, 0, nullptr);
  ASSERT_THAT(ids, IsOk());
  EXPECT_THAT(*ids, ElementsAre(1));
}

TEST(ResolveInput, RejectsIdOutsideVocabulary) {
  FakeBackend backend;
  EXPECT_THAT(ResolveInput(IdsInput({1, 99}), backend, 0, nullptr), IsOk());
  EXPECT_THAT(ResolveInput(IdsInput({1, 100}), backend, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("input.ids[1] = 100 is outside the vocabulary [0, 100)")));
  EXPECT_THAT(ResolveInput(IdsInput({-1}), backend, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("input.ids[0] = -1")));
}

TEST(ResolveInput, RejectsAddBosOnIds) {
  FakeBackend backend;
  v1::Input in = IdsInput({5});
  in.set_add_bos(true);
  EXPECT_THAT(ResolveInput(in, backend, 0, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("apply to input.text only")));
}

TEST(CheckTextFits, RefusesATextLongerThanTheContextAtTheLongestTokenEach) {
  // 64 positions, 1 for BOS, 16 reserved: 47 left; at 4 bytes per token at most,
  // 188 bytes may still fit and 189 bytes cannot.
  EXPECT_THAT(CheckTextFits(188, 4, 1, 16, 64, "input.text"), IsOk());
  EXPECT_THAT(CheckTextFits(189, 4, 1, 16, 64, "input.text"),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("input.text has 189 bytes and cannot fit in 47 tokens (the "
                                 "server's max_context 64 - 16 new tokens - 1 for BOS): no token "
                                 "is longer than 4 bytes, so it is at least 48 tokens; refused "
                                 "without tokenizing")));
  EXPECT_THAT(CheckTextFits(257, 4, 0, 0, 64, "text"),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("text has 257 bytes and cannot fit in 64 tokens (the server's "
                                 "max_context 64): no token is longer than 4 bytes")));
  EXPECT_THAT(CheckTextFits(256, 4, 0, 0, 64, "text"), IsOk());
  // No room at all: any byte is too many; no text at all fits.
  EXPECT_THAT(CheckTextFits(1, 4, 1, 63, 64, "input.text"),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("cannot fit in 0 tokens")));
  EXPECT_THAT(CheckTextFits(0, 4, 1, 63, 64, "input.text"), IsOk());
  // No bound known: everything passes to the tokenizer.
  EXPECT_THAT(CheckTextFits(int64_t{1} << 40, 0, 1, 0, 64, "input.text"), IsOk());
}

// With a bound, a text that cannot fit is refused before the backend tokenizes it;
// one just inside the bound is tokenized and judged by its exact count.
TEST(ResolveInput, TextPastTheByteBoundIsNotTokenized) {
  FakeBackend backend;  // max_context 64, one token per byte, BOS added
  backend.set_max_token_bytes(1);
  EXPECT_THAT(ResolveInput(TextInput(std::string(64, 'x')), backend, 0, nullptr),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("input.text has 64 bytes and cannot fit in 63 tokens")));
  EXPECT_EQ(backend.tokenize_calls(), 0);
  EXPECT_THAT(ResolveInput(TextInput(std::string(63, 'x')), backend, 0, nullptr), IsOk());
  EXPECT_EQ(backend.tokenize_calls(), 1);
  // add_bos = false frees a position; reserved positions take them.
  v1::Input no_bos = TextInput(std::string(64, 'x'));
  no_bos.set_add_bos(false);
  EXPECT_THAT(ResolveInput(no_bos, backend, 0, nullptr), IsOk());
  EXPECT_THAT(ResolveInput(no_bos, backend, 1, nullptr),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("(the server's max_context 64 - 1 new tokens)")));
  EXPECT_EQ(backend.tokenize_calls(), 2);
  // A bound that is not tight lets the text through to the exact count.
  backend.set_max_token_bytes(2);
  EXPECT_THAT(ResolveInput(TextInput(std::string(100, 'x')), backend, 0, nullptr),
              StatusIs(absl::StatusCode::kOutOfRange,
                       HasSubstr("input: 101 tokens, over the server's max_context 64")));
  EXPECT_EQ(backend.tokenize_calls(), 3);
}

TEST(ResolveInput, ContextOverflowIsOutOfRange) {
  FakeBackend backend;  // max_context 64
  std::string text(63, 'x');  // + BOS = 64 tokens: fits exactly
  EXPECT_THAT(ResolveInput(TextInput(text), backend, 0, nullptr), IsOk());
  EXPECT_THAT(ResolveInput(TextInput(text + "x"), backend, 0, nullptr),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("over the server's max_context 64")));
  // Reserved room for generation counts too.
  EXPECT_THAT(ResolveInput(TextInput(text), backend, 1, nullptr),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("64 input tokens + 1 new tokens")));
}

TEST(ResolveEvalMode, UnspecifiedIsBatchAndUnknownIsRejected) {
  EXPECT_EQ(*ResolveEvalMode(v1::EVAL_MODE_UNSPECIFIED, "mode"), BackendEvalMode::kBatch);
  EXPECT_EQ(*ResolveEvalMode(v1::EVAL_MODE_BATCH, "mode"), BackendEvalMode::kBatch);
  EXPECT_EQ(*ResolveEvalMode(v1::EVAL_MODE_SEQUENTIAL, "mode"), BackendEvalMode::kSequential);
  EXPECT_THAT(ResolveEvalMode(static_cast<v1::EvalMode>(7), "mode"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mode = 7 is not an EvalMode")));
}

TEST(ResolvePositions, LastAllAndList) {
  v1::Positions p;
  EXPECT_THAT(*ResolvePositions(p, 4), ElementsAre(3));
  p.set_kind(v1::Positions::ALL);
  EXPECT_THAT(*ResolvePositions(p, 3), ElementsAre(0, 1, 2));
  p.set_kind(v1::Positions::LIST);
  p.add_list(0);
  p.add_list(2);
  p.add_list(-1);
  EXPECT_THAT(*ResolvePositions(p, 4), ElementsAre(0, 2, 3));
}

TEST(ResolvePositions, RejectsBadLists) {
  v1::Positions p;
  p.set_kind(v1::Positions::LIST);
  EXPECT_THAT(ResolvePositions(p, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("positions.list is empty")));
  p.add_list(4);
  EXPECT_THAT(ResolvePositions(p, 4),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("positions.list[0] = 4 is outside the sequence of 4 tokens")));
  p.set_list(0, -5);
  EXPECT_THAT(ResolvePositions(p, 4), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("positions.list[0] = -5")));
  p.set_list(0, 2);
  p.add_list(-2);  // resolves to 2: not increasing
  EXPECT_THAT(ResolvePositions(p, 4), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("strictly increasing")));
  v1::Positions last;
  last.add_list(1);
  EXPECT_THAT(ResolvePositions(last, 4),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("only with positions.kind = LIST")));
}

TEST(ValidateLogitsOutput, TopKBounds) {
  v1::LogitsOutput o;
  o.set_kind(v1::LogitsOutput::TOP_K);
  o.set_top_k(100);
  EXPECT_THAT(ValidateLogitsOutput(o, 100), IsOk());
  o.set_top_k(101);
  EXPECT_THAT(ValidateLogitsOutput(o, 100),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("output.top_k = 101 must be in [1, 100]")));
  o.set_top_k(0);
  EXPECT_THAT(ValidateLogitsOutput(o, 100), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     HasSubstr("output.top_k = 0")));
}

TEST(ValidateLogitsOutput, FullTakesFormatNotTopK) {
  v1::LogitsOutput o;
  o.set_format(v1::FLOAT_FORMAT_F16);
  auto spec = ValidateLogitsOutput(o, 100);
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->format, v1::FLOAT_FORMAT_F16);
  o.set_top_k(3);
  EXPECT_THAT(ValidateLogitsOutput(o, 100), StatusIs(absl::StatusCode::kInvalidArgument,
                                                     HasSubstr("only with output.kind = TOP_K")));
  v1::LogitsOutput bad;
  bad.set_format(static_cast<v1::FloatFormat>(9));
  EXPECT_THAT(ValidateLogitsOutput(bad, 100), StatusIs(absl::StatusCode::kInvalidArgument,
                                                       HasSubstr("is not a FloatFormat")));
}

TEST(ResolveTraceLayers, EmptyMeansAllIncludingFinalNorm) {
  google::protobuf::RepeatedField<int32_t> layers;
  EXPECT_THAT(*ResolveTraceLayers(layers, 2), ElementsAre(0, 1, 2));
  layers.Add(2);
  EXPECT_THAT(*ResolveTraceLayers(layers, 2), ElementsAre(2));
  layers.Add(3);
  EXPECT_THAT(ResolveTraceLayers(layers, 2), StatusIs(absl::StatusCode::kInvalidArgument,
                                                      HasSubstr("layers[1] = 3 must be in [0, 2]")));
  layers.Set(1, 1);
  EXPECT_THAT(ResolveTraceLayers(layers, 2),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("strictly increasing")));
}

TEST(ValidateSampling, DefaultsAreGreedyAndOff) {
  auto s = ValidateSampling(v1::Sampling(), 100);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(s->temperature, 0.0f);
  EXPECT_EQ(s->top_p, 1.0f);
  EXPECT_EQ(s->repetition_penalty, 1.0f);
  EXPECT_EQ(s->repetition_window, 64);
}

TEST(ValidateSampling, RejectsEachBadValue) {
  struct Case {
    const char* name;
    std::function<void(v1::Sampling*)> set;
    const char* message;
  };
  const Case cases[] = {
      {"negative temperature", [](v1::Sampling* s) { s->set_temperature(-0.1f); }, "sampling.temperature"},
      {"NaN temperature", [](v1::Sampling* s) { s->set_temperature(NAN); }, "sampling.temperature"},
      {"huge temperature", [](v1::Sampling* s) { s->set_temperature(101); }, "sampling.temperature"},
      {"top_k over vocab", [](v1::Sampling* s) { s->set_top_k(101); }, "sampling.top_k = 101"},
      {"negative top_k", [](v1::Sampling* s) { s->set_top_k(-1); }, "sampling.top_k = -1"},
      {"top_p zero", [](v1::Sampling* s) { s->set_top_p(0); }, "sampling.top_p = 0"},
      {"top_p over one", [](v1::Sampling* s) { s->set_top_p(1.5f); }, "sampling.top_p"},
      {"min_p one", [](v1::Sampling* s) { s->set_min_p(1); }, "sampling.min_p = 1"},
      {"penalty zero", [](v1::Sampling* s) { s->set_repetition_penalty(0); }, "sampling.repetition_penalty"},
      {"window -2", [](v1::Sampling* s) { s->set_repetition_window(-2); }, "sampling.repetition_window"},
  };
  for (const Case& c : cases) {
    v1::Sampling s;
    c.set(&s);
    EXPECT_THAT(ValidateSampling(s, 100), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.name;
  }
  v1::Sampling edge;
  edge.set_temperature(100);
  edge.set_top_k(100);
  edge.set_top_p(1);
  edge.set_min_p(0.99f);
  edge.set_repetition_penalty(100);
  edge.set_repetition_window(-1);
  EXPECT_THAT(ValidateSampling(edge, 100), IsOk());
}

TEST(ValidateGenerate, MaxNewTokensRange) {
  FakeBackend backend;
  ServiceLimits limits;
  v1::GenerateRequest r;
  EXPECT_THAT(ValidateGenerate(r, backend.Info(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("max_new_tokens = 0 must be in [1, 64]")));
  r.set_max_new_tokens(64);
  EXPECT_THAT(ValidateGenerate(r, backend.Info(), limits), IsOk());
  r.set_max_new_tokens(65);
  EXPECT_THAT(ValidateGenerate(r, backend.Info(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_new_tokens = 65")));
}

TEST(ValidateGenerate, StopSequencesAndIds) {
  FakeBackend backend;
  ServiceLimits limits;
  limits.max_stop_sequences = 2;
  limits.max_stop_sequence_bytes = 4;
  v1::GenerateRequest r;
  r.set_max_new_tokens(4);
  r.add_stop_sequences("abcd");
  r.add_stop_token_ids(99);
  auto spec = ValidateGenerate(r, backend.Info(), limits);
  ASSERT_THAT(spec, IsOk());
  EXPECT_THAT(spec->stop_sequences, ElementsAre("abcd"));
  EXPECT_THAT(spec->stop_token_ids, ElementsAre(99));

  v1::GenerateRequest long_stop = r;
  long_stop.set_stop_sequences(0, "abcde");
  EXPECT_THAT(ValidateGenerate(long_stop, backend.Info(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stop_sequences[0] is 5 bytes")));
  v1::GenerateRequest empty_stop = r;
  empty_stop.set_stop_sequences(0, "");
  EXPECT_THAT(ValidateGenerate(empty_stop, backend.Info(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stop_sequences[0] is empty")));
  v1::GenerateRequest many = r;
  many.add_stop_sequences("x");
  many.add_stop_sequences("y");
  EXPECT_THAT(ValidateGenerate(many, backend.Info(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 2")));
  v1::GenerateRequest bad_id = r;
  bad_id.add_stop_token_ids(100);
  EXPECT_THAT(ValidateGenerate(bad_id, backend.Info(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stop_token_ids[1] = 100")));
}

TEST(ValidateGenerate, Logprobs) {
  FakeBackend backend;
  ServiceLimits limits;
  v1::GenerateRequest r;
  r.set_max_new_tokens(1);
  EXPECT_EQ(ValidateGenerate(r, backend.Info(), limits)->logprobs_top_n, -1);
  r.set_logprobs(true);
  EXPECT_EQ(ValidateGenerate(r, backend.Info(), limits)->logprobs_top_n, 0);
  r.set_top_logprobs(limits.max_top_logprobs);
  EXPECT_EQ(ValidateGenerate(r, backend.Info(), limits)->logprobs_top_n, limits.max_top_logprobs);
  r.set_top_logprobs(limits.max_top_logprobs + 1);
  EXPECT_THAT(ValidateGenerate(r, backend.Info(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_logprobs = 21")));
  r.set_top_logprobs(3);
  r.set_logprobs(false);
  EXPECT_THAT(ValidateGenerate(r, backend.Info(), limits),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs logprobs = true")));
}

TEST(CheckResponseSize, NamesSizesAndHint) {
  EXPECT_THAT(CheckResponseSize(10, 10, "x", "y"), IsOk());
  EXPECT_THAT(CheckResponseSize(11, 10, "the EvalLogits response", "use streaming"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("the EvalLogits response would be 11 bytes, over the server's "
                                 "max message size of 10 bytes; use streaming")));
}

TEST(PositionLogitsBytes, CoversThePayload) {
  LogitsOutputSpec full;
  EXPECT_GE(PositionLogitsBytes(full, 1000), 4000);
  full.format = v1::FLOAT_FORMAT_F16;
  EXPECT_GE(PositionLogitsBytes(full, 1000), 2000);
  EXPECT_LT(PositionLogitsBytes(full, 1000), 4000);
}

}  // namespace
}  // namespace bitparity
