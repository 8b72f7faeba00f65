#!/usr/bin/env bash
# bitparity hardening checks: libFuzzer targets with a fixed budget, crash
# regressions replayed, and sanitizer builds of the test suite.
#
#   scripts/ci_hardening.sh fuzz      # build the fuzzers (clang) and run each one (default)
#   scripts/ci_hardening.sh replay    # build and replay corpora + regressions only (fast)
#   scripts/ci_hardening.sh asan      # ASan+UBSan build of the whole GoogleTest suite, run ctest
#   scripts/ci_hardening.sh asan-services  # ASan+UBSan, only the server side: services,
#                                     # cpp_ref_adapter, runtime, faults, security test
#                                     # binaries and the load tests (native + worker server)
#   scripts/ci_hardening.sh tsan      # ThreadSanitizer build of the admission gate/queue,
#                                     # thread-pool, worker-supervisor and gRPC server,
#                                     # fault and security tests, run them
#   scripts/ci_hardening.sh asan-ci   # ASan+UBSan of the test binaries in asan_ci_tests
#                                     # below (servers, adapter, batch loop, kernels, KV
#                                     # cache, parsers), two at a time
#   scripts/ci_hardening.sh ci        # what .ci/run runs after the suite: fuzz, tsan ci,
#                                     # asan-ci
#   scripts/ci_hardening.sh all       # fuzz, asan (whole suite), asan-services (+ load), tsan
#
# Environment:
#   FUZZ_SECONDS        budget per fuzzer (default 20): -max_total_time
#   FUZZ_RUNS           upper bound on executions per fuzzer (default 2000000): -runs
#   FUZZ_BUILD_DIR      default build-fuzz;  ASAN_BUILD_DIR default build-asan;
#   TSAN_BUILD_DIR      default build-tsan
#   ASAN_TESTS          ctest -R regex for the asan mode (default: every test)
#   ASAN_EXCLUDE        ctest -E regex for the asan mode (default: ^deploy_, the
#                       deploy tests: manifests and the nightly script, whose binaries
#                       the e2e, chaos and load tests already run instrumented;
#                       "" runs them too)
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
# or (asan, asan-services, tsan) a test fails or a sanitizer reports (every report
# halts the process that made it). Executions per fuzzer are printed at the end.
#
# The sanitizer builds are root options (GCC, -O1 -g1, unity build, no benchmarks):
#   -DBITPARITY_SANITIZE=ON (ASan+UBSan)   ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
#                                          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
#   -DBITPARITY_TSAN=ON     (TSan)         TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:
#                                            ignore_noninstrumented_modules=1:suppressions=...
# Debian's gRPC, protobuf and abseil are not instrumented: see tsan() below for what
# that costs and how tests/sanitizers/tsan_grpc.supp is kept narrow.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
mode=${1:-fuzz}
jobs=${JOBS:-2}
fuzz_dir=${FUZZ_BUILD_DIR:-$root/build-fuzz}
asan_dir=${ASAN_BUILD_DIR:-$root/build-asan}
asan_exclude=${ASAN_EXCLUDE-^deploy_}
tsan_dir=${TSAN_BUILD_DIR:-$root/build-tsan}
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

# Configures sanitizer build dir $1 once with the extra options "${@:2}". -O1 -g1
# and a unity build (files batched per target) keep the ASan build of the whole
# suite near 7 minutes on 2 cores instead of 11 (-O2 -g, one file at a time), so it
# fits in CI; -g1 still gives file:line in every report.
configure_sanitizer_build() {
  local dir=$1
  shift
  [[ -f "$dir/build.ninja" ]] && return 0
  cmake -S "$root" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 -DBITPARITY_BUILD_BENCHMARKS=OFF "$@" >/dev/null
}

# The whole GoogleTest suite (every ctest test but the deploy ones, servers and
# workers included: they are built instrumented too) under ASan+UBSan; any report
# fails the test that made it.
asan() {
  configure_sanitizer_build "$asan_dir" -DBITPARITY_SANITIZE=ON
  "${lock[@]}" cmake --build "$asan_dir" -j"$jobs"
  local t0=$SECONDS
  (cd "$asan_dir" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-SkylakeX}" \
     ctest --output-on-failure -j"$jobs" --timeout 900 ${ASAN_TESTS:+-R "$ASAN_TESTS"} \
       ${asan_exclude:+-E "$asan_exclude"})
  echo "ci_hardening: asan: the whole suite passed under ASan+UBSan ($((SECONDS - t0)) s)"
}

# Runs one test binary of build dir $1 (all its tests in one process: the sanitizer
# sees them together); $2: label. Prints one line; fails when the binary fails.
run_binary() {
  local dir=$1 label=$2 b=$3 t0=$SECONDS
  if [[ ! -x "$dir/bin/$b" ]]; then echo "ci_hardening: $label: $b was not built" >&2; return 1; fi
  if timeout 900 "$dir/bin/$b" --gtest_brief=1 >"$dir/$b.$label.log" 2>&1; then
    echo "ci_hardening: $label: $b passed ($(grep -o '\[  PASSED  \] [0-9]* test' "$dir/$b.$label.log" | grep -o '[0-9]*'), $((SECONDS - t0)) s)"
  else
    tail -80 "$dir/$b.$label.log" >&2
    echo "ci_hardening: $label: $b FAILED (log: $dir/$b.$label.log)" >&2
    return 1
  fi
}

# Runs test binaries of build dir $1, $jobs at a time (most of a sanitized test's time
# is waiting on the processes and deadlines it starts, so two overlap well); $2: label.
# Fails when any binary fails, after running the rest. Longest first keeps the lanes even.
run_binaries() {
  local dir=$1 label=$2 failed=0 running=0 b
  shift 2
  for b in "$@"; do
    if ((running >= jobs)); then
      wait -n || failed=1
      running=$((running - 1))
    fi
    run_binary "$dir" "$label" "$b" &
    running=$((running + 1))
  done
  while ((running > 0)); do
    wait -n || failed=1
    running=$((running - 1))
  done
  return $failed
}

server_tests=(services_unit_test services_fake_test native_server_test native_process_test
              cpp_ref_adapter_protocol_test cpp_ref_adapter_supervisor_test
              cpp_ref_adapter_pool_race_test cpp_ref_adapter_retry_test thread_pool_test faults_test
              security_test)
server_bins=(bitnet-native-server bitparity-worker-server bitparity-native-worker bitnet-synth
             bitnet-run bitparity-load)

# CI's ASan+UBSan stage. The whole suite under ASan is more than CI's 45 minutes can
# hold, so CI runs the binaries where memory errors can hide: every server and the bitnet.cpp adapter's supervisor (with the processes
# they start, instrumented), the batch loop, faults and security, the SIMD kernels, the
# KV cache and batched step, and GGUF and tokenizer parsing (also fuzzed, instrumented,
# in the fuzz stage). `asan` runs the rest too: the orchestrator (its library alone is
# ~3 min of ASan build), golden logits, tools. Zen 5, from a clean clone: the whole
# suite was a 15-minute build and a 696 s run; these 17 binaries run in 218 s.
asan_ci_tests=(faults_test native_server_test cpp_ref_adapter_retry_test cpp_ref_adapter_supervisor_test
               tokenizer_test model_batch_step_test cpp_ref_adapter_pool_race_test batch_server_test
               security_test model_test native_process_test services_fake_test gguf_reader_test
               kernels_test cpp_ref_adapter_protocol_test services_unit_test thread_pool_test)

asan_ci() {
  configure_sanitizer_build "$asan_dir" -DBITPARITY_SANITIZE=ON
  "${lock[@]}" cmake --build "$asan_dir" -j"$jobs" --target "${asan_ci_tests[@]}" "${server_bins[@]}"
  local t0=$SECONDS failed=0
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_binaries "$asan_dir" asan "${asan_ci_tests[@]}" || failed=1
  echo "ci_hardening: asan-ci: ${#asan_ci_tests[@]} test binaries under ASan+UBSan ($((SECONDS - t0)) s)"
  return $failed
}

asan_services() {
  configure_sanitizer_build "$asan_dir" -DBITPARITY_SANITIZE=ON
  "${lock[@]}" cmake --build "$asan_dir" -j"$jobs" --target "${server_tests[@]}" "${server_bins[@]}"
  local failed=0
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run_binaries "$asan_dir" asan "${server_tests[@]}" || failed=1
  # The servers under load, instrumented (2 clients x 4 s each).
  local kind
  for kind in native worker; do
    if "${lock[@]}" bash "$root/tests/load/load_test.sh" "$asan_dir/bin" 2 4 "$kind" >"$asan_dir/load-$kind.asan.log" 2>&1; then
      echo "ci_hardening: asan: load_test $kind passed: $(grep -o '"sent": [0-9]*' "$asan_dir/load-$kind.asan.log")"
    else
      tail -40 "$asan_dir/load-$kind.asan.log" >&2
      echo "ci_hardening: asan: load_test $kind FAILED" >&2
      failed=1
    fi
  done
  unset ASAN_OPTIONS UBSAN_OPTIONS
  return $failed
}

# TSan covers the admission gate, the thread pool, the batch loop of the native
# server (batch_server_test) and the worker supervisor (pool,
# processes, backend, retries after a worker death) without gRPC, and the
# gRPC-facing tests too: the services on a fake backend, the native server (and
# its process: drain on SIGTERM), the worker server, the fault and security
# suites, and the chaos test (bitparity compare while workers are SIGKILLed). Their server and worker processes are
# built with TSan as well and inherit TSAN_OPTIONS. Debian's gRPC, protobuf and
# abseil are not instrumented, so gRPC's own inline header code shows races with
# itself; tests/sanitizers/tsan_grpc.supp suppresses exactly those (top frame in
# gRPC or in the std::function objects it passes between its threads), never a
# report whose top frame is ours. Every report from any process is written to
# $tsan_dir/tsan-reports/ and fails the stage.
# CI runs the first list, longest first, two at a time; `tsan` adds the orchestrator's
# chaos test (with the bitparity CLI built under TSan), the native server (golden
# logits) and the fault suite. (Zen 5, 2 cores: the CI list with the chaos test took
# 483 s one at a time; the chaos test alone 139 s, and its build ~2 min more.)
tsan_ci_tests=(cpp_ref_adapter_retry_test cpp_ref_adapter_supervisor_test cpp_ref_adapter_pool_race_test
               batch_server_test security_test native_process_test services_fake_test thread_pool_test
               services_unit_test)
tsan_tests=(orchestrator_chaos_test "${tsan_ci_tests[@]}" native_server_test faults_test)

tsan() {
  [[ ${1:-all} == ci ]] && tsan_tests=("${tsan_ci_tests[@]}")
  configure_sanitizer_build "$tsan_dir" -DBITPARITY_TSAN=ON
  local cli=()
  [[ " ${tsan_tests[*]} " == *" orchestrator_chaos_test "* ]] && cli=(bitparity)
  "${lock[@]}" cmake --build "$tsan_dir" -j"$jobs" --target "${tsan_tests[@]}" \
    bitparity-native-worker bitparity-worker-server bitnet-native-server bitnet-synth bitnet-run "${cli[@]}"
  local reports="$tsan_dir/tsan-reports" failed=0
  rm -rf "$reports" && mkdir -p "$reports"
  TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:ignore_noninstrumented_modules=1:suppressions=$root/tests/sanitizers/tsan_grpc.supp:log_path=$reports/report" \
    run_binaries "$tsan_dir" tsan "${tsan_tests[@]}" || failed=1
  if compgen -G "$reports/report*" >/dev/null; then
    head -n 60 "$reports"/report* >&2
    echo "ci_hardening: tsan: ThreadSanitizer reports in $reports (above)" >&2
    failed=1
  fi
  return $failed
}

case "$mode" in
  fuzz | replay) fuzz ;;
  asan) asan ;;
  asan-services) asan_services ;;
  tsan) tsan ;;
  asan-ci) asan_ci ;;
  ci) fuzz; tsan ci; asan_ci ;;
  all) fuzz; asan; asan_services; tsan ;;
  *) echo "usage: scripts/ci_hardening.sh [fuzz|replay|asan|asan-ci|asan-services|tsan|ci|all]" >&2; exit 2 ;;
esac
