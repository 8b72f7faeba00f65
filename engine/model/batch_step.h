// File: engine/model/batch_step.h
//
// One forward step over several sequences at once (continuous batching): the new
// tokens of every sequence that advances this step go through the layers together
// (ForwardSegments, forward.h), and the rows that want logits go through the output
// head together, so the weights are read from memory once per step for all of them.
//
// Batch invariance: every sequence's logits are bit-identical to what it gets alone
// (Session::Eval in the same mode). The layers' products either do not round
// differently with the row count or run per segment (forward.h, StepSegment), and the
// head treats each wanted row as the single output row of its own pass: bitnet.cpp's
// single-row F16 product (Linear with ggml_rows = 1), the screened head (which
// reproduces it for the top k), or the int8 head (per-row integer sums).
//
//   BatchStep step(model, /*max_rows=*/136);
//   std::vector<StepSequence> seqs = {{&kv_a, 17, tokens_a, true, true}, ...};
//   step.Run(seqs, [&](int i, absl::Span<const float> logits, const ScreenResult* screened) { ... });
//
// Thread safety: one BatchStep, one thread; the Model is shared read-only.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/types/span.h"
#include "engine/model/attention.h"
#include "engine/model/forward.h"
#include "engine/model/model.h"

namespace bitparity {

// One sequence's part of a step.
struct StepSequence {
  KvCache* cache = nullptr;
  int pos0 = 0;                       // position of tokens[0]; the cache holds 0 .. pos0-1
  absl::Span<const int32_t> tokens;   // at least one, ids inside the vocabulary
  bool one_by_one = true;             // each token as its own pass (decode, sequential prefill)
  bool want_logits = false;           // the logits row of the last token
  const ScreenRequest* screen = nullptr;  // set: only the top k matter (screened head, if loaded)
};

// Receives sequence i's logits row (valid during the call); `screened` is the screen's
// account when the screened head served the row, else null.
using StepLogitsFn = std::function<void(int i, absl::Span<const float> logits, const ScreenResult* screened)>;

// The next chunk of a batch-mode prompt evaluated through steps: `done` of `length`
// tokens are in the cache; `chunk` (>= 2) is the step's budget, `solo_chunk` what
// Session::Eval takes at once (min(kMaxChunk, its max_context)). The values equal
// Session::Eval's however the prompt is cut, except that a chunk of one token takes
// the single-row arithmetic: Session::Eval has one only as the lone last token
// (length % solo_chunk == 1), so that one stays alone and a remainder of one
// anywhere else joins the chunk before it (which may then be chunk + 1 long).
// REQUIRES: PromptCutsAnywhere(model), else pass chunk = solo_chunk (which gives
// Session::Eval's own chunks).
int BatchPrefillChunk(int length, int done, int chunk, int solo_chunk);

// True when a batch-mode prompt's values do not depend on where it is cut (beyond
// the lone-token rule above): every layer product is row-invariant or F16 (whose
// multi-row path is per row). F32 layers go through OpenBLAS, whose sgemm rounds
// differently for different row counts.
bool PromptCutsAnywhere(const Model& model);

class BatchStep {
 public:
  // max_rows: the most tokens one step may hold (all sequences together).
  BatchStep(const Model& model, int max_rows);

  int max_rows() const { return max_rows_; }
  // Runs the step. REQUIRES: the tokens fit max_rows; each pos0 + size fits its cache.
  void Run(absl::Span<const StepSequence> seqs, const StepLogitsFn& on_logits);
  // Bytes of the activation buffers (resident only as far as steps use them).
  size_t bytes() const { return state_.bytes(); }

 private:
  const Model& model_;
  int max_rows_;
  RunState state_;  // activation buffers for max_rows rows; its own cache is empty
  std::vector<ScreenScratch> screen_;  // one per row of a head group
  std::vector<int32_t> tokens_;
  std::vector<StepSegment> segments_;
};

}  // namespace bitparity
