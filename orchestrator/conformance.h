// File: orchestrator/conformance.h
//
// `bitparity conformance`: a suite of named checks that one live bitnet.v1
// server keeps the contract (proto/bitnet/v1/engine.proto) and that its answers
// are consistent with each other, in the spirit of gRPC's interop tests and
// llama.cpp's test-backend-ops. It exists because a cross-validation once
// returned made-up tokens (100 + i), counted fake benchmark tokens and loaded a
// 0-byte model, and nothing noticed: a server that passes here computes what it
// reports, so comparing it with another engine means something.
//
// Three groups (the names are stable; reports and tests refer to them):
//   contract.*     health, reflection, GetModelInfo, every documented validation
//                  rule and advertised limit (code and the field named), deadlines,
//                  cancellation, streaming == unary
//   consistency.*  fake detectors: Generate against EvalLogits (argmax, log-softmax),
//                  TOP_K against FULL, F16 against F32, Tokenize/Detokenize,
//                  determinism, EvalTrace's final norm, perplexity NONE == FULL
//   speed.*        the server's timings against themselves and the client's clock
// Each check is PASS, FAIL (with the request, the expected and the observed
// value) or SKIP (an optional RPC answered UNIMPLEMENTED, or a check the model
// cannot exercise, with the reason). A server conforms when no required check
// fails. The suite runs one request at a time and takes a few seconds on the
// tiny fixture models.
//
//   auto client = EngineClient::Connect(endpoint, {});
//   ConformanceResult r = RunConformance(**client, {});
//   if (const ConformanceCheck* f = r.FirstRequiredFailure()) ... f->name ...
//
// Where things are: conformance_probe.h (the server as the checks see it, and
// the answers they share), conformance_contract.cc / _consistency.cc / _speed.cc
// (one function per check, declared in conformance_checks.h), conformance.cc
// (the table of checks and the runner), conformance_report.cc (JSON, JUnit, HTML).
// Adding a check: a function in the file of its group, declared in
// conformance_checks.h, and a line in conformance.cc's table (name, group, what
// it catches, required?).
#pragma once

#include <string>
#include <vector>

#include "orchestrator/engine_client.h"

namespace bitparity {

enum class ConformanceStatus { kPass, kFail, kSkip };
const char* ConformanceStatusName(ConformanceStatus s);  // "pass", "fail", "skip"

struct ConformanceCheck {
  std::string name;     // "consistency.greedy_matches_logits"
  std::string group;    // "contract", "consistency", "speed"
  std::string catches;  // what a failure means, one line
  bool required = true;
  ConformanceStatus status = ConformanceStatus::kPass;
  // FAIL: what was asked, what the contract or the server's other answers say it
  // must be, and what came back. PASS/SKIP: `note` says what was seen or why skipped.
  std::string request, expected, observed;
  std::string note;
  double ms = 0;  // client wall time of the check
};

struct ConformanceOptions {
  int generate_tokens = 12;     // greedy tokens checked against EvalLogits
  int speed_tokens = 64;        // tokens of the timed generation (capped by the limits)
  double call_timeout_s = 120;  // per RPC
  // speed.wall_clock: the client's span from the first to the last streamed token
  // must be at most factor * the server's decode_ms + slack_ms. Generous, so that an
  // honest server on a loaded 2-core machine passes and a 10x lie does not.
  double wall_clock_factor = 3.0;
  double wall_clock_slack_ms = 30.0;
  // A check that fails only because the server answered UNAVAILABLE (a worker
  // died, a restart) runs again this many times (compare passes --retries).
  int unavailable_retries = 2;
};

struct ConformanceResult {
  std::string address;
  std::string label;  // the side ("A", "B") or "" for `bitparity conformance`
  bitnet::v1::GetModelInfoResponse info;
  std::vector<ConformanceCheck> checks;
  double wall_s = 0;

  // The first required check that failed; nullptr when the server conforms.
  const ConformanceCheck* FirstRequiredFailure() const;
  bool Conforms() const { return FirstRequiredFailure() == nullptr; }
  int Count(ConformanceStatus s) const;
};

// Runs every check against the server behind `client` (already connected).
ConformanceResult RunConformance(EngineClient& client, const ConformanceOptions& options);

// For `bitparity compare`: runs the suite and returns FailedPrecondition naming
// the side, the first required check that failed, and what it expected and saw;
// OK when the side conforms.
absl::Status RequireConformance(EngineClient& client, const ConformanceOptions& options);

}  // namespace bitparity
