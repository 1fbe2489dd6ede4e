#!/usr/bin/env bash
# `make run`: three demo backends on 127.0.0.1:9001-9003 and the gateway on the shipped conf.d
# (127.0.0.1:8080). Ctrl-C stops the gateway (it drains) and then the backends.
set -euo pipefail
bin=${1:-.build/release/weir}
conf=${2:-conf.d}
pids=()
# The shipped conf.d sets no state_dir: the default is $STATE_DIRECTORY (as under systemd), here an
# absolute directory in the repository, so the demo needs no root rights and any working directory works.
repo=$(cd "$(dirname "$0")/.." && pwd)
export STATE_DIRECTORY="${STATE_DIRECTORY:-$repo/.weir-state}"
# Ctrl-C reaches every process of the terminal's group, the gateway included (it drains by
# itself); a TERM is passed on to the gateway too (it counts a burst of signals once). Backends
# stop last.
cleanup() {
  local signalled=$1
  trap - INT TERM EXIT
  if [ -n "${gateway:-}" ]; then
    [ "$signalled" = "TERM" ] && kill -TERM "$gateway" 2>/dev/null
    wait "$gateway" 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap 'cleanup INT' INT
trap 'cleanup TERM' TERM
trap 'cleanup EXIT' EXIT
"$bin" check -c "$conf"
for i in 1 2 3; do
  "$bin" demo-backend --port "900$i" --name "demo-$i" &
  pids+=($!)
done
"$bin" run -c "$conf" &
gateway=$!
for _ in $(seq 50); do
  (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
  sleep 0.1
done
cat <<'TXT'

Weir is running on http://127.0.0.1:8080 in front of demo-1..3 (127.0.0.1:9001-9003),
admin on http://127.0.0.1:9090/status. The pool uses the threshold policy: a request stays at its
client's home server while that server is below 50 % load, and goes to the least-loaded server
only when that one is at least 20 % lighter. Try:
  for c in alice bob carol dave; do curl -s -H "X-Client: $c" http://127.0.0.1:8080/; done  # homes differ by client
  curl -s 'http://127.0.0.1:9001/control?load=0.9'   # demo-1 now reports 90 % load on /health
  sleep 3; for c in alice bob carol dave; do curl -s -H "X-Client: $c" http://127.0.0.1:8080/; done  # none lands on demo-1
  .build/release/weir status -c conf.d               # per-server state, load, reported load, in-flight
  curl -s http://127.0.0.1:8080/echo                 # what the server received: X-Forwarded-For, Via ...
  curl -s http://127.0.0.1:9090/metrics | grep weir_server_responses_total   # Prometheus metrics
  .build/release/weir server drain demo-1 -c conf.d --token "$(cat .weir-state/admin.token)"  # changes need the token
The live dashboard is http://127.0.0.1:9090/ (log in with the token in .weir-state/admin.token).
Access log lines follow below. Ctrl-C stops everything.

TXT
wait "$gateway"
