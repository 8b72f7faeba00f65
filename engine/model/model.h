// File: engine/model/model.h
//
// A loaded BitNet (or plain LLaMA) model: configuration read from GGUF metadata,
// weights bound in place inside the file mapping, the tokenizer from the same file,
// and the thread pool that runs its kernels. A Model is immutable once loaded and is
// shared by every Session (engine/model/session.h) that evaluates sequences on it.
//
//   ModelOptions opts;  opts.threads = 2;
//   ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load("tiny.gguf", opts));
//   Session session(*model, /*max_context=*/512);
//   RETURN_IF_ERROR(session.Eval(ids, EvalMode::kBatch, LogitRows::All(), on_logits));
//
// Architectures, computed as bitnet.cpp (BitNet 01eb415) computes them; see
// ../shared/design/NUMERICS.md and engine/model/forward.cc:
//   "bitnet-b1.58" / "bitnet-25"  relu(gate)^2 * up FFN, sub-norms, NEOX RoPE, tied F16 head
//   "bitnet"                      the same graph with silu(gate) * up (1bitLLM models)
//   "llama"                       plain float LLaMA (stories260K), NORM RoPE, no sub-norms
//
// Errors from Load: NotFound (file), DataLoss (corrupt file, tensor of wrong shape),
// Unimplemented (architecture or tensor type this engine does not run),
// FailedPrecondition (a required metadata key or tensor is missing).
//
// Thread safety: all const methods may be called from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/kernels/kernels.h"
#include "engine/model/fault_injection.h"
#include "engine/model/int8_head.h"
#include "engine/model/model_config.h"
#include "engine/model/screened_head.h"
#include "engine/model/weight_memory.h"
#include "engine/model/weights.h"
#include "engine/runtime/thread_pool.h"
#include "engine/tokenizer/tokenizer.h"

namespace bitparity {

// How the output head multiplies. kExact reproduces bitnet.cpp (F16, ggml's order);
// kScreened gives the same tokens for greedy and top-k requests while reading about
// half the bytes (engine/model/screened_head.h), and the exact head for everything
// else; kInt8 is a speed mode that CHANGES the logits (engine/model/int8_head.h).
enum class HeadMode { kExact, kScreened, kInt8 };

// "exact" | "screened" | "int8" -> mode; InvalidArgument otherwise.
absl::StatusOr<HeadMode> ParseHeadMode(std::string_view name);
const char* HeadModeName(HeadMode mode);

struct ModelOptions {
  // Worker threads for the kernels; 0 = number of online cores.
  int threads = 0;
  // Kernel path: unset picks the best the CPU supports (engine/kernels); kScalar
  // forces the plain reference kernels (slow, but the twin every SIMD kernel is
  // tested against).
  std::optional<KernelPath> kernels;
  // Deliberate perturbations, for proving that bitparity catches faults. Off by default.
  FaultInjection fault;
  // Output head arithmetic; kInt8 changes the numerics (off by default). kScreened
  // applies only to an F16 head of rows <= 65536 long; on other heads the model
  // loads with the exact head (head_mode() says which one it got).
  HeadMode head = HeadMode::kExact;
  // Where the tensor bytes live (engine/model/weight_memory.h). Same values either way.
  WeightMemory weight_memory = WeightMemory::kHugePages;
  // GGUF metadata overrides (--override-kv), applied to the file before the config
  // and the tokenizer read it (GgufFile::ApplyOverrides has the rules and errors).
  std::vector<MetadataOverride> metadata_overrides;
};

class Model {
 public:
  static absl::StatusOr<std::unique_ptr<Model>> Load(const std::string& path,
                                                     const ModelOptions& options = {});
  ~Model();

  const ModelConfig& config() const { return config_; }
  const Weights& weights() const { return weights_; }
  const GgufFile& file() const { return *file_; }
  // Null when the file carries no vocabulary (the engine then takes token ids only).
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  const Kernels& kernels() const { return *kernels_; }
  ThreadPool& pool() const { return *pool_; }
  const FaultInjection& fault() const { return fault_; }
  HeadMode head_mode() const {
    return int8_head_ ? HeadMode::kInt8 : screened_head_ ? HeadMode::kScreened : HeadMode::kExact;
  }
  // The quantized head when head_mode() is kInt8, else null.
  const Int8Head* int8_head() const { return int8_head_.get(); }
  // The screen when head_mode() is kScreened, else null.
  const ScreenedHead* screened_head() const { return screened_head_.get(); }
  int threads() const;
  // Where the tensor bytes really live (kMmap where kHugePages fell back).
  WeightMemory weight_memory() const { return weight_buffer_.size() > 0 ? WeightMemory::kHugePages : WeightMemory::kMmap; }

  // SHA-256 of the model file (computed once, on first call; ~1 s per GB).
  const std::string& Sha256() const;
  // Tensor counts by type name, e.g. {"f16": 1, "f32": 17, "i2_s": 28}.
  std::vector<std::pair<std::string, int>> TensorTypeCounts() const;

 private:
  Model() = default;

  std::unique_ptr<GgufFile> file_;
  HugePageBuffer weight_buffer_;  // the tensor data when it was copied to huge pages
  ModelConfig config_;
  Weights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  const Kernels* kernels_ = nullptr;
  std::unique_ptr<ThreadPool> pool_;
  FaultInjection fault_;
  std::unique_ptr<Int8Head> int8_head_;
  std::unique_ptr<ScreenedHead> screened_head_;
  mutable std::once_flag sha_once_;
  mutable std::string sha256_;
};

}  // namespace bitparity
