// base/model_lint over engine/gguf's view (engine/gguf/model_header.h): one
// deliberately broken copy of a fixture per finding, and the clean fixtures.
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "base/model_lint.h"
#include "engine/gguf/model_header.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_rewrite.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::GgufEdits;
using ::bitparity::testing::RewriteGguf;
using ::testing::HasSubstr;

std::vector<LintFinding> LintFile(const std::string& path,
                                  const std::vector<std::string>& override_specs = {}) {
  auto f = GgufFile::Open(path);
  EXPECT_TRUE(f.ok()) << f.status();
  if (!f.ok()) return {};
  auto o = ParseMetadataOverrides(override_specs);
  EXPECT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE((*f)->ApplyOverrides(*o).ok());
  return LintModel(ModelHeaderOf(**f));
}

// A broken copy of fixture `model` (models/<model>.gguf) with `edits`.
std::string Broken(const std::string& model, const std::string& tag, const GgufEdits& edits) {
  const std::string out = ::testing::TempDir() + "/model_lint_" + tag + ".gguf";
  absl::Status s = RewriteGguf(FixturePath("models/" + model + ".gguf"), out, edits);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

const LintFinding* Find(const std::vector<LintFinding>& f, const std::string& code) {
  auto it = std::find_if(f.begin(), f.end(), [&](const LintFinding& x) { return x.code == code; });
  return it == f.end() ? nullptr : &*it;
}

std::string Codes(const std::vector<LintFinding>& f) {
  std::string s;
  for (const LintFinding& x : f) s += FormatFinding(x) + "\n";
  return s;
}

// Retypes the first I2_S matrix with rows of at least 256 values to `to`.
GgufEdits RetypeFirstI2s(GgmlType to) {
  GgufEdits e;
  auto done = std::make_shared<bool>(false);
  e.tensor = [done, to](const std::string&, GgmlType* type, std::vector<int64_t>* ne) {
    if (*done || *type != GgmlType::kI2_S || ne->size() != 2 || (*ne)[0] < 256) return;
    *type = to;
    *done = true;
  };
  return e;
}

TEST(ModelLintTest, CleanFixturesHaveNoErrorsOrWarnings) {
  REQUIRE_FIXTURES();
  // The I2_S fixtures legitimately carry one info, BITNET_CPP_ONLY_TYPE: I2_S is
  // ggml type 36 only in bitnet.cpp. TQ1_0 / TQ2_0 and the float stories260K carry
  // nothing. stories260K is an SPM ("llama") vocabulary, for which llama.cpp reads
  // no tokenizer.ggml.pre, so its lack of one is no finding.
  const struct {
    const char* model;
    bool i2s;
  } cases[] = {{"tiny-b158", true},     {"tiny-b158-l3", true},   {"tiny-bitnet", true},
               {"tiny-llama-i2s", true}, {"tiny-b158-tq1", false}, {"tiny-b158-tq2", false},
               {"stories260K", false}};
  for (const auto& c : cases) {
    const std::vector<LintFinding> f = LintFile(FixturePath(std::string("models/") + c.model + ".gguf"));
    ASSERT_EQ(f.size(), c.i2s ? 1u : 0u) << c.model << ":\n" << Codes(f);
    if (c.i2s) {
      EXPECT_EQ(f[0].code, "BITNET_CPP_ONLY_TYPE") << c.model;
      EXPECT_EQ(f[0].severity, LintSeverity::kInfo) << c.model;
    }
  }
}

TEST(ModelLintTest, MissingPreTokenizerIsAWarningThatTheOverrideFixes) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.drop_keys = {"tokenizer.ggml.pre"};
  const std::string path = Broken("tiny-b158-l3", "nopre", e);
  const std::vector<LintFinding> f = LintFile(path);
  const LintFinding* x = Find(f, "TOKENIZER_PRE_MISSING");
  ASSERT_NE(x, nullptr) << Codes(f);
  EXPECT_EQ(x->severity, LintSeverity::kWarning);
  EXPECT_THAT(x->message, HasSubstr("'default'"));
  // A LLaMA-3 vocabulary: the fix names llama-bpe.
  EXPECT_THAT(x->fix, HasSubstr("--override-kv tokenizer.ggml.pre=str:llama-bpe"));
  EXPECT_EQ(Find(LintFile(path, {"tokenizer.ggml.pre=str:llama-bpe"}), "TOKENIZER_PRE_MISSING"), nullptr);
}

TEST(ModelLintTest, UnknownPreTokenizerIsAnError) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.set_keys = {{"tokenizer.ggml.pre", absl::string_view("no-such-pre")}};
  const std::vector<LintFinding> f = LintFile(Broken("tiny-b158", "badpre", e));
  const LintFinding* x = Find(f, "TOKENIZER_PRE_UNKNOWN");
  ASSERT_NE(x, nullptr) << Codes(f);
  EXPECT_EQ(x->severity, LintSeverity::kError);
  EXPECT_THAT(x->message, HasSubstr("'no-such-pre'"));
  EXPECT_EQ(f[0].code, "TOKENIZER_PRE_UNKNOWN");  // errors come first
}

TEST(ModelLintTest, Tl1TensorsAreRefusedByOurEngine) {
  REQUIRE_FIXTURES();
  const std::vector<LintFinding> f = LintFile(Broken("tiny-b158", "tl1", RetypeFirstI2s(GgmlType::kTL1)));
  const LintFinding* x = Find(f, "TL_TYPE_UNSUPPORTED");
  ASSERT_NE(x, nullptr) << Codes(f);
  EXPECT_EQ(x->severity, LintSeverity::kError);
  EXPECT_THAT(x->message, HasSubstr("TL1"));
  EXPECT_THAT(x->fix, HasSubstr("-q i2_s"));
  EXPECT_EQ(Find(f, "TYPE_ID_CLASH"), nullptr);  // 38 is unused upstream
}

TEST(ModelLintTest, Tl2TensorsClashWithUpstreamMxfp4) {
  REQUIRE_FIXTURES();
  const std::vector<LintFinding> f = LintFile(Broken("tiny-b158", "tl2", RetypeFirstI2s(GgmlType::kTL2)));
  const LintFinding* clash = Find(f, "TYPE_ID_CLASH");
  ASSERT_NE(clash, nullptr) << Codes(f);
  EXPECT_EQ(clash->severity, LintSeverity::kWarning);
  EXPECT_THAT(clash->message, HasSubstr("MXFP4"));
  ASSERT_NE(Find(f, "TL_TYPE_UNSUPPORTED"), nullptr);
}

TEST(ModelLintTest, ChatTemplateWithoutEosOrEotIsAWarning) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.set_keys = {{"tokenizer.chat_template",
                 absl::string_view("{% for m in messages %}<|user|>{{ m.content }}\n{% endfor %}")}};
  const std::vector<LintFinding> f = LintFile(Broken("tiny-b158-l3", "tpl", e));
  const LintFinding* x = Find(f, "CHAT_TEMPLATE_NO_EOS");
  ASSERT_NE(x, nullptr) << Codes(f);
  EXPECT_EQ(x->severity, LintSeverity::kWarning);
  // The EOT llama.cpp infers from the vocabulary is named.
  EXPECT_THAT(x->message, HasSubstr("<|eot_id|>"));
  // A template that closes turns with eos_token is fine.
  e.set_keys = {{"tokenizer.chat_template", absl::string_view("{{ m.content }}{{ eos_token }}")}};
  EXPECT_EQ(Find(LintFile(Broken("tiny-b158-l3", "tpl_ok", e)), "CHAT_TEMPLATE_NO_EOS"), nullptr);
}

TEST(ModelLintTest, MissingEosIdIsAWarning) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.drop_keys = {"tokenizer.ggml.eos_token_id"};
  const std::string path = Broken("tiny-b158-l3", "noeos", e);
  const std::vector<LintFinding> f = LintFile(path);
  const LintFinding* x = Find(f, "SPECIAL_TOKEN_MISSING");
  ASSERT_NE(x, nullptr) << Codes(f);
  EXPECT_EQ(x->severity, LintSeverity::kWarning);
  EXPECT_THAT(x->message, HasSubstr("tokenizer.ggml.eos_token_id"));
  EXPECT_EQ(Find(LintFile(path, {"tokenizer.ggml.eos_token_id=int:128001"}), "SPECIAL_TOKEN_MISSING"),
            nullptr);
}

TEST(ModelLintTest, BosIdOutsideTheVocabularyIsAnError) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.set_keys = {{"tokenizer.ggml.bos_token_id", uint32_t{999999}}};
  const std::vector<LintFinding> f = LintFile(Broken("tiny-b158-l3", "badbos", e));
  const LintFinding* x = Find(f, "SPECIAL_TOKEN_OUT_OF_RANGE");
  ASSERT_NE(x, nullptr) << Codes(f);
  EXPECT_EQ(x->severity, LintSeverity::kError);
  EXPECT_THAT(x->message, HasSubstr("999999"));
}

TEST(ModelLintTest, I2sRowsThatAreNotWholeBlocksAreAnError) {
  REQUIRE_FIXTURES();
  GgufEdits e;
  e.tensor = [](const std::string& name, GgmlType* type, std::vector<int64_t>* ne) {
    if (name != "blk.0.attn_q.weight") return;
    ASSERT_EQ(*type, GgmlType::kI2_S);
    const int64_t n = (*ne)[0] * (*ne)[1];
    *ne = {64, n / 64};  // same element count, rows of half a block
  };
  const std::vector<LintFinding> f = LintFile(Broken("tiny-b158", "rows", e));
  const LintFinding* x = Find(f, "I2S_ROW_NOT_BLOCKED");
  ASSERT_NE(x, nullptr) << Codes(f);
  EXPECT_EQ(x->severity, LintSeverity::kError);
  EXPECT_THAT(x->message, HasSubstr("blk.0.attn_q.weight"));
}

}  // namespace
}  // namespace bitparity
