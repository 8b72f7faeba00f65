// Tokenizer tests, in three parts:
//   1. Known answers: llama.cpp's test-tokenizer-0 cases (tokenizers/*.inp/.out, no
//      BOS, no special parsing) and every golden prompt of bitnet.cpp (with BOS),
//      plus decode round trips and the golden greedy text.
//   2. Behaviour: special tokens, BOS/EOS flags, pieces, streaming, bad input and
//      10 MB texts.
//   3. Broken vocabularies, one hand-built GGUF per defect.
// To add a vocabulary to part 1, add a row to kKnownAnswerVocabs.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/spm_tokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "base/generation_text.h"
#include "base/gpt2_bytes.h"
#include "base/utf8.h"
#include "engine/tokenizer/vocab.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

#define ASSERT_OK_AND_ASSIGN_IMPL(var, lhs, expr) \
  auto var = (expr);                              \
  ASSERT_TRUE(var.ok()) << var.status();          \
  lhs = std::move(*var)
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL(BP_TEST_CONCAT(statusor_, __LINE__), lhs, expr)
#define BP_TEST_CONCAT(a, b) BP_TEST_CONCAT_INNER(a, b)
#define BP_TEST_CONCAT_INNER(a, b) a##b

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::unique_ptr<Tokenizer> LoadTokenizer(const std::string& rel_path) {
  auto file = GgufFile::Open(FixturePath(rel_path));
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto tok = Tokenizer::FromGguf(**file);
  EXPECT_TRUE(tok.ok()) << rel_path << ": " << tok.status();
  return tok.ok() ? std::move(*tok) : nullptr;
}

std::vector<int32_t> Ids(const Tokenizer& tok, absl::string_view text, bool add_bos = false,
                         bool parse_special = false) {
  Tokenizer::EncodeOptions opts;
  opts.add_bos = add_bos;
  opts.parse_special = parse_special;
  auto ids = tok.Encode(text, opts);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>();
}

std::string Hex(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) absl::StrAppend(&out, absl::Hex(c, absl::kZeroPad2));
  return out;
}

// ---------------------------------------------------------------------------
// 1. Known answers
// ---------------------------------------------------------------------------

struct KnownAnswerVocab {
  const char* name;
  const char* gguf;  // under tokenizers/
  bool lossless;     // decode(encode(text)) == text (BPE); SPM adds a leading space
};

const KnownAnswerVocab kKnownAnswerVocabs[] = {
    {"llama_spm", "ggml-vocab-llama-spm.gguf", false},
    {"llama_bpe", "ggml-vocab-llama-bpe.gguf", true},
    {"gpt_2", "ggml-vocab-gpt-2.gguf", true},
};

struct KnownAnswerCase {
  std::string text;
  std::vector<int32_t> ids;
};

// test-tokenizer-0 format: cases joined by "\n__ggml_vocab_test__\n" (also at the
// end); one line of space-separated ids per case.
std::vector<KnownAnswerCase> ReadKnownAnswers(const std::string& gguf) {
  const std::string inp = ReadFile(FixturePath("tokenizers/" + gguf + ".inp"));
  const std::string out = ReadFile(FixturePath("tokenizers/" + gguf + ".out"));
  std::vector<std::string> texts = absl::StrSplit(inp, "\n__ggml_vocab_test__\n");
  if (!texts.empty() && texts.back().empty()) texts.pop_back();
  std::vector<std::string> lines = absl::StrSplit(out, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  EXPECT_EQ(texts.size(), lines.size()) << gguf;
  std::vector<KnownAnswerCase> cases;
  for (size_t i = 0; i < texts.size() && i < lines.size(); ++i) {
    KnownAnswerCase c{texts[i], {}};
    for (absl::string_view t : absl::StrSplit(lines[i], ' ', absl::SkipEmpty())) {
      c.ids.push_back(std::stoi(std::string(t)));
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

class KnownAnswerTest : public ::testing::TestWithParam<KnownAnswerVocab> {};

TEST_P(KnownAnswerTest, MatchesLlamaCppIds) {
  REQUIRE_FIXTURES();
  const KnownAnswerVocab& v = GetParam();
  std::unique_ptr<Tokenizer> tok = LoadTokenizer(absl::StrCat("tokenizers/", v.gguf));
  ASSERT_NE(tok, nullptr);
  const std::vector<KnownAnswerCase> cases = ReadKnownAnswers(v.gguf);
  ASSERT_GE(cases.size(), 40u);
  int pass = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::vector<int32_t> ids = Ids(*tok, cases[i].text);
    if (ids == cases[i].ids) {
      ++pass;
    } else {
      ADD_FAILURE() << v.name << " case " << i << " text hex " << Hex(cases[i].text)
                    << "\n  got      " << absl::StrJoin(ids, " ")
                    << "\n  expected " << absl::StrJoin(cases[i].ids, " ");
    }
  }
  std::printf("[ known-answer ] %s: %d/%zu cases pass\n", v.name, pass, cases.size());
  EXPECT_EQ(pass, static_cast<int>(cases.size()));
}

TEST_P(KnownAnswerTest, DecodeInvertsEncode) {
  REQUIRE_FIXTURES();
  const KnownAnswerVocab& v = GetParam();
  std::unique_ptr<Tokenizer> tok = LoadTokenizer(absl::StrCat("tokenizers/", v.gguf));
  ASSERT_NE(tok, nullptr);
  int pass = 0;
  const std::vector<KnownAnswerCase> cases = ReadKnownAnswers(v.gguf);
  for (const KnownAnswerCase& c : cases) {
    for (bool bos : {false, true}) {
      ASSERT_OK_AND_ASSIGN(const std::string back, tok->Decode(Ids(*tok, c.text, bos)));
      // SPM keeps the space it prepends (the piece of "▁Hello" is " Hello").
      const std::string want = (v.lossless || c.text.empty()) ? c.text : " " + c.text;
      EXPECT_EQ(back, want) << v.name << " bos=" << bos << " text hex " << Hex(c.text);
      pass += back == want;
    }
  }
  std::printf("[ round-trip   ] %s: %d/%zu pass\n", v.name, pass, 2 * cases.size());
}

INSTANTIATE_TEST_SUITE_P(Vocabs, KnownAnswerTest, ::testing::ValuesIn(kKnownAnswerVocabs),
                         [](const auto& info) { return std::string(info.param.name); });

const char* const kGoldenModels[] = {"tiny-b158",     "tiny-b158-l3",  "tiny-bitnet",
                                     "tiny-b158-tq2", "tiny-b158-tq1", "stories260K",
                                     "tiny-llama-i2s"};

std::vector<uint8_t> FromHex(const std::string& hex) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

TEST(GoldenTest, PromptsTokenizeLikeBitnetCpp) {
  REQUIRE_FIXTURES();
  int pass = 0, total = 0;
  for (const char* model : kGoldenModels) {
    const nlohmann::json m =
        nlohmann::json::parse(ReadFile(FixturePath(absl::StrCat("golden/", model, "/manifest.json"))));
    std::unique_ptr<Tokenizer> tok =
        LoadTokenizer(absl::StrCat("models/", m["model"]["file"].get<std::string>()));
    ASSERT_NE(tok, nullptr) << model;
    EXPECT_EQ(tok->n_vocab(), m["model"]["n_vocab"].get<int>()) << model;
    EXPECT_EQ(tok->bos_id(), m["model"]["bos"].get<int>()) << model;
    EXPECT_EQ(tok->eos_id(), m["model"]["eos"].get<int>()) << model;
    EXPECT_EQ(tok->add_bos(), m["model"]["add_bos"].get<bool>()) << model;
    for (const auto& p : m["prompts"]) {
      const std::string text = p["text"];
      const std::vector<int32_t> want = p["tokens"].get<std::vector<int32_t>>();
      ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> got, tok->Encode(text));  // model's BOS
      ++total;
      if (got == want) {
        ++pass;
      } else {
        ADD_FAILURE() << model << "/" << p["id"] << "\n  got      " << absl::StrJoin(got, " ")
                      << "\n  expected " << absl::StrJoin(want, " ");
      }
    }
  }
  std::printf("[ golden       ] prompts: %d/%d tokenize exactly\n", pass, total);
  EXPECT_EQ(pass, total);
  EXPECT_EQ(total, 6 * static_cast<int>(std::size(kGoldenModels)));  // every model's six prompts
}

TEST(GoldenTest, GreedyTextIsDecodeOfGreedyIds) {
  REQUIRE_FIXTURES();
  int checked = 0;
  for (const char* model : kGoldenModels) {
    const nlohmann::json m =
        nlohmann::json::parse(ReadFile(FixturePath(absl::StrCat("golden/", model, "/manifest.json"))));
    std::unique_ptr<Tokenizer> tok =
        LoadTokenizer(absl::StrCat("models/", m["model"]["file"].get<std::string>()));
    ASSERT_NE(tok, nullptr) << model;
    for (const auto& p : m["prompts"]) {
      const auto& g = p["greedy"];
      ASSERT_OK_AND_ASSIGN(const std::string text,
                           tok->Decode(g["ids"].get<std::vector<int32_t>>()));
      const std::vector<uint8_t> want = FromHex(g["text_hex"].get<std::string>());
      EXPECT_EQ(std::vector<uint8_t>(text.begin(), text.end()), want) << model << "/" << p["id"];
      if (g["text_is_valid_utf8"].get<bool>()) {
        EXPECT_EQ(text, g["text"].get<std::string>()) << model << "/" << p["id"];
      }
      ++checked;
    }
  }
  EXPECT_EQ(checked, 6 * static_cast<int>(std::size(kGoldenModels)));
}

// ---------------------------------------------------------------------------
// 2. Behaviour
// ---------------------------------------------------------------------------

class VocabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::bitparity::testing::HaveFixtures()) return;
    spm_ = LoadTokenizer("tokenizers/ggml-vocab-llama-spm.gguf").release();
    llama3_ = LoadTokenizer("tokenizers/ggml-vocab-llama-bpe.gguf").release();
    gpt2_ = LoadTokenizer("tokenizers/ggml-vocab-gpt-2.gguf").release();
  }
  static void TearDownTestSuite() {
    delete spm_;
    delete llama3_;
    delete gpt2_;
  }
  void SetUp() override {
    REQUIRE_FIXTURES();
    ASSERT_NE(spm_, nullptr);
    ASSERT_NE(llama3_, nullptr);
    ASSERT_NE(gpt2_, nullptr);
  }
  static const Tokenizer* spm_;
  static const Tokenizer* llama3_;
  static const Tokenizer* gpt2_;
};
const Tokenizer* VocabTest::spm_ = nullptr;
const Tokenizer* VocabTest::llama3_ = nullptr;
const Tokenizer* VocabTest::gpt2_ = nullptr;

TEST_F(VocabTest, ReadsVocabularyMetadata) {
  EXPECT_EQ(spm_->kind(), TokenizerKind::kSentencePiece);
  EXPECT_EQ(spm_->n_vocab(), 32000);
  EXPECT_EQ(spm_->bos_id(), 1);
  EXPECT_EQ(spm_->eos_id(), 2);
  EXPECT_TRUE(spm_->add_bos());
  EXPECT_FALSE(spm_->add_eos());
  EXPECT_EQ(spm_->pre(), "");
  EXPECT_EQ(spm_->TokenText(29871), "\xE2\x96\x81");

  EXPECT_EQ(llama3_->kind(), TokenizerKind::kBytePairEncoding);
  EXPECT_EQ(llama3_->n_vocab(), 128256);
  EXPECT_EQ(llama3_->bos_id(), 128000);
  EXPECT_EQ(llama3_->eos_id(), 128001);
  EXPECT_TRUE(llama3_->add_bos());
  EXPECT_EQ(llama3_->pre(), "llama-bpe");
  EXPECT_EQ(llama3_->TokenText(128009), "<|eot_id|>");

  EXPECT_EQ(gpt2_->n_vocab(), 50257);
  EXPECT_EQ(gpt2_->bos_id(), 50256);
  EXPECT_FALSE(gpt2_->add_bos());  // this vocab file has no add_bos_token key
  EXPECT_EQ(gpt2_->pre(), "gpt-2");
  EXPECT_EQ(gpt2_->TokenText(-1), "");
  EXPECT_EQ(gpt2_->TokenText(50257), "");
}

TEST_F(VocabTest, EndOfGenerationCoversEosAndEotNames) {
  EXPECT_TRUE(llama3_->IsEndOfGeneration(128001));   // <|end_of_text|> (EOS)
  EXPECT_TRUE(llama3_->IsEndOfGeneration(128009));   // <|eot_id|>
  EXPECT_FALSE(llama3_->IsEndOfGeneration(128000));  // <|begin_of_text|>
  EXPECT_FALSE(llama3_->IsEndOfGeneration(9906));
  EXPECT_TRUE(gpt2_->IsEndOfGeneration(50256));
  EXPECT_TRUE(spm_->IsEndOfGeneration(2));
  EXPECT_FALSE(spm_->IsEndOfGeneration(1));
  EXPECT_FALSE(spm_->IsEndOfGeneration(-1));
}

TEST_F(VocabTest, EmptyTextGivesNoTokensOrJustBos) {
  EXPECT_TRUE(Ids(*spm_, "", false).empty());
  EXPECT_TRUE(Ids(*llama3_, "", false).empty());
  EXPECT_TRUE(Ids(*gpt2_, "", false).empty());
  ASSERT_OK_AND_ASSIGN(auto spm, spm_->Encode(""));
  EXPECT_THAT(spm, ElementsAre(1));
  ASSERT_OK_AND_ASSIGN(auto l3, llama3_->Encode(""));
  EXPECT_THAT(l3, ElementsAre(128000));
  ASSERT_OK_AND_ASSIGN(auto g2, gpt2_->Encode(""));
  EXPECT_TRUE(g2.empty());
}

TEST_F(VocabTest, AddBosOverridesTheModelFlag) {
  EXPECT_THAT(Ids(*gpt2_, "Hello", /*add_bos=*/true), ElementsAre(50256, 15496));
  EXPECT_THAT(Ids(*llama3_, "Hello", /*add_bos=*/false), ElementsAre(9906));
  ASSERT_OK_AND_ASSIGN(auto ids, llama3_->Encode("Hello"));
  EXPECT_THAT(ids, ElementsAre(128000, 9906));
}

TEST_F(VocabTest, ParseSpecialSplitsControlTokenText) {
  const std::string text = "<|begin_of_text|>Hello<|eot_id|>";
  EXPECT_THAT(Ids(*llama3_, text, false, /*parse_special=*/true),
              ElementsAre(128000, 9906, 128009));
  // Without parse_special the markers are ordinary text.
  const std::vector<int32_t> plain = Ids(*llama3_, text, false, false);
  EXPECT_GT(plain.size(), 3u);
  for (int32_t id : plain) EXPECT_LT(id, 128000);
  ASSERT_OK_AND_ASSIGN(const std::string back, llama3_->Decode(plain));
  EXPECT_EQ(back, text);
  // Adjacent and repeated markers, text on both sides.
  EXPECT_THAT(Ids(*gpt2_, "a<|endoftext|><|endoftext|>b", false, true),
              ElementsAre(64, 50256, 50256, 65));
}

TEST_F(VocabTest, SpmPrefixesASpaceAfterSpecialTokens) {
  // llama.cpp re-adds the SPM space prefix to text that follows a special token.
  EXPECT_EQ(Ids(*spm_, "<s>Hello", false, true), (std::vector<int32_t>{1, 15043}));
  EXPECT_EQ(Ids(*spm_, "Hello", false), (std::vector<int32_t>{15043}));
  EXPECT_EQ(Ids(*spm_, "Hello</s>Hello", false, true),
            (std::vector<int32_t>{15043, 2, 15043}));
}

TEST_F(VocabTest, PiecesFollowTokenToPiece) {
  // Control tokens are hidden unless `special`.
  EXPECT_EQ(*llama3_->TokenToPiece(128000), "");
  EXPECT_EQ(*llama3_->TokenToPiece(128000, /*special=*/true), "<|begin_of_text|>");
  EXPECT_EQ(*spm_->TokenToPiece(0), "");  // <unk> is UNKNOWN
  EXPECT_EQ(*spm_->TokenToPiece(0, true), "<unk>");
  // SPM: U+2581 -> space; byte tokens -> the byte.
  EXPECT_EQ(*spm_->TokenToPiece(15043), " Hello");
  EXPECT_EQ(*spm_->TokenToPiece(3 + 0x41), "A");
  EXPECT_EQ(*spm_->TokenToPiece(3 + 0xF0), "\xF0");
  // GPT-2 byte-unicode: "ĠHello" -> " Hello", "Ċ" -> "\n".
  EXPECT_EQ(*gpt2_->TokenToPiece(18435), " Hello");
  EXPECT_EQ(*gpt2_->TokenToPiece(198), "\n");
  ASSERT_OK_AND_ASSIGN(const std::string with_bos, spm_->Decode({1, 15043, 2}, true));
  EXPECT_EQ(with_bos, "<s> Hello</s>");
  ASSERT_OK_AND_ASSIGN(const std::string without, spm_->Decode({1, 15043, 2}));
  EXPECT_EQ(without, " Hello");
}

TEST_F(VocabTest, RejectsIdsOutsideTheVocabulary) {
  for (const Tokenizer* tok : {spm_, llama3_, gpt2_}) {
    for (int32_t bad : {-1, tok->n_vocab(), INT32_MAX, INT32_MIN}) {
      EXPECT_EQ(tok->TokenToPiece(bad).status().code(), absl::StatusCode::kInvalidArgument);
      const auto decoded = tok->Decode({1, bad});
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(decoded.status().message(), HasSubstr("ids[1]"));
    }
  }
}

TEST_F(VocabTest, BpeRejectsInvalidUtf8WithTheOffset) {
  const std::vector<std::string> bad = {
      "ab\xFF",            // never valid
      "ab\x80",            // stray continuation byte
      "ab\xC3",            // truncated 2-byte sequence
      "ab\xE2\x82",        // truncated 3-byte sequence
      "ab\xC0\x80",        // overlong NUL (llama.cpp re-encodes it silently)
      "ab\xED\xA0\x80",    // UTF-16 surrogate
      "ab\xF4\x90\x80\x80" // above U+10FFFF
  };
  for (const std::string& s : bad) {
    for (const Tokenizer* tok : {llama3_, gpt2_}) {
      const auto ids = tok->Encode(s);
      EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument) << Hex(s);
      EXPECT_THAT(ids.status().message(), HasSubstr("byte 2")) << Hex(s);
    }
  }
  // Valid edge cases pass: NUL, U+FFFF, U+10FFFF.
  for (const Tokenizer* tok : {llama3_, gpt2_}) {
    const std::string ok("a\0b\xEF\xBF\xBF\xF4\x8F\xBF\xBF", 10);
    ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> ids, tok->Encode(ok));
    ASSERT_OK_AND_ASSIGN(const std::string back, tok->Decode(ids));
    EXPECT_EQ(back, ok);
  }
}

TEST_F(VocabTest, SpmTreatsInvalidUtf8AsBytes) {
  // As llama.cpp: split at lead bytes, unknown symbols fall back to <0xNN> tokens.
  EXPECT_THAT(Ids(*spm_, "\xFF"), ElementsAre(29871, 3 + 0xFF));
  EXPECT_THAT(Ids(*spm_, "a\x80"), ElementsAre(263, 3 + 0x80));
  ASSERT_OK_AND_ASSIGN(const std::string back, spm_->Decode(Ids(*spm_, "x\xC3(\xE2\x82")));
  EXPECT_EQ(back, " x\xC3(\xE2\x82");
}

// Streamed generation shows token pieces through base/generation_text.h, the rule
// both servers use: a UTF-8 sequence whose continuation bytes have not all arrived
// is held back.
TEST_F(VocabTest, StreamingHoldsBackPartialUtf8) {
  // "🙂" is F0 9F 99 82: GPT-2 has no token for it, so it arrives in pieces.
  const std::string emoji = "\xF0\x9F\x99\x82";
  for (const Tokenizer* tok : {gpt2_, spm_}) {
    const std::vector<int32_t> ids = Ids(*tok, "a" + emoji + "b");
    ASSERT_GE(ids.size(), 3u);
    GenerationText stream({});
    std::vector<std::string> parts;
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_OK_AND_ASSIGN(const std::string piece, tok->TokenToPiece(ids[i], false));
      const std::string part = stream.Push(piece, true, /*last=*/i + 1 == ids.size()).text;
      // Whatever is released never ends inside the emoji.
      if (!part.empty()) {
        EXPECT_EQ(part.find('\xF0') == std::string::npos, part.find('\x82') == std::string::npos)
            << Hex(part);
      }
      parts.push_back(part);
    }
    EXPECT_EQ(stream.text(), tok == spm_ ? " a" + emoji + "b" : "a" + emoji + "b");
    EXPECT_NE(std::find(parts.begin(), parts.end(), ""), parts.end()) << "nothing was held back";
  }
  // Byte tokens one at a time: held until the last one; the last step gives up a tail.
  GenerationText stream({});
  auto push = [&](int32_t id, bool last) {
    absl::StatusOr<std::string> piece = spm_->TokenToPiece(id, false);
    EXPECT_TRUE(piece.ok()) << piece.status();
    return stream.Push(piece.ok() ? *piece : "", true, last).text;
  };
  EXPECT_EQ(push(3 + 0xF0, false), "");
  EXPECT_EQ(push(3 + 0x9F, false), "");
  EXPECT_EQ(push(3 + 0x99, false), "");
  EXPECT_EQ(push(3 + 0x82, false), emoji);
  EXPECT_EQ(push(3 + 0xE2, false), "");
  EXPECT_EQ(spm_->TokenToPiece(-5, false).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(push(3 + 0x82, true), "\xE2\x82");  // the last step releases the tail
  // A stray continuation byte can never complete: released at once.
  GenerationText fresh({});
  EXPECT_EQ(fresh.Push("\x80", true, false).text, "\x80");
}

TEST_F(VocabTest, RandomBytesNeverCrashAndRoundTrip) {
  // Random strings over an alphabet rich in edge cases; seed fixed and printed.
  const uint32_t kSeed = 1234567;
  std::printf("[ random bytes ] seed %u\n", kSeed);
  const std::vector<std::string> atoms = {
      "a", "Z", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "7", "123", "!", "...",
      "\xC3\xA9", "\xE6\x9D\xB1", "\xF0\x9F\x99\x82", "\xC2\xA0", "\xE3\x80\x80",
      "\xFF", "\x80", "\xC3", "\xE2\x82", "\xED\xA0\x80", "\xC0\x80", std::string(1, '\0'),
      "<s>", "</s>", "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>", "<|"};
  uint64_t state = kSeed;
  auto next = [&state](uint32_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state >> 33) % n;
  };
  int bpe_rejected = 0, checked = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    const uint32_t n = next(12);
    for (uint32_t i = 0; i < n; ++i) text += atoms[next(atoms.size())];
    const bool valid_utf8 = llama3_->Encode(text).ok();
    for (const Tokenizer* tok : {spm_, llama3_, gpt2_}) {
      for (bool special : {false, true}) {
        Tokenizer::EncodeOptions opts;
        opts.parse_special = special;
        opts.add_bos = false;
        const auto ids = tok->Encode(text, opts);
        if (tok != spm_ && !ids.ok()) {
          EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument) << Hex(text);
          ++bpe_rejected;
          continue;
        }
        ASSERT_TRUE(ids.ok()) << ids.status() << " " << Hex(text);
        for (int32_t id : *ids) ASSERT_TRUE(id >= 0 && id < tok->n_vocab());
        ASSERT_OK_AND_ASSIGN(const std::string back, tok->Decode(*ids, /*special=*/true));
        // SPM re-adds its space prefix after each special token it split out, and
        // (as llama.cpp) lets a truncated sequence swallow the U+2581 of a following
        // space, which then decodes as those three bytes.
        if (tok == spm_ && (special || !valid_utf8)) continue;
        EXPECT_EQ(back, tok == spm_ && !text.empty() ? " " + text : text) << Hex(text);
        ++checked;
      }
    }
  }
  EXPECT_GT(bpe_rejected, 1000);
  EXPECT_GT(checked, 5000);
}

std::string MixedText(size_t bytes) {
  const std::string block =
      "The quick brown fox jumps over the lazy dog. It's 10:45 p.m.; pay $3,999.99 (42%)!\n"
      "def add(a, b):\n    return a + b  # sum\n\n\tfor (int i = 0; i < 1000000; ++i) x[i] = 7;\n"
      "Ünïcödé: naïve café, 東京タワー, Привет мир, 🙂👍 नमस्ते 12345678901234567890\n"
      "    \n\n\n   \xC2\xA0\xE3\x80\x80 ''' \"quoted\" <|not_special|> I'm you'll they've WE'RE\n";
  std::string text;
  text.reserve(bytes + block.size());
  while (text.size() < bytes) text += block;
  return text;
}

void ExpectEncodesAndRoundTrips(const Tokenizer& tok, const std::string& name,
                                const std::string& text) {
  const auto start = std::chrono::steady_clock::now();
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> ids, tok.Encode(text));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("[ big text     ] %-6s %-22s %9zu tokens in %.2f s\n",
              tok.kind() == TokenizerKind::kSentencePiece ? "spm" : tok.pre().c_str(),
              name.c_str(), ids.size(), s);
  ASSERT_OK_AND_ASSIGN(const std::string back, tok.Decode(ids));
  const bool spm = tok.kind() == TokenizerKind::kSentencePiece;
  EXPECT_EQ(back.size(), text.size() + (spm ? 1 : 0)) << name;
  EXPECT_TRUE(back == (spm ? " " + text : text)) << name;
}

TEST_F(VocabTest, TenMegabyteTextsWork) {
  const std::string text = MixedText(10u << 20);
  for (const Tokenizer* tok : {llama3_, gpt2_, spm_}) {
    ExpectEncodesAndRoundTrips(*tok, "10 MB mixed", text);
  }
}

// One pre-token as long as the text: O(n log n) merging, about 1 us per byte, so
// these run at 1 MB to keep the suite quick (10 MB works too, in seconds).
TEST_F(VocabTest, MegabyteSingleWordTextsWork) {
  const size_t kOne = 1u << 20;
  const std::pair<const char*, std::string> cases[] = {
      {"1 MB of 'a'", std::string(kOne, 'a')},
      {"1 MB of spaces", std::string(kOne, ' ')},
      {"1 MB of newlines", std::string(kOne, '\n')},
      {"1 MB of digits", std::string(kOne, '7')},
      {"1 MB of '!'", std::string(kOne, '!')},
  };
  for (const Tokenizer* tok : {llama3_, gpt2_, spm_}) {
    for (const auto& [name, text] : cases) ExpectEncodesAndRoundTrips(*tok, name, text);
  }
}

// max_token_bytes() is a lower bound on the token count: Encode of B bytes gives at
// least ceil(B / L) tokens. Checked on texts built to need few tokens per byte: each
// vocabulary's longest tokens repeated, runs of one character, literal U+2581, special
// token text, random bytes (SPM), besides ordinary prose.
TEST_F(VocabTest, MaxTokenBytesBoundsTheTokenCount) {
  for (const Tokenizer* tok : {spm_, llama3_, gpt2_}) {
    const bool spm = tok->kind() == TokenizerKind::kSentencePiece;
    size_t longest_piece = 0, longest_text = 0;
    std::vector<int32_t> longest;  // ids with the longest piece, then the longest text
    for (int32_t id = 0; id < tok->n_vocab(); ++id) {
      const size_t piece = tok->TokenToPiece(id, /*special=*/true)->size();
      const size_t text = tok->TokenText(id).size();
      if (piece > longest_piece) longest.insert(longest.begin(), id);
      if (text > longest_text) longest.push_back(id);
      longest_piece = std::max(longest_piece, piece);
      longest_text = std::max(longest_text, text);
    }
    const size_t L = static_cast<size_t>(tok->max_token_bytes());
    SCOPED_TRACE(absl::StrCat(spm ? "spm" : tok->pre(), ": max_token_bytes ", L,
                              ", longest piece ", longest_piece, ", longest text ", longest_text));
    std::printf("%s: max_token_bytes %zu (longest piece %zu, longest text %zu)\n",
                spm ? "spm" : tok->pre().c_str(), L, longest_piece, longest_text);
    ASSERT_GT(L, 0u);
    EXPECT_GE(L, longest_piece);
    // BPE: exactly the longest piece; SPM: the longest text, past the longest piece.
    EXPECT_EQ(L, spm ? longest_text : longest_piece);
    if (spm) {
      EXPECT_GT(L, longest_piece);
    }

    std::vector<std::pair<std::string, std::string>> texts = {
        {"prose", MixedText(64 << 10)},
        {"spaces", std::string(20000, ' ')},
        {"newlines", std::string(20000, '\n')},
        {"letters", std::string(20000, 'a')},
        {"digits", std::string(20000, '7')},
        {"dashes", std::string(20000, '-')},
        {"literal U+2581", absl::StrJoin(std::vector<std::string>(5000, "\xE2\x96\x81"), "")},
    };
    for (size_t k = 0; k < std::min<size_t>(longest.size(), 8); ++k) {
      const int32_t id = longest[longest.size() - 1 - k];
      for (const std::string& unit : {*tok->TokenToPiece(id, true), std::string(tok->TokenText(id))}) {
        std::string text;
        while (text.size() < 20000) text += unit;
        texts.emplace_back(absl::StrCat("token ", id, " repeated"), text);
      }
    }
    if (spm) {  // SPM takes any bytes; BPE needs UTF-8
      std::string bytes(20000, '\0');
      uint32_t x = 12345;
      for (char& c : bytes) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
      texts.emplace_back("random bytes", bytes);
    }
    for (const auto& [name, text] : texts) {
      for (const bool parse_special : {false, true}) {
        const std::vector<int32_t> ids = Ids(*tok, text, /*add_bos=*/false, parse_special);
        EXPECT_GE(ids.size(), (text.size() + L - 1) / L)
            << name << " (" << text.size() << " bytes, parse_special " << parse_special << ")";
      }
    }
  }
}

// SpmEncode tokenizes "▁word" pieces one by one when the vocabulary allows it; that
// must give exactly what one llama.cpp session over the whole text gives.
TEST(SpmInternalsTest, WordByWordEqualsWholeText) {
  REQUIRE_FIXTURES();
  for (const char* path : {"tokenizers/ggml-vocab-llama-spm.gguf", "models/stories260K.gguf"}) {
    ASSERT_OK_AND_ASSIGN(auto file, GgufFile::Open(FixturePath(path)));
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<tokenizer_internal::Vocab> vocab,
                         tokenizer_internal::LoadVocab(*file));
    ASSERT_TRUE(vocab->spm_words_independent) << path;
    std::string text = MixedText(256 << 10) + " \xF0 \xE2\x96\x81x\xE2\x96\x81\xE2\x96\x81  y";
    text = absl::StrReplaceAll(text, {{" ", "\xE2\x96\x81"}});
    std::vector<int32_t> by_word, whole;
    ASSERT_TRUE(tokenizer_internal::SpmEncode(*vocab, text, &by_word).ok());
    vocab->spm_words_independent = false;
    ASSERT_TRUE(tokenizer_internal::SpmEncode(*vocab, text, &whole).ok());
    EXPECT_EQ(by_word, whole) << path;
    EXPECT_GT(whole.size(), 50000u);
  }
}

TEST_F(VocabTest, ConcurrentEncodesAgree) {
  const std::string text = MixedText(64 << 10);
  ASSERT_OK_AND_ASSIGN(const std::vector<int32_t> want, llama3_->Encode(text));
  std::vector<std::vector<int32_t>> got(4);
  std::vector<std::thread> threads;
  for (auto& g : got) {
    threads.emplace_back([&] { g = *llama3_->Encode(text); });
  }
  for (auto& t : threads) t.join();
  for (const auto& g : got) EXPECT_EQ(g, want);
}

// ---------------------------------------------------------------------------
// 3. Broken vocabularies
// ---------------------------------------------------------------------------

// A small BPE vocabulary: a b c ab abc, merges "a b" and "ab c".
struct TinyVocab {
  std::string model = "gpt2";
  std::optional<std::string> pre = "gpt-2";
  std::vector<std::string> tokens = {"a", "b", "c", "ab", "abc", "<|endoftext|>"};
  std::optional<std::vector<int32_t>> types = std::vector<int32_t>{1, 1, 1, 1, 1, 3};
  std::optional<std::vector<float>> scores;
  std::optional<std::vector<std::string>> merges = std::vector<std::string>{"a b", "ab c"};
  std::optional<uint32_t> bos = 5;
  bool drop_tokens = false;
};

absl::StatusOr<std::unique_ptr<Tokenizer>> Build(const TinyVocab& v) {
  GgufWriter w;
  absl::Status st = w.AddString("general.architecture", "gpt2");
  auto add = [&st](absl::Status s) {
    if (st.ok()) st = s;
  };
  if (!v.model.empty()) add(w.AddString("tokenizer.ggml.model", v.model));
  if (v.pre) add(w.AddString("tokenizer.ggml.pre", *v.pre));
  if (!v.drop_tokens) add(w.AddStringArray("tokenizer.ggml.tokens", v.tokens));
  if (v.types) add(w.AddInt32Array("tokenizer.ggml.token_type", *v.types));
  if (v.scores) add(w.AddFloat32Array("tokenizer.ggml.scores", *v.scores));
  if (v.merges) add(w.AddStringArray("tokenizer.ggml.merges", *v.merges));
  if (v.bos) add(w.AddUint32("tokenizer.ggml.bos_token_id", *v.bos));
  EXPECT_TRUE(st.ok()) << st;
  auto file = GgufFile::FromBytes(w.HeaderBytes(), "tiny.gguf");
  if (!file.ok()) return file.status();
  return Tokenizer::FromGguf(**file);
}

TEST(BrokenVocabTest, TinyVocabularyWorks) {
  ASSERT_OK_AND_ASSIGN(auto tok, Build(TinyVocab{}));
  EXPECT_THAT(Ids(*tok, "abc"), ElementsAre(4));
  EXPECT_THAT(Ids(*tok, "abab"), ElementsAre(3, 3));
  EXPECT_THAT(Ids(*tok, "cab"), ElementsAre(2, 3));
  EXPECT_EQ(tok->bos_id(), 5);
  EXPECT_EQ(tok->eos_id(), -1);  // llama.cpp's default 11 does not exist here
  // Bytes without a token vanish, as in llama.cpp (it keeps one-byte-string hits only).
  EXPECT_THAT(Ids(*tok, "a z"), ElementsAre(0));
  // ... so no byte count bounds the token count.
  EXPECT_EQ(tok->max_token_bytes(), 0);
}

// With every byte a token and every merge making a token, bytes cannot vanish and
// max_token_bytes() is the longest piece; one merge into a non-token undoes that.
TEST(BrokenVocabTest, MaxTokenBytesNeedsEveryByteAndMergeResultToBeAToken) {
  TinyVocab v;
  v.tokens.clear();
  v.types = std::vector<int32_t>();
  for (int b = 0; b < 256; ++b) {
    std::string spelled;
    AppendUtf8(Gpt2ByteToCodePoint(static_cast<uint8_t>(b)),
                                   &spelled);
    v.tokens.push_back(spelled);
    v.types->push_back(1);
  }
  v.tokens.push_back("ab");
  v.tokens.push_back("abc");
  v.types->insert(v.types->end(), {1, 1});
  v.merges = std::vector<std::string>{"a b", "ab c"};
  v.bos.reset();
  ASSERT_OK_AND_ASSIGN(auto tok, Build(v));
  EXPECT_EQ(tok->max_token_bytes(), 3);
  EXPECT_THAT(Ids(*tok, "abcab"), ElementsAre(257, 256));
  v.merges->push_back("c a");  // "ca" is not a token
  ASSERT_OK_AND_ASSIGN(auto holed, Build(v));
  EXPECT_EQ(holed->max_token_bytes(), 0);
}

TEST(BrokenVocabTest, UserDefinedTokensSplitWithoutParseSpecial) {
  TinyVocab v;
  v.tokens.push_back("<tag>");
  v.types->push_back(4);  // USER_DEFINED
  ASSERT_OK_AND_ASSIGN(auto tok, Build(v));
  EXPECT_THAT(Ids(*tok, "ab<tag>c", false, /*parse_special=*/false), ElementsAre(3, 6, 2));
  EXPECT_EQ(*tok->TokenToPiece(6), "<tag>");  // shown even without `special`
  // CONTROL text stays plain text without parse_special ('<' etc. have no tokens).
  EXPECT_THAT(Ids(*tok, "<|endoftext|>", false, false), ElementsAre());
  EXPECT_THAT(Ids(*tok, "<|endoftext|>", false, true), ElementsAre(5));
}

TEST(BrokenVocabTest, EndOfGenerationNamesBecomeControlTokens) {
  TinyVocab v;
  (*v.types)[5] = 1;  // "<|endoftext|>" typed NORMAL: llama.cpp retypes it CONTROL
  ASSERT_OK_AND_ASSIGN(auto tok, Build(v));
  EXPECT_TRUE(tok->IsEndOfGeneration(5));
  EXPECT_FALSE(tok->IsEndOfGeneration(4));
  EXPECT_EQ(*tok->TokenToPiece(5), "");
  EXPECT_EQ(*tok->TokenToPiece(5, true), "<|endoftext|>");
}

TEST(BrokenVocabTest, MissingModelOrTokensIsNotFound) {
  TinyVocab no_model;
  no_model.model = "";
  EXPECT_EQ(Build(no_model).status().code(), absl::StatusCode::kNotFound);
  TinyVocab no_tokens;
  no_tokens.drop_tokens = true;
  EXPECT_EQ(Build(no_tokens).status().code(), absl::StatusCode::kNotFound);
  TinyVocab no_merges;
  no_merges.merges.reset();
  EXPECT_EQ(Build(no_merges).status().code(), absl::StatusCode::kNotFound);
}

TEST(BrokenVocabTest, UnknownModelOrPreIsUnimplemented) {
  TinyVocab bert;
  bert.model = "bert";
  EXPECT_EQ(Build(bert).status().code(), absl::StatusCode::kUnimplemented);
  TinyVocab unknown;  // a name bitnet.cpp's llama.cpp does not know either
  unknown.pre = "qwen3";
  const auto st = Build(unknown).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(st.message(), HasSubstr("qwen3"));
  TinyVocab no_pre;  // missing pre = "default"
  no_pre.pre.reset();
  ASSERT_OK_AND_ASSIGN(auto tok, Build(no_pre));
  EXPECT_EQ(tok->pre(), "default");
}

TEST(BrokenVocabTest, InconsistentArraysAreDataLoss) {
  TinyVocab short_types;
  short_types.types = std::vector<int32_t>{1, 1};
  EXPECT_EQ(Build(short_types).status().code(), absl::StatusCode::kDataLoss);
  TinyVocab long_scores;
  long_scores.scores = std::vector<float>(7, 0.0f);
  EXPECT_EQ(Build(long_scores).status().code(), absl::StatusCode::kDataLoss);
  TinyVocab dup;
  dup.tokens[4] = "ab";
  const auto st = Build(dup).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(st.message(), HasSubstr("repeats"));
}

TEST(BrokenVocabTest, BadMergesAreDataLoss) {
  TinyVocab unknown_side;
  unknown_side.merges = std::vector<std::string>{"a b", "ab zz"};
  const auto st = Build(unknown_side).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(st.message(), HasSubstr("zz"));
  TinyVocab no_space;
  no_space.merges = std::vector<std::string>{"ab"};
  EXPECT_EQ(Build(no_space).status().code(), absl::StatusCode::kDataLoss);
  TinyVocab empty;
  empty.merges = std::vector<std::string>{""};
  EXPECT_EQ(Build(empty).status().code(), absl::StatusCode::kDataLoss);
}

TEST(BrokenVocabTest, OutOfRangeSpecialIdIsIgnored) {
  TinyVocab v;
  v.bos = 0xFFFFFFFFu;  // as in stories260K's separator/padding ids
  ASSERT_OK_AND_ASSIGN(auto tok, Build(v));
  EXPECT_EQ(tok->bos_id(), -1);
  Tokenizer::EncodeOptions opts;
  opts.add_bos = true;
  EXPECT_EQ(tok->Encode("ab", opts).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(BrokenVocabTest, SpmWithoutByteTokensFallsBackToUnknown) {
  TinyVocab v;
  v.model = "llama";
  v.pre.reset();
  v.merges.reset();
  v.tokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "\xE2\x96\x81" "a"};
  v.types = std::vector<int32_t>{2, 3, 3, 1, 1, 1};
  v.scores = std::vector<float>{0, 0, 0, -1, -2, -0.5f};
  v.bos = 1;
  ASSERT_OK_AND_ASSIGN(auto tok, Build(v));
  EXPECT_THAT(Ids(*tok, "a"), ElementsAre(5));
  EXPECT_THAT(Ids(*tok, "az"), ElementsAre(5, 0));  // 'z' has no <0x7A>: <unk>
  EXPECT_EQ(tok->max_token_bytes(), 5);  // "<unk>"; "\xE2\x96\x81" "a" is 4 bytes
  TinyVocab bad_byte = v;
  bad_byte.types = std::vector<int32_t>{2, 3, 3, 1, 6, 1};  // "a" typed BYTE, not <0xNN>
  EXPECT_EQ(Build(bad_byte).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace bitparity
