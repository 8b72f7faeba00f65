// One batched decode step of the engine (BatchStep::Run, engine/model/batch_step.h) on a
// real model file, without gRPC or the scheduler: what bitnet-native-server's batch
// loop pays per step for `rows` sequences decoding together. The model comes from
// BITPARITY_BENCH_MODEL (e.g. `bitnet-synth --shape 2b4t` output); without it every
// benchmark is skipped with that message.
//
//   BITPARITY_BENCH_MODEL=2b4t.gguf build/bin/batch_step_bench --benchmark_filter=Decode
//
// Args: rows (sequences decoding together), head (0 exact, 1 screened: greedy rows go
// through the screened head, as the server's greedy requests do), context (positions
// already in each sequence's cache). Each sequence's cache is filled once by a batch
// prefill of `context` tokens; every iteration then decodes the token at position
// `context` again (the same cells are overwritten), so the attention length is fixed.
// Counter tok/s = rows per step time. Threads: BITPARITY_BENCH_THREADS (default: all
// online cores).
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/model/batch_step.h"
#include "engine/model/model.h"
#include "engine/model/screened_head.h"

namespace bitparity {
namespace {

// One loaded model per head mode, shared by every benchmark of the run.
const Model* ModelOrSkip(benchmark::State& state, HeadMode head) {
  static std::map<HeadMode, std::unique_ptr<Model>> models;
  const char* path = std::getenv("BITPARITY_BENCH_MODEL");
  if (path == nullptr || *path == '\0') {
    state.SkipWithError("set BITPARITY_BENCH_MODEL to a GGUF model file");
    return nullptr;
  }
  auto it = models.find(head);
  if (it == models.end()) {
    ModelOptions opts;
    const char* threads = std::getenv("BITPARITY_BENCH_THREADS");
    opts.threads = threads != nullptr ? std::atoi(threads) : 0;
    opts.head = head;
    absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(path, opts);
    if (!m.ok()) {
      state.SkipWithError(std::string(m.status().message()).c_str());
      return nullptr;
    }
    it = models.emplace(head, *std::move(m)).first;
  }
  return it->second.get();
}

void BM_BatchDecodeStep(benchmark::State& state) {
  const int rows = static_cast<int>(state.range(0));
  const bool screened = state.range(1) != 0;
  const int context = static_cast<int>(state.range(2));
  const Model* model = ModelOrSkip(state, screened ? HeadMode::kScreened : HeadMode::kExact);
  if (model == nullptr) return;
  const ModelConfig& c = model->config();
  if (screened && model->screened_head() == nullptr) {
    state.SkipWithError("this model's head cannot be screened");
    return;
  }
  BatchStep step(*model, std::max(rows, context));
  std::vector<std::unique_ptr<KvCache>> caches;
  std::vector<std::vector<int32_t>> prompts(rows), next(rows);
  std::mt19937 rng(11);
  for (int i = 0; i < rows; ++i) {
    caches.push_back(std::make_unique<KvCache>(c, context + 1));
    for (int t = 0; t < context; ++t) prompts[i].push_back(static_cast<int32_t>(rng() % c.n_vocab));
    next[i] = {static_cast<int32_t>(rng() % c.n_vocab)};
    if (context > 0) {
      const StepSequence fill{caches[i].get(), 0, prompts[i], /*one_by_one=*/false, /*want_logits=*/false, nullptr};
      step.Run({&fill, 1}, [](int, absl::Span<const float>, const ScreenResult*) {});
    }
  }
  const ScreenRequest greedy;
  std::vector<StepSequence> seqs;
  for (int i = 0; i < rows; ++i) {
    seqs.push_back({caches[i].get(), context, next[i], true, true, screened ? &greedy : nullptr});
  }
  // One untimed step first: the step's scratch (the screened head's bounds, ~2.5 MB
  // per row) is allocated and faulted in on first use, once per server.
  step.Run(seqs, [](int, absl::Span<const float>, const ScreenResult*) {});
  float sink = 0;
  double candidates = 0, fallbacks = 0;
  for (auto _ : state) {
    step.Run(seqs, [&](int, absl::Span<const float> logits, const ScreenResult* r) {
      sink += logits[0];
      if (r != nullptr) {
        candidates += static_cast<double>(r->candidates);
        fallbacks += r->fallback ? 1 : 0;
      }
    });
  }
  benchmark::DoNotOptimize(sink);
  const double rows_run = static_cast<double>(rows) * static_cast<double>(state.iterations());
  if (screened) {
    state.counters["candidates"] = candidates / rows_run;  // rows rescored exactly, per token
    state.counters["fallbacks"] = fallbacks / rows_run;    // share of tokens that ran the full head
  }
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(rows) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_BatchDecodeStep)
    ->ArgNames({"rows", "screened", "context"})
    ->ArgsProduct({{1, 2, 4, 8, 16}, {1}, {160}})
    ->ArgsProduct({{1, 8}, {0}, {160}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace bitparity

BENCHMARK_MAIN();
