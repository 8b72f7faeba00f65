#!/usr/bin/env bash
# deploy_nightly_local: runs the CronJob's exact commands (deploy/k8s/base/nightly.sh,
# the file the ConfigMap carries) on loopback:
#   - two bitnet-native-server processes on a tiny synth model (side B on its scalar
#     kernels, as the dev overlay does), addressed as in the cluster (side A as a
#     dns:/// address, balanced round-robin);
#   - night 1: pods 0 and 1 of a two-shard Indexed Job (pod 0 started first, so it
#     really waits for shard 1 before merging);
#   - one unsharded `bitparity compare` with the same flags;
#   - the merged report must equal the unsharded one: every per-prompt result, the
#     overall figures, the checks and the verdict. Excluded, by nature: timing
#     (wall_s, wall_ms, eval_ms_a/b), provenance of the run (created_utc, command,
#     host, the shard/shards bookkeeping), the servers' memory figures (sides.*.info
#     other than the model) and speed (measured per shard; the runs use --no-speed);
#   - night 2 runs against night 1 as --baseline;
#   - a night against a faulty side A (injected scale error): pod 0 exits 1, and the
#     merged report (failing checks, localization) still equals the unsharded run's;
#   - calls to a list of two side-A replicas are balanced round-robin over both;
#   - a merge with a shard missing is refused (exit 2).
# Usage: nightly_local_test.sh BIN_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
bin="$1"
src="$2"
work="$3"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
nightly="$src/deploy/k8s/base/nightly.sh"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

"$bin/bitnet-synth" --shape tiny --seed 1 --out M.gguf >/dev/null
"$bin/bitnet-native-server" -m M.gguf --listen 127.0.0.1:0 --port-file a.port -t 1 >a.log 2>&1 &
pids+=($!)
"$bin/bitnet-native-server" -m M.gguf --listen 127.0.0.1:0 --port-file b.port -t 1 --kernels scalar >b.log 2>&1 &
pids+=($!)
for f in a.port b.port; do
  for _ in $(seq 100); do [[ -s $f ]] && break; sleep 0.1; done
  [[ -s $f ]] || { cat a.log b.log; echo "a server did not start" >&2; exit 1; }
done
pa="$(cat a.port)"
pb="$(cat b.port)"
# The containers' health check, polled the way Kubernetes polls a readiness probe: a
# server answers NOT_SERVING (exit 1) while its model loads, which can take a while
# when the machine is busy with other tests, then SERVING.
wait_serving() {  # ADDRESS
  local deadline=$((SECONDS + 60))
  until "$bin/bitparity" health --quiet --timeout 5 "$1"; do
    ((SECONDS < deadline)) || { "$bin/bitparity" health --timeout 5 "$1"; echo "$1 never became SERVING" >&2; exit 1; }
    sleep 0.2
  done
}
wait_serving "127.0.0.1:$pa"
wait_serving "127.0.0.1:$pb"

export SHARDS=2 BITPARITY="$bin/bitparity" REPORTS_DIR="$work/reports" MERGE_WAIT_S=120
export BITPARITY_A="dns:///127.0.0.1:$pa" BITPARITY_B="127.0.0.1:$pb"
export COMPARE_ARGS="--limit 12 --no-speed --jobs 2 --max-new-tokens 8"

night() {  # RUN_ID [pod 0's expected exit code]: pod 0 first (it waits for shard 1), then pod 1
  local rc0=0 rc1=0 want0="${2:-0}"
  RUN_ID="$1" JOB_COMPLETION_INDEX=0 sh "$nightly" >"pod0-$1.log" 2>&1 &
  local p0=$!
  sleep 0.5
  RUN_ID="$1" JOB_COMPLETION_INDEX=1 sh "$nightly" >"pod1-$1.log" 2>&1 || rc1=$?
  wait "$p0" || rc0=$?
  cat "pod1-$1.log" "pod0-$1.log"
  [[ $rc1 -eq 0 && $rc0 -eq $want0 ]] || { echo "night $1: pod exit codes 0:$rc0 1:$rc1 (want $want0, 0)" >&2; exit 1; }
}
night night-1

# The same comparison, unsharded.
# shellcheck disable=SC2086
"$bin/bitparity" compare --a "$BITPARITY_A" --b "$BITPARITY_B" --progress never --quiet --json full.json $COMPARE_ARGS

cat >compare_reports.py <<'PY'
import json, os, sys, xml.etree.ElementTree as ET
merged_path, full_path, reports, schema_path, run_id, want = sys.argv[1:7]
merged, full = json.load(open(merged_path)), json.load(open(full_path))
assert "shards" in merged and len(merged["shards"]) == 2, "merged report lists its two shards"
assert all(s["prompts"] > 0 for s in merged["shards"]), "both shards ran prompts"
VOLATILE_TOP = {"created_utc", "command", "host", "wall_s", "shard", "shards", "speed", "speed_error", "sides"}
def norm(r):
    r = {k: v for k, v in r.items() if k not in VOLATILE_TOP}
    ps = []
    for p in r["prompts"]:
        p = {k: v for k, v in p.items() if k != "wall_ms"}
        if isinstance(p.get("drift"), dict):
            p["drift"] = {k: v for k, v in p["drift"].items() if k not in ("eval_ms_a", "eval_ms_b")}
        ps.append(p)
    r["prompts"] = ps
    return r
def models(r):
    return {s: r["sides"][s]["info"]["model"] for s in ("a", "b")}
a, b = norm(merged), norm(full)
diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
if diff:
    for k in diff:
        print("DIFFERS:", k, json.dumps(a.get(k))[:300], "\n   vs  ", json.dumps(b.get(k))[:300])
    sys.exit("the merged report differs from the unsharded run's")
assert models(merged) == models(full), "same models"
assert [p["id"] for p in merged["prompts"]] == [p["id"] for p in full["prompts"]], "prompt order restored"
assert merged["verdict"]["exit_code"] == int(want), merged["verdict"]
assert merged["overall"]["noise"]["max_abs"]["max"] > 0, "the noise floor was measured"
print(f"{run_id}: merged report == unsharded report ({len(full['prompts'])} prompts, {full['overall']['positions']} positions,"
      f" max|Δ| {full['overall']['drift']['max_abs']['max']}, traced {full['overall']['localization']['traced_prompts']},"
      f" verdict: {merged['verdict']['summary']})")
ET.parse(os.path.join(reports, "junit", run_id + ".xml"))  # JUnit for dashboards parses
assert os.readlink(os.path.join(reports, "latest")) == "runs/" + run_id
try:
    import jsonschema
except ImportError:
    print("SKIPPED (sub-check): schema validation of the merged report: python3-jsonschema is not installed")
else:
    jsonschema.validate(merged, json.load(open(schema_path)))
    print("merged report validates against orchestrator/schema/report.schema.json")
PY
python3 compare_reports.py "$work/reports/runs/night-1/report.json" full.json "$work/reports" \
  "$src/orchestrator/schema/report.schema.json" night-1 0

# Night 2: its merge compares with night 1 (--baseline) and moves latest.
night night-2
python3 - "$work/reports" <<'PY'
import json, os, sys
reports = sys.argv[1]
r = json.load(open(os.path.join(reports, "runs", "night-2", "report.json")))
assert isinstance(r["baseline"], dict), "night 2 was compared with night 1"
assert r["baseline"]["path"].endswith("latest/report.json"), r["baseline"]
assert any(c["name"] == "baseline" and c["status"] == "pass" for c in r["checks"]), r["checks"]
assert os.readlink(os.path.join(reports, "latest")) == "runs/night-2"
print("night 2 compared with night 1 as baseline:", [c for c in r["checks"] if c["name"] == "baseline"][0]["summary"])
PY

# Disagreeing engines: side A with an injected fault (a 1e-3 scale error in layer
# 1's ffn_down). Pod 0's merge exits 1 (the Job fails: the verdict), pod 1 exits 0;
# the merged report still equals the unsharded run's, localization included (every
# failing prompt is traced: --trace-prompts covers them all in both runs).
"$bin/bitnet-native-server" -m M.gguf --listen 127.0.0.1:0 --port-file c.port -t 1 \
  --inject-fault scale-error:1:ffn_down >c.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s c.port ]] && break; sleep 0.1; done
wait_serving "127.0.0.1:$(cat c.port)"
export REPORTS_DIR="$work/fault-reports" BITPARITY_A="dns:///127.0.0.1:$(cat c.port)"
export COMPARE_ARGS="$COMPARE_ARGS --trace-prompts 12"
night fault-1 1
rc=0
# shellcheck disable=SC2086
"$bin/bitparity" compare --a "$BITPARITY_A" --b "$BITPARITY_B" --progress never --quiet --json fault-full.json \
  $COMPARE_ARGS || rc=$?
[[ $rc -eq 1 ]] || { echo "unsharded compare with a fault: exit $rc, want 1" >&2; exit 1; }
python3 compare_reports.py "$work/fault-reports/runs/fault-1/report.json" fault-full.json "$work/fault-reports" \
  "$src/orchestrator/schema/report.schema.json" fault-1 1

# Round-robin over replicas: side A as a list of two servers (the policy bitparity
# sets for dns:/// names, which a headless Service resolves to every replica);
# both replicas must have served evaluation requests.
"$bin/bitnet-native-server" -m M.gguf --listen 127.0.0.1:0 --port-file a2.port -t 1 >a2.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -s a2.port ]] && break; sleep 0.1; done
evals() { grep -c '"event":"request".*"rpc":"EvalLogits' "$1" || true; }
before="$(evals a.log)"
"$bin/bitparity" compare --a "ipv4:127.0.0.1:$pa,127.0.0.1:$(cat a2.port)" --b "127.0.0.1:$pb" --progress never \
  --quiet --limit 8 --no-speed --max-new-tokens 2
n1=$(( $(evals a.log) - before ))
n2="$(evals a2.log)"
echo "round-robin: replica 1 served $n1 EvalLogits calls, replica 2 served $n2"
[[ $n1 -gt 0 && $n2 -gt 0 ]] || { echo "calls were not balanced over both replicas" >&2; exit 1; }

# A merge with a shard missing is refused.
rc=0
"$bin/bitparity" merge "$work/reports/runs/night-1/shard-0.json" --quiet 2>merge-missing.err || rc=$?
cat merge-missing.err
[[ $rc -eq 2 ]] && grep -q "shard 1/2 is missing" merge-missing.err || { echo "merge with a shard missing: exit $rc" >&2; exit 1; }
echo "deploy_nightly_local: passed"
