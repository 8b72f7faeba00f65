// The command-line tools, run as real processes (posix_spawn, no shell, so --text
// reaches them byte for byte): build/bin/bitnet-run and build/bin/bitnet-synth.
//
// Contract checked (engine/tools/bitnet_run.cc, bitnet_synth.cc): results are JSON
// on stdout and exit 0; every error is exactly one line on stderr, nothing on
// stdout, exit 2 for usage errors (bad flags, invalid arguments) and 1 otherwise.
// Numbers are checked against the golden fixtures (tiny-b158, p0_en).
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/sha256.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/fixtures.h"
#include "tests/tools/tool_run.h"

extern char** environ;

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using json = nlohmann::json;

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/cli_test_" + name; }

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

using ::bitparity::testing::ToolRun;

ToolRun Run(const std::string& tool, const std::vector<std::string>& args) {
  return ::bitparity::testing::RunTool(tool, args);
}

ToolRun BitnetRun(const std::vector<std::string>& args) { return Run("bitnet-run", args); }
ToolRun BitnetSynth(const std::vector<std::string>& args) { return Run("bitnet-synth", args); }

// Parses stdout as one JSON document (a failure names the run).
json ParseOut(const ToolRun& r) {
  json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "stdout is not JSON: " << r.out << "\nstderr: " << r.err;
  return j;
}

// An error run: exactly one line on stderr, starting with the tool name, and no stdout.
void ExpectOneLineError(const ToolRun& r, const std::string& tool) {
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
  EXPECT_THAT(r.err, StartsWith(tool + ":"));
  EXPECT_THAT(r.err, ::testing::EndsWith("\n"));
  EXPECT_EQ(r.out, "") << "stdout on error";
}

std::string TinyModel() { return FixturePath("models/tiny-b158.gguf"); }
std::string GoldenDir() { return FixturePath("golden/tiny-b158"); }

json Manifest() {
  std::ifstream f(GoldenDir() + "/manifest.json");
  return json::parse(f);
}

const json& Prompt(const json& manifest, const std::string& id) {
  for (const json& p : manifest["prompts"]) {
    if (p["id"] == id) return p;
  }
  ADD_FAILURE() << "no prompt " << id;
  return manifest["prompts"][0];
}

std::string Join(const std::vector<int32_t>& ids) { return absl::StrJoin(ids, ","); }

std::vector<float> ReadFloats(const std::string& path) {
  const std::string bytes = ReadFile(path);
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

// ---- bitnet-run: results -------------------------------------------------------------

TEST(BitnetRunTest, InfoReportsTinyB158) {
  REQUIRE_FIXTURES();
  const ToolRun r = BitnetRun({"info", "--model", TinyModel(), "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const json j = ParseOut(r);
  EXPECT_EQ(j["architecture"], "bitnet-b1.58");
  EXPECT_EQ(j["n_layer"], 4);
  EXPECT_EQ(j["n_embd"], 256);
  EXPECT_EQ(j["n_vocab"], 50257);
  EXPECT_EQ(j["tensor_types"], (json{{"f16", 1}, {"f32", 17}, {"i2_s", 28}}));
  EXPECT_EQ(j["n_tensors"], 46);
  EXPECT_EQ(j["tokenizer"]["bos"], 50256);
  auto sha = Sha256HexOfFile(TinyModel());
  ASSERT_TRUE(sha.ok()) << sha.status();
  EXPECT_EQ(j["sha256"], *sha);
}

TEST(BitnetRunTest, SequentialLogitsEqualGoldenBitForBit) {
  REQUIRE_FIXTURES();
  const json manifest = Manifest();
  const json& p = Prompt(manifest, "p0_en");
  const std::vector<int32_t> ids = p["tokens"].get<std::vector<int32_t>>();
  const std::string out = TempPath("p0_seq.f32");
  const ToolRun r = BitnetRun({"logits", "--model", TinyModel(), "--ids", Join(ids), "--mode", "seq", "--threads",
                               "1", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = ParseOut(r);
  EXPECT_EQ(j["n_tokens"], ids.size());
  EXPECT_EQ(j["n_vocab"], 50257);
  EXPECT_EQ(j["mode"], "seq");
  const std::string ours = ReadFile(out), golden = ReadFile(GoldenDir() + "/p0_en.seq.f32");
  ASSERT_EQ(ours.size(), ids.size() * 50257 * sizeof(float));
  ASSERT_EQ(golden.size(), ours.size());
  EXPECT_TRUE(ours == golden) << "sequential logits differ from bitnet.cpp's p0_en.seq.f32";
  // The JSON's argmax agrees with the file.
  const std::vector<float> f = ReadFloats(out);
  ASSERT_EQ(j["argmax"].size(), ids.size());
  for (size_t row = 0; row < ids.size(); ++row) {
    const float* l = f.data() + row * 50257;
    const int32_t a = static_cast<int32_t>(std::max_element(l, l + 50257) - l);
    EXPECT_EQ(j["argmax"][row], a) << "row " << row;
  }
}

TEST(BitnetRunTest, BatchLogitsWithin1e4OfGolden) {
  REQUIRE_FIXTURES();
  const json manifest = Manifest();
  const json& p = Prompt(manifest, "p0_en");
  const std::vector<int32_t> ids = p["tokens"].get<std::vector<int32_t>>();
  const std::string out = TempPath("p0_batch.f32");
  const ToolRun r = BitnetRun({"logits", "--model", TinyModel(), "--ids", Join(ids), "--mode", "batch", "--threads",
                               "1", "--out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ParseOut(r)["mode"], "batch");
  const std::vector<float> ours = ReadFloats(out), golden = ReadFloats(GoldenDir() + "/p0_en.batch.f32");
  ASSERT_EQ(ours.size(), ids.size() * 50257);
  ASSERT_EQ(golden.size(), ours.size());
  double worst = 0;
  for (size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::fabs(double{ours[i]} - golden[i]));
  std::printf("[cli] logits --mode batch vs p0_en.batch.f32: max |d| = %.3g\n", worst);
  EXPECT_LE(worst, 1e-4);
}

TEST(BitnetRunTest, TokenizeGivesTheManifestTokens) {
  REQUIRE_FIXTURES();
  const json manifest = Manifest();
  for (const char* id : {"p0_en", "p3_unicode"}) {
    SCOPED_TRACE(id);
    const json& p = Prompt(manifest, id);
    const ToolRun r = BitnetRun({"tokenize", "--model", TinyModel(), "--text", p["text"].get<std::string>()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json j = ParseOut(r);
    EXPECT_EQ(j["ids"], p["tokens"]);
    EXPECT_EQ(j["n_tokens"], p["tokens"].size());
  }
}

TEST(BitnetRunTest, DetokenizeRoundTripsTokenize) {
  REQUIRE_FIXTURES();
  const json manifest = Manifest();
  for (const char* id : {"p0_en", "p1_code", "p3_unicode"}) {
    SCOPED_TRACE(id);
    const std::string text = Prompt(manifest, id)["text"];
    const ToolRun t = BitnetRun({"tokenize", "--model", TinyModel(), "--text", text});
    ASSERT_EQ(t.exit_code, 0) << t.err;
    const std::vector<int32_t> ids = ParseOut(t)["ids"].get<std::vector<int32_t>>();
    const ToolRun d = BitnetRun({"detokenize", "--model", TinyModel(), "--ids", Join(ids)});
    ASSERT_EQ(d.exit_code, 0) << d.err;
    EXPECT_EQ(ParseOut(d)["text"], text);  // BOS renders as nothing
  }
}

TEST(BitnetRunTest, GenerateReportsTokensAndThroughput) {
  REQUIRE_FIXTURES();
  const json manifest = Manifest();
  const json& p = Prompt(manifest, "p2_nums");
  const std::vector<int32_t> ids = p["tokens"].get<std::vector<int32_t>>();
  const ToolRun r =
      BitnetRun({"generate", "--model", TinyModel(), "--ids", Join(ids), "-n", "5", "--ignore-eos", "--threads", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = ParseOut(r);
  const std::vector<int32_t> golden = p["greedy"]["ids"].get<std::vector<int32_t>>();
  EXPECT_EQ(j["ids"], json(std::vector<int32_t>(golden.begin(), golden.begin() + 5)));
  EXPECT_EQ(j["completion_tokens"], 5);
  EXPECT_EQ(j["prompt_tokens"], ids.size());
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["decode_steps"], 4);
  ASSERT_TRUE(j["prefill_tokens_per_s"].is_number());
  ASSERT_TRUE(j["decode_tokens_per_s"].is_number());
  EXPECT_GT(j["prefill_tokens_per_s"].get<double>(), 0.0);
  EXPECT_GT(j["decode_tokens_per_s"].get<double>(), 0.0);
  std::printf("[cli] generate: prefill %.0f tok/s, decode %.0f tok/s (1 thread, %s)\n",
              j["prefill_tokens_per_s"].get<double>(), j["decode_tokens_per_s"].get<double>(),
              j["kernels"].get<std::string>().c_str());
}

// ---- bitnet-run: vocabulary-only files ---------------------------------------------
// llama.cpp's ggml-vocab-*.gguf files: metadata and a tokenizer, no tensors, and the
// architecture of the model they came from (llama, gpt2). tokenize/detokenize/info must
// work on them; the ids are checked against their .inp/.out known answers.

struct VocabFile {
  const char* stem;          // tokenizers/<stem>.gguf
  const char* architecture;  // general.architecture
  int n_vocab;
  const char* tokenizer_model;
  const char* pre;
  bool spm;  // SentencePiece: pieces keep the space the tokenizer adds in front
};
constexpr VocabFile kVocabFiles[] = {
    {"ggml-vocab-llama-spm", "llama", 32000, "llama", "", true},
    {"ggml-vocab-llama-bpe", "llama", 128256, "gpt2", "llama-bpe", false},
    {"ggml-vocab-gpt-2", "gpt2", 50257, "gpt2", "gpt-2", false},
};
constexpr size_t kVocabCasesChecked = 12;  // each case is a process run

std::string VocabPath(const VocabFile& v) { return FixturePath(absl::StrCat("tokenizers/", v.stem, ".gguf")); }

struct KnownAnswer {
  std::string text;
  std::vector<int32_t> ids;
};

// The first `n` cases of <vocab>.gguf.inp/.out (no BOS, no special parsing).
std::vector<KnownAnswer> KnownAnswers(const VocabFile& v, size_t n) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  const std::string inp = ReadFile(VocabPath(v) + ".inp");
  std::istringstream out(ReadFile(VocabPath(v) + ".out"));
  std::vector<KnownAnswer> cases;
  size_t pos = 0;
  std::string line;
  while (cases.size() < n && pos < inp.size() && std::getline(out, line)) {
    const size_t end = inp.find(sep, pos);
    if (end == std::string::npos) break;
    KnownAnswer c{inp.substr(pos, end - pos), {}};
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
    pos = end + sep.size();
  }
  EXPECT_EQ(cases.size(), n) << VocabPath(v);
  return cases;
}

TEST(BitnetRunVocabOnlyTest, TokenizeMatchesKnownAnswers) {
  REQUIRE_FIXTURES();
  for (const VocabFile& v : kVocabFiles) {
    for (const KnownAnswer& c : KnownAnswers(v, kVocabCasesChecked)) {
      SCOPED_TRACE(absl::StrCat(v.stem, " text '", c.text, "'"));
      const ToolRun r = BitnetRun({"tokenize", "--model", VocabPath(v), "--text", c.text, "--no-bos"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(r.err, "");
      const json j = ParseOut(r);
      EXPECT_EQ(j["ids"].get<std::vector<int32_t>>(), c.ids);
      EXPECT_EQ(j["n_tokens"], c.ids.size());
    }
  }
}

TEST(BitnetRunVocabOnlyTest, DetokenizeInvertsKnownAnswers) {
  REQUIRE_FIXTURES();
  for (const VocabFile& v : kVocabFiles) {
    for (const KnownAnswer& c : KnownAnswers(v, kVocabCasesChecked)) {
      if (c.ids.empty()) continue;  // --ids "" is a usage error
      SCOPED_TRACE(absl::StrCat(v.stem, " text '", c.text, "'"));
      const ToolRun r = BitnetRun({"detokenize", "--model", VocabPath(v), "--ids", Join(c.ids)});
      ASSERT_EQ(r.exit_code, 0) << r.err;
      EXPECT_EQ(ParseOut(r)["text"], v.spm ? " " + c.text : c.text);
    }
  }
}

TEST(BitnetRunVocabOnlyTest, InfoSaysVocabOnlyAndDescribesTheTokenizer) {
  REQUIRE_FIXTURES();
  for (const VocabFile& v : kVocabFiles) {
    SCOPED_TRACE(v.stem);
    const ToolRun r = BitnetRun({"info", "--model", VocabPath(v)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    const json j = ParseOut(r);
    EXPECT_EQ(j["vocab_only"], true);
    EXPECT_THAT(j["note"].get<std::string>(), HasSubstr("no tensors"));
    EXPECT_EQ(j["n_tensors"], 0);
    EXPECT_EQ(j["architecture"], v.architecture);
    EXPECT_EQ(j["n_vocab"], v.n_vocab);
    EXPECT_EQ(j["tokenizer"]["model"], v.tokenizer_model);
    EXPECT_EQ(j["tokenizer"]["pre"], v.pre);
    auto sha = Sha256HexOfFile(VocabPath(v));
    ASSERT_TRUE(sha.ok()) << sha.status();
    EXPECT_EQ(j["sha256"], *sha);
  }
}

TEST(BitnetRunVocabOnlyTest, ModelCommandsFailWithAClearMessage) {
  REQUIRE_FIXTURES();
  for (const VocabFile& v : kVocabFiles) {
    SCOPED_TRACE(v.stem);
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"generate", "--model", VocabPath(v), "--text", "Hello", "-n", "2"},
          std::vector<std::string>{"logits", "--model", VocabPath(v), "--ids", "1,2"}}) {
      const ToolRun r = BitnetRun(args);
      EXPECT_EQ(r.exit_code, 1);
      ExpectOneLineError(r, "bitnet-run");
      EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));
      EXPECT_THAT(r.err, HasSubstr("holds only a vocabulary (no tensors)"));
    }
  }
}

// ---- bitnet-run: errors --------------------------------------------------------------

TEST(BitnetRunTest, MissingModelFlagIsUsageError) {
  const ToolRun r = BitnetRun({"info"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "bitnet-run");
  EXPECT_THAT(r.err, HasSubstr("--model"));
}

TEST(BitnetRunTest, NoSubcommandIsUsageError) {
  const ToolRun r = BitnetRun({});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "bitnet-run");
}

TEST(BitnetRunTest, NonexistentModelFileExits1NamingIt) {
  const std::string path = TempPath("no_such_model.gguf");
  const ToolRun r = BitnetRun({"info", "--model", path});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLineError(r, "bitnet-run");
  EXPECT_THAT(r.err, HasSubstr(path));
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST(BitnetRunTest, BadTokenIdsAreRejectedWithAMessage) {
  REQUIRE_FIXTURES();
  {
    const ToolRun r = BitnetRun({"logits", "--model", TinyModel(), "--ids", "50256,99999999"});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.exit_code, 2);  // InvalidArgument
    ExpectOneLineError(r, "bitnet-run");
    EXPECT_THAT(r.err, HasSubstr("99999999"));
    EXPECT_THAT(r.err, HasSubstr("outside the vocabulary"));
  }
  {
    const ToolRun r = BitnetRun({"logits", "--model", TinyModel(), "--ids", "50256,abc"});
    EXPECT_EQ(r.exit_code, 2);
    ExpectOneLineError(r, "bitnet-run");
    EXPECT_THAT(r.err, HasSubstr("'abc' is not a token id"));
  }
  {
    const ToolRun r = BitnetRun({"detokenize", "--model", TinyModel(), "--ids", "-1"});
    EXPECT_NE(r.exit_code, 0);
    ExpectOneLineError(r, "bitnet-run");
  }
}

TEST(BitnetRunTest, BogusModeIsUsageError) {
  REQUIRE_FIXTURES();
  const ToolRun r = BitnetRun({"logits", "--model", TinyModel(), "--ids", "50256,464", "--mode", "bogus"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "bitnet-run");
  EXPECT_THAT(r.err, HasSubstr("--mode must be batch or seq, got 'bogus'"));
}

TEST(BitnetRunTest, BadFaultSpecAndFaultPastTheModelAreRejected) {
  REQUIRE_FIXTURES();
  const ToolRun bad = BitnetRun({"info", "--model", TinyModel(), "--fault", "garbage"});
  EXPECT_EQ(bad.exit_code, 2);
  ExpectOneLineError(bad, "bitnet-run");
  EXPECT_THAT(bad.err, HasSubstr("bad fault spec 'garbage'"));
  const ToolRun past = BitnetRun({"info", "--model", TinyModel(), "--fault", "rope-offset:9"});
  EXPECT_EQ(past.exit_code, 2);
  ExpectOneLineError(past, "bitnet-run");
  EXPECT_THAT(past.err, HasSubstr("layer 9"));
}

// ---- bitnet-synth --------------------------------------------------------------------

TEST(BitnetSynthCliTest, SameSeedTwiceGivesIdenticalSha256) {
  const std::string a = TempPath("synth_a.gguf"), b = TempPath("synth_b.gguf"), c = TempPath("synth_c.gguf");
  const ToolRun ra = BitnetSynth({"--shape", "tiny", "--seed", "5", "--out", a});
  const ToolRun rb = BitnetSynth({"--shape", "tiny", "--seed", "5", "--out", b});
  const ToolRun rc = BitnetSynth({"--shape", "tiny", "--seed", "6", "--out", c});
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  ASSERT_EQ(rc.exit_code, 0) << rc.err;
  EXPECT_THAT(ra.out, HasSubstr("wrote " + a));
  auto ha = Sha256HexOfFile(a), hb = Sha256HexOfFile(b), hc = Sha256HexOfFile(c);
  ASSERT_TRUE(ha.ok() && hb.ok() && hc.ok());
  EXPECT_EQ(*ha, *hb);
  EXPECT_NE(*ha, *hc);
}

TEST(BitnetSynthCliTest, OutputLoadsInBitnetRunAndGenerates) {
  const std::string model = TempPath("synth_run.gguf");
  const ToolRun s = BitnetSynth({"--shape", "tiny", "--seed", "5", "--out", model});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  const ToolRun info = BitnetRun({"info", "--model", model});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const json ij = ParseOut(info);
  EXPECT_EQ(ij["architecture"], "bitnet-b1.58");
  EXPECT_EQ(ij["n_layer"], 4);
  EXPECT_EQ(ij["n_embd"], 256);
  EXPECT_EQ(ij["n_vocab"], 4096);
  auto sha = Sha256HexOfFile(model);
  ASSERT_TRUE(sha.ok());
  EXPECT_EQ(ij["sha256"], *sha);

  const ToolRun gen =
      BitnetRun({"generate", "--model", model, "--text", "hello world", "-n", "6", "--ignore-eos", "--threads", "1"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  const json gj = ParseOut(gen);
  EXPECT_EQ(gj["completion_tokens"], 6);
  EXPECT_EQ(gj["ids"].size(), 6u);
  EXPECT_EQ(gj["finish_reason"], "length");
  for (const json& id : gj["ids"]) {
    EXPECT_GE(id.get<int>(), 0);
    EXPECT_LT(id.get<int>(), 4096);
  }
  // Same model, same prompt, greedy: the same tokens again.
  const ToolRun again =
      BitnetRun({"generate", "--model", model, "--text", "hello world", "-n", "6", "--ignore-eos", "--threads", "2"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(ParseOut(again)["ids"], gj["ids"]);
}

TEST(BitnetSynthCliTest, InvalidShapeFailsWithOneLineAndNoFile) {
  const std::string out = TempPath("synth_bad.gguf");
  {
    const ToolRun r = BitnetSynth({"--shape", "bogus", "--out", out});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(r.exit_code, 1);
    ExpectOneLineError(r, "bitnet-synth");
    EXPECT_THAT(r.err, HasSubstr("unknown shape 'bogus'"));
    EXPECT_FALSE(Exists(out));
  }
  {
    const ToolRun r = BitnetSynth({"--shape", "tiny", "--hidden", "100", "--out", out});
    EXPECT_EQ(r.exit_code, 1);
    ExpectOneLineError(r, "bitnet-synth");
    EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
    EXPECT_FALSE(Exists(out));
  }
  {
    const ToolRun r = BitnetSynth({"--shape", "tiny"});  // --out is required
    EXPECT_EQ(r.exit_code, 2);
    ExpectOneLineError(r, "bitnet-synth");
    EXPECT_THAT(r.err, HasSubstr("--out"));
  }
}

}  // namespace
}  // namespace bitparity
