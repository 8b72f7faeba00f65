#include "orchestrator/bench.h"

#include <cstdio>
#include <ctime>

#include "fmt/format.h"
#include "orchestrator/compare.h"
#include "orchestrator/host_info.h"
#include "orchestrator/report_json.h"
#include "orchestrator/reports.h"

namespace bitparity {
using nlohmann::json;

int RunBench(EngineClient& a, EngineClient* b, const PromptSet& prompts, const SpeedOptions& o,
             const std::string& json_path, const std::string& command_line, Progress* progress) {
  // Ids from side A's tokenizer, cut to leave room for the generated tokens.
  std::vector<std::vector<int32_t>> load;
  std::vector<int32_t> longest;
  const int max_ctx = a.info().limits().max_context() > 0 ? a.info().limits().max_context()
                                                          : a.info().model().n_ctx_train();
  const int room = std::max(1, max_ctx - std::max(o.max_new_tokens, o.load_max_new_tokens));
  for (const Prompt& p : prompts.prompts) {
    std::vector<int32_t> ids = p.ids;
    if (p.is_text()) {
      auto t = a.Tokenize(*p.text);
      if (!t.ok()) {
        std::fprintf(stderr, "bitparity bench: %s\n", std::string(t.status().message()).c_str());
        return 2;
      }
      ids = *t;
    } else if (p.is_chat()) {
      auto t = a.TokenizeChat(ChatOf(p));
      if (!t.ok()) {
        std::fprintf(stderr, "bitparity bench: %s\n", std::string(t.status().message()).c_str());
        return 2;
      }
      ids = *t;
    }
    if (static_cast<int>(ids.size()) > room) ids.resize(room);
    if (ids.empty()) continue;
    if (ids.size() > longest.size()) longest = ids;
    load.push_back(std::move(ids));
  }
  int per_side = o.warmup + o.runs;
  for (size_t k = 0; k < o.concurrency.size(); ++k) per_side += o.requests;
  progress->Begin(b ? "bench (A, then B)" : "bench", per_side * (b ? 2 : 1));
  auto tick = [&] { progress->Advance(); };
  auto sa = MeasureSpeed(a, longest, load, o, tick);
  absl::StatusOr<SideSpeed> sb = absl::UnknownError("not run");
  if (sa.ok() && b) sb = MeasureSpeed(*b, longest, load, o, tick);
  progress->End();
  if (!sa.ok() || (b && !sb.ok())) {
    std::fprintf(stderr, "bitparity bench: %s\n", std::string((sa.ok() ? sb.status() : sa.status()).message()).c_str());
    return 2;
  }
  json r;
  r["schema"] = "bitparity.bench";
  r["schema_version"] = 1;
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  r["created_utc"] = buf;
  r["command"] = command_line;
  r["host"] = HostInfo();
  r["prompt_set"] = {{"source", prompts.source}, {"sha256", prompts.sha256}, {"count", prompts.prompts.size()}};
  r["options"] = {{"runs", o.runs}, {"warmup", o.warmup}, {"max_new_tokens", o.max_new_tokens},
                  {"concurrency", o.concurrency}, {"requests", o.requests},
                  {"load_max_new_tokens", o.load_max_new_tokens}};
  r["sides"]["a"] = {{"address", a.endpoint().address}, {"info", ProtoToJson(a.info())}, {"speed", SideSpeedToJson(*sa)}};
  if (b) {
    r["sides"]["b"] = {{"address", b->endpoint().address}, {"info", ProtoToJson(b->info())},
                       {"speed", SideSpeedToJson(*sb)}};
    r["ratio_a_over_b"] = SpeedRatios(*sa, *sb);
  }
  std::printf("bitparity bench: timed prompt %d tokens, %d new tokens, %d runs after %d warm-up\n",
              sa->prompt_tokens, o.max_new_tokens, o.runs, o.warmup);
  auto row = [&](const char* side, const SideSpeed& s, const std::string& addr) {
    std::printf("side %s %s\n", side, addr.c_str());
    std::printf("  prefill %s tok/s (min %s, max %s)  decode %s tok/s (min %s, max %s)  TTFT %s ms\n",
                Fig(s.prefill_tokens_per_s.median).c_str(), Fig(s.prefill_tokens_per_s.min).c_str(),
                Fig(s.prefill_tokens_per_s.max).c_str(), Fig(s.decode_tokens_per_s.median).c_str(),
                Fig(s.decode_tokens_per_s.min).c_str(), Fig(s.decode_tokens_per_s.max).c_str(),
                Fig(s.ttft_ms.median).c_str());
    std::printf("  %-12s %10s %10s %10s %10s %12s %7s\n", "concurrency", "p50 ms", "p95 ms", "p99 ms", "req/s",
                "tokens/s", "failed");
    for (const auto& l : s.load) {
      std::printf("  %-12d %10s %10s %10s %10s %12s %7d\n", l.concurrency, Fig(l.p50_ms).c_str(),
                  Fig(l.p95_ms).c_str(), Fig(l.p99_ms).c_str(), Fig(l.requests_per_s).c_str(),
                  Fig(l.tokens_per_s).c_str(), l.failed);
    }
  };
  row("A", *sa, a.endpoint().address);
  if (b) {
    row("B", *sb, b->endpoint().address);
    const json& ratio = r["ratio_a_over_b"];
    std::printf("A/B: prefill %s, decode %s, TTFT %s\n", Fig(ratio["prefill_tokens_per_s"], 3).c_str(),
                Fig(ratio["decode_tokens_per_s"], 3).c_str(), Fig(ratio["ttft_ms"], 3).c_str());
  }
  if (!json_path.empty()) {
    absl::Status s = WriteTextFile(json_path, r.dump(1) + "\n");
    if (!s.ok()) {
      std::fprintf(stderr, "bitparity bench: %s\n", std::string(s.message()).c_str());
      return 2;
    }
    std::fprintf(stderr, "bitparity bench: wrote %s\n", json_path.c_str());
  }
  return 0;
}

}  // namespace bitparity
