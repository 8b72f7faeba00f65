// File: fuzz/tokenizer_fuzzer.cc
//
// libFuzzer target for the tokenizers (engine/tokenizer): text -> ids -> text.
//
// Vocabularies, loaded once at start-up:
//   - the built-in byte-level BPE of bitnet-synth (engine/tools/synth), written into
//     an in-memory GGUF with GgufWriter: always present;
//   - the llama.cpp vocab GGUFs of the shared fixtures (gpt-2, llama-bpe, llama-spm)
//     from $BITPARITY_FIXTURES/tokenizers (default: the build's BITPARITY_FIXTURES_DIR);
//     a missing file is reported once on stderr and skipped.
//
// Input: byte 0 picks the vocabulary and the options (add_bos, parse_special,
// special on decode); the rest is the text. Checked on every input:
//   - Encode never crashes; it fails only with InvalidArgument (BPE text that is
//     not UTF-8) or ResourceExhausted (regex memory budget);
//   - every id it returns is in [0, n_vocab), and Decode of them succeeds;
//   - BPE, valid UTF-8, no special parsing, no BOS: Decode(Encode(text)) == text
//     (the byte <-> unicode map is a bijection and no text is dropped);
//   - the streaming detokenizer gives the same bytes as Decode.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "base/generation_text.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tools/synth/byte_bpe_vocab.h"

namespace {

using bitparity::GgufFile;
using bitparity::Tokenizer;

[[noreturn]] void Fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "tokenizer_fuzzer: %s %s\n", what, detail.c_str());
  std::abort();
}

struct Loaded {
  std::string name;
  std::unique_ptr<GgufFile> file;  // owns the strings the tokenizer may point into
  std::unique_ptr<Tokenizer> tok;
};

std::unique_ptr<GgufFile> BuiltinVocabGguf() {
  auto vocab = bitparity::synth::BuildByteBpeVocab(512);
  if (!vocab.ok()) Fail("BuildByteBpeVocab:", vocab.status().ToString());
  bitparity::GgufWriter w;
  auto check = [](const absl::Status& s) {
    if (!s.ok()) Fail("GgufWriter:", s.ToString());
  };
  check(w.AddString("general.architecture", "llama"));
  check(w.AddString("tokenizer.ggml.model", "gpt2"));
  check(w.AddString("tokenizer.ggml.pre", "default"));
  check(w.AddStringArray("tokenizer.ggml.tokens", vocab->tokens));
  check(w.AddInt32Array("tokenizer.ggml.token_type", vocab->token_types));
  check(w.AddStringArray("tokenizer.ggml.merges", vocab->merges));
  check(w.AddUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(vocab->eot_id)));
  check(w.AddUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(vocab->eot_id)));
  auto file = GgufFile::FromBytes(w.HeaderBytes(), "builtin-byte-bpe");
  if (!file.ok()) Fail("builtin vocab GGUF:", file.status().ToString());
  return std::move(*file);
}

std::vector<Loaded>& Vocabs() {
  static std::vector<Loaded>* vocabs = [] {
    auto* v = new std::vector<Loaded>();
    auto add = [v](std::string name, std::unique_ptr<GgufFile> file) {
      auto tok = Tokenizer::FromGguf(*file);
      if (!tok.ok()) Fail("Tokenizer::FromGguf:", name + ": " + tok.status().ToString());
      v->push_back({std::move(name), std::move(file), std::move(*tok)});
    };
    add("builtin-byte-bpe", BuiltinVocabGguf());
    const char* env = std::getenv("BITPARITY_FIXTURES");
    std::string dir = std::string(env != nullptr ? env : BP_FUZZ_DEFAULT_FIXTURES) + "/tokenizers/";
    for (const char* name :
         {"ggml-vocab-gpt-2.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-llama-spm.gguf"}) {
      auto file = GgufFile::Open(dir + name);
      if (!file.ok()) {
        std::fprintf(stderr, "tokenizer_fuzzer: skipping %s%s (%s)\n", dir.c_str(), name,
                     file.status().ToString().c_str());
        continue;
      }
      add(name, std::move(*file));
    }
    std::fprintf(stderr, "tokenizer_fuzzer: %zu vocabularies\n", v->size());
    return v;
  }();
  return *vocabs;
}

bool ValidUtf8(const uint8_t* p, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = p[i];
    size_t len;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Vocabs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::vector<Loaded>& vocabs = Vocabs();
  const uint8_t sel = data[0];
  const Loaded& v = vocabs[(sel & 0x0F) % vocabs.size()];
  const Tokenizer& tok = *v.tok;
  Tokenizer::EncodeOptions opts;
  opts.add_bos = (sel & 0x10) != 0;
  opts.parse_special = (sel & 0x20) != 0;
  const bool special = (sel & 0x40) != 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);

  auto ids = tok.Encode(text, opts);
  if (!ids.ok()) {
    const auto code = ids.status().code();
    if (code != absl::StatusCode::kInvalidArgument &&
        code != absl::StatusCode::kResourceExhausted &&
        !(code == absl::StatusCode::kFailedPrecondition && tok.bos_id() < 0)) {
      Fail("Encode: unexpected status", v.name + ": " + ids.status().ToString());
    }
    return 0;
  }
  for (int32_t id : *ids) {
    if (id < 0 || id >= tok.n_vocab()) Fail("Encode: id out of range", v.name);
  }
  auto decoded = tok.Decode(*ids, special);
  if (!decoded.ok()) Fail("Decode of Encode's ids failed", v.name + ": " + decoded.status().ToString());

  // Streamed generation's text rule (base/generation_text.h) over the token pieces.
  bitparity::GenerationText stream({});
  for (size_t i = 0; i < ids->size(); ++i) {
    auto piece = tok.TokenToPiece((*ids)[i], special);
    if (!piece.ok()) Fail("TokenToPiece failed", v.name);
    stream.Push(*piece, /*adds_text=*/true, /*last=*/i + 1 == ids->size());
  }
  if (stream.text() != *decoded) Fail("streamed bytes differ from Decode", v.name);

  if (tok.kind() == bitparity::TokenizerKind::kBytePairEncoding && !opts.parse_special &&
      !*opts.add_bos && ValidUtf8(data + 1, size - 1)) {
    auto plain = tok.Decode(*ids, /*special=*/true);
    if (!plain.ok() || *plain != text) {
      Fail("BPE round trip lost bytes", v.name);
    }
  }
  return 0;
}
