// The forward pass, read top to bottom like llama2.c's forward(): embed; per layer
// attention block and FFN block with residuals; final norm; output head. Each step
// is one call named after its maths (engine/model/ops.h, linear.h, attention.h).
// Fault injection (fault_injection.h) sees each named step through one hook.
#include "engine/model/forward.h"

#include <algorithm>

#include "engine/model/ops.h"

namespace bitparity {
namespace {

// Runs fn(t) for every token t of a batch on the model's threads (per-token work such
// as norms and RoPE is independent across tokens). A thread gets at least
// kMinValuesPerThread values' worth of tokens (`width` values each): below that, waking
// a worker costs more than the work, so small models and short batches run inline.
// 8192 -> 65536 put a batched decode step's per-token work (8 rows of 2560-6912
// values) inline: 2B-4T, 2 threads, 8-row step 47.6 -> 46.4, 48.5 -> 47.4 ms, at
// 400 positions 55.3 -> 54.5 (one process alternating, median of 80-150); 1 row and
// prompt chunks (past 25 tokens of 2560 values) unchanged.
constexpr int64_t kMinValuesPerThread = 65536;

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

// rmsnorm of n rows of `width` (y may alias x): the sums of squares of all rows side
// by side (kernels' sum_squares_rows: each row's chain of double adds is serial), then
// each row's scaling on the threads.
void NormRows(const Model& model, const float* x, int n, int width, const float* w, float eps, float* y) {
  thread_local std::vector<double> sums;
  sums.resize(n);
  const double* sum = sums.data();  // the calling thread's, read by the workers too
  model.kernels().sum_squares_rows(x, width, n, width, sums.data());
  ForEachToken(model, n, width, [&](int t) {
    RmsNormWithSum(x + static_cast<size_t>(t) * width, w, width, eps, sum[t], y + static_cast<size_t>(t) * width);
  });
}

void Scale(float* x, int64_t n, float scale) {
  if (scale != 1.0f) for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

void AddResidual(float* x, const float* delta, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = delta[i] + x[i];
}

}  // namespace

RunState::RunState(const ModelConfig& c, int max_context, int chunk)
    : cache(c, max_context),
      x(static_cast<size_t>(chunk) * c.n_embd),
      xb(static_cast<size_t>(chunk) * c.n_embd),
      q(static_cast<size_t>(chunk) * c.q_dim()),
      k(static_cast<size_t>(chunk) * c.kv_dim()),
      v(static_cast<size_t>(chunk) * c.kv_dim()),
      att(static_cast<size_t>(chunk) * c.q_dim()),
      gate(static_cast<size_t>(chunk) * c.n_ff),
      up(static_cast<size_t>(chunk) * c.n_ff),
      head_in(static_cast<size_t>(kHeadRows) * c.n_embd),
      logits(static_cast<size_t>(kHeadRows) * c.n_vocab) {}

size_t RunState::bytes() const {
  size_t b = cache.bytes();
  for (const FloatScratch* f : {&x, &xb, &q, &k, &v, &att, &gate, &up, &head_in, &logits}) {
    b += f->size() * sizeof(float);
  }
  return b;
}

namespace {

// What every step of one layer needs: the model, the step's segments and rows, and
// the one fault hook.
struct LayerPass {
  const Model& model;
  const ModelConfig& c;
  const LayerWeights& l;
  RunState& s;
  int layer;
  const std::vector<StepSegment>& segments;
  int n;  // rows in the step (all segments)

  // The one fault hook: after each named step, with that step's rows.
  void StepDone(absl::string_view name, float* out, int width, const float* in = nullptr) const {
    if (model.fault().active()) model.fault().Perturb(c, {name, layer, n, width, in, out});
  }

  // y_i = W_i x for the step's rows, with each segment's rounding (see StepSegment).
  void Products(std::initializer_list<LinearOutput> outs, const float* x) const {
    bool invariant = true;
    for (const LinearOutput& o : outs) invariant = invariant && RowInvariantType(o.w->type);
    if (invariant || (segments.size() == 1 && (!segments[0].one_by_one || n == 1))) {
      LinearShared(model, outs, x, n, s.lin);
      return;
    }
    for (const StepSegment& g : segments) {
      const int pieces = g.one_by_one ? g.n : 1, rows = g.one_by_one ? 1 : g.n;
      for (int i = 0; i < pieces; ++i) {
        const int row = g.first_row + i;
        for (const LinearOutput& o : outs) {
          Linear(model, *o.w, x + static_cast<size_t>(row) * o.w->cols, rows,
                 o.y + static_cast<size_t>(row) * o.w->rows, s.lin);
        }
      }
    }
  }
};

// x += attention(rmsnorm(x)): Q/K/V projections, RoPE, grouped-query attention over
// each segment's KV cache (which gains the segment's keys and values), sub-norm,
// output projection.
void AttentionBlock(const LayerPass& p) {
  const ModelConfig& c = p.c;
  const LayerWeights& l = p.l;
  RunState& s = p.s;
  const int n = p.n, E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim();

  // attention rmsnorm
  NormRows(p.model, s.x.data(), n, E, l.attn_norm, c.rms_eps, s.xb.data());

  // q, k, v projections (of the same input: LinearShared quantizes it once)
  p.Products({{&l.wq, s.q.data()}, {&l.wk, s.k.data()}, {&l.wv, s.v.data()}}, s.xb.data());
  p.StepDone("attn_q", s.q.data(), Q);
  p.StepDone("attn_k", s.k.data(), KV);
  p.StepDone("attn_v", s.v.data(), KV);
  Scale(s.q.data(), int64_t{n} * Q, l.wq_scale);  // per-tensor scales: arch "bitnet"
  Scale(s.k.data(), int64_t{n} * KV, l.wk_scale);
  Scale(s.v.data(), int64_t{n} * KV, l.wv_scale);

  // RoPE on q and k, each row at its position (tables from RunLayers), all rows of
  // the step in one pass
  const bool neox = c.rope_style == RopeStyle::kNeox;
  ForEachToken(p.model, n, Q + KV, [&](int t) {
    const float* rope = &s.rope[static_cast<size_t>(t) * c.n_rot];
    p.model.kernels().rope_heads(rope, c.n_rot, neox, &s.k[t * KV], c.n_head_kv, c.head_dim);
    p.model.kernels().rope_heads(rope, c.n_rot, neox, &s.q[t * Q], c.n_head, c.head_dim);
  });
  p.StepDone("rope_q", s.q.data(), Q);

  // grouped-query attention over each segment's KV cache: one call per token of a
  // one-by-one segment, one for a chunk; all of the step's heads in one hand-off
  // (several tokens of one sequence one by one go in order, each storing its own key
  // and value first, as their solo passes do)
  std::vector<AttentionCall> calls;
  for (const StepSegment& g : p.segments) {
    const size_t t0 = static_cast<size_t>(g.first_row);
    if (g.one_by_one && g.n > 1) {
      for (int i = 0; i < g.n; ++i) {
        const size_t t = t0 + i;
        Attention(p.model, *g.cache, p.layer, g.pos0 + i, 1, &s.q[t * Q], &s.k[t * KV], &s.v[t * KV], &s.att[t * Q],
                  s.att_scratch);
      }
      continue;
    }
    calls.push_back({g.cache, g.pos0, g.n, &s.q[t0 * Q], &s.k[t0 * KV], &s.v[t0 * KV], &s.att[t0 * Q]});
  }
  AttentionBatch(p.model, p.layer, calls, s.att_scratch);

  // attention sub-norm (BitNet; into q, free now), output projection, residual
  const float* att_out = s.att.data();
  if (c.has_sub_norms) {
    NormRows(p.model, s.att.data(), n, Q, l.attn_sub_norm, c.rms_eps, s.q.data());
    p.StepDone("attn_sub_norm", s.q.data(), Q, s.att.data());
    att_out = s.q.data();
  }
  p.Products({{&l.wo, s.xb.data()}}, att_out);
  p.StepDone("attn_output", s.xb.data(), E);
  Scale(s.xb.data(), int64_t{n} * E, l.wo_scale);
  AddResidual(s.x.data(), s.xb.data(), int64_t{n} * E);
}

// x += ffn(rmsnorm(x)): gate and up projections, relu(gate)^2 * up (b1.58) or
// silu(gate) * up, sub-norm, down projection.
void FfnBlock(const LayerPass& p) {
  const ModelConfig& c = p.c;
  const LayerWeights& l = p.l;
  RunState& s = p.s;
  const int n = p.n, E = c.n_embd, F = c.n_ff;

  // ffn rmsnorm
  NormRows(p.model, s.x.data(), n, E, l.ffn_norm, c.rms_eps, s.xb.data());

  // gated FFN
  p.Products({{&l.gate, s.gate.data()}, {&l.up, s.up.data()}}, s.xb.data());
  p.StepDone("ffn_gate", s.gate.data(), F);
  p.StepDone("ffn_up", s.up.data(), F);
  Scale(s.gate.data(), int64_t{n} * F, l.gate_scale);
  Scale(s.up.data(), int64_t{n} * F, l.up_scale);
  ForEachToken(p.model, n, F, [&](int t) {
    if (c.arch == Architecture::kBitnetB158) {
      Relu2Gate(&s.gate[t * F], &s.up[t * F], F);
    } else {
      SiluGate(&s.gate[t * F], &s.up[t * F], F);
    }
  });

  // ffn sub-norm (BitNet), down projection, residual
  if (c.has_sub_norms) {
    NormRows(p.model, s.gate.data(), n, F, l.ffn_sub_norm, c.rms_eps, s.gate.data());
  }
  p.Products({{&l.down, s.xb.data()}}, s.gate.data());
  p.StepDone("ffn_down", s.xb.data(), E);
  Scale(s.xb.data(), int64_t{n} * E, l.down_scale);
  AddResidual(s.x.data(), s.xb.data(), int64_t{n} * E);
}

// Hands the traced rows of this chunk's residual stream (`rows`, width E) to the hook.
void TraceRows(const EvalHooks* hooks, int layer, int first_row, int n, const float* rows, int E) {
  if (hooks == nullptr || !hooks->on_residual) return;
  for (int r : hooks->trace_rows) {
    if (r >= first_row && r < first_row + n) {
      hooks->on_residual(layer, r, absl::MakeConstSpan(rows + static_cast<size_t>(r - first_row) * E, E));
    }
  }
}

// Every layer over the step's rows; stops early (Cancelled) when `cancelled` says so.
absl::Status RunLayers(const Model& model, absl::Span<const int32_t> tokens, const std::vector<StepSegment>& segments,
                       RunState& s, const EvalHooks* hooks, int first_row) {
  const ModelConfig& c = model.config();
  const Weights& w = model.weights();
  const int n = static_cast<int>(tokens.size());
  auto cancelled = [&] { return hooks != nullptr && hooks->cancelled && hooks->cancelled(); };

  // token embedding
  for (int t = 0; t < n; ++t) EmbeddingRow(w.token_embd, tokens[t], &s.x[t * c.n_embd]);
  // each row's RoPE cos/sin (by its position), the same for every layer
  s.rope.resize(static_cast<size_t>(n) * c.n_rot);
  for (const StepSegment& g : segments) {
    for (int i = 0; i < g.n; ++i) {
      RopeCache(static_cast<float>(g.pos0 + i), c.n_rot, c.rope_theta, c.rope_freq_scale,
                &s.rope[static_cast<size_t>(g.first_row + i) * c.n_rot]);
    }
  }

  for (int il = 0; il < c.n_layer; ++il) {
    if (cancelled()) return absl::CancelledError("evaluation cancelled");
    const LayerPass pass{model, c, w.layers[il], s, il, segments, n};
    AttentionBlock(pass);
    FfnBlock(pass);
    TraceRows(hooks, il, first_row, n, s.x.data(), c.n_embd);
  }
  if (cancelled()) return absl::CancelledError("evaluation cancelled");
  return absl::OkStatus();
}

}  // namespace

absl::Status ForwardLayers(const Model& model, absl::Span<const int32_t> tokens, int pos0, int first_row,
                           RunState& s, const EvalHooks* hooks) {
  const int n = static_cast<int>(tokens.size());
  // One segment: a single token is a decode pass, several a batch-mode chunk.
  const std::vector<StepSegment> one{{&s.cache, pos0, n, /*one_by_one=*/n == 1, 0}};
  return RunLayers(model, tokens, one, s, hooks, first_row);
}

void ForwardSegments(const Model& model, absl::Span<const int32_t> tokens, std::vector<StepSegment>& segments,
                     RunState& s) {
  int row = 0;
  for (StepSegment& g : segments) {
    g.first_row = row;
    row += g.n;
  }
  (void)RunLayers(model, tokens, segments, s, /*hooks=*/nullptr, 0);  // no hooks: cannot fail
}

absl::Status OutputHead(const Model& model, int first_row, int n, const std::vector<int>& wanted,
                        size_t* next_wanted, RunState& s, const LogitsCallback& on_logits,
                        const EvalHooks* hooks, const HeadScreen* screen) {
  const ModelConfig& c = model.config();
  const Weights& w = model.weights();
  const int E = c.n_embd;
  auto in_chunk = [&](size_t i) { return i < wanted.size() && wanted[i] < first_row + n; };

  // the traced rows after the final norm
  if (hooks != nullptr && hooks->on_residual) {
    for (int r : hooks->trace_rows) {
      if (r >= first_row && r < first_row + n) {
        RmsNorm(&s.x[(r - first_row) * E], w.output_norm, E, c.rms_eps, s.head_in.data());
        hooks->on_residual(c.n_layer, r, absl::MakeConstSpan(s.head_in.data(), E));
      }
    }
  }
  int chunk_outputs = 0;
  for (size_t i = *next_wanted; in_chunk(i); ++i) ++chunk_outputs;

  while (in_chunk(*next_wanted)) {
    // final rmsnorm of up to kHeadRows wanted rows
    int rows[kHeadRows];
    int m = 0;
    for (; m < kHeadRows && in_chunk(*next_wanted); ++m) {
      rows[m] = wanted[(*next_wanted)++];
      RmsNorm(&s.x[(rows[m] - first_row) * E], w.output_norm, E, c.rms_eps, &s.head_in[m * E]);
    }
    // output head. bitnet.cpp multiplies all the chunk's output rows in one product;
    // its row count decides how the F16 head rounds (see LinearF16).
    if (screen != nullptr && model.screened_head() != nullptr && chunk_outputs == 1) {
      const ScreenResult r = model.screened_head()->Logits(model.kernels(), model.pool(), s.head_in.data(),
                                                           screen->request, s.screen, s.logits.data());
      if (screen->result != nullptr) *screen->result = r;
      if (screen->screened != nullptr) *screen->screened = true;
    } else if (model.int8_head() != nullptr) {
      model.int8_head()->Forward(model.kernels(), model.pool(), s.head_in.data(), m, s.logits.data());
    } else {
      Linear(model, w.output, s.head_in.data(), m, s.logits.data(), s.lin, chunk_outputs);
    }
    for (int i = 0; i < m; ++i) {
      absl::Status st = on_logits(rows[i], absl::MakeConstSpan(&s.logits[static_cast<size_t>(i) * c.n_vocab], c.n_vocab));
      if (!st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

}  // namespace bitparity
