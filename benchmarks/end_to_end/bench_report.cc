#include "benchmarks/end_to_end/bench_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "benchmarks/end_to_end/bench_stats.h"

namespace bitparity::bench {
namespace {

using ojson = nlohmann::ordered_json;

std::vector<double> Ratios(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> r;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (b[i] > 0) r.push_back(a[i] / b[i]);
  }
  return r;
}

std::vector<double> LoadMs(const std::vector<LoadSample>& s) {
  std::vector<double> v;
  for (const LoadSample& x : s) v.push_back(x.load_ms);
  return v;
}

std::vector<double> RssMib(const std::vector<LoadSample>& s) {
  std::vector<double> v;
  for (const LoadSample& x : s) v.push_back(x.peak_rss_kib / 1024.0);
  return v;
}

ojson SpreadJson(const std::vector<double>& samples) {
  if (samples.empty()) return nullptr;
  const Spread s = Summarize(samples);
  if (s.n == 0) return nullptr;  // every run failed
  return ojson{{"median", s.median}, {"min", s.min},       {"max", s.max},
               {"mean", s.mean},     {"stddev", s.stddev}, {"samples", s.samples}};
}

// "123.4 [120.1-125.0]" with `digits` decimals.
std::string SpreadText(const std::vector<double>& samples, int digits) {
  if (samples.empty()) return "-";
  const Spread s = Summarize(samples);
  if (s.n == 0) return "FAILED";  // every run failed (NaN): see the failure lines
  return absl::StrFormat("%.*f [%.*f-%.*f]", digits, s.median, digits, s.min, digits, s.max);
}

double Median(const std::vector<double>& v) { return Summarize(v).median; }

double CeilingTokensPerS(const BenchRun& run, double gbps) {
  return run.decode_bytes.total() > 0 ? gbps * 1e9 / run.decode_bytes.total() : 0;
}

}  // namespace

ojson RenderJson(const BenchRun& run) {
  const bool bcpp = run.bitnet_cpp.has_bench();
  ojson j;
  j["model"] = {{"path", run.model_path},
                {"file_bytes", run.model_file_bytes},
                {"architecture", run.architecture},
                {"n_layer", run.n_layer}};
  const DecodeBytes& b = run.decode_bytes;
  j["bytes_per_decoded_token"] = {
      {"total", b.total()},
      {"layer_tensors", b.layer_tensors},
      {"layer_bytes", b.layer_bytes},
      {"head_tensor", b.head_tensor},
      {"head_bytes", b.head_bytes},
      {"other_bytes", b.other_bytes},
      {"counts", "every blk.* tensor + output_norm + the whole output head (+ one embedding row if untied)"},
      {"excludes", "KV cache reads and activations"}};
  j["repetitions"] = run.repetitions;
  j["order"] = "alternating per repetition: native first on even repetitions, bitnet.cpp first on odd";
  j["native"] = {{"kernels", run.native_kernels},
                 {"output_head", run.native_head},
                 {"compare_head", run.compare_head},
                 {"weight_memory", run.native_weight_memory}};
  j["bitnet_cpp"] = {{"measured", bcpp},
                     {"load_rss_measured", run.bitnet_cpp.has_cli()},
                     {"dir", run.bitnet_cpp.dir},
                     {"llama_bench", run.bitnet_cpp.llama_bench},
                     {"llama_cli", run.bitnet_cpp.llama_cli},
                     {"build_commit", run.bitnet_cpp_commit},
                     {"why_not", run.bitnet_cpp.why_not},
                     {"why_no_load_rss", run.bitnet_cpp.why_no_cli}};
  j["bandwidth"] = {{"buffer_bytes", run.bandwidth_buffer_bytes},
                    {"llc_bytes", run.llc_bytes},
                    {"method", "multi-threaded streaming read, best of 5 passes per repetition, GB = 1e9 bytes"}};
  ojson per = ojson::array();
  for (const ThreadCountResults& r : run.per_threads) {
    ojson t;
    t["threads"] = r.threads;
    t["bandwidth_gb_per_s"] = SpreadJson(r.bandwidth_gbps);
    t["bitnet_cpp_failures"] = r.bcpp_failures;
    ojson tests = ojson::array();
    for (size_t i = 0; i < run.tests.size(); ++i) {
      const BenchTest& bt = run.tests[i];
      ojson x;
      x["name"] = bt.Name();
      x["n_prompt"] = bt.n_prompt;
      x["n_gen"] = bt.n_gen;
      x["native_tokens_per_s"] = SpreadJson(r.native_ts[i]);
      x["bitnet_cpp_tokens_per_s"] = bcpp ? SpreadJson(r.bcpp_ts[i]) : ojson(nullptr);
      x["ratio_native_over_bitnet_cpp"] = bcpp ? SpreadJson(Ratios(r.native_ts[i], r.bcpp_ts[i])) : ojson(nullptr);
      if (!r.compare_ts.empty()) {
        x["compare_head_tokens_per_s"] = SpreadJson(r.compare_ts[i]);
        x["ratio_native_over_compare_head"] = SpreadJson(Ratios(r.native_ts[i], r.compare_ts[i]));
        x["ratio_compare_head_over_bitnet_cpp"] =
            bcpp ? SpreadJson(Ratios(r.compare_ts[i], r.bcpp_ts[i])) : ojson(nullptr);
      }
      if (bt.is_decode()) {
        std::vector<double> ceiling, native_pct, bcpp_pct;
        for (size_t k = 0; k < r.bandwidth_gbps.size(); ++k) {
          const double c = CeilingTokensPerS(run, r.bandwidth_gbps[k]);
          ceiling.push_back(c);
          if (k < r.native_ts[i].size()) native_pct.push_back(100.0 * r.native_ts[i][k] / c);
          if (bcpp && k < r.bcpp_ts[i].size()) bcpp_pct.push_back(100.0 * r.bcpp_ts[i][k] / c);
        }
        x["ceiling_tokens_per_s"] = SpreadJson(ceiling);
        x["native_pct_of_ceiling"] = SpreadJson(native_pct);
        x["bitnet_cpp_pct_of_ceiling"] = bcpp ? SpreadJson(bcpp_pct) : ojson(nullptr);
      }
      tests.push_back(x);
    }
    t["tests"] = tests;
    if (!r.candidates.empty()) {
      ojson c = ojson::array();
      for (const CandidateStats& x : r.candidates) {
        c.push_back({{"median", x.median}, {"p99", x.p99}, {"max", x.max}, {"tokens", x.tokens}});
      }
      t["screened_candidates_per_token"] = c;
    }
    if (!r.compare_load.empty()) {
      t["compare_head_peak_rss_mib"] = SpreadJson(RssMib(r.compare_load));
      t["compare_head_load_ms"] = SpreadJson(LoadMs(r.compare_load));
    }
    const bool cli = !r.bcpp_load.empty();
    t["load_ms"] = {{"native", SpreadJson(LoadMs(r.native_load))},
                    {"bitnet_cpp", cli ? SpreadJson(LoadMs(r.bcpp_load)) : ojson(nullptr)},
                    {"ratio_native_over_bitnet_cpp",
                     cli ? SpreadJson(Ratios(LoadMs(r.native_load), LoadMs(r.bcpp_load))) : ojson(nullptr)}};
    t["peak_rss_mib"] = {{"context", run.context},
                         {"floor_inherited_from_bitnet_bench", run.parent_peak_rss_kib / 1024.0},
                         {"native", SpreadJson(RssMib(r.native_load))},
                         {"bitnet_cpp", cli ? SpreadJson(RssMib(r.bcpp_load)) : ojson(nullptr)},
                         {"ratio_native_over_bitnet_cpp",
                          cli ? SpreadJson(Ratios(RssMib(r.native_load), RssMib(r.bcpp_load))) : ojson(nullptr)}};
    per.push_back(t);
  }
  j["per_threads"] = per;
  return j;
}

std::string RenderText(const BenchRun& run) {
  const bool bcpp = run.bitnet_cpp.has_bench();
  std::string s;
  absl::StrAppendFormat(&s, "model       %s (%s, %d layers, %.2f GB)\n", run.model_path, run.architecture,
                        run.n_layer, run.model_file_bytes / 1e9);
  absl::StrAppendFormat(&s, "native      kernels %s, weights in %s, output head %s\n", run.native_kernels,
                        run.native_weight_memory,
                        run.native_head == "exact"      ? "exact (bitnet.cpp's F16 arithmetic)"
                        : run.native_head == "screened" ? "screened (exact tokens: int8 screen + exact rescoring)"
                                                        : "INT8: APPROXIMATE, the logits differ from bitnet.cpp's");
  if (bcpp) {
    absl::StrAppendFormat(&s, "bitnet.cpp  %s (llama-bench build %s)\n", run.bitnet_cpp.dir, run.bitnet_cpp_commit);
  } else {
    absl::StrAppendFormat(&s, "\n*** bitnet.cpp NOT MEASURED: %s ***\n*** only the native engine's figures below ***\n\n",
                          run.bitnet_cpp.why_not);
  }
  if (bcpp && !run.bitnet_cpp.has_cli()) {
    absl::StrAppendFormat(&s, "*** bitnet.cpp load time / peak RSS NOT MEASURED: %s ***\n", run.bitnet_cpp.why_no_cli);
  }
  const DecodeBytes& b = run.decode_bytes;
  absl::StrAppendFormat(&s,
                        "bytes/token %.1f MB read per decoded token = %d layer tensors %.1f MB + head %s %.1f MB"
                        " + %.3f MB (output_norm, embedding row); KV cache not counted\n",
                        b.total() / 1e6, b.layer_tensors, b.layer_bytes / 1e6, b.head_tensor, b.head_bytes / 1e6,
                        b.other_bytes / 1e6);
  absl::StrAppendFormat(&s, "runs        %d repetitions, native and bitnet.cpp alternating; median [min-max]\n",
                        run.repetitions);
  for (const ThreadCountResults& r : run.per_threads) {
    absl::StrAppendFormat(&s, "\n== %d thread%s ==\n", r.threads, r.threads == 1 ? "" : "s");
    absl::StrAppendFormat(&s, "%-8s %-28s %-28s %s\n", "test", "native tok/s", "bitnet.cpp tok/s",
                          "native/bitnet.cpp");
    for (size_t i = 0; i < run.tests.size(); ++i) {
      absl::StrAppendFormat(&s, "%-8s %-28s %-28s %s\n", run.tests[i].Name(), SpreadText(r.native_ts[i], 2),
                            bcpp ? SpreadText(r.bcpp_ts[i], 2) : "not measured",
                            bcpp ? SpreadText(Ratios(r.native_ts[i], r.bcpp_ts[i]), 3) : "-");
    }
    for (size_t i = 0; i < run.tests.size() && !r.compare_ts.empty(); ++i) {
      absl::StrAppendFormat(&s, "%-8s --head %s / --compare-head %s: %s tok/s vs %s, ratio %s", run.tests[i].Name(),
                            run.native_head, run.compare_head, SpreadText(r.native_ts[i], 2),
                            SpreadText(r.compare_ts[i], 2), SpreadText(Ratios(r.native_ts[i], r.compare_ts[i]), 3));
      if (bcpp) {
        absl::StrAppendFormat(&s, "; %s/bitnet.cpp %s", run.compare_head,
                              SpreadText(Ratios(r.compare_ts[i], r.bcpp_ts[i]), 3));
      }
      s += "\n";
    }
    for (const CandidateStats& c : r.candidates) {
      absl::StrAppendFormat(&s, "screened candidates per token: median %d, p99 %d, max %d (%d tokens)\n", c.median, c.p99,
                            c.max, c.tokens);
    }
    if (!r.compare_load.empty()) {
      absl::StrAppendFormat(&s, "--compare-head %s: load ms %s, peak RSS MiB %s\n", run.compare_head,
                            SpreadText(LoadMs(r.compare_load), 1), SpreadText(RssMib(r.compare_load), 1));
    }
    if (!r.bcpp_failures.empty()) {
      absl::StrAppendFormat(&s, "*** bitnet.cpp FAILED in %d of %d repetitions (left out of its figures and the ratios):\n",
                            static_cast<int>(r.bcpp_failures.size()), run.repetitions);
      for (const std::string& f : r.bcpp_failures) absl::StrAppendFormat(&s, "***   %s\n", f);
    }
    const double gbps = Median(r.bandwidth_gbps);
    absl::StrAppendFormat(&s, "read bandwidth  %s GB/s (%d thread(s), %.0f MiB buffer, LLC %.0f MiB)\n",
                          SpreadText(r.bandwidth_gbps, 2), r.threads, run.bandwidth_buffer_bytes / 1048576.0,
                          run.llc_bytes / 1048576.0);
    const double ceiling = CeilingTokensPerS(run, gbps);
    for (size_t i = 0; i < run.tests.size(); ++i) {
      if (!run.tests[i].is_decode()) continue;
      absl::StrAppendFormat(&s, "%s ceiling  %.2f tok/s = %.1f GB/s / %.1f MB per token; native at %.1f%%", run.tests[i].Name(),
                            ceiling, gbps, b.total() / 1e6, 100.0 * Median(r.native_ts[i]) / ceiling);
      if (bcpp && Summarize(r.bcpp_ts[i]).n > 0) {
        absl::StrAppendFormat(&s, ", bitnet.cpp at %.1f%%", 100.0 * Median(r.bcpp_ts[i]) / ceiling);
      }
      s += " of it\n";
      // The read rate of this machine can move between repetitions (where the OS puts
      // the threads); each repetition's decode against its own ceiling is steadier.
      std::vector<double> own_native, own_bcpp;
      for (size_t k = 0; k < r.bandwidth_gbps.size(); ++k) {
        const double c = CeilingTokensPerS(run, r.bandwidth_gbps[k]);
        if (c <= 0) continue;
        if (k < r.native_ts[i].size()) own_native.push_back(100.0 * r.native_ts[i][k] / c);
        if (bcpp && k < r.bcpp_ts[i].size()) own_bcpp.push_back(100.0 * r.bcpp_ts[i][k] / c);
      }
      absl::StrAppendFormat(&s, "%*s  per repetition, %% of that repetition's ceiling: native %s", 
                            static_cast<int>(run.tests[i].Name().size()), "", SpreadText(own_native, 1));
      if (bcpp) absl::StrAppendFormat(&s, ", bitnet.cpp %s", SpreadText(own_bcpp, 1));
      s += "\n";
    }
    const bool cli = !r.bcpp_load.empty();
    absl::StrAppendFormat(&s, "load ms         native %s, bitnet.cpp %s, ratio %s\n", SpreadText(LoadMs(r.native_load), 1),
                          cli ? SpreadText(LoadMs(r.bcpp_load), 1) : "not measured",
                          cli ? SpreadText(Ratios(LoadMs(r.native_load), LoadMs(r.bcpp_load)), 3) : "-");
    absl::StrAppendFormat(&s, "peak RSS MiB    native %s, bitnet.cpp %s, ratio %s (context %d)\n",
                          SpreadText(RssMib(r.native_load), 1), cli ? SpreadText(RssMib(r.bcpp_load), 1) : "not measured",
                          cli ? SpreadText(Ratios(RssMib(r.native_load), RssMib(r.bcpp_load)), 3) : "-", run.context);
    absl::StrAppendFormat(&s, "                (ru_maxrss of each child via wait4; includes up to %.1f MiB inherited from bitnet-bench)\n",
                          run.parent_peak_rss_kib / 1024.0);
  }
  return s;
}

}  // namespace bitparity::bench
