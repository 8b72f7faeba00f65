// bitnet-synth end to end: the binary's output is reproducible (sha256), loads in
// our reader, has the fixture models' layout, the promised value distributions,
// and bad shapes fail with one line on stderr and no output file.
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/sha256.h"
#include "engine/gguf/gguf_reader.h"
#include "base/fp16.h"
#include "engine/tools/synth/synth_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity::synth {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::HasSubstr;

const char kSmallShape[] = "--layers 2 --hidden 128 --ffn 256 --heads 2 --kv-heads 1 --vocab 600";

std::string TempPath(const std::string& name) { return ::testing::TempDir() + "/" + name; }

struct RunResult {
  int exit_code;
  std::string err;
};

RunResult RunSynth(const std::string& args) {
  const std::string err_path = TempPath("synth_stderr.txt");
  const std::string cmd =
      absl::StrCat(BITPARITY_BIN_DIR, "/bitnet-synth ", args, " > /dev/null 2> ", err_path);
  const int status = std::system(cmd.c_str());
  std::ifstream in(err_path);
  std::stringstream ss;
  ss << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ss.str()};
}

bool Exists(const std::string& p) { return std::ifstream(p).good(); }

TEST(BitnetSynthTest, SameSeedGivesSameSha256) {
  const std::string a = TempPath("synth_a.gguf"), b = TempPath("synth_b.gguf"),
                    c = TempPath("synth_c.gguf");
  ASSERT_EQ(RunSynth(absl::StrCat(kSmallShape, " --seed 7 --out ", a)).exit_code, 0);
  ASSERT_EQ(RunSynth(absl::StrCat(kSmallShape, " --seed 7 --out ", b)).exit_code, 0);
  ASSERT_EQ(RunSynth(absl::StrCat(kSmallShape, " --seed 8 --out ", c)).exit_code, 0);
  auto ha = Sha256HexOfFile(a), hb = Sha256HexOfFile(b), hc = Sha256HexOfFile(c);
  ASSERT_THAT(ha, IsOk());
  ASSERT_THAT(hb, IsOk());
  ASSERT_THAT(hc, IsOk());
  EXPECT_EQ(*ha, *hb);
  EXPECT_NE(*ha, *hc);
}

TEST(BitnetSynthTest, MirrorsTinyB158Layout) {
  REQUIRE_FIXTURES();
  const std::string out = TempPath("synth_tiny.gguf");
  ASSERT_EQ(RunSynth(absl::StrCat("--shape tiny --vocab-from ",
                                  FixturePath("tokenizers/ggml-vocab-gpt-2.gguf"), " --out ", out))
                .exit_code,
            0);
  auto ours = GgufFile::Open(out);
  auto fixture = GgufFile::Open(FixturePath("models/tiny-b158.gguf"));
  ASSERT_THAT(ours, IsOk());
  ASSERT_THAT(fixture, IsOk());
  // Same keys in the same order with the same types and values, except the name.
  // (tokenizer.ggml.add_bos_token is not in the gpt-2 vocab file: synth adds it.)
  std::vector<std::string> our_keys, their_keys;
  for (const auto& e : (*ours)->metadata()) our_keys.push_back(e.key);
  for (const auto& e : (*fixture)->metadata()) their_keys.push_back(e.key);
  EXPECT_EQ(our_keys, their_keys);
  for (const auto& e : (*ours)->metadata()) {
    const GgufMetadataEntry* f = (*fixture)->FindKey(e.key);
    ASSERT_NE(f, nullptr) << e.key;
    EXPECT_EQ(e.type, f->type) << e.key;
    if (e.key == "general.name") continue;
    EXPECT_TRUE(e.value == f->value) << e.key;  // arrays too: tokens, types, merges
  }
  // Same tensors: names, order, types, shapes, offsets.
  ASSERT_EQ((*ours)->tensors().size(), (*fixture)->tensors().size());
  for (size_t i = 0; i < (*ours)->tensors().size(); ++i) {
    const GgufTensorInfo& a = (*ours)->tensors()[i];
    const GgufTensorInfo& b = (*fixture)->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type) << a.name;
    EXPECT_EQ(a.ne, b.ne) << a.name;
    EXPECT_EQ(a.offset, b.offset) << a.name;
  }
  EXPECT_EQ((*ours)->file_size() - (*ours)->data_offset(),
            (*fixture)->file_size() - (*fixture)->data_offset());
}

TEST(BitnetSynthTest, CopiesEveryTokenizerKeyFromVocabFile) {
  REQUIRE_FIXTURES();
  const std::string vocab = FixturePath("tokenizers/ggml-vocab-llama-spm.gguf");
  SynthConfig c;
  c.vocab_from = vocab;
  const std::string out = TempPath("synth_spm.gguf");
  auto r = WriteSynthModel(c, out);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->n_vocab, 32000);
  auto ours = GgufFile::Open(out);
  auto src = GgufFile::Open(vocab);
  ASSERT_THAT(ours, IsOk());
  ASSERT_THAT(src, IsOk());
  int copied = 0;
  for (const auto& e : (*src)->metadata()) {
    if (!absl::StartsWith(e.key, "tokenizer.")) continue;
    const GgufMetadataEntry* o = (*ours)->FindKey(e.key);
    ASSERT_NE(o, nullptr) << e.key;
    EXPECT_EQ(o->type, e.type) << e.key;
    EXPECT_TRUE(o->value == e.value) << e.key;
    ++copied;
  }
  EXPECT_EQ(copied, 10);  // model, pre, tokens, scores, token_type, bos, eos, unk, add_bos, add_eos
  EXPECT_EQ(*(*ours)->GetUint32("bitnet-b1.58.vocab_size"), 32000u);
  EXPECT_EQ((*ours)->FindTensor("token_embd.weight")->ne[1], 32000);
  EXPECT_FALSE((*ours)->HasKey("llama.vocab_size"));
}

TEST(BitnetSynthTest, WeightsFollowThePromisedDistributions) {
  SynthConfig c;
  c.seed = 99;
  const std::string out = TempPath("synth_dist.gguf");
  ASSERT_THAT(WriteSynthModel(c, out), IsOk());
  auto f = GgufFile::Open(out);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ(*(*f)->GetUint32("general.file_type"), 40u);
  EXPECT_EQ(*(*f)->GetString("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(*(*f)->GetString("tokenizer.ggml.pre"), "default");
  EXPECT_EQ(*(*f)->GetBool("tokenizer.ggml.add_bos_token"), true);
  EXPECT_EQ(*(*f)->GetUint32("tokenizer.ggml.bos_token_id"), 4095u);
  EXPECT_EQ(*(*f)->GetUint32("bitnet-b1.58.rope.dimension_count"), 64u);
  EXPECT_EQ((*f)->FindTensor("output.weight"), nullptr);
  for (const GgufTensorInfo& t : (*f)->tensors()) {
    const uint8_t* d = (*f)->TensorData(t);
    const int64_t n = t.num_elements;
    if (t.type == GgmlType::kI2_S) {
      int64_t count[4] = {};
      for (int64_t i = 0; i < n / 4; ++i) {
        for (int s = 0; s < 8; s += 2) ++count[(d[i] >> s) & 3];
      }
      EXPECT_EQ(count[3], 0) << t.name;
      EXPECT_NEAR(static_cast<double>(count[0]) / n, 0.3, 0.015) << t.name;
      EXPECT_NEAR(static_cast<double>(count[1]) / n, 0.4, 0.015) << t.name;
      float scale;
      std::memcpy(&scale, d + n / 4, 4);
      EXPECT_EQ(scale, static_cast<float>(std::sqrt(1.0 / (0.6 * t.ne[0])))) << t.name;
      for (int i = 4; i < 32; ++i) EXPECT_EQ(d[n / 4 + i], 0) << t.name;
    } else {
      double sum = 0, sq = 0;
      for (int64_t i = 0; i < n; ++i) {
        double x;
        if (t.type == GgmlType::kF16) {
          uint16_t h;
          std::memcpy(&h, d + 2 * i, 2);
          x = Fp16ToFp32(h);
        } else {
          float v;
          std::memcpy(&v, d + 4 * i, 4);
          x = v;
        }
        sum += x;
        sq += x * x;
      }
      const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
      if (t.type == GgmlType::kF16) {  // embedding: 0.08 N(0,1)
        EXPECT_NEAR(mean, 0.0, 0.002) << t.name;
        EXPECT_NEAR(sd, 0.08, 0.002) << t.name;
      } else {  // norms: 1 + 0.1 N(0,1), 256 or 512 values
        EXPECT_NEAR(mean, 1.0, 0.03) << t.name;
        EXPECT_NEAR(sd, 0.1, 0.02) << t.name;
      }
    }
  }
}

TEST(BitnetSynthTest, RejectsBadShapesWithOneLineAndNoFile) {
  struct Case {
    const char* args;
    const char* message;
  };
  const Case cases[] = {
      {"--hidden 256 --heads 3", "--hidden 256 is not a multiple of --heads 3"},
      {"--ffn 500", "--ffn 500 is not a multiple of 128"},
      {"--hidden 192 --heads 3 --kv-heads 1", "--hidden 192 is not a multiple of 128"},
      {"--heads 4 --kv-heads 3", "--heads 4 is not a multiple of --kv-heads 3"},
      {"--layers 0", "--layers 0 is out of range"},
      {"--shape huge", "unknown shape 'huge'"},
      {"--vocab 100", "--vocab 100 is out of range"},
      {"--vocab-from /nonexistent.gguf", "/nonexistent.gguf"},
      {"--vocab 500 --vocab-from /x.gguf", "excludes"},
  };
  for (const Case& c : cases) {
    const std::string out = TempPath("synth_bad.gguf");
    RunResult r = RunSynth(absl::StrCat(c.args, " --out ", out));
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args;
    EXPECT_TRUE(absl::StartsWith(r.err, "bitnet-synth: error: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(Exists(out)) << c.args;
    EXPECT_FALSE(Exists(out + ".tmp")) << c.args;
  }
  RunResult no_out = RunSynth("--layers 2");
  EXPECT_NE(no_out.exit_code, 0);
  EXPECT_THAT(no_out.err, HasSubstr("--out is required"));
}

TEST(BitnetSynthTest, ShapePresetsMatchTheirDocumentation) {
  auto big = ShapePreset("2b4t");
  ASSERT_THAT(big, IsOk());
  EXPECT_EQ(big->n_layer, 30);
  EXPECT_EQ(big->n_embd, 2560);
  EXPECT_EQ(big->n_ff, 6912);
  EXPECT_EQ(big->n_head, 20);
  EXPECT_EQ(big->n_head_kv, 5);
  EXPECT_EQ(big->n_vocab, 128256);
  EXPECT_EQ(big->n_ctx, 4096);
  EXPECT_EQ(big->rope_theta, 500000.0f);
  EXPECT_THAT(ValidateSynthConfig(*big), IsOk());
  auto tiny = ShapePreset("tiny");
  ASSERT_THAT(tiny, IsOk());
  EXPECT_THAT(ValidateSynthConfig(*tiny), IsOk());
  EXPECT_THAT(ShapePreset("7b"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("7b")));
}

}  // namespace
}  // namespace bitparity::synth
