// bitparity: compare two bitnet.v1 engines and say why they differ.
//   bitparity compare --a HOST:PORT --b HOST:PORT [--prompts FILE] [--json R.json --html R.html ...]
//   bitparity report R.json --html OUT.html
//   bitparity bench --a HOST:PORT [--b HOST:PORT] --concurrency 1,2,4
//   bitparity demo
//   bitparity health HOST:PORT   (0 SERVING, 1 another status, 2 unreachable)
//   bitparity conformance --a HOST:PORT [--json R.json --junit R.xml --html R.html]
//   bitparity chat-templates --a HOST:PORT --b HOST:PORT   (chat template rendering alike?)
//   bitparity compare ... --shard I/N --json S_I.json;  bitparity merge S_0.json ... --json R.json
// Exit codes: 0 the engines agree, 1 they disagree, 2 usage or connection error.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "orchestrator/baseline.h"
#include "orchestrator/bench.h"
#include "orchestrator/chat_compare.h"
#include "orchestrator/compare_command.h"
#include "orchestrator/conformance_report.h"
#include "orchestrator/demo.h"
#include "orchestrator/health.h"
#include "orchestrator/merge.h"
#include "orchestrator/report_json.h"
#include "orchestrator/reports.h"
#include "orchestrator/shard.h"
#include "orchestrator/verdict.h"

namespace {

using namespace bitparity;

struct SideFlags {
  Endpoint e;
  void Add(CLI::App* cmd, const std::string& side, bool required) {
    e.label = side == "a" ? "A" : "B";
    auto* o = cmd->add_option("--" + side, e.address, "side " + e.label + ": server address HOST:PORT, or dns:///NAME:PORT / ipv4:H:P,H:P "
                                                          "(calls balanced round-robin over every address)" +
                                                          (side == "b" ? " (the reference)" : ""));
    if (required) o->required();
    cmd->add_flag("--" + side + "-tls", e.tls, "side " + e.label + ": TLS with the system roots");
    cmd->add_option("--" + side + "-ca", e.ca_file, "side " + e.label + ": PEM CA to verify the server (implies TLS)");
    cmd->add_option("--" + side + "-cert", e.cert_file, "side " + e.label + ": PEM client certificate (mutual TLS)");
    cmd->add_option("--" + side + "-key", e.key_file, "side " + e.label + ": PEM client key (mutual TLS)");
    cmd->add_option("--" + side + "-server-name", e.server_name,
                    "side " + e.label + ": TLS server name to verify (overrides the host)");
  }
};

// A --color or --progress value: "always", or "auto" where the stream is a terminal.
bool WhenOn(const std::string& when, bool is_tty) { return when == "always" || (when == "auto" && is_tty); }

struct CommonRun {
  std::string prompts_file;
  int limit = 0;
  double timeout_s = 300, connect_timeout_s = 10;
  std::string progress = "auto";
  std::string color = "auto";
  void Add(CLI::App* cmd) {
    cmd->add_option("--prompts", prompts_file,
                    "prompt file: JSONL ({\"id\",\"text\"} or {\"id\",\"ids\"}) or plain text (one per line); "
                    "default: the built-in set");
    cmd->add_option("--limit", limit, "use only the first N prompts (0 = all)");
    cmd->add_option("--timeout", timeout_s, "per-RPC deadline in seconds")->capture_default_str();
    cmd->add_option("--connect-timeout", connect_timeout_s, "seconds to wait for each server")->capture_default_str();
    cmd->add_option("--progress", progress, "progress bar on stderr: auto (when a terminal), always, never")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
    cmd->add_option("--color", color, "colored summary: auto, always, never")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->capture_default_str();
  }
  bool ProgressOn() const { return WhenOn(progress, Progress::StderrIsTty()); }
  bool ColorOn() const { return WhenOn(color, isatty(STDOUT_FILENO)); }
  ClientOptions Client() const {
    ClientOptions c;
    c.call_timeout_s = timeout_s;
    c.connect_timeout_s = connect_timeout_s;
    return c;
  }
};

struct CompareFlags {
  std::string mode = "batch";
  std::vector<std::string> sets;
  std::string thresholds_file;
  bool no_speed = false, no_localize = false, stop_at_eos = false, require_batch_invariance = false;
  std::vector<int> concurrency = {2};
  void Add(CLI::App* cmd, CompareOptions* o) {
    cmd->add_option("--mode", mode, "evaluation mode of both sides (the noise floor uses the other)")
        ->check(CLI::IsMember({"batch", "sequential"}))
        ->capture_default_str();
    cmd->add_option("--jobs,-j", o->jobs, "prompts in flight")->capture_default_str();
    cmd->add_option("--top-k", o->top_k, "k of the top-k overlap")->capture_default_str();
    cmd->add_option("--max-new-tokens,-n", o->max_new_tokens, "greedy tokens per prompt (0 = no generation check)")
        ->capture_default_str();
    cmd->add_flag("--stop-at-eos", stop_at_eos, "let generation stop at EOS (default: ignore EOS, equal lengths)");
    cmd->add_flag("--no-localize", no_localize, "skip EvalTrace localization");
    cmd->add_option("--trace-prompts", o->trace_prompts, "failing prompts to trace (the worst first)")
        ->capture_default_str();
    cmd->add_option("--trace-positions", o->trace_positions, "positions traced per prompt")->capture_default_str();
    cmd->add_flag("--no-speed", no_speed, "skip the speed measurement");
    cmd->add_option("--speed-runs", o->speed_options.runs, "timed generations per side")->capture_default_str();
    cmd->add_option("--speed-warmup", o->speed_options.warmup, "untimed generations first")->capture_default_str();
    cmd->add_option("--speed-tokens", o->speed_options.max_new_tokens, "new tokens per timed generation")
        ->capture_default_str();
    cmd->add_option("--concurrency", concurrency, "latency test concurrency levels")->delimiter(',')->capture_default_str();
    cmd->add_option("--requests", o->speed_options.requests, "requests per concurrency level")->capture_default_str();
    cmd->add_option("--batch-invariance", o->batch_invariance.others,
                    "K > 0: per side, generate a few prompts alone, then again among K concurrent streams "
                    "started at staggered times, and compare ids, logits and logprobs bit for bit. Off by default: "
                    "it adds 2 x (1 + K) generations per probe and side, and it answers a property of serving, "
                    "not of the model, so it is a finding (warn) unless --require-batch-invariance")
        ->check(CLI::Range(0, 256))
        ->capture_default_str();
    cmd->add_option("--batch-invariance-prompts", o->batch_invariance.prompts,
                    "probe prompts (the first measured ones); the rest feed the concurrent streams")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    cmd->add_option("--batch-invariance-tokens", o->batch_invariance.max_new_tokens, "greedy tokens per probe")
        ->check(CLI::Range(1, 100000))
        ->capture_default_str();
    cmd->add_flag("--require-batch-invariance", require_batch_invariance,
                  "a side that is not bit-identical among concurrent streams (or not shown to be) fails the "
                  "verdict (the threshold require_batch_invariance=1)");
    cmd->add_option("--thresholds", thresholds_file, "JSON file of thresholds (names as in the report)");
    cmd->add_option("--set", sets, "set a threshold: NAME=VALUE (repeatable; known: " +
                                       absl::StrJoin(Thresholds::Names(), ", ") + ")");
    cmd->add_flag("--allow-model-mismatch", o->allow_model_mismatch, "compare even when the models differ in shape");
    cmd->add_option("--retries", o->retries,
                    "measure a prompt again (with a doubling backoff) when a call fails UNAVAILABLE or "
                    "DEADLINE_EXCEEDED; a prompt still failing makes the verdict ERROR (exit 2)")
        ->check(CLI::Range(0, 100))
        ->capture_default_str();
    cmd->add_option("--retry-backoff", o->retry_backoff_s, "seconds before the first retry of a prompt")
        ->check(CLI::Range(0.0, 600.0))
        ->capture_default_str();
  }
  bool Apply(CompareOptions* o) {
    o->mode = mode == "sequential" ? bitnet::v1::EVAL_MODE_SEQUENTIAL : bitnet::v1::EVAL_MODE_BATCH;
    o->speed = !no_speed;
    o->localize = !no_localize;
    o->ignore_eos = !stop_at_eos;
    o->speed_options.concurrency = concurrency;
    if (!thresholds_file.empty()) {
      if (absl::Status s = o->thresholds.LoadFile(thresholds_file); !s.ok()) {
        std::fprintf(stderr, "bitparity: %s\n", std::string(s.message()).c_str());
        return false;
      }
    }
    for (const auto& a : sets) {
      if (absl::Status s = o->thresholds.SetFromAssignment(a); !s.ok()) {
        std::fprintf(stderr, "bitparity: --set: %s\n", std::string(s.message()).c_str());
        return false;
      }
    }
    if (require_batch_invariance) {
      if (o->batch_invariance.others == 0) {
        std::fprintf(stderr, "bitparity: --require-batch-invariance needs --batch-invariance K (K > 0)\n");
        return false;
      }
      o->thresholds.require_batch_invariance = 1;
    }
    return true;
  }
};

absl::StatusOr<PromptSet> LoadPrompts(const CommonRun& c) {
  absl::StatusOr<PromptSet> p = c.prompts_file.empty() ? DefaultPromptSet() : LoadPromptFile(c.prompts_file);
  if (p.ok()) LimitPrompts(&*p, c.limit);
  return p;
}

// A report file of a version this build reads.
absl::StatusOr<nlohmann::json> ReadReport(const std::string& path) {
  absl::StatusOr<nlohmann::json> r = ReadJsonFile(path);
  absl::Status s = r.ok() ? CheckReportVersion(*r, path) : r.status();
  if (!s.ok()) return s;
  return r;
}

std::string CommandLine(int argc, char** argv) {
  std::vector<std::string> a(argv, argv + argc);
  return absl::StrJoin(a, " ");
}

// Prints "PREFIX: message" on stderr; returns 2, the exit code of usage and connection errors.
int Fail(const char* prefix, const absl::Status& s) {
  std::fprintf(stderr, "%s: %s\n", prefix, std::string(s.message()).c_str());
  return 2;
}

// Each subcommand: Setup adds it and its flags to the app, Run does it once parsed.

struct CompareCommand {
  CLI::App* cmd = nullptr;
  SideFlags a, b;
  CommonRun run;
  CompareOptions options;
  CompareFlags flags;
  OutputOptions out;
  bool quiet = false;
  std::string shard_spec;
  bool no_conformance = false;

  void Setup(CLI::App* app) {
    cmd = app->add_subcommand("compare", "compare two servers (B is the reference)");
    a.Add(cmd, "a", true);
    b.Add(cmd, "b", true);
    run.Add(cmd);
    flags.Add(cmd, &options);
    cmd->add_option("--json", out.json_path, "write the JSON report (schema bitparity.report v1)");
    cmd->add_option("--junit", out.junit_path, "write JUnit XML (one case per prompt and check)");
    cmd->add_option("--html", out.html_path, "write the self-contained HTML report");
    cmd->add_option("--markdown", out.markdown_path, "write a Markdown report");
    cmd->add_option("--baseline", out.baseline_path, "an earlier JSON report: flag drift and speed regressions");
    cmd->add_flag("--quiet,-q", quiet, "no summary table on stdout");
    cmd->add_option("--shard", shard_spec,
                    "run shard I of N (0-based, e.g. 0/4): the prompts whose id hashes to I; "
                    "join the shards' --json reports with `bitparity merge`");
    cmd->add_flag("--no-conformance", no_conformance,
                  "skip the required conformance checks run on both sides first (bitparity conformance)");
  }

  int Run(const std::string& command_line) {
    if (!flags.Apply(&options)) return 2;
    auto prompts = LoadPrompts(run);
    if (!prompts.ok()) return Fail("bitparity", prompts.status());
    if (!shard_spec.empty()) {
      if (absl::Status s = KeepShard(&*prompts); !s.ok()) return Fail("bitparity", s);
    }
    auto ca = EngineClient::Connect(a.e, run.Client());
    if (!ca.ok()) return Fail("bitparity", ca.status());
    auto cb = EngineClient::Connect(b.e, run.Client());
    if (!cb.ok()) return Fail("bitparity", cb.status());
    // A side that does not keep the contract, or whose answers contradict each
    // other, is refused before it is compared.
    ConformanceOptions conformance;
    conformance.unavailable_retries = options.retries;
    for (EngineClient* side : {ca->get(), cb->get()}) {
      if (no_conformance) break;
      if (absl::Status s = RequireConformance(*side, conformance); !s.ok()) return Fail("bitparity", s);
    }
    out.color = run.ColorOn();
    out.summary = !quiet;
    Progress progress(run.ProgressOn());
    return CompareAndReport(**ca, **cb, *prompts, options, out, command_line, &progress);
  }

  // --shard I/N: keeps this shard's prompts; the report records the split for `merge`.
  absl::Status KeepShard(PromptSet* prompts) {
    auto shard = ParseShard(shard_spec);
    if (!shard.ok()) return shard.status();
    out.shard = ApplyShard(prompts, *shard);
    std::fprintf(stderr, "bitparity: shard %d/%d: %zu of %d prompts\n", shard->index, shard->count,
                 prompts->prompts.size(), out.shard["total_prompts"].get<int>());
    return absl::OkStatus();
  }
};

struct HealthCommand {
  CLI::App* cmd = nullptr;
  std::string address, service;
  double timeout_s = 5;
  bool quiet = false;

  void Setup(CLI::App* app) {
    cmd = app->add_subcommand("health", "grpc.health.v1 check of one server (container health checks)");
    cmd->add_option("ADDR", address, "server address HOST:PORT")->required();
    cmd->add_option("--service", service, "service name to check (default: the server as a whole)");
    cmd->add_option("--timeout", timeout_s, "seconds to wait for the answer")->capture_default_str();
    cmd->add_flag("--quiet,-q", quiet, "print nothing");
  }

  int Run() const { return RunHealthProbe(address, service, timeout_s, quiet); }
};

struct MergeCommand {
  CLI::App* cmd = nullptr;
  std::vector<std::string> inputs;
  OutputOptions out;
  bool quiet = false;
  std::string color = "auto";

  void Setup(CLI::App* app) {
    cmd = app->add_subcommand("merge", "join the JSON reports of compare --shard I/N into one report");
    cmd->add_option("REPORTS", inputs, "the shards' JSON reports (all N, any order)")->required();
    cmd->add_option("--json", out.json_path, "write the merged JSON report");
    cmd->add_option("--junit", out.junit_path, "write JUnit XML");
    cmd->add_option("--html", out.html_path, "write the HTML report");
    cmd->add_option("--markdown", out.markdown_path, "write a Markdown report");
    cmd->add_option("--baseline", out.baseline_path, "an earlier JSON report: flag drift and speed regressions");
    cmd->add_flag("--quiet,-q", quiet, "no summary table on stdout");
    cmd->add_option("--color", color, "colored summary: auto, always, never")
        ->check(CLI::IsMember({"auto", "always", "never"}));
  }

  int Run(const std::string& command_line) const {
    std::vector<nlohmann::json> reports;
    for (const std::string& path : inputs) {
      auto r = ReadReport(path);
      if (!r.ok()) return Fail("bitparity merge", r.status());
      reports.push_back(std::move(*r));
    }
    nlohmann::json old;
    if (!out.baseline_path.empty()) {
      auto b = ReadReport(out.baseline_path);
      if (!b.ok()) return Fail("bitparity merge: --baseline", b.status());
      old = std::move(*b);
    }
    // Shards that pass the version check may still lack fields; nlohmann::json throws then.
    try {
      return MergeAndReport(reports, old, command_line);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bitparity merge: a report is incomplete: %s\n", e.what());
      return 2;
    }
  }

  int MergeAndReport(const std::vector<nlohmann::json>& reports, const nlohmann::json& old,
                     const std::string& command_line) const {
    auto merged = MergeShardReports(reports, inputs, command_line);
    if (!merged.ok()) return Fail("bitparity merge", merged.status());
    nlohmann::json& r = *merged;
    if (!out.baseline_path.empty()) {
      Thresholds t;
      (void)t.MergeJson(r["thresholds"]);  // checked by MergeShardReports
      ApplyBaseline(&r, old, out.baseline_path, t);
    }
    FinalizeVerdict(&r);
    const bool wrote = WriteOutputs(r, out);
    if (!quiet) std::fputs(RenderText(r, WhenOn(color, isatty(STDOUT_FILENO))).c_str(), stdout);
    std::fflush(stdout);
    const int code = r["verdict"]["exit_code"].get<int>();
    return wrote ? code : std::max(code, 2);
  }
};

struct ReportCommand {
  CLI::App* cmd = nullptr;
  std::string input;
  OutputOptions out;
  bool text = false;

  void Setup(CLI::App* app) {
    cmd = app->add_subcommand("report", "re-render a JSON report");
    cmd->add_option("RUN", input, "a JSON report from compare --json")->required();
    cmd->add_option("--html", out.html_path, "write the HTML report");
    cmd->add_option("--markdown", out.markdown_path, "write a Markdown report");
    cmd->add_option("--junit", out.junit_path, "write JUnit XML");
    cmd->add_flag("--text", text, "print the summary table");
  }

  int Run() const {
    // A report that passes the version check but was edited by hand may still lack
    // fields the renderers read; nlohmann::json throws then, caught below.
    try {
      auto r = ReadReport(input);
      if (!r.ok()) return Fail("bitparity report", r.status());
      if (!r->contains("verdict")) FinalizeVerdict(&*r);
      const bool no_files = out.html_path.empty() && out.markdown_path.empty() && out.junit_path.empty();
      if (!WriteOutputs(*r, out)) return 2;
      if (text || no_files) std::fputs(RenderText(*r, isatty(STDOUT_FILENO)).c_str(), stdout);
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bitparity report: '%s' is not a complete report: %s\n", input.c_str(), e.what());
      return 2;
    }
  }
};

struct BenchCommand {
  CLI::App* cmd = nullptr;
  SideFlags a, b;
  CommonRun run;
  SpeedOptions options;
  BenchOutputs out;
  bool no_streams = false;

  void Setup(CLI::App* app) {
    cmd = app->add_subcommand(
        "bench",
        "speed alone, at several concurrency levels. Per level and side, k GenerateStream calls start together "
        "(greedy, ignore_eos, --stream-tokens each) and the arrival of every token is timed: aggregate decode "
        "tokens/s = the tokens of all k streams arriving while all k are decoding (from the latest first token to "
        "the earliest last token) over that window's length (n/a when the streams never all decoded at once); "
        "per-stream decode tokens/s = (tokens - 1) / (last - first arrival), the median; TTFT = first arrival - "
        "call start, p50/p99; inter-token latency = gaps between a stream's arrivals, p50/p99. Scaling: each "
        "figure at level k over level 1; A/B: side A over side B at each level");
    a.Add(cmd, "a", true);
    b.Add(cmd, "b", false);
    run.Add(cmd);
    options.concurrency = {1, 2, 4};  // before the option captures it as the default
    options.streams = true;
    options.stream_rounds = 2;
    cmd->add_option("--concurrency", options.concurrency, "concurrency levels (include 1 for the scaling)")
        ->delimiter(',')
        ->check(CLI::Range(1, 1024))
        ->capture_default_str();
    cmd->add_option("--requests", options.requests, "Generate requests per level (request latency; 0 skips it)")
        ->check(CLI::Range(0, 1000000))
        ->capture_default_str();
    cmd->add_option("--runs", options.runs, "timed single generations")->capture_default_str();
    cmd->add_option("--warmup", options.warmup, "untimed generations first")->capture_default_str();
    cmd->add_option("--max-new-tokens,-n", options.max_new_tokens, "new tokens per timed generation")
        ->capture_default_str();
    cmd->add_option("--load-new-tokens", options.load_max_new_tokens, "new tokens per load request")
        ->capture_default_str();
    cmd->add_option("--stream-tokens", options.stream_max_new_tokens, "new tokens per concurrent stream")
        ->check(CLI::Range(2, 1000000))
        ->capture_default_str();
    cmd->add_option("--stream-rounds", options.stream_rounds, "rounds of k concurrent streams per level")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    cmd->add_flag("--no-streams", no_streams, "skip the concurrent streaming measurement");
    cmd->add_option("--json", out.json_path, "write the results as JSON (schema bitparity.bench v1)");
    cmd->add_option("--html", out.html_path, "write a self-contained HTML page (throughput against concurrency)");
  }

  int Run(const std::string& command_line) {
    if (no_streams) options.streams = false;
    auto prompts = LoadPrompts(run);
    if (!prompts.ok()) return Fail("bitparity bench", prompts.status());
    auto ca = EngineClient::Connect(a.e, run.Client());
    if (!ca.ok()) return Fail("bitparity bench", ca.status());
    std::unique_ptr<EngineClient> cb;  // side B is optional
    if (!b.e.address.empty()) {
      auto bo = EngineClient::Connect(b.e, run.Client());
      if (!bo.ok()) return Fail("bitparity bench", bo.status());
      cb = std::move(*bo);
    }
    Progress progress(run.ProgressOn());
    return RunBench(**ca, cb.get(), *prompts, options, out, command_line, &progress);
  }
};

struct ConformanceCommand {
  CLI::App* cmd = nullptr;
  SideFlags a;
  double connect_timeout_s = 10;
  std::string json_path, junit_path, html_path;
  bool quiet = false;

  void Setup(CLI::App* app) {
    cmd = app->add_subcommand("conformance", "check that one bitnet.v1 server keeps the contract and is consistent "
                                             "(exit 0 when every required check passes, 1 when one fails)");
    a.Add(cmd, "a", true);
    cmd->add_option("--connect-timeout", connect_timeout_s, "seconds to wait for the server")->capture_default_str();
    cmd->add_option("--json", json_path, "write the JSON report (schema bitparity.conformance v1)");
    cmd->add_option("--junit", junit_path, "write JUnit XML (one case per check)");
    cmd->add_option("--html", html_path, "write the self-contained HTML report");
    cmd->add_flag("--quiet,-q", quiet, "no report on stdout");
  }

  int Run() {
    ClientOptions c;
    c.connect_timeout_s = connect_timeout_s;
    a.e.label = "";
    auto client = EngineClient::Connect(a.e, c);
    if (!client.ok()) return Fail("bitparity conformance", client.status());
    const nlohmann::json r = ConformanceJson(RunConformance(**client, {}));
    int rc = r["conforms"].get<bool>() ? 0 : 1;
    const std::pair<const std::string&, std::string (*)(const nlohmann::json&)> files[] = {
        {json_path, [](const nlohmann::json& j) { return j.dump(1) + "\n"; }},
        {junit_path, &RenderConformanceJUnit},
        {html_path, &RenderConformanceHtml}};
    for (const auto& [path, render] : files) {
      if (path.empty()) continue;
      if (absl::Status s = WriteTextFile(path, render(r)); !s.ok()) rc = Fail("bitparity conformance", s);
    }
    if (!quiet) std::fputs(RenderConformanceText(r).c_str(), stdout);
    return rc;
  }
};

struct ChatTemplatesCommand {
  CLI::App* cmd = nullptr;
  SideFlags a, b;
  double timeout_s = 30, connect_timeout_s = 10;

  void Setup(CLI::App* app) {
    cmd = app->add_subcommand("chat-templates",
                              "do two servers render chat conversations alike (ApplyChatTemplate with the "
                              "model's own and every built-in template; exit 0 alike, 1 different)");
    a.Add(cmd, "a", true);
    b.Add(cmd, "b", true);
    cmd->add_option("--timeout", timeout_s, "per-RPC deadline in seconds")->capture_default_str();
    cmd->add_option("--connect-timeout", connect_timeout_s, "seconds to wait for each server")->capture_default_str();
  }

  int Run() const {
    ClientOptions c;
    c.call_timeout_s = timeout_s;
    c.connect_timeout_s = connect_timeout_s;
    auto ca = EngineClient::Connect(a.e, c);
    if (!ca.ok()) return Fail("bitparity chat-templates", ca.status());
    auto cb = EngineClient::Connect(b.e, c);
    if (!cb.ok()) return Fail("bitparity chat-templates", cb.status());
    const ChatCompareResult r = CompareChatTemplates(**ca, **cb);
    std::fputs(RenderChatCompare(r).c_str(), stdout);
    return r.different == 0 ? 0 : 1;
  }
};

struct DemoCommand {
  CLI::App* cmd = nullptr;
  DemoOptions options;
  CompareFlags flags;
  std::string progress = "auto", color = "auto";

  void Setup(CLI::App* app) {
    cmd = app->add_subcommand("demo", "start two servers on a small model and compare them");
    cmd->add_option("--cache-dir", options.cache_dir, "model cache (default $XDG_CACHE_HOME/bitparity)");
    cmd->add_option("--out-dir", options.out_dir, "where the reports go (default <cache-dir>/demo)");
    cmd->add_option("--model", options.model, "use this GGUF instead of the synth model");
    cmd->add_option("--bin-dir", options.bin_dir, "where the server binaries are (default: next to bitparity)");
    cmd->add_option("--server-threads", options.server_threads, "kernel threads per server (0 = their default)");
    cmd->add_option("--limit", options.prompts, "use only the first N built-in prompts");
    cmd->add_option("--progress", progress, "auto, always, never")->check(CLI::IsMember({"auto", "always", "never"}));
    cmd->add_option("--color", color, "auto, always, never")->check(CLI::IsMember({"auto", "always", "never"}));
    flags.Add(cmd, &options.compare);
  }

  int Run(const std::string& command_line) {
    if (!flags.Apply(&options.compare)) return 2;
    options.color = WhenOn(color, isatty(STDOUT_FILENO));
    Progress bar(WhenOn(progress, Progress::StderrIsTty()));
    return RunDemo(options, command_line, &bar);
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bitparity: compare two bitnet.v1 engines and say why they differ.\n"
               "Exit codes: 0 agree, 1 disagree, 2 usage or connection error."};
  app.require_subcommand(1);
  CompareCommand compare;
  HealthCommand health;
  MergeCommand merge;
  ReportCommand report;
  BenchCommand bench;
  DemoCommand demo;
  ConformanceCommand conformance;
  ChatTemplatesCommand chat_templates;
  compare.Setup(&app);  // in this order in --help
  conformance.Setup(&app);
  chat_templates.Setup(&app);
  health.Setup(&app);
  merge.Setup(&app);
  report.Setup(&app);
  bench.Setup(&app);
  demo.Setup(&app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  const std::string command_line = CommandLine(argc, argv);
  if (*compare.cmd) return compare.Run(command_line);
  if (*report.cmd) return report.Run();
  if (*conformance.cmd) return conformance.Run();
  if (*chat_templates.cmd) return chat_templates.Run();
  if (*health.cmd) return health.Run();
  if (*merge.cmd) return merge.Run(command_line);
  if (*bench.cmd) return bench.Run(command_line);
  if (*demo.cmd) return demo.Run(command_line);
  return 2;
}
