// File: orchestrator/compare.h
//
// `bitparity compare`: what two bitnet.v1 engines do differently, with evidence.
// Side B is the reference by convention: KL is KL(P_A || P_B), ratios are A/B, and
// the noise floor is B's own batch-vs-sequential difference on the same prompt.
//
// Per prompt, on both sides (prompts run concurrently on `jobs` workers):
//   1. tokenization: both tokenizers on the text; the first differing index; the
//      rest of the run uses side A's ids so that logits stay comparable;
//   2. teacher-forced drift: EvalLogitsStream of every position on A and B in the
//      same mode, and on B in the other mode (noise floor), read in lockstep;
//   3. greedy generation on both, with top-N alternatives for near-tie analysis;
//   4. (prompts whose drift fails) EvalTrace on A, B and B-other-mode: the first
//      layer whose residual stream diverges beyond B's own noise at that layer.
// Then, with --batch-invariance K, each side alone: a few prompts alone and
// among K concurrent streams (batch_invariance.h). Then speed, one side at a
// time (speed.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "bitnet/v1/engine.pb.h"
#include "orchestrator/batch_invariance.h"
#include "orchestrator/engine_client.h"
#include "orchestrator/metrics.h"
#include "orchestrator/progress.h"
#include "orchestrator/prompt_set.h"
#include "orchestrator/speed.h"
#include "orchestrator/thresholds.h"

namespace bitparity {

struct CompareOptions {
  bitnet::v1::EvalMode mode = bitnet::v1::EVAL_MODE_BATCH;
  int jobs = 2;               // prompts in flight
  int top_k = 10;             // top-k overlap
  int max_new_tokens = 16;    // greedy generation per prompt (0 = skip generation)
  bool ignore_eos = true;     // equal-length generations compare more tokens
  bool localize = true;       // EvalTrace on failing prompts
  int trace_prompts = 4;      // at most this many (the worst by drift)
  int trace_positions = 16;   // positions traced per prompt (evenly spaced)
  bool speed = true;
  SpeedOptions speed_options;
  bool allow_model_mismatch = false;  // go on when dimensions/vocab differ
  // A prompt whose call fails UNAVAILABLE or DEADLINE_EXCEEDED (a server
  // restarting, a worker that died) is measured again from the start, up to
  // this many times, after retry_backoff_s, doubling each time.
  int retries = 2;
  double retry_backoff_s = 0.5;
  // others == 0: no batch-invariance check (the default).
  BatchInvarianceOptions batch_invariance;
  Thresholds thresholds;
};

// Per-position measurements of one row pair, as columns (one entry per position).
struct DriftSeries {
  std::vector<int32_t> position, token;
  std::vector<double> max_abs, mean_abs, rms, cosine, kl, topk_overlap, dp_next;
  std::vector<int> top1_agree;
  size_t size() const { return position.size(); }
};

struct TokenizationResult {
  bool checked = false;  // text and chat prompts only
  bool agree = true;
  int n_a = 0, n_b = 0;
  int first_diff = -1;   // first differing index, -1 when equal
  int id_a = -1, id_b = -1;  // the ids there (-1 past the end)
};

struct DriftResult {
  bool measured = false;
  DriftSeries ab;     // A vs B, mode
  DriftSeries noise;  // B other mode vs B mode
  double nll_a = 0, nll_b = 0, nll_noise = 0;
  int n_predicted = 0;  // positions with a next token
  double eval_ms_a = 0, eval_ms_b = 0;
};

struct NearTie {
  int index = -1;
  int32_t token_a = -1, token_b = -1;
  bool b_in_a_top = false, a_in_b_top = false;
  double gap_a = -1, gap_b = -1;  // chosen logit minus the other's token's logit (-1: not in top)
  bool near_tie = false;
};

// Greedy generations of one prompt on both sides, side by side.
struct GenerationComparison {
  bool measured = false;
  std::vector<int32_t> ids_a, ids_b;
  std::string text_a, text_b;
  std::string finish_a, finish_b;
  bool exact_match = false;
  int common_prefix = 0;
  std::optional<NearTie> divergence;
};

struct LayerDiff {
  int layer = 0;             // n_layer = after the final norm
  double rel_diff = 0;       // mean over traced positions of RelativeRmsDiff(A, B)
  double rel_diff_max = 0;
  double noise_rel_diff = 0; // the same for B other mode vs B
  double cosine = 1;         // mean cosine A vs B
  bool diverged = false;     // rel_diff beyond the noise-relative threshold
  double growth = 0;         // max(rel_diff, floor) / max(previous layer's rel_diff, floor)
};

struct Localization {
  std::vector<int32_t> positions;
  std::vector<LayerDiff> layers;
  int first_exceeding_layer = -1;  // first layer past the noise-relative threshold (-1: none)
  int first_diverging_layer = -1;  // where the divergence starts (-1: none found)
  int n_layer = 0;
};

// The outcome of a check. Reports spell it "pass", "fail", "skip", "error", "warn"
// or "info" (CheckStatusName and ParseCheckStatus in report_json.h).
enum class CheckStatus { kPass, kFail, kSkip, kError, kWarn, kInfo };

// A verdict of one check on one prompt.
struct CheckResult {
  CheckStatus status = CheckStatus::kSkip;  // pass | fail | skip | error
  std::vector<std::string> reasons;
};

struct PromptResult {
  Prompt prompt;
  std::vector<int32_t> ids;   // what was evaluated (side A's tokenization)
  int truncated_from = -1;    // original length when cut to fit the context
  std::string error_code, error_message;  // a failed RPC
  TokenizationResult tokenization;
  DriftResult drift;
  GenerationComparison generation;
  std::optional<Localization> localization;
  CheckResult tokenization_check, drift_check, generation_check;
  double drift_noise_ratio = NAN;  // mean|Δ| / noise mean|Δ| (the headline ratio; NaN: not measured)
  double wall_ms = 0;
  int attempts = 1;                        // measurements of this prompt (1 + retries)
  std::vector<std::string> retry_reasons;  // why each earlier attempt failed
};

// What one side's servers went through during a run, and how it was survived.
struct SideResilience {
  int prompt_retries = 0;   // prompts bitparity measured again after this side failed
  int64_t server_retries = 0;  // calls the server ran again on a fresh worker (trailers)
  // GetModelInfo.worker_pool.restarts at the end minus at the start; nullopt
  // when the server runs no worker pool (or did not say).
  std::optional<int64_t> worker_restarts;
};

struct ModelCheck {
  CheckStatus status = CheckStatus::kPass;  // pass | warn | fail
  std::vector<std::string> messages;
};

struct CompareRun {
  Endpoint a, b;
  bitnet::v1::GetModelInfoResponse info_a, info_b;
  ModelCheck model_check;
  std::string prompt_source, prompt_sha256;
  CompareOptions options;
  std::vector<PromptResult> prompts;
  std::optional<SideInvariance> invariance_a, invariance_b;  // with --batch-invariance
  std::optional<SideSpeed> speed_a, speed_b;
  std::string speed_error;
  std::string started_utc;
  double wall_s = 0;
  SideResilience resilience_a, resilience_b;
  bool connection_lost = false;  // a prompt still UNAVAILABLE after its retries
  std::vector<std::string> warnings;
};

// A chat prompt as the contract's ChatMessages (assistant prompt on).
bitnet::v1::ChatMessages ChatOf(const Prompt& prompt);

// The model identity check alone (sha256, dimensions, vocabulary).
ModelCheck CheckModels(const bitnet::v1::GetModelInfoResponse& a, const bitnet::v1::GetModelInfoResponse& b);

// FailedPrecondition when the models differ in shape and !allow_model_mismatch.
absl::StatusOr<CompareRun> RunCompare(EngineClient& a, EngineClient& b, const PromptSet& prompts,
                                      const CompareOptions& options, Progress* progress);

}  // namespace bitparity
