// File: services/native/batch_scheduler.h
//
// Continuous batching for bitnet-native-server's Generate: one loop thread runs every
// admitted request's next token in ONE forward step (engine/model/batch_step.h), so
// the weights are read from memory once per step for all of them. Each request keeps
// its own KV cache and Generation (engine/model/generation.h), and its tokens, logits
// and text are bit-identical to being served alone (BatchStep's batch invariance).
//
// Life of a request:
//   Generate() checks it (a KV cache larger than the whole budget: ResourceExhausted
//   with the numbers) and queues it; the loop admits queued requests first come first
//   served while fewer than max_batch run and their KV caches fit the budget. Each
//   step holds one decode token of every running request whose prompt is done, and
//   at most one prompt chunk of the oldest request still prefilling: prefill_chunk
//   tokens, fewer when the decode tokens fill step_tokens (at least kMinStepPrefill),
//   so running streams keep their pace while new prompts come in. A
//   request leaves at the step where it finishes, is cancelled or passes its
//   deadline; the others are not disturbed.
//
// Prompt chunks give the same values as the request's own prefill: sequential mode
// evaluates every token as its own pass anyway; batch mode splits the prompt at
// other places than Session::Eval does (every kMaxChunk tokens), which changes no
// value as long as a lone token is evaluated alone exactly where Session::Eval would
// (a one-token chunk takes the single-row arithmetic): see BatchPrefillChunk.
//
// Tokens are handed to the caller's on_token on the caller's own thread (Generate
// blocks until its request ends), so a slow client never stalls the loop.
//
// Thread safety: Generate may be called from any number of threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/model/batch_step.h"
#include "engine/model/generate.h"
#include "engine/model/model.h"
#include "services/common/engine_backend.h"
#include "services/native/batch_options.h"

namespace bitparity {

class BatchScheduler {
 public:
  BatchScheduler(std::shared_ptr<const Model> model, const BatchOptions& options);
  // Stops the loop; requests still queued or running end with Unavailable.
  ~BatchScheduler();
  BatchScheduler(const BatchScheduler&) = delete;
  BatchScheduler& operator=(const BatchScheduler&) = delete;

  // As bitparity::Generate (generate.h) on a Session of options.max_context
  // positions, with the same results; blocks until the request ends.
  absl::StatusOr<GenerateResult> Generate(absl::Span<const int32_t> prompt, const GenerateOptions& options,
                                          const TokenCallback& on_token, const std::function<bool()>& cancelled);

  // Called on the loop thread after every step. Set before the first Generate.
  BatchStepObserver on_step;

  const BatchOptions& options() const { return options_; }
  // KV cache bytes of one request of `positions` positions.
  int64_t KvBytes(int positions) const;
  // KV cache bytes held by running requests now.
  int64_t kv_bytes_in_use() const;


 private:
  struct Request;
  void Loop();
  void Step(std::vector<std::shared_ptr<Request>>& running, BatchStepReport& report);
  // The prompt tokens a step with `decode_rows` decode tokens takes (step_tokens).
  int PrefillChunk(int decode_rows) const;
  void End(Request& r, absl::Status error) ABSL_LOCKS_EXCLUDED(mu_);

  std::shared_ptr<const Model> model_;
  const BatchOptions options_;
  const bool cuts_anywhere_;  // PromptCutsAnywhere: else prompts go in Session::Eval's chunks
  BatchStep step_;

  mutable std::mutex mu_;
  std::condition_variable wake_;  // the loop: work arrived, or stop
  std::deque<std::shared_ptr<Request>> queue_ ABSL_GUARDED_BY(mu_);
  int64_t kv_in_use_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread loop_;
};

}  // namespace bitparity
