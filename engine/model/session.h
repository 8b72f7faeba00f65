// File: engine/model/session.h
//
// One sequence being evaluated on a Model: its KV cache (F16, as bitnet.cpp keeps
// it) and its scratch buffers (RunState), allocated once at construction. Eval()
// checks its input, then appends tokens at positions n_past() .. n_past()+n-1
// through the forward pass (forward.h) and hands back the logits rows asked for.
//
// Two evaluation modes, because bitnet.cpp's own two differ (ARCHITECTURE.md,
// "Comparing like with like"):
//   kBatch       all new tokens go through the network together (matrix products)
//   kSequential  one token at a time, exactly as a decode step
//
//   Session s(model, 512);
//   RETURN_IF_ERROR(s.Eval(ids, EvalMode::kBatch, LogitRows::All(),
//       [&](int row, absl::Span<const float> logits) { ...; return absl::OkStatus(); }));
//
// Errors: InvalidArgument (empty input, token id outside the vocabulary, bad row
// index), OutOfRange (the sequence would pass max_context), Cancelled (the hook
// said stop; the cache then holds only the tokens fully evaluated before it).
//
// Thread safety: a Session is used by one thread at a time. Many Sessions may
// evaluate on the same Model concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/model/forward.h"
#include "engine/model/model.h"

namespace bitparity {

enum class EvalMode { kBatch, kSequential };

// Which of the new tokens' logits rows Eval() produces (indices into the tokens
// passed to this Eval call, counted from 0).
struct LogitRows {
  enum class Kind { kNone, kLast, kAll, kList } kind = Kind::kLast;
  std::vector<int> list;  // kList: strictly increasing indices
  static LogitRows None() { return {Kind::kNone, {}}; }
  static LogitRows Last() { return {Kind::kLast, {}}; }
  static LogitRows All() { return {Kind::kAll, {}}; }
  static LogitRows List(std::vector<int> rows) { return {Kind::kList, std::move(rows)}; }
};

class Session {
 public:
  // max_context: positions this session can hold (<= 0: the model's training context).
  Session(const Model& model, int max_context = 0);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // `screen` (forward.h HeadScreen): only the top k of the logits row matter to the
  // caller, who accepts -inf for the other rows.
  absl::Status Eval(absl::Span<const int32_t> tokens, EvalMode mode, const LogitRows& rows,
                    const LogitsCallback& on_logits, const EvalHooks* hooks = nullptr,
                    const HeadScreen* screen = nullptr);

  int n_past() const { return n_past_; }
  int max_context() const { return max_context_; }
  // Forgets the sequence (keeps the allocations).
  void Reset() { n_past_ = 0; }
  // Drops positions >= n (n <= n_past()).
  void Truncate(int n);

  const Model& model() const { return model_; }
  // Bytes held by the KV cache and scratch buffers.
  size_t AllocatedBytes() const;

 private:
  const Model& model_;
  int max_context_;
  int n_past_ = 0;
  std::unique_ptr<RunState> state_;
};

}  // namespace bitparity
