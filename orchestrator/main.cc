// bitparity: compare two bitnet.v1 engines and say why they differ.
//   bitparity compare --a HOST:PORT --b HOST:PORT [--prompts FILE] [--json R.json --html R.html ...]
//   bitparity report R.json --html OUT.html
//   bitparity bench --a HOST:PORT [--b HOST:PORT] --concurrency 1,2,4
//   bitparity demo
//   bitparity health HOST:PORT   (0 SERVING, 1 another status, 2 unreachable)
//   bitparity compare ... --shard I/N --json S_I.json;  bitparity merge S_0.json ... --json R.json
// Exit codes: 0 the engines agree, 1 they disagree, 2 usage or connection error.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_join.h"
#include "orchestrator/baseline.h"
#include "orchestrator/bench.h"
#include "orchestrator/compare_command.h"
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
  bool ProgressOn() const { return progress == "always" || (progress == "auto" && Progress::StderrIsTty()); }
  bool ColorOn() const { return color == "always" || (color == "auto" && isatty(STDOUT_FILENO)); }
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
  bool no_speed = false, no_localize = false, stop_at_eos = false;
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
    cmd->add_option("--thresholds", thresholds_file, "JSON file of thresholds (names as in the report)");
    cmd->add_option("--set", sets, "set a threshold: NAME=VALUE (repeatable; known: " +
                                       absl::StrJoin(Thresholds::Names(), ", ") + ")");
    cmd->add_flag("--allow-model-mismatch", o->allow_model_mismatch, "compare even when the models differ in shape");
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
    return true;
  }
};

absl::StatusOr<PromptSet> LoadPrompts(const CommonRun& c) {
  absl::StatusOr<PromptSet> p = c.prompts_file.empty() ? DefaultPromptSet() : LoadPromptFile(c.prompts_file);
  if (p.ok()) LimitPrompts(&*p, c.limit);
  return p;
}

std::string CommandLine(int argc, char** argv) {
  std::vector<std::string> a(argv, argv + argc);
  return absl::StrJoin(a, " ");
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bitparity: compare two bitnet.v1 engines and say why they differ.\n"
               "Exit codes: 0 agree, 1 disagree, 2 usage or connection error."};
  app.require_subcommand(1);
  const std::string cmdline = CommandLine(argc, argv);

  // compare
  CLI::App* compare = app.add_subcommand("compare", "compare two servers (B is the reference)");
  SideFlags ca, cb;
  ca.Add(compare, "a", true);
  cb.Add(compare, "b", true);
  CommonRun crun;
  crun.Add(compare);
  CompareOptions copt;
  CompareFlags cflags;
  cflags.Add(compare, &copt);
  OutputOptions cout_;
  compare->add_option("--json", cout_.json_path, "write the JSON report (schema bitparity.report v1)");
  compare->add_option("--junit", cout_.junit_path, "write JUnit XML (one case per prompt and check)");
  compare->add_option("--html", cout_.html_path, "write the self-contained HTML report");
  compare->add_option("--markdown", cout_.markdown_path, "write a Markdown report");
  compare->add_option("--baseline", cout_.baseline_path, "an earlier JSON report: flag drift and speed regressions");
  bool quiet = false;
  compare->add_flag("--quiet,-q", quiet, "no summary table on stdout");
  std::string shard_spec;
  compare->add_option("--shard", shard_spec,
                      "run shard I of N (0-based, e.g. 0/4): the prompts whose id hashes to I; "
                      "join the shards' --json reports with `bitparity merge`");

  // health
  CLI::App* health = app.add_subcommand("health", "grpc.health.v1 check of one server (container health checks)");
  std::string health_addr, health_service;
  double health_timeout = 5;
  bool health_quiet = false;
  health->add_option("ADDR", health_addr, "server address HOST:PORT")->required();
  health->add_option("--service", health_service, "service name to check (default: the server as a whole)");
  health->add_option("--timeout", health_timeout, "seconds to wait for the answer")->capture_default_str();
  health->add_flag("--quiet,-q", health_quiet, "print nothing");

  // merge
  CLI::App* merge = app.add_subcommand("merge", "join the JSON reports of compare --shard I/N into one report");
  std::vector<std::string> merge_in;
  OutputOptions mout;
  bool mquiet = false;
  std::string mcolor = "auto";
  merge->add_option("REPORTS", merge_in, "the shards' JSON reports (all N, any order)")->required();
  merge->add_option("--json", mout.json_path, "write the merged JSON report");
  merge->add_option("--junit", mout.junit_path, "write JUnit XML");
  merge->add_option("--html", mout.html_path, "write the HTML report");
  merge->add_option("--markdown", mout.markdown_path, "write a Markdown report");
  merge->add_option("--baseline", mout.baseline_path, "an earlier JSON report: flag drift and speed regressions");
  merge->add_flag("--quiet,-q", mquiet, "no summary table on stdout");
  merge->add_option("--color", mcolor, "colored summary: auto, always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}));

  // report
  CLI::App* report = app.add_subcommand("report", "re-render a JSON report");
  std::string report_in;
  OutputOptions rout;
  bool rtext = false;
  report->add_option("RUN", report_in, "a JSON report from compare --json")->required();
  report->add_option("--html", rout.html_path, "write the HTML report");
  report->add_option("--markdown", rout.markdown_path, "write a Markdown report");
  report->add_option("--junit", rout.junit_path, "write JUnit XML");
  report->add_flag("--text", rtext, "print the summary table");

  // bench
  CLI::App* bench = app.add_subcommand("bench", "speed alone, at several concurrency levels");
  SideFlags ba, bb;
  ba.Add(bench, "a", true);
  bb.Add(bench, "b", false);
  CommonRun brun;
  brun.Add(bench);
  SpeedOptions bopt;
  bopt.concurrency = {1, 2, 4};
  std::string bench_json;
  bench->add_option("--concurrency", bopt.concurrency, "concurrency levels")->delimiter(',')->capture_default_str();
  bench->add_option("--requests", bopt.requests, "requests per level")->capture_default_str();
  bench->add_option("--runs", bopt.runs, "timed single generations")->capture_default_str();
  bench->add_option("--warmup", bopt.warmup, "untimed generations first")->capture_default_str();
  bench->add_option("--max-new-tokens,-n", bopt.max_new_tokens, "new tokens per timed generation")->capture_default_str();
  bench->add_option("--load-new-tokens", bopt.load_max_new_tokens, "new tokens per load request")->capture_default_str();
  bench->add_option("--json", bench_json, "write the results as JSON");

  // demo
  CLI::App* demo = app.add_subcommand("demo", "start two servers on a small model and compare them");
  DemoOptions dopt;
  CompareFlags dflags;
  std::string dprogress = "auto", dcolor = "auto";
  demo->add_option("--cache-dir", dopt.cache_dir, "model cache (default $XDG_CACHE_HOME/bitparity)");
  demo->add_option("--out-dir", dopt.out_dir, "where the reports go (default <cache-dir>/demo)");
  demo->add_option("--model", dopt.model, "use this GGUF instead of the synth model");
  demo->add_option("--bin-dir", dopt.bin_dir, "where the server binaries are (default: next to bitparity)");
  demo->add_option("--server-threads", dopt.server_threads, "kernel threads per server (0 = their default)");
  demo->add_option("--limit", dopt.prompts, "use only the first N built-in prompts");
  demo->add_option("--progress", dprogress, "auto, always, never")->check(CLI::IsMember({"auto", "always", "never"}));
  demo->add_option("--color", dcolor, "auto, always, never")->check(CLI::IsMember({"auto", "always", "never"}));
  dflags.Add(demo, &dopt.compare);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (*compare) {
    if (!cflags.Apply(&copt)) return 2;
    auto prompts = LoadPrompts(crun);
    if (!prompts.ok()) {
      std::fprintf(stderr, "bitparity: %s\n", std::string(prompts.status().message()).c_str());
      return 2;
    }
    if (!shard_spec.empty()) {
      auto shard = ParseShard(shard_spec);
      if (!shard.ok()) {
        std::fprintf(stderr, "bitparity: %s\n", std::string(shard.status().message()).c_str());
        return 2;
      }
      cout_.shard = ApplyShard(&*prompts, *shard);
      std::fprintf(stderr, "bitparity: shard %d/%d: %zu of %d prompts\n", shard->index, shard->count,
                   prompts->prompts.size(), cout_.shard["total_prompts"].get<int>());
    }
    auto a = EngineClient::Connect(ca.e, crun.Client());
    if (!a.ok()) {
      std::fprintf(stderr, "bitparity: %s\n", std::string(a.status().message()).c_str());
      return 2;
    }
    auto b = EngineClient::Connect(cb.e, crun.Client());
    if (!b.ok()) {
      std::fprintf(stderr, "bitparity: %s\n", std::string(b.status().message()).c_str());
      return 2;
    }
    cout_.color = crun.ColorOn();
    cout_.summary = !quiet;
    Progress progress(crun.ProgressOn());
    return CompareAndReport(**a, **b, *prompts, copt, cout_, cmdline, &progress);
  }
  if (*report) {
    auto r = ReadJsonFile(report_in);
    // A report that passes the version check but was edited by hand may still lack
    // fields the renderers read; nlohmann::json throws then, caught below.
    try {
    absl::Status s = r.ok() ? CheckReportVersion(*r, report_in) : r.status();
    if (!s.ok()) {
      std::fprintf(stderr, "bitparity report: %s\n", std::string(s.message()).c_str());
      return 2;
    }
    if (!r->contains("verdict")) FinalizeVerdict(&*r);
    if (rout.html_path.empty() && rout.markdown_path.empty() && rout.junit_path.empty()) rtext = true;
    if (!WriteOutputs(*r, rout)) return 2;
    if (rtext) std::fputs(RenderText(*r, isatty(STDOUT_FILENO)).c_str(), stdout);
    return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bitparity report: '%s' is not a complete report: %s\n", report_in.c_str(), e.what());
      return 2;
    }
  }
  if (*health) return RunHealthProbe(health_addr, health_service, health_timeout, health_quiet);
  if (*merge) {
    std::vector<nlohmann::json> reports;
    for (const std::string& path : merge_in) {
      auto r = ReadJsonFile(path);
      absl::Status s = r.ok() ? CheckReportVersion(*r, path) : r.status();
      if (!s.ok()) {
        std::fprintf(stderr, "bitparity merge: %s\n", std::string(s.message()).c_str());
        return 2;
      }
      reports.push_back(std::move(*r));
    }
    nlohmann::json old;
    if (!mout.baseline_path.empty()) {
      auto b = ReadJsonFile(mout.baseline_path);
      absl::Status s = b.ok() ? CheckReportVersion(*b, mout.baseline_path) : b.status();
      if (!s.ok()) {
        std::fprintf(stderr, "bitparity merge: --baseline: %s\n", std::string(s.message()).c_str());
        return 2;
      }
      old = std::move(*b);
    }
    try {
      auto merged = MergeShardReports(reports, merge_in, cmdline);
      if (!merged.ok()) {
        std::fprintf(stderr, "bitparity merge: %s\n", std::string(merged.status().message()).c_str());
        return 2;
      }
      nlohmann::json& r = *merged;
      if (!mout.baseline_path.empty()) {
        Thresholds t;
        (void)t.MergeJson(r["thresholds"]);  // checked by MergeShardReports
        ApplyBaseline(&r, old, mout.baseline_path, t);
      }
      FinalizeVerdict(&r);
      const bool wrote = WriteOutputs(r, mout);
      if (!mquiet) std::fputs(RenderText(r, mcolor == "always" || (mcolor == "auto" && isatty(STDOUT_FILENO))).c_str(), stdout);
      std::fflush(stdout);
      const int code = r["verdict"]["exit_code"].get<int>();
      return wrote ? code : std::max(code, 2);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bitparity merge: a report is incomplete: %s\n", e.what());
      return 2;
    }
  }
  if (*bench) {
    auto prompts = LoadPrompts(brun);
    if (!prompts.ok()) {
      std::fprintf(stderr, "bitparity bench: %s\n", std::string(prompts.status().message()).c_str());
      return 2;
    }
    auto a = EngineClient::Connect(ba.e, brun.Client());
    if (!a.ok()) {
      std::fprintf(stderr, "bitparity bench: %s\n", std::string(a.status().message()).c_str());
      return 2;
    }
    std::unique_ptr<EngineClient> b;
    if (!bb.e.address.empty()) {
      auto bo = EngineClient::Connect(bb.e, brun.Client());
      if (!bo.ok()) {
        std::fprintf(stderr, "bitparity bench: %s\n", std::string(bo.status().message()).c_str());
        return 2;
      }
      b = std::move(*bo);
    }
    Progress progress(brun.ProgressOn());
    return RunBench(**a, b.get(), *prompts, bopt, bench_json, cmdline, &progress);
  }
  if (*demo) {
    if (!dflags.Apply(&dopt.compare)) return 2;
    dopt.color = dcolor == "always" || (dcolor == "auto" && isatty(STDOUT_FILENO));
    Progress progress(dprogress == "always" || (dprogress == "auto" && Progress::StderrIsTty()));
    return RunDemo(dopt, cmdline, &progress);
  }
  return 2;
}
