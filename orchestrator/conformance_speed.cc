// The speed.* checks of bitparity conformance (conformance.h).
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
// speed.*
// ---------------------------------------------------------------------------

bool Near(double reported, double computed) {
  return std::fabs(reported - computed) <= 0.05 * std::max(std::fabs(computed), 1e-9) + 1e-6;
}

void CheckTimingsConsistent(Probe& p, Outcome& out) {
  SpeedData& d = p.Speed();
  const std::string req = "GenerateStream " + Brief(d.request);
  if (!d.status.ok()) return out.Fail(req, "OK", Describe(d.status));
  const v1::GenerateResponse& r = d.summary;
  const v1::GenerateTimings& t = r.timings();
  const int completion = r.ids_size();
  if (d.streamed_tokens != completion || r.usage().completion_tokens() != completion ||
      r.usage().prompt_tokens() != static_cast<int>(p.prompt().size()) ||
      r.usage().total_tokens() != r.usage().prompt_tokens() + completion) {
    return out.Fail(req, absl::StrCat("usage = ", p.prompt().size(), " prompt + ", d.streamed_tokens,
                                      " streamed tokens (", completion, " ids)"),
                    Brief(r.usage()));
  }
  for (double v : {t.queue_ms(), t.tokenize_ms(), t.prefill_ms(), t.decode_ms(), t.time_to_first_token_ms(),
                   t.prefill_tokens_per_s(), t.decode_tokens_per_s(), t.total_ms()}) {
    if (!(v >= 0 && std::isfinite(v))) return out.Fail(req, "finite, non-negative timings", Brief(t));
  }
  if (t.prefill_ms() > 0 && !Near(t.prefill_tokens_per_s(), r.usage().prompt_tokens() * 1000.0 / t.prefill_ms())) {
    return out.Fail(req, absl::StrCat("prefill_tokens_per_s = prompt_tokens / prefill_ms = ",
                                      r.usage().prompt_tokens() * 1000.0 / t.prefill_ms()),
                    absl::StrCat(t.prefill_tokens_per_s()));
  }
  if (completion >= 2 && t.decode_ms() > 0 && !Near(t.decode_tokens_per_s(), (completion - 1) * 1000.0 / t.decode_ms())) {
    return out.Fail(req, absl::StrCat("decode_tokens_per_s = (completion_tokens - 1) / decode_ms = ",
                                      (completion - 1) * 1000.0 / t.decode_ms()),
                    absl::StrCat(t.decode_tokens_per_s()));
  }
  if (t.time_to_first_token_ms() > t.total_ms() + 1e-6 || t.prefill_ms() + t.decode_ms() > t.total_ms() * 1.01 + 0.1) {
    return out.Fail(req, "time_to_first_token_ms and prefill_ms + decode_ms within total_ms", Brief(t));
  }
  // The server cannot have worked longer than the client waited.
  if (t.total_ms() > d.wall_ms * 1.05 + 1) {
    return out.Fail(req, absl::StrCat("total_ms <= the client's wall time ", d.wall_ms, " ms"), absl::StrCat(t.total_ms()));
  }
  v1::EvalLogitsResponse* full;
  grpc::Status s = p.FullAll(&full);
  const std::string ereq = "EvalLogits " + Brief(p.FullAllRequest());
  if (!s.ok()) return out.Fail(ereq, "OK", Describe(s));
  const v1::EvalTimings& e = full->timings();
  const size_t n = p.prompt().size();
  if (e.eval_ms() > 0 && !Near(e.tokens_per_s(), n * 1000.0 / e.eval_ms())) {
    return out.Fail(ereq, absl::StrCat("tokens_per_s = ", n, " tokens / eval_ms = ", n * 1000.0 / e.eval_ms()),
                    absl::StrCat(e.tokens_per_s()));
  }
  if (e.eval_ms() > e.total_ms() + 1e-6 || e.total_ms() > p.full_all_wall_ms() * 1.05 + 1) {
    return out.Fail(ereq, absl::StrCat("eval_ms <= total_ms <= the client's wall time ", p.full_all_wall_ms(), " ms"), Brief(e));
  }
}

void CheckWallClock(Probe& p, Outcome& out) {
  SpeedData& d = p.Speed();
  const std::string req = "GenerateStream " + Brief(d.request);
  if (!d.status.ok()) return out.Fail(req, "OK", Describe(d.status));
  const v1::GenerateTimings& t = d.summary.timings();
  if (d.streamed_tokens < 2) return out.Skip("fewer than two tokens streamed: no decode span to time");
  // Tokens are streamed as they are made: the client sees the decode steps
  // between its first and last token arrive.
  const double span = d.last_token_ms - d.first_token_ms;
  const ConformanceOptions& o = p.options();
  const double allowed = o.wall_clock_factor * t.decode_ms() + o.wall_clock_slack_ms;
  const double client_rate = (d.streamed_tokens - 1) * 1000.0 / std::max(span, 1e-3);
  const std::string seen = absl::StrCat("the client saw ", d.streamed_tokens - 1, " decode steps in ", span, " ms (",
                                        client_rate, " tokens/s); the server reported decode_ms ", t.decode_ms(),
                                        " and decode_tokens_per_s ", t.decode_tokens_per_s());
  if (span > allowed) {
    return out.Fail(req, absl::StrCat("first-to-last token span <= ", o.wall_clock_factor, " x decode_ms + ",
                                      o.wall_clock_slack_ms, " ms = ", allowed, " ms"),
                    seen);
  }
  if (t.decode_tokens_per_s() > o.wall_clock_factor * client_rate + 1000.0 * (d.streamed_tokens - 1) / o.wall_clock_slack_ms) {
    return out.Fail(req, absl::StrCat("decode_tokens_per_s <= ", o.wall_clock_factor, " x the client's rate"), seen);
  }
  out.Note(seen);
}


}  // namespace bitparity::conformance
