// Batch invariance of engine/model/batch_step.h: sequences evaluated together in
// steps (arriving at different steps, mixed prompt lengths, batch- and
// sequential-mode prompts cut into chunks, decode tokens beside prompt chunks) give
// every logits row bit-identical to the same sequence evaluated alone by
// Session::Eval. On every fixture model (I2_S, TQ1_0, TQ2_0, F32 llama, the three
// architectures) and with the exact, screened and int8 heads.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/model/batch_step.h"
#include "engine/model/model.h"
#include "engine/model/session.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixtureModels;
using ::bitparity::testing::FixturePath;

// One sequence of the test: its prompt, how it is evaluated, the tokens fed after it.
struct Sequence {
  std::vector<int32_t> prompt;
  EvalMode mode = EvalMode::kBatch;
  std::vector<int32_t> decode;  // fed one by one after the prompt (not sampled)
  int arrival = 0;              // the step it joins
  bool screen = false;          // screened head request (top 1)
};

// Every logits row the sequence produces: the prompt's last, then one per decode token.
using Rows = std::vector<std::vector<float>>;

Rows Alone(const Model& m, const Sequence& q, int max_context) {
  Session s(m, max_context);
  Rows rows;
  ScreenResult result;
  bool screened = false;
  HeadScreen screen;
  screen.request.top_k = 1;
  screen.result = &result;
  screen.screened = &screened;
  auto keep = [&](int, absl::Span<const float> row) {
    rows.emplace_back(row.begin(), row.end());
    return absl::OkStatus();
  };
  EXPECT_TRUE(s.Eval(q.prompt, q.mode, LogitRows::Last(), keep, nullptr, q.screen ? &screen : nullptr).ok());
  for (int32_t id : q.decode) {
    EXPECT_TRUE(s.Eval(absl::MakeConstSpan(&id, 1), EvalMode::kSequential, LogitRows::Last(), keep, nullptr,
                       q.screen ? &screen : nullptr).ok());
  }
  return rows;
}

// All sequences through BatchStep; each step takes every arrived sequence's next
// chunk (`chunk` prompt tokens) or decode token.
std::vector<Rows> Together(const Model& m, const std::vector<Sequence>& seqs, int max_context, int chunk) {
  const int n = static_cast<int>(seqs.size());
  BatchStep step(m, n * (std::max(chunk, std::min(kMaxChunk, max_context)) + 1));
  std::vector<std::unique_ptr<KvCache>> caches;
  for (const Sequence& q : seqs) {
    caches.push_back(std::make_unique<KvCache>(m.config(), static_cast<int>(q.prompt.size() + q.decode.size())));
  }
  std::vector<int> prefilled(n, 0), decoded(n, 0), n_past(n, 0);
  std::vector<Rows> rows(n);
  ScreenRequest top1;
  for (int t = 0;; ++t) {
    std::vector<StepSequence> batch;
    std::vector<int> owner;
    bool left = false;
    for (int i = 0; i < n; ++i) {
      const Sequence& q = seqs[i];
      const int length = static_cast<int>(q.prompt.size());
      if (decoded[i] == static_cast<int>(q.decode.size())) continue;
      left = true;
      if (t < q.arrival) continue;
      StepSequence s;
      s.cache = caches[i].get();
      s.pos0 = n_past[i];
      if (prefilled[i] < length) {
        const int k = q.mode == EvalMode::kSequential
                          ? std::min(chunk, length - prefilled[i])
                          : BatchPrefillChunk(length, prefilled[i], PromptCutsAnywhere(m) ? chunk : std::min(kMaxChunk, max_context),
                                              std::min(kMaxChunk, max_context));
        s.tokens = absl::MakeConstSpan(q.prompt).subspan(prefilled[i], k);
        s.one_by_one = q.mode == EvalMode::kSequential || k == 1;
        s.want_logits = prefilled[i] + k == length;
      } else {
        s.tokens = absl::MakeConstSpan(&q.decode[decoded[i]], 1);
        s.one_by_one = true;
        s.want_logits = true;
      }
      s.screen = q.screen ? &top1 : nullptr;
      batch.push_back(s);
      owner.push_back(i);
    }
    if (!left) break;
    if (batch.empty()) continue;
    step.Run(batch, [&](int j, absl::Span<const float> logits, const ScreenResult*) {
      rows[owner[j]].emplace_back(logits.begin(), logits.end());
    });
    for (size_t j = 0; j < batch.size(); ++j) {
      const int i = owner[j];
      const int k = static_cast<int>(batch[j].tokens.size());
      n_past[i] += k;
      if (prefilled[i] < static_cast<int>(seqs[i].prompt.size())) {
        prefilled[i] += k;
      } else {
        ++decoded[i];
      }
    }
  }
  return rows;
}

std::vector<Sequence> RandomSequences(const Model& m, uint32_t seed, int count, int max_prompt, int max_decode,
                                      bool screen) {
  std::mt19937 rng(seed);
  const int vocab = m.config().n_vocab;
  std::vector<Sequence> out(count);
  for (Sequence& q : out) {
    const int length = 1 + static_cast<int>(rng() % max_prompt);
    for (int i = 0; i < length; ++i) q.prompt.push_back(static_cast<int32_t>(rng() % vocab));
    const int decode = 1 + static_cast<int>(rng() % max_decode);
    for (int i = 0; i < decode; ++i) q.decode.push_back(static_cast<int32_t>(rng() % vocab));
    q.mode = rng() % 2 ? EvalMode::kBatch : EvalMode::kSequential;
    q.arrival = static_cast<int>(rng() % 6);
    q.screen = screen && rng() % 3 != 0;  // most rows screened, some exact in the same step
  }
  return out;
}

// Bit-for-bit equality of two logits rows (NaN, -0 and -inf included).
bool SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void ExpectBatchInvariant(const std::string& path, HeadMode head, int chunk, uint32_t seed) {
  SCOPED_TRACE(absl::StrCat(path, " head ", HeadModeName(head), " chunk ", chunk, " seed ", seed));
  ModelOptions o;
  o.threads = 2;
  o.head = head;
  auto model = Model::Load(path, o);
  ASSERT_TRUE(model.ok()) << model.status();
  const Model& m = **model;
  const int max_context = std::min(m.config().n_ctx_train, 96);
  const std::vector<Sequence> seqs =
      RandomSequences(m, seed, 6, max_context / 2, max_context / 2 - 1, m.head_mode() == HeadMode::kScreened);
  const std::vector<Rows> together = Together(m, seqs, max_context, chunk);
  for (size_t i = 0; i < seqs.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("sequence ", i, " (prompt ", seqs[i].prompt.size(), ", ",
                              seqs[i].mode == EvalMode::kBatch ? "batch" : "sequential", ")"));
    const Rows alone = Alone(m, seqs[i], max_context);
    ASSERT_EQ(alone.size(), seqs[i].decode.size() + 1);
    ASSERT_EQ(together[i].size(), alone.size());
    for (size_t r = 0; r < alone.size(); ++r) {
      ASSERT_TRUE(SameBits(together[i][r], alone[r])) << "logits row " << r << " differs";
    }
  }
}

TEST(BatchPrefillChunkTest, KeepsLoneTokensWhereSessionEvalHasThem) {
  // Cuts of a 10-token prompt by 4: 4, 4, then the remainder of 2.
  EXPECT_EQ(BatchPrefillChunk(10, 0, 4, 512), 4);
  EXPECT_EQ(BatchPrefillChunk(10, 8, 4, 512), 2);
  // A remainder of one joins the chunk before it.
  EXPECT_EQ(BatchPrefillChunk(9, 4, 4, 512), 5);
  // Session::Eval evaluates token 513 of 513 alone: so do the chunks.
  EXPECT_EQ(BatchPrefillChunk(513, 508, 4, 512), 4);
  EXPECT_EQ(BatchPrefillChunk(513, 512, 4, 512), 1);
  EXPECT_EQ(BatchPrefillChunk(1, 0, 4, 512), 1);
  // Every cut covers the prompt, and only a lone last token is ever alone.
  for (int length = 1; length < 1100; length += 7) {
    for (int chunk : {2, 3, 16, 64}) {
      int done = 0, pieces = 0;
      while (done < length) {
        const int n = BatchPrefillChunk(length, done, chunk, 512);
        ASSERT_GE(n, 1);
        ASSERT_LE(n, chunk + 1);
        if (n == 1) {
          ASSERT_TRUE(done + 1 == length && length % 512 == 1) << length << " " << chunk << " " << done;
        }
        done += n;
        ++pieces;
      }
      ASSERT_EQ(done, length);
    }
  }
}

TEST(BatchStepTest, EveryRowEqualsItsSequenceAloneOnEveryFixtureModel) {
  REQUIRE_FIXTURES();
  const std::vector<std::string> models = FixtureModels();
  ASSERT_GE(models.size(), 6u);
  for (const std::string& path : models) {
    ExpectBatchInvariant(path, HeadMode::kExact, 5, 1);
    ExpectBatchInvariant(path, HeadMode::kScreened, 3, 2);
  }
}

TEST(BatchStepTest, EveryRowEqualsItsSequenceAloneWithTheInt8Head) {
  REQUIRE_FIXTURES();
  ExpectBatchInvariant(FixturePath("models/tiny-b158.gguf"), HeadMode::kInt8, 4, 3);
}

// bitnet-synth's tiny shape with an F16 head of 12,800 rows: the screened head
// really screens (the fixture heads are small), beside exact rows in the same step.
TEST(BatchStepTest, EveryRowEqualsItsSequenceAloneWithAScreenedF16Head) {
  const std::string out = ::testing::TempDir() + "/batch_step_synth.gguf";
  const std::string cmd = absl::StrCat(BITPARITY_BIN_DIR, "/bitnet-synth --shape tiny --vocab 12800 --seed 23 --out ",
                                       out, " > /dev/null");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  ExpectBatchInvariant(out, HeadMode::kScreened, 7, 4);
  ExpectBatchInvariant(out, HeadMode::kExact, 2, 5);
  std::remove(out.c_str());
}

}  // namespace
}  // namespace bitparity
