"""Plain HTTP/1.1 proxying through Weir: forwarding headers, methods, bodies, framing, keep-alive."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.parse
from collections import Counter

import pytest

from conftest import RawConn, curl, filler, wait_until


def echo_headers(body: bytes) -> list:
    return json.loads(body)["headers"]


def values(headers: list, name: str) -> list:
    return [v for k, v in headers if k.lower() == name.lower()]


# 1 ------------------------------------------------------------------------------------------

def test_get_through_proxy_adds_via_and_served_by(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    r = curl(gw.url("/hello"))
    assert r.rc == 0, r.stderr
    assert r.status == 200
    assert r.body == b"b1\n"
    assert r.header("X-Served-By") == "b1"
    assert any("1.1 weir" in v for v in r.header_all("Via")), r.headers


def test_forwarding_headers_reach_backend(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    r = curl(gw.url("/echo?x=1"))
    assert r.status == 200
    doc = json.loads(r.body)
    assert doc["server"] == "b1"
    assert doc["method"] == "GET"
    assert doc["target"] == "/echo?x=1"
    h = doc["headers"]
    assert values(h, "X-Forwarded-For") == ["127.0.0.1"]
    assert values(h, "X-Forwarded-Proto") == ["http"]
    assert values(h, "X-Forwarded-Host") == [f"127.0.0.1:{gw.port}"]
    assert values(h, "Host") == [f"127.0.0.1:{gw.port}"]
    via = values(h, "Via")
    assert len(via) == 1 and via[0].endswith("1.1 weir"), via


def test_hop_by_hop_headers_are_removed(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    r = curl(gw.url("/echo"),
             "-H", "Connection: X-Secret",
             "-H", "X-Secret: 1",
             "-H", "Keep-Alive: timeout=5, max=100",
             "-H", "Proxy-Connection: keep-alive",
             "-H", "X-End-To-End: kept")
    assert r.status == 200
    names = [k.lower() for k, _ in echo_headers(r.body)]
    assert "x-secret" not in names
    assert "keep-alive" not in names
    assert "proxy-connection" not in names
    for v in values(echo_headers(r.body), "Connection"):
        assert "x-secret" not in v.lower()
    assert values(echo_headers(r.body), "X-End-To-End") == ["kept"]


def test_existing_x_forwarded_for_is_appended_to(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    r = curl(gw.url("/echo"), "-H", "X-Forwarded-For: 203.0.113.7")
    assert r.status == 200
    assert values(echo_headers(r.body), "X-Forwarded-For") == ["203.0.113.7, 127.0.0.1"]


def test_existing_via_is_appended_to(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    r = curl(gw.url("/echo"), "-H", "Via: 1.0 upstream-proxy")
    assert values(echo_headers(r.body), "Via") == ["1.0 upstream-proxy, 1.1 weir"]


# 2 ------------------------------------------------------------------------------------------

def test_head_has_no_body_and_keeps_content_length(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    get = curl(gw.url("/?size=1234"))
    assert get.status == 200 and len(get.body) == 1234
    head = curl(gw.url("/?size=1234"), "-I")
    assert head.rc == 0, head.stderr
    assert head.status == 200
    assert head.header("Content-Length") == "1234"
    # On one connection: HEAD, then GET; the GET response must start right after the HEAD head.
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"HEAD /?size=1234 HTTP/1.1\r\nHost: t\r\n\r\nGET /?size=10 HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.read_response(head_request=True)
        assert r1.status == 200 and r1.header("Content-Length") == "1234"
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == filler(10)


def test_head_of_chunked_response_has_no_body(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"HEAD /?chunked=1&size=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.read_response(head_request=True)
        assert r1.status == 200
        c.send(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"b1\n"


def test_client_connection_close_is_honoured(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"b1\n"
        assert "close" in (r.header("Connection") or "").lower()
        assert c.is_closed()


def test_bytes_sent_after_a_close_request_do_not_cut_its_response(demo_backend, gateway):
    """Weir stops reading a client whose whole `Connection: close` request it has; bytes the client
    sends anyway (a pipelined request it will not get an answer to) wait unread in the socket. The
    close must then linger over them: closing a socket with unread input sends a reset, which would
    throw away the response still in flight to a slow reader."""
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    size = 3_000_000
    with RawConn("127.0.0.1", gw.port, rcvbuf=65536) as c:
        c.send(b"GET /?delay=200&size=%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % size)
        time.sleep(0.05)   # the request is being forwarded: Weir is not reading any more
        c.send(b"GET /never-answered HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.6)    # the response is written and the close decided while most of it is unread
        r = c.read_response()
        assert r.status == 200 and len(r.body) == size and r.body == filler(size)
        assert c.read_to_eof() == b""


def test_204_and_304_have_no_body_and_connection_is_reused(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /?status=204 HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.read_response()
        assert r1.status == 204
        c.send(b"GET /?status=304 HTTP/1.1\r\nHost: t\r\n\r\n")
        r2 = c.read_response()
        assert r2.status == 304
        c.send(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        r3 = c.read_response()
        assert r3.status == 200
        assert r3.body == b"b1\n"   # no stray body bytes from the 204/304 in between
        assert c.buf == b""


# 3 ------------------------------------------------------------------------------------------

@pytest.fixture
def upload_file(tmp_path):
    path = tmp_path / "upload.bin"
    data = os.urandom(10 * 1024 * 1024)
    path.write_bytes(data)
    return path, len(data), hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("mode", ["content-length", "chunked"])
def test_post_10mib(demo_backend, gateway, upload_file, mode):
    path, size, digest = upload_file
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, timeouts={"upstream_response": "10s"})
    args = ["--data-binary", f"@{path}", "-H", "Content-Type: application/octet-stream", "-H", "Expect:"]
    if mode == "chunked":
        args += ["-H", "Transfer-Encoding: chunked"]
    r = curl(gw.url("/echo"), *args, timeout=60)
    assert r.rc == 0, r.stderr
    assert r.status == 200
    doc = json.loads(r.body)
    assert doc["method"] == "POST"
    assert doc["body_bytes"] == size
    assert doc["body_sha256"] == digest
    te = values(doc["headers"], "Transfer-Encoding")
    if mode == "chunked":
        assert te == ["chunked"]
    else:
        assert te == [] and values(doc["headers"], "Content-Length") == [str(size)]


# 4 ------------------------------------------------------------------------------------------

def test_expect_100_continue_with_curl(demo_backend, gateway, upload_file):
    path, size, digest = upload_file
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, timeouts={"upstream_response": "10s"})
    r = curl(gw.url("/echo"), "--data-binary", f"@{path}", "-H", "Expect: 100-continue",
             "--expect100-timeout", "20", timeout=60)
    assert r.rc == 0, r.stderr
    assert r.status == 200
    assert any(status_line.split()[1] == "100" for status_line, _ in r.heads[:-1]), r.heads
    doc = json.loads(r.body)
    assert doc["body_bytes"] == size and doc["body_sha256"] == digest


def test_expect_100_continue_interim_reaches_client_before_body(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port, timeout=5) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
        interim = c.read_until(b"\r\n\r\n")   # nothing of the body sent yet
        assert interim.startswith(b"HTTP/1.1 100 "), interim
        c.send(b"hello world")
        r = c.read_response()
        assert r.status == 200
        doc = json.loads(r.body)
        assert doc["body_bytes"] == 11
        assert doc["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()


# 5 ------------------------------------------------------------------------------------------

def test_chunked_response_with_trailers(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /?chunked=1&trailers=1&size=10000 HTTP/1.1\r\nHost: t\r\nTE: trailers\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.chunked and r.header("Transfer-Encoding").lower() == "chunked"
        assert r.header("Content-Length") is None
        assert r.body == filler(10000)
        assert ("X-Checksum", "10000") in r.trailers, r.trailers
        # the connection stays usable after the trailer section
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().body == b"b1\n"


def test_chunked_response_with_curl_raw(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    r = curl(gw.url("/?chunked=1&size=10000&chunk=1000"))
    assert r.status == 200 and r.body == filler(10000)
    raw = curl(gw.url("/?chunked=1&trailers=1&size=10000&chunk=1000"), "--raw", "-H", "TE: trailers")
    assert raw.body.startswith(b"3e8\r\n")
    assert raw.body.endswith(b"0\r\nX-Checksum: 10000\r\n\r\n")


def test_raw_chunked_upload_with_extensions_and_trailers(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
               b"GET /echo?after HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        doc = json.loads(r.body)
        assert doc["body_bytes"] == 11
        assert doc["body_sha256"] == hashlib.sha256(b"hello world").hexdigest()
        r2 = c.read_response()
        assert json.loads(r2.body)["target"] == "/echo?after"


# 6 ------------------------------------------------------------------------------------------

def test_pipelined_requests_answered_in_order(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: t\r\n\r\n" % n for n in (1, 2, 3)))
        for n in (1, 2, 3):
            r = c.read_response()
            assert r.status == 200
            assert json.loads(r.body)["target"] == f"/echo?n={n}"


def test_pipelined_requests_with_slow_first_response(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /echo?n=1&delay=300 HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /echo?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
               b"GET /echo?n=3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        targets = []
        for _ in range(3):
            r = c.read_response()
            assert r.status == 200
            targets.append(json.loads(r.body)["target"])
        assert targets == ["/echo?n=1&delay=300", "/echo?n=2", "/echo?n=3"]
        assert c.is_closed()


# 7 ------------------------------------------------------------------------------------------

def test_keep_alive_reuses_upstream_connections(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, workers=1)
    before = b1.stats()
    args = []
    for i in range(50):
        args += ["-o", "/dev/null", gw.url(f"/?i={i}")]
    p = subprocess.run(["curl", "-sS", "--max-time", "60", "-w", "%{http_code} %{num_connects}\\n", *args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=90)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.decode().split()
    codes, connects = lines[0::2], [int(x) for x in lines[1::2]]
    assert codes == ["200"] * 50
    assert sum(connects) <= 2, "curl itself should reuse its connection to the gateway"
    after = b1.stats()
    # `after` counts its own direct connection and request.
    new_connections = after["connections"] - before["connections"] - 1
    assert after["requests"] - before["requests"] - 1 == 50
    assert new_connections <= 5, f"gateway opened {new_connections} upstream connections for 50 requests"


def test_pooled_connection_of_a_restarted_backend_is_not_reused(demo_backend, gateway):
    """The pooled upstream connection dies with its server (its FIN reaches the idle pool, which
    drops it); the next request goes out on a new connection and succeeds."""
    b1 = demo_backend("b1")
    gw = gateway({"p": [("b1", b1.address)]}, workers=1)
    assert curl(gw.url("/first")).body == b"b1\n"    # leaves an idle pooled connection
    port = b1.port
    b1.kill()
    b2 = demo_backend("b1-again", port=port)
    r = curl(gw.url("/second"))
    assert r.status == 200, (r, gw.stderr())
    assert r.body == b"b1-again\n"
    assert b2.stats()["requests"] == 2


def test_stale_pooled_connection_is_retried_on_a_new_one(gateway, origin):
    """A server that drops an idle keep-alive connection without Weir seeing it before reuse: the
    request written to the pooled connection is answered by a reset, and Weir sends it again on a
    new connection (the stale-connection retry, counted as retried-stale); the client gets 200."""

    def handler(conn):
        while True:
            head = conn.read_head()
            if head is None:
                return
            if conn.index == 0 and len(conn.requests) == 2:
                conn.reset()    # dropped while idle, as far as the request can tell: RST, no answer
                return
            body = b"c%d r%d" % (conn.index, len(conn.requests))
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    o = origin(handler)
    gw = gateway({"p": [("o", o.address)]}, workers=1,
                 pool_options={"p": {"health": {"type": "none"}, "retries": 0}})
    r = curl(gw.url("/first"))
    assert (r.status, r.body) == (200, b"c0 r1"), r    # leaves the connection idle in the pool
    r = curl(gw.url("/second"))
    assert (r.status, r.body) == (200, b"c1 r1"), (r, gw.stderr())
    assert o.accepted == 2
    assert [h.split(b" ")[1] for h in o.conns[0].requests] == [b"/first", b"/second"], \
        "the second request did not go out on the pooled connection first"
    assert gw.terminate() == 0
    assert "retried-stale=1 " in gw.stderr(), gw.stderr()
    assert not o.errors, o.errors


# 8 ------------------------------------------------------------------------------------------

def test_round_robin_over_three_backends(demo_backend, gateway):
    backends = [demo_backend(f"b{i}") for i in (1, 2, 3)]
    gw = gateway({"p": backends}, workers=1)
    args = []
    for i in range(30):
        args += ["-D", "-", gw.url(f"/?i={i}")]
    p = subprocess.run(["curl", "-sS", "--max-time", "60", *args], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=90)
    assert p.returncode == 0, p.stderr
    served = [line.split(b":", 1)[1].strip().decode() for line in p.stdout.split(b"\r\n")
              if line.lower().startswith(b"x-served-by:")]
    assert len(served) == 30
    assert Counter(served) == {"b1": 10, "b2": 10, "b3": 10}


# 15 -----------------------------------------------------------------------------------------

def test_http10_client_with_curl(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    r = curl(gw.url("/"), "-0")
    assert r.rc == 0, r.stderr
    assert r.status == 200 and r.body == b"b1\n"
    r = curl(gw.url("/?chunked=1&size=5000&chunk=700"), "-0")
    assert r.rc == 0, r.stderr
    assert r.status == 200
    assert r.header("Transfer-Encoding") is None
    assert r.body == filler(5000)


def test_http10_client_gets_dechunked_body_and_close(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /?chunked=1&size=5000&chunk=700 HTTP/1.0\r\nHost: t\r\n\r\n")
        status, _, headers, _ = c.read_head()
        assert status == 200
        names = [k.lower() for k, _ in headers]
        assert "transfer-encoding" not in names
        body = c.read_to_eof()          # the end of the body is the end of the connection
        assert body == filler(5000)
        assert c.eof


def test_http10_client_chunked_response_with_trailers(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /?chunked=1&trailers=1&size=3000&chunk=1000 HTTP/1.0\r\nHost: t\r\n\r\n")
        status, _, headers, _ = c.read_head()
        assert status == 200
        assert "transfer-encoding" not in [k.lower() for k, _ in headers]
        assert c.read_to_eof() == filler(3000)   # no chunk lines, no trailer section


def test_close_delimited_response(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /?close=1&size=5000 HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.until_close and r.body == filler(5000)
    r = curl(gw.url("/?close=1&size=70000"))
    assert r.rc == 0 and r.status == 200 and r.body == filler(70000)


@pytest.mark.parametrize("connection", [b"", b"Connection: close\r\n"], ids=["keep-alive", "close"])
def test_client_half_close_after_request_still_gets_response(demo_backend, gateway, connection):
    """A close request is not read after its head (Weir never sees the half-close): its answer still
    arrives whole."""
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /?delay=200&size=200000 HTTP/1.1\r\nHost: t\r\n" + connection + b"\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        r = c.read_response()
        assert r.status == 200 and r.body == filler(200000)
        assert c.is_closed()


def test_http10_keep_alive_request(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /a HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"b1\n"
        c.send(b"GET /b HTTP/1.0\r\nHost: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"b1\n"
        assert c.is_closed()


# 19 -----------------------------------------------------------------------------------------

def test_location_is_rewritten_to_the_client_host(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    loc = urllib.parse.quote(f"http://127.0.0.1:{b1.port}/next?a=1", safe="")
    r = curl(gw.url(f"/?status=302&location={loc}"))
    assert r.status == 302
    assert r.header("Location") == f"http://127.0.0.1:{gw.port}/next?a=1"
    r = curl(gw.url(f"/?status=301&location={loc}"), "-H", "Host: gw.example:8443")
    assert r.header("Location") == "http://gw.example:8443/next?a=1"


def test_location_public_url_rewritten_and_foreign_kept(demo_backend, gateway):
    from conftest import Server
    b1 = demo_backend("b1")
    gw = gateway({"p": [Server("b1", b1.address, {"public_url": "http://b1.internal.test:9000"})]})
    loc = urllib.parse.quote("http://b1.internal.test:9000/x/y", safe="")
    r = curl(gw.url(f"/?status=302&location={loc}"))
    assert r.header("Location") == f"http://127.0.0.1:{gw.port}/x/y"
    foreign = urllib.parse.quote("http://elsewhere.test/z", safe="")
    r = curl(gw.url(f"/?status=302&location={foreign}"))
    assert r.header("Location") == "http://elsewhere.test/z"
    # a prefix match that is not at a path boundary is not a match
    other_port = urllib.parse.quote(f"http://127.0.0.1:{b1.port}0/z", safe="")
    r = curl(gw.url(f"/?status=302&location={other_port}"))
    assert r.header("Location") == f"http://127.0.0.1:{b1.port}0/z"


# 20 -----------------------------------------------------------------------------------------

def test_access_log_line_per_request(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, access_log="stdout")
    assert curl(gw.url("/logged?x=1")).status == 200
    assert curl(gw.url("/echo"), "--data-binary", "abc").status == 200
    wait_until(lambda: gw.stdout().count("\n") >= 2, 5, what="two access log lines")
    lines = gw.stdout().splitlines()
    assert len(lines) == 2, lines
    get_line, post_line = lines
    assert '"GET /logged?x=1 HTTP/1.1"' in get_line
    assert " 200 " in get_line and " b1 " in get_line
    assert "127.0.0.1" in get_line
    assert '"POST /echo HTTP/1.1"' in post_line and " 200 " in post_line and " b1 " in post_line
    assert gw.terminate() == 0


def test_access_log_off(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, access_log="off")
    for i in range(3):
        assert curl(gw.url(f"/x{i}")).status == 200
    assert gw.terminate() == 0   # a drain flushes whatever would be pending
    assert gw.stdout() == ""


def test_access_log_to_file(demo_backend, gateway, tmp_path):
    b1 = demo_backend("b1")
    log = tmp_path / "access.log"
    gw = gateway({"p": [b1]}, access_log=str(log))
    assert curl(gw.url("/to-file")).status == 200
    assert gw.terminate() == 0
    text = log.read_text()
    assert '"GET /to-file HTTP/1.1" 200' in text and " b1 " in text
    assert gw.stdout() == ""


def test_demo_backend_refuses_a_query_that_would_split_its_response(demo_backend):
    """`location=` and `status=` go into the demo's head: a CR LF in a value or a status that is not
    three digits is answered 400, not written."""
    b1 = demo_backend("b1")
    assert curl(f"{b1.url}/?location=%2Fnext&status=302").header("Location") == "/next"
    for query in ("location=%2Fa%0D%0ASet-Cookie%3A%20x%3D1", "location=a%0Ab", "status=1000", "status=42"):
        with RawConn(b1.host, b1.port) as c:
            c.send(f"GET /?{query} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            r = c.read_response()
            assert r.status == 400 and r.header("Set-Cookie") is None, (query, r.raw_head)
            assert c.is_closed()
