// bitnet-bench: end-to-end speed of our engine against bitnet.cpp on one model.
//
//   bitnet-bench -m 2b4t.gguf [-p 128,512] [-n 128] [-t 1,2] [-r 5] [-c 512] [--json R.json]
//                [--bitnet-cpp-dir DIR] [--kernels auto|scalar|avx2|avx512]
//
// For each thread count and each of -r repetitions, back to back (the engine that
// goes first alternates, so drift in machine load hits both):
//   - the read bandwidth ceiling: a streaming read of a buffer far larger than the
//     LLC with the same thread count, in a child process (read_bandwidth.h);
//   - our engine's ppP / tgN tests with llama-bench's definitions, in a child process
//     (native_runner.h), and bitnet.cpp's llama-bench -r 1 on the same tests;
//   - load time and peak RSS: our Model::Load + one token, and llama-cli's one token,
//     each in a child process with the same context (-c), peak RSS from wait4.
// Then it prints medians [min-max] of tokens/s, the per-repetition ratios
// native/bitnet.cpp, the decode ceiling (bytes read per decoded token / bandwidth,
// decode_bytes.h) with each engine's % of it, load time and peak RSS.
// bitnet.cpp comes from --bitnet-cpp-dir or $BITNET_CPP_DIR (its build/bin); without
// it only our engine runs and the output says loudly that bitnet.cpp was not measured.
//
// Exit: 0 done, 2 usage error, 1 anything else; errors are printed on stderr.
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmarks/end_to_end/bandwidth_child.h"
#include "benchmarks/end_to_end/bench_report.h"
#include "benchmarks/end_to_end/bitnet_cpp_tools.h"
#include "benchmarks/end_to_end/child_process.h"
#include "benchmarks/end_to_end/decode_bytes.h"
#include "benchmarks/end_to_end/llama_bench_runner.h"
#include "benchmarks/end_to_end/llama_cli_load.h"
#include "benchmarks/end_to_end/native_child.h"
#include "benchmarks/end_to_end/native_runner.h"
#include "benchmarks/end_to_end/read_bandwidth.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/kernels/kernels.h"
#include "engine/model/model.h"
#include "engine/model/model_config.h"
#include "engine/model/weights.h"

namespace bitparity::bench {
namespace {

constexpr int kBandwidthPasses = 5;

struct Flags {
  std::string model;
  std::vector<int> n_prompt{128, 512};
  std::vector<int> n_gen{128};
  std::vector<int> threads;
  int repetitions = 5;
  int context = 512;
  std::string json_out;
  std::string bitnet_cpp_dir;
  std::string kernels = "auto";
  std::string head = "exact";
  std::string compare_head;  // empty: none
  std::string weight_memory = "hugepages";
  double bandwidth_mib = 0;  // 0: DefaultBandwidthBufferBytes()
  double child_timeout_s = 900;
};

absl::Status Validate(const Flags& f) {
  for (int t : f.threads) {
    if (t < 1) return absl::InvalidArgumentError("-t: thread counts must be >= 1");
  }
  for (int p : f.n_prompt) {
    if (p < 0) return absl::InvalidArgumentError("-p: prompt sizes must be >= 0 (0 skips pp)");
  }
  for (int n : f.n_gen) {
    if (n < 0) return absl::InvalidArgumentError("-n: generation lengths must be >= 0 (0 skips tg)");
  }
  if (f.repetitions < 1) return absl::InvalidArgumentError("-r: repetitions must be >= 1");
  if (f.context < 8) return absl::InvalidArgumentError("-c: context must be >= 8");
  if (absl::Status s = ParseHeadMode(f.head).status(); !s.ok()) return s;
  if (!f.compare_head.empty()) {
    if (absl::Status s = ParseHeadMode(f.compare_head).status(); !s.ok()) return s;
  }
  if (absl::Status s = ParseWeightMemory(f.weight_memory).status(); !s.ok()) return s;
  if (f.kernels != "auto") {
    if (absl::Status s = ParseKernelPath(f.kernels).status(); !s.ok()) return s;
  }
  if (f.bandwidth_mib < 0) return absl::InvalidArgumentError("--bandwidth-mib must be >= 0");
  return absl::OkStatus();
}

std::vector<BenchTest> TestsOf(const Flags& f) {
  std::vector<BenchTest> tests;  // llama-bench's order: pp tests, then tg tests
  for (int p : f.n_prompt) {
    if (p > 0) tests.push_back({p, 0});
  }
  for (int n : f.n_gen) {
    if (n > 0) tests.push_back({0, n});
  }
  return tests;
}

// ru_maxrss of this process: every child's ru_maxrss starts from it (see bandwidth_child.h).
int64_t SelfPeakRssKib() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

std::string SamplesLine(const std::vector<TestSample>& samples) {
  std::string s;
  for (const TestSample& x : samples) absl::StrAppendFormat(&s, " %s %.2f", x.test.Name(), x.tokens_per_s);
  return s;
}

absl::Status RunBench(const Flags& f, BenchRun& run) {
  ASSIGN_OR_RETURN(std::string self, SelfExecutable());
  {  // Model facts in the parent from the GGUF only: no weights are touched here.
    ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Open(f.model));
    ASSIGN_OR_RETURN(ModelConfig config, ModelConfig::FromGguf(*file));
    ASSIGN_OR_RETURN(Weights weights, Weights::Bind(*file, config));
    ASSIGN_OR_RETURN(run.decode_bytes, BytesReadPerDecodedToken(*file, weights));
    run.model_file_bytes = file->file_size();
    run.architecture = config.arch_name;
    run.n_layer = config.n_layer;
  }
  run.model_path = f.model;
  run.repetitions = f.repetitions;
  run.context = f.context;
  run.tests = TestsOf(f);
  run.bitnet_cpp = LocateBitnetCpp(f.bitnet_cpp_dir);
  if (!run.bitnet_cpp.has_bench()) {
    std::fprintf(stderr, "bitnet-bench: *** bitnet.cpp will NOT be measured: %s ***\n", run.bitnet_cpp.why_not.c_str());
  }
  run.llc_bytes = LastLevelCacheBytes();
  run.bandwidth_buffer_bytes = f.bandwidth_mib > 0 ? static_cast<uint64_t>(f.bandwidth_mib * 1048576.0)
                                                   : DefaultBandwidthBufferBytes();

  for (int threads : f.threads) {
    ThreadCountResults r;
    r.threads = threads;
    r.native_ts.resize(run.tests.size());
    if (run.bitnet_cpp.has_bench()) r.bcpp_ts.resize(run.tests.size());
    if (!f.compare_head.empty()) r.compare_ts.resize(run.tests.size());
    NativeOptions native{f.model, threads, f.kernels, f.head, f.weight_memory};
    NativeOptions compare{f.model, threads, f.kernels, f.compare_head, f.weight_memory};
    for (int rep = 0; rep < f.repetitions; ++rep) {
      ASSIGN_OR_RETURN(double gbps, RunReadBandwidthChild(self, run.bandwidth_buffer_bytes, threads,
                                                          kBandwidthPasses, f.child_timeout_s));
      r.bandwidth_gbps.push_back(gbps);
      std::string progress = absl::StrFormat("[t=%d rep %d/%d] read %.2f GB/s |", threads, rep + 1, f.repetitions, gbps);

      auto run_native = [&]() -> absl::Status {
        ASSIGN_OR_RETURN(NativeSpeedRun speed, RunNativeSpeedChild(self, native, run.tests, f.child_timeout_s));
        for (size_t i = 0; i < speed.samples.size(); ++i) r.native_ts[i].push_back(speed.samples[i].tokens_per_s);
        run.native_kernels = speed.kernels;
        run.native_weight_memory = speed.weight_memory;
        run.native_head = f.head;
        if (speed.candidates) r.candidates.push_back(*speed.candidates);
        ASSIGN_OR_RETURN(LoadSample load, RunNativeLoadChild(self, native, f.context, f.child_timeout_s));
        r.native_load.push_back(load);
        absl::StrAppendFormat(&progress, " native%s load %.0f ms rss %.0f MiB |", SamplesLine(speed.samples),
                              load.load_ms, load.peak_rss_kib / 1024.0);
        return absl::OkStatus();
      };
      // The same engine with --compare-head, in the same repetition (A B / B A order).
      auto run_compare = [&]() -> absl::Status {
        if (f.compare_head.empty()) return absl::OkStatus();
        ASSIGN_OR_RETURN(NativeSpeedRun speed, RunNativeSpeedChild(self, compare, run.tests, f.child_timeout_s));
        for (size_t i = 0; i < speed.samples.size(); ++i) r.compare_ts[i].push_back(speed.samples[i].tokens_per_s);
        run.compare_head = f.compare_head;
        ASSIGN_OR_RETURN(LoadSample load, RunNativeLoadChild(self, compare, f.context, f.child_timeout_s));
        r.compare_load.push_back(load);
        absl::StrAppendFormat(&progress, " head %s%s load %.0f ms rss %.0f MiB |", f.compare_head,
                              SamplesLine(speed.samples), load.load_ms, load.peak_rss_kib / 1024.0);
        return absl::OkStatus();
      };
      auto run_bcpp = [&]() -> absl::Status {
        if (!run.bitnet_cpp.has_bench()) return absl::OkStatus();
        absl::StatusOr<std::vector<TestSample>> bench = RunLlamaBench(
            run.bitnet_cpp.llama_bench, f.model, threads, run.tests, f.child_timeout_s, &run.bitnet_cpp_commit);
        if (!bench.ok()) {
          // bitnet.cpp crashing is a finding, not a reason to lose the run: keep going,
          // leave this repetition out of its figures, and say so in the report.
          for (auto& samples : r.bcpp_ts) samples.push_back(std::nan(""));
          r.bcpp_failures.push_back(absl::StrCat("rep ", rep + 1, ": ", bench.status().message()));
          absl::StrAppend(&progress, " bitnet.cpp FAILED: ", bench.status().message(), " |");
          return absl::OkStatus();
        }
        std::vector<TestSample> speed = *std::move(bench);
        for (size_t i = 0; i < speed.size(); ++i) r.bcpp_ts[i].push_back(speed[i].tokens_per_s);
        absl::StrAppend(&progress, " bitnet.cpp", SamplesLine(speed));
        if (run.bitnet_cpp.has_cli()) {
          ASSIGN_OR_RETURN(LoadSample load, RunLlamaCliLoad(run.bitnet_cpp.llama_cli, f.model, threads, f.context,
                                                            f.child_timeout_s));
          r.bcpp_load.push_back(load);
          absl::StrAppendFormat(&progress, " load %.0f ms rss %.0f MiB", load.load_ms, load.peak_rss_kib / 1024.0);
        }
        absl::StrAppend(&progress, " |");
        return absl::OkStatus();
      };
      // Alternate which engine goes first, so neither always runs on a warmer machine.
      if (rep % 2 == 0) {
        RETURN_IF_ERROR(run_native());
        RETURN_IF_ERROR(run_compare());
        RETURN_IF_ERROR(run_bcpp());
      } else {
        RETURN_IF_ERROR(run_bcpp());
        RETURN_IF_ERROR(run_compare());
        RETURN_IF_ERROR(run_native());
      }
      std::fprintf(stderr, "%s\n", progress.c_str());
    }
    run.per_threads.push_back(std::move(r));
  }
  run.parent_peak_rss_kib = SelfPeakRssKib();
  return absl::OkStatus();
}

// __read-bandwidth: prints the best-of-passes GB/s.
int BandwidthChildMain(int argc, char** argv) {
  CLI::App app{"bitnet-bench internal: one read-bandwidth measurement"};
  uint64_t bytes = 0;
  int threads = 1, passes = kBandwidthPasses;
  app.add_option("--bytes", bytes)->required();
  app.add_option("--threads", threads)->required();
  app.add_option("--passes", passes);
  try {
    app.parse(argc - 1, argv + 1);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  ReadBandwidthMeter meter(bytes);
  absl::StatusOr<double> gbps = meter.Measure(threads, passes);
  if (!gbps.ok()) {
    std::fprintf(stderr, "bitnet-bench %s: %s\n", kReadBandwidthCommand, gbps.status().ToString().c_str());
    return 1;
  }
  std::printf("%.4f\n", *gbps);
  return 0;
}

// The hidden subcommands: one measurement of our engine, JSON on stdout.
int ChildMain(int argc, char** argv) {
  const std::string command = argv[1];
  if (command == kReadBandwidthCommand) return BandwidthChildMain(argc, argv);
  CLI::App app{"bitnet-bench internal: one native engine measurement"};
  NativeOptions o;
  std::string tests_flag;
  int context = 512;
  app.add_option("--model", o.model)->required();
  app.add_option("--threads", o.threads)->required();
  app.add_option("--kernels", o.kernels);
  app.add_option("--head", o.head);
  app.add_option("--weight-memory", o.weight_memory);
  app.add_option("--tests", tests_flag);
  app.add_option("--context", context);
  try {
    app.parse(argc - 1, argv + 1);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  absl::StatusOr<nlohmann::json> result;
  if (command == kNativeSpeedCommand) {
    absl::StatusOr<std::vector<BenchTest>> tests = ParseTests(tests_flag);
    result = tests.ok() ? MeasureNativeSpeed(o, *tests) : absl::StatusOr<nlohmann::json>(tests.status());
  } else {
    result = MeasureNativeLoad(o, context);
  }
  if (!result.ok()) {
    std::fprintf(stderr, "bitnet-bench %s: %s\n", command.c_str(), result.status().ToString().c_str());
    return 1;
  }
  std::cout << result->dump() << "\n";
  return 0;
}

int Main(int argc, char** argv) {
  if (argc >= 2 && (std::string(argv[1]) == kNativeSpeedCommand || std::string(argv[1]) == kNativeLoadCommand ||
                    std::string(argv[1]) == kReadBandwidthCommand)) {
    return ChildMain(argc, argv);
  }
  CLI::App app{"bitnet-bench: end-to-end speed of the native engine against bitnet.cpp (llama-bench) on one model"};
  Flags f;
  f.threads = {static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))};
  app.add_option("--model,-m", f.model, "GGUF model file (e.g. bitnet-synth --shape 2b4t)")->required();
  app.add_option("--n-prompt,-p", f.n_prompt, "prompt sizes for pp tests, comma separated (0: none)")
      ->delimiter(',')->capture_default_str();
  app.add_option("--n-gen,-n", f.n_gen, "token counts for tg tests, comma separated (0: none)")
      ->delimiter(',')->capture_default_str();
  app.add_option("--threads,-t", f.threads, "thread counts, comma separated (default: number of cores)")
      ->delimiter(',');
  app.add_option("--repetitions,-r", f.repetitions, "repetitions of every measurement")->capture_default_str();
  app.add_option("--context,-c", f.context, "context of the load-time / peak-RSS runs (both engines)")
      ->capture_default_str();
  app.add_option("--json", f.json_out, "also write the results as JSON to this file");
  app.add_option("--bitnet-cpp-dir", f.bitnet_cpp_dir, "built bitnet.cpp checkout (default: $BITNET_CPP_DIR)");
  app.add_option("--kernels", f.kernels, "native kernel path: auto, scalar, avx2, avx512")->capture_default_str();
  app.add_option("--head", f.head,
                 "native output head: exact, screened (the exact head's tokens for greedy decoding; tg "
                 "tests then screen every step), or int8 (faster decode that CHANGES the logits); the "
                 "ceiling line still counts the exact head's bytes")
      ->capture_default_str();
  app.add_option("--compare-head", f.compare_head,
                 "also run the native engine with this output head in every repetition (interleaved), "
                 "and report the ratio --head / --compare-head");
  app.add_option("--weight-memory", f.weight_memory,
                 "native weights: hugepages (copied at load into 2 MiB pages) or mmap (used in the file "
                 "mapping, as llama-bench does by default)")
      ->capture_default_str();
  app.add_option("--bandwidth-mib", f.bandwidth_mib, "bandwidth buffer size in MiB (default: max(16 x LLC, 512))");
  app.add_option("--child-timeout", f.child_timeout_s, "seconds before a measurement process is killed")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (absl::Status s = Validate(f); !s.ok()) {
    std::fprintf(stderr, "bitnet-bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (TestsOf(f).empty()) {
    std::fprintf(stderr, "bitnet-bench: nothing to measure: every -p and -n is 0\n");
    return 2;
  }
  BenchRun run;
  if (absl::Status s = RunBench(f, run); !s.ok()) {
    std::fprintf(stderr, "bitnet-bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::cout << RenderText(run) << std::flush;
  if (!f.json_out.empty()) {
    std::ofstream out(f.json_out, std::ios::trunc);
    out << RenderJson(run).dump(2) << "\n";
    if (!out.good()) {
      std::fprintf(stderr, "bitnet-bench: cannot write %s\n", f.json_out.c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace bitparity::bench

int main(int argc, char** argv) { return bitparity::bench::Main(argc, argv); }
