#!/usr/bin/env python3
"""Time of one `GET /metrics` scrape with many servers (issue 13: under 10 ms at 200 servers).

    python3 scripts/bench/metrics_scrape.py --weir .build/release/weir [--servers 200] [--scrapes 50]

Starts 4 `weir demo-backend` origins and a gateway (2 workers) whose --servers servers (in pools of
20, each server id on one of the origins) all get traffic first (a bounded number of requests,
spread over every pool), so every series and histogram has values. Then scrapes /metrics
--scrapes times over loopback, one connection each, and prints the median and the slowest time
of a scrape (request sent to last byte read), the size and the line count. All traffic is on
127.0.0.1; every process started here is stopped by its PID. A measurement, not a test: it
asserts nothing.
"""
from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout}s")


def get(port: int, path: str) -> tuple[float, bytes]:
    """One GET on a new connection: (seconds to the last byte, body)."""
    start = time.perf_counter()
    with socket.create_connection((HOST, port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while True:
            data = s.recv(1 << 16)
            if not data:
                break
            chunks.append(data)
    elapsed = time.perf_counter() - start
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {path}: {head[:80]!r}")
    return elapsed, body


def config(listen: int, admin: int, origins: list[int], servers: int, per_pool: int = 20) -> str:
    lines = ["[global]", "workers = 2", 'access_log = "off"', "", "[[listener]]", 'name = "public"',
             f'address = "{HOST}:{listen}"', "", "[admin]", f'address = "{HOST}:{admin}"',
             # A fixed token: otherwise one is generated into the default state_dir (/var/lib/weir).
             'token = "metrics-scrape-bench-token-0123456789abcdef"']
    pools = (servers + per_pool - 1) // per_pool
    for p in range(pools):
        lines += ["", "[[pool]]", f'name = "pool{p}"', 'policy = "round-robin"', "[pool.health]", 'type = "none"']
        for i in range(p * per_pool, min(servers, (p + 1) * per_pool)):
            lines += ["[[pool.server]]", f'id = "s{i}"', f'address = "{HOST}:{origins[i % len(origins)]}"']
    for p in range(pools):
        lines += ["", "[[route]]", f'name = "r{p}"', f'pool = "pool{p}"', f'path = "/p{p}/"']
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir", default=".build/release/weir")
    ap.add_argument("--servers", type=int, default=200)
    ap.add_argument("--scrapes", type=int, default=50)
    ap.add_argument("--requests", type=int, default=2000, help="requests sent before scraping (bounded)")
    args = ap.parse_args()
    procs: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            origins = []
            for n in range(4):
                port = free_port()
                procs.append(subprocess.Popen([args.weir, "demo-backend", "--port", str(port), "--name", f"o{n}",
                                               "--host", HOST], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                origins.append(port)
            for port in origins:
                wait_port(port)
            listen, admin = free_port(), free_port()
            confdir = Path(tmp) / "conf.d"
            confdir.mkdir()
            (confdir / "00-weir.toml").write_text(config(listen, admin, origins, args.servers))
            procs.append(subprocess.Popen([args.weir, "run", "-c", str(confdir)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
            wait_port(listen)
            wait_port(admin)
            pools = (args.servers + 19) // 20
            deadline = time.monotonic() + 120
            for i in range(args.requests):
                if time.monotonic() > deadline:
                    break
                get(listen, f"/p{i % pools}/x")
            times, size, lines = [], 0, 0
            for _ in range(args.scrapes):
                elapsed, body = get(admin, "/metrics")
                times.append(elapsed)
                size, lines = len(body), body.count(b"\n")
            series = len(re.findall(rb'server="', body))
            print(f"servers={args.servers} scrapes={len(times)} median={statistics.median(times) * 1000:.2f} ms "
                  f"max={max(times) * 1000:.2f} ms size={size} bytes lines={lines} server-series={series}")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
