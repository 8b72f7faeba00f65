// bitnet-run: the native engine from the command line.
//
//   bitnet-run info       --model M
//   bitnet-run tokenize   --model M --text T [--no-bos] [--special]
//   bitnet-run detokenize --model M --ids 1,2,3
//   bitnet-run logits     --model M (--ids 1,2,3 | --text T) [--mode batch|seq] [--out F]
//   bitnet-run generate   --model M (--ids ... | --text T) -n N [--temp T --top-k K ...]
//   bitnet-run lint       --model M [--json] [--strict]
//
// tokenize and detokenize read only the file's metadata and vocabulary, so they work on
// any GGUF with a tokenizer, whatever its architecture and whether or not it has tensors
// (llama.cpp's ggml-vocab-*.gguf files). info on such a vocabulary-only file prints what
// the metadata holds and "vocab_only": true; logits and generate refuse it.
//
// Every command takes --override-kv KEY=TYPE:VALUE (repeatable; llama.cpp's flag,
// base/metadata_override.h): the model runs with those metadata values.
//
// Results are JSON on stdout (lint: one finding per line, or JSON with --json).
// Every error is one line on stderr and a non-zero exit (2 for usage errors and
// malformed or mistyped overrides, 1 for everything else). lint exits 1 when it finds
// an error, or, with --strict, a warning; infos never fail it (base/model_lint.h).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/sha256.h"
#include "base/status_macros.h"
#include "base/model_lint.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/model_header.h"
#include "engine/kernels/cpu_features.h"
#include "engine/model/generate.h"
#include "engine/model/model.h"
#include "engine/model/session.h"
#include "nlohmann/json.hpp"

namespace bitparity {
namespace {

using json = nlohmann::ordered_json;

struct CommonFlags {
  std::string model;
  int threads = 0;
  std::string kernels = "auto";
  std::string fault;
  std::string head = "exact";
  std::string weight_memory = "hugepages";
  int context = 0;
  std::vector<std::string> override_kv;  // KEY=TYPE:VALUE
};

struct InputFlags {
  std::string ids;
  std::optional<std::string> text;
  bool no_bos = false;
  bool special = false;
};

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& s) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(s, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    int32_t v;
    if (!absl::SimpleAtoi(part, &v)) return absl::InvalidArgumentError(absl::StrCat("'", part, "' is not a token id"));
    ids.push_back(v);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--ids is empty");
  return ids;
}

absl::StatusOr<std::unique_ptr<Model>> LoadModel(const CommonFlags& f) {
  ModelOptions o;
  o.threads = f.threads;
  if (f.kernels != "auto") {
    ASSIGN_OR_RETURN(o.kernels, ParseKernelPath(f.kernels));
  }
  if (!f.fault.empty()) {
    ASSIGN_OR_RETURN(o.fault, FaultInjection::Parse(f.fault));
  }
  ASSIGN_OR_RETURN(o.head, ParseHeadMode(f.head));
  ASSIGN_OR_RETURN(o.weight_memory, ParseWeightMemory(f.weight_memory));
  ASSIGN_OR_RETURN(o.metadata_overrides, ParseMetadataOverrides(f.override_kv));
  absl::StatusOr<std::unique_ptr<Model>> m = Model::Load(f.model, o);
  if (!m.ok()) {
    // A vocabulary-only file fails on its first missing tensor; say what it is instead.
    auto file = GgufFile::Open(f.model);
    if (file.ok() && (*file)->tensors().empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          f.model, " holds only a vocabulary (no tensors): this command needs a model; "
                   "tokenize, detokenize and info work on it"));
    }
  }
  return m;
}

// The file's metadata with the --override-kv values laid over it.
absl::StatusOr<std::unique_ptr<GgufFile>> OpenWithOverrides(const CommonFlags& f) {
  ASSIGN_OR_RETURN(std::vector<MetadataOverride> overrides, ParseMetadataOverrides(f.override_kv));
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(f.model));
  RETURN_IF_ERROR(file->ApplyOverrides(overrides));
  return file;
}

// What tokenize and detokenize need: the metadata and the tokenizer, nothing else.
struct Vocabulary {
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
};

absl::StatusOr<Vocabulary> LoadVocabulary(const CommonFlags& f) {
  Vocabulary v;
  ASSIGN_OR_RETURN(v.file, OpenWithOverrides(f));
  if (!v.file->HasKey("tokenizer.ggml.model")) {
    return absl::FailedPreconditionError(absl::StrCat(f.model, " has no vocabulary (no tokenizer.ggml.model)"));
  }
  ASSIGN_OR_RETURN(v.tokenizer, Tokenizer::FromGguf(*v.file));
  return v;
}

absl::StatusOr<std::vector<int32_t>> ResolveInput(const Tokenizer* tok, const InputFlags& in) {
  if (in.text.has_value() == !in.ids.empty()) {
    return absl::InvalidArgumentError("give exactly one of --ids and --text");
  }
  if (!in.ids.empty()) return ParseIds(in.ids);
  if (tok == nullptr) return absl::FailedPreconditionError("this model has no vocabulary; use --ids");
  Tokenizer::EncodeOptions eo;
  if (in.no_bos) eo.add_bos = false;
  eo.parse_special = in.special;
  return tok->Encode(*in.text, eo);
}

void AddInputFlags(CLI::App* cmd, InputFlags& in) {
  cmd->add_option("--ids", in.ids, "token ids, comma separated");
  cmd->add_option("--text", in.text, "text, tokenized with the model's vocabulary");
  cmd->add_flag("--no-bos", in.no_bos, "do not add BOS to --text (default: the model's add_bos flag)");
  cmd->add_flag("--special", in.special, "parse special-token text such as <|begin_of_text|> in --text");
}

json TokenizerJson(const Tokenizer* tok) {
  if (tok == nullptr) return nullptr;
  return {{"model", tok->kind() == TokenizerKind::kSentencePiece ? "llama" : "gpt2"},
          {"pre", tok->pre()},
          {"bos", tok->bos_id()},
          {"eos", tok->eos_id()},
          {"add_bos", tok->add_bos()}};
}

// info for a file without tensors: what its metadata and vocabulary say.
absl::Status RunVocabOnlyInfo(const CommonFlags& f, const GgufFile& file) {
  json j;
  j["file"] = f.model;
  j["vocab_only"] = true;
  j["note"] = "this file has no tensors: it holds only metadata and a vocabulary";
  const absl::StatusOr<std::string> arch = file.GetString("general.architecture");
  j["architecture"] = arch.ok() ? json(*arch) : json(nullptr);
  const absl::StatusOr<std::string> name = file.GetString("general.name");
  j["name"] = name.ok() ? json(*name) : json(nullptr);
  std::unique_ptr<Tokenizer> tok;
  if (file.HasKey("tokenizer.ggml.model")) {
    ASSIGN_OR_RETURN(tok, Tokenizer::FromGguf(file));
  }
  j["n_vocab"] = tok ? json(tok->n_vocab()) : json(nullptr);
  j["n_tensors"] = 0;
  j["file_bytes"] = file.file_size();
  j["gguf_version"] = file.version();
  j["n_metadata_keys"] = file.metadata().size();
  j["tokenizer"] = TokenizerJson(tok.get());
  j["sha256"] = Sha256Hex(file.bytes());
  j["metadata_overrides"] = f.override_kv;
  std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

absl::Status RunInfo(const CommonFlags& f) {
  {
    ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, OpenWithOverrides(f));
    if (file->tensors().empty()) return RunVocabOnlyInfo(f, *file);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Model> m, LoadModel(f));
  const ModelConfig& c = m->config();
  json j;
  j["file"] = f.model;
  j["vocab_only"] = false;
  j["architecture"] = c.arch_name;
  j["name"] = c.name;
  j["n_layer"] = c.n_layer;
  j["n_embd"] = c.n_embd;
  j["n_ff"] = c.n_ff;
  j["n_head"] = c.n_head;
  j["n_head_kv"] = c.n_head_kv;
  j["head_dim"] = c.head_dim;
  j["n_rot"] = c.n_rot;
  j["n_vocab"] = c.n_vocab;
  j["n_ctx_train"] = c.n_ctx_train;
  j["rope_freq_base"] = c.rope_theta;
  j["rms_eps"] = c.rms_eps;
  json types = json::object();
  for (const auto& [name, count] : m->TensorTypeCounts()) types[name] = count;
  j["tensor_types"] = types;
  j["n_tensors"] = m->file().tensors().size();
  j["file_bytes"] = m->file().file_size();
  j["gguf_version"] = m->file().version();
  j["tokenizer"] = TokenizerJson(m->tokenizer());
  j["kernels"] = m->kernels().name;
  j["output_head"] = HeadModeName(m->head_mode());
  j["weight_memory"] = WeightMemoryName(m->weight_memory());
  j["sha256"] = m->Sha256();
  j["metadata_overrides"] = f.override_kv;
  std::cout << j.dump(2) << "\n";
  return absl::OkStatus();
}

absl::Status RunTokenize(const CommonFlags& f, const InputFlags& in) {
  if (!in.text) return absl::InvalidArgumentError("tokenize needs --text");
  ASSIGN_OR_RETURN(const Vocabulary v, LoadVocabulary(f));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, ResolveInput(v.tokenizer.get(), in));
  json j;
  j["ids"] = ids;
  j["n_tokens"] = ids.size();
  json pieces = json::array();
  for (int32_t id : ids) pieces.push_back(std::string(v.tokenizer->TokenText(id)));
  j["pieces"] = pieces;
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

absl::Status RunDetokenize(const CommonFlags& f, const std::string& ids_flag, bool special) {
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, ParseIds(ids_flag));
  ASSIGN_OR_RETURN(const Vocabulary v, LoadVocabulary(f));
  ASSIGN_OR_RETURN(std::string text, v.tokenizer->Decode(ids, special));
  json j;
  j["text"] = text;  // invalid UTF-8 (a split multi-byte token) is shown as U+FFFD
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

// Reads only the header: lint must also speak about files the engine refuses.
// Returns whether the findings pass (no error; no warning either when `strict`).
absl::StatusOr<bool> RunLint(const CommonFlags& f, bool as_json, bool strict) {
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, OpenWithOverrides(f));
  const std::vector<LintFinding> findings = LintModel(ModelHeaderOf(*file));
  const int errors = CountFindings(findings, LintSeverity::kError);
  const int warnings = CountFindings(findings, LintSeverity::kWarning);
  const bool pass = errors == 0 && (!strict || warnings == 0);
  if (as_json) {
    json j;
    j["file"] = f.model;
    j["metadata_overrides"] = f.override_kv;
    j["errors"] = errors;
    j["warnings"] = warnings;
    j["infos"] = CountFindings(findings, LintSeverity::kInfo);
    j["strict"] = strict;
    j["pass"] = pass;
    json list = json::array();
    for (const LintFinding& x : findings) {
      list.push_back({{"severity", LintSeverityName(x.severity)}, {"code", x.code},
                      {"message", x.message}, {"fix", x.fix}});
    }
    j["findings"] = list;
    std::cout << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
  } else {
    for (const LintFinding& x : findings) std::cout << f.model << ": " << FormatFinding(x) << "\n";
    std::cout << f.model << ": " << errors << " error(s), " << warnings << " warning(s), "
              << CountFindings(findings, LintSeverity::kInfo) << " info(s)"
              << (pass ? "" : strict && errors == 0 ? " - warnings fail --strict" : "") << "\n";
  }
  return pass;
}

absl::StatusOr<EvalMode> ParseMode(const std::string& s) {
  if (s == "batch") return EvalMode::kBatch;
  if (s == "seq" || s == "sequential") return EvalMode::kSequential;
  return absl::InvalidArgumentError(absl::StrCat("--mode must be batch or seq, got '", s, "'"));
}

absl::Status RunLogits(const CommonFlags& f, const InputFlags& in, const std::string& mode_flag,
                       const std::string& out_path) {
  ASSIGN_OR_RETURN(EvalMode mode, ParseMode(mode_flag));
  ASSIGN_OR_RETURN(std::unique_ptr<Model> m, LoadModel(f));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, ResolveInput(m->tokenizer(), in));
  std::ofstream out;
  if (!out_path.empty()) {
    out.open(out_path, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", out_path));
  }
  Session session(*m, f.context > 0 ? f.context : std::max<int>(m->config().n_ctx_train, ids.size()));
  json argmax = json::array(), top = json::array();
  const auto t0 = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(session.Eval(ids, mode, LogitRows::All(), [&](int, absl::Span<const float> row) {
    const int32_t a = ArgMax(row);
    argmax.push_back(a);
    top.push_back(row[a]);
    if (out.is_open()) out.write(reinterpret_cast<const char*>(row.data()), row.size() * sizeof(float));
    return absl::OkStatus();
  }));
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (out.is_open()) {
    out.close();
    if (!out) return absl::DataLossError(absl::StrCat("writing ", out_path, " failed"));
  }
  json j;
  j["n_tokens"] = ids.size();
  j["n_vocab"] = m->config().n_vocab;
  j["mode"] = mode == EvalMode::kBatch ? "batch" : "seq";
  j["ids"] = ids;
  j["argmax"] = argmax;
  j["max_logit"] = top;
  j["out"] = out_path.empty() ? json(nullptr) : json(out_path);
  j["eval_ms"] = ms;
  j["threads"] = m->threads();
  j["kernels"] = m->kernels().name;
  j["output_head"] = HeadModeName(m->head_mode());
  j["weight_memory"] = WeightMemoryName(m->weight_memory());
  std::cout << j.dump() << "\n";
  return absl::OkStatus();
}

absl::Status RunGenerate(const CommonFlags& f, const InputFlags& in, GenerateOptions opts) {
  ASSIGN_OR_RETURN(std::unique_ptr<Model> m, LoadModel(f));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, ResolveInput(m->tokenizer(), in));
  const int ctx = f.context > 0 ? f.context : m->config().n_ctx_train;
  Session session(*m, ctx);
  ASSIGN_OR_RETURN(GenerateResult r, Generate(session, ids, opts));
  json j;
  j["prompt_ids"] = ids;
  j["ids"] = r.ids;
  j["text"] = r.text;
  j["finish_reason"] = FinishReasonName(r.finish_reason);
  j["prompt_tokens"] = r.timings.prompt_tokens;
  j["completion_tokens"] = r.ids.size();
  j["prefill_ms"] = r.timings.prefill_ms;
  j["prefill_tokens_per_s"] = r.timings.prefill_tokens_per_s();
  j["decode_ms"] = r.timings.decode_ms;
  j["decode_steps"] = r.timings.decode_steps;
  j["decode_tokens_per_s"] = r.timings.decode_tokens_per_s();
  j["first_token_ms"] = r.timings.first_token_ms;
  j["threads"] = m->threads();
  j["kernels"] = m->kernels().name;
  j["output_head"] = HeadModeName(m->head_mode());
  j["head_path"] = HeadModeName(r.head.path);  // what served this generation
  if (r.head.path == HeadMode::kScreened) {
    j["head_candidates"] = r.head.candidates;  // per token: rows recomputed exactly
    j["head_fallbacks"] = r.head.fallbacks;
  }
  j["weight_memory"] = WeightMemoryName(m->weight_memory());
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  CLI::App app{"bitnet-run: run the bitparity native BitNet engine"};
  app.require_subcommand(1);
  CommonFlags f;
  InputFlags in;
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("--model,-m", f.model, "GGUF model file")->required();
    cmd->add_option("--threads,-t", f.threads, "worker threads (default: number of cores)");
    cmd->add_option("--kernels", f.kernels, "kernel path: auto, scalar, avx2, avx512");
    cmd->add_option("--fault", f.fault, "inject a fault (engine/model/fault_injection.h)");
    cmd->add_option("--head", f.head, "output head: exact (bitnet.cpp's F16), screened (same tokens for greedy / top-k, "
                                    "reads half the head) or int8 (faster, changes the logits)");
    cmd->add_option("--weight-memory", f.weight_memory,
                    "where the weights live: hugepages (copied at load; faster decode) or mmap (the file mapping)");
    cmd->add_option("--context,-c", f.context, "context size (default: the model's)");
    cmd->add_option("--override-kv", f.override_kv,
                    "KEY=TYPE:VALUE (TYPE int, float, bool, str): run with this metadata value; repeatable");
  };
  CLI::App* info = app.add_subcommand("info", "model facts as JSON");
  add_common(info);
  CLI::App* tokenize = app.add_subcommand("tokenize", "text -> ids");
  add_common(tokenize);
  AddInputFlags(tokenize, in);
  CLI::App* detok = app.add_subcommand("detokenize", "ids -> text");
  add_common(detok);
  std::string detok_ids;
  bool detok_special = false;
  detok->add_option("--ids", detok_ids, "token ids")->required();
  detok->add_flag("--special", detok_special, "render control tokens");
  CLI::App* logits = app.add_subcommand("logits", "logits of every position");
  add_common(logits);
  AddInputFlags(logits, in);
  std::string mode = "batch", out_path;
  logits->add_option("--mode", mode, "batch (one pass) or seq (one token at a time)");
  logits->add_option("--out,-o", out_path, "write float32 little-endian [n_tokens][n_vocab] here");
  CLI::App* gen = app.add_subcommand("generate", "generate tokens");
  add_common(gen);
  AddInputFlags(gen, in);
  GenerateOptions go;
  go.max_new_tokens = 16;
  gen->add_option("-n,--max-new-tokens", go.max_new_tokens, "tokens to generate");
  gen->add_option("--temp", go.sampling.temperature, "temperature (0 = greedy)");
  gen->add_option("--top-k", go.sampling.top_k, "top-k (0 = off)");
  gen->add_option("--top-p", go.sampling.top_p, "top-p (1 = off)");
  gen->add_option("--min-p", go.sampling.min_p, "min-p (0 = off)");
  gen->add_option("--repeat-penalty", go.sampling.repetition_penalty, "repetition penalty (1 = off)");
  gen->add_option("--seed", go.sampling.seed, "sampling seed");
  gen->add_flag("--ignore-eos", go.ignore_eos, "keep generating after end-of-text");
  CLI::App* lint = app.add_subcommand("lint", "check the model file for known problems");
  add_common(lint);
  bool lint_json = false, lint_strict = false;
  lint->add_flag("--json", lint_json, "findings as JSON");
  lint->add_flag("--strict", lint_strict, "warnings fail too (exit 1)");
  std::string prefill_mode = "batch";
  gen->add_option("--prefill-mode", prefill_mode, "batch or seq");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "bitnet-run: " << e.what() << " (see --help)\n";
    return 2;
  }
  absl::Status s;
  if (*lint) {
    absl::StatusOr<bool> pass = RunLint(f, lint_json, lint_strict);
    if (pass.ok()) return *pass ? 0 : 1;
    s = pass.status();
  } else if (*info) s = RunInfo(f);
  else if (*tokenize) s = RunTokenize(f, in);
  else if (*detok) s = RunDetokenize(f, detok_ids, detok_special);
  else if (*logits) s = RunLogits(f, in, mode, out_path);
  else if (*gen) {
    auto pm = ParseMode(prefill_mode);
    if (!pm.ok()) s = pm.status();
    else {
      go.prefill_mode = *pm;
      s = RunGenerate(f, in, go);
    }
  }
  if (!s.ok()) {
    std::cerr << "bitnet-run: " << s << "\n";
    return absl::IsInvalidArgument(s) ? 2 : 1;
  }
  return 0;
}

}  // namespace
}  // namespace bitparity

int main(int argc, char** argv) { return bitparity::Main(argc, argv); }
