#include "orchestrator/stream_bench.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "orchestrator/metrics.h"

namespace bitparity {
namespace v1 = ::bitnet::v1;
using nlohmann::json;

namespace {

// JSON has no NaN: an undefined figure is null.
json JsonOrNull(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

double Median(std::vector<double> v) { return v.empty() ? NAN : Percentile(std::move(v), 50); }

// The all-decoding window of one round: tokens arriving in (open, close] and
// close - open; false when the window is empty.
bool RoundWindow(const std::vector<StreamTrace>& round, int64_t* tokens, double* seconds) {
  double open = -INFINITY, close = INFINITY;
  int n = 0;
  for (const StreamTrace& s : round) {
    if (!s.ok || s.arrivals_s.empty()) continue;
    open = std::max(open, s.arrivals_s.front());
    close = std::min(close, s.arrivals_s.back());
    ++n;
  }
  if (n == 0 || !(close > open)) return false;
  int64_t count = 0;
  for (const StreamTrace& s : round) {
    if (!s.ok) continue;
    for (double t : s.arrivals_s) count += (t > open && t <= close) ? 1 : 0;
  }
  *tokens = count;
  *seconds = close - open;
  return true;
}

}  // namespace

StreamLevel SummarizeStreams(int concurrency, int max_new_tokens, const std::vector<std::vector<StreamTrace>>& rounds) {
  StreamLevel l;
  l.concurrency = concurrency;
  l.max_new_tokens = max_new_tokens;
  l.rounds = static_cast<int>(rounds.size());
  std::vector<double> aggregate, per_stream, ttft, itl, level;
  for (const auto& round : rounds) {
    double first_start = INFINITY, last_arrival = -INFINITY;
    int64_t round_tokens = 0;
    for (const StreamTrace& s : round) {
      first_start = std::min(first_start, s.start_s);
      ++l.streams;
      if (!s.ok) {
        ++l.failed;
        if (l.first_error.empty()) l.first_error = s.error;
        continue;
      }
      l.tokens += static_cast<int64_t>(s.arrivals_s.size());
      round_tokens += static_cast<int64_t>(s.arrivals_s.size());
      if (!s.arrivals_s.empty()) last_arrival = std::max(last_arrival, s.arrivals_s.back());
      if (static_cast<int>(s.arrivals_s.size()) < max_new_tokens) ++l.short_streams;
      if (s.arrivals_s.empty()) continue;
      ttft.push_back((s.arrivals_s.front() - s.start_s) * 1e3);
      for (size_t i = 1; i < s.arrivals_s.size(); ++i) itl.push_back((s.arrivals_s[i] - s.arrivals_s[i - 1]) * 1e3);
      const double span = s.arrivals_s.back() - s.arrivals_s.front();
      if (s.arrivals_s.size() > 1 && span > 0) per_stream.push_back((s.arrivals_s.size() - 1) / span);
    }
    if (round_tokens > 0 && last_arrival > first_start) level.push_back(round_tokens / (last_arrival - first_start));
    int64_t tokens = 0;
    double seconds = 0;
    if (RoundWindow(round, &tokens, &seconds)) {
      aggregate.push_back(tokens / seconds);
      l.window_tokens += tokens;
      l.window_s += seconds;
      ++l.rounds_with_window;
    }
  }
  l.aggregate_decode_tokens_per_s = Median(aggregate);
  l.per_stream_decode_tokens_per_s = Median(per_stream);
  l.level_tokens_per_s = Median(level);
  if (!ttft.empty()) {
    l.ttft_p50_ms = Percentile(ttft, 50);
    l.ttft_p99_ms = Percentile(ttft, 99);
  }
  if (!itl.empty()) {
    l.itl_p50_ms = Percentile(itl, 50);
    l.itl_p99_ms = Percentile(itl, 99);
  }
  return l;
}

namespace {

// One round: k streams started together; stream i sends prompts[i % prompts.size()].
std::vector<StreamTrace> MeasureStreamRound(EngineClient& client, const std::vector<std::vector<int32_t>>& prompts,
                                            int k, int max_new_tokens) {
  std::vector<StreamTrace> traces(k);
  // Every stream waits at the gate so that they all start together.
  std::mutex mu;
  std::condition_variable cv;
  int ready = 0;
  bool open = false;
  std::chrono::steady_clock::time_point t0;
  auto seconds = [&](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(t - t0).count();
  };
  auto stream = [&](int i) {
    v1::GenerateRequest req;
    for (int32_t id : prompts[i % prompts.size()]) req.mutable_input()->mutable_ids()->add_ids(id);
    req.set_max_new_tokens(max_new_tokens);
    req.mutable_sampling()->set_temperature(0);
    req.set_ignore_eos(true);
    {
      std::unique_lock<std::mutex> lock(mu);
      ++ready;
      cv.notify_all();
      cv.wait(lock, [&] { return open; });
    }
    StreamTrace& tr = traces[i];
    tr.start_s = seconds(std::chrono::steady_clock::now());
    auto resp = client.GenerateStream(req, [&](const v1::GeneratedToken&, std::chrono::steady_clock::time_point t) {
      tr.arrivals_s.push_back(seconds(t));
    });
    tr.ok = resp.ok();
    if (!resp.ok()) tr.error = std::string(resp.status().message());
  };
  std::vector<std::thread> pool;
  for (int i = 0; i < k; ++i) pool.emplace_back(stream, i);
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return ready == k; });
    t0 = std::chrono::steady_clock::now();
    open = true;
    cv.notify_all();
  }
  for (auto& t : pool) t.join();
  return traces;
}

}  // namespace

absl::StatusOr<std::vector<StreamLevel>> MeasureStreamLevels(EngineClient& client,
                                                             const std::vector<std::vector<int32_t>>& prompts,
                                                             const std::vector<int>& concurrency, int max_new_tokens,
                                                             int rounds, const std::function<void()>& tick) {
  if (prompts.empty()) return absl::InvalidArgumentError("streaming bench: no prompts");
  // Round r of every level before round r + 1 of any: a machine whose speed drifts
  // between minutes then moves every level alike, and the scaling stays a
  // same-minutes ratio (one level's rounds back to back put level 1 and level 8 in
  // different minutes, and their ratio moved by 10-20% on a noisy VM).
  std::vector<std::vector<std::vector<StreamTrace>>> all(concurrency.size());
  for (int round = 0; round < std::max(1, rounds); ++round) {
    for (size_t i = 0; i < concurrency.size(); ++i) {
      all[i].push_back(MeasureStreamRound(client, prompts, std::max(1, concurrency[i]), max_new_tokens));
      if (tick) tick();
    }
  }
  std::vector<StreamLevel> levels;
  for (size_t i = 0; i < concurrency.size(); ++i) {
    const int k = std::max(1, concurrency[i]);
    StreamLevel l = SummarizeStreams(k, max_new_tokens, all[i]);
    if (l.failed == l.streams) {
      return absl::UnavailableError(absl::StrCat(client.Describe(), ": every stream at concurrency ", k,
                                                 " failed: ", l.first_error));
    }
    levels.push_back(std::move(l));
  }
  return levels;
}

json StreamLevelToJson(const StreamLevel& l) {
  return {{"concurrency", l.concurrency},
          {"rounds", l.rounds},
          {"streams", l.streams},
          {"failed", l.failed},
          {"max_new_tokens", l.max_new_tokens},
          {"tokens", l.tokens},
          {"short_streams", l.short_streams},
          {"aggregate_decode_tokens_per_s", JsonOrNull(l.aggregate_decode_tokens_per_s)},
          {"window_tokens", l.window_tokens},
          {"window_s", l.window_s},
          {"rounds_with_window", l.rounds_with_window},
          {"per_stream_decode_tokens_per_s", JsonOrNull(l.per_stream_decode_tokens_per_s)},
          {"level_tokens_per_s", JsonOrNull(l.level_tokens_per_s)},
          {"ttft_p50_ms", JsonOrNull(l.ttft_p50_ms)},
          {"ttft_p99_ms", JsonOrNull(l.ttft_p99_ms)},
          {"itl_p50_ms", JsonOrNull(l.itl_p50_ms)},
          {"itl_p99_ms", JsonOrNull(l.itl_p99_ms)},
          {"first_error", l.first_error}};
}

namespace {

json RatioOrNull(double x, double y) { return (y > 0 && std::isfinite(x / y)) ? json(x / y) : json(nullptr); }

// The figures that get a ratio, by JSON name.
const std::vector<std::pair<const char*, double StreamLevel::*>>& RatioFields() {
  static const std::vector<std::pair<const char*, double StreamLevel::*>> f = {
      {"aggregate_decode_tokens_per_s", &StreamLevel::aggregate_decode_tokens_per_s},
      {"per_stream_decode_tokens_per_s", &StreamLevel::per_stream_decode_tokens_per_s},
      {"level_tokens_per_s", &StreamLevel::level_tokens_per_s},
      {"ttft_p50_ms", &StreamLevel::ttft_p50_ms},
      {"ttft_p99_ms", &StreamLevel::ttft_p99_ms},
      {"itl_p50_ms", &StreamLevel::itl_p50_ms},
      {"itl_p99_ms", &StreamLevel::itl_p99_ms}};
  return f;
}

json LevelRatio(const StreamLevel& x, const StreamLevel* y) {
  json j = {{"concurrency", x.concurrency}};
  for (const auto& [name, field] : RatioFields()) j[name] = y ? RatioOrNull(x.*field, y->*field) : json(nullptr);
  return j;
}

}  // namespace

json StreamScaling(const std::vector<StreamLevel>& levels) {
  const StreamLevel* one = nullptr;
  for (const StreamLevel& l : levels) {
    if (l.concurrency == 1) one = &l;
  }
  json j = json::array();
  for (const StreamLevel& l : levels) j.push_back(LevelRatio(l, one));
  return j;
}

json StreamRatios(const std::vector<StreamLevel>& a, const std::vector<StreamLevel>& b) {
  json j = json::array();
  for (const StreamLevel& la : a) {
    for (const StreamLevel& lb : b) {
      if (la.concurrency == lb.concurrency) j.push_back(LevelRatio(la, &lb));
    }
  }
  return j;
}

}  // namespace bitparity
