"""Request rules of issue 8 checked on the wire: what Weir forwards to the server, byte for byte.

A raw-socket client talks to weir; the origin is `RecordingBackend`, a loopback server in this file
that records every request head and body exactly as received (the demo backend parses with Weir's
own parser, so it could not show what was on the wire). RFC 9110 §5.6.1, §8.6; RFC 9112 §3.2.2,
§6.1, §7.1; RFC 9113 §3.1 (h2c).
"""
from __future__ import annotations

import queue
import socket
import threading
import time
from dataclasses import dataclass

import pytest

from conftest import RawConn, Server


@dataclass
class Received:
    """One request as the origin received it."""
    head: bytes                 # request line through the final CRLFCRLF
    body: bytes                 # body bytes as received (chunked framing included)

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    @property
    def lines(self) -> list:
        return [l for l in self.head[:-4].split(b"\r\n")[1:]]

    def values(self, name: str) -> list:
        """The raw values (OWS-trimmed) of every field line named `name` (case-insensitive)."""
        out = []
        for line in self.lines:
            k, _, v = line.partition(b":")
            if k.decode("latin-1").lower() == name.lower():
                out.append(v.strip(b" \t").decode("latin-1"))
        return out


def _ok(_received: Received) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class RecordingBackend:
    """Loopback HTTP/1.1 origin: records each request and answers it with `respond(received)`.

    Keep-alive (weir pools upstream connections). A 101 answer turns the connection into an echo
    tunnel. Every thread and socket is bounded by `lifetime` seconds.
    """

    def __init__(self, respond=_ok, lifetime: float = 60.0):
        self.respond = respond
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.requests: queue.Queue = queue.Queue()
        self.deadline = time.monotonic() + lifetime
        self.stop = threading.Event()
        self.conns: list = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def server(self) -> Server:
        return Server("rec", f"127.0.0.1:{self.port}")

    def next(self, timeout: float = 5.0) -> Received:
        return self.requests.get(timeout=timeout)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.lsock.close()

    def _accept(self):
        while not self.stop.is_set() and time.monotonic() < self.deadline:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket):
        c.settimeout(max(0.1, self.deadline - time.monotonic()))
        reader = _Reader(c)
        try:
            while not self.stop.is_set():
                head = reader.until(b"\r\n\r\n")
                if head is None:
                    return
                received = Received(head, reader.body(head))
                self.requests.put(received)
                answer = self.respond(received)
                c.sendall(answer)
                if answer.startswith(b"HTTP/1.1 101"):
                    while not self.stop.is_set():   # echo tunnel
                        data = reader.some()
                        if not data:
                            return
                        c.sendall(data)
        except (OSError, ValueError):
            return


class _Reader:
    """Buffered reads of one origin-side connection; None / b"" at the end of the stream."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def until(self, marker: bytes, limit: int = 1 << 20):
        while marker not in self.buf:
            if len(self.buf) > limit or not self._fill():
                return None
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ValueError("closed inside a body")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def some(self) -> bytes:
        if not self.buf and not self._fill():
            return b""
        out, self.buf = self.buf, b""
        return out

    def body(self, head: bytes) -> bytes:
        """The body as framed by `head`: the first Content-Length element, or chunked when the
        last non-empty Transfer-Encoding element is chunked (framing bytes kept)."""
        r = Received(head, b"")
        codings = [e.strip().lower() for v in r.values("transfer-encoding") for e in v.split(",") if e.strip()]
        if codings and codings[-1] == "chunked":
            out = b""
            for _ in range(100_000):
                line = self.until(b"\r\n", limit=1 << 16)
                if line is None:
                    raise ValueError("closed inside a chunked body")
                out += line
                size = int(line[:-2].split(b";")[0], 16)
                if size == 0:
                    break
                out += self.exact(size + 2)
            for _ in range(1000):
                line = self.until(b"\r\n", limit=1 << 16)
                if line is None:
                    raise ValueError("closed inside trailers")
                out += line
                if line == b"\r\n":
                    return out
            raise ValueError("too many trailer lines")
        lengths = r.values("content-length")
        if lengths:
            return self.exact(int(lengths[0].split(",")[0]))
        return b""


@pytest.fixture
def recording_backend():
    backends = []

    def start(respond=_ok) -> RecordingBackend:
        b = RecordingBackend(respond)
        backends.append(b)
        return b

    yield start
    for b in backends:
        b.close()


def forwarded_before_sentinel(gw, backend: RecordingBackend) -> list:
    """Sends a valid GET /sentinel and returns the request lines the origin received before it.
    A request answered with 400 by weir itself was answered before any forwarding, so if it had been
    forwarded it would be in this list."""
    r = exchange(gw, b"GET /sentinel HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.status == 200
    seen = []
    for _ in range(100):
        got = backend.next()
        if got.request_line == b"GET /sentinel HTTP/1.1":
            return seen
        seen.append(got.request_line)
    raise AssertionError("sentinel not received")


def exchange(gw, request: bytes, head_request: bool = False):
    """Sends `request` on a fresh connection and reads one response."""
    with RawConn("127.0.0.1", gw.port, timeout=10) as c:
        c.send(request)
        return c.read_response(head_request=head_request)


# 1 Content-Length repeats (RFC 9110 §8.6) ------------------------------------------------------

@pytest.mark.parametrize("fields", [
    b"Content-Length: 5\r\nContent-Length: 5\r\n",
    b"Content-Length: 5, 5\r\n",
    b"Content-Length: 5,5\r\nContent-Length: 005\r\n",
], ids=["two-lines", "list", "list-and-leading-zeros"])
def test_identical_content_lengths_are_forwarded_as_one_line(recording_backend, gateway, fields):
    backend = recording_backend()
    gw = gateway({"p": [backend.server]})
    r = exchange(gw, b"POST /cl HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\nhello")
    assert r.status == 200 and r.body == b"ok"
    got = backend.next()
    assert got.values("content-length") == ["5"], got.head
    assert got.body == b"hello"


def test_differing_content_lengths_are_400_and_never_forwarded(recording_backend, gateway):
    backend = recording_backend()
    gw = gateway({"p": [backend.server]})
    for fields in (b"Content-Length: 5\r\nContent-Length: 6\r\n", b"Content-Length: 5, 6\r\n"):
        r = exchange(gw, b"POST /cl HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\nhello!")
        assert r.status == 400, fields
    assert forwarded_before_sentinel(gw, backend) == []


def test_identical_content_lengths_in_a_response_reach_the_client_as_one_line(recording_backend, gateway):
    backend = recording_backend(lambda _r: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok")
    gw = gateway({"p": [backend.server]})
    r = exchange(gw, b"GET /r HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.status == 200 and r.body == b"ok"
    assert [v for k, v in r.headers if k.lower() == "content-length"] == ["2"], r.raw_head


# 2 Transfer-Encoding with empty list elements (RFC 9110 §5.6.1): normalised -------------------

@pytest.mark.parametrize("fields", [
    b"Transfer-Encoding: chunked, ,\r\n",
    b"Transfer-Encoding: , chunked\r\n",
    b"Transfer-Encoding: ,\r\nTransfer-Encoding: chunked\r\n",
], ids=["trailing-empties", "leading-empty", "empty-line-then-chunked"])
def test_transfer_encoding_with_empty_elements_is_forwarded_normalised(recording_backend, gateway, fields):
    backend = recording_backend()
    gw = gateway({"p": [backend.server]})
    body = b"5\r\nhello\r\n0\r\n\r\n"
    r = exchange(gw, b"POST /te HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n" + body)
    assert r.status == 200 and r.body == b"ok"
    got = backend.next()
    assert got.values("transfer-encoding") == ["chunked"], got.head
    assert got.body == body


def test_transfer_encoding_of_only_empty_elements_is_400(recording_backend, gateway):
    backend = recording_backend()
    gw = gateway({"p": [backend.server]})
    r = exchange(gw, b"POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: , ,\r\n\r\n0\r\n\r\n")
    assert r.status == 400
    assert forwarded_before_sentinel(gw, backend) == []


# 3 chunk sizes with leading zeros (RFC 9112 §7.1): the value is bounded, not the digits ------------

def test_chunk_size_with_leading_zeros_in_a_request_is_accepted(recording_backend, gateway):
    backend = recording_backend()
    gw = gateway({"p": [backend.server]})
    body = b"000000000000000000005\r\nhello\r\n0000000000000000000000\r\n\r\n"
    r = exchange(gw, b"POST /z HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert r.status == 200 and r.body == b"ok"
    assert backend.next().body == body
    # A value beyond what fits (2^64) is still refused, whatever the digits.
    r = exchange(gw, b"POST /z HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0010000000000000000\r\nx")
    assert r.status == 400


def test_chunk_size_with_leading_zeros_in_a_response_is_accepted(recording_backend, gateway):
    backend = recording_backend(lambda _r: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                           b"000000000000000000005\r\nhello\r\n000000000000000000000\r\n\r\n")
    gw = gateway({"p": [backend.server]})
    r = exchange(gw, b"GET /z HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.status == 200
    assert r.chunked and r.body == b"hello"


# 4 Upgrade: h2c is never forwarded (RFC 9113 §3.1 deprecates it; Weir speaks HTTP/1.1 upstream) ----

@pytest.mark.parametrize("fields", [
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
    b"Connection: upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
], ids=["settings-named-in-connection", "settings-not-named"])
def test_h2c_upgrade_is_forwarded_as_a_plain_request(recording_backend, gateway, fields):
    backend = recording_backend()
    gw = gateway({"p": [backend.server]})
    r = exchange(gw, b"GET /h2c HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n")
    assert r.status == 200 and r.body == b"ok"
    got = backend.next()
    assert got.request_line == b"GET /h2c HTTP/1.1"
    assert got.values("upgrade") == [] and got.values("http2-settings") == [], got.head
    assert got.values("connection") == [], got.head


def test_websocket_offered_next_to_h2c_is_still_upgraded(recording_backend, gateway):
    def respond(received: Received) -> bytes:
        if received.values("upgrade") == ["websocket"]:
            return b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        return b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"

    backend = recording_backend(respond)
    gw = gateway({"p": [backend.server]})
    with RawConn("127.0.0.1", gw.port, timeout=10) as c:
        c.send(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n")
        r = c.read_response()
        assert r.status == 101, r.raw_head
        c.send(b"ping through the tunnel")
        assert c.read_exact(23) == b"ping through the tunnel"
    got = backend.next()
    assert got.values("upgrade") == ["websocket"], got.head
    assert [v.lower() for v in got.values("connection")] == ["upgrade"], got.head


# 5 absolute-form target: Host comes from the target's authority (RFC 9112 §3.2.2) ---------------

@pytest.mark.parametrize("host_lines", [
    b"Host: other.test\r\n",
    b"Host:\r\n",
    b"Host: example.test:8080\r\n",
], ids=["different-host", "empty-host", "same-host"])
def test_absolute_form_host_comes_from_the_target(recording_backend, gateway, host_lines):
    backend = recording_backend()
    gw = gateway({"p": [backend.server]})
    r = exchange(gw, b"GET http://example.test:8080/x?y=1 HTTP/1.1\r\n" + host_lines + b"Accept: */*\r\n\r\n")
    assert r.status == 200 and r.body == b"ok"
    got = backend.next()
    assert got.request_line == b"GET /x?y=1 HTTP/1.1"
    assert got.values("host") == ["example.test:8080"], got.head
    assert got.values("accept") == ["*/*"]


def test_absolute_form_with_userinfo_or_empty_host_is_400(recording_backend, gateway):
    backend = recording_backend()
    gw = gateway({"p": [backend.server]})
    for target in (b"http://user:pw@example.test/x", b"http://:8080/x"):
        r = exchange(gw, b"GET " + target + b" HTTP/1.1\r\nHost: example.test\r\n\r\n")
        assert r.status == 400, target
    assert forwarded_before_sentinel(gw, backend) == []
