#include "benchmarks/end_to_end/native_runner.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/model/generate.h"
#include "engine/model/model.h"
#include "engine/model/session.h"

namespace bitparity::bench {
namespace {

using Clock = std::chrono::steady_clock;

absl::StatusOr<std::unique_ptr<Model>> LoadTimed(const NativeOptions& o, double& load_ms) {
  ModelOptions mo;
  mo.threads = o.threads;
  if (o.kernels != "auto") {
    ASSIGN_OR_RETURN(mo.kernels, ParseKernelPath(o.kernels));
  }
  ASSIGN_OR_RETURN(mo.head, ParseHeadMode(o.head));
  ASSIGN_OR_RETURN(mo.weight_memory, ParseWeightMemory(o.weight_memory));
  const auto t0 = Clock::now();
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(o.model, mo));
  load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return model;
}

absl::Status Discard(int, absl::Span<const float>) { return absl::OkStatus(); }

// llama-bench's token source: BOS first, then std::rand() % n_vocab; ours is seeded.
class TokenSource {
 public:
  explicit TokenSource(const Model& m)
      : n_vocab_(m.config().n_vocab),
        bos_(m.tokenizer() != nullptr && m.tokenizer()->bos_id() >= 0 ? m.tokenizer()->bos_id() : 0) {}
  int32_t bos() const { return bos_; }
  int32_t Random() { return static_cast<int32_t>(rng_() % static_cast<uint32_t>(n_vocab_)); }
  std::vector<int32_t> Prompt(int n) {
    std::vector<int32_t> ids(n);
    ids[0] = bos_;
    for (int i = 1; i < n; ++i) ids[i] = Random();
    return ids;
  }

 private:
  int n_vocab_;
  int32_t bos_;
  std::mt19937 rng_{1234};
};

constexpr auto kMinWarmup = std::chrono::milliseconds(250);
constexpr int kMaxWarmupRuns = 50;

absl::Status RunPrompt(Session& s, TokenSource& src, int n) {
  s.Reset();
  const std::vector<int32_t> ids = src.Prompt(n);
  return s.Eval(ids, EvalMode::kBatch, LogitRows::Last(), Discard);
}

// With the screened head, every step asks for what greedy decoding needs (the top
// row, exactly) and its candidate count goes to `candidates`; the next input is still
// llama-bench's random id, so both heads run the same sequence.
absl::Status RunGen(Session& s, TokenSource& src, int n, std::vector<int32_t>* candidates = nullptr) {
  s.Reset();
  int32_t token = src.bos();
  ScreenResult screen_result;
  HeadScreen screen;  // top_k = 1: greedy
  screen.result = &screen_result;
  const HeadScreen* use = s.model().screened_head() != nullptr ? &screen : nullptr;
  for (int i = 0; i < n; ++i) {
    RETURN_IF_ERROR(s.Eval(absl::MakeConstSpan(&token, 1), EvalMode::kSequential, LogitRows::Last(), Discard,
                           nullptr, use));
    if (use != nullptr && candidates != nullptr) candidates->push_back(static_cast<int32_t>(screen_result.candidates));
    token = src.Random();
  }
  return absl::OkStatus();
}

// Median, p99 and max of the screened head's candidates per token.
nlohmann::json CandidateSummary(std::vector<int32_t> c) {
  if (c.empty()) return nullptr;
  std::sort(c.begin(), c.end());
  auto at = [&](double q) { return c[std::min(c.size() - 1, static_cast<size_t>(q * (c.size() - 1) + 0.5))]; };
  return {{"median", at(0.5)}, {"p99", at(0.99)}, {"max", c.back()}, {"tokens", c.size()}};
}

}  // namespace

absl::StatusOr<nlohmann::json> MeasureNativeSpeed(const NativeOptions& options,
                                                  const std::vector<BenchTest>& tests) {
  double load_ms = 0;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadTimed(options, load_ms));
  int max_tokens = 1;
  for (const BenchTest& t : tests) max_tokens = std::max(max_tokens, t.tokens());
  Session session(*model, max_tokens);
  TokenSource src(*model);
  nlohmann::json results = nlohmann::json::array();
  std::vector<int32_t> candidates;  // screened head: per timed decode step
  for (const BenchTest& t : tests) {
    // Untimed warm-up, as llama-bench: faults the weights in and sizes scratch. On a
    // tiny model one run is a few ms, and the first ~50 ms of work in a process ran
    // at half speed on the VM this was written on (tiny-b158 pp128: 9K, then 18-25K
    // tok/s, at 1 and 2 threads alike), so warm-up repeats until 0.25 s have passed.
    const auto warm0 = Clock::now();
    for (int i = 0; i < kMaxWarmupRuns; ++i) {
      const int gen = i == 0 ? 1 : std::min(t.n_gen, 16);
      RETURN_IF_ERROR(t.is_decode() ? RunGen(session, src, gen) : RunPrompt(session, src, t.n_prompt));
      if (Clock::now() - warm0 >= kMinWarmup) break;
    }
    const auto t0 = Clock::now();
    RETURN_IF_ERROR(t.is_decode() ? RunGen(session, src, t.n_gen, &candidates)
                                  : RunPrompt(session, src, t.n_prompt));
    const double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
    results.push_back({{"name", t.Name()},
                       {"n_prompt", t.n_prompt},
                       {"n_gen", t.n_gen},
                       {"ns", ns},
                       {"tokens_per_s", t.tokens() / (ns * 1e-9)}});
  }
  return nlohmann::json{{"load_ms", load_ms},
                        {"kernels", model->kernels().name},
                        {"weight_memory", WeightMemoryName(model->weight_memory())},
                        {"threads", model->threads()},
                        {"output_head", HeadModeName(model->head_mode())},
                        {"head_candidates", CandidateSummary(candidates)},
                        {"tests", results}};
}

absl::StatusOr<nlohmann::json> MeasureNativeLoad(const NativeOptions& options, int context) {
  double load_ms = 0;
  ASSIGN_OR_RETURN(std::unique_ptr<Model> model, LoadTimed(options, load_ms));
  std::vector<int32_t> prompt;
  if (model->tokenizer() != nullptr) {
    ASSIGN_OR_RETURN(prompt, model->tokenizer()->Encode("Hello"));
  } else {
    prompt = {0};  // no vocabulary: a single id still exercises the same path
  }
  if (static_cast<int>(prompt.size()) + 1 > context) {
    return absl::InvalidArgumentError(absl::StrCat("context ", context, " cannot hold the prompt and one token"));
  }
  Session session(*model, context);
  GenerateOptions go;
  go.max_new_tokens = 1;
  go.ignore_eos = true;
  ASSIGN_OR_RETURN(GenerateResult r, Generate(session, prompt, go));
  return nlohmann::json{{"load_ms", load_ms},
                        {"context", context},
                        {"prompt_tokens", prompt.size()},
                        {"generated", r.ids.size()},
                        {"kernels", model->kernels().name},
                        {"threads", model->threads()}};
}

}  // namespace bitparity::bench
