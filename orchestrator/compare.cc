#include "orchestrator/compare.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <future>
#include <map>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "orchestrator/verdict.h"

namespace bitparity {
namespace v1 = ::bitnet::v1;

namespace {

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

v1::EvalMode OtherMode(v1::EvalMode m) {
  return m == v1::EVAL_MODE_SEQUENTIAL ? v1::EVAL_MODE_BATCH : v1::EVAL_MODE_SEQUENTIAL;
}

void SetIds(v1::Input* in, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) in->mutable_ids()->add_ids(id);
}

std::vector<float> Floats(const std::string& bytes) {
  // The contract's payloads are little-endian float32, as is every host we build for.
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

void Push(DriftSeries* s, int32_t pos, int32_t tok, const RowDiff& d, double dp) {
  s->position.push_back(pos);
  s->token.push_back(tok);
  s->max_abs.push_back(d.max_abs);
  s->mean_abs.push_back(d.mean_abs);
  s->rms.push_back(d.rms);
  s->cosine.push_back(d.cosine);
  s->kl.push_back(d.kl);
  s->topk_overlap.push_back(d.topk_overlap);
  s->top1_agree.push_back(d.top1_agree ? 1 : 0);
  s->dp_next.push_back(dp);
}

// One side's EvalLogitsStream, drained into a temporary file (rows of n_vocab float32)
// so that memory stays bounded by one row however long the prompt is.
struct LogitsSpool {
  std::unique_ptr<FILE, int (*)(FILE*)> file{nullptr, &std::fclose};
  std::vector<double> next_logprob;  // per position; NaN when absent
  std::vector<int32_t> token_ids;    // the sequence the server evaluated
  v1::EvalTimings timings;
  int rows = 0;
  int n_vocab = 0;

  absl::Status ReadRow(int i, std::vector<float>* row) const {
    row->resize(n_vocab);
    if (std::fseek(file.get(), static_cast<long>(i) * n_vocab * 4, SEEK_SET) != 0 ||
        std::fread(row->data(), 4, n_vocab, file.get()) != static_cast<size_t>(n_vocab)) {
      return absl::DataLossError("cannot read back a spooled logits row");
    }
    return absl::OkStatus();
  }
};

// Drains a stream completely before anything else reads it. Streams are never read
// in lockstep: a server with one worker (the bitnet.cpp adapter's default) would
// hold the worker for one stream while the client waits on another from the same
// server, and both would stall.
absl::StatusOr<LogitsSpool> DrainLogits(EngineClient& client, const v1::EvalLogitsRequest& req, const char* name,
                                        const std::vector<int32_t>& ids, int n_vocab) {
  LogitsSpool sp;
  sp.n_vocab = n_vocab;
  sp.file.reset(std::tmpfile());
  if (!sp.file) return absl::ResourceExhaustedError("cannot create a temporary file for logits");
  auto stream = client.OpenLogitsStream(req);
  if (!stream.ok()) return stream.status();
  LogitsStream* st = stream->get();
  v1::PositionLogits r;
  while (st->Next(&r)) {
    const int expected = sp.rows;
    if (expected >= static_cast<int>(ids.size()) || r.position() != expected || r.token_id() != ids[expected] ||
        r.logits().size() != static_cast<size_t>(n_vocab) * 4) {
      st->Finish().IgnoreError();
      return absl::DataLossError(absl::StrCat(
          "side ", name, " EvalLogitsStream: incomplete or out-of-order row (position ", r.position(), " expected ",
          expected, ", token ", r.token_id(), " expected ", expected < static_cast<int>(ids.size()) ? ids[expected] : -1,
          ", ", r.logits().size(), " bytes for a vocabulary of ", n_vocab, ")"));
    }
    if (std::fwrite(r.logits().data(), 1, r.logits().size(), sp.file.get()) != r.logits().size()) {
      st->Finish().IgnoreError();
      return absl::ResourceExhaustedError("cannot spool logits to a temporary file (disk full?)");
    }
    sp.next_logprob.push_back(r.has_next_token_logprob() ? r.next_token_logprob() : std::nan(""));
    ++sp.rows;
  }
  absl::Status fin = st->Finish();
  if (!fin.ok()) return fin;
  if (sp.rows != static_cast<int>(ids.size())) {
    return absl::DataLossError(absl::StrCat("side ", name, " EvalLogitsStream ended after ", sp.rows, " of ",
                                            ids.size(), " positions"));
  }
  sp.token_ids = st->token_ids();
  sp.timings = st->timings();
  if (sp.token_ids != ids) {
    return absl::DataLossError(absl::StrCat("side ", name, " evaluated a different token sequence"));
  }
  std::fflush(sp.file.get());
  return sp;
}

// Teacher-forced drift: A, B and B in the other mode (the noise floor), each stream
// drained on its own thread, then compared position by position.
absl::Status MeasureDrift(EngineClient& a, EngineClient& b, const std::vector<int32_t>& ids,
                          const CompareOptions& o, DriftResult* out) {
  v1::EvalLogitsRequest req;
  SetIds(req.mutable_input(), ids);
  req.set_mode(o.mode);
  req.mutable_positions()->set_kind(v1::Positions::ALL);
  req.mutable_output()->set_kind(v1::LogitsOutput::FULL);
  req.mutable_output()->set_format(v1::FLOAT_FORMAT_F32);
  v1::EvalLogitsRequest noise_req = req;
  noise_req.set_mode(OtherMode(o.mode));

  const int n_vocab = a.info().model().n_vocab();
  auto fa = std::async(std::launch::async, [&] { return DrainLogits(a, req, "A", ids, n_vocab); });
  auto fb = std::async(std::launch::async, [&] { return DrainLogits(b, req, "B", ids, n_vocab); });
  absl::StatusOr<LogitsSpool> sn = DrainLogits(b, noise_req, "B (noise-floor mode)", ids, n_vocab);
  absl::StatusOr<LogitsSpool> sa = fa.get();
  absl::StatusOr<LogitsSpool> sb = fb.get();
  if (!sa.ok()) return sa.status();
  if (!sb.ok()) return sb.status();
  if (!sn.ok()) return sn.status();

  std::vector<float> la, lb, ln;
  for (int pos = 0; pos < static_cast<int>(ids.size()); ++pos) {
    if (absl::Status st = sa->ReadRow(pos, &la); !st.ok()) return st;
    if (absl::Status st = sb->ReadRow(pos, &lb); !st.ok()) return st;
    if (absl::Status st = sn->ReadRow(pos, &ln); !st.ok()) return st;
    const RowDiff dab = CompareRows(la, lb, o.top_k);
    const RowDiff dn = CompareRows(ln, lb, o.top_k);
    const bool has_next = pos + 1 < static_cast<int>(ids.size());
    double dp_ab = 0, dp_n = 0;
    if (has_next) {
      const double lpa = sa->next_logprob[pos], lpb = sb->next_logprob[pos], lpn = sn->next_logprob[pos];
      if (std::isnan(lpa) || std::isnan(lpb) || std::isnan(lpn)) {
        return absl::DataLossError(absl::StrCat("EvalLogitsStream: no next_token_logprob at position ", pos));
      }
      out->nll_a -= lpa;
      out->nll_b -= lpb;
      out->nll_noise -= lpn;
      out->n_predicted++;
      dp_ab = std::exp(lpa) - std::exp(lpb);
      dp_n = std::exp(lpn) - std::exp(lpb);
    }
    Push(&out->ab, pos, ids[pos], dab, dp_ab);
    Push(&out->noise, pos, ids[pos], dn, dp_n);
  }
  out->eval_ms_a = sa->timings.eval_ms();
  out->eval_ms_b = sb->timings.eval_ms();
  out->measured = true;
  return absl::OkStatus();
}

std::string FinishName(v1::FinishReason r) {
  std::string n = v1::FinishReason_Name(r);
  return absl::StartsWith(n, "FINISH_REASON_") ? absl::AsciiStrToLower(n.substr(14)) : n;
}

absl::Status MeasureGeneration(EngineClient& a, EngineClient& b, const std::vector<int32_t>& ids,
                               const CompareOptions& o, GenerationComparison* out) {
  v1::GenerateRequest req;
  SetIds(req.mutable_input(), ids);
  req.set_max_new_tokens(o.max_new_tokens);
  req.mutable_sampling()->set_temperature(0);
  req.set_ignore_eos(o.ignore_eos);
  req.set_logprobs(true);
  const int top_n = std::min({static_cast<int>(o.thresholds.near_tie_top_n),
                              a.info().limits().max_top_logprobs(), b.info().limits().max_top_logprobs()});
  req.set_top_logprobs(std::max(0, top_n));
  req.set_prefill_mode(o.mode);
  auto fb = std::async(std::launch::async, [&] { return b.Generate(req); });
  absl::StatusOr<v1::GenerateResponse> ra = a.Generate(req);
  absl::StatusOr<v1::GenerateResponse> rb = fb.get();
  if (!ra.ok()) return ra.status();
  if (!rb.ok()) return rb.status();
  out->ids_a.assign(ra->ids().begin(), ra->ids().end());
  out->ids_b.assign(rb->ids().begin(), rb->ids().end());
  out->text_a = ra->text();
  out->text_b = rb->text();
  out->finish_a = FinishName(ra->finish_reason());
  out->finish_b = FinishName(rb->finish_reason());
  out->exact_match = out->ids_a == out->ids_b;
  const size_t n = std::min(out->ids_a.size(), out->ids_b.size());
  size_t i = 0;
  while (i < n && out->ids_a[i] == out->ids_b[i]) ++i;
  out->common_prefix = static_cast<int>(i);
  if (!out->exact_match) {
    NearTie t;
    t.index = static_cast<int>(i);
    if (i < n) {
      t.token_a = out->ids_a[i];
      t.token_b = out->ids_b[i];
      // gap = the chosen token's logit minus the other side's token's logit, in the
      // chooser's own distribution.
      auto find = [](const v1::GeneratedToken& tok, int32_t chosen, int32_t other, double* gap) {
        double lc = NAN, lo = NAN;
        for (const auto& alt : tok.top()) {
          if (alt.id() == chosen) lc = alt.logit();
          if (alt.id() == other) lo = alt.logit();
        }
        if (std::isnan(lo) || std::isnan(lc)) return false;
        *gap = lc - lo;
        return true;
      };
      t.b_in_a_top = find(ra->tokens(i), t.token_a, t.token_b, &t.gap_a);
      t.a_in_b_top = find(rb->tokens(i), t.token_b, t.token_a, &t.gap_b);
      t.near_tie = t.b_in_a_top && t.a_in_b_top && t.gap_a <= o.thresholds.near_tie_max_logit_gap &&
                   t.gap_b <= o.thresholds.near_tie_max_logit_gap;
    }
    out->divergence = t;
  }
  out->measured = true;
  return absl::OkStatus();
}

std::vector<int32_t> TracePositions(const PromptResult& p, int max_positions) {
  const int n = static_cast<int>(p.ids.size());
  std::vector<int32_t> pos;
  if (n <= max_positions) {
    for (int i = 0; i < n; ++i) pos.push_back(i);
    return pos;
  }
  for (int k = 0; k < max_positions - 1; ++k) pos.push_back(static_cast<int32_t>(int64_t{k} * (n - 1) / (max_positions - 1)));
  pos.push_back(n - 1);
  // The position where drift peaked is the best evidence; make sure it is traced.
  const auto& m = p.drift.ab.max_abs;
  if (!m.empty()) pos.push_back(static_cast<int32_t>(std::max_element(m.begin(), m.end()) - m.begin()));
  std::sort(pos.begin(), pos.end());
  pos.erase(std::unique(pos.begin(), pos.end()), pos.end());
  return pos;
}

// One side's traced residual vectors by (layer, position).
using TraceIndex = std::map<std::pair<int, int>, std::vector<float>>;

TraceIndex IndexTrace(const v1::EvalTraceResponse& r) {
  TraceIndex m;
  for (const auto& x : r.residuals()) m[{x.layer(), x.position()}] = Floats(x.hidden());
  return m;
}

// Per layer, A vs B and B's own noise (B other mode vs B), averaged over the traced
// positions; sets first_exceeding_layer. The indexes are not const: a vector a side
// did not send reads as empty.
void CompareLayers(TraceIndex& ma, TraceIndex& mb, TraceIndex& mn, const Thresholds& t, Localization* loc) {
  for (int l = 0; l <= loc->n_layer; ++l) {
    LayerDiff d;
    d.layer = l;
    double sum = 0, sum_noise = 0, sum_cos = 0;
    for (int32_t q : loc->positions) {
      const auto& va = ma[{l, q}];
      const auto& vb = mb[{l, q}];
      const auto& vn = mn[{l, q}];
      const double r = RelativeRmsDiff(va, vb);
      sum += r;
      d.rel_diff_max = std::max(d.rel_diff_max, r);
      sum_noise += RelativeRmsDiff(vn, vb);
      sum_cos += CosineSimilarity(va, vb);
    }
    const double k = static_cast<double>(loc->positions.size());
    d.rel_diff = sum / k;
    d.noise_rel_diff = sum_noise / k;
    d.cosine = sum_cos / k;
    d.diverged = d.rel_diff > std::max(t.trace_floor, t.trace_noise_ratio * d.noise_rel_diff);
    if (d.diverged && loc->first_exceeding_layer < 0) loc->first_exceeding_layer = l;
    loc->layers.push_back(d);
  }
}

// Where the divergence starts; sets every layer's growth. The first layer past the
// noise-relative threshold is often one layer late: a small fault (a 1e-3 scale)
// hides under B's own noise in its layer and only grows past it when the next
// layer's int8 activation quantization amplifies it. So look back from there for the
// layer where the difference jumps most relative to the layer before (from exactly
// zero, for engines that agree bit for bit up to the fault).
void FindDivergenceStart(double floor, Localization* loc) {
  int last = loc->first_exceeding_layer;
  if (last < 0) {
    double best = 0;
    for (const LayerDiff& d : loc->layers) {
      if (d.rel_diff > floor && d.rel_diff > best) {
        best = d.rel_diff;
        last = d.layer;
      }
    }
  }
  double prev = 0, best_growth = 0;
  for (LayerDiff& d : loc->layers) {
    d.growth = std::max(d.rel_diff, floor) / std::max(prev, floor);
    prev = d.rel_diff;
    if (d.layer <= last && d.rel_diff > floor && d.growth > best_growth) {
      best_growth = d.growth;
      loc->first_diverging_layer = d.layer;
    }
  }
}

absl::Status Localize(EngineClient& a, EngineClient& b, const CompareOptions& o, PromptResult* p) {
  Localization loc;
  loc.positions = TracePositions(*p, o.trace_positions);
  loc.n_layer = a.info().model().n_layer();
  v1::EvalTraceRequest req;
  SetIds(req.mutable_input(), p->ids);
  req.set_mode(o.mode);
  req.mutable_positions()->set_kind(v1::Positions::LIST);
  for (int32_t q : loc.positions) req.mutable_positions()->add_list(q);
  req.set_format(v1::FLOAT_FORMAT_F32);
  v1::EvalTraceRequest noise_req = req;
  noise_req.set_mode(OtherMode(o.mode));
  auto fb = std::async(std::launch::async, [&] { return b.EvalTrace(req); });
  auto fn = std::async(std::launch::async, [&] { return b.EvalTrace(noise_req); });
  absl::StatusOr<v1::EvalTraceResponse> ra = a.EvalTrace(req);
  absl::StatusOr<v1::EvalTraceResponse> rb = fb.get();
  absl::StatusOr<v1::EvalTraceResponse> rn = fn.get();
  if (!ra.ok()) return ra.status();
  if (!rb.ok()) return rb.status();
  if (!rn.ok()) return rn.status();
  TraceIndex ma = IndexTrace(*ra), mb = IndexTrace(*rb), mn = IndexTrace(*rn);
  const size_t expected = (loc.n_layer + 1) * loc.positions.size();
  if (ma.size() != expected || mb.size() != expected || mn.size() != expected) {
    return absl::DataLossError(absl::StrCat("EvalTrace: expected ", expected, " residual vectors per side, got ",
                                            ma.size(), " (A), ", mb.size(), " (B), ", mn.size(), " (B noise)"));
  }
  CompareLayers(ma, mb, mn, o.thresholds, &loc);
  FindDivergenceStart(o.thresholds.trace_floor, &loc);
  p->localization = std::move(loc);
  return absl::OkStatus();
}

void RecordError(const absl::Status& s, PromptResult* p, std::atomic<bool>* connection_lost) {
  p->error_code = std::string(absl::StatusCodeToString(s.code()));
  p->error_message = std::string(s.message());
  if (s.code() == absl::StatusCode::kUnavailable) connection_lost->store(true);
}

TokenizationResult CompareTokenizations(const std::vector<int32_t>& ta, const std::vector<int32_t>& tb) {
  TokenizationResult t;
  t.checked = true;
  t.n_a = static_cast<int>(ta.size());
  t.n_b = static_cast<int>(tb.size());
  t.agree = ta == tb;
  if (!t.agree) {
    size_t k = 0;
    while (k < ta.size() && k < tb.size() && ta[k] == tb[k]) ++k;
    t.first_diff = static_cast<int>(k);
    t.id_a = k < ta.size() ? ta[k] : -1;
    t.id_b = k < tb.size() ? tb[k] : -1;
  }
  return t;
}

// `tokenize` on both sides at once; the run goes on with side A's ids so that
// logits stay comparable.
template <typename TokenizeFn>
absl::Status TokenizeOnBothWith(EngineClient& a, EngineClient& b, TokenizeFn tokenize, PromptResult* p) {
  auto fb = std::async(std::launch::async, [&] { return tokenize(b); });
  absl::StatusOr<std::vector<int32_t>> ta = tokenize(a);
  absl::StatusOr<std::vector<int32_t>> tb = fb.get();
  if (!ta.ok()) return ta.status();
  if (!tb.ok()) return tb.status();
  p->tokenization = CompareTokenizations(*ta, *tb);
  p->ids = *ta;
  return absl::OkStatus();
}

// Both tokenizers on the text.
absl::Status TokenizeOnBoth(EngineClient& a, EngineClient& b, const std::string& text, PromptResult* p) {
  return TokenizeOnBothWith(a, b, [&](EngineClient& c) { return c.Tokenize(text); }, p);
}

}  // namespace

v1::ChatMessages ChatOf(const Prompt& prompt) {
  v1::ChatMessages chat;
  for (const PromptTurn& t : prompt.chat) {
    v1::ChatMessage* m = chat.add_messages();
    m->set_role(t.role);
    m->set_content(t.content);
  }
  chat.set_chat_template(prompt.chat_template);
  return chat;
}

namespace {

// A chat rendered and tokenized by each side itself, so that a template that
// renders differently shows as a tokenization difference; A's ids go on.
absl::Status TokenizeChatOnBoth(EngineClient& a, EngineClient& b, const Prompt& prompt, PromptResult* p) {
  const v1::ChatMessages chat = ChatOf(prompt);
  return TokenizeOnBothWith(a, b, [&](EngineClient& c) { return c.TokenizeChat(chat); }, p);
}

// The ids both sides evaluate, cut to `max_prompt` so that generation fits the context.
absl::Status SetPromptIds(EngineClient& a, EngineClient& b, int max_prompt, PromptResult* p) {
  if (p->prompt.is_text()) {
    if (absl::Status st = TokenizeOnBoth(a, b, *p->prompt.text, p); !st.ok()) return st;
  } else if (p->prompt.is_chat()) {
    if (absl::Status st = TokenizeChatOnBoth(a, b, p->prompt, p); !st.ok()) return st;
  } else {
    p->ids = p->prompt.ids;
  }
  if (p->ids.empty()) return absl::InvalidArgumentError("the prompt tokenizes to no tokens");
  if (static_cast<int>(p->ids.size()) > max_prompt) {
    p->truncated_from = static_cast<int>(p->ids.size());
    p->ids.resize(max_prompt);
  }
  return absl::OkStatus();
}

// Prompt retries per side, counted across the measuring threads.
struct RetryCounters {
  std::atomic<int> a{0}, b{0};
};

// A failure that a later attempt may not meet: the server was restarting, a
// worker died where the server could not re-run the call, a deadline passed.
bool Retryable(const absl::Status& st) {
  return st.code() == absl::StatusCode::kUnavailable || st.code() == absl::StatusCode::kDeadlineExceeded;
}

// Tokenization, drift and generation of one prompt: one attempt.
absl::Status MeasurePromptOnce(EngineClient& a, EngineClient& b, const CompareOptions& o, int max_prompt,
                               PromptResult* p) {
  absl::Status st = SetPromptIds(a, b, max_prompt, p);
  if (st.ok()) st = MeasureDrift(a, b, p->ids, o, &p->drift);
  if (st.ok() && o.max_new_tokens > 0) st = MeasureGeneration(a, b, p->ids, o, &p->generation);
  return st;
}

// One prompt, measured again from the start (up to o.retries times, with a
// doubling backoff) while it fails in a way a later attempt may not; then its
// verdicts. A prompt that still fails is recorded as an error in its result:
// the other prompts go on.
void MeasurePrompt(EngineClient& a, EngineClient& b, const Prompt& prompt, const CompareOptions& o, int max_prompt,
                   PromptResult* p, RetryCounters* retries, std::atomic<bool>* connection_lost) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> reasons;
  absl::Status st;
  for (int attempt = 0;; ++attempt) {
    *p = PromptResult();
    p->prompt = prompt;
    st = MeasurePromptOnce(a, b, o, max_prompt, p);
    if (st.ok() || !Retryable(st) || attempt >= o.retries) break;
    reasons.push_back(std::string(st.message()));
    (FailedSide(st) == b.endpoint().label ? retries->b : retries->a)++;
    std::this_thread::sleep_for(std::chrono::duration<double>(o.retry_backoff_s * (1 << std::min(attempt, 6))));
  }
  p->attempts = static_cast<int>(reasons.size()) + 1;
  p->retry_reasons = std::move(reasons);
  if (!st.ok()) RecordError(st, p, connection_lost);
  JudgePrompt(o.thresholds, p);
  p->wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Every prompt, `jobs` at a time: each worker takes the next prompt not yet taken.
void MeasurePrompts(EngineClient& a, EngineClient& b, const PromptSet& set, const CompareOptions& o, int max_prompt,
                    Progress* progress, CompareRun* run) {
  run->prompts.resize(set.prompts.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> lost{false};
  RetryCounters retries;
  progress->Begin("prompts (tokenize, drift, generate)", static_cast<int>(set.prompts.size()));
  auto worker = [&] {
    for (size_t i = next++; i < set.prompts.size(); i = next++) {
      MeasurePrompt(a, b, set.prompts[i], o, max_prompt, &run->prompts[i], &retries, &lost);
      progress->Advance();
    }
  };
  std::vector<std::thread> pool;
  for (int j = 0; j < std::max(1, o.jobs); ++j) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  progress->End();
  run->connection_lost = lost;
  run->resilience_a.prompt_retries = retries.a;
  run->resilience_b.prompt_retries = retries.b;
}

// The prompts whose drift fails, the worst first, at most `max_prompts`.
std::vector<PromptResult*> PromptsToTrace(std::vector<PromptResult>& prompts, int max_prompts) {
  std::vector<PromptResult*> failing;
  for (auto& p : prompts) {
    if (p.drift_check.status == CheckStatus::kFail && p.ids.size() > 0) failing.push_back(&p);
  }
  std::sort(failing.begin(), failing.end(),
            [](const PromptResult* x, const PromptResult* y) { return x->drift_noise_ratio > y->drift_noise_ratio; });
  if (static_cast<int>(failing.size()) > max_prompts) failing.resize(max_prompts);
  return failing;
}

// EvalTrace of the worst failing prompts; a failed trace is a warning, not an error.
void LocalizeWorst(EngineClient& a, EngineClient& b, const CompareOptions& o, Progress* progress, CompareRun* run) {
  const std::vector<PromptResult*> failing = PromptsToTrace(run->prompts, o.trace_prompts);
  if (failing.empty()) return;
  progress->Begin("localization (EvalTrace)", static_cast<int>(failing.size()));
  for (PromptResult* p : failing) {
    absl::Status st = Localize(a, b, o, p);
    if (!st.ok()) {
      run->warnings.push_back(absl::StrCat("localization of prompt '", p->prompt.id, "' failed: ", st.message()));
      if (st.code() == absl::StatusCode::kUnavailable) run->connection_lost = true;
    }
    progress->Advance();
  }
  progress->End();
}

// Batch invariance, one side after the other: the first prompts that were
// measured are the probes, the rest (or, with too few, all) feed the
// concurrent streams, cut to leave room for their tokens.
void MeasureRunInvariance(EngineClient& a, EngineClient& b, const CompareOptions& o, int max_ctx, Progress* progress,
                          CompareRun* run) {
  const BatchInvarianceOptions& bo = o.batch_invariance;
  std::vector<ProbePrompt> probes;
  std::vector<std::vector<int32_t>> others, all;
  const int probe_room = std::max(1, max_ctx - bo.max_new_tokens);
  const int other_room = std::max(1, max_ctx - OtherStreamTokens(bo));
  for (const PromptResult& p : run->prompts) {
    if (p.ids.empty() || !p.error_code.empty()) continue;
    std::vector<int32_t> ids = p.ids;
    all.push_back(ids);
    if (static_cast<int>(all.back().size()) > other_room) all.back().resize(other_room);
    if (static_cast<int>(probes.size()) < bo.prompts) {
      if (static_cast<int>(ids.size()) > probe_room) ids.resize(probe_room);
      probes.push_back({p.prompt.id, std::move(ids)});
    } else {
      others.push_back(all.back());
    }
  }
  if (probes.empty()) {
    run->warnings.push_back("batch invariance: no prompt was measured without error, so nothing was probed");
    return;
  }
  if (others.empty()) others = all;
  progress->Begin("batch invariance (A, then B)", 2);
  run->invariance_a = MeasureBatchInvariance(a, probes, others, bo);
  progress->Advance();
  run->invariance_b = MeasureBatchInvariance(b, probes, others, bo);
  progress->Advance();
  progress->End();
}

// What the speed measurement sends: the longest prompt for the timed runs, every
// prompt for the load test, each cut to leave room for its generated tokens.
struct SpeedPrompts {
  std::vector<int32_t> timed;
  std::vector<std::vector<int32_t>> load;
};

SpeedPrompts PickSpeedPrompts(const std::vector<PromptResult>& prompts, const SpeedOptions& so, int max_ctx) {
  SpeedPrompts sp;
  for (const auto& p : prompts) {
    if (p.ids.empty() || !p.error_code.empty()) continue;
    sp.load.push_back(p.ids);
    if (p.ids.size() > sp.timed.size()) sp.timed = p.ids;
  }
  const int room = std::max(1, max_ctx - so.max_new_tokens);
  if (static_cast<int>(sp.timed.size()) > room) sp.timed.resize(room);
  const int load_room = std::max(1, max_ctx - so.load_max_new_tokens);
  for (auto& l : sp.load) {
    if (static_cast<int>(l.size()) > load_room) l.resize(load_room);
  }
  return sp;
}

// Speed, one side at a time so that the two servers do not share the machine.
void MeasureRunSpeed(EngineClient& a, EngineClient& b, const CompareOptions& o, int max_ctx, Progress* progress,
                     CompareRun* run) {
  const SpeedOptions& so = o.speed_options;
  const SpeedPrompts sp = PickSpeedPrompts(run->prompts, so, max_ctx);
  if (sp.load.empty()) return;
  const int load_requests = static_cast<int>(so.concurrency.size()) * so.requests;
  progress->Begin("speed (A, then B)", 2 * (so.warmup + so.runs + load_requests));
  auto tick = [&] { progress->Advance(); };
  auto sa = MeasureSpeed(a, sp.timed, sp.load, so, tick);
  auto sb = sa.ok() ? MeasureSpeed(b, sp.timed, sp.load, so, tick) : absl::StatusOr<SideSpeed>(sa.status());
  progress->End();
  if (sa.ok() && sb.ok()) {
    run->speed_a = *sa;
    run->speed_b = *sb;
    return;
  }
  const absl::Status& failed = sa.ok() ? sb.status() : sa.status();
  run->speed_error = std::string(failed.message());
  if (failed.code() == absl::StatusCode::kUnavailable) run->connection_lost = true;
}

// What a side's server recovered from during the run: calls it re-ran (the
// client summed their trailers) and workers it restarted (GetModelInfo now
// against `before`, read at the start).
void CountServerRecoveries(EngineClient& c, const v1::GetModelInfoResponse& before, SideResilience* r) {
  r->server_retries = c.server_retries();
  absl::StatusOr<v1::GetModelInfoResponse> after = c.GetModelInfo();
  if (after.ok() && after->has_worker_pool() && before.has_worker_pool()) {
    r->worker_restarts = after->worker_pool().restarts() - before.worker_pool().restarts();
  }
}

// Both sides' endpoints and model info, and the prompt set's provenance.
CompareRun NewRun(EngineClient& a, EngineClient& b, const PromptSet& set, const CompareOptions& o) {
  CompareRun run;
  run.a = a.endpoint();
  run.b = b.endpoint();
  run.started_utc = UtcNow();
  run.options = o;
  run.prompt_source = set.source;
  run.prompt_sha256 = set.sha256;
  // Memory figures are more useful fresh; the connect-time info is the fallback.
  auto ia = a.GetModelInfo();
  auto ib = b.GetModelInfo();
  run.info_a = ia.ok() ? *ia : a.info();
  run.info_b = ib.ok() ? *ib : b.info();
  run.model_check = CheckModels(run.info_a, run.info_b);
  return run;
}

absl::Status ModelMismatchError(const ModelCheck& check) {
  std::string msg = "the two servers serve different models:";
  for (const auto& m : check.messages) absl::StrAppend(&msg, "\n  ", m);
  absl::StrAppend(&msg, "\n(--allow-model-mismatch runs anyway)");
  return absl::FailedPreconditionError(msg);
}

// The context both sides accept: the servers' limit, else the model's training context.
int SharedContext(const CompareRun& run) {
  auto limit_of = [](const v1::GetModelInfoResponse& i) {
    return i.limits().max_context() > 0 ? i.limits().max_context() : i.model().n_ctx_train();
  };
  return std::min(limit_of(run.info_a), limit_of(run.info_b));
}

}  // namespace

ModelCheck CheckModels(const v1::GetModelInfoResponse& a, const v1::GetModelInfoResponse& b) {
  ModelCheck c;
  const v1::ModelFacts &ma = a.model(), &mb = b.model();
  auto differ = [&](const char* what, auto va, auto vb) {
    if (va != vb) {
      c.status = CheckStatus::kFail;
      c.messages.push_back(absl::StrCat(what, " differs: A ", va, ", B ", vb));
    }
  };
  differ("architecture", ma.architecture(), mb.architecture());
  differ("n_layer", ma.n_layer(), mb.n_layer());
  differ("n_embd", ma.n_embd(), mb.n_embd());
  differ("n_ff", ma.n_ff(), mb.n_ff());
  differ("n_head", ma.n_head(), mb.n_head());
  differ("n_head_kv", ma.n_head_kv(), mb.n_head_kv());
  differ("n_vocab", ma.n_vocab(), mb.n_vocab());
  differ("bos_id", ma.bos_id(), mb.bos_id());
  differ("eos_id", ma.eos_id(), mb.eos_id());
  if (c.status == CheckStatus::kFail) return c;
  if (ma.sha256() != mb.sha256()) {
    c.status = CheckStatus::kWarn;
    c.messages.push_back(absl::StrCat("the model files differ (sha256 A ", ma.sha256().substr(0, 12), "…, B ",
                                      mb.sha256().substr(0, 12),
                                      "…) but have the same shape: comparing two files of one model"));
  }
  for (const auto* side : {&a, &b}) {
    if (!side->fault_injection().empty()) {
      c.status = CheckStatus::kWarn;
      c.messages.push_back(absl::StrCat("side ", side == &a ? "A" : "B", " runs with --inject-fault ",
                                        side->fault_injection(), ": a deliberately wrong forward pass"));
    }
  }
  // Overrides change the model each side runs; the same file with different ones is
  // not a like-for-like comparison.
  auto overrides_of = [](const v1::ModelFacts& m) {
    std::string s;
    for (const auto& o : m.metadata_overrides()) absl::StrAppend(&s, s.empty() ? "" : " ", o.key(), "=", o.type(), ":", o.value());
    return s.empty() ? std::string("none") : s;
  };
  if (overrides_of(ma) != overrides_of(mb)) {
    c.status = CheckStatus::kWarn;
    c.messages.push_back(absl::StrCat("the sides run with different --override-kv: A ", overrides_of(ma), ", B ",
                                      overrides_of(mb)));
  }
  if (!ma.has_tokenizer() || !mb.has_tokenizer()) {
    c.status = CheckStatus::kWarn;
    c.messages.push_back("a side has no tokenizer: text prompts will fail there (use ids prompts)");
  }
  return c;
}

absl::StatusOr<CompareRun> RunCompare(EngineClient& a, EngineClient& b, const PromptSet& set,
                                      const CompareOptions& o, Progress* progress) {
  const auto t0 = std::chrono::steady_clock::now();
  CompareRun run = NewRun(a, b, set, o);
  if (run.model_check.status == CheckStatus::kFail && !o.allow_model_mismatch) {
    return ModelMismatchError(run.model_check);
  }
  const int max_ctx = SharedContext(run);
  const int max_prompt = std::max(1, max_ctx - std::max(0, o.max_new_tokens));
  MeasurePrompts(a, b, set, o, max_prompt, progress, &run);
  // Once a server is gone, the later phases would only add errors.
  if (o.localize && !run.connection_lost) LocalizeWorst(a, b, o, progress, &run);
  if (o.batch_invariance.others > 0 && !run.connection_lost) MeasureRunInvariance(a, b, o, max_ctx, progress, &run);
  if (o.speed && !run.connection_lost) MeasureRunSpeed(a, b, o, max_ctx, progress, &run);
  CountServerRecoveries(a, run.info_a, &run.resilience_a);
  CountServerRecoveries(b, run.info_b, &run.resilience_b);
  run.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return run;
}

}  // namespace bitparity
