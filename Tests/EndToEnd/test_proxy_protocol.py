"""PROXY protocol in and out, and the RFC 7239 Forwarded field (issue 13, edge integration).

Inbound: raw sockets send v1 / v2 headers from 127.0.0.1 to a `proxy_protocol = true` listener (plain and
TLS); the demo backend's /echo shows the X-Forwarded-For the gateway derived from the header. Refused:
a source outside `proxy_protocol_from`, a malformed or missing header, one that never completes.
Outbound: haproxy (Debian's package) with `accept-proxy` on its bind sits between Weir and the demo
backend; Weir's pool has `send_proxy`; haproxy stamps the source it learned into a request field.
Everything runs on 127.0.0.1 / ::1; every wait is bounded.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import struct
import subprocess
import time

import pytest

from conftest import RawConn, curl, free_port, ipv6_loopback_available, wait_until, can_connect
from tlsutil import PKI, client_context, tls_table

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(source: str, sport: int = 4711, dest: str = "127.0.0.1", dport: int = 80) -> bytes:
    family = "TCP6" if ":" in source else "TCP4"
    if family == "TCP6" and ":" not in dest:
        dest = "::1"
    return f"PROXY {family} {source} {dest} {sport} {dport}\r\n".encode()


def v2(source: str | None, sport: int = 4711, dest: str = "127.0.0.1", dport: int = 80, tlvs: bytes = b"") -> bytes:
    """A v2 PROXY header (source None: the LOCAL command)."""
    if source is None:
        return V2_SIGNATURE + b"\x20\x00" + struct.pack("!H", len(tlvs)) + tlvs
    if ":" in source:
        body = socket.inet_pton(socket.AF_INET6, source) + socket.inet_pton(socket.AF_INET6, dest if ":" in dest else "::1")
        family = 0x21
    else:
        body = socket.inet_aton(source) + socket.inet_aton(dest)
        family = 0x11
    body += struct.pack("!HH", sport, dport) + tlvs
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


def echo_request(host: str = "weir.test") -> bytes:
    return f"GET /echo HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


def echoed(raw_response_body: bytes) -> dict:
    return json.loads(raw_response_body)


def header_values(echo: dict, name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


def proxied_echo(gw, header: bytes, *, pieces: int = 1) -> dict:
    """Sends `header` (in `pieces` segments, a pause between them) then GET /echo; returns the echo."""
    with RawConn("127.0.0.1", gw.port) as c:
        step = max(1, len(header) // pieces)
        for i in range(0, len(header), step):
            c.send(header[i:i + step])
            if pieces > 1:
                time.sleep(0.05)
        c.send(echo_request())
        r = c.read_response()
        assert r.status == 200, r
        return echoed(r.body)


def refused(gw, data: bytes) -> bool:
    """Whether the gateway closes a connection that sent `data` without answering anything."""
    with RawConn("127.0.0.1", gw.port, timeout=5) as c:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return True
        closed = c.is_closed(timeout=5)
        return closed and c.buf == b""


def backend_requests(backend) -> int:
    """Requests the demo backend served before this one (its /stats counts itself)."""
    return backend.stats()["requests"] - 1


def stop_counters(gw) -> dict:
    assert gw.terminate() == 0, gw.stderr()
    line = next((l for l in gw.stderr().splitlines() if "weir: stopped;" in l), None)
    assert line, gw.stderr()
    return {k: int(v) for k, v in re.findall(r"([a-z0-9-]+)=(\d+)", line)}


@pytest.fixture
def proxied_gateway(gateway, demo_backend):
    def start(**listener):
        backend = demo_backend("pp-demo")
        gw = gateway({"p": [backend]}, listener_extra={"proxy_protocol": True, **listener})
        return gw, backend
    return start


# --------------------------------------------------------------------------------------------
# Inbound


def test_v1_and_v2_headers_set_the_client_address(proxied_gateway):
    gw, _ = proxied_gateway()
    assert header_values(proxied_echo(gw, v1("203.0.113.9")), "X-Forwarded-For") == ["203.0.113.9"]
    assert header_values(proxied_echo(gw, v2("198.51.100.23")), "X-Forwarded-For") == ["198.51.100.23"]
    assert header_values(proxied_echo(gw, v1("2001:db8::7")), "X-Forwarded-For") == ["2001:db8::7"]
    assert header_values(proxied_echo(gw, v2("2001:db8::8")), "X-Forwarded-For") == ["2001:db8::8"]
    # A header in pieces (the parser waits for the rest), with TLVs that are skipped.
    tlv = b"\x01\x00\x02h2" + b"\x04\x00\x03abc"
    assert header_values(proxied_echo(gw, v2("192.0.2.44", tlvs=tlv), pieces=4), "X-Forwarded-For") == ["192.0.2.44"]
    assert header_values(proxied_echo(gw, v1("192.0.2.45"), pieces=5), "X-Forwarded-For") == ["192.0.2.45"]
    # LOCAL (v2) and UNKNOWN (v1): the connection's own address stands.
    assert header_values(proxied_echo(gw, v2(None)), "X-Forwarded-For") == ["127.0.0.1"]
    assert header_values(proxied_echo(gw, b"PROXY UNKNOWN\r\n"), "X-Forwarded-For") == ["127.0.0.1"]
    # The access log names the stated client.
    wait_until(lambda: "203.0.113.9" in gw.stdout() and "2001:db8::7" in gw.stdout(), 5, what="access log lines")


def test_malformed_missing_or_late_headers_are_closed_unanswered(proxied_gateway):
    gw, backend = proxied_gateway()
    cases = [
        echo_request(),                                           # plain HTTP, no header
        b"PROXY TCP4 203.0.113.9 127.0.0.1 99999 80\r\n" + echo_request(),   # bad port
        b"PROXY TCP4 203.0.113.9 127.0.0.1 1 80\n" + echo_request(),         # LF without CR
        b"PROXY UNKNOWN " + b"x" * 120 + b"\r\n" + echo_request(),           # longer than 107 bytes
        V2_SIGNATURE + b"\x21\x11\xff\xff",                               # v2 length beyond the bound
        b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c" + b"\x00" * 12,           # bad signature
        b"\x16\x03\x01\x00\x05hello",                                     # TLS where the header should be
    ]
    for data in cases:
        assert refused(gw, data), data
    assert backend_requests(backend) == 0
    assert "PROXY protocol connection from 127.0.0.1:" in gw.stderr()
    counters = stop_counters(gw)
    # The gateway fixture's readiness probe connected once without a header: counted too.
    assert counters["proxy-protocol-refused"] >= len(cases), counters
    assert counters["requests"] == 0, counters


def test_a_header_that_never_completes_is_closed_within_client_header(gateway, demo_backend):
    backend = demo_backend("pp-late")
    gw = gateway({"p": [backend]}, listener_extra={"proxy_protocol": True}, timeouts={"client_header": "1s"})
    with RawConn("127.0.0.1", gw.port, timeout=5) as c:
        c.send(b"PROXY TCP4 203.0.113.9")
        started = time.monotonic()
        assert c.is_closed(timeout=4) and c.buf == b""
        assert time.monotonic() - started < 3.5
    assert backend_requests(backend) == 0


def test_a_source_outside_proxy_protocol_from_is_closed_and_logged(proxied_gateway):
    gw, backend = proxied_gateway(proxy_protocol_from=["198.51.100.0/24"])
    for _ in range(3):
        assert refused(gw, v1("203.0.113.9") + echo_request())
    assert backend_requests(backend) == 0
    assert "source not in proxy_protocol_from" in gw.stderr()
    # Rate-limited: three refusals within a second (and the readiness probe) make one line, not four.
    assert gw.stderr().count("PROXY protocol connection from") <= 2, gw.stderr()


def test_a_tls_listener_reads_the_header_before_the_handshake(gateway, demo_backend, tmp_path):
    pki = PKI(tmp_path / "pki")
    pki.weir = pki.issue("weir", "weir.test", ["DNS:weir.test", "IP:127.0.0.1"])
    pki.other = pki.issue("other", "other.test", ["DNS:other.test"])
    backend = demo_backend("pp-tls")
    gw = gateway({"p": [backend]}, listener_extra={"proxy_protocol": True}, tls=tls_table(pki))
    for header, expected in [(v1("203.0.113.77"), "203.0.113.77"), (v2("2001:db8::77"), "2001:db8::77")]:
        raw = socket.create_connection(("127.0.0.1", gw.port), timeout=10)
        raw.sendall(header)
        with client_context(pki.ca.cert).wrap_socket(raw, server_hostname="weir.test") as s:
            s.sendall(echo_request())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        echo = echoed(body)
        assert header_values(echo, "X-Forwarded-For") == [expected]
        assert header_values(echo, "X-Forwarded-Proto") == ["https"]
    # Without a header the ClientHello is refused as a header.
    assert refused(gw, b"\x16\x03\x01\x00\x05hello")


def test_hash_by_source_follows_the_stated_source(gateway, demo_backend):
    backends = [demo_backend(f"pp-h{i}") for i in range(3)]
    gw = gateway({"p": backends}, listener_extra={"proxy_protocol": True},
                 pool_options={"p": {"policy": "hash", "hash_key": "source", "slow_start": "0s"}})
    sources = [f"198.51.100.{i}" for i in range(1, 13)]
    homes = {}
    for source in sources:
        seen = {proxied_echo(gw, v1(source, sport=1000 + n))["server"] for n in range(3)}
        assert len(seen) == 1, (source, seen)   # one home per source, whatever the port
        homes[source] = seen.pop()
    # Every connection comes from 127.0.0.1: only the stated sources can spread them over the servers.
    assert len(set(homes.values())) >= 2, homes


# --------------------------------------------------------------------------------------------
# Outbound: haproxy with accept-proxy as the server


HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def start_haproxy(procs, tmp_path, demo_backend, bind_extra: str = "") -> str:
    """haproxy on 127.0.0.1 with `accept-proxy` (and `bind_extra`, e.g. "ssl crt FILE") in front of a demo
    backend; it copies the source address it learned from the PROXY header into X-Haproxy-Src. Returns
    its address."""
    if not shutil.which(HAPROXY):
        pytest.skip("haproxy is not installed (make test-deps installs it)")
    backend = demo_backend("behind-haproxy")
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(f"""
global
    maxconn 200
defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port} accept-proxy {bind_extra}
    http-request set-header X-Haproxy-Src %[src]
    default_backend be
backend be
    server demo {backend.address}
""")
    check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, timeout=30)
    assert check.returncode == 0, check.stderr
    err = tmp_path / "haproxy.stderr"
    with open(err, "wb") as f:
        p = procs.start([HAPROXY, "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=f)
    wait_until(lambda: p.poll() is None and can_connect("127.0.0.1", port), 10, what="haproxy to listen")
    return f"127.0.0.1:{port}"


@pytest.fixture
def haproxy_accepting_proxy(procs, tmp_path, demo_backend):
    return start_haproxy(procs, tmp_path, demo_backend)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_send_proxy_reaches_a_server_that_requires_it(gateway, haproxy_accepting_proxy, version):
    gw = gateway({"p": [("haproxy", haproxy_accepting_proxy)]}, admin="auto",
                 listener_extra={"proxy_protocol": True},
                 pool_options={"p": {"send_proxy": version,
                                     "health": {"type": "http", "path": "/health", "interval": "200ms",
                                                "timeout": "150ms", "rise": 1, "fall": 1}}})
    # The probes pass through haproxy's accept-proxy only with their own header (v2 LOCAL / v1 UNKNOWN).
    wait_until(lambda: gw.server_status("haproxy")["state"] == "up", 10, what="the probed server to be up")
    # Two clients in turn on keep-alive connections: each reaches haproxy with its own address, so
    # a connection that carried one client's header is never reused for the other.
    for source in ["203.0.113.1", "203.0.113.2", "203.0.113.1", "2001:db8::5"]:
        echo = proxied_echo(gw, v1(source) if version == "v1" else v2(source))
        assert header_values(echo, "X-Haproxy-Src") == [source], echo
    assert gw.server_status("haproxy")["state"] == "up"


def test_send_proxy_to_a_tls_pool_comes_before_the_handshake(gateway, procs, tmp_path, demo_backend):
    pki = PKI(tmp_path / "pki")
    leaf = pki.issue("backend", "backend.test", ["DNS:backend.test"])
    combined = tmp_path / "haproxy.pem"
    combined.write_bytes(leaf.cert.read_bytes() + leaf.key.read_bytes())
    address = start_haproxy(procs, tmp_path, demo_backend, bind_extra=f"ssl crt {combined}")
    gw = gateway({"p": [("haproxy", address)]}, listener_extra={"proxy_protocol": True},
                 pool_options={"p": {"send_proxy": "v2", "health": {"type": "none"},
                                     "tls": {"ca_file": str(pki.ca.cert), "server_name": "backend.test"}}})
    echo = proxied_echo(gw, v2("203.0.113.50"))
    assert header_values(echo, "X-Haproxy-Src") == ["203.0.113.50"], echo


def test_a_connection_with_a_proxy_header_is_reused_by_its_own_client_only(gateway, origin):
    """Keep-alive to a send_proxy server: one client's requests share its connection (one header), the
    next client gets a connection of its own with its own header."""
    def handler(conn):
        while b"\r\n" not in conn.buf:
            if not conn._fill():
                return
        line, conn.buf = conn.buf.split(b"\r\n", 1)
        conn.proxy_line = line
        while conn.read_request() is not None:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(line) + line)

    server = origin(handler)
    gw = gateway({"p": [("origin", server.address)]}, listener_extra={"proxy_protocol": True},
                 pool_options={"p": {"send_proxy": "v1", "health": {"type": "none"}}})
    with RawConn("127.0.0.1", gw.port) as a:
        a.send(v1("203.0.113.1", sport=5001))
        for _ in range(3):
            a.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = a.read_response()
            assert r.status == 200 and r.body.startswith(b"PROXY TCP4 203.0.113.1 127.0.0.1 5001 "), r.body
        with RawConn("127.0.0.1", gw.port) as b:
            b.send(v1("203.0.113.2", sport=5002) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            r = b.read_response()
            assert r.status == 200 and r.body.startswith(b"PROXY TCP4 203.0.113.2 127.0.0.1 5002 "), r.body
    assert server.accepted == 2, [c.requests for c in server.conns]
    assert sorted(len(c.requests) for c in server.conns) == [1, 3]
    assert not server.errors


def test_without_send_proxy_a_server_that_requires_it_refuses(gateway, haproxy_accepting_proxy):
    gw = gateway({"p": [("haproxy", haproxy_accepting_proxy)]}, pool_options={"p": {"retries": 0}})
    r = curl(gw.url("/echo"))
    assert r.status == 502, r


# --------------------------------------------------------------------------------------------
# Forwarded (RFC 7239)


def forwarded_of(gw, host: str, extra_args=()) -> list[str]:
    r = curl(gw.url("/echo"), *extra_args)
    assert r.status == 200, r
    return header_values(echoed(r.body), "Forwarded")


def test_forwarded_for_an_ipv4_client_appends_to_a_received_one(gateway, demo_backend):
    backend = demo_backend("fwd4")
    gw = gateway({"p": [backend]}, pool_options={"p": {"forwarded": True}})
    assert forwarded_of(gw, "127.0.0.1") == [f'for=127.0.0.1;proto=http;host="127.0.0.1:{gw.port}"']
    assert forwarded_of(gw, "127.0.0.1", ["-H", "Forwarded: for=192.0.2.60;proto=https", "-H", "Host: example.com"]) == [
        "for=192.0.2.60;proto=https, for=127.0.0.1;proto=http;host=example.com"]
    # Off (the default), no Forwarded field is added.
    plain = gateway({"p": [backend]})
    assert forwarded_of(plain, "127.0.0.1") == []


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_forwarded_for_an_ipv6_client_is_quoted_and_bracketed(gateway, demo_backend):
    backend = demo_backend("fwd6")
    gw = gateway({"p": [backend]}, host="::1", pool_options={"p": {"forwarded": True}})
    assert forwarded_of(gw, "::1", ["-H", "Host: example.com"]) == ['for="[::1]";proto=http;host=example.com']
