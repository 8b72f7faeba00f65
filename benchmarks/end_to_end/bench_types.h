// File: benchmarks/end_to_end/bench_types.h
//
// The vocabulary of bitnet-bench, shared by its runners and its report: a test as
// llama-bench defines one (ppP = a P-token batch from an empty context, tgN = N
// sequential single-token decodes from an empty context) and one measured sample.
#pragma once

#include <cstdint>
#include <string>

namespace bitparity::bench {

struct BenchTest {
  int n_prompt = 0;  // > 0 for a pp test
  int n_gen = 0;     // > 0 for a tg test
  bool is_decode() const { return n_gen > 0; }
  int tokens() const { return n_prompt + n_gen; }
  // "pp128" / "tg128", llama-bench's names.
  std::string Name() const {
    return n_gen > 0 ? "tg" + std::to_string(n_gen) : "pp" + std::to_string(n_prompt);
  }
  bool operator==(const BenchTest& o) const { return n_prompt == o.n_prompt && n_gen == o.n_gen; }
};

// One timed run of one test.
struct TestSample {
  BenchTest test;
  double ns = 0;            // wall time of the timed part
  double tokens_per_s = 0;  // test.tokens() / seconds, as llama-bench computes samples_ts
};

// One load-and-generate-one-token child process (load time and peak RSS).
// The screened output head's candidates per decoded token in one run (median, p99, max).
struct CandidateStats {
  int median = 0, p99 = 0, max = 0, tokens = 0;
};

struct LoadSample {
  double load_ms = 0;
  int64_t peak_rss_kib = 0;  // ru_maxrss of the child, from wait4
};

}  // namespace bitparity::bench
