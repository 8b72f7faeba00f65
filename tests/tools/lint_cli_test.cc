// bitnet-run lint and --override-kv as real processes: exit codes (0 no errors,
// warnings allowed; 1 errors, or warnings with --strict; 2 malformed or mistyped
// override), the human lines and --json, on clean fixtures and broken copies.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_rewrite.h"
#include "tests/tools/tool_run.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::GgufEdits;
using ::bitparity::testing::ToolRun;
using ::testing::HasSubstr;
using json = nlohmann::json;

ToolRun BitnetRun(const std::vector<std::string>& args) { return ::bitparity::testing::RunTool("bitnet-run", args); }

std::string Broken(const std::string& model, const std::string& tag, const GgufEdits& e) {
  const std::string out = ::testing::TempDir() + "/lint_cli_" + tag + ".gguf";
  absl::Status s = ::bitparity::testing::RewriteGguf(FixturePath("models/" + model + ".gguf"), out, e);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

TEST(LintCliTest, CleanFixturePassesWithItsInfo) {
  REQUIRE_FIXTURES();
  const std::string m = FixturePath("models/tiny-b158.gguf");
  const ToolRun r = BitnetRun({"lint", "--model", m, "--strict"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("info BITNET_CPP_ONLY_TYPE"));
  EXPECT_THAT(r.out, HasSubstr("0 error(s), 0 warning(s), 1 info(s)"));
  const ToolRun j = BitnetRun({"lint", "--model", m, "--json"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  const json doc = json::parse(j.out);
  EXPECT_TRUE(doc["pass"].get<bool>());
  ASSERT_EQ(doc["findings"].size(), 1u);
  EXPECT_EQ(doc["findings"][0]["severity"], "info");
  EXPECT_EQ(doc["findings"][0]["code"], "BITNET_CPP_ONLY_TYPE");
}

TEST(LintCliTest, WarningsPassUnlessStrictAndTheOverrideFixesThem) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.drop_keys = {"tokenizer.ggml.pre"};
  const std::string m = Broken("tiny-b158-l3", "nopre", e);
  const ToolRun loose = BitnetRun({"lint", "--model", m});
  EXPECT_EQ(loose.exit_code, 0) << loose.err;
  EXPECT_THAT(loose.out, HasSubstr("warning TOKENIZER_PRE_MISSING"));
  EXPECT_THAT(loose.out, HasSubstr("--override-kv tokenizer.ggml.pre=str:llama-bpe"));
  EXPECT_EQ(BitnetRun({"lint", "--model", m, "--strict"}).exit_code, 1);
  const ToolRun fixed =
      BitnetRun({"lint", "--model", m, "--strict", "--override-kv", "tokenizer.ggml.pre=str:llama-bpe", "--json"});
  EXPECT_EQ(fixed.exit_code, 0) << fixed.out << fixed.err;
  EXPECT_EQ(json::parse(fixed.out)["metadata_overrides"][0], "tokenizer.ggml.pre=str:llama-bpe");
}

TEST(LintCliTest, ErrorsExitOne) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.set_keys = {{"tokenizer.ggml.pre", absl::string_view("no-such-pre")}};
  const ToolRun r = BitnetRun({"lint", "--model", Broken("tiny-b158", "badpre", e), "--json"});
  EXPECT_EQ(r.exit_code, 1);
  const json doc = json::parse(r.out);
  EXPECT_FALSE(doc["pass"].get<bool>());
  EXPECT_EQ(doc["errors"], 1);
  EXPECT_EQ(doc["findings"][0]["code"], "TOKENIZER_PRE_UNKNOWN");
}

TEST(LintCliTest, Tl1FileIsLintedAndRefusedByTheEngine) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.tensor = [](const std::string& name, GgmlType* type, std::vector<int64_t>*) {
    if (name == "blk.0.ffn_up.weight") *type = GgmlType::kTL1;
  };
  const std::string m = Broken("tiny-b158", "tl1", e);
  const ToolRun lint = BitnetRun({"lint", "--model", m});
  EXPECT_EQ(lint.exit_code, 1);
  EXPECT_THAT(lint.out, HasSubstr("error TL_TYPE_UNSUPPORTED"));
  const ToolRun info = BitnetRun({"info", "--model", m});
  EXPECT_EQ(info.exit_code, 1);
  EXPECT_THAT(info.err, HasSubstr("is TL1"));
  EXPECT_THAT(info.err, HasSubstr("use an I2_S conversion"));
}

TEST(LintCliTest, MalformedOrMistypedOverrideIsAUsageError) {
  REQUIRE_FIXTURES();
  const std::string m = FixturePath("models/tiny-b158.gguf");
  for (const char* spec : {"tokenizer.ggml.pre", "tokenizer.ggml.pre=string:x", "general.name=int:1",
                           "x=bool:maybe"}) {
    for (const char* cmd : {"lint", "info"}) {
      const ToolRun r = BitnetRun({cmd, "--model", m, "--override-kv", spec});
      EXPECT_EQ(r.exit_code, 2) << cmd << " " << spec << ": " << r.err;
      EXPECT_THAT(r.err, HasSubstr(spec)) << cmd;
      EXPECT_TRUE(r.out.empty()) << cmd << " " << spec;
    }
  }
}

TEST(LintCliTest, RepeatedOverridesAllApply) {
  REQUIRE_FIXTURES();
  const ToolRun r = BitnetRun({"info", "--model", FixturePath("models/tiny-b158.gguf"), "--override-kv",
                               "bitnet-b1.58.rope.freq_base=float:100", "--override-kv", "general.name=str:renamed"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc["rope_freq_base"], 100.0);
  EXPECT_EQ(doc["name"], "renamed");
  EXPECT_EQ(doc["metadata_overrides"].size(), 2u);
}

}  // namespace
}  // namespace bitparity
