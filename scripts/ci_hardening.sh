#!/usr/bin/env bash
# bitparity hardening checks (issue 9): libFuzzer targets with a fixed budget, crash
# regressions replayed, and (optional) an ASan+UBSan build of the test suite.
#
#   scripts/ci_hardening.sh fuzz      # build the fuzzers (clang) and run each one (default)
#   scripts/ci_hardening.sh replay    # build and replay corpora + regressions only (fast)
#   scripts/ci_hardening.sh asan      # ASan+UBSan build of the GoogleTest suite, run ctest
#   scripts/ci_hardening.sh all       # fuzz, then asan
#
# Environment:
#   FUZZ_SECONDS        budget per fuzzer (default 20): -max_total_time
#   FUZZ_RUNS           upper bound on executions per fuzzer (default 2000000): -runs
#   FUZZ_BUILD_DIR      default build-fuzz;  ASAN_BUILD_DIR  default build-asan
#   ASAN_TESTS          ctest -R regex for the asan mode (default: every test)
#   JOBS                build parallelism (default 2)
#
# Fuzzers: gguf_fuzzer (engine/gguf GgufFile::FromBytes), tokenizer_fuzzer (text -> ids
# -> text on the built-in byte BPE and the fixture vocabularies in
# $BITPARITY_FIXTURES/tokenizers when present), validation_fuzzer (bitnet.v1 requests
# through services/common/validation.h), worker_frame_fuzzer (cpp_ref_adapter worker
# frames). Seeds: fuzz/corpus/<target>/ (fuzz/make_seeds.py writes them). Every crash
# found is kept in fuzz/regressions/<target>/ and replayed here on every run. New
# inputs the fuzzers find go to a scratch corpus, never into the tree.
#
# Exit status: non-zero when a build fails, a fuzzer crashes (the crash input is left in
# $FUZZ_BUILD_DIR/fuzz-artifacts/<target>/ and printed), a regression input crashes again,
# or (asan) a test fails. Executions per fuzzer are printed at the end.
#
# The ASan+UBSan suite configuration (mode asan) is the root option:
#   cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBITPARITY_SANITIZE=ON \
#         -DBITPARITY_BUILD_BENCHMARKS=OFF
#   ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
mode=${1:-fuzz}
jobs=${JOBS:-2}
fuzz_dir=${FUZZ_BUILD_DIR:-$root/build-fuzz}
asan_dir=${ASAN_BUILD_DIR:-$root/build-asan}
seconds=${FUZZ_SECONDS:-20}
runs=${FUZZ_RUNS:-2000000}
targets=(gguf_fuzzer tokenizer_fuzzer validation_fuzzer worker_frame_fuzzer)
lock=(flock /tmp/bitparity-build.lock)
command -v flock >/dev/null || lock=()

build_fuzzers() {
  command -v clang++ >/dev/null || { echo "ci_hardening: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
  # libFuzzer's runtime is in libclang-rt-14-dev, only a Recommends of clang on Debian 12.
  if [[ ! -f "$(clang++ -print-file-name=libclang_rt.fuzzer-x86_64.a)" ]]; then
    echo "ci_hardening: libFuzzer runtime missing (apt-get install libclang-rt-14-dev)" >&2
    exit 1
  fi
  if [[ ! -f "$fuzz_dir/build.ninja" ]]; then
    CC=clang CXX=clang++ cmake -S "$root" -B "$fuzz_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DBITPARITY_FUZZ=ON -DBITPARITY_BUILD_TESTS=OFF -DBITPARITY_BUILD_BENCHMARKS=OFF >/dev/null
  fi
  "${lock[@]}" cmake --build "$fuzz_dir" --target bp_fuzzers -j"$jobs"
}

# Replays every committed input (seeds and regressions) once: fails on any crash.
replay() {
  local t=$1 inputs=()
  for d in "$root/fuzz/corpus/$t" "$root/fuzz/regressions/$t"; do
    [[ -d "$d" ]] && inputs+=("$d"/*)
  done
  [[ ${#inputs[@]} -gt 0 ]] || return 0
  if ! "$fuzz_dir/bin/$t" -runs=0 "${inputs[@]}" >"$fuzz_dir/fuzz-logs/$t.replay.log" 2>&1; then
    tail -40 "$fuzz_dir/fuzz-logs/$t.replay.log" >&2
    echo "ci_hardening: $t: a committed input crashes (see above)" >&2
    return 1
  fi
  echo "ci_hardening: $t: replayed ${#inputs[@]} committed inputs, no crash"
}

declare -A execs crashed
run_fuzzer() {
  local t=$1 scratch="$fuzz_dir/fuzz-corpus/$t" art="$fuzz_dir/fuzz-artifacts/$t/"
  mkdir -p "$scratch" "$art"
  local seeds=("$root/fuzz/corpus/$t")
  [[ -d "$root/fuzz/regressions/$t" ]] && seeds+=("$root/fuzz/regressions/$t")
  local log="$fuzz_dir/fuzz-logs/$t.log" rc=0
  # The first folder receives new inputs: the scratch corpus, not the tree.
  "$fuzz_dir/bin/$t" -max_total_time="$seconds" -runs="$runs" -max_len=8192 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$art" \
    "$scratch" "${seeds[@]}" >"$log" 2>&1 || rc=$?
  execs[$t]=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  if [[ $rc -ne 0 ]]; then
    crashed[$t]=1
    tail -60 "$log" >&2
    echo "ci_hardening: $t CRASHED (rc $rc); input(s): $(ls "$art" | tr '\n' ' ')" >&2
  else
    crashed[$t]=0
  fi
}

fuzz() {
  build_fuzzers
  mkdir -p "$fuzz_dir/fuzz-logs"
  local failed=0
  for t in "${targets[@]}"; do
    [[ -x "$fuzz_dir/bin/$t" ]] || { echo "ci_hardening: $t was not built" >&2; failed=1; continue; }
    replay "$t" || failed=1
  done
  if [[ $mode != replay ]]; then
    for t in "${targets[@]}"; do
      [[ -x "$fuzz_dir/bin/$t" ]] || continue
      run_fuzzer "$t"
      [[ ${crashed[$t]} == 0 ]] || failed=1
    done
    echo "ci_hardening: fuzz summary (budget ${seconds}s, at most $runs runs each)"
    for t in "${targets[@]}"; do
      printf '  %-22s executions %-10s crash %s\n' "$t" "${execs[$t]:-?}" \
        "$([[ ${crashed[$t]:-0} == 1 ]] && echo YES || echo no)"
    done
  fi
  return $failed
}

asan() {
  if [[ ! -f "$asan_dir/build.ninja" ]]; then
    cmake -S "$root" -B "$asan_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DBITPARITY_SANITIZE=ON -DBITPARITY_BUILD_BENCHMARKS=OFF >/dev/null
  fi
  "${lock[@]}" cmake --build "$asan_dir" -j"$jobs"
  (cd "$asan_dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure ${ASAN_TESTS:+-R "$ASAN_TESTS"})
}

case "$mode" in
  fuzz | replay) fuzz ;;
  asan) asan ;;
  all) fuzz; asan ;;
  *) echo "usage: scripts/ci_hardening.sh [fuzz|replay|asan|all]" >&2; exit 2 ;;
esac
