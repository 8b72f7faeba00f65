// bitnet-cpp-worker behind the shared gRPC service, against the golden fixtures
// (../shared/fixtures/golden/<model>/), which bitnet.cpp made through the same
// C API with 1 thread and n_ctx = n_batch = n_ubatch = 512. Everything must be
// EXACT: the logits bit for bit in both modes (full rows where stored, top-64
// ids and values elsewhere), the prompt tokens, and the 24 greedy tokens and
// their bytes.
//
// Needs a built bitnet.cpp: configure with -DBITNET_CPP_DIR=<checkout> (builds
// bitnet-cpp-worker) and run with the environment variable BITNET_CPP_DIR set
// (ctest sets it when configured so). Without it every test here is skipped,
// by name, with a message that says so.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "cpp_ref_adapter/worker_backend.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/services/test_server.h"

namespace bitparity::worker {
namespace {

namespace v1 = ::bitnet::v1;
using nlohmann::json;

const std::string kFixtures = BITPARITY_FIXTURES_DIR;
const std::string kWorker = std::string(BITPARITY_BIN_DIR) + "/bitnet-cpp-worker";

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

class BitnetCppGoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const char* dir = std::getenv("BITNET_CPP_DIR");
    if (dir == nullptr || *dir == '\0') {
      GTEST_SKIP() << "BITNET_CPP_DIR is not set: the bitnet.cpp golden tests need a built "
                      "bitnet.cpp checkout (configure with -DBITNET_CPP_DIR=<checkout> and run "
                      "with BITNET_CPP_DIR=<checkout> in the environment)";
    }
    ASSERT_EQ(access(kWorker.c_str(), X_OK), 0)
        << "BITNET_CPP_DIR=" << dir << " is set but " << kWorker
        << " is not built: configure with -DBITNET_CPP_DIR=" << dir;
    const std::string model = kFixtures + "/models/" + GetParam() + ".gguf";
    const std::string manifest = kFixtures + "/golden/" + GetParam() + "/manifest.json";
    if (access(model.c_str(), R_OK) != 0 || access(manifest.c_str(), R_OK) != 0) {
      GTEST_SKIP() << "fixture missing: " << model << " or " << manifest;
    }
    manifest_ = json::parse(ReadBytes(manifest));

    WorkerBackendOptions o;
    o.pool.command.executable = kWorker;
    o.pool.command.args = {"--model", model, "--threads", "1", "--max-context", "512"};
    o.pool.label = "bitnet.cpp worker";
    o.pool.log_events = false;
    o.model_path = model;
    o.start_timeout = std::chrono::seconds(60);
    auto b = WorkerBackend::Start(o);
    ASSERT_TRUE(b.ok()) << b.status();
    backend_ = std::shared_ptr<WorkerBackend>(std::move(*b));
    ServerOptions so;
    so.limits.max_message_bytes = int64_t{256} << 20;
    server_ = testing::LoopbackServer::Start(so, backend_);
    ASSERT_NE(server_, nullptr);
    stub_ = server_->Stub();
  }

  void TearDown() override {
    stub_.reset();
    server_.reset();
    backend_.reset();
  }

  std::string GoldenFile(const std::string& name) const {
    return kFixtures + "/golden/" + GetParam() + "/" + name;
  }

  // EvalLogits of a prompt's golden tokens, all positions.
  v1::EvalLogitsResponse Eval(const json& prompt, v1::EvalMode mode, bool full) {
    v1::EvalLogitsRequest req;
    for (int id : prompt["tokens"]) req.mutable_input()->mutable_ids()->add_ids(id);
    req.set_mode(mode);
    req.mutable_positions()->set_kind(v1::Positions::ALL);
    if (full) {
      req.mutable_output()->set_kind(v1::LogitsOutput::FULL);
      req.mutable_output()->set_format(v1::FLOAT_FORMAT_F32);
    } else {
      req.mutable_output()->set_kind(v1::LogitsOutput::TOP_K);
      req.mutable_output()->set_top_k(64);
    }
    grpc::ClientContext ctx;
    v1::EvalLogitsResponse resp;
    grpc::Status st = stub_->EvalLogits(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  // Every prompt's logits in `mode` ("batch" / "seq") against the golden files.
  void CheckLogits(v1::EvalMode mode, const std::string& tag) {
    const int n_vocab = manifest_["model"]["n_vocab"];
    int full_rows = 0, top_rows = 0;
    for (const json& p : manifest_["prompts"]) {
      const std::string id = p["id"];
      const int n = p["n_tokens"];
      if (p["files"].contains(tag + "_full")) {
        v1::EvalLogitsResponse resp = Eval(p, mode, true);
        ASSERT_EQ(resp.positions_size(), n) << id;
        const std::string golden = ReadBytes(GoldenFile(p["files"][tag + "_full"]["file"]));
        ASSERT_EQ(golden.size(), size_t(n) * n_vocab * 4) << id;
        for (int i = 0; i < n; ++i) {
          const std::string& row = resp.positions(i).logits();
          ASSERT_EQ(row.size(), size_t(n_vocab) * 4);
          EXPECT_EQ(std::memcmp(row.data(), golden.data() + size_t(i) * n_vocab * 4, row.size()), 0)
              << GetParam() << " " << id << " " << tag << " row " << i << " is not bit-identical";
          ++full_rows;
        }
      }
      v1::EvalLogitsResponse resp = Eval(p, mode, false);
      ASSERT_EQ(resp.positions_size(), n) << id;
      const std::string ids = ReadBytes(GoldenFile(p["files"][tag + "_top64_ids"]["file"]));
      const std::string vals = ReadBytes(GoldenFile(p["files"][tag + "_top64_vals"]["file"]));
      ASSERT_EQ(ids.size(), size_t(n) * 64 * 4);
      for (int i = 0; i < n; ++i) {
        const v1::PositionLogits& pos = resp.positions(i);
        ASSERT_EQ(pos.top_ids_size(), 64);
        EXPECT_EQ(std::memcmp(pos.top_ids().data(), ids.data() + size_t(i) * 256, 256), 0)
            << GetParam() << " " << id << " " << tag << " top-64 ids differ at row " << i;
        EXPECT_EQ(std::memcmp(pos.top_logits().data(), vals.data() + size_t(i) * 256, 256), 0)
            << GetParam() << " " << id << " " << tag << " top-64 values differ at row " << i;
        ++top_rows;
      }
    }
    std::printf("[ golden   ] %s %s: %d full rows and %d top-64 rows bit-identical\n",
                GetParam().c_str(), tag.c_str(), full_rows, top_rows);
  }

  json manifest_;
  std::shared_ptr<WorkerBackend> backend_;
  std::unique_ptr<testing::LoopbackServer> server_;
  std::unique_ptr<v1::Engine::Stub> stub_;
};

TEST_P(BitnetCppGoldenTest, ModelInfoAndPromptTokensMatchManifest) {
  grpc::ClientContext ctx;
  v1::GetModelInfoResponse info;
  grpc::Status st = stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(info.engine().name(), "bitnet.cpp");
  EXPECT_EQ(info.model().n_vocab(), manifest_["model"]["n_vocab"].get<int>());
  EXPECT_EQ(info.model().n_layer(), manifest_["model"]["n_layer"].get<int>());
  EXPECT_EQ(info.model().architecture(), manifest_["model"]["arch"].get<std::string>());
  for (const json& p : manifest_["prompts"]) {
    grpc::ClientContext tctx;
    v1::TokenizeRequest req;
    req.set_text(ReadBytes(GoldenFile(p["prompt_file"])));
    v1::TokenizeResponse resp;
    grpc::Status ts = stub_->Tokenize(&tctx, req, &resp);
    ASSERT_TRUE(ts.ok()) << ts.error_message();
    EXPECT_EQ(std::vector<int>(resp.ids().begin(), resp.ids().end()),
              p["tokens"].get<std::vector<int>>())
        << p["id"];
  }
}

// bitnet-cpp-worker computes max_token_bytes from llama.h (pieces, token texts, the
// GGUF's merges) by the same argument as our tokenizer: on every fixture vocabulary
// (GPT-2 and LLaMA-3 BPE, LLaMA SPM, stories260K's SPM) both must agree.
TEST_P(BitnetCppGoldenTest, ReportsTheSameTokenByteBoundAsOurTokenizer) {
  grpc::ClientContext ctx;
  v1::GetModelInfoResponse info;
  ASSERT_TRUE(stub_->GetModelInfo(&ctx, v1::GetModelInfoRequest(), &info).ok());
  auto file = GgufFile::Open(kFixtures + "/models/" + GetParam() + ".gguf");
  ASSERT_TRUE(file.ok()) << file.status();
  auto tok = Tokenizer::FromGguf(**file);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_GT((*tok)->max_token_bytes(), 0);
  EXPECT_EQ(info.model().max_token_bytes(), (*tok)->max_token_bytes());
  std::printf("%s: max_token_bytes %d\n", GetParam().c_str(), info.model().max_token_bytes());
}

TEST_P(BitnetCppGoldenTest, BatchLogitsAreBitExact) { CheckLogits(v1::EVAL_MODE_BATCH, "batch"); }

TEST_P(BitnetCppGoldenTest, SequentialLogitsAreBitExact) {
  CheckLogits(v1::EVAL_MODE_SEQUENTIAL, "seq");
}

// In bitnet.cpp a row's logits change when llama_decode is asked for fewer rows
// (the last layer runs on those rows only); the worker therefore always asks for
// all of them, and a subset of rows must still equal the golden all-rows values.
TEST_P(BitnetCppGoldenTest, BatchRowsDoNotDependOnWhichRowsAreAsked) {
  const int n_vocab = manifest_["model"]["n_vocab"];
  for (const json& p : manifest_["prompts"]) {
    if (!p["files"].contains("batch_full")) continue;
    const int n = p["n_tokens"];
    const std::string golden = ReadBytes(GoldenFile(p["files"]["batch_full"]["file"]));
    std::vector<std::vector<int>> subsets = {{n - 1}};
    if (n >= 3) subsets.push_back({0, n / 2, n - 1});
    for (const std::vector<int>& rows : subsets) {
      v1::EvalLogitsRequest req;
      for (int id : p["tokens"]) req.mutable_input()->mutable_ids()->add_ids(id);
      req.set_mode(v1::EVAL_MODE_BATCH);
      req.mutable_positions()->set_kind(v1::Positions::LIST);
      req.mutable_positions()->mutable_list()->Add(rows.begin(), rows.end());
      req.mutable_output()->set_kind(v1::LogitsOutput::FULL);
      grpc::ClientContext ctx;
      v1::EvalLogitsResponse resp;
      grpc::Status st = stub_->EvalLogits(&ctx, req, &resp);
      ASSERT_TRUE(st.ok()) << st.error_message();
      ASSERT_EQ(resp.positions_size(), static_cast<int>(rows.size()));
      for (size_t k = 0; k < rows.size(); ++k) {
        EXPECT_EQ(std::memcmp(resp.positions(k).logits().data(),
                              golden.data() + size_t(rows[k]) * n_vocab * 4, size_t(n_vocab) * 4),
                  0)
            << GetParam() << " " << p["id"] << " row " << rows[k] << " of a " << rows.size()
            << "-row request differs from the all-rows golden";
      }
    }
  }
}

TEST_P(BitnetCppGoldenTest, GreedyMatchesGolden24Tokens) {
  for (const json& p : manifest_["prompts"]) {
    v1::GenerateRequest req;
    for (int id : p["tokens"]) req.mutable_input()->mutable_ids()->add_ids(id);
    req.set_max_new_tokens(p["greedy"]["n"].get<int>());
    req.set_ignore_eos(true);  // the golden greedy runs do not stop at EOS
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    grpc::Status st = stub_->Generate(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(std::vector<int>(resp.ids().begin(), resp.ids().end()),
              p["greedy"]["ids"].get<std::vector<int>>())
        << GetParam() << " " << p["id"];
    EXPECT_EQ(resp.raw_text(), FromHex(p["greedy"]["text_hex"])) << GetParam() << " " << p["id"];
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, BitnetCppGoldenTest,
                         ::testing::Values("tiny-b158", "tiny-b158-l3", "tiny-bitnet",
                                           "tiny-b158-tq2", "tiny-b158-tq1", "stories260K", "tiny-llama-i2s"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return absl::StrReplaceAll(info.param, {{"-", "_"}, {".", "_"}});
                         });

}  // namespace
}  // namespace bitparity::worker
