// Pre-tokenizer tests: every tokenizer.ggml.pre name against bitnet.cpp's own ids.
//   1. Known answers on the LLaMA-3 vocabulary with only the pre name changed
//      (Tokenizer::LoadOptions::pre_tokenizer), from two files of bitnet.cpp output:
//      ../shared/fixtures/tokenizers/pre-types.jsonl (the 46 llama-bpe .inp texts) and
//      testdata/pre-types-extra.jsonl (edge cases: whitespace runs, Unicode spaces,
//      digits, CJK, emoji, combining marks, sentinels; see testdata/README.md) and
//      testdata/pre-types-random.jsonl (random texts, random code points included).
//   2. jina-v2-*: the <mask> token (LSTRIP) on a vocabulary that has one, known answers
//      in testdata/pre-types-mask.jsonl; and the load error without one.
//   3. The name table: all 37 names, per-name rules, unknown names.
// Each known-answer file is a list of {"pre", "id", "text", "ids"} rows (no BOS, no
// special parsing); to add cases, regenerate the file with bitnet.cpp (testdata/README.md).
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::PathExists;
using ::testing::HasSubstr;
using tokenizer_internal::LookupPreTokenizer;
using tokenizer_internal::PreTokenizerType;

constexpr char kLlamaBpeVocab[] = "tokenizers/ggml-vocab-llama-bpe.gguf";

// Every name llm_load_vocab accepts, in its order.
const std::vector<std::string>& AllNames() {
  static const auto* names = new std::vector<std::string>{
      "default",    "llama3",     "llama-v3",     "llama-bpe", "deepseek-llm", "deepseek-coder",
      "falcon",     "falcon3",    "falcon_e",     "mpt",       "starcoder",    "gpt-2",
      "phi-2",      "jina-es",    "jina-de",      "jina-v1-en", "jina-v2-es",  "jina-v2-de",
      "jina-v2-code", "refact",   "command-r",    "qwen2",     "stablelm2",    "olmo",
      "dbrx",       "smaug-bpe",  "poro-chat",    "chatglm-bpe", "viking",     "jais",
      "tekken",     "smollm",     "codeshell",    "bloom",     "gpt3-finnish", "exaone",
      "chameleon"};
  return *names;
}

std::string TestdataPath(const std::string& name) {
  const std::string here = __FILE__;
  return here.substr(0, here.rfind('/')) + "/testdata/" + name;
}

struct Row {
  std::string pre;
  int id = 0;
  std::string text;
  std::vector<int32_t> ids;
};

std::vector<Row> ReadRows(const std::string& path) {
  std::vector<Row> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const nlohmann::json j = nlohmann::json::parse(line);
    rows.push_back({j.at("pre").get<std::string>(), j.at("id").get<int>(),
                    j.at("text").get<std::string>(), j.at("ids").get<std::vector<int32_t>>()});
  }
  return rows;
}

// Loads the llama-bpe vocabulary once and one tokenizer per pre name on it.
class PreTypesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_FIXTURES();
    if (vocab_ == nullptr) {
      auto file = GgufFile::Open(FixturePath(kLlamaBpeVocab));
      ASSERT_TRUE(file.ok()) << file.status();
      vocab_ = file->release();
    }
  }
  static const Tokenizer& For(const std::string& pre) {
    static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
    auto& slot = (*cache)[pre];
    if (slot == nullptr) {
      Tokenizer::LoadOptions options;
      options.pre_tokenizer = pre;
      auto tok = Tokenizer::FromGguf(*vocab_, options);
      EXPECT_TRUE(tok.ok()) << pre << ": " << tok.status();
      if (tok.ok()) slot = std::move(*tok);
    }
    return *slot;
  }

  // Requires every row equal; prints "name: passed/total" per name.
  static void ExpectRowsMatch(const std::vector<Row>& rows, const std::string& label) {
    std::map<std::string, std::pair<int, int>> counts;  // pre -> (passed, total)
    Tokenizer::EncodeOptions no_bos;
    no_bos.add_bos = false;
    for (const Row& r : rows) {
      const Tokenizer& tok = For(r.pre);
      auto ids = tok.Encode(r.text, no_bos);
      ASSERT_TRUE(ids.ok()) << r.pre << " #" << r.id << ": " << ids.status();
      auto& [passed, total] = counts[r.pre];
      ++total;
      if (*ids == r.ids) {
        ++passed;
      } else {
        ADD_FAILURE() << label << " " << r.pre << " #" << r.id << " text '" << r.text
                      << "'\n  expected: " << absl::StrJoin(r.ids, " ")
                      << "\n  got:      " << absl::StrJoin(*ids, " ");
      }
    }
    for (const auto& [pre, c] : counts) {
      std::cout << "[ " << label << " ] " << pre << ": " << c.first << "/" << c.second
                << " pass\n";
    }
  }

  static GgufFile* vocab_;
};
GgufFile* PreTypesTest::vocab_ = nullptr;

TEST_F(PreTypesTest, MatchesBitnetCppOnLlamaBpeTexts) {
  const std::string path = FixturePath("tokenizers/pre-types.jsonl");
  if (!PathExists(path)) GTEST_SKIP() << "missing " << path;
  const std::vector<Row> rows = ReadRows(path);
  ASSERT_EQ(rows.size(), 34u * 46u);
  ExpectRowsMatch(rows, "pre-types.jsonl");
}

TEST_F(PreTypesTest, MatchesBitnetCppOnEdgeCaseTexts) {
  const std::vector<Row> rows = ReadRows(TestdataPath("pre-types-extra.jsonl"));
  ASSERT_FALSE(rows.empty()) << "missing " << TestdataPath("pre-types-extra.jsonl");
  ExpectRowsMatch(rows, "pre-types-extra.jsonl");
}

TEST_F(PreTypesTest, MatchesBitnetCppOnRandomTexts) {
  const std::vector<Row> rows = ReadRows(TestdataPath("pre-types-random.jsonl"));
  ASSERT_FALSE(rows.empty()) << "missing " << TestdataPath("pre-types-random.jsonl");
  ExpectRowsMatch(rows, "pre-types-random.jsonl");
}

// Long texts: llama.cpp's std::regex fallback recurses per character and can overflow
// its stack here; ours must simply work, for every way a regex is run.
TEST_F(PreTypesTest, LongMixedTextsRoundTripForEveryName) {
  std::string text;
  const char* parts[] = {"Hello, world! ", "\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x80", "12345 ",
                         "    \n\n", "caf\x65\xCC\x81 ", "\xF0\x9F\xA6\x99", "<sentinel:7>"};
  for (size_t i = 0; text.size() < (size_t{256} << 10); ++i) text += parts[i % 7];
  Tokenizer::EncodeOptions no_bos;
  no_bos.add_bos = false;
  for (const std::string& name : AllNames()) {
    if (name.rfind("jina-v2-", 0) == 0) continue;  // needs <mask>
    auto ids = For(name).Encode(text, no_bos);
    ASSERT_TRUE(ids.ok()) << name << ": " << ids.status();
    auto back = For(name).Decode(*ids);
    ASSERT_TRUE(back.ok()) << name;
    EXPECT_EQ(*back, text) << name;
  }
}

TEST_F(PreTypesTest, OverrideReplacesTheFilesName) {
  const Tokenizer& gpt2 = For("gpt-2");
  EXPECT_EQ(gpt2.pre(), "gpt-2");
  Tokenizer::EncodeOptions no_bos;
  no_bos.add_bos = false;
  // LLaMA-3's contractions are caseless, GPT-2's are not: "'S" is one word only in LLaMA-3.
  auto llama = For("llama-bpe").Encode("HE'S", no_bos);
  auto split = gpt2.Encode("HE'S", no_bos);
  ASSERT_TRUE(llama.ok() && split.ok());
  EXPECT_NE(*llama, *split);

  Tokenizer::LoadOptions unknown;
  unknown.pre_tokenizer = "no-such-pre";
  const auto st = Tokenizer::FromGguf(*vocab_, unknown).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(st.message(), HasSubstr("'no-such-pre'"));
}

TEST_F(PreTypesTest, EmptyNameIsDefaultAsInLlamaCpp) {
  Tokenizer::LoadOptions options;
  options.pre_tokenizer = "";
  auto tok = Tokenizer::FromGguf(*vocab_, options);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->pre(), "default");
}

TEST_F(PreTypesTest, OverrideIsIgnoredForSentencePiece) {
  auto file = GgufFile::Open(FixturePath("tokenizers/ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(file.ok()) << file.status();
  Tokenizer::LoadOptions options;
  options.pre_tokenizer = "no-such-pre";
  auto tok = Tokenizer::FromGguf(**file, options);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->pre(), "");
}

TEST_F(PreTypesTest, JinaV2WithoutMaskTokenFailsToLoadAsInLlamaCpp) {
  for (const char* pre : {"jina-v2-es", "jina-v2-de", "jina-v2-code"}) {
    Tokenizer::LoadOptions options;
    options.pre_tokenizer = pre;
    const auto st = Tokenizer::FromGguf(*vocab_, options).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << pre;
    EXPECT_THAT(st.message(), HasSubstr("<mask>")) << pre;
  }
}

// The llama-bpe vocabulary plus a USER_DEFINED "<mask>" token (id 128256) and the
// given pre name: the file testdata/pre-types-mask.jsonl was made from.
std::string WriteVocabWithMask(const GgufFile& src, const std::string& pre,
                               const std::string& path) {
  GgufWriter w;
  for (const GgufMetadataEntry& e : src.metadata()) {
    absl::Status st;
    if (e.key == "tokenizer.ggml.pre") {
      st = w.AddString(e.key, pre);
    } else if (e.key == "tokenizer.ggml.tokens") {
      auto tokens = src.GetStringArray(e.key);
      if (!tokens.ok()) return tokens.status().ToString();
      std::vector<std::string> t(tokens->begin(), tokens->end());
      t.push_back("<mask>");
      st = w.AddStringArray(e.key, t);
    } else if (e.key == "tokenizer.ggml.token_type") {
      auto types = src.GetInt32Array(e.key);
      if (!types.ok()) return types.status().ToString();
      std::vector<int32_t> t(types->begin(), types->end());
      t.push_back(4);  // USER_DEFINED: split out even without special parsing
      st = w.AddInt32Array(e.key, t);
    } else if (e.key == "llama.vocab_size") {
      auto n = src.GetUint32(e.key);
      if (!n.ok()) return n.status().ToString();
      st = w.AddUint32(e.key, *n + 1);
    } else {
      st = w.AddValue(e.key, e.value);
    }
    if (!st.ok()) return st.ToString();
  }
  absl::Status st = w.Open(path);
  if (st.ok()) st = w.Finish();
  return st.ok() ? "" : st.ToString();
}

TEST_F(PreTypesTest, JinaV2MaskTokenStripsSpacesOnItsLeft) {
  const std::vector<Row> rows = ReadRows(TestdataPath("pre-types-mask.jsonl"));
  ASSERT_FALSE(rows.empty()) << "missing " << TestdataPath("pre-types-mask.jsonl");
  std::map<std::string, std::unique_ptr<Tokenizer>> toks;
  std::map<std::string, std::pair<int, int>> counts;
  Tokenizer::EncodeOptions no_bos;
  no_bos.add_bos = false;
  for (const Row& r : rows) {
    auto& tok = toks[r.pre];
    if (tok == nullptr) {
      const std::string path = ::testing::TempDir() + "/mask-" + r.pre + ".gguf";
      ASSERT_EQ(WriteVocabWithMask(*vocab_, r.pre, path), "");
      auto file = GgufFile::Open(path);
      ASSERT_TRUE(file.ok()) << file.status();
      auto t = Tokenizer::FromGguf(**file);
      ASSERT_TRUE(t.ok()) << r.pre << ": " << t.status();
      tok = std::move(*t);
    }
    auto ids = tok->Encode(r.text, no_bos);
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto& [passed, total] = counts[r.pre];
    ++total;
    passed += *ids == r.ids;
    EXPECT_EQ(*ids, r.ids) << r.pre << " text '" << r.text << "'";
  }
  for (const auto& [pre, c] : counts) {
    std::cout << "[ pre-types-mask.jsonl ] " << pre << ": " << c.first << "/" << c.second
              << " pass\n";
  }
  // The rule is what differs: gpt-2 keeps the space before <mask>, jina-v2 drops it.
  ASSERT_EQ(counts.size(), 4u);
}

TEST(PreTokenizerNamesTest, EveryLlamaCppNameIsKnownAndOthersAreNot) {
  for (const std::string& name : AllNames()) {
    EXPECT_TRUE(LookupPreTokenizer(name).ok()) << name;
    EXPECT_TRUE(tokenizer_internal::PreTokenizer::Create(LookupPreTokenizer(name)->type).ok())
        << name;
  }
  for (const char* name : {"", "llama", "gpt2", "Qwen2", "llama-bpe ", "qwen3"}) {
    const auto st = LookupPreTokenizer(name).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented) << name;
    EXPECT_THAT(st.message(), HasSubstr(absl::StrCat("'", name, "'")));
  }
}

TEST(PreTokenizerNamesTest, PerNameRulesFollowLlamaCpp) {
  for (const std::string& name : AllNames()) {
    const auto rules = *LookupPreTokenizer(name);
    const bool llama3 = name == "llama3" || name == "llama-v3" || name == "llama-bpe";
    EXPECT_EQ(rules.ignore_merges, llama3 || name == "tekken") << name;
    EXPECT_EQ(rules.add_bos, llama3 || name == "tekken" || name == "chameleon") << name;
    EXPECT_EQ(rules.clear_bos_id, name == "chatglm-bpe") << name;
    EXPECT_EQ(rules.mask_lstrip, name.rfind("jina-v2-", 0) == 0) << name;
    const bool keeps_spaces = name == "deepseek-llm" || name == "deepseek-coder" ||
                              name == "command-r" || name == "qwen2" || name == "poro-chat" ||
                              name == "viking" || name == "tekken" || name == "smollm" ||
                              name == "chameleon";
    EXPECT_EQ(rules.clean_spaces, !keeps_spaces) << name;
  }
  EXPECT_EQ(LookupPreTokenizer("dbrx")->type, PreTokenizerType::kDbrx);
  EXPECT_EQ(LookupPreTokenizer("phi-2")->type, PreTokenizerType::kGpt2);
}

// chatglm-bpe clears the BOS id before the GGUF keys are read, so a file's own
// bos_token_id still wins; the llama-bpe file has one.
TEST_F(PreTypesTest, ChatglmKeepsTheFilesBosId) {
  EXPECT_EQ(For("chatglm-bpe").bos_id(), 128000);
  EXPECT_TRUE(For("chatglm-bpe").add_bos());  // add_bos_token = true in the file
}

TEST_F(PreTypesTest, EmptyTextGivesNoTokensForEveryName) {
  Tokenizer::EncodeOptions no_bos;
  no_bos.add_bos = false;
  for (const std::string& name : AllNames()) {
    if (name.rfind("jina-v2-", 0) == 0) continue;  // needs <mask>
    auto ids = For(name).Encode("", no_bos);
    ASSERT_TRUE(ids.ok()) << name;
    EXPECT_TRUE(ids->empty()) << name;
  }
}

}  // namespace
}  // namespace bitparity
