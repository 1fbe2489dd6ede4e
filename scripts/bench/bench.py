#!/usr/bin/env python3
"""Weir benchmark harness: Weir vs haproxy vs nginx in front of the same origins, wrk as the client.

Run (normally via `make bench` / `make bench-all`):

    python3 scripts/bench/bench.py --weir .build/release/weir [--quick] [--scenario NAME ... | --all]
                                   [--repeats N] [--duration S] [--warmup S] [--proxies weir,haproxy,nginx]
                                   [--no-pin] [--out results.json]

Method (issue 9): two nginx origins (one worker each, access log off); the proxy under test alone on
one CPU, wrk, the origins and this script on another (`taskset`); one worker/thread per proxy; a fresh
proxy per run, 2 s warm-up + 8 s measured; N interleaved rounds (weir, haproxy, nginx; weir, ...) and
the median of each column. The main figure is the proxy's CPU time per request (utime+stime of all
its processes); "CPU % of a core" shows whether the proxy was the saturated side.

Everything listens on 127.0.0.1 only. Every process the harness starts is stopped by its PID in a
`finally` block (plus a SIGTERM/SIGINT handler). No third-party Python dependencies.

Extending:
  * a scenario is one dict in SCENARIOS (path, connections, extra wrk headers, backends, policy...);
  * a proxy is a subclass of Proxy with `config(backends, policy)` (returns the config text) and
    `command(conf_path)`; register it in PROXIES;
  * an origin kind is a subclass of Backend; `--backend` chooses the kind.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import os
import resource
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import http.client

HOST = "127.0.0.1"
WANT_NOFILE = 65536
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

# --------------------------------------------------------------------------------------------
# Scenarios. Keys:
#   name, desc      : identifiers (name is what --scenario takes)
#   path            : request path for wrk (and the pre-flight check)
#   connections     : wrk -c
#   headers         : extra wrk -H headers
#   backends        : list of origin specs {"name": ..., "args": [extra demo-backend args]}
#   origins         : origin kind (a BACKENDS key), default "nginx"; --backend overrides it unless
#                     `fixed_origins` (the policies scenario needs the demo backend's --delay)
#   policy          : canonical (Weir) balancing policy name; translated per proxy by POLICIES
#   policies        : optional {proxy: [run, ...]}: one measured row per entry, where a run is a canonical
#                     policy name or {"policy", "label", "server": {extra Weir server keys},
#                     "listener": {extra Weir listener keys}, "expect_status": N}; proxies not listed run
#                     once with `policy`
#   only            : optional list of the proxies this scenario runs (default: all of --proxies)
#   baseline        : row label the ratio columns divide by (default "haproxy")
#   table           : "policies" for the per-policy table (backend shares), else the standard table
#   main            : the main figure, first in the table: "cpu" (CPU µs/req, default) or "p99"
#   pin             : default True: the proxy alone on one CPU, wrk and the origins on another
#   saturation      : default True: flag pinned rows where the proxy used < SATURATED_PCT of its core
#                     (off for paced / latency scenarios)
#   threads         : proxy threads for this scenario (default --threads)
#   pace_ms         : optional: each wrk connection waits this long between its requests (wrk's Lua delay())
#   expect_bytes    : expected body size in the pre-flight check (None = don't check)
#   tls             : optional "ecdsa" or "rsa": the proxy terminates TLS (https on the client side) with a
#                     P-256 ECDSA or an RSA 2048 certificate made by a throw-away CA at start (openssl CLI);
#                     every proxy serves the same certificate and key
#   h2_streams      : optional: HTTP/2 over TLS (ALPN h2; needs tls) with h2load as the client instead of wrk,
#                     this many concurrent streams per connection (h2load -m); h2load gives no percentiles,
#                     so its p50/p99 columns show the mean request time
# --------------------------------------------------------------------------------------------
TWO_BACKENDS = [{"name": "b1"}, {"name": "b2"}]
SATURATED_PCT = 90.0

SCENARIOS = [
    {"name": "small", "desc": "keep-alive, 64 conns, GET / (6 B body)",
     "path": "/", "connections": 64, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None},
    {"name": "16k", "desc": "keep-alive, 64 conns, GET /?size=16384",
     "path": "/?size=16384", "connections": 64, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": 16384},
    {"name": "1m", "desc": "keep-alive, 16 conns, GET /?size=1048576",
     "path": "/?size=1048576", "connections": 16, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": 1048576},
    {"name": "newconn", "desc": "new connection per request (Connection: close), 16 conns",
     "path": "/", "connections": 16, "headers": ["Connection: close"], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None},
    {"name": "c1000", "desc": "keep-alive, 1000 conns at full speed, GET /",
     "path": "/", "connections": 1000, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None},
    {"name": "c1000-paced", "desc": "keep-alive, 1000 conns, each sending one request every 100 ms, GET /",
     "path": "/", "connections": 1000, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None, "pace_ms": 100, "main": "p99", "saturation": False},
    {"name": "workers2",
     "desc": "as small, 2 proxy threads (weir workers = 2, haproxy nbthread 2, nginx worker_processes 2), "
             "UNPINNED",
     "path": "/", "connections": 64, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None, "threads": 2, "pin": False},
    {"name": "redirect",
     "desc": "weir only: the listener in redirect mode (307, no server hop) vs the same weir in proxy mode, "
             "keep-alive, 64 conns, GET /",
     "path": "/", "connections": 64, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None, "only": ["weir"],
     "policies": {"weir": [{"policy": "round-robin", "label": "proxy mode"},
                           {"policy": "round-robin", "label": "redirect mode",
                            "listener": {"mode": "redirect"}, "expect_status": 307}]},
     "baseline": "weir proxy mode"},
    {"name": "policies",
     "desc": "balancing policies: 3 demo backends of different speed (delay 1/5/20 ms), 32 conns, GET /",
     "path": "/", "connections": 32, "headers": [], "origins": "demo", "fixed_origins": True,
     "backends": [{"name": "fast", "args": ["--delay", "1"]}, {"name": "mid", "args": ["--delay", "5"]},
                  {"name": "slow", "args": ["--delay", "20"]}],
     "policy": "least-load", "table": "policies", "saturation": False,
     "policies": {
         # threshold with the default capacity (100) keeps everything at the home server (every wrk
         # connection comes from 127.0.0.1, so one home) while in-flight/100 < first_level 0.5;
         # capacity 8 lets the rule move requests once home has 4 in flight.
         "weir": ["threshold", {"policy": "threshold", "label": "threshold cap=8", "server": {"capacity": 8}},
                  "least-load", "p2c", "round-robin"],
         "haproxy": ["least-load", "round-robin"],
         "nginx": ["least-load"],
     },
     "baseline": "haproxy leastconn", "expect_bytes": None},
    {"name": "tls-handshake-ecdsa",
     "desc": "TLS, new connection + handshake per request (Connection: close; wrk resumes its session), P-256 ECDSA cert, 16 conns",
     "path": "/", "connections": 16, "headers": ["Connection: close"], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None, "tls": "ecdsa"},
    {"name": "tls-handshake-rsa",
     "desc": "TLS, new connection + handshake per request (Connection: close; wrk resumes its session), RSA 2048 cert, 16 conns",
     "path": "/", "connections": 16, "headers": ["Connection: close"], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None, "tls": "rsa"},
    {"name": "tls-keepalive", "desc": "TLS keep-alive, 64 conns, GET / (6 B body), P-256 ECDSA cert",
     "path": "/", "connections": 64, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None, "tls": "ecdsa"},
    {"name": "h2-1", "desc": "HTTP/2 over TLS (ALPN h2), h2load, 64 conns x 1 stream, GET / (6 B body), P-256 ECDSA",
     "path": "/", "connections": 64, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None, "tls": "ecdsa", "h2_streams": 1},
    {"name": "h2-100", "desc": "HTTP/2 over TLS (ALPN h2), h2load, 16 conns x 100 streams, GET / (6 B body), "
                               "P-256 ECDSA",
     "path": "/", "connections": 16, "headers": [], "backends": TWO_BACKENDS,
     "policy": "round-robin", "expect_bytes": None, "tls": "ecdsa", "h2_streams": 100},
]
# `make bench`: the issue's table plus workers2 and redirect (about 12 min with 3 repeats);
# `make bench-all` (--all) adds policies and the TLS scenarios.
DEFAULT_SCENARIOS = ["small", "16k", "1m", "newconn", "c1000", "c1000-paced", "workers2", "redirect", "h2-1", "h2-100"]
SCENARIO_BY_NAME = {s["name"]: s for s in SCENARIOS}

# Canonical policy name -> per-proxy spelling (None = unsupported by that proxy).
POLICIES = {
    "round-robin": {"weir": "round-robin", "haproxy": "roundrobin", "nginx": ""},
    "least-load": {"weir": "least-load", "haproxy": "leastconn", "nginx": "least_conn;"},
    "least-conn": {"weir": "least-load", "haproxy": "leastconn", "nginx": "least_conn;"},
    "p2c": {"weir": "p2c", "haproxy": "random(2)", "nginx": "random two least_conn;"},
    "random": {"weir": None, "haproxy": "random", "nginx": "random;"},
    "threshold": {"weir": "threshold", "haproxy": None, "nginx": None},
}
# Short label of a canonical policy in row names ("haproxy leastconn" reads better than "least-load").
POLICY_LABELS = {"least-load": {"haproxy": "leastconn", "nginx": "least_conn"},
                 "round-robin": {"haproxy": "roundrobin", "nginx": "round-robin"},
                 "p2c": {"haproxy": "random(2)", "nginx": "random two"}}


def scenario_runs(sc: dict, proxy: str) -> list[dict]:
    """The measured runs of `proxy` in scenario `sc`: [{"policy", "label", "server", "listener",
    "expect_status"}]. Without a
    `policies` entry for the proxy: one run with the scenario's policy, labelled with the proxy name."""
    runs = sc.get("policies", {}).get(proxy)
    if not runs:
        return [{"policy": sc["policy"], "label": proxy, "server": {}, "listener": {}, "expect_status": 200}]
    out = []
    for r in runs:
        if isinstance(r, str):
            r = {"policy": r}
        shown = r.get("label") or POLICY_LABELS.get(r["policy"], {}).get(proxy, r["policy"])
        out.append({"policy": r["policy"], "label": f"{proxy} {shown}", "server": r.get("server", {}),
                    "listener": r.get("listener", {}), "expect_status": r.get("expect_status", 200)})
    return out


def scenario_proxies(sc: dict, proxies: list[str]) -> list[str]:
    only = sc.get("only")
    return [p for p in proxies if not only or p in only]


class BenchError(Exception):
    """A fatal, clearly explained failure (something did not start, bad arguments...)."""


class StartError(BenchError):
    pass


# --------------------------------------------------------------------------------------------
# Process helpers
# --------------------------------------------------------------------------------------------
def _effective_nofile() -> int:
    """The RLIMIT_NOFILE children will get: WANT_NOFILE, or the hard limit if we may not raise it
    (e.g. root in a container without CAP_SYS_RESOURCE)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= WANT_NOFILE:
        return WANT_NOFILE
    try:  # probe in a child so our own limits stay untouched
        r = subprocess.run([sys.executable, "-c", "import resource as r; r.setrlimit("
                            f"r.RLIMIT_NOFILE, ({WANT_NOFILE}, {WANT_NOFILE}))"],
                           capture_output=True, timeout=10)
        if r.returncode == 0:
            return WANT_NOFILE
    except (OSError, subprocess.SubprocessError):
        pass
    return hard


NOFILE = _effective_nofile()


def _raise_nofile():
    """preexec_fn: set RLIMIT_NOFILE of the child to NOFILE (soft and, if needed, hard)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NOFILE:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, hard))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _proc_stat(pid: int):
    """(ppid, utime+stime ticks, starttime) from /proc/PID/stat, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); field N is rest[N-3]
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19])


def _status_kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except OSError:
        return 0


def descendants(root: int) -> list[int]:
    """root plus all its live descendants (e.g. nginx master + workers)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st:
                children.setdefault(st[0], []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if _proc_stat(p) is None:
            continue
        out.append(p)
        todo.extend(children.get(p, []))
    return out


class Proc:
    """One server process we started. Stopped only by PID (and the PIDs of its own descendants,
    each checked against its recorded start time so a recycled PID is never signalled)."""

    def __init__(self, label: str, argv: list[str], logdir: str, cwd: str | None = None):
        self.label = label
        self.argv = argv
        self.log_path = os.path.join(logdir, f"{label}.log")
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                      stderr=subprocess.STDOUT, cwd=cwd, preexec_fn=_raise_nofile,
                                      start_new_session=True)
        self.pid = self.popen.pid
        self.known: dict[int, int] = {}  # pid -> starttime, every descendant ever seen
        self.refresh()

    def refresh(self) -> list[int]:
        pids = descendants(self.pid) if self.popen.poll() is None else []
        for p in pids:
            st = _proc_stat(p)
            if st:
                self.known.setdefault(p, st[2])
        return pids

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join("    | " + l for l in lines[-n:]) or "    | (empty log)"
        except OSError:
            return "    | (no log)"

    def stop(self, grace: float = 5.0):
        if self.alive():
            self.refresh()
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        # Leftover descendants (e.g. workers orphaned by a killed master): same pid AND start time.
        deadline = time.monotonic() + 2.0
        for p, start in self.known.items():
            if p == self.pid:
                continue
            while True:
                st = _proc_stat(p)
                if st is None or st[2] != start:
                    break
                if time.monotonic() > deadline:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    break
                time.sleep(0.05)
        self._log.close()


def wait_listening(proc: Proc, port: int, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StartError(f"{proc.label} exited with status {proc.popen.returncode} before "
                             f"accepting on {HOST}:{port}\n  command: {shlex.join(proc.argv)}\n"
                             f"{proc.log_tail()}")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise StartError(f"{proc.label} did not accept on {HOST}:{port} within {timeout:.0f}s\n"
                     f"  command: {shlex.join(proc.argv)}\n{proc.log_tail()}")


def http_get(port: int, path: str, timeout: float = 5.0, tls: dict | None = None) -> tuple[int, bytes]:
    # A keep-alive request (no `Connection: close`): the socket is simply closed after the answer.
    # `weir demo-backend --delay N` crashes on a delayed answer to a request with Connection: close
    # (its timer touches the session after ending it), so the harness never sends one.
    # With `tls` (an entry of TLS_CERTS): HTTPS, the certificate verified against the bench CA (IP SAN).
    if tls:
        ctx = ssl.create_default_context(cafile=tls["ca"])
        conn = http.client.HTTPSConnection(HOST, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------
class Backend:
    """One origin server on 127.0.0.1:port."""

    def __init__(self, spec: dict, port: int, workdir: str, prefix: list[str] | None = None):
        self.name = spec["name"]
        self.spec = spec
        self.port = port
        self.workdir = workdir
        self.prefix = prefix or []   # e.g. ["taskset", "-c", "0"]: the origins share wrk's CPU
        self.proc: Proc | None = None

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def argv(self) -> list[str]:
        raise NotImplementedError

    def start(self):
        self.proc = Proc(f"backend-{self.name}", self.prefix + self.argv(), self.workdir, cwd=self.workdir)
        wait_listening(self.proc, self.port)

    def stop(self):
        if self.proc:
            self.proc.stop()


class DemoBackend(Backend):
    """`weir demo-backend --port P --name NAME` (the policies scenario: it supports --delay)."""
    weir = ""

    def argv(self):
        return [self.weir, "demo-backend", "--port", str(self.port), "--name", self.name,
                *self.spec.get("args", [])]


class CmdBackend(Backend):
    """--backend-cmd 'TEMPLATE' with {port} and {name} placeholders."""
    template = ""

    def argv(self):
        return shlex.split(self.template.format(port=self.port, name=self.name))


class NginxOriginBackend(Backend):
    """The default origin: nginx from apt, one worker, access log off, answering "NAME ok\n" from
    memory (6 bytes for b1/b2) and ?size=N from pre-generated files kept open (sendfile). It
    is faster than the demo backend, so the proxy, not the origin, is the saturated side.
    ?delay is NOT supported."""
    SIZES = (16384, 1048576)

    def argv(self):
        d = os.path.join(self.workdir, f"standin-{self.name}")
        www = os.path.join(d, "www")
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        os.makedirs(www, exist_ok=True)
        with open(os.path.join(www, "small"), "w") as f:
            f.write(f"{self.name} ok\n")
        for n in self.SIZES:
            with open(os.path.join(www, f"size{n}"), "wb") as f:
                f.write((self.name.encode() + b" ") * (n // (len(self.name) + 1))
                        + b"x" * (n % (len(self.name) + 1)))
        conf = f"""
{_nginx_user()}
worker_processes 1;
worker_rlimit_nofile {NOFILE};
pid {d}/nginx.pid;
error_log {d}/logs/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    default_type text/plain;
    # As cheap as nginx gets, so that the proxy is the saturated side: the small answer comes from
    # memory, the large files stay open (no open/fstat/close per request).
    open_file_cache max=16 inactive=3600s;
    open_file_cache_valid 3600s;
    {_nginx_temp_paths(d)}
    server {{
        listen {self.address} backlog=4096;
        root {www};
        location / {{
            if ($arg_size) {{ rewrite ^ /size$arg_size last; }}
            return 200 "{self.name} ok\n";
        }}
        location /size {{ }}
    }}
}}
"""
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        return ["/usr/sbin/nginx", "-p", d, "-e", f"{d}/logs/error.log", "-c", path,
                "-g", "daemon off;"]


def _nginx_user() -> str:
    # As root nginx would switch workers to `nobody`, which cannot read our 0700 temp dir.
    return "user root;" if os.geteuid() == 0 else ""


def _nginx_temp_paths(d: str) -> str:
    return "\n    ".join(f"{k}_temp_path {d}/{k}_temp;"
                         for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))


# --------------------------------------------------------------------------------------------
# Proxies
# --------------------------------------------------------------------------------------------
class Proxy:
    name = ""
    conf_name = "proxy.conf"

    def __init__(self, threads: int, workdir: str, server_extra: dict | None = None,
                 listener_extra: dict | None = None, prefix: list[str] | None = None):
        self.threads = threads
        self.workdir = workdir
        self.port = 0
        self.proc: Proc | None = None
        self.server_extra = server_extra or {}      # Weir only: extra [[pool.server]] keys
        self.listener_extra = listener_extra or {}  # Weir only: extra [[listener]] keys (mode)
        self.prefix = prefix or []                  # e.g. ["taskset", "-c", "1"]: the proxy's own CPU
        self.tls: dict | None = None   # an entry of TLS_CERTS when the scenario is over TLS
        self.h2 = False                # offer h2 by ALPN (the h2_streams scenarios)

    def policy(self, canonical: str) -> str:
        spelled = POLICIES.get(canonical, {}).get(self.name)
        if spelled is None:
            raise BenchError(f"policy {canonical!r} is not supported for {self.name}")
        return spelled

    def config(self, backends: list[Backend], policy: str) -> str:
        raise NotImplementedError

    def command(self, conf_path: str) -> list[str]:
        raise NotImplementedError

    def write_config(self, backends, policy) -> str:
        """Writes the config into a fresh directory; returns the path passed to command()."""
        d = tempfile.mkdtemp(prefix=f"{self.name}-", dir=self.workdir)
        self.dir = d
        path = os.path.join(d, self.conf_name)
        with open(path, "w") as f:
            f.write(self.config(backends, policy))
        return path

    def start(self, backends, policy):
        self.port = free_port()
        conf = self.write_config(backends, policy)
        self.proc = Proc(self.name, self.prefix + self.command(conf), self.dir, cwd=self.dir)
        self.conf_path = conf
        wait_listening(self.proc, self.port)

    def pids(self) -> list[int]:
        return self.proc.refresh() if self.proc else []

    def stop(self):
        if self.proc:
            self.proc.stop()
            self.proc = None


class WeirProxy(Proxy):
    name = "weir"
    conf_name = "bench.toml"
    binary = ""

    def config(self, backends, policy):
        extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in self.server_extra.items())
        lextra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in self.listener_extra.items())
        if self.h2:
            # Like the others' keepalive_requests: no GOAWAY during a run (the default, 10000 streams per
            # connection, ends h2load's connections within a few seconds, and h2load opens no new ones).
            lextra += "http2_max_requests = 10000000\n"
        servers = "".join(f'[[pool.server]]\nid = "{b.name}"\naddress = "{b.address}"\n{extra}'
                          for b in backends)
        # No admin listener (several weirs may run; nothing should listen on 9090) and no health
        # probes (they would add traffic to the backends and could take a slow one out).
        tls = (f'[listener.tls]\ncert = "{self.tls["cert"]}"\nkey = "{self.tls["key"]}"\n'
               f'profile = "intermediate"\n') if self.tls else ""
        return (f'[global]\nworkers = {self.threads}\naccess_log = "off"\n'
                f'[admin]\naddress = "off"\n'
                f'[[listener]]\nname = "bench"\naddress = "{HOST}:{self.port}"\n{lextra}{tls}'
                f'[[pool]]\nname = "bench"\npolicy = "{self.policy(policy)}"\n'
                f'[pool.health]\ntype = "none"\n'
                f'{servers}'
                f'[[route]]\nname = "all"\npool = "bench"\npath = "/"\n')

    def command(self, conf_path):
        return [self.binary, "run", "-c", os.path.dirname(conf_path)]


class HAProxy(Proxy):
    name = "haproxy"
    conf_name = "haproxy.cfg"

    def config(self, backends, policy):
        servers = "".join(f"    server {b.name} {b.address}\n" for b in backends)
        maxconn = min(20000, (NOFILE - 200) // 2)  # haproxy needs ~2 fds per connection
        # Same TLS policy as Weir's "intermediate" profile: TLS 1.2 + 1.3, Mozilla's intermediate ciphers.
        ssl_global = (f"    ssl-default-bind-ciphers {MOZILLA_INTERMEDIATE_CIPHERS}\n"
                      "    ssl-default-bind-options ssl-min-ver TLSv1.2\n") if self.tls else ""
        alpn = "h2,http/1.1" if self.h2 else "http/1.1"
        bind_ssl = f" ssl crt {self.tls['combined']} alpn {alpn}" if self.tls else ""
        return f"""global
    nbthread {self.threads}
    maxconn {maxconn}
{ssl_global}
defaults
    mode http
    maxconn {maxconn}
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-request 10s
    timeout http-keep-alive 30s

frontend fe
    bind {HOST}:{self.port}{bind_ssl}
    default_backend be

backend be
    balance {self.policy(policy)}
{servers}"""

    def command(self, conf_path):
        return ["/usr/sbin/haproxy", "-f", conf_path, "-db"]


class NginxProxy(Proxy):
    name = "nginx"
    conf_name = "nginx.conf"

    def config(self, backends, policy):
        d = self.dir
        servers = "".join(f"        server {b.address};\n" for b in backends)
        ssl_conf = (f" ssl{' http2' if self.h2 else ''};\n        ssl_certificate {self.tls['cert']};\n        ssl_certificate_key {self.tls['key']};\n"
               f"        ssl_protocols TLSv1.2 TLSv1.3;\n        ssl_ciphers {MOZILLA_INTERMEDIATE_CIPHERS};\n"
               f"        ssl_prefer_server_ciphers off;\n        ssl_session_tickets on") if self.tls else ""
        return f"""{_nginx_user()}
worker_processes {self.threads};
worker_rlimit_nofile {NOFILE};
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    {_nginx_temp_paths(d)}
    upstream bench {{
        {self.policy(policy)}
{servers}        keepalive 1024;
        keepalive_requests 1000000;
    }}
    server {{
        listen {HOST}:{self.port} backlog=4096{ssl_conf};
        location / {{
            proxy_pass http://bench;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}
}}
"""

    def command(self, conf_path):
        return ["/usr/sbin/nginx", "-p", self.dir, "-e", f"{self.dir}/error.log",
                "-c", conf_path, "-g", "daemon off;"]


PROXIES = {"weir": WeirProxy, "haproxy": HAProxy, "nginx": NginxProxy}

# --------------------------------------------------------------------------------------------
# TLS certificates (scenarios with "tls")
# --------------------------------------------------------------------------------------------
MOZILLA_INTERMEDIATE_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
# kind -> {"ca", "cert", "key", "combined" (cert + key, for haproxy)}; filled by make_tls_certs()
TLS_CERTS: dict[str, dict] = {}


def make_tls_certs(tmp: str) -> dict[str, dict]:
    """A throw-away CA and two server certificates for 127.0.0.1 / localhost: P-256 ECDSA and RSA 2048."""
    d = os.path.join(tmp, "tls")
    os.makedirs(d, exist_ok=True)

    def ossl(*a):
        r = subprocess.run(["openssl", *a], stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        if r.returncode != 0:
            raise BenchError(f"openssl {a[0]} failed: {r.stderr.decode(errors='replace')[-500:]}")

    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", ca_key,
         "-out", ca, "-days", "7", "-subj", "/CN=Weir bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign")
    ext = os.path.join(d, "leaf.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    out = {}
    for kind, alg in (("ecdsa", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                      ("rsa", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])):
        key, csr, cert = (os.path.join(d, f"{kind}.{x}") for x in ("key", "csr", "pem"))
        ossl("genpkey", *alg, "-out", key)
        ossl("req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr)
        ossl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", "0x" + os.urandom(8).hex(),
             "-days", "7", "-sha256", "-extfile", ext, "-out", cert)
        combined = os.path.join(d, f"{kind}-combined.pem")
        with open(combined, "wb") as f, open(cert, "rb") as c, open(key, "rb") as k:
            f.write(c.read() + k.read())
        out[kind] = {"ca": ca, "cert": cert, "key": key, "combined": combined}
    return out
BACKENDS = {"nginx": NginxOriginBackend, "demo": DemoBackend, "cmd": CmdBackend}

# --------------------------------------------------------------------------------------------
# Pinning
# --------------------------------------------------------------------------------------------
def pin_plan(no_pin: bool) -> dict | None:
    """{"load": cpu, "proxy": cpu}: the proxy alone on the second CPU we may use, wrk, the origins
    and this script on the first; None (with a warning) when pinning is off or impossible."""
    if no_pin:
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print(f"WARNING: only {len(cpus)} CPU available: running UNPINNED; the proxy shares its core "
              "with wrk and the origins, so CPU ratios are less meaningful", flush=True)
        return None
    if not shutil.which("taskset"):
        print("WARNING: taskset (util-linux) not found: running UNPINNED", flush=True)
        return None
    return {"load": cpus[0], "proxy": cpus[1], "all": cpus}


def taskset(cpu: int | None) -> list[str]:
    return [] if cpu is None else ["taskset", "-c", str(cpu)]


class pinned_to:
    """Context manager: this thread (and the threads it starts, e.g. the RSS sampler) on `cpu`, so
    the harness never runs on the proxy's core. No-op for None."""

    def __init__(self, cpu: int | None):
        self.cpu = cpu

    def __enter__(self):
        if self.cpu is not None:
            self.saved = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {self.cpu})

    def __exit__(self, *exc):
        if self.cpu is not None:
            os.sched_setaffinity(0, self.saved)


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------
WRK_DONE_LUA = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.max,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9)))
end
"""
# wrk calls delay() before each request of a connection and waits that many ms; its latency clock
# starts when the request is written, so the pause is not counted.
WRK_DELAY_LUA = "delay = function() return {ms} end\n"


def wrk_script(tmp: str, pace_ms: int | None) -> str:
    """The wrk Lua script (the JSON `done` report, plus a delay() when paced), written once per pace."""
    path = os.path.join(tmp, f"wrk-{pace_ms or 0}.lua")
    if not os.path.exists(path):
        with open(path, "w") as f:
            f.write(WRK_DONE_LUA + (WRK_DELAY_LUA.format(ms=int(pace_ms)) if pace_ms else ""))
    return path


H2LOAD_TIME_RE = re.compile(r"^time for request:\s+(\S+?)(us|ms|s)\s+(\S+?)(us|ms|s)\s+(\S+?)(us|ms|s)\s+(\S+?)(us|ms|s)",
                            re.M)
H2LOAD_REQ_RE = re.compile(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                           r"(\d+) errored, (\d+) timeout", re.M)
H2LOAD_STATUS_RE = re.compile(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", re.M)
H2LOAD_TRAFFIC_RE = re.compile(r"^traffic: .*?\((\d+)\) total", re.M)


def _h2load_us(value: str, unit: str) -> float:
    return float(value) * {"us": 1.0, "ms": 1000.0, "s": 1e6}[unit]


def run_h2load(args, port: int, sc: dict, duration: int, prefix: list[str]) -> dict:
    """h2load (nghttp2-client) over TLS with ALPN h2: `connections` connections, `h2_streams` streams each,
    for `duration` seconds; the same result dict as `run_wrk` (mean request time in the percentile slots)."""
    argv = prefix + ["h2load", "-t", str(min(args.wrk_threads, sc["connections"])), "-c", str(sc["connections"]),
                     "-m", str(sc["h2_streams"]), "-D", str(duration),
                     f"https://{HOST}:{port}{sc['path']}"]
    try:
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=duration + 30, preexec_fn=_raise_nofile)
    except subprocess.TimeoutExpired:
        raise BenchError(f"h2load did not finish within {duration + 30}s: {shlex.join(argv)}")
    req, times = H2LOAD_REQ_RE.search(out.stdout), H2LOAD_TIME_RE.search(out.stdout)
    if out.returncode != 0 or not req or not times or "Application protocol: h2" not in out.stdout:
        raise BenchError(f"h2load failed (exit {out.returncode}): {shlex.join(argv)}\n"
                         f"{out.stdout[-2000:]}{out.stderr[-2000:]}")
    status = H2LOAD_STATUS_RE.search(out.stdout)
    traffic = H2LOAD_TRAFFIC_RE.search(out.stdout)
    non2xx = sum(int(x) for x in status.groups()[1:]) if status else 0
    mean = _h2load_us(times.group(5), times.group(6))
    return {"requests": int(req.group(4)), "duration_us": duration * 1_000_000,
            "bytes": int(traffic.group(1)) if traffic else 0,
            "errors": {"connect": 0, "read": int(req.group(6)), "write": 0, "status": non2xx,
                       "timeout": int(req.group(7))},
            "latency_us": {"mean": mean, "stdev": _h2load_us(times.group(7), times.group(8)),
                           "max": _h2load_us(times.group(3), times.group(4)),
                           "p50": mean, "p90": mean, "p99": mean, "p999": mean},
            "wrk_argv": argv}


def run_load(args, port: int, sc: dict, duration: int, lua_path: str, prefix: list[str]) -> dict:
    """wrk, or h2load for the HTTP/2 scenarios."""
    if sc.get("h2_streams"):
        return run_h2load(args, port, sc, duration, prefix)
    return run_wrk(args, port, sc, duration, lua_path, prefix)


def run_wrk(args, port: int, sc: dict, duration: int, lua_path: str, prefix: list[str]) -> dict:
    argv = prefix + ["/usr/bin/wrk", "-t", str(min(args.wrk_threads, sc["connections"])),
                     "-c", str(sc["connections"]), "-d", f"{duration}s", "--timeout", "5s", "--latency",
                     "-s", lua_path]
    for h in sc["headers"]:
        argv += ["-H", h]
    argv.append(f"{'https' if sc.get('tls') else 'http'}://{HOST}:{port}{sc['path']}")
    try:
        out = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=duration + 30, preexec_fn=_raise_nofile)
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk did not finish within {duration + 30}s: {shlex.join(argv)}")
    for line in out.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            res = json.loads(line[len("BENCHJSON "):])
            res["wrk_argv"] = argv
            return res
    raise BenchError(f"wrk failed (exit {out.returncode}): {shlex.join(argv)}\n"
                     f"{out.stdout[-2000:]}{out.stderr[-2000:]}")


class RssSampler(threading.Thread):
    """Samples the summed RSS of all the proxy's processes at ~10 Hz. The process list (a scan of
    /proc) is refreshed once a second only, to keep the sampler cheap."""

    def __init__(self, proxy: Proxy, period: float = 0.1):
        super().__init__(daemon=True)
        self.proxy, self.period = proxy, period
        self.peak_kib = 0
        self.samples = 0
        self._stop_evt = threading.Event()

    def run(self):
        pids: list[int] = []
        while not self._stop_evt.is_set():
            if self.samples % 10 == 0:
                pids = self.proxy.pids()
            total = sum(_rss_kib(p) for p in pids)
            self.peak_kib = max(self.peak_kib, total)
            self.samples += 1
            self._stop_evt.wait(self.period)

    def stop(self):
        self._stop_evt.set()
        self.join(2)


def cpu_busy(cpu: int | None) -> tuple[int, int] | None:
    """(busy, total) ticks of one CPU from /proc/stat (busy = all but idle and iowait), or None."""
    if cpu is None:
        return None
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:]]
                return sum(v) - v[3] - v[4], sum(v)
    return None


def busy_pct(a, b) -> float | None:
    return 100.0 * (b[0] - a[0]) / (b[1] - a[1]) if a and b and b[1] > a[1] else None


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for p in pids:
        st = _proc_stat(p)
        if st:
            total += st[1]
    return total


def preflight(proxy: Proxy, sc: dict, backends: list[Backend], expect_status: int = 200):
    """A few plain GETs through the proxy: must answer `expect_status` (and, for 200, the right
    size); warns if 200 responses never name a second backend (round-robin not happening)."""
    seen = set()
    for _ in range(2 * len(backends)):
        try:
            status, body = http_get(proxy.port, sc["path"], tls=proxy.tls)
        except OSError as e:
            raise StartError(f"{proxy.name}: pre-flight GET {sc['path']} failed: {e}\n"
                             f"{proxy.proc.log_tail()}")
        if status != expect_status:
            raise StartError(f"{proxy.name}: pre-flight GET {sc['path']} returned {status}, expected "
                             f"{expect_status}: {body[:200]!r}\n{proxy.proc.log_tail()}")
        if status != 200:
            continue
        if sc.get("expect_bytes") is not None and len(body) != sc["expect_bytes"]:
            raise StartError(f"{proxy.name}: pre-flight GET {sc['path']} returned "
                             f"{len(body)} bytes, expected {sc['expect_bytes']}")
        head = body[:4096]
        seen |= {b.name for b in backends if b.name.encode() in head}
    if expect_status == 200 and len(backends) > 1 and len(seen) < 2:
        print(f"\n    note: pre-flight responses named backends {sorted(seen)} only;", end="", flush=True)


def backend_requests(backends) -> dict | None:
    """Requests each demo backend has served so far (its /stats), or None for other backend kinds."""
    if not all(isinstance(b, DemoBackend) for b in backends):
        return None
    out = {}
    for b in backends:
        try:
            status, body = http_get(b.port, "/stats")
            out[b.name] = json.loads(body)["requests"] if status == 200 else None
        except (OSError, ValueError, KeyError):
            out[b.name] = None
    return out


def measure(args, proxy: Proxy, sc: dict, backends, lua_path: str, pin: dict | None,
            policy: str | None = None, label: str | None = None, expect_status: int = 200) -> dict:
    """One measured run with a fresh proxy: start, pre-flight, idle RSS, warm-up, measured run
    (CPU ticks of every proxy process before and after), stop."""
    load_cpu = pin["load"] if pin else None
    with pinned_to(load_cpu):
        return _measure(args, proxy, sc, backends, lua_path, pin, policy, label, expect_status)


def _measure(args, proxy, sc, backends, lua_path, pin, policy, label, expect_status) -> dict:
    wrk_prefix = taskset(pin["load"] if pin else None)
    try:
        if sc.get("tls"):
            proxy.tls = TLS_CERTS[sc["tls"]]
            proxy.h2 = bool(sc.get("h2_streams"))
        proxy.start(backends, policy or sc["policy"])
        preflight(proxy, sc, backends, expect_status)
        time.sleep(0.2)  # let the pre-flight's connections close before the idle figure
        idle_kib = sum(_rss_kib(p) for p in proxy.pids())
        sampler = RssSampler(proxy)
        sampler.start()
        try:
            if args.warmup > 0:
                run_load(args, proxy.port, sc, args.warmup, lua_path, wrk_prefix)
            pids = proxy.pids()
            served0 = backend_requests(backends)
            # How busy both CPUs were: tells a starved proxy (others on its core) from an idle one.
            c0 = {k: cpu_busy(pin[k] if pin else None) for k in ("proxy", "load")}
            t0, w0 = cpu_ticks(pids), time.monotonic()
            res = run_load(args, proxy.port, sc, args.duration, lua_path, wrk_prefix)
            pids_after = proxy.pids()
            t1, w1 = cpu_ticks(pids_after), time.monotonic()
            c1 = {k: cpu_busy(pin[k] if pin else None) for k in ("proxy", "load")}
            served1 = backend_requests(backends)
            hwm_kib = sum(_status_kib(p, "VmHWM") for p in pids_after)
        finally:
            sampler.stop()
        if not proxy.proc.alive():
            raise BenchError(f"{proxy.name} died during the run\n{proxy.proc.log_tail()}")
        argv = proxy.proc.argv
    finally:
        proxy.stop()
    if set(pids) != set(pids_after):
        print(f"\n    note: {proxy.name} process set changed during the run;", end="", flush=True)
    e = res["errors"]
    nreq = res["requests"]
    share = None
    if served0 and served1 and None not in served0.values() and None not in served1.values():
        diff = {k: served1[k] - served0[k] for k in served1}
        total = sum(diff.values())
        share = {k: v / total for k, v in diff.items()} if total > 0 else None
    cpu_s = (t1 - t0) / CLK_TCK
    res.update({
        "proxy": label or proxy.name,
        "proxy_kind": proxy.name,
        "proxy_argv": argv,
        "threads": proxy.threads,
        "policy": policy or sc["policy"],
        "scenario": sc["name"],
        "backend_share": share,
        "rps": nreq / (res["duration_us"] / 1e6) if res["duration_us"] else 0.0,
        "p50_ms": res["latency_us"]["p50"] / 1000.0,
        "p99_ms": res["latency_us"]["p99"] / 1000.0,
        "cpu_ticks": t1 - t0,
        "cpu_us_per_req": cpu_s * 1e6 / nreq if nreq else None,
        # share of one core used during the measured run (wall time between the two CPU readings)
        "cpu_pct": 100.0 * cpu_s / (w1 - w0) if w1 > w0 else None,
        # pinned runs: % busy of the proxy's CPU (proxy + anything else there) and of the load CPU
        "proxy_cpu_busy_pct": busy_pct(c0["proxy"], c1["proxy"]),
        "load_cpu_busy_pct": busy_pct(c0["load"], c1["load"]),
        "idle_rss_mib": idle_kib / 1024.0,
        "peak_rss_mib": sampler.peak_kib / 1024.0,
        "rss_samples": sampler.samples,
        "vmhwm_sum_mib": hwm_kib / 1024.0,
        "processes": len(pids_after),
        "non2xx": e["status"],   # wrk counts answers with status > 399 only: 3xx are successes
        "socket_errors": e["connect"] + e["read"] + e["write"] + e["timeout"],
    })
    return res


def median(xs: list):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


MEDIAN_KEYS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "cpu_pct", "idle_rss_mib", "peak_rss_mib",
               "vmhwm_sum_mib", "proxy_cpu_busy_pct", "load_cpu_busy_pct")


def summarize(label: str, runs: list[dict]) -> dict:
    """The row shown for `label`: the median of each column over its successful runs, errors summed."""
    ok = [r for r in runs if r["proxy"] == label and "error" not in r]
    failed = [r for r in runs if r["proxy"] == label and "error" in r]
    if not ok:
        return {"proxy": label, "error": failed[0]["error"] if failed else "no run", "runs": 0,
                "failed_runs": len(failed)}
    row = {k: median([r[k] for r in ok]) for k in MEDIAN_KEYS}
    row.update({"proxy": label, "proxy_kind": ok[0]["proxy_kind"], "threads": ok[0]["threads"],
                "runs": len(ok), "failed_runs": len(failed),
                "non2xx": sum(r["non2xx"] for r in ok),
                "socket_errors": sum(r["socket_errors"] for r in ok),
                "errors": {k: sum(r["errors"][k] for r in ok) for k in ok[0]["errors"]}})
    shares = [r["backend_share"] for r in ok if r.get("backend_share")]
    row["backend_share"] = ({k: sum(s.get(k, 0) for s in shares) / len(shares) for k in shares[0]}
                            if shares else None)
    return row


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------
def _ratio(v, base):
    if v is None or base in (None, 0):
        return "–"
    return f"{v / base:.2f}×"


def _fmt(v, spec):
    return "–" if v is None else format(v, spec)


def _errors_cell(r: dict) -> str:
    errs = []
    if r["non2xx"]:
        errs.append(f"HTTP ≥ 400: {r['non2xx']}")
    for k in ("connect", "read", "write", "timeout"):
        if r["errors"][k]:
            errs.append(f"{k} {r['errors'][k]}")
    if r.get("failed_runs"):
        errs.append(f"{r['failed_runs']} run(s) failed")
    return ("⚠ " + ", ".join(errs)) if errs else "0"


def is_pinned(sc: dict, pin: dict | None) -> bool:
    return pin is not None and sc.get("pin", True)


def unsaturated(sc: dict, r: dict, pin: dict | None) -> bool:
    """A pinned throughput row whose proxy used < SATURATED_PCT of its core: something else (wrk,
    the origins) was the bottleneck, so its CPU/req is not a comparison of proxies at full load."""
    return (is_pinned(sc, pin) and sc.get("saturation", True) and r.get("cpu_pct") is not None
            and r["cpu_pct"] < SATURATED_PCT)


def saturation_note(sc: dict, r: dict, pin: dict | None) -> str:
    """The note of a row: the not-saturated flag, and why when /proc/stat tells (another process on
    the proxy's CPU, or the load CPU full)."""
    notes = []
    if unsaturated(sc, r, pin):
        notes.append("⚠ not saturated: the ratio is not a CPU comparison")
        if (r.get("load_cpu_busy_pct") or 0) >= SATURATED_PCT:
            notes.append(f"load CPU {r['load_cpu_busy_pct']:.0f} % busy")
    other = ((r.get("proxy_cpu_busy_pct") or 0) - (r.get("cpu_pct") or 0)) if is_pinned(sc, pin) else 0
    if other >= 10:
        notes.append(f"⚠ other work (processes, interrupts) used {other:.0f} % of the proxy's CPU")
    return "; ".join(notes)


def _heading(sc: dict, args, pin: dict | None) -> str:
    where = (f"pinned: proxy on CPU {pin['proxy']}, wrk + origins on CPU {pin['load']}"
             if is_pinned(sc, pin) else "UNPINNED: proxy, wrk and origins share every CPU")
    threads = sc.get("threads", args.threads)
    return (f"### {sc['name']} — {sc['desc']}\n\n{where}; {threads} proxy thread(s); "
            f"median of {args.repeats} interleaved run(s) of {args.warmup}+{args.duration} s "
            f"(warm-up + measured), wrk -t{args.wrk_threads} -c{sc['connections']}"
            + (f", {sc['pace_ms']} ms between a connection's requests" if sc.get("pace_ms") else ""))


def table(sc: dict, rows: list[dict], args, pin: dict | None) -> str:
    if sc.get("table") == "policies":
        return policy_table(sc, rows, args, pin)
    label = sc.get("baseline", "haproxy")
    base = next((r for r in rows if r["proxy"] == label and "error" not in r), None)
    b = (lambda k: base[k] if base else None)
    x = f"×{label}"
    cols = {  # key -> (header, cell)
        "cpu": (f"CPU µs/req | {x}", lambda r: f"{_fmt(r['cpu_us_per_req'], '.2f')} | "
                f"{_ratio(r['cpu_us_per_req'], b('cpu_us_per_req'))}"),
        "pct": ("CPU % of a core", lambda r: _fmt(r["cpu_pct"], ".0f")),
        "rps": (f"req/s | {x}", lambda r: f"{r['rps']:,.0f} | {_ratio(r['rps'], b('rps'))}"),
        "p99": (f"p99 ms | {x}", lambda r: f"{r['p99_ms']:.2f} | {_ratio(r['p99_ms'], b('p99_ms'))}"),
        "peak": (f"peak RSS MiB | {x}", lambda r: f"{r['peak_rss_mib']:.1f} | "
                 f"{_ratio(r['peak_rss_mib'], b('peak_rss_mib'))}"),
        "idle": (f"idle RSS MiB | {x}", lambda r: f"{r['idle_rss_mib']:.1f} | "
                 f"{_ratio(r['idle_rss_mib'], b('idle_rss_mib'))}"),
    }
    order = (["p99", "cpu", "pct", "rps"] if sc.get("main") == "p99" else ["cpu", "pct", "rps", "p99"]) \
        + ["peak", "idle"]
    header = " | ".join(cols[k][0] for k in order)
    ncols = header.count("|") + 1
    out = [_heading(sc, args, pin), "",
           f"| proxy | {header} | errors | note |",
           "|---|" + "---:|" * ncols + "---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['proxy']} | FAILED |" + " |" * ncols + f" {r['error'].splitlines()[0]} |")
            continue
        note = saturation_note(sc, r, pin)
        out.append(f"| {r['proxy']} | " + " | ".join(cols[k][1](r) for k in order)
                   + f" | {_errors_cell(r)} | {note} |")
    if not base:
        out.append(f"\n(no successful `{label}` row: ratios are –)")
    return "\n".join(out)


def policy_table(sc: dict, rows: list[dict], args, pin: dict | None) -> str:
    """One row per proxy × policy: req/s, p50, p99 (and ratios to the scenario's baseline row), the
    share of the measured requests each backend served, CPU per request and errors."""
    label = sc.get("baseline", "haproxy")
    base = next((r for r in rows if r["proxy"] == label and "error" not in r), None)
    b = (lambda k: base[k] if base else None)
    names = [spec["name"] for spec in sc["backends"]]
    out = [_heading(sc, args, pin), "",
           f"| proxy / policy | req/s | ×{label} | p50 ms | ×{label} | p99 ms | ×{label} "
           f"| share {'/'.join(names)} % | CPU µs/req | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['proxy']} | FAILED | | | | | | | | {r['error'].splitlines()[0]} |")
            continue
        share = r.get("backend_share")
        share_s = "/".join(f"{100 * share.get(n, 0):.0f}" for n in names) if share else "–"
        out.append(
            f"| {r['proxy']} | {r['rps']:,.0f} | {_ratio(r['rps'], b('rps'))} "
            f"| {r['p50_ms']:.2f} | {_ratio(r['p50_ms'], b('p50_ms'))} "
            f"| {r['p99_ms']:.2f} | {_ratio(r['p99_ms'], b('p99_ms'))} "
            f"| {share_s} | {_fmt(r['cpu_us_per_req'], '.1f')} | {_errors_cell(r)} |")
    if not base:
        out.append(f"\n(no successful `{label}` row: ratios are –)")
    return "\n".join(out)


# Issue 9's targets, as ratios of medians in the same run:
# (scenario, column, "<=" or ">=", limit, row, baseline row).
TARGETS = [
    ("small", "cpu_us_per_req", "<=", 0.8, "weir", "haproxy"),
    ("small", "rps", ">=", 1.1, "weir", "haproxy"),
    ("16k", "cpu_us_per_req", "<=", 0.8, "weir", "haproxy"),
    ("16k", "rps", ">=", 1.1, "weir", "haproxy"),
    ("1m", "cpu_us_per_req", "<=", 0.5, "weir", "haproxy"),
    ("newconn", "cpu_us_per_req", "<=", 0.9, "weir", "haproxy"),
    ("c1000", "cpu_us_per_req", "<=", 0.9, "weir", "haproxy"),
    ("c1000", "peak_rss_mib", "<=", 0.8, "weir", "haproxy"),
    ("small", "idle_rss_mib", "<=", 1.2, "weir", "haproxy"),
    ("c1000-paced", "p99_ms", "<=", 1.0, "weir", "haproxy"),
    ("tls-handshake-ecdsa", "cpu_us_per_req", "<=", 1.0, "weir", "haproxy"),
    ("tls-handshake-rsa", "cpu_us_per_req", "<=", 1.0, "weir", "haproxy"),
    ("tls-keepalive", "cpu_us_per_req", "<=", 1.0, "weir", "haproxy"),
    ("redirect", "rps", ">=", 1.5, "weir redirect mode", "weir proxy mode"),
]
COLUMN_NAMES = {"cpu_us_per_req": "CPU µs/req", "rps": "req/s", "peak_rss_mib": "peak RSS",
                "idle_rss_mib": "idle RSS", "p99_ms": "p99"}


def target_check(results: dict, pin: dict | None) -> list[str]:
    """One PASS / MISS / N/A line per target (informational: never changes the exit code)."""
    lines, tally = [], {"PASS": 0, "MISS": 0, "N/A": 0}
    for scn, key, op, limit, row, base in TARGETS:
        label = f"target {scn}: {row} {COLUMN_NAMES[key]} {'≤' if op == '<=' else '≥'} {limit}× {base}"
        sc = SCENARIO_BY_NAME[scn]
        rows = {r["proxy"]: r for r in results.get(scn, {}).get("median", []) if "error" not in r}
        w, h = rows.get(row), rows.get(base)
        if not w or not h or not h.get(key) or w.get(key) is None:
            verdict, detail = "N/A", (f"needs successful {row} and {base} runs of '{scn}'"
                                      if scn in results else "scenario not run")
        else:
            ratio = w[key] / h[key]
            ok = ratio <= limit if op == "<=" else ratio >= limit
            notes = [f"{r['proxy']} not saturated ({r['cpu_pct']:.0f} %)" for r in (w, h)
                     if key in ("cpu_us_per_req", "rps") and unsaturated(sc, r, pin)]
            if w["non2xx"] + w["socket_errors"]:
                notes.append(f"{row} errors {w['non2xx'] + w['socket_errors']}")
            verdict = "PASS" if ok and not (w["non2xx"] + w["socket_errors"]) else "MISS"
            detail = f"{ratio:.2f}×" + (f"; {', '.join(notes)}" if notes else "")
        tally[verdict] += 1
        lines.append(f"{label}: {verdict} ({detail})")
    lines.append(f"targets: {tally['PASS']} PASS, {tally['MISS']} MISS, {tally['N/A']} N/A "
                 "(informational: misses do not change the exit code)")
    return lines


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weir", help="path to the weir binary (gateway and, for policies, demo backends)")
    p.add_argument("--quick", action="store_true", help="1 s warm-up + 3 s measured instead of 2 s + 8 s")
    p.add_argument("--scenario", action="append", metavar="NAME",
                   help=f"run only this scenario (repeatable): {', '.join(SCENARIO_BY_NAME)}; "
                        f"default: {', '.join(DEFAULT_SCENARIOS)}")
    p.add_argument("--all", action="store_true", help="every scenario (adds policies and TLS)")
    p.add_argument("--duration", type=float, help="seconds per measured run (overrides --quick)")
    p.add_argument("--warmup", type=float, help="warm-up seconds before each run (overrides --quick)")
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved rounds (each proxy once per round, a fresh process each run); "
                        "the tables show medians (default 3)")
    p.add_argument("--threads", type=int, default=1,
                   help="proxy threads: weir workers / haproxy nbthread / nginx worker_processes "
                        "(default 1; workers2 always uses 2)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (default 1)")
    p.add_argument("--proxies", default="weir,haproxy,nginx",
                   help="comma-separated subset of: " + ",".join(PROXIES))
    p.add_argument("--backend", choices=sorted(BACKENDS) + ["nginx-standin"],
                   help="origin kind for every scenario but policies (which needs the demo backend): "
                        "nginx = nginx serving fixed files (the default); demo = `WEIR demo-backend`")
    p.add_argument("--backend-cmd", metavar="TEMPLATE",
                   help="custom backend command with {port} and {name} placeholders "
                        "(implies --backend cmd)")
    p.add_argument("--no-pin", action="store_true", help="no taskset pinning in any scenario")
    p.add_argument("--out", metavar="FILE", help="write every run and the medians as JSON")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (configs, logs)")
    p.add_argument("--list", action="store_true", help="list scenarios and exit")
    a = p.parse_args(argv)
    if a.backend == "nginx-standin":  # the old name of the nginx origin
        a.backend = "nginx"
    if a.backend_cmd:
        a.backend = "cmd"
    elif a.backend == "cmd":
        p.error("--backend cmd needs --backend-cmd TEMPLATE")
    a.duration = max(1, math.ceil(a.duration if a.duration else (3 if a.quick else 8)))
    warm = a.warmup if a.warmup is not None else (1 if a.quick else 2)
    a.warmup = 0 if warm <= 0 else max(1, math.ceil(warm))
    if a.repeats < 1:
        p.error("--repeats must be ≥ 1")
    a.proxy_list = [x.strip() for x in a.proxies.split(",") if x.strip()]
    bad = [x for x in a.proxy_list if x not in PROXIES]
    if bad or not a.proxy_list:
        p.error(f"unknown proxies {bad}; choose from {','.join(PROXIES)}")
    names = a.scenario or ([s["name"] for s in SCENARIOS] if a.all else DEFAULT_SCENARIOS)
    names = [n for name in names for n in name.split(",") if n]  # --scenario h2-1,h2-100
    bad = [n for n in names if n not in SCENARIO_BY_NAME]
    if bad:
        p.error(f"unknown scenarios {bad}; choose from {', '.join(SCENARIO_BY_NAME)}")
    a.scenarios = [SCENARIO_BY_NAME[n] for n in dict.fromkeys(names)]
    if a.threads < 1 or a.wrk_threads < 1:
        p.error("--threads and --wrk-threads must be ≥ 1")
    kinds = {origin_kind(a, sc) for sc in a.scenarios}
    needs_weir = "weir" in a.proxy_list or "demo" in kinds
    if not a.list and needs_weir:
        if not a.weir:
            p.error("--weir PATH is required (for the weir proxy and/or the demo backends)")
        if not (os.path.isfile(a.weir) and os.access(a.weir, os.X_OK)):
            p.error(f"weir binary not found or not executable: {a.weir} (run `make release`?)")
        a.weir = os.path.abspath(a.weir)
    for tool in ["/usr/bin/wrk"] + [{"haproxy": "/usr/sbin/haproxy", "nginx": "/usr/sbin/nginx"}
                                    .get(x, "") for x in a.proxy_list] + \
            (["/usr/sbin/nginx"] if "nginx" in kinds else []):
        if tool and not a.list and not os.access(tool, os.X_OK):
            p.error(f"required tool not found: {tool} (`make bench-deps` installs it)")
    return a


def origin_kind(args, sc: dict) -> str:
    if sc.get("fixed_origins"):
        return sc["origins"]
    return args.backend or sc.get("origins", "nginx")


def run_plan(args, sc: dict) -> list[tuple[str, dict]]:
    """(proxy name, run) in the order of one round: weir, haproxy, nginx (each with its runs)."""
    return [(name, run) for name in scenario_proxies(sc, args.proxy_list) for run in scenario_runs(sc, name)]


def estimate_s(args) -> float:
    per_run = args.warmup + args.duration + 0.7   # start, pre-flight, stop (measured)
    return sum(len(run_plan(args, sc)) for sc in args.scenarios) * args.repeats * per_run


class Origins:
    """Origin sets shared by the scenarios with the same specs, kind and pinning; started on demand."""

    def __init__(self, args, tmp: str):
        self.args, self.tmp = args, tmp
        self.sets: dict[str, list[Backend]] = {}
        self.started: list[Backend] = []

    def get(self, sc: dict, cpu: int | None) -> list[Backend]:
        kind = origin_kind(self.args, sc)
        key = json.dumps([sc["backends"], kind, cpu], sort_keys=True)
        if key not in self.sets:
            bs = [BACKENDS[kind](spec, free_port(), self.tmp, taskset(cpu)) for spec in sc["backends"]]
            for b in bs:
                self.started.append(b)
                b.start()
            self.sets[key] = bs
        return self.sets[key]

    def stop(self):
        for b in self.started:
            b.stop()


def run_scenario(args, sc: dict, origins: Origins, pin: dict | None, tmp: str,
                 broken: dict[str, str], failures: list[str]) -> dict:
    """Every round of `sc`: {"runs": [every run], "median": [one row per label]}."""
    pinned = is_pinned(sc, pin)
    backends = origins.get(sc, pin["load"] if pinned else None)
    lua_path = wrk_script(tmp, sc.get("pace_ms"))
    plan = run_plan(args, sc)
    runs: list[dict] = []
    for rnd in range(1, args.repeats + 1):
        for name, run in plan:
            label = run["label"]
            if name in broken:
                runs.append({"proxy": label, "scenario": sc["name"], "round": rnd, "error": broken[name]})
                continue
            print(f"  {sc['name']:11} round {rnd}/{args.repeats} {label:18} ...", end="", flush=True)
            proxy = PROXIES[name](sc.get("threads", args.threads), tmp, run["server"], run["listener"],
                                  taskset(pin["proxy"] if pinned else None))
            try:
                r = measure(args, proxy, sc, backends, lua_path, pin if pinned else None,
                            policy=run["policy"], label=label, expect_status=run["expect_status"])
                print(f" {r['rps']:,.0f} req/s, p99 {r['p99_ms']:.2f} ms, "
                      f"{_fmt(r['cpu_us_per_req'], '.2f')} µs CPU/req, CPU {_fmt(r['cpu_pct'], '.0f')} %, "
                      f"idle {r['idle_rss_mib']:.1f} MiB", flush=True)
            except BenchError as e:
                print(" FAILED", flush=True)
                what = "failed to start" if isinstance(e, StartError) else "run failed"
                msg = f"{label} {what} in scenario {sc['name']} (round {rnd}): {e}"
                print("ERROR: " + msg, file=sys.stderr, flush=True)
                failures.append(msg)
                if isinstance(e, StartError):
                    broken[name] = f"failed to start (see scenario {sc['name']})"
                r = {"proxy": label, "scenario": sc["name"], "error": str(e)}
            r["round"] = rnd
            runs.append(r)
    labels = list(dict.fromkeys(run["label"] for _, run in plan))
    return {"runs": runs, "median": [summarize(l, runs) for l in labels]}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.list:
        for s in SCENARIOS:
            mark = "*" if s["name"] in DEFAULT_SCENARIOS else " "
            print(f"{mark} {s['name']:20} {s['desc']}")
        print("(* = run by default; --all or `make bench-all` for every scenario)")
        return 0

    DemoBackend.weir = args.weir or ""
    WeirProxy.binary = args.weir or ""
    CmdBackend.template = args.backend_cmd or ""

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    pin = pin_plan(args.no_pin)
    tmp = tempfile.mkdtemp(prefix="weir-bench-")
    origins = Origins(args, tmp)
    results: dict[str, dict] = {}
    failures: list[str] = []
    meta = {"threads": args.threads, "wrk_threads": args.wrk_threads, "duration_s": args.duration,
            "warmup_s": args.warmup, "repeats": args.repeats, "weir": args.weir,
            "origins": {sc["name"]: origin_kind(args, sc) for sc in args.scenarios},
            "pin": pin, "cpus": os.cpu_count(), "clk_tck": CLK_TCK, "nofile": NOFILE,
            "proxies": args.proxy_list, "scenarios": [sc["name"] for sc in args.scenarios],
            "memory": "peak of summed VmRSS over all proxy processes, sampled at 10 Hz during warm-up + "
                      "run; idle: summed VmRSS after start and pre-flight (vmhwm_sum_mib: sum of VmHWM)",
            "median": "each row of `median` is the median of each column over the runs of that label",
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    where = (f"proxy pinned to CPU {pin['proxy']}, wrk + origins + harness on CPU {pin['load']}"
             if pin else "unpinned")
    print(f"# Weir benchmark — proxies {','.join(args.proxy_list)}, {args.threads} proxy thread(s), "
          f"wrk -t{args.wrk_threads}, {args.warmup}+{args.duration} s runs, {args.repeats} interleaved "
          f"round(s), {where}, {os.cpu_count()} CPUs; estimated {estimate_s(args) / 60:.0f} min\n",
          flush=True)
    rc = 0
    try:
        if any(sc.get("tls") for sc in args.scenarios):
            TLS_CERTS.update(make_tls_certs(tmp))
        broken: dict[str, str] = {}
        for sc in args.scenarios:
            results[sc["name"]] = run_scenario(args, sc, origins, pin, tmp, broken, failures)
            print("\n" + table(sc, results[sc["name"]]["median"], args, pin) + "\n", flush=True)
        print("\n".join(target_check(results, pin)))
        if failures:
            print(f"\nERROR: {len(failures)} run(s) failed:", file=sys.stderr)
            for f in failures:
                print("  - " + f.splitlines()[0], file=sys.stderr)
            rc = 1
    except BenchError as e:
        print(f"\nERROR: {e}", file=sys.stderr)
        rc = 2
    except KeyboardInterrupt:
        print("\ninterrupted; cleaning up", file=sys.stderr)
        rc = 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        origins.stop()
        if args.out:
            with open(args.out, "w") as f:
                json.dump({"meta": meta, "results": results, "failures": failures}, f, indent=2)
            print(f"results written to {args.out}")
        if args.keep_tmp:
            print(f"temp dir kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
