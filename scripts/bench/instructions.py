#!/usr/bin/env python3
"""Instructions per request of a Weir binary, counted by callgrind: the figure that noise does not move.

    python3 scripts/bench/instructions.py --weir .build/release/weir [--weir OTHER ...] [--haproxy] [--requests 3000]

For each binary and scenario, Weir runs under `valgrind --tool=callgrind` (one worker) in front of an
nginx origin (from apt, not under valgrind) and gets two bounded runs of requests: N/3 and N. The
difference of the two totals divided by the difference of the request counts is the cost of one
request, with start-up and shutdown cancelled out. The same difference of the calls to the C heap
allocator (malloc, calloc, realloc, posix_memalign, ...) gives the allocations per request. Everything is on 127.0.0.1; every process started
here is stopped by its PID.

--haproxy counts /usr/sbin/haproxy (one thread, `http-reuse always`, the same origin; h2c by `proto h2`
for the HTTP/2 scenarios) the same way: a ratio to it that noise does not move. It covers user-space
work only: the system calls (4 per keep-alive request for both) are the same and not counted.
haproxy allocates from its own pools, so its allocator calls are near 0.

Scenarios:
  small      6-byte body, one keep-alive connection
  16k        16 KiB body, one keep-alive connection
  1m         1 MiB body, one keep-alive connection
  post       POST with a 1 KiB Content-Length body, 6-byte answer, keep-alive
  close      6-byte body, a new connection per request
  h2-1       6-byte body over HTTP/2 with prior knowledge (h2load, one connection, one stream at a time)
  h2-100     the same with 100 concurrent streams on the connection
  tls        "small" over TLS (TLS 1.3, P-256 ECDSA certificate made at start), one keep-alive connection
  h2tls-100  "h2-100" over TLS (ALPN h2), as `make bench`'s h2 scenarios run
  tls-close  "close" over TLS: a full TLS 1.3 handshake (P-256 ECDSA, no resumption) per request

The TLS scenarios count what the two heads, the records' crypto and the TLS layer's buffering cost
per request; the one handshake per run cancels out.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"

SCENARIOS = {
    "small": dict(path="/small", keepalive=True, body=b""),
    "16k": dict(path="/16k", keepalive=True, body=b""),
    "1m": dict(path="/1m", keepalive=True, body=b""),
    "post": dict(path="/small", keepalive=True, body=b"x" * 1024),
    "close": dict(path="/small", keepalive=False, body=b""),
    # HTTP/2 (h2c, so that TLS, which costs every proxy the same, stays out of the figure).
    "h2-1": dict(path="/small", keepalive=True, body=b"", h2_streams=1),
    "h2-100": dict(path="/small", keepalive=True, body=b"", h2_streams=100),
    "tls": dict(path="/small", keepalive=True, body=b"", tls=True),
    "h2tls-100": dict(path="/small", keepalive=True, body=b"", h2_streams=100, tls=True),
    "tls-close": dict(path="/small", keepalive=False, body=b"", tls=True),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout}s")


def start_nginx(tmp: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    root = tmp / "www"
    root.mkdir()
    (root / "small").write_bytes(b"hello\n")
    (root / "16k").write_bytes(b"a" * 16384)
    (root / "1m").write_bytes(b"m" * (1 << 20))
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    server {{
        listen {HOST}:{port};
        root {root};
        location / {{ error_page 405 =200 $uri; }}
    }}
}}
""")
    p = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def make_cert(tmp: Path) -> tuple[Path, Path, Path]:
    """A self-signed P-256 ECDSA certificate for 127.0.0.1: (cert, key, cert + key for haproxy)."""
    cert, key, combined = tmp / "cert.pem", tmp / "key.pem", tmp / "combined.pem"
    if not combined.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
        combined.write_bytes(cert.read_bytes() + key.read_bytes())
    return cert, key, combined


def weir_conf(tmp: Path, name: str, port: int, origin: int, s: dict) -> Path:
    if s.get("tls"):
        cert, key, _ = make_cert(tmp)
        listener = f'[listener.tls]\ncert = "{cert}"\nkey = "{key}"\n'
    else:
        listener = "h2c = true\n"
    d = tmp / f"conf-{name}"
    d.mkdir()
    (d / "00.toml").write_text(f"""
[global]
workers = 1
access_log = "off"
drain_timeout = "2s"
state_dir = "{tmp}/state-{name}"

[[listener]]
name = "public"
address = "{HOST}:{port}"
{listener}
[admin]
address = "off"

[[pool]]
name = "p"
policy = "round-robin"
[[pool.server]]
id = "nginx"
address = "{HOST}:{origin}"

[[route]]
name = "all"
pool = "p"
path = "/"
""")
    return d


def request_bytes(s: dict) -> bytes:
    method = "POST" if s["body"] else "GET"
    head = f"{method} {s['path']} HTTP/1.1\r\nHost: bench\r\n"
    if s["body"]:
        head += f"Content-Length: {len(s['body'])}\r\n"
    if not s["keepalive"]:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + s["body"]


def read_response(sock: socket.socket, buf: bytearray) -> None:
    """Reads one response with a Content-Length body from `sock` (leftovers stay in `buf`)."""
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", bytes(buf[:end]))
            if not m:
                raise RuntimeError(f"response without Content-Length: {bytes(buf[:end])!r}")
            total = end + 4 + int(m.group(1))
            while len(buf) < total:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("connection closed mid-response")
                buf += chunk
            status = bytes(buf[9:12])
            if status != b"200":
                raise RuntimeError(f"status {status!r}")
            del buf[:total]
            return
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before a response")
        buf += chunk


def drive(port: int, s: dict, count: int) -> None:
    scheme = "https" if s.get("tls") else "http"
    if "h2_streams" in s:
        # One connection (below http2_max_requests), every response checked by h2load.
        out = subprocess.run(["h2load", "-n", str(count), "-c", "1", "-m", str(s["h2_streams"]),
                              f"{scheme}://{HOST}:{port}{s['path']}"], capture_output=True, text=True, timeout=600)
        if f"{count} succeeded" not in out.stdout or "status codes: " + str(count) + " 2xx" not in out.stdout:
            raise RuntimeError(f"h2load did not complete {count} requests:\n{out.stdout[-800:]}")
        return
    req = request_bytes(s)
    context = None
    if s.get("tls"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["http/1.1"])

    def connect() -> socket.socket:
        sock = socket.create_connection((HOST, port), timeout=30)
        return context.wrap_socket(sock) if context else sock   # a new TLS session each time: no resumption

    if s["keepalive"]:
        with connect() as sock:
            buf = bytearray()
            for _ in range(count):
                sock.sendall(req)
                read_response(sock, buf)
    else:
        for _ in range(count):
            with connect() as sock:
                sock.sendall(req)
                read_response(sock, bytearray())


def stripped_copy(weir: str, tmp: Path, index: int) -> str:
    """A copy without debug info: valgrind 3.19 cannot read the DWARF 5 the Swift toolchain writes.
    The code, hence every instruction count, is the same."""
    copy = tmp / f"weir-{index}"
    subprocess.run(["strip", "--strip-debug", "-o", str(copy), weir], check=True)
    return str(copy)


ALLOCATORS = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"}
NAME_DEF = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")


def allocator_calls(out: Path) -> int:
    """Calls to the C heap allocator recorded in a callgrind file (every Swift allocation ends in malloc
    or posix_memalign). Callgrind compresses names: `cfn=(7) malloc` defines id 7, a later `cfn=(7)`
    reuses it; the `calls=N ...` line after a `cfn=` counts the calls to that function."""
    names: dict[str, str] = {}
    callee = ""
    total = 0
    for line in out.read_text(errors="replace").splitlines():
        if line.startswith("cfn=") or line.startswith("fn="):
            m = NAME_DEF.match(line)
            if m:
                if m.group(2):
                    names[m.group(1)] = m.group(2)
                name = names.get(m.group(1), "")
            else:
                name = line.split("=", 1)[1]
            if line.startswith("cfn="):
                callee = name
        elif line.startswith("calls=") and callee in ALLOCATORS:
            total += int(line[6:].split()[0])
    return total


HAPROXY = "/usr/sbin/haproxy"


def haproxy_conf(tmp: Path, name: str, port: int, origin: int, s: dict) -> Path:
    conf = tmp / f"haproxy-{name}.cfg"
    if s.get("tls"):
        h2 = f" ssl crt {make_cert(tmp)[2]} alpn {'h2' if 'h2_streams' in s else 'http/1.1'}"
    else:
        h2 = " proto h2" if "h2_streams" in s else ""
    conf.write_text(f"""global
    nbthread 1
defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind {HOST}:{port}{h2}
    default_backend be
backend be
    balance roundrobin
    server nginx {HOST}:{origin}
""")
    return conf


def callgrind_total(weir: str, tmp: Path, tag: str, origin: int, s: dict, count: int) -> tuple[int, int]:
    """(instructions, allocator calls) of one Weir (or, for `weir == HAPROXY`, haproxy) process under
    callgrind that served `count` requests."""
    port = free_port()
    if weir == HAPROXY:
        command = [HAPROXY, "-f", str(haproxy_conf(tmp, tag, port, origin, s)), "-db"]
    else:
        command = [weir, "run", "-c", str(weir_conf(tmp, tag, port, origin, s))]
    out = tmp / f"callgrind.{tag}"
    p = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=120)
        drive(port, s, count)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for line in out.read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1]), allocator_calls(out)
    raise RuntimeError(f"no totals in {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weir", action="append", required=True, help="a weir binary (repeat to compare)")
    ap.add_argument("--haproxy", action="store_true", help=f"count {HAPROXY} too (ratios to it)")
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: all")
    ap.add_argument("--requests", type=int, default=3000, help="requests in the long run (the short one has a third)")
    ap.add_argument("--keep", metavar="DIR", help="copy the callgrind files here (for callgrind_annotate)")
    args = ap.parse_args()
    scenarios = args.scenario or list(SCENARIOS)
    long_n = max(30, args.requests)
    short_n = long_n // 3
    with tempfile.TemporaryDirectory(prefix="weir-instr-") as t:
        tmp = Path(t)
        os.chmod(tmp, 0o755)   # nginx's workers (www-data) read the files under it
        nginx, origin = start_nginx(tmp)
        try:
            results: dict[str, dict[str, float]] = {}
            allocations: dict[str, dict[str, float]] = {}
            subjects = args.weir + ([HAPROXY] if args.haproxy else [])
            for w, weir in enumerate(subjects):
                binary = HAPROXY if weir == HAPROXY else stripped_copy(weir, tmp, w)
                for name in scenarios:
                    s = SCENARIOS[name]
                    short = callgrind_total(binary, tmp, f"{w}-{name}-short", origin, s, short_n)
                    long = callgrind_total(binary, tmp, f"{w}-{name}-long", origin, s, long_n)
                    per = (long[0] - short[0]) / (long_n - short_n)
                    allocs = (long[1] - short[1]) / (long_n - short_n)
                    results.setdefault(name, {})[weir] = per
                    allocations.setdefault(name, {})[weir] = allocs
                    print(f"{name:6s} {weir}: {per:,.0f} instructions/request, {allocs:.2f} allocations/request",
                          flush=True)
        finally:
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                for f in tmp.glob("callgrind.*"):
                    (Path(args.keep) / f.name).write_bytes(f.read_bytes())
            nginx.send_signal(signal.SIGTERM)
            nginx.wait(timeout=10)
    if len(args.weir) > 1:
        base = args.weir[0]
        print(f"\ninstructions per request, ratio to {base}:")
        for name, row in results.items():
            print(f"{name:6s} " + "  ".join(f"{row[w] / row[base]:.3f}" for w in args.weir))
    if args.haproxy:
        print("\ninstructions per request, ratio to haproxy (" + ", ".join(args.weir) + "):")
        for name, row in results.items():
            print(f"{name:6s} " + "  ".join(f"{row[w] / row[HAPROXY]:.3f}" for w in args.weir))
        print("\nallocations per request:")
        for name, row in allocations.items():
            print(f"{name:6s} " + "  ".join(f"{row[w]:.2f}" for w in args.weir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
