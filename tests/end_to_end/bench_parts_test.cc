// The parts of bitnet-bench (benchmarks/end_to_end) without running an engine:
// parsing llama-bench's JSON and llama-cli's perf log (samples captured from the
// real bitnet.cpp build, BitNet 01eb415, on tiny-b158: testdata/), the statistics,
// bytes read per decoded token, child processes and the bandwidth meter.
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "benchmarks/end_to_end/bench_stats.h"
#include "benchmarks/end_to_end/bitnet_cpp_tools.h"
#include "benchmarks/end_to_end/child_process.h"
#include "benchmarks/end_to_end/decode_bytes.h"
#include "benchmarks/end_to_end/llama_bench_runner.h"
#include "benchmarks/end_to_end/llama_cli_load.h"
#include "benchmarks/end_to_end/native_child.h"
#include "benchmarks/end_to_end/read_bandwidth.h"
#include "engine/model/model_config.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"

namespace bitparity::bench {
namespace {

std::string ReadTestData(const std::string& name) {
  std::ifstream f(std::string(BITPARITY_E2E_TESTDATA) + "/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(LlamaBenchJson, ParsesCapturedOutput) {
  // llama-bench -m tiny-b158.gguf -p 16 -n 8 -r 2 -t 1 -o json
  absl::StatusOr<LlamaBenchOutput> out = ParseLlamaBenchJson(ReadTestData("llama_bench_tiny_b158.json"));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->build_commit, "01eb415");
  ASSERT_EQ(out->tests.size(), 2u);
  const LlamaBenchTest& pp = out->tests[0];
  EXPECT_EQ(pp.test.Name(), "pp16");
  EXPECT_EQ(pp.n_threads, 1);
  ASSERT_EQ(pp.samples_ts.size(), 2u);
  EXPECT_DOUBLE_EQ(pp.samples_ts[0], 6748.36);
  EXPECT_DOUBLE_EQ(pp.samples_ts[1], 7828.51);
  EXPECT_DOUBLE_EQ(pp.avg_ts, 7288.432099);
  EXPECT_DOUBLE_EQ(pp.stddev_ts, 763.783637);
  EXPECT_EQ(pp.samples_ns.size(), 2u);
  const LlamaBenchTest& tg = out->tests[1];
  EXPECT_EQ(tg.test.Name(), "tg8");
  EXPECT_TRUE(tg.test.is_decode());
  EXPECT_DOUBLE_EQ(tg.samples_ts[1], 849.141);
}

TEST(LlamaBenchJson, RejectsDamagedOutput) {
  EXPECT_EQ(ParseLlamaBenchJson("llama-bench: error").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseLlamaBenchJson("{}").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseLlamaBenchJson(R"([{"n_prompt": 16}])").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseLlamaBenchJson(R"([{"n_prompt": 16, "n_gen": 0, "n_threads": 1, "samples_ts": [],
      "samples_ns": [], "avg_ts": 0, "stddev_ts": 0}])").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ParseLlamaBenchJson(R"([{"n_prompt": "16", "n_gen": 0, "n_threads": 1, "samples_ts": [1],
      "samples_ns": [1], "avg_ts": 1, "stddev_ts": 0}])").status().code(), absl::StatusCode::kDataLoss);
}

TEST(LlamaCliLog, ParsesLoadTime) {
  absl::StatusOr<double> ms = ParseLlamaLoadTimeMs(ReadTestData("llama_cli_perf_tail.txt"));
  ASSERT_TRUE(ms.ok()) << ms.status();
  EXPECT_DOUBLE_EQ(*ms, 90.82);
  EXPECT_EQ(ParseLlamaLoadTimeMs("main: error: unable to load model").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseLlamaLoadTimeMs("load time = oops").status().code(), absl::StatusCode::kNotFound);
}

TEST(BenchStats, MedianMinMaxStddev) {
  Spread s = Summarize({3, 1, 2});
  EXPECT_EQ(s.n, 3);
  EXPECT_DOUBLE_EQ(s.median, 2);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 3);
  EXPECT_DOUBLE_EQ(s.stddev, 1);
  EXPECT_EQ(s.samples, (std::vector<double>{3, 1, 2}));  // measurement order kept
  EXPECT_DOUBLE_EQ(Summarize({4, 1, 2, 3}).median, 2.5);
  EXPECT_DOUBLE_EQ(Summarize({7}).stddev, 0);
  EXPECT_EQ(Summarize({}).n, 0);
}

TEST(BenchStats, FailedRunsMarkedNaNAreLeftOut) {
  // A bitnet.cpp repetition that crashed is recorded as NaN: not a sample.
  Spread s = Summarize({3, std::nan(""), 1});
  EXPECT_EQ(s.n, 2);
  EXPECT_DOUBLE_EQ(s.median, 2);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_EQ(Summarize({std::nan("")}).n, 0);
}

TEST(BenchTestNames, NamesRoundTrip) {
  absl::StatusOr<std::vector<BenchTest>> t = ParseTests("pp128,pp512,tg128");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->size(), 3u);
  EXPECT_EQ((*t)[1].n_prompt, 512);
  EXPECT_EQ((*t)[2].n_gen, 128);
  EXPECT_EQ(FormatTests(*t), "pp128,pp512,tg128");
  EXPECT_FALSE(ParseTests("pp0").ok());
  EXPECT_FALSE(ParseTests("xx12").ok());
  EXPECT_FALSE(ParseTests("").ok());
}

TEST(DecodeBytes, TinyModelCountsLayersAndTiedHead) {
  REQUIRE_FIXTURES();
  absl::StatusOr<std::unique_ptr<GgufFile>> file = GgufFile::Open(::bitparity::testing::FixturePath("models/tiny-b158.gguf"));
  ASSERT_TRUE(file.ok()) << file.status();
  absl::StatusOr<ModelConfig> config = ModelConfig::FromGguf(**file);
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<Weights> weights = Weights::Bind(**file, *config);
  ASSERT_TRUE(weights.ok()) << weights.status();
  absl::StatusOr<DecodeBytes> b = BytesReadPerDecodedToken(**file, *weights);
  ASSERT_TRUE(b.ok()) << b.status();
  // tiny-b158 ties its head to token_embd (as 2B-4T does): the whole table is read.
  EXPECT_EQ(b->head_tensor, "token_embd.weight");
  EXPECT_EQ(b->head_bytes, (*file)->FindTensor("token_embd.weight")->byte_size);
  uint64_t matrices = 0;
  for (const LayerWeights& l : weights->layers) {
    for (const WeightMatrix* m : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) {
      matrices += (*file)->FindTensor(m->name)->byte_size;
    }
  }
  EXPECT_GT(b->layer_bytes, matrices);  // matrices plus the layers' norm vectors
  EXPECT_EQ(b->layer_tensors % config->n_layer, 0);
  EXPECT_EQ(b->other_bytes, (*file)->FindTensor("output_norm.weight")->byte_size);
  EXPECT_LT(b->total(), (*file)->file_size());
}

TEST(BenchChildProcess, CapturesOutputExitAndRss) {
  absl::StatusOr<ChildResult> r = RunChild({"/bin/echo", "hello"}, 30);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->ok());
  EXPECT_EQ(r->out, "hello\n");
  EXPECT_GT(r->peak_rss_kib, 0);
  r = RunChild({"/bin/false"}, 30);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(RunChild({"/nonexistent/program"}, 30).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RunChild({"/bin/sleep", "10"}, 0.2).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(BitnetCppTools, SaysWhyNotMeasured) {
  BitnetCppTools t = LocateBitnetCpp("/nonexistent/BitNet");
  EXPECT_FALSE(t.has_bench());
  EXPECT_FALSE(t.has_cli());
  EXPECT_TRUE(absl::StrContains(t.why_not, "/nonexistent/BitNet/build/bin/llama-bench")) << t.why_not;
}

TEST(ReadBandwidth, MeasuresAPositiveRate) {
  ReadBandwidthMeter meter(64 << 20);
  absl::StatusOr<double> gbps = meter.Measure(1, 1);
  ASSERT_TRUE(gbps.ok()) << gbps.status();
  EXPECT_GT(*gbps, 0);
  EXPECT_EQ(meter.Measure(0, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_GE(DefaultBandwidthBufferBytes(), 512u << 20);
}

}  // namespace
}  // namespace bitparity::bench
