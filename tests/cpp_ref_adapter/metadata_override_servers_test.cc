// --override-kv and the model lint through GetModelInfo, on every server kind:
// the native engine in process, bitparity-native-worker behind the worker protocol,
// and bitnet-cpp-worker (bitnet.cpp; skipped by name without BITNET_CPP_DIR, as in
// bitnet_cpp_golden_test.cc). The bitnet.cpp side must report the same overrides and
// findings as the native side, tokenize the same under a pre-tokenizer override, and
// move its logits with a rope override as the native engine does.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpp_ref_adapter/worker_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/native/native_backend.h"
#include "tests/gguf/gguf_rewrite.h"
#include "tests/services/test_server.h"

namespace bitparity::worker {
namespace {

namespace v1 = ::bitnet::v1;
using ::testing::HasSubstr;

const std::string kFixtures = BITPARITY_FIXTURES_DIR;
const std::string kBin = BITPARITY_BIN_DIR;

// tiny-b158-l3 (a LLaMA-3 vocabulary) without tokenizer.ggml.pre.
std::string NoPreModel() {
  static const std::string path = [] {
    // Per process: ctest runs each test in its own process, maybe in parallel.
    const std::string out =
        ::testing::TempDir() + "/override_servers_nopre_" + std::to_string(getpid()) + ".gguf";
    ::bitparity::testing::GgufEdits e;
    e.drop_keys = {"tokenizer.ggml.pre"};
    absl::Status s = ::bitparity::testing::RewriteGguf(kFixtures + "/models/tiny-b158-l3.gguf", out, e);
    EXPECT_TRUE(s.ok()) << s;
    return out;
  }();
  return path;
}

std::vector<MetadataOverride> Parse(const std::vector<std::string>& specs) {
  auto o = ParseMetadataOverrides(specs);
  EXPECT_TRUE(o.ok()) << o.status();
  return o.ok() ? *o : std::vector<MetadataOverride>{};
}

absl::StatusOr<std::shared_ptr<EngineBackend>> Native(const std::string& model,
                                                      const std::vector<std::string>& specs) {
  NativeBackendOptions o;
  o.model_path = model;
  o.threads = 1;
  o.max_context = 256;
  o.weight_memory = WeightMemory::kMmap;
  o.metadata_overrides = Parse(specs);
  auto b = NativeBackend::Load(o);
  if (!b.ok()) return b.status();
  return std::shared_ptr<EngineBackend>(std::move(*b));
}

// `start_s`: how long the pool keeps restarting a worker that does not come up (a
// refused override never does, so those tests wait less).
absl::StatusOr<std::shared_ptr<EngineBackend>> Worker(const std::string& exe, const std::string& model,
                                                      const std::vector<std::string>& specs,
                                                      int start_s = 60) {
  WorkerBackendOptions o;
  o.pool.command.executable = exe;
  o.pool.command.args = {"--model", model, "--threads", "1", "--max-context", "256"};
  for (const std::string& s : specs) {
    o.pool.command.args.push_back("--override-kv");
    o.pool.command.args.push_back(s);
  }
  o.pool.label = "override test worker";
  o.pool.log_events = false;
  o.model_path = model;
  o.start_timeout = std::chrono::seconds(start_s);
  auto b = WorkerBackend::Start(o);
  if (!b.ok()) return b.status();
  return std::shared_ptr<EngineBackend>(std::move(*b));
}

v1::GetModelInfoResponse ModelInfo(std::shared_ptr<EngineBackend> backend) {
  auto server = ::bitparity::testing::LoopbackServer::Start(ServerOptions{}, backend);
  v1::GetModelInfoResponse resp;
  if (server == nullptr) return resp;
  grpc::ClientContext ctx;
  grpc::Status st = server->Stub()->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  return resp;
}

std::vector<std::string> Codes(const v1::GetModelInfoResponse& r) {
  std::vector<std::string> out;
  for (const auto& f : r.model().lint_findings()) out.push_back(f.severity() + " " + f.code());
  return out;
}

std::vector<std::string> Overrides(const v1::GetModelInfoResponse& r) {
  std::vector<std::string> out;
  for (const auto& o : r.model().metadata_overrides()) out.push_back(o.key() + "=" + o.type() + ":" + o.value());
  return out;
}

const std::vector<std::string> kPreOverride = {"tokenizer.ggml.pre=str:llama-bpe"};
const std::vector<std::string> kNoPreCodes = {"warning TOKENIZER_PRE_MISSING", "info BITNET_CPP_ONLY_TYPE"};
const std::vector<std::string> kFixedCodes = {"info BITNET_CPP_ONLY_TYPE"};

void ExpectReports(const std::string& exe_or_empty) {
  auto plain = exe_or_empty.empty() ? Native(NoPreModel(), {}) : Worker(exe_or_empty, NoPreModel(), {});
  ASSERT_TRUE(plain.ok()) << plain.status();
  const v1::GetModelInfoResponse a = ModelInfo(*plain);
  EXPECT_EQ(Codes(a), kNoPreCodes);
  EXPECT_TRUE(a.model().metadata_overrides().empty());
  EXPECT_THAT(a.model().lint_findings(0).fix(), HasSubstr("tokenizer.ggml.pre=str:llama-bpe"));
  auto fixed = exe_or_empty.empty() ? Native(NoPreModel(), kPreOverride)
                                    : Worker(exe_or_empty, NoPreModel(), kPreOverride);
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  const v1::GetModelInfoResponse b = ModelInfo(*fixed);
  EXPECT_EQ(Codes(b), kFixedCodes);
  EXPECT_EQ(Overrides(b), kPreOverride);
}

TEST(MetadataOverrideServersTest, NativeServerReportsOverridesAndLint) {
  ExpectReports("");
}

TEST(MetadataOverrideServersTest, NativeWorkerReportsOverridesAndLint) {
  ExpectReports(kBin + "/bitparity-native-worker");
}

TEST(MetadataOverrideServersTest, NativeWorkerRefusesAMistypedOverride) {
  auto b = Worker(kBin + "/bitparity-native-worker", NoPreModel(), {"tokenizer.ggml.bos_token_id=str:x"}, 3);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("must be int:"));
}

// ---- bitnet.cpp --------------------------------------------------------------------

class BitnetCppOverrideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("BITNET_CPP_DIR");
    if (dir == nullptr || *dir == '\0') {
      GTEST_SKIP() << "BITNET_CPP_DIR is not set: the bitnet.cpp override tests need a built "
                      "bitnet.cpp checkout (configure with -DBITNET_CPP_DIR=<checkout> and run "
                      "with BITNET_CPP_DIR=<checkout> in the environment)";
    }
    ASSERT_EQ(access(exe_.c_str(), X_OK), 0) << exe_ << " is not built";
  }
  const std::string exe_ = kBin + "/bitnet-cpp-worker";
};

TEST_F(BitnetCppOverrideTest, ReportsTheSameOverridesAndLintAsNative) {
  ExpectReports(exe_);
  for (const std::string model : {"tiny-b158", "tiny-b158-l3", "tiny-b158-tq2", "stories260K"}) {
    const std::string path = kFixtures + "/models/" + model + ".gguf";
    auto n = Native(path, {});
    auto c = Worker(exe_, path, {});
    ASSERT_TRUE(n.ok() && c.ok()) << model;
    EXPECT_EQ(Codes(ModelInfo(*n)), Codes(ModelInfo(*c))) << model;
  }
}

TEST_F(BitnetCppOverrideTest, RefusesAMistypedOverride) {
  auto b = Worker(exe_, NoPreModel(), {"tokenizer.ggml.bos_token_id=str:x"}, 3);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(std::string(b.status().message()), HasSubstr("must be int:"));
}

TEST_F(BitnetCppOverrideTest, PreTokenizerOverrideTokenizesAsNative) {
  const std::string model = kFixtures + "/models/tiny-b158-l3.gguf";
  const std::string text = "Hello world's 12345 tokens, it's   fine";
  std::vector<std::vector<int32_t>> cpp_ids;
  for (const char* pre : {"llama-bpe", "default", "gpt-2"}) {
    const std::vector<std::string> spec = {std::string("tokenizer.ggml.pre=str:") + pre};
    auto n = Native(model, spec);
    auto c = Worker(exe_, model, spec);
    ASSERT_TRUE(n.ok() && c.ok()) << pre;
    auto a = (*n)->Tokenize(text, true, false);
    auto b = (*c)->Tokenize(text, true, false);
    ASSERT_TRUE(a.ok() && b.ok()) << pre;
    EXPECT_EQ(*a, *b) << pre;
    cpp_ids.push_back(*b);
  }
  EXPECT_NE(cpp_ids[0], cpp_ids[1]);  // the override reached bitnet.cpp's tokenizer
}

// Largest |a - b| over the last position's logits.
float LastRowMaxDiff(EngineBackend& x, EngineBackend& y, const std::vector<int32_t>& ids) {
  std::vector<float> rx, ry;
  auto grab = [&](EngineBackend& b, std::vector<float>* out) {
    absl::Status s = b.EvalLogits(ids, BackendEvalMode::kBatch, {static_cast<int>(ids.size()) - 1},
                                  [&](int, absl::Span<const float> row) {
                                    out->assign(row.begin(), row.end());
                                    return absl::OkStatus();
                                  },
                                  [] { return false; }, nullptr);
    EXPECT_TRUE(s.ok()) << s;
  };
  grab(x, &rx);
  grab(y, &ry);
  float m = 0;
  for (size_t i = 0; i < std::min(rx.size(), ry.size()); ++i) m = std::max(m, std::fabs(rx[i] - ry[i]));
  return m;
}

TEST_F(BitnetCppOverrideTest, RopeOverrideMovesLogitsAsNative) {
  const std::string model = kFixtures + "/models/tiny-b158.gguf";
  const std::vector<std::string> spec = {"bitnet-b1.58.rope.freq_base=float:100"};
  auto n = Native(model, spec);
  auto c = Worker(exe_, model, spec);
  auto c0 = Worker(exe_, model, {});
  ASSERT_TRUE(n.ok() && c.ok() && c0.ok());
  EXPECT_EQ(ModelInfo(*c).model().rope_freq_base(), 100.0f);
  EXPECT_EQ(ModelInfo(*n).model().rope_freq_base(), 100.0f);
  const std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const float moved = LastRowMaxDiff(**c0, **c, ids);  // what the override does to bitnet.cpp
  const float apart = LastRowMaxDiff(**n, **c, ids);   // native vs bitnet.cpp, both overridden
  std::printf("rope override: bitnet.cpp moved by %g, native vs bitnet.cpp %g\n", moved, apart);
  EXPECT_GT(moved, 0.0f);
  EXPECT_LT(apart, moved / 4) << "moved " << moved << ", native vs bitnet.cpp " << apart;
}

}  // namespace
}  // namespace bitparity::worker
