"""Servers that die, are down or stall; slow clients; malformed requests; connection limits."""
from __future__ import annotations

import socket
import subprocess
import time

import pytest

from conftest import RawConn, curl, filler, free_port, wait_until

MIB = 1 << 20


# 9 ------------------------------------------------------------------------------------------

def test_server_killed_mid_response_ends_the_client(demo_backend, gateway, procs, tmp_path):
    b1 = demo_backend("b1")
    # A long response timeout: only the kill can end this response.
    gw = gateway({"p": [b1]}, timeouts={"upstream_response": "60s"})
    out = tmp_path / "partial.bin"
    client = procs.start(["curl", "-sS", "-N", "--max-time", "30", "-o", out, gw.url("/?size=1000000&stall_after=1000")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until(lambda: out.exists() and out.stat().st_size >= 1000, 10, what="the first 1000 body bytes")
    assert client.poll() is None, "curl ended before the server was killed"
    b1.kill()
    started = time.monotonic()
    rc = client.wait(timeout=10)
    assert time.monotonic() - started < 10
    assert rc != 0, "a cut response must not look complete to the client"
    assert rc in (18, 52, 56), f"curl exit {rc}: {client.stderr.read()!r}"
    assert out.read_bytes() == filler(1000)
    # the gateway survived and still answers: the only server is gone, so 502 (refused) or, once
    # its probe or passive failures took it down, 503 (no server available)
    assert gw.proc.poll() is None
    r = curl(gw.url("/"))
    assert r.status in (502, 503), r


def test_server_killed_mid_response_closes_the_client_connection(demo_backend, gateway):
    """Raw view of the same: the gateway closes the client connection short of Content-Length."""
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, timeouts={"upstream_response": "60s"})
    with RawConn("127.0.0.1", gw.port, timeout=10) as c:
        c.send(b"GET /?size=100000&stall_after=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, headers, _ = c.read_head()
        assert status == 200
        assert dict((k.lower(), v) for k, v in headers)["content-length"] == "100000"
        assert c.read_exact(1000) == filler(1000)
        b1.kill()
        rest = c.read_to_eof()      # bounded by the socket timeout: raises if the gateway hangs
        assert rest == b""
        assert c.eof


# 10 -----------------------------------------------------------------------------------------

def test_server_down_gives_502_and_gateway_keeps_serving(demo_backend, gateway):
    b1 = demo_backend("b1")
    dead = free_port()   # nothing listens here
    gw = gateway({"live": [b1], "dead": [("dead1", f"127.0.0.1:{dead}")]},
                 routes=[{"name": "dead", "pool": "dead", "path": "/dead"},
                         {"name": "live", "pool": "live", "path": "/"}])
    r = curl(gw.url("/dead/x"), timeout=15)
    assert r.rc == 0, r.stderr
    assert r.status == 502
    assert r.header("Content-Type").startswith("text/plain")
    assert r.body.endswith(b"\n") and r.body.count(b"\n") == 1 and len(r.body) > 1, r.body
    for _ in range(3):
        ok = curl(gw.url("/fine"))
        assert ok.status == 200 and ok.body == b"b1\n"
    assert gw.proc.poll() is None


def test_server_that_never_answers_gives_504(silent_server, gateway):
    port, conns = silent_server
    gw = gateway({"p": [("silent", f"127.0.0.1:{port}")]}, timeouts={"upstream_response": "1s"})
    started = time.monotonic()
    r = curl(gw.url("/"), timeout=15)
    elapsed = time.monotonic() - started
    assert r.status == 504, (r, gw.stderr())
    assert r.body.endswith(b"\n") and r.body.count(b"\n") == 1
    assert elapsed < 8, f"504 took {elapsed:.1f}s"
    assert len(conns) >= 1, "the gateway never connected to the silent server"


def test_backend_closing_before_answering_gives_502(gateway):
    """A server that accepts and closes at once."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    lsock.settimeout(0.1)
    import threading
    stop = threading.Event()

    def run():
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                c, _ = lsock.accept()
                c.close()
            except socket.timeout:
                continue
            except OSError:
                break

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        gw = gateway({"p": [("closer", f"127.0.0.1:{lsock.getsockname()[1]}")]})
        r = curl(gw.url("/"), timeout=15)
        assert r.status == 502
        assert gw.proc.poll() is None
    finally:
        stop.set()
        t.join(5)
        lsock.close()


# 12 -----------------------------------------------------------------------------------------

def test_slow_reader_does_not_make_the_gateway_buffer_the_response(demo_backend, gateway):
    size = 64 * MIB
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, workers=1, timeouts={"upstream_response": "20s"})
    # warm up (first request allocates the worker's buffers etc.)
    assert curl(gw.url("/?size=100000")).status == 200
    start_rss = gw.rss_kib()
    limit = start_rss + (size // 4) // 1024
    samples = []
    with RawConn("127.0.0.1", gw.port, timeout=30, rcvbuf=64 * 1024) as c:
        c.send(b"GET /?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % size)
        status, _, headers, _ = c.read_head()
        assert status == 200
        assert int(dict((k.lower(), v) for k, v in headers)["content-length"]) == size
        got = len(c.read_exact(16 * 1024))     # a little at first
        # stall for a few seconds while the server has 64 MiB ready to send
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            samples.append(gw.rss_kib())
            time.sleep(0.1)
        assert max(samples) < limit, f"gateway RSS grew from {start_rss} KiB to {max(samples)} KiB while the client stalled"
        # then read slowly for a bit, sampling, then the rest at full speed
        for _ in range(20):
            got += len(c.read_exact(min(64 * 1024, size - got)))
            samples.append(gw.rss_kib())
            time.sleep(0.02)
        body_rest = size - got
        read_deadline = time.monotonic() + 60
        while body_rest > 0:
            assert time.monotonic() < read_deadline, "reading 64 MiB took too long"
            n = len(c.read_exact(min(4 * MIB, body_rest)))
            body_rest -= n
            samples.append(gw.rss_kib())
    assert max(samples) < limit, f"gateway RSS peaked at {max(samples)} KiB (start {start_rss} KiB)"


def test_slow_reader_receives_exact_content(demo_backend, gateway):
    """A smaller response read in tiny pieces arrives byte for byte."""
    size = 3 * MIB + 123
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, timeouts={"upstream_response": "20s"})
    with RawConn("127.0.0.1", gw.port, timeout=30, rcvbuf=16 * 1024) as c:
        c.send(b"GET /?size=%d HTTP/1.1\r\nHost: t\r\n\r\n" % size)
        r = c.read_response()
        assert r.status == 200
        assert r.body == filler(size)


# 14 -----------------------------------------------------------------------------------------

MALFORMED = {
    "content-length-and-transfer-encoding":
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    "two-different-content-lengths":
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
    "obs-fold":
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n  b\r\n\r\n", 400),
    "space-before-colon":
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Space : b\r\n\r\n", 400),
    "bare-lf-line-ends":
        (b"GET / HTTP/1.1\nHost: t\nX-A: b\n\n", 400),
    "nul-in-header":
        (b"GET / HTTP/1.1\r\nHost: t\r\nX-Nul: a\x00b\r\n\r\n", 400),
    "missing-host-http11":
        (b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400),
    "two-host-fields":
        (b"GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n", 400),
    "chunk-size-overflow":
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"FFFFFFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n", 400),
    "invalid-content-length":
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5x\r\n\r\nhello", 400),
    "too-many-header-fields":
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-N-%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    "uri-too-long":
        (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    "headers-too-large":
        (b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 6990) for i in range(10))
         + b"\r\n", 431),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_is_rejected_and_connection_closed(demo_backend, gateway, name):
    request, expected = MALFORMED[name]
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port, timeout=5) as c:
        try:
            c.send(request)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the gateway may answer and close before reading everything
        status, _, headers, _ = c.read_head()
        assert status == expected
        length = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
        c.read_exact(length)
        assert c.is_closed(timeout=5), "the connection must be closed after the error response"
    # the gateway is still fine
    assert curl(gw.url("/")).body == b"b1\n"
    # the malformed request never reached the backend as a request
    assert b1.stats()["requests"] == 2   # the curl above and this stats request


# 21 -----------------------------------------------------------------------------------------

def test_listener_connection_limit(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, workers=1, admin="auto", listener_extra={"max_connections": 2},
                 timeouts={"client_header": "20s", "client_idle": "20s"}, pool_options={"p": {"health": {"type": "none"}}})
    # The fixture's readiness probe connection must be gone before the limit is filled.
    wait_until(lambda: gw.status()["totals"]["open_connections"] == 0, 5, what="the readiness probe to be closed")
    idle: list[RawConn] = []
    try:
        # Two connections that are really being served: each completes a request and stays open.
        for _ in range(2):
            c = RawConn("127.0.0.1", gw.port, timeout=5)
            idle.append(c)
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert c.read_response().status == 200
        assert gw.status()["totals"]["open_connections"] == 2
        # A third: a 503 and the close (it sends nothing, so that the close cannot turn into a reset
        # that would discard the answer).
        with RawConn("127.0.0.1", gw.port, timeout=3) as third:
            r = third.read_response()
            assert r.status == 503, r.raw_head
            assert r.header("Retry-After") is not None, r.raw_head
            assert third.is_closed(timeout=3), "the refused connection stays open"
        idle[1].close()
        wait_until(lambda: gw.status()["totals"]["open_connections"] == 1, 5, what="the gateway to see the close")
        # Below the limit again: a new connection is served (once the listener resumes, within its 100 ms tick).
        with RawConn("127.0.0.1", gw.port, timeout=3) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            assert c.read_response().status == 200
    finally:
        for c in idle:
            c.close()