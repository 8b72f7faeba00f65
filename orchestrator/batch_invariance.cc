#include "orchestrator/batch_invariance.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

namespace bitparity {
namespace v1 = ::bitnet::v1;
using Clock = std::chrono::steady_clock;

namespace {

// Bit-for-bit equality (so -0 differs from +0, and a NaN equals the same NaN).
template <typename T>
bool SameBits(T x, T y) {
  return std::memcmp(&x, &y, sizeof(T)) == 0;
}

template <typename T>
void CompareValue(T x, T y, InvarianceDiff* d, bool* step_differs) {
  d->values_compared++;
  if (SameBits(x, y)) return;
  d->values_differ++;
  *step_differs = true;
  const double drift = std::fabs(static_cast<double>(x) - static_cast<double>(y));
  if (std::isfinite(drift)) d->max_abs_drift = std::max(d->max_abs_drift, drift);
}

// One step's values: the chosen token's logprob, then each alternative's logit
// and logprob matched by id. A value on one side only differs.
bool CompareStep(const v1::GeneratedToken& a, const v1::GeneratedToken& b, InvarianceDiff* d) {
  bool differs = false;
  if (a.has_logprob() && b.has_logprob()) {
    CompareValue(a.logprob(), b.logprob(), d, &differs);
  } else if (a.has_logprob() != b.has_logprob()) {
    d->values_compared++;
    d->values_differ++;
    differs = true;
  }
  std::map<int32_t, const v1::TokenAlternative*> in_b;
  for (const auto& alt : b.top()) in_b[alt.id()] = &alt;
  for (const auto& alt : a.top()) {
    auto it = in_b.find(alt.id());
    if (it == in_b.end()) {
      d->values_compared += 2;
      d->values_differ += 2;
      differs = true;
      continue;
    }
    CompareValue(alt.logit(), it->second->logit(), d, &differs);
    CompareValue(alt.logprob(), it->second->logprob(), d, &differs);
    in_b.erase(it);
  }
  // Alternatives only `b` returned.
  d->values_compared += 2 * static_cast<int64_t>(in_b.size());
  d->values_differ += 2 * static_cast<int64_t>(in_b.size());
  return differs || !in_b.empty();
}

void Note(int step, int* first) {
  if (*first < 0) *first = step;
}

// One concurrent stream around the probe: its token arrivals, and whether it ended.
struct OtherStream {
  std::vector<Clock::time_point> arrivals;
  bool done = false;
  bool failed = false;
};

v1::GenerateRequest Request(const std::vector<int32_t>& ids, int max_new_tokens, int top_n) {
  v1::GenerateRequest req;
  for (int32_t id : ids) req.mutable_input()->mutable_ids()->add_ids(id);
  req.set_max_new_tokens(max_new_tokens);
  req.mutable_sampling()->set_temperature(0);
  req.set_ignore_eos(true);
  if (top_n >= 0) {
    req.set_logprobs(true);
    req.set_top_logprobs(top_n);
  }
  return req;
}

std::vector<v1::GeneratedToken> Tokens(const v1::GenerateResponse& r) { return {r.tokens().begin(), r.tokens().end()}; }

// The probe among `options.others` staggered streams; fills concurrent_tokens.
absl::StatusOr<v1::GenerateResponse> ProbeAmongOthers(EngineClient& client, const v1::GenerateRequest& probe,
                                                      const std::vector<std::vector<int32_t>>& others,
                                                      const BatchInvarianceOptions& o, InvarianceProbe* out) {
  const int k = std::max(0, o.others);
  std::vector<OtherStream> streams(k);
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::thread> pool;
  for (int i = 0; i < k; ++i) {
    pool.emplace_back([&, i] {
      const v1::GenerateRequest req = Request(others[i % others.size()], OtherStreamTokens(o), -1);
      auto r = client.GenerateStream(req, [&](const v1::GeneratedToken&, Clock::time_point t) {
        std::lock_guard<std::mutex> lock(mu);
        streams[i].arrivals.push_back(t);
        cv.notify_all();
      });
      std::lock_guard<std::mutex> lock(mu);
      streams[i].done = true;
      streams[i].failed = !r.ok();
      cv.notify_all();
    });
    // The next stream starts once this one is decoding (or has ended).
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return !streams[i].arrivals.empty() || streams[i].done; });
  }
  Clock::time_point first{}, last{};
  auto r = client.GenerateStream(probe, [&](const v1::GeneratedToken&, Clock::time_point t) {
    if (first == Clock::time_point{}) first = t;
    last = t;
  });
  for (auto& t : pool) t.join();
  for (const OtherStream& s : streams) {
    out->others_failed += s.failed ? 1 : 0;
    for (Clock::time_point t : s.arrivals) out->concurrent_tokens += (t >= first && t <= last) ? 1 : 0;
  }
  return r;
}

}  // namespace

InvarianceDiff DiffGenerations(const std::vector<v1::GeneratedToken>& alone,
                               const std::vector<v1::GeneratedToken>& among) {
  InvarianceDiff d;
  d.steps_alone = static_cast<int>(alone.size());
  d.steps_among = static_cast<int>(among.size());
  const int n = std::min(d.steps_alone, d.steps_among);
  for (int i = 0; i < n; ++i) {
    const bool id_differs = alone[i].id() != among[i].id();
    // Values up to and including the first differing id share one context.
    if (d.first_token_diff < 0 && CompareStep(alone[i], among[i], &d)) Note(i, &d.first_diff_step);
    if (id_differs) {
      d.tokens_differ++;
      Note(i, &d.first_token_diff);
      Note(i, &d.first_diff_step);
    }
  }
  d.tokens_differ += std::abs(d.steps_alone - d.steps_among);
  if (d.steps_alone != d.steps_among) Note(n, &d.first_diff_step);
  return d;
}

int OtherStreamTokens(const BatchInvarianceOptions& o) { return 2 * o.max_new_tokens + 4 * std::max(0, o.others) + 8; }

bool SideInvariance::bit_identical() const {
  for (const auto& p : probes) {
    if (p.error.empty() && !p.diff.identical()) return false;
  }
  return true;
}

bool SideInvariance::exercised() const {
  for (const auto& p : probes) {
    if (!p.error.empty() || p.concurrent_tokens == 0) return false;
  }
  return !probes.empty();
}

int SideInvariance::errors() const {
  int n = 0;
  for (const auto& p : probes) n += p.error.empty() ? 0 : 1;
  return n;
}

SideInvariance MeasureBatchInvariance(EngineClient& client, const std::vector<ProbePrompt>& probes,
                                      const std::vector<std::vector<int32_t>>& others,
                                      const BatchInvarianceOptions& o) {
  SideInvariance side;
  const int top_n = std::max(0, std::min(o.top_n, client.info().limits().max_top_logprobs()));
  for (const ProbePrompt& p : probes) {
    InvarianceProbe probe;
    probe.prompt_id = p.id;
    const v1::GenerateRequest req = Request(p.ids, o.max_new_tokens, top_n);
    auto alone = client.GenerateStream(req, nullptr);
    if (!alone.ok()) {
      probe.error = std::string(alone.status().message());
      side.probes.push_back(std::move(probe));
      continue;
    }
    auto among = ProbeAmongOthers(client, req, others.empty() ? std::vector<std::vector<int32_t>>{p.ids} : others, o,
                                  &probe);
    if (!among.ok()) {
      probe.error = std::string(among.status().message());
    } else {
      probe.diff = DiffGenerations(Tokens(*alone), Tokens(*among));
    }
    side.probes.push_back(std::move(probe));
  }
  return side;
}

nlohmann::json SideInvarianceToJson(const SideInvariance& s) {
  nlohmann::json probes = nlohmann::json::array();
  int64_t tokens_differ = 0, values_differ = 0, values_compared = 0;
  double max_drift = 0;
  for (const auto& p : s.probes) {
    const InvarianceDiff& d = p.diff;
    tokens_differ += d.tokens_differ;
    values_differ += d.values_differ;
    values_compared += d.values_compared;
    max_drift = std::max(max_drift, d.max_abs_drift);
    probes.push_back({{"prompt", p.prompt_id},
                      {"bit_identical", p.error.empty() && d.identical()},
                      {"tokens_alone", d.steps_alone},
                      {"tokens_among", d.steps_among},
                      {"tokens_differ", d.tokens_differ},
                      {"first_token_diff", d.first_token_diff},
                      {"values_compared", d.values_compared},
                      {"values_differ", d.values_differ},
                      {"max_abs_drift", d.max_abs_drift},
                      {"first_diff_step", d.first_diff_step},
                      {"concurrent_tokens", p.concurrent_tokens},
                      {"others_failed", p.others_failed},
                      {"error", p.error.empty() ? nlohmann::json(nullptr) : nlohmann::json(p.error)}});
  }
  return {{"bit_identical", s.bit_identical()},
          {"exercised", s.exercised()},
          {"errors", s.errors()},
          {"tokens_differ", tokens_differ},
          {"values_compared", values_compared},
          {"values_differ", values_differ},
          {"max_abs_drift", max_drift},
          {"probes", probes}};
}

}  // namespace bitparity
