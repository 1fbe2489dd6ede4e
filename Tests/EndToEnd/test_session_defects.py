"""The client session's corners (issue 8), end to end: scripted origins (small Python servers in the test,
on 127.0.0.1) misbehave on purpose; clients are raw sockets.

1. Interim responses and the exchange that follows them
   - test_100_continue_then_server_closes_gives_502[close|reset]: a server that sends `100 Continue`,
     reads the body, then closes (FIN) or resets: the client gets the 100, then a 502 (not a silent
     close); the access log line says 502, not 100 or 0.
   - test_100_continue_then_silence_gives_504: the same server going silent after the 100: 504 once
     upstream_response has passed; the access log line says 504.
   - test_each_exchange_starts_afresh_after_an_interim_response: 100 + 200 on one keep-alive client
     connection, then a second request whose server sends 100 and closes: the second gets its own 502,
     and the log has 200 then 502 (nothing of the first exchange leaks into the second).
2. Uploads and the response timeout
   - test_slow_upload_gets_the_servers_answer: a Content-Length body sent a byte every 0.3 s, for longer
     than upstream_response: the client gets the server's 200, and the server stays up with no failure
     counted (passive_failures = 1, so one failure would take it down).
   - test_response_timeout_starts_when_the_body_is_sent: the same slow upload to a server that never
     answers: the 504 comes upstream_response after the last body byte, not before the body is sent.
   - test_stalled_upload_is_not_blamed_on_the_server: a client that pauses mid-body for 2.5 x
     upstream_response (client_body at its 60 s default) gets no answer meanwhile, the server stays up
     with no failure, and once the rest of the body comes the client gets the server's 200.
   - test_stalled_upload_gets_408_and_the_server_stays_up: a client that stops mid-body for longer than
     the new `[timeouts] client_body` (idle time between body bytes; default 60 s) gets 408 and the
     close; the server's connection is closed too; the server is not marked down and counts no failure.
3. test_upgrade_client_gone_before_101_releases_both_connections: five `Upgrade: websocket` requests
   held by the server; the clients close (FIN) before any 101: the server sees each of its connections
   closed within 2 s (tunnel_idle and upstream_response are 30 s), and /status open_connections is 0.
4. test_every_connection_over_the_limit_gets_a_prompt_503[listener|global]: max_connections = 2 (the
   listener's, or [global]'s), two
   connections held open, then 5 more: each of the 5 reads a 503 within 2 s and then the close, and
   /status totals.status_503 counts all 5.
5. Interim responses are bounded (assumed: at most 16 interim heads and 64 KiB of interim head bytes per
   exchange) and upstream_response runs until the final head:
   - test_endless_100_continue_gets_502: 1000 `100 Continue` heads then a 200: the client gets at most
     16 of them and a 502.
   - test_large_interim_heads_get_502: 8 `103 Early Hints` heads of 10 KiB each (80 KiB, count under
     the bound) then a 200: 502.
   - test_upstream_response_covers_the_time_to_the_final_response: `102 Processing` every 0.2 s for
     2.4 s with upstream_response = 1 s: 504 within 2 s, and the log says 504.
6. test_malformed_response_keeps_the_client_connection[GET|POST]: a server answers the first request
   with an invalid status line: the client gets 502 without `Connection: close` and the connection
   stays open: a second request on it gets the (next) server answer, 200.
   test_request_weir_cannot_frame_still_closes: the other half (passes today): a malformed chunked
   request body gets 400 and the close.
"""
from __future__ import annotations

import socket
import time

import pytest

from conftest import RawConn, ClosedEarly, Server, access_log_entries, wait_until

POOL = {"health": {"type": "none"}, "passive_failures": 1, "retries": 0}
INTERIM_COUNT_BOUND = 16


def start_gateway(gateway, origin, timeouts=None, pool=None, **kwargs):
    """A gateway with one pool holding the scripted `origin` as server "o" (no probes; one failure
    on client traffic marks it down, unless `pool` says otherwise), admin on, the access log on stdout."""
    t = {"upstream_response": "2s"}
    t.update(timeouts or {})
    return gateway({"p": [Server("o", origin.address)]}, admin="auto", timeouts=t,
                   pool_options={"p": {**POOL, **(pool or {})}}, **kwargs)


def final_response(c: RawConn, what: str, timeout: float = 5.0):
    """The next final response on `c`, or an assertion that says what came instead."""
    c.sock.settimeout(timeout)
    try:
        return c.read_response()
    except ClosedEarly as e:
        raise AssertionError(f"{what}: the gateway closed the connection without a final response ({e})")
    except socket.timeout:
        raise AssertionError(f"{what}: no final response within {timeout} s (buffered: {c.buf[:200]!r})")


def logged_statuses(gw, n: int, timeout: float = 5.0) -> list:
    """The statuses of the first `n` access log lines (waits for them: the log is flushed every 100 ms)."""
    wait_until(lambda: len(access_log_entries(gw.stdout())) >= n, timeout,
               what=f"{n} access log line(s); have {gw.stdout()!r}")
    return [status for _line, status in access_log_entries(gw.stdout())]


def assert_server_healthy(gw):
    s = gw.server_status("o")
    assert s["state"] == "up" and s["healthy"] is True, f"the server was marked down: {s}"
    assert s["failures"] == 0 and s["passive_failures"] == 0, f"a failure was counted against the server: {s}"


POST_EXPECT = (b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")


def post_with_expect(c: RawConn, what: str):
    """Sends the head, waits for the relayed `100 Continue`, sends the 5-byte body."""
    c.send(POST_EXPECT)
    c.sock.settimeout(5)
    try:
        head = c.read_until(b"\r\n\r\n")
    except (ClosedEarly, socket.timeout) as e:
        raise AssertionError(f"{what}: no 100 Continue relayed ({e!r})")
    assert head.startswith(b"HTTP/1.1 100"), head
    c.send(b"hello")


# --------------------------------------------------------------------------------------------
# 1. 100 Continue, then the server fails


@pytest.mark.parametrize("ending", ["close", "reset"])
def test_100_continue_then_server_closes_gives_502(gateway, origin, ending):
    def handler(conn):
        head = conn.read_head()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.read_body(head)
        conn.reset() if ending == "reset" else conn.close()

    o = origin(handler)
    gw = start_gateway(gateway, o)
    with RawConn("127.0.0.1", gw.port) as c:
        post_with_expect(c, "request")
        r = final_response(c, f"server {ending} after 100 Continue")
        assert r.status == 502, r.raw_head
    assert logged_statuses(gw, 1) == [502], gw.stdout()
    assert not o.errors, o.errors


def test_100_continue_then_silence_gives_504(gateway, origin):
    def handler(conn):
        head = conn.read_head()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        conn.read_body(head)
        conn.wait_closed(10)   # never answers

    o = origin(handler)
    gw = start_gateway(gateway, o, timeouts={"upstream_response": "1s"})
    with RawConn("127.0.0.1", gw.port) as c:
        post_with_expect(c, "request")
        t0 = time.monotonic()
        r = final_response(c, "server silent after 100 Continue")
        assert r.status == 504, r.raw_head
        assert time.monotonic() - t0 < 3.5
    assert logged_statuses(gw, 1) == [504], gw.stdout()


def test_each_exchange_starts_afresh_after_an_interim_response(gateway, origin):
    served = []

    def handler(conn):
        while True:
            req = conn.read_head()
            if req is None:
                return
            served.append(req)
            conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            if conn.read_body(req) is None:
                return
            if len(served) == 1:
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none")
            else:
                conn.close()   # the second exchange: 100, then the server is gone
                return

    o = origin(handler)
    gw = start_gateway(gateway, o)
    with RawConn("127.0.0.1", gw.port) as c:
        post_with_expect(c, "first request")
        r1 = final_response(c, "first request")
        assert (r1.status, r1.body) == (200, b"one"), r1.raw_head
        assert r1.header("connection") != "close", r1.raw_head
        post_with_expect(c, "second request")
        r2 = final_response(c, "second request (100, then the server closed)")
        assert r2.status == 502, r2.raw_head
    assert logged_statuses(gw, 2) == [200, 502], gw.stdout()
    assert len(served) == 2


# --------------------------------------------------------------------------------------------
# 2. Slow and stalled uploads


def slow_upload(c: RawConn, size: int, pause: float) -> float:
    """Sends a `size`-byte POST body a byte every `pause` s; returns when the last byte went
    (monotonic). Stops early (returns None) when the gateway has already answered or closed."""
    c.send(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
    c.sock.setblocking(False)
    try:
        for i in range(size):
            time.sleep(pause)   # pacing the upload (the behaviour under test), not synchronisation
            try:
                if c.sock.recv(1, socket.MSG_PEEK):
                    return None     # an early answer: read by the caller
            except BlockingIOError:
                pass
            except OSError:
                return None
            try:
                c.sock.send(b"%d" % (i % 10))
            except OSError:
                return None
        return time.monotonic()
    finally:
        c.sock.setblocking(True)


def test_slow_upload_gets_the_servers_answer(gateway, origin):
    def handler(conn):
        req = conn.read_request()
        if req is not None:
            body = req[1]
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.wait_closed(5)

    o = origin(handler)
    gw = start_gateway(gateway, o, timeouts={"upstream_response": "1s"})
    with RawConn("127.0.0.1", gw.port) as c:
        sent_at = slow_upload(c, 8, 0.3)    # 2.4 s in all, upstream_response is 1 s
        r = final_response(c, "slow upload")
        assert sent_at is not None, f"the gateway answered before the body was sent: {r.status} {r.raw_head!r}"
        assert (r.status, r.body) == (200, b"01234567"), r.raw_head
    assert_server_healthy(gw)
    assert gw.status()["totals"]["status_504"] == 0


def test_response_timeout_starts_when_the_body_is_sent(gateway, origin):
    def handler(conn):
        conn.read_request()
        conn.wait_closed(10)   # never answers

    o = origin(handler)
    gw = start_gateway(gateway, o, timeouts={"upstream_response": "1s"})
    with RawConn("127.0.0.1", gw.port) as c:
        sent_at = slow_upload(c, 8, 0.3)
        r = final_response(c, "slow upload to a silent server")
        assert sent_at is not None, f"the gateway answered before the body was sent: {r.status} {r.raw_head!r}"
        assert r.status == 504, r.raw_head
        assert time.monotonic() - sent_at >= 0.9, "the 504 came before upstream_response had passed since the body"


def test_stalled_upload_is_not_blamed_on_the_server(gateway, origin):
    def handler(conn):
        req = conn.read_request()
        if req is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(req[1]), req[1]))
        conn.wait_closed(5)

    o = origin(handler)
    gw = start_gateway(gateway, o, timeouts={"upstream_response": "1s"})   # client_body: its default, 60 s
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"POST /pause HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        wait_until(lambda: o.accepted == 1, 3, what="the request to reach the server")
        # The client pauses for 2.5 x upstream_response (the behaviour under test is a timeout that
        # must not fire): no answer may come meanwhile, the server is not at fault.
        c.sock.settimeout(2.5)
        try:
            early = c.sock.recv(65536)
        except socket.timeout:
            early = None
        assert early is None, f"the gateway answered a pausing upload: {early[:200]!r}"
        assert_server_healthy(gw)
        c.send(b"defghij")
        r = final_response(c, "the upload completed after its pause")
        assert (r.status, r.body) == (200, b"abcdefghij"), r.raw_head


def test_stalled_upload_gets_408_and_the_server_stays_up(gateway, origin):
    def handler(conn):
        conn.read_request()     # the body never completes: returns when the gateway closes
        conn.wait_closed(10)

    o = origin(handler)
    # client_body: the new idle timeout between body bytes (upstream_response longer, so that it is not what ends it)
    gw = start_gateway(gateway, o, timeouts={"upstream_response": "4s", "client_body": "1s"})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"POST /stall HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        t0 = time.monotonic()
        r = final_response(c, "stalled upload", timeout=3.5)
        assert r.status == 408, r.raw_head
        assert 0.8 <= time.monotonic() - t0 < 3.5
        assert c.is_closed(timeout=2), "the connection stays open after the 408"
    wait_until(lambda: o.accepted == 1 and o.conns[0].closed_by_peer_at is not None, 3,
               what="the server's connection to be closed")
    assert_server_healthy(gw)
    assert logged_statuses(gw, 1) == [408], gw.stdout()


# --------------------------------------------------------------------------------------------
# 3. Upgrade requests whose client leaves before the 101


def test_upgrade_client_gone_before_101_releases_both_connections(gateway, origin):
    def handler(conn):
        conn.read_head()
        conn.wait_closed(15)   # holds the request: no 101, no answer

    o = origin(handler)
    gw = start_gateway(gateway, o, timeouts={"upstream_response": "30s", "tunnel_idle": "30s"})
    n = 5
    clients = [RawConn("127.0.0.1", gw.port) for _ in range(n)]
    try:
        for c in clients:
            c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        wait_until(lambda: o.accepted == n and all(len(x.requests) == 1 for x in o.conns), 5,
                   what="the server to hold every upgrade request")
    finally:
        for c in clients:
            c.close()     # FIN, before any 101
    closed_at = time.monotonic()
    wait_until(lambda: all(x.closed_by_peer_at is not None for x in o.conns), 2,
               what=f"the server's connections to be closed after the clients left "
                    f"({sum(x.closed_by_peer_at is not None for x in o.conns)} of {n} closed)")
    assert max(x.closed_by_peer_at for x in o.conns) - closed_at < 2
    wait_until(lambda: gw.status()["totals"]["open_connections"] == 0, 2, what="no open client connection")


# --------------------------------------------------------------------------------------------
# 4. max_connections


@pytest.mark.parametrize("limit", ["listener", "global"])
def test_every_connection_over_the_limit_gets_a_prompt_503(demo_backend, gateway, limit):
    b1 = demo_backend("b1")
    where = {"listener_extra": {"max_connections": 2}} if limit == "listener" \
        else {"global_extra": {"max_connections": 2}}
    gw = gateway({"p": [b1]}, workers=1, admin="auto", **where,
                 timeouts={"client_header": "20s", "client_idle": "20s"},
                 pool_options={"p": {"health": {"type": "none"}}})
    # The fixture's readiness probe connection must be gone before the limit is filled.
    wait_until(lambda: gw.status()["totals"]["open_connections"] == 0, 5, what="the readiness probe to be closed")
    held = []
    extra = []
    try:
        for _ in range(2):
            c = RawConn("127.0.0.1", gw.port, timeout=5)
            held.append(c)
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            assert final_response(c, "a connection within the limit").status == 200
        assert gw.status()["totals"]["open_connections"] == 2
        extra = [RawConn("127.0.0.1", gw.port, timeout=5) for _ in range(5)]
        for i, c in enumerate(extra):
            r = final_response(c, f"connection {i + 1} of 5 over the limit", timeout=2)
            assert r.status == 503, r.raw_head
            assert c.is_closed(timeout=2), f"connection {i + 1} over the limit stays open after its 503"
        wait_until(lambda: gw.status()["totals"]["status_503"] >= 5, 2,
                   what=f"/status to count the 5 refused connections (status_503 = "
                        f"{gw.status()['totals']['status_503']})")
    finally:
        for c in held + extra:
            c.close()


# --------------------------------------------------------------------------------------------
# 5. Interim responses are bounded; upstream_response runs until the final head


def test_endless_100_continue_gets_502(gateway, origin):
    def handler(conn):
        conn.read_request()
        conn.send(b"HTTP/1.1 100 Continue\r\n\r\n" * 1000 + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.wait_closed(5)

    o = origin(handler)
    gw = start_gateway(gateway, o)
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /many HTTP/1.1\r\nHost: t\r\n\r\n")
        r = final_response(c, "1000 interim responses")
        assert r.status == 502, f"{r.status} after {len(r.interim)} interim heads relayed"
        assert len(r.interim) <= INTERIM_COUNT_BOUND, len(r.interim)
    assert logged_statuses(gw, 1) == [502], gw.stdout()


def test_large_interim_heads_get_502(gateway, origin):
    link = b"Link: </assets/" + b"x" * 1000 + b".css>; rel=preload\r\n"
    early_hints = b"HTTP/1.1 103 Early Hints\r\n" + link * 10 + b"\r\n"     # about 10 KiB each
    assert 10_000 < len(early_hints) < 12_000

    def handler(conn):
        conn.read_request()
        conn.send(early_hints * 8 + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.wait_closed(5)

    o = origin(handler)
    gw = start_gateway(gateway, o)
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /hints HTTP/1.1\r\nHost: t\r\n\r\n")
        r = final_response(c, "80 KiB of interim heads")
        assert r.status == 502, f"{r.status} after {len(r.interim)} interim heads relayed"
        assert sum(len(h) for h in r.interim) <= 64 * 1024


def test_upstream_response_covers_the_time_to_the_final_response(gateway, origin):
    def handler(conn):
        conn.read_request()
        for _ in range(12):   # 2.4 s of "still working", then the answer
            if not conn.send(b"HTTP/1.1 102 Processing\r\n\r\n"):
                return
            time.sleep(0.2)   # the server's pace (the behaviour under test)
        conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        conn.wait_closed(5)

    o = origin(handler)
    gw = start_gateway(gateway, o, timeouts={"upstream_response": "1s"})
    with RawConn("127.0.0.1", gw.port) as c:
        t0 = time.monotonic()
        c.send(b"GET /processing HTTP/1.1\r\nHost: t\r\n\r\n")
        r = final_response(c, "102 Processing every 0.2 s")
        elapsed = time.monotonic() - t0
        assert r.status == 504, f"{r.status} after {elapsed:.1f} s and {len(r.interim)} interim heads"
        assert elapsed < 2.0, elapsed
    assert logged_statuses(gw, 1) == [504], gw.stdout()


# --------------------------------------------------------------------------------------------
# 6. A malformed response does not cost the client its connection


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_malformed_response_keeps_the_client_connection(gateway, origin, method):
    count = []

    def handler(conn):
        while True:
            req = conn.read_request()
            if req is None:
                return
            count.append(req[0])
            if len(count) == 1:
                conn.send(b"HTTP/1.1 2xx Maybe\r\nContent-Length: 2\r\n\r\nok")   # invalid status line
                conn.close()
                return
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")

    o = origin(handler)
    # passive_failures off: the 502 must not take the only server down before the second request
    gw = start_gateway(gateway, o, pool={"passive_failures": 0})
    request = (b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n" if method == "GET"
               else b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody")
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(request)
        r1 = final_response(c, "request answered with a malformed response")
        assert r1.status == 502, r1.raw_head
        assert (r1.header("connection") or "").lower() != "close", \
            f"the 502 closes a connection whose request was read completely: {r1.raw_head!r}"
        c.send(request)
        r2 = final_response(c, "second request on the same connection after the 502")
        assert (r2.status, r2.body) == (200, b"second"), r2.raw_head
    assert logged_statuses(gw, 2) == [502, 200], gw.stdout()


def test_request_weir_cannot_frame_still_closes(gateway, origin):
    def handler(conn):
        conn.read_head()
        conn.wait_closed(5)

    o = origin(handler)
    gw = start_gateway(gateway, o)
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n")
        r = final_response(c, "malformed chunked body")
        assert r.status == 400, r.raw_head
        assert c.is_closed(timeout=3), "the connection stays open after a request Weir could not frame"


# --------------------------------------------------------------------------------------------
# A tunnel that ends still delivers what was relayed


def test_tunnel_closed_by_the_client_delivers_its_last_bytes(gateway, origin):
    """The client sends its last bytes and closes at once: the server still gets all of them
    (the tunnel's end flushes what was relayed before it closes the server connection)."""
    received = {}

    def handler(conn):
        conn.read_head()
        conn.send(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        conn.wait_closed(10)
        received[conn.index] = conn.buf

    o = origin(handler)
    gw = start_gateway(gateway, o, timeouts={"tunnel_idle": "30s"})
    payload = b"x" * 4_000_000
    c = RawConn("127.0.0.1", gw.port)
    c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    head = c.read_until(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    c.send(payload)
    c.close()
    wait_until(lambda: 0 in received, 10, what="the server to see the tunnel end")
    assert len(received[0]) == len(payload)
