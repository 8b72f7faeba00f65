// `bitparity compare` of the real servers on the fixture models: the native
// engine (bitnet-native-server, A) against bitnet.cpp (bitnet-cpp-server, B),
// in both evaluation modes, on the layouts users bring:
//   - tiny-llama-i2s: arch `llama` with I2_S projections, SiLU FFN, an untied
//     F16 head and GQA (the Falcon3 / Falcon-E / Llama3-8B-1.58 layout);
//   - tiny-b158: the 2B-4T layout (arch `bitnet-b1.58`);
//   - tiny-bitnet: the older arch `bitnet` (bitnet_b1_58-large / -3B).
// The verdict must be PASS (exit 0) with every greedy generation identical,
// conformance checks included. Needs a bitnet.cpp build (BITNET_CPP_DIR);
// without one every case is skipped by name.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <tuple>

#include <boost/process.hpp>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "orchestrator/server_process.h"
#include "tests/common/fixtures.h"

namespace bitparity {
namespace {

namespace bp = boost::process;
using nlohmann::json;

const std::string kBin = BITPARITY_BIN_DIR;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// (fixture model, --mode)
using Case = std::tuple<std::string, std::string>;

class FixtureCompareTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    REQUIRE_FIXTURES();
    if (std::getenv("BITNET_CPP_DIR") == nullptr) {
      GTEST_SKIP() << "BITNET_CPP_DIR is not set: comparing with bitnet.cpp needs a built bitnet.cpp checkout "
                      "(configure with -DBITNET_CPP_DIR=<checkout> and run with BITNET_CPP_DIR=<checkout> in "
                      "the environment)";
    }
    ASSERT_EQ(access((kBin + "/bitnet-cpp-server").c_str(), X_OK), 0) << "bitnet-cpp-server is not built";
    char tmpl[] = "/tmp/bitparity-fixture-compare-XXXXXX";
    dir_ = mkdtemp(tmpl);
    model_ = testing::FixturePath("models/" + std::get<0>(GetParam()) + ".gguf");
    a_ = Start(kBin + "/bitnet-native-server", "A");
    b_ = Start(kBin + "/bitnet-cpp-server", "B");
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }

  void TearDown() override {
    if (a_) a_->Stop();
    if (b_) b_->Stop();
  }

  std::unique_ptr<ServerProcess> Start(const std::string& binary, const std::string& label) {
    ServerSpec spec;
    spec.binary = binary;
    spec.args = {"--model", model_, "--threads", "1"};
    spec.label = label;
    spec.log_path = dir_ + "/server-" + label + ".log";
    auto s = ServerProcess::Start(spec, 120);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string dir_, model_;
  std::unique_ptr<ServerProcess> a_, b_;
};

TEST_P(FixtureCompareTest, NativeAgreesWithBitnetCpp) {
  const std::string mode = std::get<1>(GetParam());
  const std::string json_path = dir_ + "/report.json", err = dir_ + "/compare.err";
  // The first 12 built-in prompts (prose, code, numbers, unicode...), 16
  // greedy tokens each, EOS ignored so both sides generate every token.
  bp::child c(bp::exe = kBin + "/bitparity",
              bp::args = {"compare", "--a", a_->address(), "--b", b_->address(), "--mode", mode, "--limit", "12",
                          "-n", "16", "--no-speed", "--json", json_path},
              bp::std_in < bp::null, bp::std_out > bp::null, bp::std_err > err);
  int code = -1;
  if (!c.wait_for(std::chrono::minutes(10))) {
    c.terminate();
    c.wait();
  } else {
    code = c.exit_code();
  }
  const json report = json::parse(ReadAll(json_path), nullptr, /*allow_exceptions=*/false);
  ASSERT_TRUE(report.is_object()) << ReadAll(err);
  EXPECT_EQ(code, 0) << ReadAll(err);
  EXPECT_EQ(report["verdict"]["agree"], true) << report["verdict"].dump();
  const json& prompts = report["prompts"];
  ASSERT_EQ(prompts.size(), 12u);
  double max_abs = 0;
  for (const json& p : prompts) {
    SCOPED_TRACE(p["id"].get<std::string>());
    EXPECT_TRUE(p["error"].is_null()) << p["error"].dump();
    EXPECT_EQ(p["checks"]["generation"]["status"], "pass") << p["generation"].dump();
    EXPECT_EQ(p["generation"]["exact_match"], true) << p["generation"].dump();
    EXPECT_EQ(p["checks"]["drift"]["status"], "pass") << p["drift"].dump();
    max_abs = std::max(max_abs, p["drift"]["summary"]["max_abs"]["max"].get<double>());
  }
  std::printf("[fixture compare] %s %s: %s; max |logit drift| %.3g over %zu prompts\n",
              std::get<0>(GetParam()).c_str(), mode.c_str(), report["verdict"]["summary"].dump().c_str(), max_abs,
              prompts.size());
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureCompareTest,
                         ::testing::Combine(::testing::Values("tiny-llama-i2s", "tiny-b158", "tiny-bitnet"),
                                            ::testing::Values("batch", "sequential")),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           std::string s = std::get<0>(i.param) + "_" + std::get<1>(i.param);
                           for (char& ch : s) if (ch == '-') ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace bitparity
