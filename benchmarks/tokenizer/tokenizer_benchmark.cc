// Tokenizer speed: Encode throughput (MB/s of UTF-8 input) on a ~1 MB mixed text
// (prose, code, numbers, several scripts, emoji, whitespace runs) for each fixture
// vocabulary, Decode throughput, and vocabulary load time (GGUF already open, and
// open + load).
//
//   build-tok/bin/tokenizer_benchmark [--benchmark_filter=Encode]
//
// Fixtures come from BITPARITY_FIXTURES (environment) or the configured folder.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/tokenizer/tokenizer.h"

namespace bitparity {
namespace {

std::string FixturePath(const std::string& rel) {
  const char* env = std::getenv("BITPARITY_FIXTURES");
  return absl::StrCat(env != nullptr ? env : BITPARITY_FIXTURES_DIR, "/", rel);
}

const char* const kVocabs[] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-llama-bpe.gguf",
                               "ggml-vocab-gpt-2.gguf"};

// Fixed-seed generator, so every run tokenizes the same bytes.
class Lcg {
 public:
  uint32_t Next() {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state_ >> 33);
  }
  size_t Below(size_t n) { return Next() % n; }

 private:
  uint64_t state_ = 20260310;
};

std::string MixedText(size_t bytes) {
  static const char* const kWords[] = {
      "the", "of", "and", "to", "in", "is", "that", "for", "it", "was", "on", "with", "as", "be",
      "by", "at", "this", "from", "model", "weights", "ternary", "inference", "token", "engine",
      "quickly", "village", "between", "rolling", "hills", "river", "people", "because", "while",
      "however", "although", "Meanwhile", "government", "information", "development", "system",
      "important", "understanding", "international", "responsibility", "characteristics",
      "don't", "it's", "we've", "they'll", "I'm", "you'd", "she's", "WE'RE", "Bitnet", "LLaMA"};
  static const char* const kUnicode[] = {
      "Ünïcödé naïve café déjà vu", "Größenwahn straße Führer Äpfel", "東京タワーと富士山",
      "人工智能的发展非常迅速", "Привет мир, как дела?", "नमस्ते दुनिया", "مرحبا بالعالم",
      "🙂👍🦙🚀 ✓ → ≤ ≥ ∑ π", "한국어 텍스트 처리", "Ελληνικά γράμματα", "ไทยภาษา"};
  static const char* const kCode[] = {
      "def add(a, b):\n    return a + b  # sum\n",
      "for (int i = 0; i < n; ++i) {\n\tout[i] = x[i] * scale;\n}\n",
      "if (!status.ok()) return status;\n", "    const auto it = map.find(key);\n",
      "<div class=\"row\"><span>{{ value }}</span></div>\n", "SELECT id, name FROM users WHERE age > 30;\n"};
  Lcg rng;
  std::string text;
  text.reserve(bytes + 256);
  while (text.size() < bytes) {
    switch (rng.Below(10)) {
      case 0:
      case 1:
      case 2:
      case 3: {  // a prose sentence
        const size_t n = 6 + rng.Below(14);
        for (size_t i = 0; i < n; ++i) {
          if (i > 0) text += rng.Below(12) == 0 ? ", " : " ";
          text += kWords[rng.Below(sizeof(kWords) / sizeof(kWords[0]))];
        }
        text += rng.Below(4) == 0 ? "?\n" : ". ";
        break;
      }
      case 4:
      case 5: {  // code with fresh identifiers
        text += kCode[rng.Below(sizeof(kCode) / sizeof(kCode[0]))];
        text += "auto v";
        for (int i = 0; i < 6; ++i) text += static_cast<char>('a' + rng.Below(26));
        text += " = compute_" + std::to_string(rng.Below(100000)) + "(x);\n";
        break;
      }
      case 6:
      case 7:  // numbers
        text += absl::StrCat(" ", rng.Below(1000000), ".", rng.Below(100), " 20", rng.Below(30), "-0",
                             1 + rng.Below(9), " $", rng.Below(99999), ",", rng.Below(999), " (",
                             rng.Below(100), "%) ");
        break;
      case 8:  // other scripts
        text += kUnicode[rng.Below(sizeof(kUnicode) / sizeof(kUnicode[0]))];
        text += rng.Below(2) ? " " : "\n";
        break;
      default:  // whitespace runs
        text += std::string(1 + rng.Below(8), rng.Below(3) == 0 ? '\n' : ' ');
        break;
    }
  }
  return text;
}

const std::string& Text() {
  static const std::string* text = new std::string(MixedText(1 << 20));
  return *text;
}

std::unique_ptr<GgufFile> OpenVocab(const char* name) {
  auto file = GgufFile::Open(FixturePath(absl::StrCat("tokenizers/", name)));
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.status().ToString().c_str());
    return nullptr;
  }
  return std::move(*file);
}

void BM_Load(benchmark::State& state) {
  const char* name = kVocabs[state.range(0)];
  state.SetLabel(name);
  std::unique_ptr<GgufFile> file = OpenVocab(name);
  if (file == nullptr) return state.SkipWithError("fixture missing");
  for (auto _ : state) {
    auto tok = Tokenizer::FromGguf(*file);
    if (!tok.ok()) return state.SkipWithError(tok.status().ToString().c_str());
    benchmark::DoNotOptimize(tok->get());
  }
}
BENCHMARK(BM_Load)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

void BM_OpenAndLoad(benchmark::State& state) {
  const char* name = kVocabs[state.range(0)];
  state.SetLabel(name);
  for (auto _ : state) {
    std::unique_ptr<GgufFile> file = OpenVocab(name);
    if (file == nullptr) return state.SkipWithError("fixture missing");
    auto tok = Tokenizer::FromGguf(*file);
    if (!tok.ok()) return state.SkipWithError(tok.status().ToString().c_str());
    benchmark::DoNotOptimize(tok->get());
  }
}
BENCHMARK(BM_OpenAndLoad)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

void BM_Encode(benchmark::State& state) {
  const char* name = kVocabs[state.range(0)];
  std::unique_ptr<GgufFile> file = OpenVocab(name);
  if (file == nullptr) return state.SkipWithError("fixture missing");
  auto tok = Tokenizer::FromGguf(*file);
  if (!tok.ok()) return state.SkipWithError(tok.status().ToString().c_str());
  const std::string& text = Text();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = (*tok)->Encode(text);
    if (!ids.ok()) return state.SkipWithError(ids.status().ToString().c_str());
    tokens = ids->size();
    benchmark::DoNotOptimize(ids->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.SetLabel(absl::StrCat(name, " ", text.size(), " B -> ", tokens, " tokens"));
}
BENCHMARK(BM_Encode)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

void BM_Decode(benchmark::State& state) {
  const char* name = kVocabs[state.range(0)];
  std::unique_ptr<GgufFile> file = OpenVocab(name);
  if (file == nullptr) return state.SkipWithError("fixture missing");
  auto tok = Tokenizer::FromGguf(*file);
  if (!tok.ok()) return state.SkipWithError(tok.status().ToString().c_str());
  auto ids = (*tok)->Encode(Text());
  if (!ids.ok()) return state.SkipWithError(ids.status().ToString().c_str());
  for (auto _ : state) {
    auto text = (*tok)->Decode(*ids);
    benchmark::DoNotOptimize(text->data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * Text().size()));
  state.SetLabel(name);
}
BENCHMARK(BM_Decode)->DenseRange(0, 2)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace bitparity

BENCHMARK_MAIN();
