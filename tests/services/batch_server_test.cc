// Continuous batching in bitnet-native-server (services/native/batch_scheduler.h):
// every request served in the batch loop equals its solo run byte for byte (ids,
// text, logprobs, finish reason), under random arrival schedules, mixed prompt
// lengths, both prefill modes, seeded sampling, stop sequences, cancellations and
// deadlines mid-batch; a KV budget refuses what cannot fit with the numbers; and 64
// concurrent gRPC streams against --max-batch 8 are all answered (OK or
// RESOURCE_EXHAUSTED), none lost, every OK answer equal to its solo run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/model/model.h"
#include "gtest/gtest.h"
#include "services/native/batch_scheduler.h"
#include "services/native/native_backend.h"
#include "tests/common/fixtures.h"
#include "tests/services/test_server.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::LoopbackServer;
namespace v1 = ::bitnet::v1;

#if !defined(__has_feature)
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer) || defined(__SANITIZE_ADDRESS__) || \
    __has_feature(address_sanitizer)
constexpr int kScale = 2;  // sanitizer builds are several times slower: fewer, shorter requests
#else
constexpr int kScale = 1;
#endif

constexpr int kMaxContext = 128;

std::shared_ptr<const Model> LoadModel(HeadMode head) {
  ModelOptions o;
  o.threads = 2;
  o.head = head;
  auto m = Model::Load(FixturePath("models/tiny-b158.gguf"), o);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::shared_ptr<const Model>(std::move(*m)) : nullptr;
}

BatchOptions Batching(int max_batch, int prefill_chunk, int64_t kv_budget_bytes = 0,
                      int step_tokens = BatchOptions{}.step_tokens) {
  BatchOptions o;
  o.max_batch = max_batch;
  o.prefill_chunk = prefill_chunk;
  o.kv_budget_bytes = kv_budget_bytes;
  o.step_tokens = step_tokens;
  return o;
}

// One request of a schedule.
struct Job {
  std::vector<int32_t> prompt;
  GenerationSpec spec;
  int start_ms = 0;        // arrival, after the schedule starts
  int cancel_after = -1;   // cancel once this many tokens arrived (-1: never)
  int fail_after = -1;     // on_token fails at this token (-1: never)
};

struct Outcome {
  absl::Status status;
  GenerationResult result;
  std::vector<GeneratedTokenInfo> streamed;
};

Job RandomJob(std::mt19937& rng, int vocab) {
  Job j;
  const int length = 1 + static_cast<int>(rng() % 60);
  for (int i = 0; i < length; ++i) j.prompt.push_back(static_cast<int32_t>(rng() % vocab));
  j.spec.max_new_tokens = 1 + static_cast<int>(rng() % (40 / kScale));
  j.spec.prefill_mode = rng() % 2 ? BackendEvalMode::kBatch : BackendEvalMode::kSequential;
  j.spec.ignore_eos = rng() % 2;
  switch (rng() % 4) {
    case 0: break;  // greedy
    case 1:
      j.spec.sampling.temperature = 0.8f;
      j.spec.sampling.top_k = 20;
      j.spec.sampling.seed = rng();
      break;
    case 2:
      j.spec.sampling.temperature = 1.1f;
      j.spec.sampling.top_p = 0.9f;
      j.spec.sampling.min_p = 0.02f;
      j.spec.sampling.repetition_penalty = 1.3f;
      j.spec.sampling.seed = rng();
      break;
    case 3:
      j.spec.sampling.top_k = 5;
      j.spec.sampling.temperature = 0.5f;
      j.spec.sampling.repetition_penalty = 1.1f;
      j.spec.sampling.seed = rng();
      break;
  }
  const int lp = static_cast<int>(rng() % 3);
  j.spec.logprobs_top_n = lp == 0 ? -1 : lp == 1 ? 0 : 4;
  if (rng() % 4 == 0) j.spec.stop_sequences = {" the", "e"};
  j.start_ms = static_cast<int>(rng() % 120);
  return j;
}

Outcome RunJob(EngineBackend& b, const Job& j, std::atomic<int>* cancels = nullptr) {
  Outcome o;
  int received = 0;
  auto on_token = [&](const GeneratedTokenInfo& t) {
    o.streamed.push_back(t);
    ++received;
    if (j.fail_after >= 0 && received > j.fail_after) return absl::DataLossError("the client went away");
    return absl::OkStatus();
  };
  auto cancelled = [&] {
    const bool c = j.cancel_after >= 0 && received >= j.cancel_after;
    if (c && cancels != nullptr) ++*cancels;
    return c;
  };
  auto r = b.Generate(j.prompt, j.spec, on_token, cancelled, nullptr);
  o.status = r.status();
  if (r.ok()) o.result = std::move(*r);
  return o;
}

// Runs the jobs concurrently on `b`, each from its own thread at its start time.
std::vector<Outcome> RunSchedule(EngineBackend& b, const std::vector<Job>& jobs) {
  std::vector<Outcome> out(jobs.size());
  std::vector<std::thread> threads;
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < jobs.size(); ++i) {
    threads.emplace_back([&, i] {
      std::this_thread::sleep_until(t0 + std::chrono::milliseconds(jobs[i].start_ms));
      out[i] = RunJob(b, jobs[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  return out;
}

bool SameToken(const GeneratedTokenInfo& a, const GeneratedTokenInfo& b) {
  if (a.id != b.id || a.text != b.text || a.logprob.has_value() != b.logprob.has_value()) return false;
  if (a.logprob && std::memcmp(&*a.logprob, &*b.logprob, sizeof(double)) != 0) return false;
  if (a.top.size() != b.top.size()) return false;
  for (size_t i = 0; i < a.top.size(); ++i) {
    if (a.top[i].id != b.top[i].id || std::memcmp(&a.top[i].logit, &b.top[i].logit, sizeof(float)) != 0 ||
        std::memcmp(&a.top[i].logprob, &b.top[i].logprob, sizeof(double)) != 0) {
      return false;
    }
  }
  return true;
}

// `got` (batched) equals `solo` byte for byte; a cancelled or failed run is a prefix of it.
void ExpectSameAsSolo(const Job& j, const Outcome& got, const Outcome& solo) {
  ASSERT_TRUE(solo.status.ok()) << solo.status;
  // The stream breaks only if the generation reaches token fail_after + 1.
  const bool broke = j.fail_after >= 0 && static_cast<int>(solo.result.tokens.size()) > j.fail_after;
  if (broke) {
    EXPECT_EQ(got.status.code(), absl::StatusCode::kDataLoss) << got.status;
  } else {
    ASSERT_TRUE(got.status.ok()) << got.status;
  }
  const std::vector<GeneratedTokenInfo>& want = solo.result.tokens;
  ASSERT_LE(got.streamed.size(), want.size());
  for (size_t i = 0; i < got.streamed.size(); ++i) {
    ASSERT_TRUE(SameToken(got.streamed[i], want[i])) << "token " << i << ": " << got.streamed[i].id << " vs "
                                                      << want[i].id;
  }
  if (broke) return;
  const GenerationResult& r = got.result;
  if (j.cancel_after >= 0 && r.finish == GenerationFinish::kCancelled) {
    EXPECT_LE(r.ids.size(), solo.result.ids.size());
    EXPECT_TRUE(std::equal(r.ids.begin(), r.ids.end(), solo.result.ids.begin()));
    return;
  }
  EXPECT_EQ(r.ids, solo.result.ids);
  EXPECT_EQ(r.text, solo.result.text);
  EXPECT_EQ(r.finish, solo.result.finish);
  EXPECT_EQ(got.streamed.size(), want.size());
  ASSERT_EQ(r.tokens.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(SameToken(r.tokens[i], want[i])) << "token " << i;
}

void ExpectScheduleEqualsSolo(HeadMode head, uint32_t seed, int jobs_n, int max_batch, int prefill_chunk,
                              int step_tokens) {
  SCOPED_TRACE(absl::StrCat("head ", HeadModeName(head), " seed ", seed, " max_batch ", max_batch, " chunk ",
                            prefill_chunk, " step_tokens ", step_tokens));
  std::shared_ptr<const Model> model = LoadModel(head);
  ASSERT_NE(model, nullptr);
  auto batched = NativeBackend::Wrap(model, kMaxContext, 2, Batching(max_batch, prefill_chunk, 0, step_tokens));
  // Every step's prompt chunk within its limit (one more where a chunk would leave a
  // lone last token: BatchPrefillChunk); steps that shared a chunk with decode rows.
  const int budget = step_tokens < 0 ? max_batch + kStepPromptTokens : step_tokens;
  std::atomic<int> over_limit{0}, mixed_steps{0};
  batched->SetBatchObserver([&](const BatchStepReport& s) {
    int limit = prefill_chunk;
    if (budget > 0 && s.decode_rows > 0) {
      limit = std::clamp(budget - s.decode_rows, kMinStepPrefill, prefill_chunk);
    }
    if (s.prefill_tokens > limit + 1) ++over_limit;
    if (s.decode_rows > 0 && s.prefill_tokens > 0) ++mixed_steps;
  });
  auto solo = NativeBackend::Wrap(model, kMaxContext, 1);
  std::mt19937 rng(seed);
  std::vector<Job> jobs;
  for (int i = 0; i < jobs_n; ++i) {
    Job j = RandomJob(rng, model->config().n_vocab);
    if (i % 5 == 3) j.cancel_after = 1 + static_cast<int>(rng() % 4);  // cancelled mid-batch
    if (i % 7 == 5) j.fail_after = static_cast<int>(rng() % 3);        // the stream breaks
    jobs.push_back(std::move(j));
  }
  const std::vector<Outcome> got = RunSchedule(*batched, jobs);
  for (size_t i = 0; i < jobs.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("job ", i, " prompt ", jobs[i].prompt.size(), " new ", jobs[i].spec.max_new_tokens));
    Job plain = jobs[i];
    plain.cancel_after = plain.fail_after = -1;
    ExpectSameAsSolo(jobs[i], got[i], RunJob(*solo, plain));
  }
  EXPECT_EQ(batched->SessionBytes(), 0) << "every KV cache was given back";
  EXPECT_EQ(over_limit.load(), 0) << "steps whose prompt chunk passed prefill_chunk / step_tokens";
  if (max_batch > 1) EXPECT_GT(mixed_steps.load(), 0) << "no step prefilled beside decode rows";
}

TEST(BatchSchedulerTest, RandomSchedulesEqualSoloRunsByteForByte) {
  REQUIRE_FIXTURES();
  ExpectScheduleEqualsSolo(HeadMode::kExact, 7, 24 / kScale, 4, 3, 0);
  ExpectScheduleEqualsSolo(HeadMode::kScreened, 8, 24 / kScale, 8, 16, 0);
  ExpectScheduleEqualsSolo(HeadMode::kScreened, 10, 24 / kScale, 8, 16, -1);  // the default: max_batch + 4
  ExpectScheduleEqualsSolo(HeadMode::kExact, 11, 16 / kScale, 4, 8, 5);
  ExpectScheduleEqualsSolo(HeadMode::kExact, 9, 12 / kScale, 1, 2, 0);  // one at a time, still through steps
}

TEST(BatchSchedulerTest, MaxNewTokensZeroAndFullContextEndAsAlone) {
  REQUIRE_FIXTURES();
  std::shared_ptr<const Model> model = LoadModel(HeadMode::kExact);
  ASSERT_NE(model, nullptr);
  auto batched = NativeBackend::Wrap(model, 40, 2, Batching(4, 4));
  auto solo = NativeBackend::Wrap(model, 40, 1);
  std::vector<Job> jobs(3);
  jobs[0].prompt = {1, 2, 3};
  jobs[0].spec.max_new_tokens = 0;
  jobs[1].prompt.assign(30, 5);
  jobs[1].spec.max_new_tokens = 100;  // the context (40) ends it
  jobs[1].spec.ignore_eos = true;
  jobs[2].prompt.assign(40, 7);  // fills the context: one token
  jobs[2].spec.max_new_tokens = 5;
  jobs[2].spec.ignore_eos = true;
  const std::vector<Outcome> got = RunSchedule(*batched, jobs);
  for (size_t i = 0; i < jobs.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSameAsSolo(jobs[i], got[i], RunJob(*solo, jobs[i]));
  }
}

TEST(BatchSchedulerTest, KvBudgetRefusesWhatCannotFitAndQueuesTheRest) {
  REQUIRE_FIXTURES();
  std::shared_ptr<const Model> model = LoadModel(HeadMode::kExact);
  ASSERT_NE(model, nullptr);
  // Room for two 256-position caches at once.
  BatchScheduler probe(model, [] {
    BatchOptions o;
    o.max_context = kMaxContext;
    return o;
  }());
  const int64_t one = probe.KvBytes(256);
  auto batched = NativeBackend::Wrap(model, 1024, 2, Batching(8, 8, 2 * one));
  Job big;
  big.prompt.assign(10, 3);
  big.spec.max_new_tokens = 600;  // 610 positions: 768 after padding, more than the budget
  Outcome o = RunJob(*batched, big);
  EXPECT_EQ(o.status.code(), absl::StatusCode::kResourceExhausted) << o.status;
  EXPECT_NE(o.status.message().find("KV cache"), std::string::npos) << o.status;
  EXPECT_NE(o.status.message().find("MiB"), std::string::npos) << o.status;
  // Six requests that fit two at a time all finish, and equal their solo runs.
  auto solo = NativeBackend::Wrap(model, 1024, 1);
  std::vector<Job> jobs(6);
  for (size_t i = 0; i < jobs.size(); ++i) {
    jobs[i].prompt = {static_cast<int32_t>(10 + i), 20, 30};
    jobs[i].spec.max_new_tokens = 12;
    jobs[i].spec.ignore_eos = true;
  }
  const std::vector<Outcome> got = RunSchedule(*batched, jobs);
  for (size_t i = 0; i < jobs.size(); ++i) ExpectSameAsSolo(jobs[i], got[i], RunJob(*solo, jobs[i]));
  EXPECT_EQ(batched->SessionBytes(), 0);
}

TEST(BatchSchedulerTest, CancelWhileQueuedEndsAtOnce) {
  REQUIRE_FIXTURES();
  std::shared_ptr<const Model> model = LoadModel(HeadMode::kExact);
  ASSERT_NE(model, nullptr);
  auto batched = NativeBackend::Wrap(model, kMaxContext, 2, Batching(1, 4));
  Job running;
  running.prompt = {1, 2, 3};
  running.spec.max_new_tokens = 120;
  running.spec.ignore_eos = true;
  std::thread t([&] { EXPECT_TRUE(RunJob(*batched, running).status.ok()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Job queued = running;
  queued.cancel_after = 0;  // cancelled before its first token: it never runs
  Outcome o = RunJob(*batched, queued);
  t.join();
  ASSERT_TRUE(o.status.ok()) << o.status;
  EXPECT_EQ(o.result.finish, GenerationFinish::kCancelled);
  EXPECT_TRUE(o.result.ids.empty());
}

// --- over gRPC ---------------------------------------------------------------------

TEST(BatchServerTest, SixtyFourStreamsAgainstMaxBatchEightAreAllAnswered) {
  REQUIRE_FIXTURES();
  std::shared_ptr<const Model> model = LoadModel(HeadMode::kScreened);
  ASSERT_NE(model, nullptr);
  ServerOptions options;
  options.limits.max_concurrent = 8;
  options.limits.max_queue = 8;
  auto backend = std::shared_ptr<NativeBackend>(NativeBackend::Wrap(model, kMaxContext, 8, Batching(8, 16)));
  auto server = LoopbackServer::Start(options, backend);
  ASSERT_NE(server, nullptr);
  auto solo = NativeBackend::Wrap(model, kMaxContext, 1);

  const int n = 64 / kScale;
  std::mt19937 rng(64);
  std::vector<Job> jobs;
  for (int i = 0; i < n; ++i) {
    Job j = RandomJob(rng, model->config().n_vocab);
    j.spec.stop_sequences.clear();
    jobs.push_back(std::move(j));
  }
  struct Answer {
    grpc::Status status;
    std::vector<int32_t> ids;
    std::vector<double> logprobs;
    std::string text;
  };
  std::vector<Answer> answers(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto stub = server->Stub();
      v1::GenerateRequest req;
      for (int32_t id : jobs[i].prompt) req.mutable_input()->mutable_ids()->add_ids(id);
      const GenerationSpec& s = jobs[i].spec;
      req.set_max_new_tokens(s.max_new_tokens);
      req.set_ignore_eos(s.ignore_eos);
      req.set_prefill_mode(s.prefill_mode == BackendEvalMode::kBatch ? v1::EVAL_MODE_BATCH : v1::EVAL_MODE_SEQUENTIAL);
      req.mutable_sampling()->set_temperature(s.sampling.temperature);
      req.mutable_sampling()->set_top_k(s.sampling.top_k);
      req.mutable_sampling()->set_top_p(s.sampling.top_p);
      req.mutable_sampling()->set_min_p(s.sampling.min_p);
      req.mutable_sampling()->set_repetition_penalty(s.sampling.repetition_penalty);
      req.mutable_sampling()->set_seed(s.sampling.seed);
      if (s.logprobs_top_n >= 0) req.set_logprobs(true);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
      auto reader = stub->GenerateStream(&ctx, req);
      v1::GenerateStreamResponse m;
      Answer& a = answers[i];
      while (reader->Read(&m)) {
        if (m.has_token()) {
          a.ids.push_back(m.token().id());
          a.logprobs.push_back(m.token().logprob());
          a.text += m.token().raw_text();
        }
      }
      a.status = reader->Finish();
    });
  }
  for (std::thread& t : threads) t.join();
  int ok = 0, refused = 0;
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE(absl::StrCat("stream ", i));
    const Answer& a = answers[i];
    if (a.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++refused;
      EXPECT_TRUE(a.ids.empty());
      continue;
    }
    ASSERT_TRUE(a.status.ok()) << a.status.error_code() << " " << a.status.error_message();
    ++ok;
    Job plain = jobs[i];
    plain.spec.logprobs_top_n = plain.spec.logprobs_top_n >= 0 ? 0 : -1;
    const Outcome want = RunJob(*solo, plain);
    ASSERT_TRUE(want.status.ok());
    ASSERT_EQ(a.ids, want.result.ids);
    EXPECT_EQ(a.text, want.result.text);
    if (plain.spec.logprobs_top_n >= 0) {
      for (size_t t = 0; t < a.ids.size(); ++t) EXPECT_EQ(a.logprobs[t], *want.result.tokens[t].logprob) << t;
    }
  }
  EXPECT_EQ(ok + refused, n);
  EXPECT_GE(ok, 16 / kScale) << "the batch (8) and the queue (8) were served";
  std::printf("%d streams: %d OK, %d RESOURCE_EXHAUSTED\n", n, ok, refused);
}

}  // namespace
}  // namespace bitparity
