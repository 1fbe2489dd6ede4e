"""Fixtures and helpers for Weir's end-to-end tests.

Everything runs on loopback only (127.0.0.1 / ::1). Every process a test starts is registered with
the `procs` fixture and stopped by its PID when the test ends, whatever happened.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The admin token every test configuration sets ([admin] token): state changes need it (issue 13).
# `weir` commands the tests run find it in the environment; HTTP helpers send ADMIN_AUTH.
ADMIN_TOKEN = "weir-e2e-admin-token-0123456789abcdef"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
os.environ["WEIR_ADMIN_TOKEN"] = ADMIN_TOKEN


def weir_binary() -> Path:
    env = os.environ.get("WEIR_BIN")
    if env:
        return Path(env)
    release = REPO / ".build" / "release" / "weir"
    if release.exists():
        return release
    return REPO / ".build" / "debug" / "weir"


WEIR = weir_binary()


@pytest.fixture(scope="session")
def weir_bin() -> Path:
    if not WEIR.exists() or not os.access(WEIR, os.X_OK):
        pytest.fail(f"weir binary not found at {WEIR}: run `swift build` in {REPO} or set WEIR_BIN")
    return WEIR


# --------------------------------------------------------------------------------------------
# Ports and polling


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Polls `predicate` until it returns a truthy value (returned) or `timeout` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def can_connect(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect((host, port))
            return True
    except OSError:
        return False


def ipv6_loopback_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Process registry


class Procs:
    """Processes started by one test; stopped by PID at the end (SIGTERM, then SIGKILL)."""

    def __init__(self):
        self.items: list[subprocess.Popen] = []

    def start(self, args, **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen([str(a) for a in args], **kwargs)
        self.items.append(p)
        return p

    @staticmethod
    def stop(p: subprocess.Popen, timeout: float = 5.0):
        if p.poll() is not None:
            return
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)

    def stop_all(self):
        for p in reversed(self.items):
            try:
                self.stop(p)
            except Exception:  # keep stopping the others
                pass


@pytest.fixture
def procs():
    registry = Procs()
    try:
        yield registry
    finally:
        registry.stop_all()


# --------------------------------------------------------------------------------------------
# Demo backends


@dataclass
class Backend:
    name: str
    host: str
    port: int
    proc: subprocess.Popen
    stderr_path: Path

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def stats(self) -> dict:
        import json
        r = curl(f"{self.url}/stats")
        assert r.status == 200, r
        return json.loads(r.body)

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


LISTENING_RE = re.compile(rb"listening on (?:\[([^\]]+)\]|([0-9.]+)):(\d+)")


@pytest.fixture
def demo_backend(weir_bin, procs, tmp_path):
    """Factory: demo_backend(name, host="127.0.0.1", port=0) -> Backend (port 0: picked by the backend)."""
    counter = [0]

    def start(name: str, host: str = "127.0.0.1", port: int = 0, report_load: str | None = None,
              delay: int | None = None) -> Backend:
        counter[0] += 1
        err = tmp_path / f"backend-{name}-{counter[0]}.stderr"
        extra = []
        if report_load is not None:
            extra += ["--report-load", report_load]
        if delay is not None:
            extra += ["--delay", delay]
        with open(err, "wb") as f:
            p = procs.start([weir_bin, "demo-backend", "--port", port, "--name", name, "--host", host, *extra],
                            stdout=subprocess.DEVNULL, stderr=f)

        def ready():
            if p.poll() is not None:
                raise AssertionError(f"demo-backend {name} exited {p.returncode}: {err.read_bytes()!r}")
            m = LISTENING_RE.search(err.read_bytes())
            return int(m.group(3)) if m else None

        port = wait_until(ready, 10, what=f"demo-backend {name} to listen")
        wait_until(lambda: can_connect(host, port), 10, what=f"demo-backend {name} port")
        return Backend(name, host, port, p, err)

    return start


# --------------------------------------------------------------------------------------------
# Gateway


@dataclass
class Server:
    """A pool member: id and address (plus optional extra TOML keys, e.g. public_url)."""
    id: str
    address: str
    extra: dict = field(default_factory=dict)


def as_server(s) -> Server:
    if isinstance(s, Server):
        return s
    if isinstance(s, Backend):
        return Server(s.name, s.address)
    if isinstance(s, tuple):
        return Server(*s)
    raise TypeError(s)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Gateway:
    proc: subprocess.Popen
    host: str
    port: int
    confdir: Path
    stdout_path: Path
    stderr_path: Path
    admin: str = "off"

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def status(self, timeout: float = 5.0) -> dict:
        """GET /status from the admin listener (the gateway must have been started with admin=...)."""
        assert self.admin != "off", "gateway started without an admin listener"
        host, _, port = self.admin.rpartition(":")
        return admin_status(host.strip("[]"), int(port), timeout)

    def server_status(self, server_id: str, pool: str | None = None) -> dict:
        """The /status entry of server `server_id` (in `pool`, or the first pool that has it)."""
        for p in self.status()["pools"]:
            if pool is not None and p["name"] != pool:
                continue
            for s in p["servers"]:
                if s["id"] == server_id:
                    return s
        raise AssertionError(f"server {server_id} not in /status")

    def url(self, path: str = "/") -> str:
        return f"http://{self.address}{path}"

    def https_url(self, path: str = "/", host: str | None = None) -> str:
        """https://HOST:port/path (HOST defaults to the listener address; with a name, pair it with
        curl's `--resolve NAME:PORT:127.0.0.1`)."""
        return f"https://{host or self.host}:{self.port}{path}" if host else f"https://{self.address}{path}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def terminate(self, timeout: float = 15.0) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def admin_status(host: str, port: int, timeout: float = 5.0) -> dict:
    """GET /status from the admin listener at host:port, as JSON (fails unless 200)."""
    import http.client
    import json
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/status")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        return json.loads(body)
    finally:
        conn.close()


def render_config(*, port_host: str, port: int, pools: dict, routes, workers: int, access_log: str,
                  timeouts: dict, limits: dict, global_extra: dict, listener_extra: dict, extra: str,
                  admin: str = "off", pool_options: dict | None = None, tls: dict | None = None,
                  admin_token: str | None = ADMIN_TOKEN) -> str:
    lines = ["[global]", f"workers = {workers}", f"access_log = {toml_value(access_log)}"]
    g = {"drain_timeout": "5s"}
    g.update(global_extra)
    lines += [f"{k} = {toml_value(v)}" for k, v in g.items()]
    t = {"upstream_connect": "2s", "upstream_response": "2s"}
    t.update(timeouts)
    lines += ["", "[timeouts]"] + [f"{k} = {toml_value(v)}" for k, v in t.items()]
    if limits:
        lines += ["", "[limits]"] + [f"{k} = {toml_value(v)}" for k, v in limits.items()]
    addr = f"[{port_host}]:{port}" if ":" in port_host else f"{port_host}:{port}"
    lines += ["", "[[listener]]", 'name = "public"', f'address = "{addr}"']
    lines += [f"{k} = {toml_value(v)}" for k, v in listener_extra.items()]
    if tls is not None:   # [listener.tls] of the "public" listener; its "sni" key: a list of [[listener.tls.sni]]
        tls = dict(tls)
        sni = tls.pop("sni", [])
        lines += ["[listener.tls]"] + [f"{k} = {toml_value(v)}" for k, v in tls.items()]
        for entry in sni:
            lines += ["[[listener.tls.sni]]"] + [f"{k} = {toml_value(v)}" for k, v in entry.items()]
    lines += ["", "[admin]", f"address = {toml_value(admin)}"]
    if admin_token is not None:
        lines.append(f"token = {toml_value(admin_token)}")
    for pool_name, servers in pools.items():
        opts = {"policy": "round-robin"}
        opts.update((pool_options or {}).get(pool_name, {}))
        health = opts.pop("health", None)
        monitor = opts.pop("monitor", None)   # {"url": ..., ...} renders a [pool.monitor] table
        pool_tls = opts.pop("tls", None) if isinstance(opts.get("tls"), dict) else None
        lines += ["", "[[pool]]", f"name = {toml_value(pool_name)}"]
        lines += [f"{k} = {toml_value(v)}" for k, v in opts.items()]
        if health is not None:
            lines += ["[pool.health]"] + [f"{k} = {toml_value(v)}" for k, v in health.items()]
        if monitor is not None:
            lines += ["[pool.monitor]"] + [f"{k} = {toml_value(v)}" for k, v in monitor.items()]
        if pool_tls is not None:   # pool_options {"p": {"tls": {...}}} renders a [pool.tls] table
            lines += ["[pool.tls]"] + [f"{k} = {toml_value(v)}" for k, v in pool_tls.items()]
        for s in map(as_server, servers):
            lines += ["[[pool.server]]", f"id = {toml_value(s.id)}", f"address = {toml_value(s.address)}"]
            lines += [f"{k} = {toml_value(v)}" for k, v in s.extra.items()]
    if routes is None:
        routes = [{"name": "all", "pool": next(iter(pools)), "path": "/"}]
    for r in routes:
        lines += ["", "[[route]]"] + [f"{k} = {toml_value(v)}" for k, v in r.items()]
    if extra:
        lines += ["", extra]
    return "\n".join(lines) + "\n"


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@pytest.fixture
def gateway(weir_bin, procs, tmp_path):
    """Factory: gateway(pools={"p": [backend, ...]}, routes=None, workers=1, ...) -> Gateway.

    The listener port is chosen here (ephemeral); a start that loses the port race is retried.
    `routes` defaults to one route "/" to the first pool. Timeouts default to short values.
    """
    counter = [0]

    def start(pools: dict, routes=None, workers: int = 1, access_log: str = "stdout", timeouts=None,
              limits=None, global_extra=None, listener_extra=None, extra: str = "", host: str = "127.0.0.1",
              admin: str = "off", pool_options: dict | None = None, tls: dict | None = None,
              admin_token: str | None = ADMIN_TOKEN) -> Gateway:
        """`admin`: "off" (default), "auto" (a free 127.0.0.1 port) or an address.
        `pool_options`: {pool name: {key: value, ..., "health": {key: value}, "tls": {key: value}}}; policy
        defaults to round-robin; a "tls" dict renders [pool.tls] (`"tls": True` stays the short form).
        `tls`: keys of the listener's [listener.tls] table (its "sni" key: a list of [[listener.tls.sni]] dicts);
        the listener then speaks HTTPS (`Gateway.https_url`). `admin_token`: the [admin] token (None: none is
        configured and the gateway generates one into <state_dir>/admin.token)."""
        last_error = ""
        for _attempt in range(3):
            counter[0] += 1
            confdir = tmp_path / f"gw{counter[0]}"
            confdir.mkdir()
            port = free_port(host)
            admin_address = f"127.0.0.1:{free_port()}" if admin == "auto" else admin
            (confdir / "00-weir.toml").write_text(render_config(
                port_host=host, port=port, pools=pools, routes=routes, workers=workers, access_log=access_log,
                timeouts=timeouts or {}, limits=limits or {},
                # state_dir (where a generated sticky secret is kept) defaults to the test's tmp dir
                global_extra={"state_dir": str(tmp_path / "weir-state"), **(global_extra or {})},
                listener_extra=listener_extra or {}, extra=extra, admin=admin_address, pool_options=pool_options,
                tls=tls, admin_token=admin_token))
            out_path, err_path = confdir / "stdout.log", confdir / "stderr.log"
            with open(out_path, "wb") as out, open(err_path, "wb") as err:
                p = procs.start([weir_bin, "run", "-c", confdir], stdout=out, stderr=err)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if p.poll() is not None:
                    break
                if b"weir: serving" in err_path.read_bytes() and can_connect(host, port) and (
                        admin_address == "off" or can_connect(*_split_address(admin_address))):
                    return Gateway(p, host, port, confdir, out_path, err_path, admin_address)
                time.sleep(0.02)
            last_error = f"exit={p.poll()} stderr={err_path.read_text(errors='replace')!r}"
            Procs.stop(p)
        raise AssertionError(f"gateway did not start: {last_error}")

    return start


# --------------------------------------------------------------------------------------------
# nginx


@dataclass
class Nginx:
    port: int
    root: Path
    proc: subprocess.Popen

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


NGINX_BIN = "/usr/sbin/nginx"


@pytest.fixture
def nginx_backend(procs, tmp_path):
    """nginx from apt in the foreground, everything under a temporary prefix."""
    if not os.path.exists(NGINX_BIN):
        pytest.skip("nginx is not installed")
    prefix = tmp_path / "nginx"
    root = prefix / "www"
    (root / "static").mkdir(parents=True)
    (prefix / "logs").mkdir()
    for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (prefix / "tmp" / d).mkdir(parents=True)
    port = free_port()
    conf = f"""
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix}/logs/access.log;
    default_type application/octet-stream;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    client_max_body_size 16m;
    server {{
        listen 127.0.0.1:{port};
        server_name localhost;
        root {root};
        location /static/ {{ }}
        location = /fixed {{
            default_type text/plain;
            return 200 "fixed text from nginx\\n";
        }}
        location = /post {{
            default_type text/plain;
            return 200 "method=$request_method length=$content_length\\n";
        }}
    }}
}}
"""
    (prefix / "nginx.conf").write_text(conf)
    with open(prefix / "logs" / "stderr.log", "wb") as err:
        p = procs.start([NGINX_BIN, "-p", prefix, "-c", prefix / "nginx.conf", "-g", "daemon off;"],
                        stdout=subprocess.DEVNULL, stderr=err)

    def ready():
        if p.poll() is not None:
            raise AssertionError(f"nginx exited {p.returncode}: {(prefix / 'logs' / 'stderr.log').read_text()}"
                                 f" {(prefix / 'logs' / 'error.log').read_text() if (prefix / 'logs' / 'error.log').exists() else ''}")
        return can_connect("127.0.0.1", port)

    wait_until(ready, 10, what="nginx to listen")
    yield Nginx(port, root, p)


# --------------------------------------------------------------------------------------------
# A server that accepts and never answers


@pytest.fixture
def silent_server():
    """A loopback listener that accepts connections, reads and discards, and never answers."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    lsock.settimeout(0.1)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def run():
        deadline = time.monotonic() + 120   # bounded even if the test forgets to stop it
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                c, _ = lsock.accept()
                conns.append(c)
            except socket.timeout:
                continue
            except OSError:
                break

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield lsock.getsockname()[1], conns
    finally:
        stop.set()
        t.join(timeout=5)
        for c in conns:
            c.close()
        lsock.close()


# --------------------------------------------------------------------------------------------
# curl


@dataclass
class CurlResult:
    rc: int
    status: int | None
    headers: list          # [(name, value)] of the final response head
    heads: list            # every response head seen (status line + fields), interim ones included
    body: bytes
    stderr: str

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list:
        return [v for k, v in self.headers if k.lower() == name.lower()]


_curl_counter = [0]
_curl_dir = Path(os.environ.get("TMPDIR", "/tmp"))


def parse_dumped_heads(raw: bytes) -> list:
    heads = []
    for block in re.split(rb"\r\n\r\n", raw):
        block = block.strip(b"\r\n")
        if not block:
            continue
        lines = block.split(b"\r\n")
        status_line = lines[0].decode("latin-1")
        fields = []
        for line in lines[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                fields.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
        heads.append((status_line, fields))
    return heads


def curl(url: str, *args, timeout: float = 30.0) -> CurlResult:
    """Runs `curl -sS` once for `url`; returns status, final headers and body."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="weir-curl-") as d:
        hdr, body = Path(d) / "h", Path(d) / "b"
        cmd = ["curl", "-sS", "-g", "--max-time", str(int(timeout)), "-D", str(hdr), "-o", str(body), *args, url]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout + 10)
        heads = parse_dumped_heads(hdr.read_bytes()) if hdr.exists() else []
        status, headers = None, []
        if heads:
            status_line, headers = heads[-1]
            parts = status_line.split()
            status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        return CurlResult(p.returncode, status, headers, heads, body.read_bytes() if body.exists() else b"",
                          p.stderr.decode(errors="replace"))


# --------------------------------------------------------------------------------------------
# Raw HTTP over sockets


class ClosedEarly(AssertionError):
    pass


class RawConn:
    """A client socket with a read buffer and a bounded HTTP/1.1 response reader."""

    def __init__(self, host: str, port: int, timeout: float = 10.0, rcvbuf: int | None = None):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    def send(self, data: bytes):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self, max_bytes: int = 65536) -> bool:
        """Reads once; False at end of stream (a reset counts as the end)."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(max_bytes)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, marker: bytes, limit: int = 1 << 20) -> bytes:
        while marker not in self.buf:
            if len(self.buf) > limit:
                raise AssertionError(f"no {marker!r} within {limit} bytes")
            if not self._fill():
                raise ClosedEarly(f"connection closed before {marker!r}; got {self.buf[:300]!r}")
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill(min(1 << 20, max(65536, n - len(self.buf)))):
                raise ClosedEarly(f"connection closed after {len(self.buf)} of {n} bytes")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self, limit: int = 1 << 27) -> bytes:
        while self._fill():
            if len(self.buf) > limit:
                raise AssertionError("too much data")
        out, self.buf = self.buf, b""
        return out

    def read_head(self):
        raw = self.read_until(b"\r\n\r\n", limit=1 << 20)
        return parse_head(raw)

    def read_response(self, head_request: bool = False) -> "RawResponse":
        """Reads one final response (interim 1xx heads are collected in `.interim`)."""
        interim = []
        while True:
            status, reason, headers, raw = self.read_head()
            if 100 <= status < 200 and status != 101:
                interim.append(raw)
                continue
            break
        resp = RawResponse(status, reason, headers, raw, interim=interim)
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if head_request or status in (204, 304, 101):
            return resp
        if te and "chunked" in te.lower():
            body, trailers = self.read_chunked()
            resp.body, resp.trailers, resp.chunked = body, trailers, True
        elif cl is not None:
            resp.body = self.read_exact(int(cl))
        else:
            resp.body = self.read_to_eof()
            resp.until_close = True
        return resp

    def read_chunked(self):
        body = bytearray()
        for _ in range(1_000_000):
            line = self.read_until(b"\r\n", limit=1 << 16)[:-2]
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            body += self.read_exact(size)
            assert self.read_exact(2) == b"\r\n", "chunk data not followed by CRLF"
        trailers = []
        for _ in range(1000):
            line = self.read_until(b"\r\n", limit=1 << 16)[:-2]
            if not line:
                break
            k, v = line.split(b":", 1)
            trailers.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
        return bytes(body), trailers

    def is_closed(self, timeout: float = 5.0) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` with no further bytes."""
        self.sock.settimeout(timeout)
        if self.buf:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        if data:
            self.buf += data
            return False
        return True


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list
    raw_head: bytes
    body: bytes = b""
    trailers: list = field(default_factory=list)
    chunked: bool = False
    until_close: bool = False
    interim: list = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


def parse_head(raw: bytes):
    lines = raw[:-4].split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    assert status_line.startswith("HTTP/1."), f"not a status line: {status_line!r}"
    parts = status_line.split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        k, v = line.split(b":", 1)
        headers.append((k.decode("latin-1").strip(), v.decode("latin-1").strip()))
    return status, reason, headers, raw


def filler(size: int) -> bytes:
    """The demo backend's `size=` body: 1 MiB blocks of 'a'..'z' repeating (each block restarts at 'a')."""
    block = (bytes(range(97, 97 + 26)) * (MIB // 26 + 1))[:MIB]
    return (block * (size // MIB + 1))[:size]


MIB = 1 << 20


# --------------------------------------------------------------------------------------------
# Scripted origins: small misbehaving HTTP servers written in the test


class OriginConn:
    """One connection accepted by an `Origin`; every read is bounded by the socket's timeout."""

    def __init__(self, sock: socket.socket, index: int, timeout: float):
        self.sock, self.index = sock, index
        self.sock.settimeout(timeout)
        self.buf = b""
        self.requests: list[bytes] = []    # request heads read so far
        self.closed_by_peer_at: float | None = None

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        if not data:
            if self.closed_by_peer_at is None:
                self.closed_by_peer_at = time.monotonic()
            return False
        self.buf += data
        return True

    def read_head(self) -> bytes | None:
        """The next request head (with its CRLFCRLF), or None when the peer closed first."""
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > 1 << 20 or not self._fill():
                return None
        i = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:i], self.buf[i:]
        self.requests.append(head)
        return head

    def read_body(self, head: bytes) -> bytes | None:
        """The Content-Length body of `head` (b"" without one), or None when the peer closed first."""
        m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
        n = int(m.group(1)) if m else 0
        while len(self.buf) < n:
            if not self._fill():
                return None
        body, self.buf = self.buf[:n], self.buf[n:]
        return body

    def read_request(self):
        """(head, body) of the next Content-Length-framed request, or None when the peer closed first."""
        head = self.read_head()
        if head is None:
            return None
        body = self.read_body(head)
        return None if body is None else (head, body)

    def send(self, data: bytes) -> bool:
        """Writes `data`; False when the peer is gone."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def wait_closed(self, timeout: float) -> bool:
        """True when the peer closes (EOF or reset) within `timeout` seconds; bytes that come meanwhile are kept."""
        deadline = time.monotonic() + timeout
        while self.closed_by_peer_at is None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                if not self._fill():
                    return True
            except socket.timeout:
                return False
        return True

    def reset(self):
        """Closes with SO_LINGER 0: the peer gets a RST, not a FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Origin:
    """A loopback listener that runs `handler(conn: OriginConn)` in a thread per accepted connection.
    The handler's exceptions are kept in `errors` (the test checks them); every socket read has a timeout,
    and the whole origin stops at the end of the test (or after `lifetime` seconds)."""

    def __init__(self, handler, timeout: float = 10.0, lifetime: float = 120.0):
        self.handler, self.timeout = handler, timeout
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.05)
        self.port = self.lsock.getsockname()[1]
        self.conns: list[OriginConn] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._deadline = time.monotonic() + lifetime
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def accepted(self) -> int:
        return len(self.conns)

    def _accept_loop(self):
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                s, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            conn = OriginConn(s, len(self.conns), self.timeout)
            self.conns.append(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _run(self, conn: OriginConn):
        try:
            self.handler(conn)
        except socket.timeout:
            pass        # a connection the gateway left idle: not the handler's fault
        except BaseException as e:  # reported by the test through `errors`
            self.errors.append(e)

    def stop(self):
        self._stop.set()
        self._acceptor.join(timeout=5)
        try:
            self.lsock.close()
        except OSError:
            pass
        for c in self.conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)   # wakes a handler blocked in recv (close alone does not)
            except OSError:
                pass
            c.close()
        for t in self._threads:
            t.join(timeout=5)


@pytest.fixture
def origin():
    """Factory: origin(handler, timeout=10.0) -> Origin (see `Origin`); all are stopped at the end of the test."""
    started: list[Origin] = []

    def start(handler, timeout: float = 10.0) -> Origin:
        o = Origin(handler, timeout=timeout)
        started.append(o)
        return o

    try:
        yield start
    finally:
        for o in started:
            o.stop()


def access_log_entries(text: str) -> list:
    """[(request line, status)] of the access log lines in `text` (format: TIME CLIENT "LINE" STATUS ...)."""
    out = []
    for line in text.splitlines():
        m = re.search(r' "(.*)" (\d{3}) ', line)
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


def gateway_read_everything(client: socket.socket) -> bool:
    """True when every byte `client` (a loopback TCP socket) sent has been read by the process at the
    other end: nothing unacknowledged on our side, nothing unread in the peer's receive queue
    (/proc/net/tcp). A condition to await instead of sleeping "until the gateway has seen it"."""
    local = client.getsockname()[1]
    remote = client.getpeername()[1]
    ours = theirs = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            lport, rport = int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16)
            tx, rx = (int(x, 16) for x in f[4].split(":"))
            if (lport, rport) == (local, remote):
                ours = tx
            elif (lport, rport) == (remote, local):
                theirs = rx
    return ours == 0 and theirs == 0
