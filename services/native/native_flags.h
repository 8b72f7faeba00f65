// File: services/native/native_flags.h
//
// The engine flags of bitnet-native-server (--model, --threads, --max-context,
// --kernels, --inject-fault, --max-batch, ...) and turning them into a loaded
// NativeBackend.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/native/native_backend.h"

namespace CLI {
class App;
}

namespace bitparity {

struct NativeFlags {
  std::string model;
  int threads = 0;
  int max_context = 0;
  std::string kernels = "auto";
  std::string head = "screened";  // exact tokens; the exact head for what it cannot serve
  std::string weight_memory = "hugepages";
  std::string inject_fault;
  std::vector<std::string> override_kv;  // KEY=TYPE:VALUE (base/metadata_override.h)
  int max_batch = 8;       // Generate requests decoding together (batch_scheduler.h)
  int prefill_chunk = 16;  // prompt tokens per batch step
  int step_tokens = BatchOptions{}.step_tokens;  // decode + prompt tokens per batch step (batch_options.h)
  int kv_budget_mb = 0;    // KV caches of running requests; 0 = max_batch full-context caches
};

void AddNativeFlags(CLI::App& app, NativeFlags* flags);

// InvalidArgument for a bad --kernels or --inject-fault; Model::Load's errors.
absl::StatusOr<std::unique_ptr<EngineBackend>> LoadNativeBackend(const NativeFlags& flags,
                                                                 int max_concurrent);

}  // namespace bitparity
