#include "services/native/native_flags.h"

#include "CLI/CLI.hpp"
#include "base/status_macros.h"

namespace bitparity {

void AddNativeFlags(CLI::App& app, NativeFlags* f) {
  app.add_option("--model,-m", f->model, "GGUF model file")->required();
  app.add_option("--threads,-t", f->threads, "Kernel worker threads (0 = online cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--max-context", f->max_context,
                 "Positions per request (prompt + generated); 0 = the model's training context")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--kernels", f->kernels,
                 "Kernel path: auto (best the CPU supports), scalar (reference), avx2, avx512")
      ->capture_default_str();
  app.add_option("--head", f->head,
                 "Output head: screened (default: greedy and top-k requests without logprobs get the exact "
                 "head's tokens from an int8 screen plus exact rescoring, reading about half the bytes; "
                 "everything else, EvalLogits included, runs the exact head; engine/model/screened_head.h), "
                 "exact (bitnet.cpp's F16 arithmetic always) or int8 (faster decode, CHANGES the logits; "
                 "engine/model/int8_head.h)")
      ->capture_default_str();
  app.add_option("--weight-memory", f->weight_memory,
                 "Where the weights live: hugepages (copied at load into 2 MiB pages; faster decode) or "
                 "mmap (the file mapping, shared through the page cache by every process that maps "
                 "it; engine/model/weight_memory.h)")
      ->capture_default_str();
  app.add_option("--inject-fault", f->inject_fault,
                 "Deliberately perturb the forward pass (engine/model/fault_injection.h): "
                 "flip-row:L:T:R | skip-sub-norm:L | rope-offset:L | scale-error:L:T");
  app.add_option("--override-kv", f->override_kv,
                 "KEY=TYPE:VALUE (TYPE int, float, bool, str): run the model with this metadata "
                 "value, as llama.cpp's flag; repeatable (base/metadata_override.h)");
}

absl::StatusOr<std::unique_ptr<EngineBackend>> LoadNativeBackend(const NativeFlags& f,
                                                                 int max_concurrent) {
  NativeBackendOptions o;
  o.model_path = f.model;
  o.threads = f.threads;
  o.max_context = f.max_context;
  o.max_idle_sessions = max_concurrent;
  if (f.kernels != "auto") {
    ASSIGN_OR_RETURN(o.kernels, ParseKernelPath(f.kernels));
  }
  if (!f.inject_fault.empty()) {
    ASSIGN_OR_RETURN(o.fault, FaultInjection::Parse(f.inject_fault));
  }
  ASSIGN_OR_RETURN(o.head, ParseHeadMode(f.head));
  ASSIGN_OR_RETURN(o.weight_memory, ParseWeightMemory(f.weight_memory));
  ASSIGN_OR_RETURN(o.metadata_overrides, ParseMetadataOverrides(f.override_kv));
  ASSIGN_OR_RETURN(std::unique_ptr<NativeBackend> backend, NativeBackend::Load(o));
  return std::unique_ptr<EngineBackend>(std::move(backend));
}

}  // namespace bitparity
