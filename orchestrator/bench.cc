#include "orchestrator/bench.h"

#include <cstdio>
#include <ctime>

#include "orchestrator/compare.h"
#include "orchestrator/host_info.h"
#include "orchestrator/report_json.h"

namespace bitparity {
using nlohmann::json;

namespace {

// Ids from side A's tokenizer, cut to leave `room` for the generated tokens.
absl::StatusOr<std::vector<std::vector<int32_t>>> BenchPrompts(EngineClient& a, const PromptSet& prompts, int room) {
  std::vector<std::vector<int32_t>> load;
  for (const Prompt& p : prompts.prompts) {
    std::vector<int32_t> ids = p.ids;
    if (p.is_text() || p.is_chat()) {
      auto t = p.is_text() ? a.Tokenize(*p.text) : a.TokenizeChat(ChatOf(p));
      if (!t.ok()) return t.status();
      ids = *t;
    }
    if (static_cast<int>(ids.size()) > room) ids.resize(room);
    if (!ids.empty()) load.push_back(std::move(ids));
  }
  if (load.empty()) return absl::InvalidArgumentError("no prompt has any tokens");
  return load;
}

std::string UtcNow() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

int RunBench(EngineClient& a, EngineClient* b, const PromptSet& prompts, const SpeedOptions& o,
             const BenchOutputs& out, const std::string& command_line, Progress* progress) {
  const int max_ctx = a.info().limits().max_context() > 0 ? a.info().limits().max_context()
                                                          : a.info().model().n_ctx_train();
  const int longest_new = std::max({o.max_new_tokens, o.load_max_new_tokens, o.streams ? o.stream_max_new_tokens : 0});
  auto load = BenchPrompts(a, prompts, std::max(1, max_ctx - longest_new));
  if (!load.ok()) {
    std::fprintf(stderr, "bitparity bench: %s\n", std::string(load.status().message()).c_str());
    return 2;
  }
  std::vector<int32_t> longest;
  for (const auto& ids : *load) {
    if (ids.size() > longest.size()) longest = ids;
  }
  int per_side = o.warmup + o.runs;
  for (size_t k = 0; k < o.concurrency.size(); ++k) per_side += o.requests + (o.streams ? o.stream_rounds : 0);
  progress->Begin(b ? "bench (A, then B)" : "bench", per_side * (b ? 2 : 1));
  auto tick = [&] { progress->Advance(); };
  auto sa = MeasureSpeed(a, longest, *load, o, tick);
  absl::StatusOr<SideSpeed> sb = absl::UnknownError("not run");
  if (sa.ok() && b) sb = MeasureSpeed(*b, longest, *load, o, tick);
  progress->End();
  if (!sa.ok() || (b && !sb.ok())) {
    std::fprintf(stderr, "bitparity bench: %s\n", std::string((sa.ok() ? sb.status() : sa.status()).message()).c_str());
    return 2;
  }
  json r;
  r["schema"] = kBenchSchema;
  r["schema_version"] = kBenchSchemaVersion;
  r["created_utc"] = UtcNow();
  r["command"] = command_line;
  r["host"] = HostInfo();
  r["prompt_set"] = {{"source", prompts.source}, {"sha256", prompts.sha256}, {"count", prompts.prompts.size()}};
  r["options"] = {{"runs", o.runs}, {"warmup", o.warmup}, {"max_new_tokens", o.max_new_tokens},
                  {"concurrency", o.concurrency}, {"requests", o.requests},
                  {"load_max_new_tokens", o.load_max_new_tokens}, {"streams", o.streams},
                  {"stream_max_new_tokens", o.stream_max_new_tokens}, {"stream_rounds", o.stream_rounds}};
  r["definitions"] = {
      {"aggregate_decode_tokens_per_s",
       "tokens of all k concurrent streams arriving in the window in which all k are decoding (from the latest "
       "first token to the earliest last token; a token counts when it arrives after the window opens and no later "
       "than it closes), over the window's length; the median over rounds; null when the streams never all decoded "
       "at once"},
      {"per_stream_decode_tokens_per_s", "(tokens - 1) / (last arrival - first arrival) of each stream; the median"},
      {"level_tokens_per_s",
       "every token of a round (prefill waits included) over the round's wall time, from the first call to the last "
       "arrival; the median over rounds; defined even when the server runs the streams one after the other"},
      {"ttft_ms", "first token's arrival minus the call's start, per stream; p50/p99 over streams"},
      {"itl_ms", "gaps between consecutive token arrivals of a stream, pooled over streams; p50/p99"},
      {"scaling",
       "a side's figure at concurrency k over its figure at concurrency 1 (the levels' rounds interleave: round 1 of "
       "every level, then round 2, so a drift in the machine's speed moves all levels alike)"},
      {"ratio_a_over_b", "side A's figure over side B's at the same concurrency"}};
  r["sides"]["a"] = {{"address", a.endpoint().address}, {"info", ProtoToJson(a.info())}, {"speed", SideSpeedToJson(*sa)}};
  if (b) {
    r["sides"]["b"] = {{"address", b->endpoint().address}, {"info", ProtoToJson(b->info())},
                       {"speed", SideSpeedToJson(*sb)}};
    r["ratio_a_over_b"] = SpeedRatios(*sa, *sb);
  }
  std::fputs(RenderBenchText(r).c_str(), stdout);
  std::fflush(stdout);
  const std::pair<const std::string&, std::string (*)(const json&)> files[] = {
      {out.json_path, [](const json& j) { return j.dump(1) + "\n"; }}, {out.html_path, &RenderBenchHtml}};
  int rc = 0;
  for (const auto& [path, render] : files) {
    if (path.empty()) continue;
    if (absl::Status s = WriteTextFile(path, render(r)); !s.ok()) {
      std::fprintf(stderr, "bitparity bench: %s\n", std::string(s.message()).c_str());
      rc = 2;
      continue;
    }
    std::fprintf(stderr, "bitparity bench: wrote %s\n", path.c_str());
  }
  return rc;
}

}  // namespace bitparity
