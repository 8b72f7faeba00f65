#include "engine/model/batch_step.h"

#include <algorithm>

#include "engine/model/ops.h"

namespace bitparity {

int BatchPrefillChunk(int length, int done, int chunk, int solo_chunk) {
  const int end = length % solo_chunk == 1 ? length - 1 : length;
  if (done >= end) return length - done;
  int n = std::min(chunk, end - done);
  if (end - done - n == 1) ++n;
  return n;
}

bool PromptCutsAnywhere(const Model& model) {
  for (const LayerWeights& l : model.weights().layers) {
    for (const WeightMatrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) {
      if (!RowInvariantType(w->type) && w->type != GgmlType::kF16) return false;
    }
  }
  return true;
}

BatchStep::BatchStep(const Model& model, int max_rows)
    : model_(model), max_rows_(max_rows), state_(model.config(), /*max_context=*/0, max_rows), screen_(kHeadRows) {}

void BatchStep::Run(absl::Span<const StepSequence> seqs, const StepLogitsFn& on_logits) {
  const ModelConfig& c = model_.config();
  const Weights& w = model_.weights();
  const int E = c.n_embd;

  // The layers, for every sequence's tokens at once.
  tokens_.clear();
  segments_.clear();
  for (const StepSequence& q : seqs) {
    tokens_.insert(tokens_.end(), q.tokens.begin(), q.tokens.end());
    segments_.push_back({q.cache, q.pos0, static_cast<int>(q.tokens.size()), q.one_by_one || q.tokens.size() == 1});
  }
  ForwardSegments(model_, tokens_, segments_, state_);

  // The head, kHeadRows wanted rows at a time: rows for the exact (or int8) head
  // first in head_in, screened rows after them.
  std::vector<int> wanted;
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i].want_logits) wanted.push_back(static_cast<int>(i));
  }
  const bool screening = model_.screened_head() != nullptr;
  for (size_t g0 = 0; g0 < wanted.size(); g0 += kHeadRows) {
    const size_t g1 = std::min(wanted.size(), g0 + kHeadRows);
    std::vector<int> exact, screened;  // sequence indices
    for (size_t j = g0; j < g1; ++j) {
      (screening && seqs[wanted[j]].screen != nullptr ? screened : exact).push_back(wanted[j]);
    }
    std::vector<int> order = exact;
    order.insert(order.end(), screened.begin(), screened.end());
    for (size_t m = 0; m < order.size(); ++m) {  // final rmsnorm of each sequence's last row
      const StepSegment& g = segments_[order[m]];
      RmsNorm(&state_.x[static_cast<size_t>(g.first_row + g.n - 1) * E], w.output_norm, E, c.rms_eps,
              &state_.head_in[m * E]);
    }
    const int me = static_cast<int>(exact.size()), ms = static_cast<int>(screened.size());
    float* logits = state_.logits.data();
    if (me > 0) {
      if (model_.int8_head() != nullptr) {
        model_.int8_head()->Forward(model_.kernels(), model_.pool(), state_.head_in.data(), me, logits);
      } else if (w.output.type == GgmlType::kF16 || RowInvariantType(w.output.type)) {
        // each row rounded as the single output row of its own pass
        Linear(model_, w.output, state_.head_in.data(), me, logits, state_.lin, /*ggml_rows=*/1);
      } else {
        for (int m = 0; m < me; ++m) {
          Linear(model_, w.output, &state_.head_in[static_cast<size_t>(m) * E], 1,
                 logits + static_cast<size_t>(m) * c.n_vocab, state_.lin);
        }
      }
    }
    std::vector<ScreenResult> results(ms);
    if (ms > 0) {
      std::vector<const float*> x(ms);
      std::vector<const ScreenRequest*> requests(ms);
      std::vector<ScreenScratch*> scratch(ms);
      std::vector<float*> out(ms);
      for (int a = 0; a < ms; ++a) {
        x[a] = &state_.head_in[static_cast<size_t>(me + a) * E];
        requests[a] = seqs[screened[a]].screen;
        scratch[a] = &screen_[a];
        out[a] = logits + static_cast<size_t>(me + a) * c.n_vocab;
      }
      model_.screened_head()->LogitsBatch(model_.kernels(), model_.pool(), ms, x.data(), requests.data(),
                                          scratch.data(), out.data(), results.data());
    }
    // Hand the rows back in sequence order.
    for (size_t j = g0; j < g1; ++j) {
      const int i = wanted[j];
      const size_t m = static_cast<size_t>(std::find(order.begin(), order.end(), i) - order.begin());
      const ScreenResult* r = m >= exact.size() ? &results[m - exact.size()] : nullptr;
      on_logits(i, absl::MakeConstSpan(logits + m * c.n_vocab, c.n_vocab), r);
    }
  }
}

}  // namespace bitparity
