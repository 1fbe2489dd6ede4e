"""WebSocket tunnelling, IPv6 listeners and backends, and nginx (from apt) as the origin."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

import pytest

from conftest import RawConn, curl, ipv6_loopback_available

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# 11 -----------------------------------------------------------------------------------------

def ws_frame(opcode: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_ws_frame(c: RawConn):
    b0, b1 = c.read_exact(2)
    assert b1 & 0x80 == 0, "server frames must not be masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", c.read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", c.read_exact(8))[0]
    return b0 & 0x0F, bool(b0 & 0x80), c.read_exact(n)


def test_websocket_echo_through_the_proxy(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    key = base64.b64encode(os.urandom(16)).decode()
    expected_accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    with RawConn("127.0.0.1", gw.port, timeout=5) as c:
        c.send((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        status, _, headers, _ = c.read_head()
        h = {k.lower(): v for k, v in headers}
        assert status == 101
        assert h.get("upgrade", "").lower() == "websocket"
        assert "upgrade" in h.get("connection", "").lower()
        assert h.get("sec-websocket-accept") == expected_accept
        # a short text frame, a 126-length-form binary frame and a ping
        c.send(ws_frame(0x1, b"hello through weir"))
        assert read_ws_frame(c) == (0x1, True, b"hello through weir")
        big = os.urandom(70000)
        c.send(ws_frame(0x2, big, mask=b"\xaa\xbb\xcc\xdd"))
        assert read_ws_frame(c) == (0x2, True, big)
        c.send(ws_frame(0x9, b"ping!"))
        assert read_ws_frame(c) == (0xA, True, b"ping!")
        c.send(ws_frame(0x8, struct.pack("!H", 1000) + b"bye"))
        opcode, _, payload = read_ws_frame(c)
        assert opcode == 0x8 and payload[:2] == struct.pack("!H", 1000)
        assert c.is_closed(timeout=5), "the tunnel should close after the close handshake"
    # the gateway still serves
    assert curl(gw.url("/")).body == b"b1\n"


def test_upgrade_request_to_a_non_upgrading_path_is_plain_http(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    with RawConn("127.0.0.1", gw.port, timeout=5) as c:
        c.send(b"GET /plain HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and r.body == b"b1\n"


# 16 -----------------------------------------------------------------------------------------

@pytest.mark.skipif(not ipv6_loopback_available(), reason="::1 is not available")
def test_ipv6_listener_and_backend(demo_backend, gateway):
    b6 = demo_backend("b6", host="::1")
    gw = gateway({"p": [b6]}, host="::1")
    assert gw.address.startswith("[::1]:")
    r = curl(gw.url("/"))
    assert r.rc == 0, r.stderr
    assert r.status == 200 and r.body == b"b6\n"
    assert r.header("X-Served-By") == "b6"
    r = curl(gw.url("/echo"))
    doc = json.loads(r.body)
    xff = [v for k, v in doc["headers"] if k.lower() == "x-forwarded-for"]
    assert xff == ["::1"]
    assert [v for k, v in doc["headers"] if k.lower() == "x-forwarded-host"] == [f"[::1]:{gw.port}"]
    with RawConn("::1", gw.port) as c:
        c.send(b"GET /raw HTTP/1.1\r\nHost: [::1]\r\n\r\n")
        assert c.read_response().body == b"b6\n"


@pytest.mark.skipif(not ipv6_loopback_available(), reason="::1 is not available")
def test_ipv4_listener_to_ipv6_backend(demo_backend, gateway):
    b6 = demo_backend("b6", host="::1")
    gw = gateway({"p": [b6]})
    r = curl(gw.url("/"))
    assert r.status == 200 and r.body == b"b6\n"


# 13 -----------------------------------------------------------------------------------------

def test_nginx_backend_static_file_and_fixed_response(nginx_backend, gateway):
    content = os.urandom(200_000)
    (nginx_backend.root / "static" / "blob.bin").write_bytes(content)
    (nginx_backend.root / "static" / "hello.txt").write_text("hello from a static file\n")
    gw = gateway({"ng": [("nginx", nginx_backend.address)]})
    r = curl(gw.url("/static/blob.bin"))
    assert r.rc == 0, r.stderr
    assert r.status == 200
    assert r.body == content
    assert r.header("Content-Length") == str(len(content))
    assert (r.header("Server") or "").startswith("nginx")
    assert any("1.1 weir" in v for v in r.header_all("Via"))
    # nginx's own "Connection: keep-alive" is hop-by-hop: not passed on to the client
    assert r.header("Connection") is None, r.headers
    assert r.header("Keep-Alive") is None, r.headers
    r = curl(gw.url("/static/hello.txt"))
    assert r.status == 200 and r.body == b"hello from a static file\n"
    r = curl(gw.url("/fixed"))
    assert r.status == 200 and r.body == b"fixed text from nginx\n"
    r = curl(gw.url("/static/missing.txt"))
    assert r.status == 404
    # HEAD and a conditional request against a real server
    head = curl(gw.url("/static/blob.bin"), "-I")
    assert head.status == 200 and head.header("Content-Length") == str(len(content))
    etag = head.header("ETag")
    if etag:
        r = curl(gw.url("/static/blob.bin"), "-H", f"If-None-Match: {etag}")
        assert r.status == 304 and r.body == b""


def test_nginx_backend_post_with_body(nginx_backend, gateway):
    gw = gateway({"ng": [("nginx", nginx_backend.address)]})
    body = os.urandom(100_000)
    path = nginx_backend.root.parent / "post.bin"
    path.write_bytes(body)
    r = curl(gw.url("/post"), "--data-binary", f"@{path}", "-H", "Expect:")
    assert r.rc == 0, r.stderr
    assert r.status == 200
    assert r.body == f"method=POST length={len(body)}\n".encode()
    # chunked upload to nginx; keep-alive across two requests on one connection afterwards
    r = curl(gw.url("/post"), "--data-binary", f"@{path}", "-H", "Transfer-Encoding: chunked")
    assert r.status == 200 and r.body.startswith(b"method=POST")
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"POST /post HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
               b"GET /fixed HTTP/1.1\r\nHost: t\r\n\r\n")
        r1 = c.read_response()
        assert r1.status == 200 and r1.body == b"method=POST length=5\n"
        r2 = c.read_response()
        assert r2.status == 200 and r2.body == b"fixed text from nginx\n"
