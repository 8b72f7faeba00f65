// The consistency.* checks of bitparity conformance (conformance.h): the fake detectors.
#include "orchestrator/conformance_checks.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/fp16.h"
#include "base/logits.h"
#include "orchestrator/health.h"

namespace bitparity::conformance {

// ---------------------------------------------------------------------------
// consistency.*
// ---------------------------------------------------------------------------

// A generated token within this much of the row's maximum logit counts as the
// argmax: an engine may break a near-tie the other way after float reordering.
constexpr float kTieLogit = 1e-3f;
// Log-probabilities of the same float32 row, computed in double by two callers.
constexpr double kLogprobTol = 1e-4;

bool GreedyReady(GreedyData& g, Outcome& out) {
  if (!g.status.ok()) {
    out.Fail("Generate " + Brief(g.request), "OK", Describe(g.status));
    return false;
  }
  if (g.response.ids().empty()) {
    out.Fail("Generate " + Brief(g.request), "at least one token (ignore_eos)", "none");
    return false;
  }
  if (!g.eval_status.ok()) {
    out.Fail("EvalLogits " + Brief(g.eval_request), "OK", Describe(g.eval_status));
    return false;
  }
  if (g.rows.size() != static_cast<size_t>(g.response.ids_size())) {
    out.Fail("EvalLogits " + Brief(g.eval_request), absl::StrCat(g.response.ids_size(), " rows"), absl::StrCat(g.rows.size()));
    return false;
  }
  return true;
}

void CheckGreedyMatchesLogits(Probe& p, Outcome& out) {
  GreedyData& g = p.Greedy();
  if (!GreedyReady(g, out)) return;
  const size_t np = p.prompt().size();
  for (int i = 0; i < g.response.ids_size(); ++i) {
    const std::vector<float>& row = g.rows[i];
    const int32_t id = g.response.ids(i);
    const int32_t best = ArgMax(row);
    const std::string req = absl::StrCat("Generate ", Brief(g.request), "; then EvalLogits SEQUENTIAL of prompt + the first ",
                                         i, " generated tokens, row at position ", np - 1 + i);
    if (id < 0 || id >= static_cast<int32_t>(row.size())) {
      return out.Fail(req, absl::StrCat("generated token ", i, " = argmax ", best), absl::StrCat(id, " (outside the vocabulary)"));
    }
    if (id != best && row[id] < row[best] - kTieLogit) {
      return out.Fail(req, absl::StrCat("generated token ", i, " = argmax ", best, " (logit ", row[best], ")"),
                      absl::StrCat(id, " (logit ", row[id], ")"));
    }
  }
}

void CheckLogprobsMatchLogits(Probe& p, Outcome& out) {
  GreedyData& g = p.Greedy();
  if (!GreedyReady(g, out)) return;
  if (g.response.tokens_size() != g.response.ids_size()) {
    return out.Fail("Generate " + Brief(g.request), absl::StrCat(g.response.ids_size(), " tokens"),
                    absl::StrCat(g.response.tokens_size()));
  }
  for (int i = 0; i < g.response.tokens_size(); ++i) {
    const v1::GeneratedToken& t = g.response.tokens(i);
    const std::vector<float>& row = g.rows[i];
    const std::string req = absl::StrCat("Generate ", Brief(g.request), "; token ", i, " against the EvalLogits SEQUENTIAL row");
    if (t.id() < 0 || t.id() >= static_cast<int32_t>(row.size())) return out.Fail(req, "an id in the vocabulary", absl::StrCat(t.id()));
    if (!t.has_logprob()) return out.Fail(req, "a logprob (logprobs = true)", "none");
    const double want = LogSoftmaxAt(row, t.id());
    if (!(std::fabs(t.logprob() - want) <= kLogprobTol)) {
      return out.Fail(req, absl::StrCat("logprob of id ", t.id(), " = log-softmax of the row = ", want), absl::StrCat(t.logprob()));
    }
    const std::vector<TokenLogit> top = TopK(row, t.top_size());
    if (t.top_size() != g.request.top_logprobs()) {
      return out.Fail(req, absl::StrCat(g.request.top_logprobs(), " alternatives"), absl::StrCat(t.top_size()));
    }
    for (int j = 0; j < t.top_size(); ++j) {
      const v1::TokenAlternative& a = t.top(j);
      const bool in_vocab = a.id() >= 0 && a.id() < static_cast<int32_t>(row.size());
      if (!in_vocab || std::fabs(a.logit() - row[a.id()]) > kTieLogit || a.logit() < top[j].logit - kTieLogit ||
          std::fabs(a.logprob() - LogSoftmaxAt(row, a.id())) > kLogprobTol) {
        return out.Fail(req, absl::StrCat("alternative ", j, " = id ", top[j].id, " logit ", top[j].logit, " logprob ",
                                          LogSoftmaxAt(row, top[j].id)),
                        absl::StrCat("id ", a.id(), " logit ", a.logit(), " logprob ", a.logprob()));
      }
    }
  }
}

void CheckTopKMatchesFull(Probe& p, Outcome& out) {
  v1::EvalLogitsResponse* full;
  grpc::Status s = p.FullAll(&full);
  if (!s.ok()) return out.Fail("EvalLogits " + Brief(p.FullAllRequest()), "OK", Describe(s));
  v1::LogitsOutput o;
  o.set_kind(v1::LogitsOutput::TOP_K);
  o.set_top_k(std::min(8, p.n_vocab()));
  const v1::EvalLogitsRequest req = p.PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::ALL, o);
  v1::EvalLogitsResponse r;
  s = p.EvalLogits(req, &r);
  const std::string desc = "EvalLogits " + Brief(req) + " against the FULL rows of the same request";
  if (!s.ok()) return out.Fail(desc, "OK", Describe(s));
  if (r.positions_size() != full->positions_size()) {
    return out.Fail(desc, absl::StrCat(full->positions_size(), " positions"), absl::StrCat(r.positions_size()));
  }
  for (int i = 0; i < r.positions_size(); ++i) {
    const std::vector<float> row = F32Row(full->positions(i).logits());
    const std::vector<TokenLogit> want = TopK(row, o.top_k());
    const v1::PositionLogits& got = r.positions(i);
    std::vector<std::string> w, g;
    for (const auto& t : want) w.push_back(absl::StrCat(t.id, ":", t.logit));
    for (int j = 0; j < got.top_ids_size() && j < got.top_logits_size(); ++j) {
      g.push_back(absl::StrCat(got.top_ids(j), ":", got.top_logits(j)));
    }
    if (w != g || got.top_ids_size() != got.top_logits_size()) {
      return out.Fail(desc, absl::StrCat("position ", i, " top ", absl::StrJoin(w, " ")), absl::StrJoin(g, " "));
    }
    if (got.argmax_id() != full->positions(i).argmax_id() ||
        got.has_next_token_logprob() != full->positions(i).has_next_token_logprob() ||
        std::fabs(got.next_token_logprob() - full->positions(i).next_token_logprob()) > 1e-9) {
      return out.Fail(desc, absl::StrCat("position ", i, " argmax_id and next_token_logprob as FULL: ",
                                         full->positions(i).argmax_id(), ", ", full->positions(i).next_token_logprob()),
                      absl::StrCat(got.argmax_id(), ", ", got.next_token_logprob()));
    }
  }
}

void CheckF16MatchesF32(Probe& p, Outcome& out) {
  v1::EvalLogitsResponse* full;
  grpc::Status s = p.FullAll(&full);
  if (!s.ok()) return out.Fail("EvalLogits " + Brief(p.FullAllRequest()), "OK", Describe(s));
  v1::LogitsOutput o;
  o.set_format(v1::FLOAT_FORMAT_F16);
  const v1::EvalLogitsRequest req = p.PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::ALL, o);
  v1::EvalLogitsResponse r;
  s = p.EvalLogits(req, &r);
  const std::string desc = "EvalLogits " + Brief(req) + " against the F32 rows of the same request";
  if (!s.ok()) return out.Fail(desc, "OK", Describe(s));
  if (r.positions_size() != full->positions_size()) {
    return out.Fail(desc, absl::StrCat(full->positions_size(), " positions"), absl::StrCat(r.positions_size()));
  }
  for (int i = 0; i < r.positions_size(); ++i) {
    const std::vector<float> row = F32Row(full->positions(i).logits());
    const std::string& got = r.positions(i).logits();
    if (got.size() != row.size() * 2) {
      return out.Fail(desc, absl::StrCat("position ", i, ": ", row.size() * 2, " bytes"), absl::StrCat(got.size(), " bytes"));
    }
    for (size_t v = 0; v < row.size(); ++v) {
      uint16_t h;
      std::memcpy(&h, got.data() + 2 * v, 2);
      if (h != Fp32ToFp16(row[v])) {
        return out.Fail(desc, absl::StrCat("position ", i, " id ", v, ": f32 ", row[v], " rounded to nearest even = f16 ",
                                           Fp16ToFp32(Fp32ToFp16(row[v]))),
                        absl::StrCat("f16 ", Fp16ToFp32(h)));
      }
    }
  }
}

void CheckTokenizeRoundTrip(Probe& p, Outcome& out) {
  if (!p.info().model().has_tokenizer()) return out.Skip("the model has no tokenizer (has_tokenizer = false)");
  v1::TokenizeRequest req;
  req.set_text(Probe::kPromptText);
  req.set_add_bos(false);
  req.set_return_pieces(true);
  v1::TokenizeResponse t;
  grpc::Status s = p.Call([&](grpc::ClientContext* c) { return p.stub().Tokenize(c, req, &t); });
  if (!s.ok()) return out.Fail("Tokenize " + Brief(req), "OK", Describe(s));
  const std::vector<int32_t> ids(t.ids().begin(), t.ids().end());
  if (t.pieces_size() != t.ids_size()) return out.Fail("Tokenize " + Brief(req), absl::StrCat(ids.size(), " pieces"), absl::StrCat(t.pieces_size()));
  std::string joined;
  for (const auto& piece : t.pieces()) joined += piece;
  v1::DetokenizeResponse d;
  s = p.Detokenize(ids, &d);
  const std::string dreq = "Detokenize " + IdsText(ids) + " (Tokenize's ids)";
  if (!s.ok()) return out.Fail(dreq, "OK", Describe(s));
  if (d.raw_text() != joined) return out.Fail(dreq, "Tokenize's pieces joined: \"" + joined + "\"", "\"" + d.raw_text() + "\"");
  // Text -> ids -> text gives the text back (SentencePiece models add one leading space).
  const std::string text = Probe::kPromptText;
  if (d.raw_text() != text && d.raw_text() != " " + text) {
    return out.Fail(dreq, "\"" + text + "\" (or with SentencePiece's one leading space)", "\"" + d.raw_text() + "\"");
  }
  // The server's own text tokenizes back to ids that give the same text.
  v1::TokenizeRequest again;
  again.set_text(d.raw_text());
  again.set_add_bos(false);
  v1::TokenizeResponse t2;
  s = p.Call([&](grpc::ClientContext* c) { return p.stub().Tokenize(c, again, &t2); });
  if (!s.ok()) return out.Fail("Tokenize " + Brief(again), "OK", Describe(s));
  v1::DetokenizeResponse d2;
  const std::vector<int32_t> ids2(t2.ids().begin(), t2.ids().end());
  s = p.Detokenize(ids2, &d2);
  if (!s.ok()) return out.Fail("Detokenize " + IdsText(ids2), "OK", Describe(s));
  if (d2.raw_text() != d.raw_text() && d2.raw_text() != " " + d.raw_text()) {
    return out.Fail("Tokenize then Detokenize of \"" + d.raw_text() + "\"", "\"" + d.raw_text() + "\"", "\"" + d2.raw_text() + "\"");
  }
}

void CheckGenerateTextMatchesIds(Probe& p, Outcome& out) {
  if (!p.info().model().has_tokenizer()) return out.Skip("the model has no tokenizer (has_tokenizer = false)");
  GreedyData& g = p.Greedy();
  if (!g.status.ok()) return out.Fail("Generate " + Brief(g.request), "OK", Describe(g.status));
  const std::vector<int32_t> ids(g.response.ids().begin(), g.response.ids().end());
  v1::DetokenizeResponse d;
  grpc::Status s = p.Detokenize(ids, &d);
  const std::string req = "Generate " + Brief(g.request) + "; Detokenize of its ids " + IdsText(ids);
  if (!s.ok()) return out.Fail(req, "OK", Describe(s));
  std::string joined;
  for (const auto& t : g.response.tokens()) joined += t.raw_text();
  // No stop sequence was asked for, so the whole text is the ids' text.
  if (d.raw_text() != g.response.raw_text()) {
    return out.Fail(req, "Generate's raw_text = Detokenize(ids) = \"" + d.raw_text() + "\"", "\"" + g.response.raw_text() + "\"");
  }
  if (joined != g.response.raw_text()) {
    return out.Fail(req, "the tokens' raw_text joined = raw_text \"" + g.response.raw_text() + "\"", "\"" + joined + "\"");
  }
}

void CheckDeterminism(Probe& p, Outcome& out) {
  v1::GenerateRequest req = ValidGenerate(p);
  req.set_max_new_tokens(std::max(1, p.TokensAllowed(p.options().generate_tokens, static_cast<int>(p.prompt().size()))));
  req.set_ignore_eos(true);
  req.set_logprobs(true);
  v1::Sampling* s = req.mutable_sampling();
  s->set_temperature(0.9f);
  s->set_top_k(40);
  s->set_top_p(0.95f);
  s->set_seed(1234);
  std::string first;
  for (int run = 0; run < 2; ++run) {
    v1::GenerateResponse r;
    grpc::Status st = p.Generate(req, &r);
    if (!st.ok()) return out.Fail("Generate " + Brief(req), "OK", Describe(st));
    r.clear_timings();  // the only part that may differ
    if (run == 0) first = r.SerializeAsString();
    else if (r.SerializeAsString() != first) {
      v1::GenerateResponse a;
      a.ParseFromString(first);
      return out.Fail("Generate " + Brief(req) + " twice", "the same response (timings aside): ids " +
                      IdsText(std::vector<int32_t>(a.ids().begin(), a.ids().end())),
                      "ids " + IdsText(std::vector<int32_t>(r.ids().begin(), r.ids().end())));
    }
  }
  const v1::EvalLogitsRequest ereq = p.PromptEval(v1::EVAL_MODE_SEQUENTIAL, v1::Positions::ALL, v1::LogitsOutput());
  for (int run = 0; run < 2; ++run) {
    v1::EvalLogitsResponse r;
    grpc::Status st = p.EvalLogits(ereq, &r);
    if (!st.ok()) return out.Fail("EvalLogits " + Brief(ereq), "OK", Describe(st));
    r.clear_timings();
    if (run == 0) first = r.SerializeAsString();
    else if (r.SerializeAsString() != first) return out.Fail("EvalLogits " + Brief(ereq) + " twice", "the same bytes", "different bytes");
  }
}

void CheckTraceFinalNorm(Probe& p, Outcome& out) {
  const int n_layer = p.info().model().n_layer();
  const int n_embd = p.info().model().n_embd();
  v1::EvalTraceRequest req = ValidTrace(p);
  req.mutable_positions()->set_kind(v1::Positions::ALL);
  req.add_layers(n_layer - 1);
  req.add_layers(n_layer);
  v1::EvalTraceResponse r;
  grpc::Status s = p.Call([&](grpc::ClientContext* c) { return p.stub().EvalTrace(c, req, &r); });
  const std::string desc = "EvalTrace " + Brief(req);
  if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) return out.Skip("EvalTrace is not implemented (UNIMPLEMENTED)");
  if (!s.ok()) return out.Fail(desc, "OK", Describe(s));
  const int n = static_cast<int>(p.prompt().size());
  if (r.n_layer() != n_layer || r.n_embd() != n_embd || r.residuals_size() != 2 * n ||
      !std::equal(r.token_ids().begin(), r.token_ids().end(), p.prompt().begin(), p.prompt().end())) {
    return out.Fail(desc, absl::StrCat("n_layer ", n_layer, ", n_embd ", n_embd, ", ", 2 * n, " residuals, token_ids = input"),
                    absl::StrCat("n_layer ", r.n_layer(), ", n_embd ", r.n_embd(), ", ", r.residuals_size(), " residuals"));
  }
  // The final norm is RMS norm times one gain vector g: h = x / rms(x) * g at every
  // position. Fit g by least squares over the positions, then every h must match.
  const double eps = p.info().model().rms_eps();
  std::vector<std::vector<double>> u(n), h(n);
  for (int i = 0; i < n; ++i) {
    const v1::LayerResidual& a = r.residuals(2 * i);
    const v1::LayerResidual& b = r.residuals(2 * i + 1);
    if (a.position() != i || b.position() != i || a.layer() != n_layer - 1 || b.layer() != n_layer ||
        a.hidden().size() != static_cast<size_t>(n_embd) * 4 || b.hidden().size() != a.hidden().size()) {
      return out.Fail(desc, absl::StrCat("position ", i, ": layers ", n_layer - 1, " and ", n_layer, " of ", n_embd, " floats"),
                      absl::StrCat("position ", a.position(), "/", b.position(), " layers ", a.layer(), "/", b.layer()));
    }
    const std::vector<float> x = F32Row(a.hidden()), y = F32Row(b.hidden());
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double rms = std::sqrt(ss / n_embd + eps);
    for (int d = 0; d < n_embd; ++d) {
      u[i].push_back(x[d] / rms);
      h[i].push_back(y[d]);
    }
  }
  double worst = 0, scale = 1e-6;
  int worst_pos = 0, worst_dim = 0;
  for (int d = 0; d < n_embd; ++d) {
    double num = 0, den = 0;
    for (int i = 0; i < n; ++i) {
      num += h[i][d] * u[i][d];
      den += u[i][d] * u[i][d];
    }
    const double g = den > 0 ? num / den : 0;
    for (int i = 0; i < n; ++i) {
      scale = std::max(scale, std::fabs(h[i][d]));
      const double e = std::fabs(h[i][d] - g * u[i][d]);
      if (e > worst) {
        worst = e;
        worst_pos = i;
        worst_dim = d;
      }
    }
  }
  if (worst > 1e-3 * scale) {
    return out.Fail(desc, "layer n_layer = rms_norm(layer n_layer-1) * one gain vector at every position (error <= 1e-3 of max |h|)",
                    absl::StrCat("error ", worst, " at position ", worst_pos, " dim ", worst_dim, " (max |h| ", scale, ")"));
  }
  out.Note(absl::StrCat("largest error ", worst, " of max |h| ", scale));
}

void CheckPerplexity(Probe& p, Outcome& out) {
  v1::EvalLogitsResponse* full;
  grpc::Status s = p.FullAll(&full);
  if (!s.ok()) return out.Fail("EvalLogits " + Brief(p.FullAllRequest()), "OK", Describe(s));
  v1::LogitsOutput o;
  o.set_kind(v1::LogitsOutput::NONE);
  const v1::EvalLogitsRequest req = p.PromptEval(v1::EVAL_MODE_BATCH, v1::Positions::ALL, o);
  v1::EvalLogitsResponse r;
  s = p.EvalLogits(req, &r);
  const std::string desc = "EvalLogits " + Brief(req) + " against the FULL rows of the same request";
  if (!s.ok()) return out.Fail(desc, "OK", Describe(s));
  const std::vector<int32_t>& ids = p.prompt();
  if (r.positions_size() != static_cast<int>(ids.size())) {
    return out.Fail(desc, absl::StrCat(ids.size(), " positions"), absl::StrCat(r.positions_size()));
  }
  double nll_none = 0, nll_full = 0;
  for (size_t i = 0; i + 1 < ids.size(); ++i) {
    const double want = LogSoftmaxAt(F32Row(full->positions(static_cast<int>(i)).logits()), ids[i + 1]);
    const v1::PositionLogits& got = r.positions(static_cast<int>(i));
    if (!got.has_next_token_logprob() || std::fabs(got.next_token_logprob() - want) > 1e-6) {
      return out.Fail(desc, absl::StrCat("position ", i, " next_token_logprob = log-softmax of the FULL row at id ", ids[i + 1],
                                         " = ", want),
                      got.has_next_token_logprob() ? absl::StrCat(got.next_token_logprob()) : "absent");
    }
    if (!r.positions(static_cast<int>(i)).logits().empty()) return out.Fail(desc, "no logits bytes with NONE", "bytes");
    nll_none -= got.next_token_logprob();
    nll_full -= want;
  }
  const double m = std::max<size_t>(1, ids.size() - 1);
  out.Note(absl::StrCat("perplexity ", std::exp(nll_none / m), " (NONE) = ", std::exp(nll_full / m), " (FULL)"));
}


}  // namespace bitparity::conformance
