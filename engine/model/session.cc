// The forward pass, read top to bottom like llama2.c's forward(): embed; per layer
// attention block and FFN block with residuals; final norm; output head. Each step
// is one call named after its maths (engine/model/ops.h, linear.h, attention.h).
#include "engine/model/session.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/model/attention.h"
#include "engine/model/float_scratch.h"
#include "engine/model/linear.h"
#include "engine/model/ops.h"
#include "engine/kernels/kernels.h"

namespace bitparity {
namespace {

// Tokens pushed through the network together in batch mode (bitnet.cpp's n_ubatch
// is 512 too). Chunking does not change any value: every step but attention is per
// token, and attention reads the cache.
constexpr int kMaxChunk = 512;
// Logits rows computed together by the output head (bounds its buffer).
constexpr int kHeadRows = 16;

}  // namespace

struct Session::State {
  State(const ModelConfig& c, int max_context, int chunk)
      : cache(c, max_context),
        x(static_cast<size_t>(chunk) * c.n_embd),
        xb(static_cast<size_t>(chunk) * c.n_embd),
        q(static_cast<size_t>(chunk) * c.q_dim()),
        k(static_cast<size_t>(chunk) * c.kv_dim()),
        v(static_cast<size_t>(chunk) * c.kv_dim()),
        att(static_cast<size_t>(chunk) * c.q_dim()),
        gate(static_cast<size_t>(chunk) * c.n_ff),
        up(static_cast<size_t>(chunk) * c.n_ff),
        rope(c.n_rot),
        head_in(static_cast<size_t>(kHeadRows) * c.n_embd),
        logits(static_cast<size_t>(kHeadRows) * c.n_vocab) {}

  KvCache cache;
  // Activations: FloatScratch, so only the rows a chunk really uses become resident.
  FloatScratch x;     // [chunk][n_embd]  residual stream
  FloatScratch xb;    // [chunk][n_embd]  normed input / block output
  FloatScratch q;     // [chunk][q_dim]
  FloatScratch k;     // [chunk][kv_dim]
  FloatScratch v;     // [chunk][kv_dim]
  FloatScratch att;   // [chunk][q_dim]   attention output
  FloatScratch gate;  // [chunk][n_ff]
  FloatScratch up;    // [chunk][n_ff]
  std::vector<float> rope;  // [n_rot] cos/sin of one position
  FloatScratch head_in;  // [kHeadRows][n_embd] final-normed rows for the head
  FloatScratch logits;   // [kHeadRows][n_vocab]
  LinearScratch lin;
  std::vector<AttentionScratch> att_scratch;
};

Session::Session(const Model& model, int max_context)
    : model_(model),
      max_context_(max_context > 0 ? max_context : model.config().n_ctx_train),
      state_(std::make_unique<State>(model.config(), max_context_, std::min(kMaxChunk, max_context_))) {}

Session::~Session() = default;

void Session::Truncate(int n) { n_past_ = std::max(0, std::min(n, n_past_)); }

size_t Session::AllocatedBytes() const {
  const State& s = *state_;
  size_t b = s.cache.bytes();
  for (const FloatScratch* v : {&s.x, &s.xb, &s.q, &s.k, &s.v, &s.att, &s.gate, &s.up, &s.head_in, &s.logits}) {
    b += v->size() * sizeof(float);
  }
  return b;
}

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
                           const LogitsCallback& on_logits, const EvalHooks* hooks) {
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
    absl::Status s = ForwardChunk(tokens.subspan(start, m), start, *wanted, next_wanted, on_logits, hooks);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

namespace {
// Runs fn(t) for every token t of a batch on the model's threads (per-token work such
// as norms and RoPE is independent across tokens). A thread gets at least
// kMinValuesPerThread values' worth of tokens (`width` values each): below that, waking
// a worker costs more than the work, so small models and short batches run inline.
constexpr int64_t kMinValuesPerThread = 32768;

template <typename Fn>
void ForEachToken(const Model& model, int n, int64_t width, const Fn& fn) {
  const int64_t min_tokens = std::max<int64_t>(1, kMinValuesPerThread / std::max<int64_t>(1, width));
  if (n <= min_tokens) {
    for (int t = 0; t < n; ++t) fn(t);
    return;
  }
  model.pool().ParallelFor(n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) fn(static_cast<int>(t));
  }, min_tokens);
}
}  // namespace

absl::Status Session::ForwardChunk(absl::Span<const int32_t> tokens, int first_row, const std::vector<int>& wanted,
                                   size_t& next_wanted, const LogitsCallback& on_logits, const EvalHooks* hooks) {
  const Model& model = model_;
  const ModelConfig& c = model.config();
  const Weights& w = model.weights();
  const FaultInjection& fault = model.fault();
  State& s = *state_;
  const int n = static_cast<int>(tokens.size());
  const int pos0 = n_past_;
  const int E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff;
  auto cancelled = [&] { return hooks != nullptr && hooks->cancelled && hooks->cancelled(); };
  auto trace = [&](int layer, const float* rows_base, int stride) {
    if (hooks == nullptr || !hooks->on_residual) return;
    for (int r : hooks->trace_rows) {
      if (r >= first_row && r < first_row + n) {
        hooks->on_residual(layer, r, absl::MakeConstSpan(rows_base + static_cast<size_t>(r - first_row) * stride, E));
      }
    }
  };

  // token embedding
  for (int t = 0; t < n; ++t) EmbeddingRow(w.token_embd, tokens[t], s.x.data() + static_cast<size_t>(t) * E);

  for (int il = 0; il < c.n_layer; ++il) {
    if (cancelled()) return absl::CancelledError("evaluation cancelled");
    const LayerWeights& l = w.layers[il];

    // attention rmsnorm
    ForEachToken(model, n, E, [&](int t) { RmsNorm(&s.x[t * E], l.attn_norm, E, c.rms_eps, &s.xb[t * E]); });

    // q, k, v projections (of the same input: LinearShared quantizes it once)
    LinearShared(model,
                 {{&l.wq, s.q.data(), {il, "attn_q"}}, {&l.wk, s.k.data(), {il, "attn_k"}},
                  {&l.wv, s.v.data(), {il, "attn_v"}}},
                 s.xb.data(), n, s.lin);
    if (c.arch == Architecture::kBitnet) {
      for (int i = 0; i < n * Q; ++i) s.q[i] *= l.wq_scale;
      for (int i = 0; i < n * KV; ++i) s.k[i] *= l.wk_scale;
      for (int i = 0; i < n * KV; ++i) s.v[i] *= l.wv_scale;
    }

    // RoPE on q and k, per token position. The rope-offset fault rotates the queries
    // one position too far (rotating both would cancel: attention sees only the
    // distance between positions).
    const bool rope_fault = fault.kind == FaultInjection::Kind::kRopeOffset && fault.layer == il;
    ForEachToken(model, n, Q + KV, [&](int t) {
      thread_local std::vector<float> rope;
      rope.resize(s.rope.size());
      RopeCache(static_cast<float>(pos0 + t), c.n_rot, c.rope_theta, c.rope_freq_scale, rope.data());
      for (int h = 0; h < c.n_head_kv; ++h) {
        RopeApply(c.rope_style, rope.data(), c.n_rot, &s.k[t * KV + h * c.head_dim]);
      }
      if (rope_fault) {
        RopeCache(static_cast<float>(pos0 + t + 1), c.n_rot, c.rope_theta, c.rope_freq_scale, rope.data());
      }
      for (int h = 0; h < c.n_head; ++h) RopeApply(c.rope_style, rope.data(), c.n_rot, &s.q[t * Q + h * c.head_dim]);
    });

    // grouped-query attention over the KV cache
    Attention(model, s.cache, il, pos0, n, s.q.data(), s.k.data(), s.v.data(), s.att.data(), s.att_scratch);

    // attention sub-norm (BitNet), output projection, residual
    if (c.has_sub_norms) {
      const bool skip = fault.kind == FaultInjection::Kind::kSkipSubNorm && fault.layer == il;
      ForEachToken(model, n, Q, [&](int t) {
        if (skip) {
          for (int i = 0; i < Q; ++i) s.att[t * Q + i] *= l.attn_sub_norm[i];
        } else {
          RmsNorm(&s.att[t * Q], l.attn_sub_norm, Q, c.rms_eps, &s.att[t * Q]);
        }
      });
    }
    Linear(model, l.wo, s.att.data(), n, s.xb.data(), s.lin, {il, "attn_output"});
    if (l.wo_scale != 1.0f) for (int i = 0; i < n * E; ++i) s.xb[i] *= l.wo_scale;
    for (int i = 0; i < n * E; ++i) s.x[i] = s.xb[i] + s.x[i];

    // ffn rmsnorm
    ForEachToken(model, n, E, [&](int t) { RmsNorm(&s.x[t * E], l.ffn_norm, E, c.rms_eps, &s.xb[t * E]); });

    // gated FFN: relu(gate)^2 * up (b1.58) or silu(gate) * up
    LinearShared(model, {{&l.gate, s.gate.data(), {il, "ffn_gate"}}, {&l.up, s.up.data(), {il, "ffn_up"}}},
                 s.xb.data(), n, s.lin);
    if (l.gate_scale != 1.0f) for (int i = 0; i < n * F; ++i) s.gate[i] *= l.gate_scale;
    if (l.up_scale != 1.0f) for (int i = 0; i < n * F; ++i) s.up[i] *= l.up_scale;
    ForEachToken(model, n, F, [&](int t) {
      if (c.arch == Architecture::kBitnetB158) {
        Relu2Gate(&s.gate[t * F], &s.up[t * F], F);
      } else {
        SiluGate(&s.gate[t * F], &s.up[t * F], F);
      }
    });

    // ffn sub-norm (BitNet), down projection, residual
    if (c.has_sub_norms) {
      ForEachToken(model, n, F, [&](int t) { RmsNorm(&s.gate[t * F], l.ffn_sub_norm, F, c.rms_eps, &s.gate[t * F]); });
    }
    Linear(model, l.down, s.gate.data(), n, s.xb.data(), s.lin, {il, "ffn_down"});
    if (l.down_scale != 1.0f) for (int i = 0; i < n * E; ++i) s.xb[i] *= l.down_scale;
    for (int i = 0; i < n * E; ++i) s.x[i] = s.xb[i] + s.x[i];

    trace(il, s.x.data(), E);
  }
  if (cancelled()) return absl::CancelledError("evaluation cancelled");
  // The tokens are in the cache now.
  n_past_ = pos0 + n;

  // final rmsnorm and output head, for the wanted rows of this chunk, kHeadRows at a time
  if (hooks != nullptr && hooks->on_residual) {
    for (int r : hooks->trace_rows) {
      if (r >= first_row && r < first_row + n) {
        RmsNorm(&s.x[(r - first_row) * E], w.output_norm, E, c.rms_eps, s.head_in.data());
        hooks->on_residual(c.n_layer, r, absl::MakeConstSpan(s.head_in.data(), E));
      }
    }
  }
  int chunk_outputs = 0;
  for (size_t i = next_wanted; i < wanted.size() && wanted[i] < first_row + n; ++i) ++chunk_outputs;
  while (next_wanted < wanted.size() && wanted[next_wanted] < first_row + n) {
    int rows[kHeadRows];
    int m = 0;
    while (m < kHeadRows && next_wanted < wanted.size() && wanted[next_wanted] < first_row + n) {
      rows[m] = wanted[next_wanted++];
      RmsNorm(&s.x[(rows[m] - first_row) * E], w.output_norm, E, c.rms_eps, &s.head_in[m * E]);
      ++m;
    }
    // bitnet.cpp multiplies all the chunk's output rows in one product; its row count
    // decides how the F16 head rounds (see LinearF16).
    if (model.int8_head() != nullptr) {
      model.int8_head()->Forward(model.kernels(), model.pool(), s.head_in.data(), m, s.logits.data());
    } else {
      Linear(model, w.output, s.head_in.data(), m, s.logits.data(), s.lin, {-1, "output"}, chunk_outputs);
    }
    for (int i = 0; i < m; ++i) {
      absl::Status st = on_logits(rows[i], absl::MakeConstSpan(&s.logits[static_cast<size_t>(i) * c.n_vocab], c.n_vocab));
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

}  // namespace bitparity
