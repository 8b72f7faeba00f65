// engine/model/generate: greedy continuations against known answers (the tiny-b158
// golden manifest, llama2.c's 200 greedy stories260K tokens), every finish reason
// (length, stop token, stop sequence, EOS, cancelled), streaming, callback errors,
// argument errors and seeded reproducibility.
//
// EOS never comes up in greedy or sampled runs of the fixture models, so the EOS
// path uses a hand-made model (tests/model/handmade_model.h) with stories260K's
// vocabulary whose head always prefers one chosen token.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "base/generation_text.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/model/generate.h"
#include "engine/model/generation.h"
#include "engine/model/model.h"
#include "engine/model/session.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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
using ::testing::HasSubstr;
using json = nlohmann::json;

std::unique_ptr<Model> MustLoad(const std::string& path, int threads = 1) {
  ModelOptions o;
  o.threads = threads;
  auto m = Model::Load(path, o);
  EXPECT_THAT(m, IsOk()) << path;
  return m.ok() ? std::move(*m) : nullptr;
}

json TinyManifest() {
  std::ifstream f(FixturePath("golden/tiny-b158/manifest.json"));
  return json::parse(f);
}

const json& PromptById(const json& manifest, const std::string& id) {
  for (const json& p : manifest["prompts"]) {
    if (p["id"] == id) return p;
  }
  ADD_FAILURE() << "no prompt " << id;
  return manifest["prompts"][0];
}

GenerateOptions Greedy(int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.ignore_eos = true;
  return o;
}

// ---- known answers -----------------------------------------------------------------

class TinyGenerateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::bitparity::testing::HaveFixtures()) return;
    model_ = MustLoad(FixturePath("models/tiny-b158.gguf")).release();
    manifest_ = new json(TinyManifest());
  }
  static void TearDownTestSuite() {
    delete model_;
    delete manifest_;
    model_ = nullptr;
    manifest_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_FIXTURES();
    ASSERT_NE(model_, nullptr);
  }
  const Model& model() { return *model_; }
  // p2_nums: our greedy ids match bitnet.cpp's for all 24 steps.
  std::vector<int32_t> Prompt() { return PromptById(*manifest_, "p2_nums")["tokens"].get<std::vector<int32_t>>(); }
  GenerateResult MustGenerate(const std::vector<int32_t>& prompt, const GenerateOptions& o,
                              const TokenCallback& cb = nullptr, const std::function<bool()>& cancelled = nullptr) {
    Session s(model(), 512);
    auto r = Generate(s, prompt, o, cb, cancelled);
    EXPECT_THAT(r, IsOk());
    return r.ok() ? *r : GenerateResult{};
  }

  static Model* model_;
  static json* manifest_;
};
Model* TinyGenerateTest::model_ = nullptr;
json* TinyGenerateTest::manifest_ = nullptr;

TEST_F(TinyGenerateTest, GreedyMatchesGoldenTwentyFourTokens) {
  const json& p = PromptById(*manifest_, "p2_nums");
  const std::vector<int32_t> ref = p["greedy"]["ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(ref.size(), 24u);
  const GenerateResult r = MustGenerate(Prompt(), Greedy(24));
  EXPECT_EQ(r.ids, ref);
  EXPECT_EQ(r.text, p["greedy"]["text"].get<std::string>());
  EXPECT_EQ(r.finish_reason, FinishReason::kLength);
  EXPECT_EQ(r.timings.prompt_tokens, static_cast<int>(Prompt().size()));
  EXPECT_EQ(r.timings.decode_steps, 23);
}

// The batch loop evaluates a long prompt in chunks over several steps, calling
// EvalStarting before the first chunk and again before the last one (whose logits row
// ends the prefill). The prefill time spans them all. An ordering check, not a speed
// one: the clock is read between the calls and waited on until it moves 2 ms.
TEST_F(TinyGenerateTest, PrefillTimeOfAChunkedPromptRunsFromItsFirstChunk) {
  absl::StatusOr<std::unique_ptr<Generation>> g = Generation::Start(model(), Prompt(), Greedy(1));
  ASSERT_THAT(g, IsOk());
  (*g)->EvalStarting();  // the first chunk
  const auto after_first = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - after_first < std::chrono::milliseconds(2)) {
  }
  const auto before_last = std::chrono::steady_clock::now();
  (*g)->EvalStarting();  // the last chunk
  const std::vector<float> row(model().config().n_vocab, 0.0f);
  (*g)->TakeLogits(row, nullptr);
  ASSERT_THAT((*g)->Next(static_cast<int>(Prompt().size()), 512), IsOk());
  ASSERT_TRUE((*g)->done());
  const GenerateResult r = (*g)->Finish();
  using Ms = std::chrono::duration<double, std::milli>;
  EXPECT_GE(r.timings.prefill_ms, Ms(before_last - after_first).count());
  EXPECT_GE(r.timings.first_token_ms, r.timings.prefill_ms);
}

TEST_F(TinyGenerateTest, StopTokenIdEndsGenerationWithThatIdLast) {
  const GenerateResult full = MustGenerate(Prompt(), Greedy(24));
  ASSERT_EQ(full.ids.size(), 24u);
  const int32_t stop = full.ids[5];
  const size_t first = std::find(full.ids.begin(), full.ids.end(), stop) - full.ids.begin();
  GenerateOptions o = Greedy(24);
  o.stop_token_ids = {stop};
  const GenerateResult r = MustGenerate(Prompt(), o);
  EXPECT_EQ(r.finish_reason, FinishReason::kStopToken);
  ASSERT_EQ(r.ids.size(), first + 1);
  EXPECT_EQ(r.ids.back(), stop);
  EXPECT_EQ(r.ids, std::vector<int32_t>(full.ids.begin(), full.ids.begin() + first + 1));
  EXPECT_EQ(r.tokens.size(), r.ids.size());
}

// Runs with `stop` and checks the result against the greedy run `full`: the text is
// the greedy text up to the first occurrence, and generation ends on the token that
// completed it.
// Index of the token of `full` whose text completes the first occurrence of `stop`.
size_t CompletingToken(const GenerateResult& full, const std::string& stop) {
  const size_t at = full.text.find(stop);
  size_t completing = 0;
  std::string so_far;
  for (; completing < full.tokens.size(); ++completing) {
    so_far += full.tokens[completing].text;
    if (so_far.size() >= at + stop.size()) break;
  }
  return completing;
}

void ExpectStopsAt(const GenerateResult& full, const std::string& stop, const GenerateResult& r,
                   const std::string& streamed) {
  SCOPED_TRACE("stop sequence '" + stop + "'");
  const size_t at = full.text.find(stop);
  ASSERT_NE(at, std::string::npos);
  const size_t completing = CompletingToken(full, stop);
  EXPECT_EQ(r.finish_reason, FinishReason::kStopSequence);
  EXPECT_EQ(r.text, full.text.substr(0, at));
  EXPECT_EQ(r.text.find(stop), std::string::npos);
  EXPECT_EQ(r.ids, std::vector<int32_t>(full.ids.begin(), full.ids.begin() + completing + 1));
  EXPECT_EQ(streamed, r.text) << "streamed pieces differ from result.text";
}

TEST_F(TinyGenerateTest, StopSequenceEndsGenerationAndIsExcludedFromText) {
  const GenerateResult full = MustGenerate(Prompt(), Greedy(24));
  std::printf("[generate] greedy text: '%s'\n", full.text.c_str());
  ASSERT_GE(full.tokens.size(), 12u);
  // One stop made of whole tokens, one that starts inside a token and ends inside the next.
  const std::string whole = full.tokens[7].text + full.tokens[8].text;
  const std::string& a = full.tokens[9].text;
  const std::string& b = full.tokens[10].text;
  ASSERT_GE(a.size(), 2u);
  ASSERT_GE(b.size(), 2u);
  const std::string straddling = a.substr(a.size() - 2) + b.substr(0, 2);
  for (const std::string& stop : {whole, straddling}) {
    GenerateOptions o = Greedy(24);
    o.stop_sequences = {stop, "this never appears \x01"};
    std::string streamed;
    const GenerateResult r = MustGenerate(Prompt(), o, [&](const GeneratedToken& tok) {
      streamed += tok.text;
      return absl::OkStatus();
    });
    ExpectStopsAt(full, stop, r, streamed);
    // The same when the stop completes on the last token allowed.
    o.max_new_tokens = static_cast<int>(CompletingToken(full, stop)) + 1;
    streamed.clear();
    const GenerateResult last = MustGenerate(Prompt(), o, [&](const GeneratedToken& tok) {
      streamed += tok.text;
      return absl::OkStatus();
    });
    ExpectStopsAt(full, stop, last, streamed);
  }
}

TEST_F(TinyGenerateTest, StreamedPiecesConcatenateToTheResultText) {
  for (const char* id : {"p2_nums", "p3_unicode"}) {
    SCOPED_TRACE(id);
    const std::vector<int32_t> prompt = PromptById(*manifest_, id)["tokens"].get<std::vector<int32_t>>();
    std::string streamed;
    std::vector<int32_t> streamed_ids;
    const GenerateResult r = MustGenerate(prompt, Greedy(24), [&](const GeneratedToken& tok) {
      streamed += tok.text;
      streamed_ids.push_back(tok.id);
      return absl::OkStatus();
    });
    EXPECT_EQ(streamed, r.text);
    EXPECT_EQ(streamed_ids, r.ids);
    ASSERT_THAT(model().tokenizer()->Decode(r.ids), IsOk());
    EXPECT_EQ(r.text, *model().tokenizer()->Decode(r.ids));
  }
}

// Both servers cut text with base/generation_text.h: the native engine inside
// Generate, the bitnet.cpp worker in its own token loop (cpp_ref_adapter/
// bitnet_cpp_worker.cc) from each token's piece. Replaying Generate's ids the way
// the worker does must give the same text for every token and the same stop.
TEST_F(TinyGenerateTest, WorkerStyleReplayOfTheIdsGivesTheSameText) {
  for (const char* id : {"p2_nums", "p3_unicode"}) {
    const std::vector<int32_t> prompt = PromptById(*manifest_, id)["tokens"].get<std::vector<int32_t>>();
    const GenerateResult full = MustGenerate(prompt, Greedy(24));
    ASSERT_GE(full.tokens.size(), 12u);
    const std::string& t9 = full.tokens[9].text;
    std::vector<std::vector<std::string>> stop_sets = {
        {}, {"this never appears \x01"}, {full.tokens[7].text + full.tokens[8].text}};
    if (t9.size() >= 2) stop_sets.push_back({t9.substr(1), "zz\xF0"});
    for (const std::vector<std::string>& stops : stop_sets) {
      SCOPED_TRACE(std::string(id) + " stops: " + absl::StrJoin(stops, " | "));
      GenerateOptions o = Greedy(24);
      o.stop_sequences = stops;
      const GenerateResult native = MustGenerate(prompt, o);
      GenerationText worker(stops);
      std::string worker_text;
      bool stopped = false;
      for (size_t i = 0; i < native.ids.size(); ++i) {
        absl::StatusOr<std::string> piece = model().tokenizer()->TokenToPiece(native.ids[i], false);
        ASSERT_THAT(piece, IsOk());
        const bool last = static_cast<int>(i) + 1 == o.max_new_tokens;
        const GenerationText::Step step = worker.Push(*piece, /*adds_text=*/true, last);
        EXPECT_EQ(step.text, native.tokens[i].text) << "token " << i;
        stopped = step.stopped;
        if (stopped) {
          EXPECT_EQ(i + 1, native.ids.size()) << "the worker stops where Generate stopped";
        }
      }
      EXPECT_EQ(worker.text(), native.text);
      EXPECT_EQ(stopped, native.finish_reason == FinishReason::kStopSequence);
    }
  }
}

TEST_F(TinyGenerateTest, CallbackErrorStopsGenerationWithThatError) {
  int calls = 0;
  Session s(model(), 512);
  auto r = Generate(s, Prompt(), Greedy(24), [&](const GeneratedToken&) {
    return ++calls == 2 ? absl::UnavailableError("client disconnected") : absl::OkStatus();
  });
  EXPECT_THAT(r, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("client disconnected")));
  EXPECT_EQ(calls, 2);
}

TEST_F(TinyGenerateTest, CancellationAfterThreeTokensKeepsThree) {
  int produced = 0;
  Session s(model(), 512);
  const std::vector<int32_t> prompt = Prompt();
  auto r = Generate(
      s, prompt, Greedy(24),
      [&](const GeneratedToken&) {
        ++produced;
        return absl::OkStatus();
      },
      [&] { return produced >= 3; });
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(r->ids.size(), 3u);
  EXPECT_EQ(r->tokens.size(), 3u);
  // The third token was sampled but never evaluated: the cache holds prompt + 2.
  EXPECT_EQ(s.n_past(), static_cast<int>(prompt.size()) + 2);
  const GenerateResult full = MustGenerate(prompt, Greedy(3));
  EXPECT_EQ(r->ids, full.ids);
}

TEST_F(TinyGenerateTest, CancellationDuringPrefillReturnsNoTokens) {
  Session s(model(), 512);
  auto r = Generate(s, Prompt(), Greedy(24), nullptr, [] { return true; });
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(r->ids.empty());
  EXPECT_EQ(s.n_past(), 0);
}

TEST_F(TinyGenerateTest, ZeroMaxNewTokensGeneratesNothing) {
  int calls = 0;
  const GenerateResult r = MustGenerate(Prompt(), Greedy(0), [&](const GeneratedToken&) {
    ++calls;
    return absl::OkStatus();
  });
  EXPECT_TRUE(r.ids.empty());
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.finish_reason, FinishReason::kLength);
  EXPECT_EQ(calls, 0);
}

TEST_F(TinyGenerateTest, RejectsBadArguments) {
  Session s(model(), 512);
  const std::vector<int32_t> prompt = Prompt();
  EXPECT_THAT(Generate(s, {}, Greedy(4)), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("prompt is empty")));
  EXPECT_THAT(Generate(s, prompt, Greedy(-1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_new_tokens")));
  GenerateOptions o = Greedy(4);
  o.stop_token_ids = {50257};
  EXPECT_THAT(Generate(s, prompt, o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("50257")));
  o = Greedy(4);
  o.stop_sequences = {""};
  EXPECT_THAT(Generate(s, prompt, o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("stop sequences")));
  o = Greedy(4);
  o.sampling.top_p = 0.0f;
  EXPECT_THAT(Generate(s, prompt, o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top_p")));
  EXPECT_EQ(s.n_past(), 0);
  // A prompt past the context is the session's OutOfRange.
  Session small(model(), 8);
  EXPECT_THAT(Generate(small, prompt, Greedy(4)), StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("context")));
}

TEST_F(TinyGenerateTest, FullContextEndsWithLength) {
  const std::vector<int32_t> prompt = Prompt();
  Session s(model(), static_cast<int>(prompt.size()) + 3);
  auto r = Generate(s, prompt, Greedy(24));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->finish_reason, FinishReason::kLength);
  // Three generated tokens fill the cache; a fourth is sampled from the last logits.
  EXPECT_EQ(r->ids.size(), 4u);
  EXPECT_EQ(s.n_past(), s.max_context());
  // Text held back (a partial UTF-8 sequence) is still handed out at the end.
  auto text = model().tokenizer()->Decode(r->ids);
  ASSERT_THAT(text, IsOk());
  EXPECT_EQ(r->text, *text);
}

TEST_F(TinyGenerateTest, SeededSamplingIsReproducibleAcrossSessions) {
  GenerateOptions o = Greedy(24);
  o.sampling.temperature = 0.9f;
  o.sampling.top_k = 40;
  o.sampling.top_p = 0.95f;
  o.sampling.seed = 1234;
  const GenerateResult a = MustGenerate(Prompt(), o);
  const GenerateResult b = MustGenerate(Prompt(), o);
  o.sampling.seed = 1235;
  const GenerateResult c = MustGenerate(Prompt(), o);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.text, b.text);
  EXPECT_NE(a.ids, c.ids);
  const GenerateResult greedy = MustGenerate(Prompt(), Greedy(24));
  EXPECT_NE(a.ids, greedy.ids);
}

TEST_F(TinyGenerateTest, LogprobsDescribeTheRawLogits) {
  GenerateOptions o = Greedy(6);
  o.logprobs_top_n = 3;
  const GenerateResult r = MustGenerate(Prompt(), o);
  ASSERT_EQ(r.tokens.size(), 6u);
  for (const GeneratedToken& t : r.tokens) {
    ASSERT_EQ(t.top.size(), 3u);
    ASSERT_EQ(t.top_logprobs.size(), 3u);
    EXPECT_EQ(t.top[0].id, t.id);  // greedy picks the top logit
    EXPECT_EQ(t.logprob, t.top_logprobs[0]);
    EXPECT_LT(t.logprob, 0.0f);
    EXPECT_GE(t.top[0].logit, t.top[1].logit);
    EXPECT_GE(t.top_logprobs[0], t.top_logprobs[1]);
    EXPECT_GE(t.top_logprobs[1], t.top_logprobs[2]);
  }
}

TEST_F(TinyGenerateTest, EndOfTextIsEndOfGeneration) {
  const Tokenizer* tok = model().tokenizer();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_TRUE(tok->IsEndOfGeneration(50256));
  EXPECT_FALSE(tok->IsEndOfGeneration(464));
}

// ---- stories260K: llama2.c's 200 greedy tokens --------------------------------------

TEST(StoriesGenerateTest, Greedy200TokensFromBosMatchLlama2c) {
  REQUIRE_FIXTURES();
  std::ifstream f(FixturePath("models/stories260K.greedy200.txt"));
  ASSERT_TRUE(f);
  std::vector<std::string> lines;
  for (std::string line; std::getline(f, line);) lines.push_back(line);
  ASSERT_GE(lines.size(), 4u);
  // Line 3: the ids as a JSON list; lines 4..: the text.
  const std::vector<int32_t> ref = json::parse(lines[2]).get<std::vector<int32_t>>();
  ASSERT_EQ(ref.size(), 200u);
  std::vector<std::string> text_lines(lines.begin() + 3, lines.end());
  while (!text_lines.empty() && text_lines.back().empty()) text_lines.pop_back();
  const std::string ref_text = absl::StrJoin(text_lines, "\n");

  std::unique_ptr<Model> m = MustLoad(FixturePath("models/stories260K.gguf"));
  ASSERT_NE(m, nullptr);
  ASSERT_NE(m->tokenizer(), nullptr);
  const int32_t bos = m->tokenizer()->bos_id();
  ASSERT_EQ(bos, 1);
  Session s(*m);
  const std::vector<int32_t> prompt = {bos};
  auto r = Generate(s, prompt, Greedy(200));
  ASSERT_THAT(r, IsOk());
  size_t same = 0;
  while (same < ref.size() && same < r->ids.size() && r->ids[same] == ref[same]) ++same;
  std::printf("[generate] stories260K greedy from BOS: %zu/200 ids identical to llama2.c, text %s\n", same,
              r->text == ref_text ? "identical" : "differs");
  EXPECT_EQ(r->ids, ref);
  EXPECT_EQ(r->text, ref_text);
}

// ---- EOS, on a hand-made model that always prefers one token -----------------------

class HandmadeGenerateTest : public ::testing::Test {
 protected:
  // A model with stories260K's vocabulary whose greedy choice is always `token`.
  std::unique_ptr<Model> ModelPreferring(int32_t token) {
    auto vocab = GgufFile::Open(FixturePath("models/stories260K.gguf"));
    EXPECT_THAT(vocab, IsOk());
    if (!vocab.ok()) return nullptr;
    HandmadeModelSpec spec;
    spec.n_vocab = 512;
    spec.favoured_token = token;
    spec.vocab_from = vocab->get();
    const std::string path = ::testing::TempDir() + "/generate_test_prefers_" + std::to_string(token) + ".gguf";
    EXPECT_THAT(WriteHandmadeModel(path, spec), IsOk());
    return MustLoad(path);
  }
};

TEST_F(HandmadeGenerateTest, EosStopsGenerationUnlessIgnored) {
  REQUIRE_FIXTURES();
  std::unique_ptr<Model> m = ModelPreferring(2);
  ASSERT_NE(m, nullptr);
  ASSERT_NE(m->tokenizer(), nullptr);
  ASSERT_EQ(m->tokenizer()->eos_id(), 2);
  EXPECT_TRUE(m->tokenizer()->IsEndOfGeneration(2));
  const std::vector<int32_t> prompt = {1, 403, 407};
  {
    Session s(*m);
    GenerateOptions o;
    o.max_new_tokens = 5;
    auto r = Generate(s, prompt, o);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->finish_reason, FinishReason::kEos);
    EXPECT_EQ(r->ids, std::vector<int32_t>{2});
    EXPECT_EQ(r->text, "");
  }
  {
    Session s(*m);
    GenerateOptions o;
    o.max_new_tokens = 5;
    o.ignore_eos = true;
    auto r = Generate(s, prompt, o);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->finish_reason, FinishReason::kLength);
    EXPECT_EQ(r->ids, std::vector<int32_t>(5, 2));
  }
  {
    // ignore_eos, but the id is also a stop token: stop token wins.
    Session s(*m);
    GenerateOptions o;
    o.max_new_tokens = 5;
    o.ignore_eos = true;
    o.stop_token_ids = {2};
    auto r = Generate(s, prompt, o);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->finish_reason, FinishReason::kStopToken);
    EXPECT_EQ(r->ids, std::vector<int32_t>{2});
  }
}

TEST_F(HandmadeGenerateTest, OrdinaryTokenRunsToLength) {
  REQUIRE_FIXTURES();
  std::unique_ptr<Model> m = ModelPreferring(403);  // not an end-of-generation token
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->tokenizer()->IsEndOfGeneration(403));
  Session s(*m);
  GenerateOptions o;
  o.max_new_tokens = 4;
  auto r = Generate(s, std::vector<int32_t>{1}, o);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->finish_reason, FinishReason::kLength);
  EXPECT_EQ(r->ids, std::vector<int32_t>(4, 403));
  EXPECT_EQ(r->text, *m->tokenizer()->Decode(r->ids));
}

TEST(HandmadeNoVocabTest, StopSequencesNeedATokenizer) {
  const std::string path = ::testing::TempDir() + "/generate_test_novocab.gguf";
  ASSERT_THAT(WriteHandmadeModel(path, HandmadeModelSpec{}), IsOk());
  std::unique_ptr<Model> m = MustLoad(path);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->tokenizer(), nullptr);
  Session s(*m);
  GenerateOptions o;
  o.max_new_tokens = 3;
  o.stop_sequences = {"x"};
  const std::vector<int32_t> prompt = {1, 2};
  EXPECT_THAT(Generate(s, prompt, o), StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("tokenizer")));
  // Without stop sequences it generates ids (no text): favoured token 0 every time.
  o.stop_sequences.clear();
  auto r = Generate(s, prompt, o);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->ids, std::vector<int32_t>(3, 0));
  EXPECT_EQ(r->text, "");
}

}  // namespace
}  // namespace bitparity
