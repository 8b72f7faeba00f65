// bitnet-bench (benchmarks/end_to_end) as a real process on the tiny-b158 fixture,
// with tiny -p/-n/-r: exit codes, the loud "not measured" notice without bitnet.cpp,
// the JSON report's structure and that every figure is positive. No timing
// thresholds: speed is measured here, never asserted. The bitnet.cpp case runs
// llama-bench and llama-cli and is skipped by name unless BITNET_CPP_DIR is set.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "benchmarks/end_to_end/child_process.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"

extern char** environ;

namespace bitparity::bench {
namespace {

using json = nlohmann::json;

// This process's environment minus BITNET_CPP_DIR (and plus `extra`).
std::vector<std::string> EnvWithoutBitnetCpp(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "BITNET_CPP_DIR=")) env.push_back(*e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

ChildResult RunBench(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {absl::StrCat(BITPARITY_BIN_DIR, "/bitnet-bench")};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<ChildResult> r = RunChild(argv, 500, env);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : ChildResult{};
}

json ReadJson(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str(), nullptr, false);
}

std::string TinyModel() { return ::bitparity::testing::FixturePath("models/tiny-b158.gguf"); }

void ExpectPositiveSpread(const json& s, size_t n, const std::string& what) {
  ASSERT_TRUE(s.is_object()) << what << ": " << s.dump();
  EXPECT_GT(s["median"].get<double>(), 0) << what;
  EXPECT_GT(s["min"].get<double>(), 0) << what;
  EXPECT_GE(s["max"].get<double>(), s["min"].get<double>()) << what;
  EXPECT_EQ(s["samples"].size(), n) << what;
}

TEST(BitnetBenchCli, NativeOnlyOnTinyModel) {
  REQUIRE_FIXTURES();
  const std::string out = ::testing::TempDir() + "/e2e_native_only.json";
  ChildResult r = RunBench({"-m", TinyModel(), "-p", "8,16", "-n", "4", "-r", "2", "-t", "1", "-c", "64",
                            "--bandwidth-mib", "64", "--json", out},
                           EnvWithoutBitnetCpp());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "bitnet.cpp NOT MEASURED: BITNET_CPP_DIR is not set")) << r.out;
  for (const char* row : {"pp8 ", "pp16 ", "tg4 ", "read bandwidth", "tg4 ceiling", "load ms", "peak RSS MiB"}) {
    EXPECT_TRUE(absl::StrContains(r.out, row)) << "no '" << row << "' in:\n" << r.out;
  }
  const json j = ReadJson(out);
  ASSERT_TRUE(j.is_object()) << "bad JSON in " << out;
  EXPECT_FALSE(j["bitnet_cpp"]["measured"].get<bool>());
  EXPECT_GT(j["bytes_per_decoded_token"]["total"].get<double>(), 0);
  EXPECT_EQ(j["repetitions"], 2);
  ASSERT_EQ(j["per_threads"].size(), 1u);
  const json& t = j["per_threads"][0];
  EXPECT_EQ(t["threads"], 1);
  ExpectPositiveSpread(t["bandwidth_gb_per_s"], 2, "bandwidth");
  ASSERT_EQ(t["tests"].size(), 3u);
  EXPECT_EQ(t["tests"][0]["name"], "pp8");
  EXPECT_EQ(t["tests"][1]["name"], "pp16");
  EXPECT_EQ(t["tests"][2]["name"], "tg4");
  for (const json& test : t["tests"]) {
    ExpectPositiveSpread(test["native_tokens_per_s"], 2, test["name"]);
    EXPECT_TRUE(test["bitnet_cpp_tokens_per_s"].is_null());
    EXPECT_TRUE(test["ratio_native_over_bitnet_cpp"].is_null());
  }
  ExpectPositiveSpread(t["tests"][2]["ceiling_tokens_per_s"], 2, "ceiling");
  ExpectPositiveSpread(t["tests"][2]["native_pct_of_ceiling"], 2, "% of ceiling");
  ExpectPositiveSpread(t["load_ms"]["native"], 2, "load");
  ExpectPositiveSpread(t["peak_rss_mib"]["native"], 2, "rss");
  EXPECT_EQ(t["peak_rss_mib"]["context"], 64);
  EXPECT_TRUE(t["load_ms"]["bitnet_cpp"].is_null());
}

TEST(BitnetBenchCli, MissingBitnetCppBuildIsNamed) {
  REQUIRE_FIXTURES();
  ChildResult r = RunBench({"-m", TinyModel(), "-p", "8", "-n", "0", "-r", "1", "-t", "1", "--bandwidth-mib", "64",
                            "--bitnet-cpp-dir", "/nonexistent/BitNet"},
                           EnvWithoutBitnetCpp());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "bitnet.cpp NOT MEASURED: /nonexistent/BitNet/build/bin/llama-bench")) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "\ntg")) << "-n 0 must run no tg test:\n" << r.out;
}

TEST(BitnetBenchCli, BadInputIsAnErrorWithAMessage) {
  const std::vector<std::string> env = EnvWithoutBitnetCpp();
  ChildResult r = RunBench({"-m", "/nonexistent/model.gguf", "-r", "1"}, env);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "/nonexistent/model.gguf")) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  r = RunBench({"-m", "x.gguf", "-r", "0"}, env);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "repetitions")) << r.err;
  r = RunBench({"-m", "x.gguf", "-p", "0", "-n", "0"}, env);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(r.err, "nothing to measure")) << r.err;
  r = RunBench({"-m", "x.gguf", "-t", "0"}, env);
  EXPECT_EQ(r.exit_code, 2);
  r = RunBench({"-m", "x.gguf", "--kernels", "mmx"}, env);
  EXPECT_EQ(r.exit_code, 2);
  r = RunBench({"--no-such-flag"}, env);
  EXPECT_EQ(r.exit_code, 2);
}

TEST(BitnetBenchCli, AgainstBitnetCppOnTinyModel) {
  REQUIRE_FIXTURES();
  const char* dir = std::getenv("BITNET_CPP_DIR");
  if (dir == nullptr || *dir == '\0') {
    GTEST_SKIP() << "BitnetBenchCli.AgainstBitnetCppOnTinyModel needs a bitnet.cpp build: set BITNET_CPP_DIR";
  }
  const std::string out = ::testing::TempDir() + "/e2e_with_bitnet_cpp.json";
  ChildResult r = RunBench({"-m", TinyModel(), "-p", "8", "-n", "4", "-r", "2", "-t", "1", "-c", "64",
                            "--bandwidth-mib", "64", "--json", out},
                           EnvWithoutBitnetCpp({absl::StrCat("BITNET_CPP_DIR=", dir)}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(absl::StrContains(r.out, "NOT MEASURED")) << r.out;
  const json j = ReadJson(out);
  ASSERT_TRUE(j.is_object());
  EXPECT_TRUE(j["bitnet_cpp"]["measured"].get<bool>());
  EXPECT_FALSE(j["bitnet_cpp"]["build_commit"].get<std::string>().empty());
  const json& t = j["per_threads"][0];
  for (const json& test : t["tests"]) {
    ExpectPositiveSpread(test["native_tokens_per_s"], 2, test["name"]);
    ExpectPositiveSpread(test["bitnet_cpp_tokens_per_s"], 2, test["name"]);
    ExpectPositiveSpread(test["ratio_native_over_bitnet_cpp"], 2, test["name"]);
  }
  ExpectPositiveSpread(t["tests"][1]["bitnet_cpp_pct_of_ceiling"], 2, "bitnet.cpp % of ceiling");
  if (j["bitnet_cpp"]["load_rss_measured"].get<bool>()) {
    ExpectPositiveSpread(t["load_ms"]["bitnet_cpp"], 2, "bitnet.cpp load");
    ExpectPositiveSpread(t["peak_rss_mib"]["bitnet_cpp"], 2, "bitnet.cpp rss");
    ExpectPositiveSpread(t["peak_rss_mib"]["ratio_native_over_bitnet_cpp"], 2, "rss ratio");
  }
}

}  // namespace
}  // namespace bitparity::bench
