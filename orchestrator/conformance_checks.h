// File: orchestrator/conformance_checks.h
//
// Internal to `bitparity conformance`: every check, one function each, run by
// the table in conformance.cc. Each fills its Outcome: nothing for a pass,
// Fail(request, expected, observed), or Skip(why).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "orchestrator/conformance_probe.h"

namespace bitparity::conformance {

// contract.* (conformance_contract.cc)
void CheckHealth(Probe& p, Outcome& out);
void CheckReflection(Probe& p, Outcome& out);
void CheckModelInfo(Probe& p, Outcome& out);
void CheckShapes(Probe& p, Outcome& out);
void CheckDeadline(Probe& p, Outcome& out);
void CheckCancellation(Probe& p, Outcome& out);
void CheckStreamEqualsUnary(Probe& p, Outcome& out);

// One documented validation rule: a request that breaks it, the code the contract
// gives it and the field its message must name.
struct Rule {
  const char* name;
  grpc::StatusCode code;
  std::string field;
  // Sends the request; fills its description. nullopt: the rule cannot be
  // exercised on this server (the reason in *why).
  std::function<std::optional<grpc::Status>(Probe&, std::string* request, std::string* why)> send;
  bool optional_rpc = false;  // EvalTrace, chat rendering: UNIMPLEMENTED is a SKIP
};

// The rules of engine.proto, in its order; RunRule checks one (contract.validation.*
// and contract.limits.*).
std::vector<Rule> ValidationRules();
void RunRule(const Rule& rule, Probe& p, Outcome& out);

// consistency.* (conformance_consistency.cc)
void CheckGreedyMatchesLogits(Probe& p, Outcome& out);
void CheckLogprobsMatchLogits(Probe& p, Outcome& out);
void CheckTopKMatchesFull(Probe& p, Outcome& out);
void CheckF16MatchesF32(Probe& p, Outcome& out);
void CheckTokenizeRoundTrip(Probe& p, Outcome& out);
void CheckGenerateTextMatchesIds(Probe& p, Outcome& out);
void CheckDeterminism(Probe& p, Outcome& out);
void CheckTraceFinalNorm(Probe& p, Outcome& out);
void CheckPerplexity(Probe& p, Outcome& out);

// speed.* (conformance_speed.cc)
void CheckTimingsConsistent(Probe& p, Outcome& out);
void CheckWallClock(Probe& p, Outcome& out);

}  // namespace bitparity::conformance
