#!/usr/bin/env bash
# python_client_test: examples/python/client.py (Debian's python3-grpcio and
# stubs generated from the .proto) against a live bitnet-native-server.
# usage: python_client_test.sh SERVER MODEL PYTHON CLIENT STUBS_DIR
set -euo pipefail
server="$1" model="$2" python="$3" client="$4" stubs="$5"
dir="$(mktemp -d /tmp/bitparity-pyclient-XXXXXX)"
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$server" --model "$model" --listen 127.0.0.1:0 --port-file "$dir/port" --threads 1 2>"$dir/server.log" &
pid=$!
for _ in $(seq 1 200); do
  [[ -s "$dir/port" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log"; echo "server exited early"; exit 1; }
  sleep 0.05
done
[[ -s "$dir/port" ]] || { cat "$dir/server.log"; echo "no port file"; exit 1; }
port="$(cat "$dir/port")"

# The server loads the model after binding; the client's first call waits for it
# with gRPC's wait-for-ready semantics only if asked, so give loading a moment.
status=0
for attempt in 1 2 3 4 5; do
  if "$python" "$client" --stubs "$stubs" --address "127.0.0.1:$port" --prompt "The quick brown fox" \
       --max-new-tokens 12 --check; then
    status=0; break
  else
    status=$?
    [[ $status -eq 2 ]] || break  # 2 = RPC error (e.g. still loading): retry
    sleep 0.5
  fi
done

kill -TERM "$pid"
wait "$pid"; server_status=$?
pid=""
if [[ $status -ne 0 ]]; then cat "$dir/server.log"; echo "client failed ($status)"; exit 1; fi
if [[ $server_status -ne 0 ]]; then cat "$dir/server.log"; echo "server exit $server_status"; exit 1; fi
grep -q '"rpc":"Generate".*"code":"OK"' "$dir/server.log" || { echo "no Generate in the log"; exit 1; }
grep -q '"rpc":"EvalLogits".*"code":"OK"' "$dir/server.log" || { echo "no EvalLogits in the log"; exit 1; }
echo "python client test passed"
