#!/usr/bin/env bash
# Load test of a bitnet.v1 server on loopback.
#
#   tests/load/load_test.sh BIN_DIR [CLIENTS] [SECONDS] [SERVER]
#
# SERVER: native (bitnet-native-server, default), worker (bitparity-worker-server:
# our engine in 2 supervised worker processes) or cpp (bitnet-cpp-server: the real
# bitnet.cpp in 2 worker processes; exits 77, reported as skipped, when it was not
# built or BITNET_CPP_DIR is unset).
#
# Writes the tiny synthetic model, starts the server with a small admission gate
# (--max-concurrent 2 --queue 2, so some requests are turned away with
# RESOURCE_EXHAUSTED), runs bitparity-load, stops the server with SIGTERM and checks:
#   - bitparity-load exits 0: every request sent has a result, and the deliberately bad
#     requests got INVALID_ARGUMENT / OUT_OF_RANGE;
#   - the server exits 0 after SIGTERM;
#   - every request id the client used is in the server's request log exactly once, with
#     the code the client got (nothing lost, nothing answered twice), and the server
#     logged no request the client did not send.
# Speed is printed, never asserted.
set -euo pipefail
bin=${1:?usage: load_test.sh BIN_DIR [CLIENTS] [SECONDS] [native|worker|cpp]}
clients=${2:-4}
seconds=${3:-6}
kind=${4:-native}
case "$kind" in
  native) server=("$bin/bitnet-native-server") ;;
  worker) server=("$bin/bitparity-worker-server" --workers 2) ;;
  cpp)
    if [[ -z "${BITNET_CPP_DIR:-}" || ! -x "$bin/bitnet-cpp-server" ]]; then
      echo "load_test: SKIPPED load_cpp_test: needs bitnet-cpp-server (configure with -DBITNET_CPP_DIR)" \
           "and BITNET_CPP_DIR set"
      exit 77
    fi
    server=("$bin/bitnet-cpp-server" --workers 2) ;;
  *) echo "load_test: unknown server kind '$kind' (native|worker|cpp)" >&2; exit 2 ;;
esac
tmp=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid"; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

"$bin/bitnet-synth" --shape tiny --seed 1 --out "$tmp/M.gguf" >/dev/null
"${server[@]}" --model "$tmp/M.gguf" --listen 127.0.0.1:0 --port-file "$tmp/port" \
  --threads 1 --max-concurrent 2 --queue 2 2>"$tmp/server.log" &
server_pid=$!
for _ in $(seq 1 300); do
  [[ -s "$tmp/port" ]] && grep -q '"loaded"' "$tmp/server.log" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; echo "load_test: server died" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$tmp/port" ]] || { echo "load_test: server did not start" >&2; exit 1; }
port=$(cat "$tmp/port")

rc=0
"$bin/bitparity-load" --target "127.0.0.1:$port" --clients "$clients" --seconds "$seconds" \
  --requests-out "$tmp/requests.tsv" || rc=$?

kill -TERM "$server_pid"
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=
if [[ $rc -ne 0 ]]; then echo "load_test: bitparity-load exited $rc" >&2; exit 1; fi
if [[ $server_rc -ne 0 ]]; then tail -5 "$tmp/server.log" >&2; echo "load_test: server exited $server_rc after SIGTERM" >&2; exit 1; fi

# Client and server sides, request by request.
/usr/bin/python3 - "$tmp/requests.tsv" "$tmp/server.log" <<'PY'
import json, sys
client = {}
for line in open(sys.argv[1]):
    rid, rpc, code = line.rstrip("\n").split("\t")
    client[rid] = (rpc, code)
server = {}
dups = 0
for line in open(sys.argv[2]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") != "request" or not str(e.get("id", "")).startswith("load-"):
        continue
    if e["id"] in server:
        dups += 1
    server[e["id"]] = (e.get("rpc"), e.get("code"))
missing = [r for r in client if r not in server]
extra = [r for r in server if r not in client]
mismatch = [(r, client[r], server[r]) for r in client if r in server and client[r] != server[r]]
print("load_test: client %d requests, server logged %d; missing %d, extra %d, duplicated %d, "
      "code mismatches %d" % (len(client), len(server), len(missing), len(extra), dups, len(mismatch)))
for m in mismatch[:5]:
    print("  mismatch:", m)
for r in missing[:5]:
    print("  missing:", r, client[r])
sys.exit(1 if (missing or extra or dups or mismatch or not client) else 0)
PY
