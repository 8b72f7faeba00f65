// File: engine/model/forward.h
//
// The forward pass of one chunk of a sequence, in two steps (forward.cc reads top
// to bottom like llama2.c's forward()):
//   ForwardLayers  embed the tokens, run every layer (the keys and values go into
//                  the KV cache), leaving the residual stream in state.x;
//   OutputHead     final norm and output head for the rows whose logits are wanted.
// Session (session.h) owns a RunState per sequence and calls these per chunk; it
// checks the input first (ids in the vocabulary, room in the context).
//
// Thread safety: one RunState, one thread; the Model is shared read-only.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/model/attention.h"
#include "engine/model/float_scratch.h"
#include "engine/model/linear.h"
#include "engine/model/model.h"

namespace bitparity {

// Tokens pushed through the network together in batch mode (bitnet.cpp's n_ubatch
// is 512 too). Chunking does not change any value: every step but attention is per
// token, and attention reads the cache.
constexpr int kMaxChunk = 512;
// Logits rows computed together by the output head (bounds its buffer).
constexpr int kHeadRows = 16;

// Receives one logits row (n_vocab floats, valid only during the call).
// `row` is the index of the token within its Eval call.
using LogitsCallback = std::function<absl::Status(int row, absl::Span<const float> logits)>;

// Asks OutputHead for screened logits (engine/model/screened_head.h): only the top
// request.top_k rows of the row are exact, the rest are -inf. Honoured when the model
// has a screened head and the chunk wants exactly one row (bitnet.cpp's single-row
// F16 product, which the screen reproduces); otherwise the exact head runs and
// `result` is left alone. Never set for callers that need the whole row (EvalLogits).
struct HeadScreen {
  ScreenRequest request;
  ScreenResult* result = nullptr;  // if set: how the last screened row went
  bool* screened = nullptr;        // if set: true once a row was screened
};

// Optional observers of an evaluation.
struct EvalHooks {
  // Polled between layers and tokens; returning true stops with Cancelled.
  std::function<bool()> cancelled;
  // The residual stream of token `row` after layer `layer` (0-based), and after the
  // final norm as layer == n_layer. Only rows listed in trace_rows are reported.
  std::function<void(int layer, int row, absl::Span<const float> hidden)> on_residual;
  std::vector<int> trace_rows;
};

// One sequence's KV cache and activation buffers, allocated once. FloatScratch: only
// the rows a chunk really uses become resident.
struct RunState {
  RunState(const ModelConfig& c, int max_context, int chunk);
  size_t bytes() const;  // KV cache and buffers

  KvCache cache;
  FloatScratch x;        // [chunk][n_embd]  residual stream
  FloatScratch xb;       // [chunk][n_embd]  normed input / block output
  FloatScratch q;        // [chunk][q_dim]   queries; then the sub-normed attention output
  FloatScratch k;        // [chunk][kv_dim]
  FloatScratch v;        // [chunk][kv_dim]
  FloatScratch att;      // [chunk][q_dim]   attention output
  FloatScratch gate;     // [chunk][n_ff]
  FloatScratch up;       // [chunk][n_ff]
  FloatScratch head_in;  // [kHeadRows][n_embd] final-normed rows for the head
  FloatScratch logits;   // [kHeadRows][n_vocab]
  std::vector<float> rope;  // [chunk][n_rot] each row's RoPE cos/sin, once per pass for all layers
  LinearScratch lin;
  ScreenScratch screen;  // the screened head's per-token buffers
  std::vector<AttentionScratch> att_scratch;
};

// Runs `tokens` (positions pos0.., rows first_row.. of their Eval call) through every
// layer. Cancelled when hooks->cancelled says so (the cache is then unchanged up to
// pos0). REQUIRES: tokens checked against the vocabulary, pos0 + size within the cache.
absl::Status ForwardLayers(const Model& model, absl::Span<const int32_t> tokens, int pos0, int first_row,
                           RunState& s, const EvalHooks* hooks);

// One sequence's rows in a step that evaluates several sequences at once (continuous
// batching, engine/model/batch_step.h). Its `n` tokens are the step's rows
// first_row .. first_row + n - 1, at positions pos0 .. pos0 + n - 1 of `cache`.
//   one_by_one = true:  each token is computed exactly as a pass of that one token
//                       (sequential mode, and every decode step);
//   one_by_one = false: the n tokens are computed as one batch-mode chunk (n >= 2).
// Products whose rounding does not depend on the row count (I2_S, TQ1_0, TQ2_0,
// Q8_0, BF16: integer or per-row arithmetic) run over all the step's rows at once, so
// the weights are read once per step; the others run per segment or per token. Every
// row's values are thus bit-identical to its sequence's own pass.
struct StepSegment {
  KvCache* cache = nullptr;
  int pos0 = 0;
  int n = 0;
  bool one_by_one = true;
  int first_row = 0;  // set by ForwardSegments
};

// ForwardLayers for several sequences' segments at once: tokens[first_row ..] are each
// segment's; the residual stream of every row is left in s.x (s's own cache unused).
// REQUIRES: as ForwardLayers, per segment; segments of different caches, or of one
// cache in increasing positions; s sized for tokens.size() rows.
void ForwardSegments(const Model& model, absl::Span<const int32_t> tokens, std::vector<StepSegment>& segments,
                     RunState& s);

// The final norm and output head for the wanted rows of the chunk just run (rows
// first_row .. first_row + n - 1), starting at wanted[*next_wanted] and advancing it,
// kHeadRows at a time; each row goes to on_logits. `screen`: see HeadScreen.
absl::Status OutputHead(const Model& model, int first_row, int n, const std::vector<int>& wanted,
                        size_t* next_wanted, RunState& s, const LogitsCallback& on_logits,
                        const EvalHooks* hooks, const HeadScreen* screen = nullptr);

}  // namespace bitparity
