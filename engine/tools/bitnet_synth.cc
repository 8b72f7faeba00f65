// bitnet-synth: writes a random bitnet-b1.58 GGUF (I2_S projections, F16 tied
// embedding) that bitnet.cpp and our engine both load. What goes into the file is
// described in engine/tools/synth/synth_model.h.
//
//   bitnet-synth --out /tmp/tiny.gguf                          # --shape tiny, seed 1234
//   bitnet-synth --shape 2b4t --vocab-from ggml-vocab-llama-bpe.gguf --out /tmp/2b4t.gguf
//
// Errors: one line on stderr and exit status 1 (2 for bad command-line syntax).
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "engine/tools/synth/synth_model.h"

namespace {

using bitparity::synth::SynthConfig;

int Fail(const std::string& message) {
  std::fprintf(stderr, "bitnet-synth: error: %s\n", message.c_str());
  return 1;
}

int Run(int argc, char** argv) {
  CLI::App app{"Writes a deterministic random bitnet-b1.58 GGUF model."};
  std::string out, shape = "tiny", vocab_from;
  int64_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, ffn = 0, context = 0, vocab = 0;
  float rope_theta = 0;
  uint64_t seed = 1234;
  app.add_option("--out", out, "Output GGUF path")->required();
  app.add_option("--shape", shape, "Preset: tiny (4 layers, 256 hidden, 4096 built-in vocab) or "
                                   "2b4t (BitNet-b1.58-2B-4T sizes)")
      ->capture_default_str();
  app.add_option("--layers", layers, "Transformer blocks (overrides the shape)");
  app.add_option("--hidden", hidden, "Embedding width, a multiple of 128 and of --heads");
  app.add_option("--heads", heads, "Attention heads");
  app.add_option("--kv-heads", kv_heads, "Key/value heads (grouped-query attention)");
  app.add_option("--ffn", ffn, "Feed-forward width, a multiple of 128");
  app.add_option("--context", context, "Training context length written to the metadata");
  app.add_option("--rope-theta", rope_theta, "RoPE frequency base");
  auto* vocab_opt = app.add_option("--vocab", vocab, "Size of the built-in byte-level BPE vocabulary");
  auto* from_opt = app.add_option("--vocab-from", vocab_from,
                                  "Copy every tokenizer.* key from this vocab GGUF");
  vocab_opt->excludes(from_opt);
  app.add_option("--seed", seed, "Random seed (same seed, same bytes)")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bitnet-synth: error: %s (see --help)\n", e.what());
    return 2;
  }

  absl::StatusOr<SynthConfig> preset = bitparity::synth::ShapePreset(shape);
  if (!preset.ok()) return Fail(std::string(preset.status().message()));
  SynthConfig c = *preset;
  if (app.count("--layers")) c.n_layer = layers;
  if (app.count("--hidden")) c.n_embd = hidden;
  if (app.count("--heads")) c.n_head = heads;
  if (app.count("--kv-heads")) c.n_head_kv = kv_heads;
  if (app.count("--ffn")) c.n_ff = ffn;
  if (app.count("--context")) c.n_ctx = context;
  if (app.count("--rope-theta")) c.rope_theta = rope_theta;
  if (app.count("--vocab")) c.n_vocab = vocab;
  c.vocab_from = vocab_from;
  c.seed = seed;

  absl::StatusOr<bitparity::synth::SynthResult> r = bitparity::synth::WriteSynthModel(c, out);
  if (!r.ok()) return Fail(r.status().ToString());
  std::printf("wrote %s: %lld tensors, vocab %lld, %llu bytes\n", out.c_str(),
              static_cast<long long>(r->n_tensors), static_cast<long long>(r->n_vocab),
              static_cast<unsigned long long>(r->file_size));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {  // e.g. std::bad_alloc: still one line, non-zero
    return Fail(e.what());
  }
}
