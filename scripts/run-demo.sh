#!/usr/bin/env bash
# `make run`: three demo backends on 127.0.0.1:9001-9003 and the gateway on the shipped conf.d
# (127.0.0.1:8080). Ctrl-C stops the gateway (it drains) and then the backends.
set -euo pipefail
bin=${1:-.build/release/weir}
conf=${2:-conf.d}
pids=()
cleanup() {
  trap - INT TERM EXIT
  [ -n "${gateway:-}" ] && kill -TERM "$gateway" 2>/dev/null && wait "$gateway" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT
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

Weir is running on http://127.0.0.1:8080 in front of demo-1..3 (127.0.0.1:9001-9003).
Try:
  curl -i http://127.0.0.1:8080/                 # round-robin: X-Served-By changes
  curl -s http://127.0.0.1:8080/echo             # what the backend received (X-Forwarded-For, Via ...)
  curl -s 'http://127.0.0.1:8080/?size=100000' | wc -c
  curl -i 'http://127.0.0.1:8080/?chunked=1&trailers=1&size=10' --raw
Access log lines follow below. Ctrl-C stops everything.

TXT
wait "$gateway"
