#!/bin/sh
# The nightly comparison, as every pod of the bitparity-nightly Indexed Job runs it
# (deploy/k8s/base/nightly-cronjob.yaml); tests/deploy/nightly_local_test.sh runs
# this same file on loopback.
#   pod I:  bitparity compare --shard I/SHARDS  -> $REPORTS_DIR/runs/$RUN_ID/shard-I.json
#   pod 0:  then waits for all SHARDS shard reports and merges them:
#           bitparity merge ... --json/--html/--markdown/--junit, --baseline the
#           previous night's report ($REPORTS_DIR/latest/report.json), then points
#           $REPORTS_DIR/latest at this night.
# Environment: JOB_COMPLETION_INDEX (set by Kubernetes for Indexed Jobs), SHARDS,
# BITPARITY_A, BITPARITY_B, RUN_ID, REPORTS_DIR; optional COMPARE_ARGS (extra
# compare flags, word-split), MERGE_WAIT_S (default 3600), BITPARITY (the binary).
# Exit: 0 shard done / engines agree, 1 engines disagree (index 0), 2 error.
set -eu

: "${JOB_COMPLETION_INDEX:?not set (an Indexed Job sets it)}"
: "${SHARDS:?}" "${BITPARITY_A:?}" "${BITPARITY_B:?}" "${RUN_ID:?}" "${REPORTS_DIR:?}"
bitparity="${BITPARITY:-bitparity}"
wait_s="${MERGE_WAIT_S:-3600}"
run_dir="$REPORTS_DIR/runs/$RUN_ID"
shard="$run_dir/shard-$JOB_COMPLETION_INDEX.json"
mkdir -p "$run_dir" "$REPORTS_DIR/junit"

# 1. This pod's shard. Exit 1 (the engines disagree on some prompt) still wrote a
# complete report: the verdict is the merge's. Exit 2 fails the pod (retried).
rc=0
# shellcheck disable=SC2086  # COMPARE_ARGS is a list of flags
"$bitparity" compare --a "$BITPARITY_A" --b "$BITPARITY_B" --shard "$JOB_COMPLETION_INDEX/$SHARDS" \
  --progress never --quiet --json "$shard.tmp" ${COMPARE_ARGS:-} || rc=$?
if [ "$rc" -gt 1 ]; then
  echo "nightly: shard $JOB_COMPLETION_INDEX/$SHARDS: bitparity compare exited $rc" >&2
  exit 2
fi
mv -f "$shard.tmp" "$shard"  # appears whole: the merging pod never reads half a file
echo "nightly: shard $JOB_COMPLETION_INDEX/$SHARDS written to $shard"
[ "$JOB_COMPLETION_INDEX" -eq 0 ] || exit 0

# 2. Index 0: wait for the other shards, then merge.
deadline=$(( $(date +%s) + wait_s ))
i=0
while [ "$i" -lt "$SHARDS" ]; do
  if [ -f "$run_dir/shard-$i.json" ]; then
    i=$((i + 1))
    continue
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "nightly: shard $i/$SHARDS did not report within ${wait_s}s" >&2
    exit 2
  fi
  sleep 5
done

set -- "$run_dir"/shard-*.json
baseline=""
if [ -f "$REPORTS_DIR/latest/report.json" ] &&
   [ "$(cd "$REPORTS_DIR/latest" && pwd -P)" != "$(cd "$run_dir" && pwd -P)" ]; then
  baseline="$REPORTS_DIR/latest/report.json"
fi
rc=0
"$bitparity" merge "$@" --json "$run_dir/report.json" --html "$run_dir/report.html" \
  --markdown "$run_dir/report.md" --junit "$run_dir/report.xml" --color never \
  ${baseline:+--baseline "$baseline"} || rc=$?
if [ "$rc" -gt 1 ]; then
  echo "nightly: bitparity merge exited $rc" >&2
  exit 2
fi
cp "$run_dir/report.xml" "$REPORTS_DIR/junit/$RUN_ID.xml"
# Tonight becomes tomorrow's baseline (a relative link, valid wherever the volume is mounted).
ln -sfn "runs/$RUN_ID" "$REPORTS_DIR/latest.tmp"
mv -fT "$REPORTS_DIR/latest.tmp" "$REPORTS_DIR/latest"
echo "nightly: merged report in $run_dir (verdict exit code $rc)"
exit "$rc"
