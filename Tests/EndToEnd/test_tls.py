"""TLS end to end: HTTPS listeners (SNI, protocol versions and profiles, session resumption for TLS 1.2
and 1.3, ALPN, HSTS, OCSP stapling), everything the plain path does carried over TLS (10 MiB uploads,
chunked responses with trailers, WebSocket, sticky pins with `Secure`, redirect mode), the HTTP -> HTTPS
redirect listener, TLS to servers (nginx with `listen ssl`: verification, server_name, mutual TLS,
pooled connections reused), SIGHUP certificate reload (good and broken files), and hostile or broken
clients (garbage, plain HTTP, oversized ClientHello, silent and stalled handshakes) with the
handshake counters of the stop summary line.

A test CA and its certificates are made once per session with the openssl CLI (`pki` fixture):
  weir    P-256 ECDSA, DNS weir.test + *.weir.test + IP 127.0.0.1 (the default certificate)
  other   RSA 2048, DNS other.test (an SNI certificate)
  backend P-256, DNS backend.test + IP 127.0.0.1 (nginx as an HTTPS origin)
  wrong   P-256, DNS wrong.test (a certificate for the wrong host)
  client  P-256, clientAuth (mutual TLS to nginx)
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import NGINX_BIN, Server, can_connect, curl, free_port, wait_until
from stickyutil import SECRET, cookie_attributes, set_cookies, start_sticky_gateway, sticky_extra, token_parts
from tlsutil import (PKI, TLSConn, check, tls_table, client_hello, curl_tls_args, peer_certificate, replace_file, run,
                     s_client)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HSTS = "max-age=63072000; includeSubDomains"


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    p.weir = p.issue("weir", "weir.test", ["DNS:weir.test", "DNS:*.weir.test", "IP:127.0.0.1"])
    p.other = p.issue("other", "other.test", ["DNS:other.test"], kind="rsa")
    p.backend = p.issue("backend", "backend.test", ["DNS:backend.test", "IP:127.0.0.1"])
    p.wrong = p.issue("wrong", "wrong.test", ["DNS:wrong.test"])
    p.client = p.issue("client", "weir-client", [], usage="clientAuth")
    return p


def stop_summary(gw) -> dict:
    """Terminates the gateway; returns the counters of its `weir: stopped; ...` line."""
    assert gw.terminate() == 0, gw.stderr()
    line = next((l for l in gw.stderr().splitlines() if "weir: stopped;" in l), None)
    assert line, gw.stderr()
    return {k: int(v) for k, v in re.findall(r"([a-z0-9-]+)=(\d+)", line)}


def https(gw, pki, path: str = "/", *args, name: str = "weir.test", timeout: float = 30.0):
    return curl(gw.https_url(path, host=name), *curl_tls_args(pki.ca.cert, gw.port, name), *args, timeout=timeout)


# --------------------------------------------------------------------------------------------
# 1. Basic HTTPS, X-Forwarded-Proto, HSTS


def test_https_request_forwarded_with_proto_https_and_hsts(demo_backend, gateway, pki):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1], "dead": [Server("dead", f"127.0.0.1:{free_port()}")]},
                 routes=[{"name": "dead", "pool": "dead", "path": "/dead/*"}, {"name": "all", "pool": "p", "path": "/"}],
                 tls=tls_table(pki, hsts=HSTS))
    r = https(gw, pki, "/echo?x=1")
    assert r.rc == 0 and r.status == 200, r.stderr
    doc = json.loads(r.body)
    fwd = {k.lower(): v for k, v in doc["headers"]}
    assert fwd.get("x-forwarded-proto") == "https", doc["headers"]
    assert r.header_all("Strict-Transport-Security") == [HSTS], r.headers
    # by IP address: the default certificate has IP SAN 127.0.0.1, so curl verifies it without --resolve
    r = curl(gw.https_url("/"), "--cacert", str(pki.ca.cert))
    assert r.rc == 0 and r.status == 200 and r.body == b"b1\n", r.stderr


def test_hsts_on_gateway_generated_error_responses(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")], "dead": [Server("dead", f"127.0.0.1:{free_port()}")]},
                 routes=[{"name": "dead", "pool": "dead", "path": "/dead/*"}, {"name": "all", "pool": "p", "path": "/"}],
                 tls=tls_table(pki, hsts=HSTS))
    dead = https(gw, pki, "/dead/x")
    assert dead.status == 502, dead.heads
    with TLSConn(gw.port, pki.ca.cert) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        bad = c.read_response()
    assert bad.status == 400, bad.raw_head
    assert dead.header_all("Strict-Transport-Security") == [HSTS], dead.headers
    assert bad.header("Strict-Transport-Security") == HSTS, bad.raw_head


def test_no_hsts_header_unless_configured(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    r = https(gw, pki, "/echo")
    assert r.status == 200, r.stderr
    assert r.header("Strict-Transport-Security") is None
    assert {k.lower(): v for k, v in json.loads(r.body)["headers"]}.get("x-forwarded-proto") == "https"
    # and plain HTTP listeners say http
    plain = gateway({"p": [demo_backend("b2")]})
    doc = json.loads(curl(plain.url("/echo")).body)
    assert {k.lower(): v for k, v in doc["headers"]}.get("x-forwarded-proto") == "http", doc["headers"]


# --------------------------------------------------------------------------------------------
# 2. SNI


def test_sni_selects_certificate_by_names_inside_it(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    other = s_client(gw.port, servername="other.test", cafile=pki.ca.cert)
    assert other.handshake_ok and "CN = other.test" in (other.subject or ""), other.out
    assert "Verify return code: 0 (ok)" in other.out, other.out
    wild = s_client(gw.port, servername="x.weir.test", cafile=pki.ca.cert)
    assert wild.handshake_ok and "CN = weir.test" in (wild.subject or ""), wild.out
    exact = s_client(gw.port, servername="weir.test", cafile=pki.ca.cert)
    assert "CN = weir.test" in (exact.subject or ""), exact.out
    none = s_client(gw.port, servername=None, cafile=pki.ca.cert)
    assert none.handshake_ok and "CN = weir.test" in (none.subject or ""), none.out
    unknown = s_client(gw.port, servername="nobody.example", cafile=pki.ca.cert)
    assert unknown.handshake_ok and "CN = weir.test" in (unknown.subject or ""), unknown.out
    # a wildcard covers exactly one label
    deep = s_client(gw.port, servername="a.b.weir.test", cafile=pki.ca.cert)
    assert "CN = weir.test" in (deep.subject or ""), deep.out
    # curl with verification against the SNI certificate
    r = https(gw, pki, "/", name="other.test")
    assert r.rc == 0 and r.status == 200, r.stderr
    r = https(gw, pki, "/", name="api.weir.test")
    assert r.rc == 0 and r.status == 200, r.stderr


# --------------------------------------------------------------------------------------------
# 3. Protocol versions and profiles


def tls11_capable_client_control(pki, procs, tmp_path):
    """Proves this openssl can speak TLS 1.1 at all (against `openssl s_server -tls1_1`), so that a refusal
    by Weir is Weir's doing."""
    port = free_port()
    log = open(tmp_path / "s_server.log", "wb")
    procs.start(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", pki.other.cert, "-key",
                 pki.other.key, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT)   # (stdin EOF would stop it)
    wait_until(lambda: can_connect("127.0.0.1", port), 10, what="s_server")
    return port


def test_tls11_refused_tls12_and_13_work(demo_backend, gateway, pki, procs, tmp_path):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    old = ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]
    ctl_port = tls11_capable_client_control(pki, procs, tmp_path)
    control = s_client(ctl_port, *old, servername="other.test")
    assert control.handshake_ok and "TLSv1.1" in (control.protocol or ""), \
        "control: this openssl cannot do TLS 1.1 at all:\n" + control.out
    r11 = s_client(gw.port, *old)
    assert not r11.handshake_ok, r11.out
    assert "protocol version" in r11.out or "unsupported protocol" in r11.out, r11.out
    r12 = s_client(gw.port, "-tls1_2", cafile=pki.ca.cert)
    assert r12.handshake_ok and r12.protocol == "TLSv1.2", r12.out
    r13 = s_client(gw.port, "-tls1_3", cafile=pki.ca.cert)
    assert r13.handshake_ok and r13.protocol == "TLSv1.3", r13.out
    # curl: TLS <= 1.1 fails, 1.2 and 1.3 succeed
    bad = https(gw, pki, "/", "--tlsv1.0", "--tls-max", "1.1", "--ciphers", "DEFAULT@SECLEVEL=0")
    assert bad.rc != 0 and bad.status is None, (bad.rc, bad.stderr)
    for v in ("1.2", "1.3"):
        ok = https(gw, pki, "/", f"--tlsv{v}", "--tls-max", v)
        assert ok.rc == 0 and ok.status == 200, (v, ok.stderr)
    assert gw.proc.poll() is None


def test_intermediate_profile_ciphers(demo_backend, gateway, pki):
    """TLS 1.2 under "intermediate": ECDHE with AEAD only (no static-RSA key exchange, no CBC)."""
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    good = s_client(gw.port, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")
    assert good.handshake_ok, good.out
    rsa_good = s_client(gw.port, "-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305", servername="other.test")
    assert rsa_good.handshake_ok, rsa_good.out
    for cipher, name in (("AES128-SHA", "other.test"), ("AES256-GCM-SHA384", "other.test"),
                         ("ECDHE-ECDSA-AES128-SHA", "weir.test"), ("ECDHE-RSA-AES256-SHA384", "other.test")):
        r = s_client(gw.port, "-tls1_2", "-cipher", cipher, servername=name)
        assert not r.handshake_ok, (cipher, r.out)


def test_modern_profile_refuses_tls12(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki, profile="modern"))
    r12 = s_client(gw.port, "-tls1_2")
    assert not r12.handshake_ok, r12.out
    r13 = s_client(gw.port, "-tls1_3", cafile=pki.ca.cert)
    assert r13.handshake_ok and r13.protocol == "TLSv1.3", r13.out
    assert https(gw, pki, "/", "--tls-max", "1.2").rc != 0
    assert https(gw, pki, "/").status == 200


# --------------------------------------------------------------------------------------------
# 4. Session resumption, 5. ALPN


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_session_resumption(demo_backend, gateway, pki, tmp_path, version):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    sess = tmp_path / f"sess{version}.pem"
    # TLS 1.3 tickets arrive after the handshake: keep stdin open ~1 s so s_client reads them
    first = s_client(gw.port, version, "-sess_out", sess, cafile=pki.ca.cert, stdin_seconds=1.0)
    assert first.handshake_ok and not first.reused, first.out
    assert sess.exists() and sess.stat().st_size > 0, first.out
    second = s_client(gw.port, version, "-sess_in", sess, cafile=pki.ca.cert, stdin_seconds=0.3)
    assert second.handshake_ok and second.reused, second.out


def test_tls13_resumption_hands_out_a_new_ticket_every_time(demo_backend, gateway, pki, tmp_path):
    """A TLS 1.3 client uses a ticket once (RFC 8446 §C.4), so each resumption must bring a new one:
    full, resumed, resumed again with the ticket the resumed connection got (wrk reconnects this
    way; without a new ticket every other connection was a full handshake)."""
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki), admin="auto")
    sessions = [tmp_path / f"s{i}.pem" for i in range(3)]
    first = s_client(gw.port, "-tls1_3", "-sess_out", sessions[0], cafile=pki.ca.cert, stdin_seconds=1.0)
    assert first.handshake_ok and not first.reused, first.out
    for i in (1, 2):
        r = s_client(gw.port, "-tls1_3", "-sess_in", sessions[i - 1], "-sess_out", sessions[i],
                     cafile=pki.ca.cert, stdin_seconds=1.0)
        assert r.handshake_ok and r.reused, (i, r.out)
    # The gateway counts them too (at a connection's first request: here, none was sent).
    with TLSConn(gw.port, pki.ca.cert) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 200
    totals = gw.status()["totals"]
    assert totals["tls_handshakes"] == 1 and totals["tls_resumed"] == 0, totals


def test_alpn_http11(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    r = s_client(gw.port, "-alpn", "http/1.1", cafile=pki.ca.cert)
    assert r.handshake_ok and "ALPN protocol: http/1.1" in r.out, r.out
    # a client offering h2 first gets h2 (HTTP/2 is on by default on TLS listeners)
    with TLSConn(gw.port, pki.ca.cert, alpn=["h2", "http/1.1"]) as c:
        assert c.sock.selected_alpn_protocol() == "h2"
    r = https(gw, pki, "/", "--http1.1", "-w", "%{http_version}")
    assert r.rc == 0 and r.status == 200, r.stderr


def test_alpn_without_http2_selects_http11(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki), listener_extra={"http2": False})
    with TLSConn(gw.port, pki.ca.cert, alpn=["h2", "http/1.1"]) as c:
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert c.read_response().status == 200


# --------------------------------------------------------------------------------------------
# 6. The plain path's features over TLS


@pytest.mark.parametrize("end", ["drain", "client half-close"])
def test_a_connection_closed_between_requests_sends_the_rest_of_the_last_response(demo_backend, gateway, pki, end):
    """For Weir a keep-alive exchange is over once the whole response is in the client's output
    buffer; the client may not have read it yet (over TLS no body is spliced, so it all waits in
    that buffer). A drain (SIGTERM, or the old process of an upgrade) or the client's FIN closes
    such an idle connection only after that output is sent: closing at once cut the response
    short, which a client that had just sent its first request saw as a connection closed
    without an answer."""
    size = 4 * 1024 * 1024
    # The whole response fits in Weir's buffer: the exchange ends while most of it waits there.
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki), limits={"buffer_bytes": 16 * 1024 * 1024},
                 global_extra={"drain_timeout": "10s"})
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)   # a small window: little is in flight
    raw.settimeout(10)
    raw.connect(("127.0.0.1", gw.port))
    with context.wrap_socket(raw, server_hostname="weir.test") as slow:
        slow.sendall(f"GET /?size={size} HTTP/1.1\r\nHost: weir.test\r\n\r\n".encode())
        wait_until(lambda: f'"GET /?size={size} HTTP/1.1" 200' in gw.stdout(), 10, what="the exchange to end")
        if end == "drain":
            os.kill(gw.pid, signal.SIGTERM)
        else:
            # A FIN without close_notify, on a copy of the descriptor (SSLSocket.shutdown would end TLS).
            with socket.socket(fileno=os.dup(slow.fileno())) as same:
                same.shutdown(socket.SHUT_WR)
        time.sleep(0.3)   # the close has begun: the response still waits in Weir's buffer
        got = bytearray()
        while data := slow.recv(1 << 20):
            got += data
    head, _, body = bytes(got).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:200]
    assert len(body) == size, f"{len(body)} of {size} body bytes arrived"
    if end == "drain":
        assert gw.proc.wait(timeout=15) == 0, gw.stderr()


def test_tls_connections_waiting_for_their_first_request_pin_no_read_segment(demo_backend, gateway, pki):
    """After its handshake a TLS connection's read finds no request yet; the 16 KiB it reserved in
    the input buffer is given back, so a connection waiting costs OpenSSL's state only (about 17 KiB
    anonymous memory here; 36 KiB when the segment stayed)."""
    count = 300
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki), workers=1)
    def anonymous_kib() -> int:
        with open(f"/proc/{gw.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    before = anonymous_kib()
    conns = [context.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=10), server_hostname="weir.test")
             for _ in range(count)]
    try:
        # The server side of the last handshakes may still be running: wait until the memory settles.
        samples = [anonymous_kib()]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (len(samples) < 3 or samples[-1] != samples[-3]):
            time.sleep(0.2)
            samples.append(anonymous_kib())
        per_connection = (samples[-1] - before) / count
        assert per_connection < 26, f"{per_connection:.1f} KiB of anonymous memory per waiting TLS connection"
    finally:
        for c in conns:
            c.close()


def test_tls_client_half_closing_after_its_request_still_gets_the_answer(demo_backend, gateway, pki):
    """A FIN without close_notify after a whole request ends the client's input (as over plain
    TCP), it does not fail the session: OpenSSL 3 calls it an unexpected EOF, but a request is
    self-delimiting, so nothing can have been cut short unseen."""
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    context = ssl.create_default_context(cafile=str(pki.ca.cert))
    with context.wrap_socket(socket.create_connection(("127.0.0.1", gw.port), timeout=10),
                             server_hostname="weir.test") as c:
        c.sendall(b"GET /slow?delay=300 HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        with socket.socket(fileno=os.dup(c.fileno())) as same:
            same.shutdown(socket.SHUT_WR)
        got = bytearray()
        while data := c.recv(65536):
            got += data
    assert got.startswith(b"HTTP/1.1 200"), bytes(got[:200])
    assert got.endswith(b"b1\n"), bytes(got[-200:])


def test_post_10mib_body_over_tls(demo_backend, gateway, pki, tmp_path):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    data = os.urandom(10 * 1024 * 1024)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    for extra in ([], ["-H", "Transfer-Encoding: chunked"]):
        r = https(gw, pki, "/echo", "--data-binary", f"@{path}", "-H", "Content-Type: application/octet-stream",
                  *extra, timeout=60)
        assert r.rc == 0 and r.status == 200, r.stderr
        doc = json.loads(r.body)
        assert doc["body_bytes"] == len(data) and doc["body_sha256"] == hashlib.sha256(data).hexdigest(), doc
    # and a 10 MiB response down the TLS connection
    r = https(gw, pki, f"/?size={10 * 1024 * 1024}", timeout=60)
    assert r.rc == 0 and r.status == 200 and len(r.body) == 10 * 1024 * 1024


def test_chunked_response_with_trailers_over_tls(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    with TLSConn(gw.port, pki.ca.cert) as c:
        for _ in range(2):   # keep-alive over the same TLS connection
            c.send(b"GET /?chunked=1&trailers=1&size=100000&chunk=3000 HTTP/1.1\r\nHost: weir.test\r\nTE: trailers\r\n\r\n")
            r = c.read_response()
            assert r.status == 200 and r.chunked, r.raw_head
            assert len(r.body) == 100000
            assert ("X-Checksum", "100000") in r.trailers, r.trailers


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


def read_ws_frame(c):
    b0, b1 = c.read_exact(2)
    assert b1 & 0x80 == 0, "server frames must not be masked"
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", c.read_exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", c.read_exact(8))[0]
    return b0 & 0x0F, bool(b0 & 0x80), c.read_exact(n)


def test_websocket_echo_through_tls_listener(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    key = base64.b64encode(os.urandom(16)).decode()
    accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    with TLSConn(gw.port, pki.ca.cert, timeout=5) as c:
        c.send((f"GET /ws HTTP/1.1\r\nHost: weir.test:{gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        status, _, headers, _ = c.read_head()
        h = {k.lower(): v for k, v in headers}
        assert status == 101 and h.get("sec-websocket-accept") == accept, headers
        c.send(ws_frame(0x1, b"hello over tls"))
        assert read_ws_frame(c) == (0x1, True, b"hello over tls")
        big = os.urandom(70000)   # bigger than one TLS record
        c.send(ws_frame(0x2, big, mask=b"\xaa\xbb\xcc\xdd"))
        assert read_ws_frame(c) == (0x2, True, big)
        c.send(ws_frame(0x8, struct.pack("!H", 1000)))
        opcode, _, payload = read_ws_frame(c)
        assert opcode == 0x8 and payload[:2] == struct.pack("!H", 1000)
        assert c.is_closed(timeout=5)
    assert https(gw, pki, "/").body == b"b1\n"


def test_sticky_pin_cookie_is_secure_over_tls(demo_backend, gateway, pki, tmp_path):
    backends = [demo_backend(n) for n in ("s1", "s2", "s3")]
    gw = start_sticky_gateway(gateway, tmp_path, backends, tls=tls_table(pki))
    jar = tmp_path / "jar.txt"
    jar_args = ["-c", str(jar), "-b", str(jar)]
    entry = https(gw, pki, "/banking/", *jar_args)
    assert entry.status == 200, entry.stderr
    home = entry.header("X-Served-By")
    values = set_cookies(entry.headers)
    assert len(values) == 1, entry.headers
    attrs = cookie_attributes(values[0])
    assert "secure" in attrs and "httponly" in attrs, values
    assert token_parts(values[0].split(";", 1)[0].split("=", 1)[1])["id"] == home
    for i in range(6):   # curl sends a Secure cookie back only over https
        r = https(gw, pki, f"/banking/step{i}", *jar_args)
        assert r.status == 200 and r.header("X-Served-By") == home, (i, r.headers)
    done = https(gw, pki, "/banking/logout", *jar_args)
    assert done.status == 200 and done.header("X-Served-By") == home
    cleared = set_cookies(done.headers)
    assert cleared and "secure" in cookie_attributes(cleared[0]), cleared


def test_redirect_mode_keeps_public_url_scheme(demo_backend, gateway, pki, tmp_path):
    a, b = demo_backend("a"), demo_backend("b")
    servers = [Server("a", a.address, {"public_url": f"https://a.weir.test:{a.port}"}),
               Server("b", b.address, {"public_url": f"http://127.0.0.1:{b.port}"})]
    gw = gateway({"p": servers}, routes=[], listener_extra={"mode": "redirect"},
                 extra=sticky_extra([{"name": "all", "pool": "p", "path": "/"}], {"secret": SECRET}),
                 global_extra={"state_dir": str(tmp_path / "state")}, tls=tls_table(pki, hsts=HSTS))
    seen = Counter()
    for i in range(4):
        r = https(gw, pki, f"/shop?i={i}")
        assert r.rc == 0 and r.status == 307, (r.stderr, r.heads)
        loc = urlsplit(r.header("Location"))
        if loc.port == a.port:
            assert (loc.scheme, loc.hostname) == ("https", "a.weir.test"), r.header("Location")
            seen["a"] += 1
        else:
            assert (loc.scheme, loc.hostname, loc.port) == ("http", "127.0.0.1", b.port), r.header("Location")
            seen["b"] += 1
        assert loc.path == "/shop" and loc.query == f"i={i}"
        assert r.header("Strict-Transport-Security") == HSTS
    assert seen == {"a": 2, "b": 2}, seen


# --------------------------------------------------------------------------------------------
# 7. HTTP -> HTTPS redirect listener


def test_https_redirect_listener(demo_backend, gateway, pki):
    tls_port = free_port()
    secure = (f'[[listener]]\nname = "secure"\naddress = "127.0.0.1:{tls_port}"\n[listener.tls]\n'
              f'cert = "{pki.weir.cert}"\nkey = "{pki.weir.key}"\n')
    gw = gateway({"p": [demo_backend("b1")]}, listener_extra={"https_redirect": tls_port}, extra=secure)
    wait_until(lambda: can_connect("127.0.0.1", tls_port), 10, what="TLS listener")
    resolve = ["--resolve", f"weir.test:{gw.port}:127.0.0.1", "--resolve", f"weir.test:{tls_port}:127.0.0.1"]
    r = curl(f"http://weir.test:{gw.port}/a/b?x=1&y=%20", *resolve)
    assert r.rc == 0 and r.status == 308, (r.stderr, r.heads)
    assert r.header("Location") == f"https://weir.test:{tls_port}/a/b?x=1&y=%20", r.headers
    post = curl(f"http://weir.test:{gw.port}/echo", *resolve, "-d", "k=v")
    assert post.status == 308 and post.header("Location") == f"https://weir.test:{tls_port}/echo"
    followed = curl(f"http://weir.test:{gw.port}/echo?z=2", *resolve, "-L", "--cacert", str(pki.ca.cert))
    assert followed.rc == 0 and followed.status == 200, followed.stderr
    assert [h[0].split()[1] for h in followed.heads] == ["308", "200"], followed.heads
    doc = json.loads(followed.body)
    assert doc["target"] == "/echo?z=2"
    assert {k.lower(): v for k, v in doc["headers"]}.get("x-forwarded-proto") == "https"
    # a POST body survives the 308 (method and body kept)
    followed = curl(f"http://weir.test:{gw.port}/echo", *resolve, "-L", "--cacert", str(pki.ca.cert),
                    "--data-binary", "hello")
    doc = json.loads(followed.body)
    assert followed.status == 200 and doc["method"] == "POST" and doc["body_bytes"] == 5, followed.heads


# --------------------------------------------------------------------------------------------
# 8. TLS to servers (nginx as an HTTPS origin)


@pytest.fixture
def tls_nginx(procs, tmp_path, pki):
    """Factory: an nginx (from apt) with `listen ... ssl` and the given certificate; returns (port, access_log).
    The access log lines are `$connection $connection_requests $request_uri $ssl_server_name`."""
    if not os.path.exists(NGINX_BIN):
        pytest.skip("nginx is not installed")
    counter = [0]

    def start(cert=None, client_ca: bool = False):
        cert = cert or pki.backend
        counter[0] += 1
        prefix = tmp_path / f"nginx-tls{counter[0]}"
        (prefix / "logs").mkdir(parents=True)
        for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (prefix / "tmp" / d).mkdir(parents=True)
        port = free_port()
        mtls = f"ssl_client_certificate {pki.ca.cert};\n        ssl_verify_client on;" if client_ca else ""
        conf = f"""
user root;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    log_format conns '$connection $connection_requests $request_uri $ssl_server_name';
    access_log {prefix}/logs/access.log conns;
    client_body_temp_path {prefix}/tmp/client_body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    keepalive_requests 10000;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name backend.test;
        ssl_certificate {cert.cert};
        ssl_certificate_key {cert.key};
        ssl_protocols TLSv1.2 TLSv1.3;
        {mtls}
        location / {{
            default_type text/plain;
            return 200 "nginx tls $ssl_protocol $ssl_client_s_dn\\n";
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
                raise AssertionError(f"nginx exited {p.returncode}: {(prefix / 'logs' / 'stderr.log').read_text()}")
            return can_connect("127.0.0.1", port)

        wait_until(ready, 10, what="nginx (tls) to listen")
        return port, prefix / "logs" / "access.log"

    return start


def access_lines(log) -> list[list[str]]:
    return [l.split() for l in log.read_text().splitlines() if l.strip()] if log.exists() else []


NO_HEALTH = {"type": "none"}


def test_tls_backend_verified_with_server_name_and_pooled(tls_nginx, gateway, pki):
    port, log = tls_nginx()
    gw = gateway({"p": [Server("ng", f"127.0.0.1:{port}")]},
                 pool_options={"p": {"tls": {"ca_file": str(pki.ca.cert), "server_name": "backend.test"},
                                     "health": NO_HEALTH}})
    n = 12
    for i in range(n):
        r = curl(gw.url(f"/r{i}"))
        assert r.rc == 0 and r.status == 200, (i, r.status, r.body, gw.stderr())
        assert r.body.startswith(b"nginx tls TLSv1."), r.body
    lines = wait_until(lambda: (l := access_lines(log)) and len(l) >= n and l, 5, what="nginx access log")
    assert [l[2] for l in lines] == [f"/r{i}" for i in range(n)], lines
    assert all(l[3] == "backend.test" for l in lines), lines          # SNI sent
    conns = {l[0] for l in lines}
    assert len(conns) < n, f"no pooled TLS connection was reused: {lines}"
    assert len(conns) <= 2, f"{len(conns)} TLS connections for {n} sequential requests: {lines}"
    assert max(int(l[1]) for l in lines) >= n // 2, lines


def test_tls_backend_default_server_name_is_the_address(tls_nginx, gateway, pki):
    """No server_name, no public_url: the address 127.0.0.1 is verified against the certificate's IP SAN."""
    port, log = tls_nginx()
    gw = gateway({"p": [Server("ng", f"127.0.0.1:{port}")]},
                 pool_options={"p": {"tls": {"ca_file": str(pki.ca.cert)}, "health": NO_HEALTH}})
    r = curl(gw.url("/ip"))
    assert r.status == 200 and r.body.startswith(b"nginx tls"), (r.status, r.body, gw.stderr())


def test_tls_backend_default_server_name_from_public_url(tls_nginx, gateway, pki):
    port, log = tls_nginx(cert=pki.wrong)   # DNS wrong.test only, no IP SAN
    gw = gateway({"p": [Server("ng", f"127.0.0.1:{port}", {"public_url": f"https://wrong.test:{port}"})]},
                 pool_options={"p": {"tls": {"ca_file": str(pki.ca.cert)}, "health": NO_HEALTH}})
    r = curl(gw.url("/pu"))
    assert r.status == 200 and r.body.startswith(b"nginx tls"), (r.status, r.body, gw.stderr())
    assert access_lines(log)[-1][3] == "wrong.test"


def test_tls_backend_wrong_name_or_untrusted_is_502(tls_nginx, gateway, pki, tmp_path):
    port, log = tls_nginx()
    wrong_name = gateway({"p": [Server("ng", f"127.0.0.1:{port}")]},
                         pool_options={"p": {"tls": {"ca_file": str(pki.ca.cert), "server_name": "wrong.test"},
                                             "health": NO_HEALTH, "retries": 0}})
    r = curl(wrong_name.url("/x"))
    assert r.status == 502, (r.status, r.body)
    # the wrong-host certificate on nginx, the right name asked for
    port2, log2 = tls_nginx(cert=pki.wrong)
    wrong_cert = gateway({"p": [Server("ng", f"127.0.0.1:{port2}")]},
                         pool_options={"p": {"tls": {"ca_file": str(pki.ca.cert), "server_name": "backend.test"},
                                             "health": NO_HEALTH, "retries": 0}})
    assert curl(wrong_cert.url("/y")).status == 502
    # a CA the certificate does not chain to: the system trust store (no ca_file)
    untrusted = gateway({"p": [Server("ng", f"127.0.0.1:{port}")]},
                        pool_options={"p": {"tls": {"server_name": "backend.test"}, "health": NO_HEALTH,
                                            "retries": 0}})
    assert curl(untrusted.url("/z")).status == 502
    # no request reached nginx through a refused connection
    assert access_lines(log) == [] and access_lines(log2) == []
    # verify = false accepts it (documented as for tests only)
    lax = gateway({"p": [Server("ng", f"127.0.0.1:{port2}")]},
                  pool_options={"p": {"tls": {"verify": False}, "health": NO_HEALTH}})
    assert curl(lax.url("/lax")).status == 200


def test_tls_pool_short_form_with_a_plain_http_server_is_502(demo_backend, gateway):
    """`tls = true` on a pool whose server speaks plain HTTP: the handshake fails -> 502, the gateway keeps going."""
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, pool_options={"p": {"tls": True, "health": NO_HEALTH, "retries": 0}})
    for _ in range(2):
        r = curl(gw.url("/"), timeout=15)
        assert r.rc == 0 and r.status == 502, (r.status, r.body)
    assert gw.proc.poll() is None


def test_tls_backend_mutual_tls(tls_nginx, gateway, pki):
    port, log = tls_nginx(client_ca=True)
    with_cert = gateway({"p": [Server("ng", f"127.0.0.1:{port}")]},
                        pool_options={"p": {"tls": {"ca_file": str(pki.ca.cert), "server_name": "backend.test",
                                                    "client_cert": str(pki.client.cert),
                                                    "client_key": str(pki.client.key)},
                                            "health": NO_HEALTH}})
    r = curl(with_cert.url("/m"))
    assert r.status == 200 and b"CN=weir-client" in r.body, (r.status, r.body)
    without = gateway({"p": [Server("ng", f"127.0.0.1:{port}")]},
                      pool_options={"p": {"tls": {"ca_file": str(pki.ca.cert), "server_name": "backend.test"},
                                          "health": NO_HEALTH}})
    r = curl(without.url("/m"))
    assert r.status == 400 and b"No required SSL certificate" in r.body, (r.status, r.body)


# --------------------------------------------------------------------------------------------
# 9. SIGHUP reload


def test_sighup_reloads_certificate_and_keeps_connections(demo_backend, gateway, pki, tmp_path):
    site_pem, site_key = tmp_path / "site.pem", tmp_path / "site.key"
    site_pem.write_bytes(pki.weir.cert.read_bytes())
    site_key.write_bytes(pki.weir.key.read_bytes())
    gw = gateway({"p": [demo_backend("b1")]}, tls={"cert": str(site_pem), "key": str(site_key)})
    assert int(peer_certificate(gw.port, pki.ca.cert)["serialNumber"], 16) == pki.weir.serial

    def hup_and_wait(marker: str, count: int):
        os.kill(gw.pid, signal.SIGHUP)
        wait_until(lambda: gw.stderr().count(marker) >= count, 10, what=f"log {marker!r}")

    with TLSConn(gw.port, pki.ca.cert) as kept:
        kept.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert kept.read_response().body == b"b1\n"
        # a new certificate (new key, new serial) for the same names
        new = pki.issue("weir-new", "weir.test", ["DNS:weir.test", "DNS:*.weir.test", "IP:127.0.0.1"])
        replace_file(site_key, new.key.read_bytes())
        replace_file(site_pem, new.cert.read_bytes())
        hup_and_wait("reloaded (configuration", 1)
        assert int(peer_certificate(gw.port, pki.ca.cert)["serialNumber"], 16) == new.serial
        r = https(gw, pki, "/")
        assert r.status == 200, r.stderr
        # the connection opened before the reload still works
        kept.send(b"GET /echo HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert kept.read_response().status == 200

        # a broken certificate file: refused, the previous certificate stays
        replace_file(site_pem, b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        hup_and_wait("reload FAILED, still serving the previous configuration", 1)
        assert int(peer_certificate(gw.port, pki.ca.cert)["serialNumber"], 16) == new.serial
        # a valid certificate whose key does not match: refused as well
        replace_file(site_pem, pki.other.cert.read_bytes())
        hup_and_wait("reload FAILED, still serving the previous configuration", 2)
        assert int(peer_certificate(gw.port, pki.ca.cert)["serialNumber"], 16) == new.serial
        kept.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
        assert kept.read_response().body == b"b1\n"
    assert https(gw, pki, "/").status == 200
    assert gw.proc.poll() is None


# --------------------------------------------------------------------------------------------
# 10. Bad input on the TLS port


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Reads (and discards) until EOF/reset; returns the seconds it took (fails after `seconds`)."""
    sock.settimeout(0.2)
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - start
        if not data:
            return time.monotonic() - start
    raise AssertionError(f"connection still open after {seconds}s")


def send_and_expect_close(port: int, data: bytes, seconds: float = 5.0) -> float:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        try:
            s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            return 0.0
        return closed_within(s, seconds)


def big_garbage_client_hello(size: int = 20480) -> bytes:
    """A handshake message of type ClientHello with `size` bytes of garbage, in valid TLS records."""
    msg = b"\x01" + size.to_bytes(3, "big") + os.urandom(size)
    out = b""
    for i in range(0, len(msg), 16384):
        part = msg[i:i + 16384]
        out += b"\x16\x03\x01" + len(part).to_bytes(2, "big") + part
    return out


def test_bad_clients_never_hang_and_are_counted(demo_backend, gateway, pki):
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki, handshake_timeout="1s"))
    hello = client_hello()

    # handshake failures
    send_and_expect_close(gw.port, os.urandom(600))                                       # garbage
    send_and_expect_close(gw.port, b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")           # plain HTTP
    send_and_expect_close(gw.port, big_garbage_client_hello())                            # 20 KB+ garbage hello
    send_and_expect_close(gw.port, b"\x16\x03\x01\x50\x00" + os.urandom(20480))           # oversized record
    r11 = s_client(gw.port, "-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0")                   # refused version
    assert not r11.handshake_ok

    # a client that connects and sends nothing, and one that stops mid-handshake: the 1 s timeout closes them,
    # while other clients are served meanwhile
    idle = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(8)]
    half = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    half.sendall(hello[: len(hello) // 2])
    stalled = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    stalled.sendall(hello)            # the server answers; the client never sends its Finished
    try:
        t0 = time.monotonic()
        r = https(gw, pki, "/")
        assert r.status == 200 and time.monotonic() - t0 < 2, "a waiting handshake blocked the worker"
        for s in [*idle, half, stalled]:
            took = closed_within(s, 6.0)
            assert took < 6.0
        assert time.monotonic() - t0 >= 0.5, "closed before the handshake timeout"
    finally:
        for s in [*idle, half, stalled]:
            s.close()

    # a client that gives up mid-handshake (closes after half a ClientHello, or after the full one)
    for cut in (len(hello) // 2, len(hello)):
        with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:
            s.sendall(hello[:cut])
    with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as s:   # reset instead of FIN
        s.sendall(hello)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    # still serving, over TLS and with keep-alive
    with TLSConn(gw.port, pki.ca.cert) as c:
        for _ in range(3):
            c.send(b"GET / HTTP/1.1\r\nHost: weir.test\r\n\r\n")
            assert c.read_response().body == b"b1\n"
    assert gw.proc.poll() is None
    counters = stop_summary(gw)
    assert counters["tls-handshake-failures"] >= 3, counters
    assert counters["tls-handshake-timeouts"] >= 1, counters


def test_bad_clients_with_two_workers(demo_backend, gateway, pki):
    """The same abuse spread over two workers: every worker keeps serving."""
    gw = gateway({"p": [demo_backend("b1")]}, workers=2, tls=tls_table(pki, handshake_timeout="1s"))
    for _ in range(6):
        send_and_expect_close(gw.port, os.urandom(300))
        send_and_expect_close(gw.port, b"GET / HTTP/1.0\r\n\r\n")
    for _ in range(10):
        r = https(gw, pki, "/")
        assert r.status == 200, r.stderr
    counters = stop_summary(gw)
    assert counters["tls-handshake-failures"] >= 12, counters


# --------------------------------------------------------------------------------------------
# 11. OCSP stapling


def test_ocsp_stapling(demo_backend, gateway, pki, tmp_path):
    resp = pki.ocsp_response(pki.weir, tmp_path / "resp.der")
    chain = tmp_path / "weir-chain.pem"      # leaf + issuer: the chain is served (curl needs the issuer for OCSP)
    chain.write_bytes(pki.weir.cert.read_bytes() + pki.ca.cert.read_bytes())
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki, cert=str(chain), ocsp=str(resp)))
    r = s_client(gw.port, "-status", "-showcerts", cafile=pki.ca.cert)
    assert r.handshake_ok, r.out
    assert " 1 s:CN = Weir E2E Test CA" in r.out, r.out     # the chain from the PEM file is sent
    assert "OCSP Response Status: successful" in r.out, r.out
    assert "Cert Status: good" in r.out, r.out
    # the response is stapled to the default certificate only
    other = s_client(gw.port, "-status", servername="other.test", cafile=pki.ca.cert)
    assert other.handshake_ok and "OCSP response: no response sent" in other.out, other.out
    # and it verifies against the CA (curl --cert-status)
    ok = https(gw, pki, "/", "--cert-status")
    assert ok.rc == 0 and ok.status == 200, ok.stderr


def test_weir_check_loads_the_certificates(weir_bin, pki, tmp_path):
    """`weir check` (ExecStartPre under systemd) refuses a key that does not match its certificate,
    naming the file, before anything is started; with the right key it passes."""
    def conf(key):
        d = tmp_path / ("conf-" + Path(key).stem)
        d.mkdir()
        (d / "00.toml").write_text(f"""
[[listener]]
name = "tls"
address = "127.0.0.1:{free_port()}"
[listener.tls]
cert = "{pki.weir.cert}"
key = "{key}"
[[pool]]
name = "p"
[[pool.server]]
id = "s1"
address = "127.0.0.1:{free_port()}"
[[route]]
name = "all"
pool = "p"
""")
        return d
    good = subprocess.run([str(weir_bin), "check", "-c", str(conf(pki.weir.key))], capture_output=True, text=True, timeout=20)
    assert good.returncode == 0, good.stderr
    bad = subprocess.run([str(weir_bin), "check", "-c", str(conf(pki.other.key))], capture_output=True, text=True, timeout=20)
    assert bad.returncode == 1
    assert str(pki.other.key) in bad.stderr and "does not match" in bad.stderr, bad.stderr
