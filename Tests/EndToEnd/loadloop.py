"""A bounded background load loop for end-to-end tests of hand-overs (binary upgrade, reload).

    with LoadLoop(url_plain=gw.url("/"), url_tls=gw.https_url("/"), ca_file=pki.ca.cert,
                  keepalive=4, fresh=2, tls=2, websockets=2, ws_url=gw.url("/ws"),
                  max_seconds=30, max_requests=20_000) as loop:
        loop.wait_progress(200)          # some traffic before the change
        ...change something...           # upgrade, reload, ...
        loop.wait_progress(200)          # and some after it
    report = loop.report()
    assert report.clean, report

Client kinds, each in its own thread (standard library only: http.client, ssl, socket):
* keep-alive: one HTTP/1.1 connection reused for as long as it lasts;
* fresh: a new connection per request (`Connection: close`);
* tls: HTTPS over keep-alive connections renewed every `tls_requests_per_connection` requests
  (handshakes and reuse both);
* websockets: one WebSocket each (the demo backend echoes at /ws) exchanging a text message every
  `ws_interval` seconds; the report says whether every one stayed open to the end.

What counts as what (the words a test asserts on):
* ok: a 2xx response with a complete body;
* refused: connect() answered ECONNREFUSED (nobody listening: the hand-over lost the socket);
* reset: ECONNRESET / EPIPE / EOF in the middle of an exchange;
* failed: anything else (a non-2xx status, a timeout, a TLS error), with its text.
A keep-alive connection the server closed while it was idle (the normal end of a drained
connection, RFC 9112 §9.6) is not an error: the loop notices the FIN before reusing it and opens
a new one (`idle_closed`). The one race no client can see coming (the server closes just as the
request leaves) is retried once on a new connection, as HTTP clients do for a request that got no
byte of answer on a reused connection; those are counted in `retried` and listed in `retry_errors`,
so a test can require zero of them too.
"""
from __future__ import annotations

import base64
import collections
import http.client
import os
import select
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

MAX_ERRORS_KEPT = 8
# A connection that broke: reset, broken pipe, or a TLS connection ended without close_notify.
BROKEN = (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


@dataclass
class LoadReport:
    ok: int = 0
    failed: int = 0
    refused: int = 0
    reset: int = 0
    retried: int = 0
    idle_closed: int = 0
    connections: int = 0
    errors: list = field(default_factory=list)          # first few "kind: text" of failed/refused/reset
    retry_errors: list = field(default_factory=list)    # first few texts of retried requests
    by_client: dict = field(default_factory=dict)       # "keepalive"/"fresh"/"tls" -> ok count
    bodies: dict = field(default_factory=dict)          # first line of the body -> count (who answered)
    ws_opened: int = 0
    ws_expected: int = 0
    ws_still_open: int = 0
    ws_messages: int = 0
    ws_errors: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return self.ok + self.failed + self.refused + self.reset

    @property
    def clean(self) -> bool:
        """No request failed, was refused or reset, and every WebSocket opened and stayed open."""
        return (self.failed == 0 and self.refused == 0 and self.reset == 0 and self.ok > 0
                and self.ws_opened == self.ws_expected and self.ws_still_open == self.ws_expected)

    def __str__(self) -> str:
        rate = self.requests / self.seconds if self.seconds else 0.0
        text = (f"{self.requests} requests in {self.seconds:.1f}s ({rate:.0f}/s) on {self.connections} connections: "
                f"ok {self.ok}, failed {self.failed}, refused {self.refused}, reset {self.reset}, "
                f"retried {self.retried}, idle-closed {self.idle_closed}; by client {self.by_client}; "
                f"answered by {self.bodies}")
        if self.ws_expected:
            text += (f"; websockets opened {self.ws_opened}/{self.ws_expected}, still open {self.ws_still_open}, "
                     f"messages {self.ws_messages}")
        for e in self.errors + self.retry_errors + self.ws_errors:
            text += f"\n  {e}"
        return text


class _HTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to `address` with SNI and Host `name` (a certificate's DNS name on a loopback address)."""

    def __init__(self, address: str, port: int, name: str, **kwargs):
        super().__init__(name, port, **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _Reset(Exception):
    """The connection broke in the middle of an exchange."""


class _Stale(Exception):
    """A reused connection broke before any byte of the answer: the request may be retried."""


class LoadLoop:
    """Runs client threads until `max_seconds` pass, `max_requests` requests are done, or `stop()`.
    Bounded in both: a test can never hang on it (every socket operation has `timeout`)."""

    def __init__(self, url_plain: str | None = None, url_tls: str | None = None, *, keepalive: int = 4,
                 fresh: int = 2, tls: int = 2, websockets: int = 0, ws_url: str | None = None,
                 max_seconds: float = 30.0, max_requests: int | None = None, ca_file=None,
                 server_hostname: str | None = None, timeout: float = 5.0, pause: float = 0.002,
                 tls_requests_per_connection: int = 5, ws_interval: float = 0.1):
        if (keepalive or fresh) and not url_plain:
            raise ValueError("keepalive/fresh clients need url_plain")
        if tls and not url_tls:
            raise ValueError("tls clients need url_tls")
        if websockets and not ws_url:
            raise ValueError("websockets need ws_url (the demo backend echoes at /ws)")
        self.url_plain, self.url_tls, self.ws_url = url_plain, url_tls, ws_url
        self.counts = {"keepalive": keepalive, "fresh": fresh, "tls": tls, "websockets": websockets}
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.timeout, self.pause = timeout, pause
        self.tls_per_connection, self.ws_interval = max(1, tls_requests_per_connection), ws_interval
        self.server_hostname = server_hostname
        self.ssl_context = None
        if tls:
            # With a CA: the chain and the name (the URL's host, an IP SAN, or `server_hostname`) are checked.
            self.ssl_context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else ssl._create_unverified_context()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._report = LoadReport(ws_expected=websockets)
        self._bodies = collections.Counter()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        self._ended = 0.0

    # ---------------------------------------------------------------------------------- control

    def __enter__(self) -> "LoadLoop":
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self._started = time.monotonic()
        self._deadline = self._started + self.max_seconds
        kinds = [("keepalive", self._keepalive_client), ("fresh", self._fresh_client),
                 ("tls", self._tls_client), ("websockets", self._ws_client)]
        for kind, target in kinds:
            for i in range(self.counts[kind]):
                t = threading.Thread(target=self._guarded, args=(kind, target, i), name=f"load-{kind}-{i}", daemon=True)
                self._threads.append(t)
        # WebSockets first, so that they are open before the change a test makes.
        self._threads.sort(key=lambda t: not t.name.startswith("load-websockets"))
        for t in self._threads:
            t.start()

    def stop(self):
        """Ends the loop (WebSockets close cleanly) and waits for every client thread."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout * 3)
        if not self._ended:
            self._ended = time.monotonic()

    def running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def wait_progress(self, requests: int, timeout: float = 10.0) -> int:
        """Waits until `requests` more requests have ended (whatever their outcome); returns the total.
        Raises AssertionError if the loop ends or `timeout` passes first."""
        with self._progress:
            goal = self._report.requests + requests
            deadline = time.monotonic() + timeout
            while self._report.requests < goal:
                left = deadline - time.monotonic()
                if left <= 0 or not self.running():
                    raise AssertionError(f"load loop: {self._report.requests} of {goal} requests after waiting; {self._report}")
                self._progress.wait(min(left, 0.1))
            return self._report.requests

    def wait_websockets_open(self, timeout: float = 10.0):
        """Waits until every WebSocket client has completed its handshake."""
        deadline = time.monotonic() + timeout
        while self._report.ws_opened < self._report.ws_expected:
            if time.monotonic() > deadline or not self.running():
                raise AssertionError(f"load loop: {self._report.ws_opened} of {self._report.ws_expected} WebSockets open")
            time.sleep(0.02)

    def report(self) -> LoadReport:
        """A copy of the counts so far (the final ones after `stop()` or the end of the `with`)."""
        with self._lock:
            r = LoadReport(**{k: getattr(self._report, k) for k in LoadReport.__dataclass_fields__})
            r.errors, r.retry_errors, r.ws_errors = list(r.errors), list(r.retry_errors), list(r.ws_errors)
            r.by_client = dict(self._report.by_client)
            r.bodies = dict(self._bodies)
            r.seconds = (self._ended or time.monotonic()) - self._started
            return r

    # ---------------------------------------------------------------------------------- bookkeeping

    def _may_send(self) -> bool:
        if not self.running():
            return False
        if self.max_requests is not None and self._report.requests >= self.max_requests:
            return False
        return True

    def _count(self, kind: str, outcome: str, text: str = "", body: bytes = b""):
        with self._progress:
            r = self._report
            setattr(r, outcome, getattr(r, outcome) + 1)
            if outcome == "ok":
                r.by_client[kind] = r.by_client.get(kind, 0) + 1
                self._bodies[body.split(b"\n", 1)[0].decode("latin-1")] += 1
            elif len(r.errors) < MAX_ERRORS_KEPT:
                r.errors.append(f"{kind} {outcome} at {self._when()}: {text}")
            self._progress.notify_all()

    def _note(self, attr: str, text: str | None = None, listing: str | None = None):
        with self._lock:
            setattr(self._report, attr, getattr(self._report, attr) + 1)
            if listing and text is not None:
                items = getattr(self._report, listing)
                if len(items) < MAX_ERRORS_KEPT:
                    items.append(f"at {self._when()}: {text}")

    def _when(self) -> str:
        """Seconds since the start, and the UTC time of day to match the gateway's log lines."""
        now = time.time()
        return (f"{time.monotonic() - self._started:.2f}s "
                f"({time.strftime('%H:%M:%S', time.gmtime(now))}.{int(now * 1000) % 1000:03d}Z)")

    def _guarded(self, kind, target, index):
        try:
            target(index)
        except BaseException as e:  # a bug in the loop itself must show in the report, not vanish
            self._count(kind, "failed", f"client thread died: {e!r}")

    # ---------------------------------------------------------------------------------- HTTP clients

    def _connection(self, url: str, tls: bool) -> http.client.HTTPConnection:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        port = parts.port or (443 if tls else 80)
        if tls:
            conn = _HTTPSConnection(host, port, self.server_hostname or host, timeout=self.timeout, context=self.ssl_context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        return conn

    @staticmethod
    def _target(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @staticmethod
    def _closed_while_idle(conn: http.client.HTTPConnection) -> bool:
        """True when the server has closed (or reset) this idle connection: it is readable with
        nothing pending for us, so a new request would only meet the FIN."""
        sock = conn.sock
        if sock is None:
            return False
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return True   # bytes nobody asked for (a TLS alert): the connection is not reusable
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    def _exchange(self, conn: http.client.HTTPConnection, target: str, reused: bool, close: bool) -> bytes:
        """One request; returns the body of a 2xx answer. Raises _Stale, _Reset or another error."""
        headers = {"Connection": "close"} if close else {}
        port = conn.sock.getsockname()[1] if conn.sock else None
        try:
            conn.request("GET", target, headers=headers)
        except BROKEN as e:
            raise (_Stale if reused else _Reset)(f"sending: {e!r}")
        try:
            resp = conn.getresponse()
        except BROKEN as e:   # http.client.RemoteDisconnected too: EOF before the status line
            raise (_Stale if reused else _Reset)(f"no answer: {e!r} port={port}")
        try:
            body = resp.read()
        except BROKEN + (http.client.IncompleteRead,) as e:
            raise _Reset(f"reading body of {resp.status}: {e!r}")
        if not 200 <= resp.status < 300:
            raise http.client.HTTPException(f"status {resp.status} {resp.reason}: {body[:120]!r}")
        if resp.will_close and not close:
            conn.close()   # the server said Connection: close (a draining process): next time, a new one
        return body

    def _request(self, kind: str, url: str, tls: bool, conn, uses: int):
        """Sends one request on `conn` (or a new connection); returns (connection to reuse or None, uses)."""
        fresh_each_time = kind == "fresh"
        target = self._target(url)
        if conn is not None and (conn.sock is None or self._closed_while_idle(conn)):
            if conn.sock is not None:
                self._note("idle_closed")
            conn.close()
            conn = None
        for attempt in (0, 1):
            reused = conn is not None
            if conn is None:
                conn, uses = self._connection(url, tls), 0
                try:
                    conn.connect()
                except ConnectionRefusedError as e:
                    self._count(kind, "refused", repr(e))
                    return None, 0
                except BROKEN as e:
                    self._count(kind, "reset", f"connecting: {e!r}")
                    return None, 0
                except Exception as e:
                    self._count(kind, "failed", f"connecting: {e!r}")
                    return None, 0
                self._note("connections")
            try:
                body = self._exchange(conn, target, reused, close=fresh_each_time)
            except _Stale as e:
                conn.close()
                conn = None
                if attempt == 0:
                    self._note("retried", str(e), "retry_errors")
                    continue
                self._count(kind, "reset", str(e))
                return None, 0
            except _Reset as e:
                conn.close()
                self._count(kind, "reset", str(e))
                return None, 0
            except BROKEN as e:
                conn.close()
                self._count(kind, "reset", repr(e))
                return None, 0
            except Exception as e:
                conn.close()
                self._count(kind, "failed", repr(e))
                return None, 0
            self._count(kind, "ok", body=body)
            uses += 1
            if fresh_each_time or conn.sock is None or (tls and uses >= self.tls_per_connection):
                conn.close()
                return None, 0
            return conn, uses
        return None, 0

    def _http_client(self, kind: str, url: str, tls: bool):
        conn, uses = None, 0
        while self._may_send():
            conn, uses = self._request(kind, url, tls, conn, uses)
            if self.pause:
                time.sleep(self.pause)
        if conn is not None:
            conn.close()

    def _keepalive_client(self, _i):
        self._http_client("keepalive", self.url_plain, tls=False)

    def _fresh_client(self, _i):
        self._http_client("fresh", self.url_plain, tls=False)

    def _tls_client(self, _i):
        self._http_client("tls", self.url_tls, tls=True)

    # ---------------------------------------------------------------------------------- WebSockets

    def _ws_client(self, index: int):
        parts = urllib.parse.urlsplit(self.ws_url)
        try:
            ws = _WebSocket(socket.create_connection((parts.hostname, parts.port or 80), timeout=self.timeout))
        except OSError as e:
            self._ws_error(index, f"connect: {e!r}")
            return
        try:
            refusal = ws.handshake(parts.netloc, parts.path or "/")
            if refusal:
                self._ws_error(index, f"handshake: {refusal}")
                return
            with self._lock:
                self._report.ws_opened += 1
            n = 0
            while self.running():
                n += 1
                text = f"weir-load {index} {n}".encode()
                ws.send(0x1, text)
                opcode, payload = ws.receive()
                if opcode != 0x1 or payload != text:
                    self._ws_error(index, f"message {n}: got opcode {opcode} {payload[:60]!r}")
                    return
                with self._lock:
                    self._report.ws_messages += 1
                self._stop.wait(self.ws_interval)
            ws.send(0x8, struct.pack("!H", 1000))
            opcode, _ = ws.receive()
            if opcode != 0x8:
                self._ws_error(index, f"close answered with opcode {opcode}")
                return
            with self._lock:
                self._report.ws_still_open += 1
        except (OSError, EOFError) as e:
            self._ws_error(index, repr(e))
        finally:
            ws.close()

    def _ws_error(self, index: int, text: str):
        with self._lock:
            if len(self._report.ws_errors) < MAX_ERRORS_KEPT:
                self._report.ws_errors.append(f"websocket {index} at {self._when()}: {text}")


class _WebSocket:
    """The client side of one WebSocket (RFC 6455): handshake, masked frames out, frames in."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def handshake(self, host: str, path: str) -> str | None:
        """Sends the upgrade request; None once the server answered 101, else what it said."""
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                return f"closed after {self.buf[:120]!r}"
            self.buf += data
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return None if head.startswith(b"HTTP/1.1 101") else repr(head[:120])

    def send(self, opcode: int, payload: bytes):
        """One masked client frame (§5.2); payloads here are short."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        if len(payload) < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload))
        else:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, len(payload))
        self.sock.sendall(head + mask + masked)

    def receive(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next (unmasked server) frame."""
        b0, b1 = self._need(2)
        length = b1 & 0x7F
        if length == 126:
            length = struct.unpack("!H", self._need(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", self._need(8))[0]
        return b0 & 0x0F, self._need(length)

    def _need(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError(f"closed after {len(self.buf)} bytes of a frame")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
