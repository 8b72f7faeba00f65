// bitparity bench --concurrency and compare --batch-invariance against real
// bitnet-native-server processes on 127.0.0.1, on a tiny fixture model
// (tiny-b158: the 2B-4T layout). Checks what the commands print and write:
// counts, sane values (positive, p99 >= p50), the schemas, the SVG chart, and
// that the native server is bit-identical among concurrent streams. No
// assertion depends on how fast anything runs.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <boost/process.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "orchestrator/server_process.h"
#include "tests/common/fixtures.h"
#include "tests/orchestrator/json_schema_validator.h"
#include "tests/orchestrator/junit_lite.h"

namespace bitparity {
namespace {

namespace bp = boost::process;
using nlohmann::json;
using ::testing::HasSubstr;

const std::string kBin = BITPARITY_BIN_DIR;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcResult {
  int code = -1;
  std::string out, err;
};

// bitparity with `args`; stdout and stderr read back. A run past the limit is
// killed (code -9) so that a hang fails the test instead of blocking ctest.
ProcResult Bitparity(const std::vector<std::string>& args, const std::string& dir) {
  static int n = 0;
  const std::string o = dir + "/out" + std::to_string(++n) + ".txt", e = dir + "/err" + std::to_string(n) + ".txt";
  ProcResult r;
  bp::child c(bp::exe = kBin + "/bitparity", bp::args = args, bp::std_in < bp::null, bp::std_out > o,
              bp::std_err > e);
  if (!c.wait_for(std::chrono::minutes(10))) {
    c.terminate();
    c.wait();
    r.code = -9;
  } else {
    r.code = c.exit_code();
  }
  r.out = ReadAll(o);
  r.err = ReadAll(e);
  return r;
}

json ReadJson(const std::string& path) { return json::parse(ReadAll(path), nullptr, /*allow_exceptions=*/false); }

void Collect(const testing::XmlNode& n, const std::string& name, std::vector<const testing::XmlNode*>* out) {
  if (n.name == name) out->push_back(&n);
  for (const auto& c : n.children) Collect(c, name, out);
}

class ConcurrencyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_FIXTURES();
    char tmpl[] = "/tmp/bitparity-concurrency-XXXXXX";
    dir_ = mkdtemp(tmpl);
    model_ = testing::FixturePath("models/tiny-b158.gguf");
    a_ = Start("A");
    b_ = Start("B");
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
  }
  void TearDown() override {
    if (a_) a_->Stop();
    if (b_) b_->Stop();
  }

  // Enough admission slots that every stream of a level runs at once.
  std::unique_ptr<ServerProcess> Start(const std::string& label) {
    ServerSpec spec;
    spec.binary = kBin + "/bitnet-native-server";
    spec.args = {"--model", model_, "--threads", "1", "--max-concurrent", "8"};
    spec.label = label;
    spec.log_path = dir_ + "/server-" + label + ".log";
    auto s = ServerProcess::Start(spec, 120);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::string dir_, model_;
  std::unique_ptr<ServerProcess> a_, b_;
};

// The streaming figures of one side at one level are present and sane.
void ExpectSaneLevel(const json& l, int concurrency, int rounds, int tokens) {
  SCOPED_TRACE(l.dump());
  EXPECT_EQ(l["concurrency"], concurrency);
  EXPECT_EQ(l["streams"], concurrency * rounds);
  EXPECT_EQ(l["failed"], 0);
  EXPECT_EQ(l["short_streams"], 0);
  EXPECT_EQ(l["tokens"], concurrency * rounds * tokens);
  // Level 1 always has its window; at level 2 the server runs both streams at once.
  ASSERT_TRUE(l["aggregate_decode_tokens_per_s"].is_number());
  EXPECT_GT(l["aggregate_decode_tokens_per_s"].get<double>(), 0);
  EXPECT_GT(l["window_tokens"].get<int>(), 0);
  for (const char* k : {"per_stream_decode_tokens_per_s", "ttft_p50_ms", "itl_p50_ms"}) {
    ASSERT_TRUE(l[k].is_number()) << k;
    EXPECT_GT(l[k].get<double>(), 0) << k;
  }
  EXPECT_GE(l["ttft_p99_ms"].get<double>(), l["ttft_p50_ms"].get<double>());
  EXPECT_GE(l["itl_p99_ms"].get<double>(), l["itl_p50_ms"].get<double>());
}

TEST_F(ConcurrencyTest, BenchPrintsAndWritesTheStreamingFiguresPerLevel) {
  const std::string json_path = dir_ + "/bench.json", html_path = dir_ + "/bench.html";
  const ProcResult r = Bitparity({"bench", "--a", a_->address(), "--b", b_->address(), "--concurrency", "1,2",
                                  "--limit", "4", "--runs", "1", "--warmup", "1", "-n", "8", "--requests", "2",
                                  "--load-new-tokens", "4", "--stream-tokens", "12", "--stream-rounds", "2",
                                  "--progress", "never", "--json", json_path, "--html", html_path},
                                 dir_);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("streaming decode"));
  EXPECT_THAT(r.out, HasSubstr("agg tok/s"));
  EXPECT_THAT(r.out, HasSubstr("A/B streaming at 2"));

  const json j = ReadJson(json_path);
  ASSERT_TRUE(j.is_object()) << ReadAll(json_path);
  const auto violations = testing::ValidateJson(j, json::parse(ReadAll(BITPARITY_BENCH_SCHEMA_PATH)));
  EXPECT_TRUE(violations.empty()) << violations.size() << " violations, first: " << violations.front();
  EXPECT_EQ(j["schema"], "bitparity.bench");
  EXPECT_THAT(j["definitions"]["aggregate_decode_tokens_per_s"].get<std::string>(), HasSubstr("all k are decoding"));
  EXPECT_THAT(j["definitions"]["scaling"].get<std::string>(), HasSubstr("rounds interleave"));
  EXPECT_THAT(r.out, HasSubstr("the levels' rounds interleaved"));
  for (const char* side : {"a", "b"}) {
    SCOPED_TRACE(side);
    const json& s = j["sides"][side]["speed"];
    ASSERT_EQ(s["streams"].size(), 2u);
    ExpectSaneLevel(s["streams"][0], 1, 2, 12);
    ExpectSaneLevel(s["streams"][1], 2, 2, 12);
    ASSERT_EQ(s["scaling"].size(), 2u);
    EXPECT_DOUBLE_EQ(s["scaling"][0]["aggregate_decode_tokens_per_s"].get<double>(), 1.0);
    EXPECT_GT(s["scaling"][1]["aggregate_decode_tokens_per_s"].get<double>(), 0);
    EXPECT_GT(s["scaling"][1]["itl_p99_ms"].get<double>(), 0);
  }
  ASSERT_EQ(j["ratio_a_over_b"]["streams"].size(), 2u);
  EXPECT_GT(j["ratio_a_over_b"]["streams"][1]["aggregate_decode_tokens_per_s"].get<double>(), 0);

  // The HTML page holds the chart: one line per side, the levels as labels.
  const std::string html = ReadAll(html_path);
  const size_t begin = html.find("<svg"), end = html.find("</svg>");
  ASSERT_NE(begin, std::string::npos);
  ASSERT_NE(end, std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  testing::XmlNode svg;
  std::string error;
  ASSERT_TRUE(testing::ParseXml(html.substr(begin, end + 6 - begin), &svg, &error)) << error;
  std::vector<const testing::XmlNode*> lines, texts;
  Collect(svg, "polyline", &lines);
  Collect(svg, "text", &texts);
  EXPECT_EQ(lines.size(), 2u);
  std::vector<std::string> levels;
  for (const auto* t : texts) {
    if (t->attrs.count("class") && t->attrs.at("class") == "tk level") levels.push_back(t->text);
  }
  EXPECT_EQ(levels, (std::vector<std::string>{"1", "2"}));
}

TEST_F(ConcurrencyTest, CompareReportsTheNativeServerBatchInvariant) {
  const std::string base = dir_ + "/compare";
  const ProcResult r = Bitparity({"compare", "--no-conformance", "--a", a_->address(), "--b", b_->address(),
                                  "--limit", "6", "-n", "4", "--no-speed", "--no-localize", "--batch-invariance", "3",
                                  "--batch-invariance-prompts", "2", "--batch-invariance-tokens", "8",
                                  "--require-batch-invariance", "--progress", "never", "--json", base + ".json",
                                  "--junit", base + ".xml", "--html", base + ".html", "--markdown", base + ".md"},
                                 dir_);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("batch invariance: 2 probe prompt(s)"));
  const json j = ReadJson(base + ".json");
  ASSERT_TRUE(j.is_object());
  const auto violations = testing::ValidateJson(j, json::parse(ReadAll(BITPARITY_SCHEMA_PATH)));
  EXPECT_TRUE(violations.empty()) << violations.size() << " violations, first: " << violations.front();
  const json& bi = j["batch_invariance"];
  ASSERT_TRUE(bi.is_object());
  EXPECT_EQ(bi["settings"]["others"], 3);
  for (const char* side : {"a", "b"}) {
    SCOPED_TRACE(side);
    const json& s = bi[side];
    EXPECT_EQ(s["bit_identical"], true) << s.dump();
    EXPECT_EQ(s["exercised"], true) << s.dump();
    EXPECT_EQ(s["values_differ"], 0);
    ASSERT_EQ(s["probes"].size(), 2u);
    for (const json& p : s["probes"]) {
      EXPECT_EQ(p["tokens_alone"], 8);
      EXPECT_EQ(p["tokens_among"], 8);
      EXPECT_EQ(p["first_diff_step"], -1);
      // The chosen logprob and top-5 logits and logprobs at each of 8 steps.
      EXPECT_EQ(p["values_compared"], 8 * (1 + 2 * 5));
      EXPECT_GT(p["concurrent_tokens"].get<int>(), 0);
    }
  }
  int invariance_checks = 0;
  for (const json& c : j["checks"]) {
    if (c["name"] == "batch_invariance_a" || c["name"] == "batch_invariance_b") {
      ++invariance_checks;
      EXPECT_EQ(c["status"], "pass") << c.dump();
    }
  }
  EXPECT_EQ(invariance_checks, 2);
  testing::JUnitSummary junit;
  std::string error;
  ASSERT_TRUE(testing::CheckJUnit(ReadAll(base + ".xml"), &junit, &error)) << error;
  EXPECT_EQ(junit.failures, 0);
  EXPECT_THAT(ReadAll(base + ".xml"), HasSubstr("bitparity.batch_invariance"));
  EXPECT_THAT(ReadAll(base + ".md"), HasSubstr("## Batch invariance"));
  EXPECT_THAT(ReadAll(base + ".html"), HasSubstr("<h2>Batch invariance</h2>"));
}

TEST_F(ConcurrencyTest, RequireBatchInvarianceWithoutTheCheckIsAUsageError) {
  const ProcResult r = Bitparity({"compare", "--a", a_->address(), "--b", b_->address(), "--require-batch-invariance"},
                                 dir_);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("needs --batch-invariance K"));
}

}  // namespace
}  // namespace bitparity
