#include "orchestrator/speed.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <numeric>
#include <thread>

#include "absl/strings/str_cat.h"
#include "orchestrator/metrics.h"

namespace bitparity {
namespace v1 = ::bitnet::v1;

namespace {

v1::GenerateRequest SpeedRequest(const std::vector<int32_t>& ids, int max_new_tokens) {
  v1::GenerateRequest req;
  for (int32_t id : ids) req.mutable_input()->mutable_ids()->add_ids(id);
  req.set_max_new_tokens(max_new_tokens);
  req.mutable_sampling()->set_temperature(0);
  // A fixed length, so that every run decodes the same number of tokens.
  req.set_ignore_eos(true);
  return req;
}

double Ms(std::chrono::steady_clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

Spread MakeSpread(std::vector<double> runs) {
  Spread s;
  s.runs = runs;
  if (runs.empty()) return s;
  s.median = Percentile(runs, 50);
  s.min = *std::min_element(runs.begin(), runs.end());
  s.max = *std::max_element(runs.begin(), runs.end());
  s.mean = std::accumulate(runs.begin(), runs.end(), 0.0) / runs.size();
  double ss = 0;
  for (double r : runs) ss += (r - s.mean) * (r - s.mean);
  s.stdev = runs.size() > 1 ? std::sqrt(ss / (runs.size() - 1)) : 0;
  return s;
}

absl::StatusOr<SideSpeed> MeasureSpeed(EngineClient& client, const std::vector<int32_t>& prompt,
                                       const std::vector<std::vector<int32_t>>& load_prompts,
                                       const SpeedOptions& o, const std::function<void()>& tick) {
  SideSpeed out;
  out.prompt_tokens = static_cast<int>(prompt.size());
  std::vector<double> prefill, decode, ttft, server_ttft, total;
  const v1::GenerateRequest req = SpeedRequest(prompt, o.max_new_tokens);
  for (int r = 0; r < o.warmup + o.runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point first{};
    auto resp = client.GenerateStream(req, [&](const v1::GeneratedToken&, std::chrono::steady_clock::time_point t) {
      if (first == std::chrono::steady_clock::time_point{}) first = t;
    });
    const auto t1 = std::chrono::steady_clock::now();
    if (!resp.ok()) return resp.status();
    if (tick) tick();
    if (r < o.warmup) continue;
    prefill.push_back(resp->timings().prefill_tokens_per_s());
    decode.push_back(resp->timings().decode_tokens_per_s());
    server_ttft.push_back(resp->timings().time_to_first_token_ms());
    ttft.push_back(Ms(first - t0));
    total.push_back(Ms(t1 - t0));
  }
  out.prefill_tokens_per_s = MakeSpread(prefill);
  out.decode_tokens_per_s = MakeSpread(decode);
  out.ttft_ms = MakeSpread(ttft);
  out.server_ttft_ms = MakeSpread(server_ttft);
  out.total_ms = MakeSpread(total);

  for (int conc : o.requests > 0 ? o.concurrency : std::vector<int>{}) {
    LoadResult lr;
    lr.concurrency = conc;
    lr.requests = o.requests;
    std::vector<double> lat;
    std::mutex mu;
    std::atomic<int> next{0};
    std::atomic<int64_t> tokens{0};
    const auto w0 = std::chrono::steady_clock::now();
    auto worker = [&] {
      for (int i = next++; i < o.requests; i = next++) {
        const auto& ids = load_prompts.empty() ? prompt : load_prompts[i % load_prompts.size()];
        const auto t0 = std::chrono::steady_clock::now();
        auto resp = client.Generate(SpeedRequest(ids, o.load_max_new_tokens));
        const double ms = Ms(std::chrono::steady_clock::now() - t0);
        {
          std::lock_guard<std::mutex> lock(mu);
          if (resp.ok()) {
            lat.push_back(ms);
            tokens += resp->ids_size();
          } else {
            lr.failed++;
            if (lr.first_error.empty()) lr.first_error = std::string(resp.status().message());
          }
        }
        if (tick) tick();
      }
    };
    std::vector<std::thread> pool;
    for (int c = 0; c < std::max(1, conc); ++c) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
    lr.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    if (!lat.empty()) {
      lr.p50_ms = Percentile(lat, 50);
      lr.p95_ms = Percentile(lat, 95);
      lr.p99_ms = Percentile(lat, 99);
      lr.mean_ms = std::accumulate(lat.begin(), lat.end(), 0.0) / lat.size();
    }
    lr.requests_per_s = lr.wall_s > 0 ? lat.size() / lr.wall_s : 0;
    lr.tokens_per_s = lr.wall_s > 0 ? tokens.load() / lr.wall_s : 0;
    if (lr.failed > 0 && lat.empty()) {
      return absl::UnavailableError(absl::StrCat(client.Describe(), ": every request of the load at concurrency ",
                                                 conc, " failed: ", lr.first_error));
    }
    out.load.push_back(lr);
  }
  if (o.streams && !o.concurrency.empty()) {
    auto levels =
        MeasureStreamLevels(client, load_prompts.empty() ? std::vector<std::vector<int32_t>>{prompt} : load_prompts,
                            o.concurrency, o.stream_max_new_tokens, o.stream_rounds, tick);
    if (!levels.ok()) return levels.status();
    out.streams = std::move(*levels);
  }
  return out;
}

nlohmann::json SpreadToJson(const Spread& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"mean", s.mean}, {"stdev", s.stdev}, {"runs", s.runs}};
}

nlohmann::json SideSpeedToJson(const SideSpeed& s) {
  nlohmann::json j;
  j["prompt_tokens"] = s.prompt_tokens;
  j["prefill_tokens_per_s"] = SpreadToJson(s.prefill_tokens_per_s);
  j["decode_tokens_per_s"] = SpreadToJson(s.decode_tokens_per_s);
  j["ttft_ms"] = SpreadToJson(s.ttft_ms);
  j["server_ttft_ms"] = SpreadToJson(s.server_ttft_ms);
  j["total_ms"] = SpreadToJson(s.total_ms);
  j["load"] = nlohmann::json::array();
  for (const auto& l : s.load) {
    j["load"].push_back({{"concurrency", l.concurrency}, {"requests", l.requests}, {"failed", l.failed},
                         {"p50_ms", l.p50_ms}, {"p95_ms", l.p95_ms}, {"p99_ms", l.p99_ms}, {"mean_ms", l.mean_ms},
                         {"wall_s", l.wall_s}, {"requests_per_s", l.requests_per_s},
                         {"tokens_per_s", l.tokens_per_s}, {"first_error", l.first_error}});
  }
  if (!s.streams.empty()) {
    j["streams"] = nlohmann::json::array();
    for (const auto& l : s.streams) j["streams"].push_back(StreamLevelToJson(l));
    j["scaling"] = StreamScaling(s.streams);
  }
  return j;
}

nlohmann::json SpeedRatios(const SideSpeed& a, const SideSpeed& b) {
  auto ratio = [](double x, double y) -> nlohmann::json {
    if (y > 0 && std::isfinite(x / y)) return x / y;
    return nullptr;
  };
  nlohmann::json j;
  j["prefill_tokens_per_s"] = ratio(a.prefill_tokens_per_s.median, b.prefill_tokens_per_s.median);
  j["decode_tokens_per_s"] = ratio(a.decode_tokens_per_s.median, b.decode_tokens_per_s.median);
  j["ttft_ms"] = ratio(a.ttft_ms.median, b.ttft_ms.median);
  j["load_p50_ms"] = nlohmann::json::array();
  for (const auto& la : a.load) {
    for (const auto& lb : b.load) {
      if (la.concurrency == lb.concurrency) {
        j["load_p50_ms"].push_back({{"concurrency", la.concurrency}, {"ratio", ratio(la.p50_ms, lb.p50_ms)}});
      }
    }
  }
  if (!a.streams.empty() && !b.streams.empty()) j["streams"] = StreamRatios(a.streams, b.streams);
  return j;
}

}  // namespace bitparity
