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
  app.add_option("--max-batch", f->max_batch,
                 "Generate requests decoding together in one forward pass (continuous batching; every "
                 "request's tokens and logits equal being served alone: services/native/batch_scheduler.h). "
                 "0 = no batch loop: each request runs on its own")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  app.add_option("--prefill-chunk", f->prefill_chunk,
                 "Prompt tokens evaluated per batch step beside the running requests' decode tokens: larger "
                 "gives new requests their first token sooner, smaller keeps running streams' pace")
      ->capture_default_str()
      ->check(CLI::Range(2, 4096));
  app.add_option("--step-tokens", f->step_tokens,
                 "Tokens one batch step evaluates, decode and prompt together: a new prompt's chunk gets "
                 "what the running requests' decode tokens leave (at least 2, at most --prefill-chunk), "
                 "which bounds the step time running streams wait for. -1 = --max-batch + 4; 0 = no "
                 "limit (every chunk is --prefill-chunk). Models whose prompts cannot be cut anywhere "
                 "ignore it")
      ->capture_default_str()
      ->check(CLI::Range(-1, 4096));
  app.add_option("--kv-budget-mb", f->kv_budget_mb,
                 "KV cache memory for the requests in the batch (each needs prompt + max_new_tokens "
                 "positions); a request larger than the whole budget gets RESOURCE_EXHAUSTED, others wait "
                 "for room. 0 = max-batch caches of the full context")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 24));
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
  o.batch.max_batch = f.max_batch;
  o.batch.prefill_chunk = f.prefill_chunk;
  o.batch.step_tokens = f.step_tokens;
  o.batch.kv_budget_bytes = int64_t{f.kv_budget_mb} << 20;
  ASSIGN_OR_RETURN(std::unique_ptr<NativeBackend> backend, NativeBackend::Load(o));
  return std::unique_ptr<EngineBackend>(std::move(backend));
}

}  // namespace bitparity
