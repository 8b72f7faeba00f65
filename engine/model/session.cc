// Session: one sequence's state and the checks before each evaluation; the
// forward pass itself is forward.cc.
#include "engine/model/session.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace bitparity {

Session::Session(const Model& model, int max_context)
    : model_(model),
      max_context_(max_context > 0 ? max_context : model.config().n_ctx_train),
      state_(std::make_unique<RunState>(model.config(), max_context_, std::min(kMaxChunk, max_context_))) {}

Session::~Session() = default;

void Session::Truncate(int n) { n_past_ = std::max(0, std::min(n, n_past_)); }

size_t Session::AllocatedBytes() const { return state_->bytes(); }

namespace {

// The rows of this Eval call whose logits are wanted, as a sorted list.
absl::StatusOr<std::vector<int>> ResolveRows(const LogitRows& rows, int n) {
  std::vector<int> out;
  switch (rows.kind) {
    case LogitRows::Kind::kNone: break;
    case LogitRows::Kind::kLast: out.push_back(n - 1); break;
    case LogitRows::Kind::kAll:
      for (int i = 0; i < n; ++i) out.push_back(i);
      break;
    case LogitRows::Kind::kList:
      for (size_t i = 0; i < rows.list.size(); ++i) {
        const int r = rows.list[i];
        if (r < 0 || r >= n) {
          return absl::InvalidArgumentError(absl::StrCat("logits row ", r, " is outside the ", n, " input tokens"));
        }
        if (i > 0 && r <= rows.list[i - 1]) {
          return absl::InvalidArgumentError("logits rows must be strictly increasing");
        }
        out.push_back(r);
      }
      break;
  }
  return out;
}

}  // namespace

absl::Status Session::Eval(absl::Span<const int32_t> tokens, EvalMode mode, const LogitRows& rows,
                           const LogitsCallback& on_logits, const EvalHooks* hooks, const HeadScreen* screen) {
  const ModelConfig& c = model_.config();
  const int n = static_cast<int>(tokens.size());
  if (n == 0) return absl::InvalidArgumentError("no tokens to evaluate");
  for (int i = 0; i < n; ++i) {
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", tokens[i], " at index ", i,
                                                     " is outside the vocabulary [0, ", c.n_vocab, ")"));
    }
  }
  if (static_cast<int64_t>(n_past_) + n > max_context_) {
    return absl::OutOfRangeError(absl::StrCat("sequence of ", n_past_ + n, " tokens (", n_past_, " cached + ", n,
                                              " new) exceeds the context of ", max_context_));
  }
  auto wanted = ResolveRows(rows, n);
  if (!wanted.ok()) return wanted.status();

  const int chunk = mode == EvalMode::kSequential ? 1 : std::min(kMaxChunk, max_context_);
  size_t next_wanted = 0;
  for (int start = 0; start < n; start += chunk) {
    const int m = std::min(chunk, n - start);
    absl::Status s = ForwardLayers(model_, tokens.subspan(start, m), n_past_, start, *state_, hooks);
    if (!s.ok()) return s;
    n_past_ += m;  // the tokens are in the cache now
    s = OutputHead(model_, start, m, *wanted, &next_wanted, *state_, on_logits, hooks, screen);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace bitparity
