#include "orchestrator/conformance.h"

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
#include "orchestrator/conformance_checks.h"

namespace bitparity {
namespace v1 = ::bitnet::v1;

namespace {

using namespace conformance;  // NOLINT: the checks and the probe

struct CheckDef {
  const char* name;
  const char* group;
  const char* catches;
  bool required;
  void (*run)(Probe&, Outcome&);
};

const CheckDef kChecks[] = {
    {"contract.health", "contract", "grpc.health.v1 does not report SERVING for \"\" and bitnet.v1.Engine", true, CheckHealth},
    {"contract.reflection", "contract", "server reflection is off or does not list bitnet.v1.Engine", true, CheckReflection},
    {"contract.model_info", "contract",
     "GetModelInfo incomplete or implausible (empty or 0-byte model, bad sha256, shapes, limits)", true, CheckModelInfo},
    {"contract.shapes", "contract", "EvalLogits rows, positions, token ids or argmax_id inconsistent with n_vocab and the input",
     true, CheckShapes},
    {"contract.deadline", "contract", "a passed deadline is not DEADLINE_EXCEEDED, or leaves the server unable to serve",
     true, CheckDeadline},
    {"contract.cancellation", "contract", "a cancelled stream is not CANCELLED, or leaves the server unable to serve", true,
     CheckCancellation},
    {"contract.stream_equals_unary", "contract", "GenerateStream or EvalLogitsStream differ from their unary forms", true,
     CheckStreamEqualsUnary},
    {"consistency.greedy_matches_logits", "consistency",
     "greedy tokens that are not the argmax of EvalLogits over prompt + tokens so far (fake or stale tokens)", true,
     CheckGreedyMatchesLogits},
    {"consistency.logprobs_match_logits", "consistency",
     "Generate's logprobs and alternatives that are not log-softmax of EvalLogits rows", true, CheckLogprobsMatchLogits},
    {"consistency.generate_text_matches_ids", "consistency", "Generate's text that is not the text of its ids", true,
     CheckGenerateTextMatchesIds},
    {"consistency.top_k_matches_full", "consistency", "TOP_K output that is not the top of the FULL rows", true,
     CheckTopKMatchesFull},
    {"consistency.f16_matches_f32", "consistency", "F16 output that is not the F32 rows rounded to nearest even", true,
     CheckF16MatchesF32},
    {"consistency.tokenize_round_trip", "consistency", "Tokenize pieces, Detokenize and text round trips disagree", true,
     CheckTokenizeRoundTrip},
    {"consistency.determinism", "consistency", "the same seeded request twice gives different bytes", true,
     CheckDeterminism},
    {"consistency.trace_final_norm", "consistency",
     "EvalTrace's last entry is not an RMS norm (one gain vector) of the last layer", false, CheckTraceFinalNorm},
    {"consistency.perplexity_none_equals_full", "consistency",
     "NONE-output next_token_logprob (perplexity) differs from the one of FULL rows", true, CheckPerplexity},
    {"speed.timings_consistent", "speed",
     "timings or usage that contradict each other or exceed the client's wall time (counted fake tokens)", true,
     CheckTimingsConsistent},
    {"speed.wall_clock", "speed", "reported decode time or tokens/s the client's clock does not see (a 10x claim)", true,
     CheckWallClock},
};


}  // namespace


const char* ConformanceStatusName(ConformanceStatus s) {
  switch (s) {
    case ConformanceStatus::kPass: return "pass";
    case ConformanceStatus::kFail: return "fail";
    case ConformanceStatus::kSkip: return "skip";
  }
  return "?";
}

const ConformanceCheck* ConformanceResult::FirstRequiredFailure() const {
  for (const ConformanceCheck& c : checks) {
    if (c.required && c.status == ConformanceStatus::kFail) return &c;
  }
  return nullptr;
}

int ConformanceResult::Count(ConformanceStatus s) const {
  return static_cast<int>(std::count_if(checks.begin(), checks.end(), [s](const ConformanceCheck& c) { return c.status == s; }));
}

ConformanceResult RunConformance(EngineClient& client, const ConformanceOptions& options) {
  const auto t0 = Clock::now();
  ConformanceResult result;
  result.address = client.endpoint().address;
  result.info = client.info();
  Probe probe(client, options);
  auto run_one = [&](const std::string& name, const char* group, const std::string& catches, bool required,
                     const std::function<void(Outcome&)>& run) {
    ConformanceCheck r;
    r.name = name;
    r.group = group;
    r.catches = catches;
    r.required = required;
    const auto c0 = Clock::now();
    // A check that failed because the server could not answer at all
    // (UNAVAILABLE: a worker that died, a restart) says nothing about the
    // contract: it runs again, with fresh shared answers, up to
    // options.unavailable_retries times; the last run stands.
    for (int attempt = 0;; ++attempt) {
      r.status = ConformanceStatus::kPass;
      r.request = r.expected = r.observed = r.note = "";
      Outcome out(&r);
      run(out);
      const bool unavailable = r.status == ConformanceStatus::kFail &&
                               absl::StrContains(r.observed, CodeName(grpc::StatusCode::UNAVAILABLE));
      if (!unavailable || attempt >= options.unavailable_retries) break;
      probe.Forget();
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << std::min(attempt, 4)));
    }
    r.ms = MsSince(c0);
    result.checks.push_back(std::move(r));
  };
  // The contract first (cheap), then the rules, then what evaluates.
  for (const CheckDef& c : kChecks) {
    if (std::string(c.group) != "contract") continue;
    if (std::string(c.name) == "contract.deadline") {
      for (const Rule& rule : ValidationRules()) {
        run_one(rule.name, "contract",
                absl::StrCat("a broken rule not answered ", CodeName(rule.code), " naming \"", rule.field, "\""),
                !rule.optional_rpc, [&](Outcome& out) { RunRule(rule, probe, out); });
      }
    }
    run_one(c.name, c.group, c.catches, c.required, [&](Outcome& out) { c.run(probe, out); });
  }
  for (const CheckDef& c : kChecks) {
    if (std::string(c.group) == "contract") continue;
    run_one(c.name, c.group, c.catches, c.required, [&](Outcome& out) { c.run(probe, out); });
  }
  result.wall_s = MsSince(t0) / 1000;
  return result;
}

absl::Status RequireConformance(EngineClient& client, const ConformanceOptions& options) {
  const ConformanceResult r = RunConformance(client, options);
  const ConformanceCheck* f = r.FirstRequiredFailure();
  if (f == nullptr) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      client.Describe(), " fails the conformance check ", f->name, " (", f->catches, "): request ", f->request,
      "; expected ", f->expected, "; observed ", f->observed, ". Run `bitparity conformance --a ", client.endpoint().address,
      "` for the whole report, or pass --no-conformance to compare anyway"));
}

}  // namespace bitparity
