"""HTTP/2 on the client side end to end (issue 14, the functional part): real clients (curl --http2 and
--http2-prior-knowledge, Python httpx with h2, h2load) and a raw-frame client (h2attack.H2Conn, with an HPACK
decoder here) against Weir in front of demo backends: ALPN, h2c, large bodies both ways, trailers, 100
concurrent streams on one connection over several servers, the header rules, sticky sessions and redirect
mode, a server killed mid-stream, GOAWAY on drain and at http2_max_requests, the SETTINGS Weir announces, the
stream idle timeout, per-stream access log lines and the HTTP/2 metrics.

Every load is bounded in count and time; nothing sleeps where polling works.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest

h2attack = pytest.importorskip("h2attack", reason="needs Python h2 (make test-deps)")
from hpack import Decoder  # noqa: E402
from hyperframe.frame import (DataFrame, GoAwayFrame, HeadersFrame, RstStreamFrame,  # noqa: E402
                              SettingsFrame)

from conftest import RawConn, Server, access_log_entries, curl, wait_until  # noqa: E402
from stickyutil import BANKING, PIN, SECRET, pin_from, start_sticky_gateway, sticky_extra, token_parts  # noqa: E402
from test_metrics import scrape, total  # noqa: E402
from tlsutil import listener_pki, curl_tls_args, s_client, tls_table  # noqa: E402

NO_ERROR, PROTOCOL_ERROR = 0x0, 0x1
SETTINGS_HEADER_TABLE_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS = 0x1, 0x3
SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE = 0x5, 0x6


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return listener_pki(tmp_path_factory.mktemp("pki"))


# --------------------------------------------------------------------------------------------
# A raw HTTP/2 client that keeps every stream's frames


class Stream:
    def __init__(self):
        self.heads: list = []          # decoded header blocks, in order (response head, 1xx, trailers)
        self.frames: list = []         # "H" (HEADERS) and "D" (DATA), in order
        self.data = bytearray()
        self.reset: int | None = None  # the RST_STREAM's error code
        self.ended = False             # END_STREAM seen

    @property
    def status(self) -> int | None:
        finals = [h for h in self.heads if ":status" in h and not h[":status"].startswith("1")]
        return int(finals[0][":status"]) if finals else None

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


class H2(h2attack.H2Conn):
    """h2attack's raw-frame connection, plus an HPACK decoder and per-stream bookkeeping."""

    def __init__(self, port: int, *, cafile=None, **kwargs):
        self.decoder = Decoder()
        self.streams: dict[int, Stream] = {}
        self.server_settings: list[dict] = []
        self.goaways: list[tuple[int, int]] = []   # (error code, last stream id)
        super().__init__("127.0.0.1", port, cafile=cafile, **kwargs)

    def _note(self, frame):
        super()._note(frame)
        if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            self.server_settings.append(dict(frame.settings))
        elif isinstance(frame, GoAwayFrame):
            self.goaways.append((frame.error_code, frame.last_stream_id))
        elif isinstance(frame, (HeadersFrame, DataFrame, RstStreamFrame)) and frame.stream_id:
            s = self.streams.setdefault(frame.stream_id, Stream())
            if isinstance(frame, HeadersFrame):
                assert "END_HEADERS" in frame.flags, "a response header block in CONTINUATIONs (not expected here)"
                s.heads.append({k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                                for k, v in self.decoder.decode(frame.data)})
                s.frames.append("H")
            elif isinstance(frame, DataFrame):
                s.data += frame.data
                if frame.data:
                    s.frames.append("D")
            else:
                s.reset = frame.error_code
            if "END_STREAM" in getattr(frame, "flags", ()):
                s.ended = True

    def request(self, path: str = "/", method: str = "GET", extra=(), body: bytes | None = None,
                end: bool = True) -> int:
        """Sends one request (HEADERS, then `body` as one DATA frame); END_STREAM unless `end` is False."""
        sid = self.new_stream()
        f = HeadersFrame(sid, self.request_block(path, method, extra))
        f.flags.add("END_HEADERS")
        if end and body is None:
            f.flags.add("END_STREAM")
        out = f.serialize()
        if body is not None:
            d = DataFrame(sid, body)
            if end:
                d.flags.add("END_STREAM")
            out += d.serialize()
        self.send(out)
        self.streams.setdefault(sid, Stream())
        return sid

    def wait(self, predicate, seconds: float = 10.0, what: str = "frames"):
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {seconds}s waiting for {what}: "
                                     f"{ {k: (v.status, v.reset, v.ended, len(v.data)) for k, v in self.streams.items()} }"
                                     f" goaways={self.goaways} closed={self.outcome.closed}")
            if self.outcome.closed:
                if predicate():
                    break
                raise AssertionError(f"connection closed while waiting for {what}: goaways={self.goaways}")
            self.read(0.05)

    def finish(self, *sids: int, seconds: float = 10.0) -> list[Stream]:
        self.wait(lambda: all(self.streams[s].done for s in sids), seconds, f"streams {sids}")
        return [self.streams[s] for s in sids]


def h2tls(gw, pki, **kwargs) -> H2:
    return H2(gw.port, cafile=pki.ca.cert, **kwargs)


def tls_gateway(gateway, backends, pki, **kwargs):
    return gateway({"p": backends}, tls=tls_table(pki), **kwargs)


def curl2(gw, pki, path: str, *args, **kwargs):
    """curl --http2 over TLS to https://weir.test:PORT/path."""
    return curl(gw.https_url(path, host="weir.test"), "--http2", *curl_tls_args(pki.ca.cert, gw.port), *args, **kwargs)


def ca_context(pki) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca.cert))


def echo_headers(doc: dict, name: str) -> list:
    return [v for k, v in doc["headers"] if k.lower() == name.lower()]


# --------------------------------------------------------------------------------------------
# 1. ALPN and curl over TLS


def test_alpn_offers_h2_and_http11(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    r = s_client(gw.port, "-alpn", "h2", cafile=pki.ca.cert)
    assert r.handshake_ok and "ALPN protocol: h2" in r.out, r.out
    r = s_client(gw.port, "-alpn", "http/1.1", cafile=pki.ca.cert)
    assert r.handshake_ok and "ALPN protocol: http/1.1" in r.out, r.out
    r = s_client(gw.port, "-alpn", "h2,http/1.1", cafile=pki.ca.cert)
    assert "ALPN protocol: h2" in r.out, r.out


def test_http2_false_on_the_listener_selects_http11(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki, listener_extra={"http2": False})
    r = s_client(gw.port, "-alpn", "h2,http/1.1", cafile=pki.ca.cert)
    assert r.handshake_ok and "ALPN protocol: http/1.1" in r.out, r.out
    r = curl2(gw, pki, "/", "-w", "%{http_version}")
    assert r.rc == 0 and r.status == 200 and r.heads[-1][0].startswith("HTTP/1.1"), (r.heads, r.stderr)


def test_curl_http2_get_over_tls(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    r = curl2(gw, pki, "/?body=hello-h2")
    assert r.rc == 0 and r.status == 200, r.stderr
    assert r.heads[-1][0].startswith("HTTP/2 "), r.heads
    assert r.body == b"hello-h2" and r.header("X-Served-By") == "b1"
    r = curl2(gw, pki, "/echo?x=1")
    doc = json.loads(r.body)
    assert doc["method"] == "GET" and doc["target"] == "/echo?x=1", doc
    assert echo_headers(doc, "X-Forwarded-Proto") == ["https"], doc["headers"]
    assert echo_headers(doc, "Host") == [f"weir.test:{gw.port}"], doc["headers"]


# --------------------------------------------------------------------------------------------
# 2. h2c


def test_h2c_prior_knowledge_on_a_plain_listener(demo_backend, gateway):
    gw = gateway({"p": [demo_backend("b1")]}, listener_extra={"h2c": True})
    r = curl(gw.url("/echo"), "--http2-prior-knowledge")
    assert r.rc == 0 and r.status == 200 and r.heads[-1][0].startswith("HTTP/2 "), (r.heads, r.stderr)
    doc = json.loads(r.body)
    assert echo_headers(doc, "X-Forwarded-Proto") == ["http"], doc["headers"]
    # HTTP/1.1 still works on the same listener
    r = curl(gw.url("/"), "--http1.1")
    assert r.status == 200 and r.heads[-1][0].startswith("HTTP/1.1"), r.heads


def test_without_h2c_the_preface_gets_505(demo_backend, gateway):
    gw = gateway({"p": [demo_backend("b1")]})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(h2attack.PREFACE)
        assert c.read_response().status == 505


@pytest.mark.parametrize("h2c", [False, True])
def test_upgrade_h2c_is_not_honoured(demo_backend, gateway, h2c):
    gw = gateway({"p": [demo_backend("b1")]}, listener_extra={"h2c": h2c})
    with RawConn("127.0.0.1", gw.port) as c:
        c.send(b"GET /?body=plain HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
               b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n")
        r = c.read_response()
        assert r.status != 101
        assert r.status == 200 and r.body == b"plain", (r.status, r.body)
    r = curl(gw.url("/?body=plain"), "--http2")   # curl's Upgrade: h2c attempt
    assert r.rc == 0 and r.status == 200 and r.body == b"plain", r.stderr
    assert [h[0].split()[1] for h in r.heads] == ["200"] and r.heads[-1][0].startswith("HTTP/1.1"), r.heads


# --------------------------------------------------------------------------------------------
# 3. Bodies


@pytest.mark.parametrize("known_length", [True, False])
def test_post_10mib_over_h2(demo_backend, gateway, pki, tmp_path, known_length):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    data = os.urandom(10 * 1024 * 1024)
    path = tmp_path / "up.bin"
    path.write_bytes(data)
    args = ["--data-binary", f"@{path}", "-H", "Content-Type: application/octet-stream"]
    if not known_length:   # curl streams it without a content-length over h2 (chunked over HTTP/1.1)
        args += ["-H", "Transfer-Encoding: chunked"]
    r = curl2(gw, pki, "/echo", *args, timeout=60)
    assert r.rc == 0 and r.status == 200 and r.heads[-1][0].startswith("HTTP/2 "), (r.heads, r.stderr)
    doc = json.loads(r.body)
    assert doc["method"] == "POST" and doc["body_bytes"] == len(data), doc
    assert doc["body_sha256"] == hashlib.sha256(data).hexdigest()
    assert bool(echo_headers(doc, "Content-Length")) == known_length, doc["headers"]


def test_download_10mib_over_h2(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    r = curl2(gw, pki, f"/?size={10 * 1024 * 1024}", timeout=60)
    assert r.rc == 0 and r.status == 200, r.stderr
    assert len(r.body) == 10 * 1024 * 1024 and r.header("content-length") == str(10 * 1024 * 1024)


def test_chunked_response_with_trailers_arrives_as_data_then_trailing_headers(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    with h2tls(gw, pki) as c:
        sid = c.request("/?chunked=1&trailers=1&size=50000&chunk=1000", extra=[("te", "trailers")])
        s, = c.finish(sid)
    assert s.status == 200 and s.reset is None and s.ended, vars(s)
    assert len(s.data) == 50000
    assert s.frames[0] == "H" and s.frames[-1] == "H" and "D" in s.frames, s.frames
    assert s.frames.count("H") == 2, s.frames   # the response head, then the trailers
    head, trailers = s.heads
    assert not {"transfer-encoding", "connection", "keep-alive"} & set(head), head   # HTTP/1.1 framing dropped
    assert trailers == {"x-checksum": "50000"}, trailers


def test_chunked_streaming_with_httpx(demo_backend, gateway, pki):
    httpx = pytest.importorskip("httpx")
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    with httpx.Client(http2=True, verify=ca_context(pki), timeout=10) as client:
        with client.stream("GET", f"https://127.0.0.1:{gw.port}/?chunked=1&size=200000&chunk=7000") as r:
            assert r.http_version == "HTTP/2" and r.status_code == 200
            pieces = [len(b) for b in r.iter_raw()]
    assert sum(pieces) == 200000 and len(pieces) > 1, pieces


# --------------------------------------------------------------------------------------------
# 4. 100 concurrent streams on one connection, several servers


def h2load(url: str, *args) -> str:
    if not shutil.which("h2load"):
        pytest.skip("h2load (nghttp2-client) is not installed")
    p = subprocess.run(["h2load", "-n", "1000", "-c", "1", "-m", "100", "-T", "10", *args, url],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def assert_h2load_all_2xx(out: str):
    m = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored",
                  out)
    assert m and m.groups() == ("1000", "1000", "1000", "0", "0"), out
    assert re.search(r"status codes: 1000 2xx", out), out
    assert "Application protocol: h2" in out or "h2c" in out, out


def requests_of(backends) -> dict:
    return {b.name: b.stats()["requests"] for b in backends}


def test_h2load_100_streams_over_tls_land_on_three_servers(demo_backend, gateway, pki):
    backends = [demo_backend(n) for n in ("s1", "s2", "s3")]
    gw = tls_gateway(gateway, backends, pki, admin="auto")
    before = requests_of(backends)
    out = h2load(f"https://127.0.0.1:{gw.port}/?size=100")
    assert_h2load_all_2xx(out)
    served = {n: v - before[n] - 1 for n, v in requests_of(backends).items()}   # -1: the previous /stats
    assert sum(served.values()) == 1000 and all(v >= 300 for v in served.values()), served
    _, samples = scrape(gw.admin)
    assert total(samples, "weir_http2_connections_total") == 1
    assert total(samples, "weir_http2_streams_total") == 1000


def test_h2load_100_streams_over_h2c(demo_backend, gateway):
    backends = [demo_backend(n) for n in ("s1", "s2")]
    gw = gateway({"p": backends}, listener_extra={"h2c": True})
    before = requests_of(backends)
    assert_h2load_all_2xx(h2load(f"http://127.0.0.1:{gw.port}/"))
    served = {n: v - before[n] - 1 for n, v in requests_of(backends).items()}
    assert served == {"s1": 500, "s2": 500}, served


def test_httpx_100_concurrent_requests_on_one_connection(demo_backend, gateway, pki):
    httpx = pytest.importorskip("httpx")
    backends = [demo_backend(n) for n in ("s1", "s2", "s3")]
    gw = tls_gateway(gateway, backends, pki, admin="auto")

    async def run():
        async with httpx.AsyncClient(http2=True, verify=ca_context(pki), timeout=15,
                                     limits=httpx.Limits(max_connections=1)) as client:
            url = f"https://127.0.0.1:{gw.port}"
            first = await client.get(url + "/")   # the connection, so that the 100 share it
            assert first.http_version == "HTTP/2"
            return await asyncio.gather(*(client.get(f"{url}/?delay=50&i={i}") for i in range(100)))

    responses = asyncio.run(asyncio.wait_for(run(), 30))
    assert all(r.status_code == 200 and r.http_version == "HTTP/2" for r in responses)
    seen = Counter(r.headers["x-served-by"] for r in responses)
    assert set(seen) == {"s1", "s2", "s3"} and all(r.text == r.headers["x-served-by"] + "\n" for r in responses), seen
    _, samples = scrape(gw.admin)
    assert total(samples, "weir_http2_connections_total") == 1
    assert total(samples, "weir_http2_streams_total") == 101


# --------------------------------------------------------------------------------------------
# 5. Header rules


def test_authority_and_host_that_disagree_get_400(demo_backend, gateway, pki):
    backend = demo_backend("b1")
    gw = tls_gateway(gateway, [backend], pki)
    before = backend.stats()["requests"]
    with h2tls(gw, pki) as c:
        bad = c.request("/echo", extra=[("host", "other.test")])
        same = c.request("/echo", extra=[("host", "WEIR.test")])   # the same name, case aside
        s_bad, s_same = c.finish(bad, same)
    assert s_bad.status == 400, vars(s_bad)
    assert s_same.status == 200 and echo_headers(json.loads(s_same.data), "Host") == ["weir.test"], vars(s_same)
    assert backend.stats()["requests"] == before + 2   # the /echo that was accepted, and the first /stats


def test_connection_specific_field_resets_the_stream(demo_backend, gateway, pki):
    backend = demo_backend("b1")
    gw = tls_gateway(gateway, [backend], pki)
    before = backend.stats()["requests"]
    with h2tls(gw, pki) as c:
        bad = c.request("/", extra=[("connection", "keep-alive")])
        s, = c.finish(bad)
        assert s.reset == PROTOCOL_ERROR and s.status is None, vars(s)
        ok = c.request("/?body=after")   # the connection goes on
        s2, = c.finish(ok)
        assert s2.status == 200 and bytes(s2.data) == b"after"
    assert backend.stats()["requests"] == before + 2   # only the second request (and the first /stats)


def test_header_list_over_the_limit_gets_431(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki, listener_extra={"http2_max_header_list_size": 2048})
    with h2tls(gw, pki) as c:
        assert c.server_settings or c.wait(lambda: c.server_settings, 5, "SETTINGS") is None
        big = c.request("/", extra=[("x-big", "a" * 3000)])
        small = c.request("/", extra=[("x-small", "a" * 1000)])
        s_big, s_small = c.finish(big, small)
    assert c.server_settings[0].get(SETTINGS_MAX_HEADER_LIST_SIZE) == 2048, c.server_settings
    assert s_big.status == 431, vars(s_big)
    assert s_small.status == 200


def test_cookie_crumbs_are_joined(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    with h2tls(gw, pki) as c:
        sid = c.request("/echo", extra=[("cookie", "a=1"), ("accept", "*/*"), ("cookie", "b=2")])
        s, = c.finish(sid)
    assert s.status == 200
    assert echo_headers(json.loads(s.data), "Cookie") == ["a=1; b=2"]


# --------------------------------------------------------------------------------------------
# 6. Sticky sessions and redirect mode


def test_sticky_pin_set_over_h2_keeps_the_next_h2_requests_on_its_server(demo_backend, gateway, pki, tmp_path):
    httpx = pytest.importorskip("httpx")
    backends = [demo_backend(n) for n in ("s1", "s2", "s3")]
    gw = start_sticky_gateway(gateway, tmp_path, backends, tls=tls_table(pki))
    url = f"https://127.0.0.1:{gw.port}"
    with httpx.Client(http2=True, verify=ca_context(pki), timeout=10) as client:
        entry = client.get(url + "/banking/")
        assert entry.http_version == "HTTP/2" and entry.status_code == 200
        home = entry.headers["x-served-by"]
        token = pin_from([("Set-Cookie", v) for v in entry.headers.get_list("set-cookie")])
        assert token and token_parts(token)["id"] == home, entry.headers
        pinned = [client.get(url + f"/banking/step{i}").headers["x-served-by"] for i in range(6)]
        assert pinned == [home] * 6, pinned
        free = Counter(client.get(url + "/shop").headers["x-served-by"] for _ in range(6))   # not pinned: spread
        assert len(free) == 3, free
    # the pin alone, in a Cookie crumb of its own, on a new h2 connection
    r = curl2(gw, pki, "/banking/again", "-H", f"Cookie: x=1", "-H", f"Cookie: {PIN}={token}")
    assert r.status == 200 and r.header("X-Served-By") == home, r.headers


@pytest.mark.parametrize("status", [302, 307])
def test_redirect_mode_over_h2(demo_backend, gateway, pki, tmp_path, status):
    backends = [demo_backend(n) for n in ("s1", "s2")]
    ports = {b.port: b.name for b in backends}
    routes = [{"name": "all", "pool": "p", "path": "/", "redirect_status": status}]
    gw = gateway(pools={"p": [Server(b.name, b.address, {"public_url": f"http://127.0.0.1:{b.port}"})
                              for b in backends]},
                 routes=[], listener_extra={"mode": "redirect"}, tls=tls_table(pki),
                 global_extra={"state_dir": str(tmp_path / "state")}, extra=sticky_extra(routes, {"secret": SECRET}))
    seen = Counter()
    for i in range(4):
        r = curl2(gw, pki, f"/shop/item?id={i}")
        assert r.rc == 0 and r.status == status and r.heads[-1][0].startswith("HTTP/2 "), (r.heads, r.stderr)
        loc = urlsplit(r.header("Location"))
        assert loc.scheme == "http" and loc.hostname == "127.0.0.1" and loc.port in ports, r.headers
        assert loc.path == "/shop/item" and loc.query == f"id={i}"
        seen[ports[loc.port]] += 1
    assert set(seen) == {"s1", "s2"}, seen


# --------------------------------------------------------------------------------------------
# 7. A server killed mid-stream


def test_server_killed_mid_stream_resets_only_its_stream(demo_backend, gateway, pki):
    victim, other = demo_backend("victim"), demo_backend("other")
    gw = gateway({"v": [victim], "o": [other]}, tls=tls_table(pki),
                 routes=[{"name": "v", "pool": "v", "path": "/victim"}, {"name": "o", "pool": "o", "path": "/"}],
                 timeouts={"upstream_response": "10s"})
    with h2tls(gw, pki) as c:
        doomed = c.request("/victim/x?size=1000000&stall_after=20000")
        c.wait(lambda: len(c.streams[doomed].data) >= 20000, 10, "the stalled stream's first bytes")
        assert c.streams[doomed].status == 200 and not c.streams[doomed].done
        survivors = [c.request(f"/o?size=300000&delay=300&i={i}") for i in range(3)]
        c.wait(lambda: all(c.streams[s].status for s in survivors), 10, "the other streams' heads")
        victim.kill()
        c.finish(doomed, *survivors)
        s = c.streams[doomed]
        # the head was already sent: the stream cannot become a 502 any more; it is reset, not ended cleanly
        assert s.reset is not None and len(s.data) < 1000000, vars(s)
        for sid in survivors:
            assert c.streams[sid].status == 200 and c.streams[sid].ended and len(c.streams[sid].data) == 300000
            assert c.streams[sid].reset is None
        after = c.request("/o?body=still-here")
        assert c.finish(after)[0].status == 200 and bytes(c.streams[after].data) == b"still-here"
        gone = c.request("/victim/y")   # the dead server's pool: a 502/503, as over HTTP/1.1
        assert c.finish(gone)[0].status in (502, 503)
        assert not c.goaways


# --------------------------------------------------------------------------------------------
# 8. GOAWAY


def test_sigterm_sends_goaway_and_lets_the_in_flight_stream_finish(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    with h2tls(gw, pki) as c:
        sid = c.request("/?delay=700&size=5000")
        c.wait(lambda: c.server_settings, 5, "SETTINGS")
        os.kill(gw.pid, signal.SIGTERM)
        c.wait(lambda: c.goaways, 5, "GOAWAY")
        assert c.goaways[0][0] == NO_ERROR and c.goaways[0][1] >= sid, c.goaways
        assert not c.streams[sid].done   # still under way when the GOAWAY came
        s, = c.finish(sid)
        assert s.status == 200 and s.ended and len(s.data) == 5000 and s.reset is None, vars(s)
    assert gw.proc.wait(timeout=10) == 0


def test_an_idle_connection_gets_a_graceful_goaway_after_client_idle(demo_backend, gateway):
    gw = gateway({"p": [demo_backend("b1")]}, listener_extra={"h2c": True}, timeouts={"client_idle": "1s"})
    with H2(gw.port) as c:
        sid = c.request("/")
        assert c.finish(sid)[0].status == 200
        idle_from = time.monotonic()
        c.wait(lambda: c.goaways, 6, "GOAWAY after client_idle")
        waited = time.monotonic() - idle_from
        assert c.goaways[0] == (NO_ERROR, sid), c.goaways
        assert waited >= 0.9, waited   # not before client_idle (then the next once-a-second check)
        c.wait(lambda: c.outcome.closed, 5, "the connection closed")


def test_a_reload_that_removes_a_listener_sends_goaway_to_its_connections_only(demo_backend, gateway):
    from conftest import free_port
    second = free_port()
    gone = f'\n[[listener]]\nname = "gone"\naddress = "127.0.0.1:{second}"\nh2c = true\n'
    gw = gateway({"p": [demo_backend("b1")]}, listener_extra={"h2c": True}, extra=gone)
    with H2(gw.port) as kept, H2(second) as doomed:
        for c in (kept, doomed):
            assert c.finish(c.request("/"))[0].status == 200
        conf = gw.confdir / "00-weir.toml"
        conf.write_text(conf.read_text().replace(gone, "\n"))
        os.kill(gw.pid, signal.SIGHUP)
        wait_until(lambda: "SIGHUP: reloaded" in gw.stderr(), 10, what="the reload")
        doomed.wait(lambda: doomed.goaways, 5, "GOAWAY on the removed listener's connection")
        assert doomed.goaways[0][0] == NO_ERROR, doomed.goaways
        doomed.wait(lambda: doomed.outcome.closed, 5, "the connection closed")
        # the kept listener's connection serves its next stream (on the new configuration), without GOAWAY
        st = kept.finish(kept.request("/"))[0]
        assert st.status == 200 and not kept.goaways, (vars(st), kept.goaways)


def test_max_requests_ends_the_connection_with_a_graceful_goaway(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki, listener_extra={"http2_max_requests": 5})
    with h2tls(gw, pki) as c:
        sids = []
        for i in range(5):
            sids.append(c.request(f"/?body=r{i}"))
            c.finish(sids[-1])
        c.wait(lambda: c.goaways, 5, "GOAWAY")
        assert c.goaways[-1] == (NO_ERROR, sids[-1]), c.goaways
        assert [bytes(c.streams[s].data) for s in sids] == [f"r{i}".encode() for i in range(5)]
        assert all(c.streams[s].status == 200 for s in sids)
        c.wait(lambda: c.outcome.closed, 5, "the connection to close")
    # a new connection is served
    r = curl2(gw, pki, "/?body=next")
    assert r.status == 200 and r.body == b"next"


# --------------------------------------------------------------------------------------------
# 9. Limits


def test_settings_announce_the_configured_limits(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki,
                     listener_extra={"http2_max_concurrent_streams": 2, "http2_max_frame_size": 32768})
    with h2tls(gw, pki) as c:
        c.wait(lambda: c.server_settings, 5, "SETTINGS")
        first = c.server_settings[0]
        assert first.get(SETTINGS_MAX_CONCURRENT_STREAMS) == 2, first
        assert first.get(SETTINGS_MAX_FRAME_SIZE) == 32768, first
        assert first.get(SETTINGS_MAX_HEADER_LIST_SIZE) == 65536, first
        # two at once are served
        a, b = c.request("/?delay=200&body=a"), c.request("/?delay=200&body=b")
        assert [s.status for s in c.finish(a, b)] == [200, 200]


def test_stream_idle_timeout_resets_a_stalled_upload_and_keeps_the_connection(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki, listener_extra={"http2_stream_idle_timeout": "1s"},
                     timeouts={"upstream_response": "10s"})
    with h2tls(gw, pki) as c:
        start = time.monotonic()
        stalled = c.request("/echo", method="POST", body=b"x" * 100, end=False)   # a body that never ends
        s, = c.finish(stalled, seconds=6)
        took = time.monotonic() - start
        assert s.reset is not None and s.status is None, vars(s)
        assert 0.9 <= took <= 3.0, took
        ok = c.request("/?body=alive")
        assert c.finish(ok)[0].status == 200 and bytes(c.streams[ok].data) == b"alive"
        assert not c.goaways and not c.outcome.closed


# --------------------------------------------------------------------------------------------
# 10. Access log and metrics


def test_access_log_line_per_stream_and_metrics(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki, admin="auto")
    # three streams on one connection (curl reuses it for the URLs of one command line)
    urls = [gw.https_url(f"/log?i={i}", host="weir.test") for i in range(3)]
    p = subprocess.run(["curl", "-sS", "--http2", *curl_tls_args(pki.ca.cert, gw.port), "-o", "/dev/null",
                        "-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_version} %{http_code}\\n", *urls],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.split("\n")[:3] == ["2 200"] * 3, (p.stdout, p.stderr)
    entries = wait_until(lambda: [e for e in access_log_entries(gw.stdout()) if e[0].startswith("GET /log")]
                         if len([e for e in access_log_entries(gw.stdout()) if e[0].startswith("GET /log")]) >= 3
                         else None, 5, what="three access log lines")
    assert sorted(entries) == [(f"GET /log?i={i} HTTP/2.0", 200) for i in range(3)], entries
    _, samples = scrape(gw.admin)
    assert total(samples, "weir_http2_connections_total") == 1
    assert total(samples, "weir_http2_streams_total") == 3


def test_streams_in_turn_share_sessions_and_carry_nothing_over(demo_backend, gateway, pki):
    """A stream's session (its lane) serves the connection's next streams: nothing of one exchange (fields,
    body framing, a failure, HEAD) may reach the next."""
    from conftest import free_port
    backend = demo_backend("b1")
    dead = Server("dead", f"127.0.0.1:{free_port()}")
    gw = gateway({"p": [backend], "d": [dead]}, tls=tls_table(pki),
                 routes=[{"name": "d", "pool": "d", "path": "/dead"}, {"name": "p", "pool": "p", "path": "/"}])

    def echo(c, *args, **kwargs):
        st = c.finish(c.request(*args, **kwargs))[0]
        assert st.status == 200 and st.ended, vars(st)
        return json.loads(bytes(st.data))

    with h2tls(gw, pki) as c:
        for round_ in range(3):
            doc = echo(c, "/echo?a", method="POST", extra=[("x-first", "1"), ("content-length", "3")], body=b"abc")
            assert doc["method"] == "POST" and doc["body_bytes"] == 3 and echo_headers(doc, "X-First") == ["1"], doc
            doc = echo(c, "/echo?b")
            assert doc["method"] == "GET" and doc["target"] == "/echo?b" and doc["body_bytes"] == 0, doc
            assert not echo_headers(doc, "X-First") and not echo_headers(doc, "Content-Length"), doc["headers"]
            assert not echo_headers(doc, "Transfer-Encoding"), doc["headers"]
            # a body of unknown length (chunked towards the server), then a HEAD, then a GET with a body again
            sid = c.request("/echo?c", method="POST", body=b"", end=False)
            c.send(DataFrame(sid, b"12345").serialize())
            d = DataFrame(sid, b"678")
            d.flags.add("END_STREAM")
            c.send(d.serialize())
            st = c.finish(sid)[0]
            assert st.status == 200 and json.loads(bytes(st.data))["body_bytes"] == 8, vars(st)
            head = c.finish(c.request("/?size=5000", method="HEAD"))[0]
            assert head.status == 200 and head.ended and not head.data, vars(head)
            st = c.finish(c.request("/?size=5000"))[0]
            assert st.status == 200 and len(st.data) == 5000, (st.status, len(st.data))
            # a failed exchange, then a good one
            st = c.finish(c.request("/dead"))[0]
            assert st.status == 502, vars(st)
            assert echo(c, "/echo?after")["target"] == "/echo?after"
            # 20 streams at once take and give back sessions in any order: every answer is its own
            sids = {c.request(f"/?body=r{round_}s{i}&delay={(i * 7) % 20}"): f"r{round_}s{i}" for i in range(20)}
            for sid, want in sids.items():
                st = c.finish(sid)[0]
                assert st.status == 200 and bytes(st.data).decode() == want, (want, vars(st))
        assert not c.goaways
        # SIGTERM while the sessions wait idle for streams that will not come: a GOAWAY, and the drain ends
        # without them (the client keeps its socket open meanwhile)
        os.kill(gw.pid, signal.SIGTERM)
        c.wait(lambda: c.goaways, 5, "GOAWAY")
        assert c.goaways[0][0] == NO_ERROR, c.goaways
        assert gw.proc.wait(timeout=10) == 0
    log = gw.stdout() + gw.stderr()
    assert "SIGTERM: draining" in log and "drain timeout reached" not in log, log[-2000:]


# --------------------------------------------------------------------------------------------
# An early answer (RFC 9113 §8.1): the response is complete before the request body


def answer_before_the_body(conn):
    if conn.read_head() is None:
        return
    conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nearly")
    time.sleep(0.1)   # the client's body is still arriving: closing at once would reset the answer
    conn.close()


def test_early_answer_ends_the_upload_with_rst_stream_no_error(origin, gateway, pki):
    from hyperframe.frame import WindowUpdateFrame
    o = origin(answer_before_the_body)
    gw = gateway({"p": [Server("o", o.address)]}, tls={"cert": str(pki.weir.cert), "key": str(pki.weir.key)})
    with h2tls(gw, pki) as c:
        # 1. a client that keeps sending: the windows keep opening (its upload is discarded), then past 1 MiB
        #    RST_STREAM(NO_ERROR) tells it to stop
        opened = []
        note = c._note
        c._note = lambda f: (opened.append(f.window_increment) if isinstance(f, WindowUpdateFrame)
                             and f.stream_id == 1 else None, note(f))
        sid = c.request("/up", method="POST", body=b"y" * 16000, end=False)
        sent, deadline = 16000, time.monotonic() + 10
        while sent < 3_000_000 and c.streams[sid].reset is None and time.monotonic() < deadline:
            if sent + 16000 <= 256 * 1024 + sum(opened):
                c.send(DataFrame(sid, b"y" * 16000).serialize())
                sent += 16000
            c.read(0.005)
        s = c.streams[sid]
        c.wait(lambda: s.reset is not None, 5, "RST_STREAM after the discard limit")
        assert s.status == 200 and bytes(s.data) == b"early" and s.ended and s.reset == NO_ERROR, vars(s)
        assert 1 << 20 < sent < 2 << 20, sent
        # 2. a client that stops sending without ending its request: RST_STREAM(NO_ERROR) after a second
        start = time.monotonic()
        quiet = c.request("/up", method="POST", body=b"y" * 1000, end=False)
        s = c.streams[quiet]
        c.wait(lambda: s.reset is not None, 5, "RST_STREAM after a second without DATA")
        assert s.status == 200 and s.ended and s.reset == NO_ERROR, vars(s)
        assert time.monotonic() - start < 3.5
        ok = c.request("/after")
        assert c.finish(ok)[0].status == 200 and not c.goaways
    nghttp = shutil.which("nghttp")
    if nghttp:   # a real client that honours the reset: the response, exit 0
        body = gw.confdir / "up.bin"
        body.write_bytes(b"q" * (3 << 20))
        p = subprocess.run([nghttp, "-d", str(body), f"https://127.0.0.1:{gw.port}/up"], capture_output=True,
                           timeout=20)
        assert p.returncode == 0 and p.stdout == b"early", (p.returncode, p.stdout[:200], p.stderr[-300:])


# --------------------------------------------------------------------------------------------
# Response framing over h2: bodiless answers, interim responses, hop-by-hop fields, a small window


def scripted(conn):
    while True:
        r = conn.read_request()
        if r is None:
            return
        if b"/hop" in r[0]:
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Foo\r\nKeep-Alive: timeout=5\r\n"
                      b"X-Foo: hop\r\nProxy-Connection: x\r\nUpgrade: foo\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nok")
        elif b"/many" in r[0]:
            # More fields than the name/value list first has room for (16): it grows.
            fields = b"".join(b"X-Field-%d: value %d\r\n" % (i, i) for i in range(40))
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n" + fields + b"\r\nmany")
        elif b"/early-hints" in r[0]:
            conn.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
                      b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        else:
            conn.send(b"HTTP/1.1 200 OK\r\n\r\nclose-delimited")
            conn.close()
            return


def test_response_fields_and_interim_responses_over_h2(origin, gateway, pki):
    o = origin(scripted)
    gw = gateway({"p": [Server("o", o.address)]}, tls={"cert": str(pki.weir.cert), "key": str(pki.weir.key)})
    r = curl2(gw, pki, "/hop")   # curl's nghttp2 refuses a response with a connection-specific field
    assert r.rc == 0 and r.status == 200 and r.body == b"ok", r.stderr
    names = [k.lower() for k, _ in r.headers]
    assert not {"connection", "keep-alive", "x-foo", "proxy-connection", "upgrade"} & set(names), r.headers
    assert r.header_all("set-cookie") == ["a=1", "b=2"]
    for _ in range(2):   # the grown list serves the next head too
        r = curl2(gw, pki, "/many")
        assert r.rc == 0 and r.status == 200 and r.body == b"many", r.stderr
        fields = [(k.lower(), v) for k, v in r.headers if k.lower().startswith("x-field-")]
        assert fields == [(f"x-field-{i}", f"value {i}") for i in range(40)], r.headers
    r = curl2(gw, pki, "/early-hints")
    assert [h[0].split()[1] for h in r.heads] == ["103", "200"] and r.body == b"ok", r.heads
    r = curl2(gw, pki, "/eof")
    assert r.rc == 0 and r.status == 200 and r.body == b"close-delimited", r.stderr


def test_bodiless_answers_and_a_small_client_window(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    with H2(gw.port, cafile=pki.ca.cert, settings={4: 1000}) as c:   # INITIAL_WINDOW_SIZE 1000
        head, no_content, not_modified = (c.request("/?size=1234", method="HEAD"), c.request("/?status=204"),
                                          c.request("/?status=304"))
        big = [c.request("/?size=300000") for _ in range(3)]
        c.finish(head, no_content, not_modified, *big, seconds=20)
        assert c.streams[head].heads[0].get("content-length") == "1234" and c.streams[head].frames == ["H"]
        assert [c.streams[s].status for s in (no_content, not_modified)] == [204, 304]
        assert all(c.streams[s].frames == ["H"] and c.streams[s].ended for s in (head, no_content, not_modified))
        for s in big:
            assert c.streams[s].status == 200 and len(c.streams[s].data) == 300000 and c.streams[s].ended


def test_expect_100_continue_and_request_trailers(demo_backend, gateway, pki):
    gw = tls_gateway(gateway, [demo_backend("b1")], pki)
    with h2tls(gw, pki) as c:
        sid = c.request("/echo", method="POST", extra=[("expect", "100-continue"), ("content-length", "5")], end=False)
        c.wait(lambda: c.streams[sid].heads, 5, "100 Continue")
        assert c.streams[sid].heads[0][":status"] == "100"
        d = DataFrame(sid, b"hello")
        d.flags.add("END_STREAM")
        c.send(d.serialize())
        s, = c.finish(sid)
        assert s.status == 200 and json.loads(s.data)["body_bytes"] == 5
        # a body of unknown length ended by trailers (gRPC-like)
        sid = c.request("/echo", method="POST", body=b"hello", end=False)
        t = HeadersFrame(sid, c.encoder.encode([("x-trail", "1")]))
        t.flags.add("END_HEADERS")
        t.flags.add("END_STREAM")
        c.send(t.serialize())
        s, = c.finish(sid)
        doc = json.loads(s.data)
        assert s.status == 200 and doc["body_bytes"] == 5 and echo_headers(doc, "Transfer-Encoding") == ["chunked"]


def test_server_failures_before_the_head_are_502_and_504(demo_backend, gateway, pki):
    slow, dying = demo_backend("slow"), demo_backend("dying")
    gw = gateway({"s": [slow], "d": [dying]}, tls=tls_table(pki), timeouts={"upstream_response": "700ms"},
                 routes=[{"name": "d", "pool": "d", "path": "/dying"}, {"name": "s", "pool": "s", "path": "/"}])
    with h2tls(gw, pki) as c:
        late = c.request("/?delay=3000")
        doomed = c.request("/dying?delay=3000")
        wait_until(lambda: dying.stats()["requests"] >= 2, 5, what="the request at the dying server")
        dying.kill()
        s_late, s_doomed = c.finish(late, doomed)
        assert s_doomed.status == 502 and s_late.status == 504, (s_doomed.heads, s_late.heads)


def test_streams_past_max_concurrent_are_refused(demo_backend, gateway, pki):
    backend = demo_backend("b1")
    gw = tls_gateway(gateway, [backend], pki, listener_extra={"http2_max_concurrent_streams": 2})
    before = backend.stats()["requests"]
    with h2tls(gw, pki) as c:
        c.wait(lambda: c.server_settings, 5, "SETTINGS")
        c.read(0.2)   # our SETTINGS ACK is out: the limit is in force
        sids = [c.request(f"/?delay=300&body={i}") for i in range(3)]
        deadline = time.monotonic() + 10
        while not c.outcome.closed and not all(c.streams[x].done for x in sids) and time.monotonic() < deadline:
            c.read(0.05)
        third = c.streams[sids[2]]
        # nghttp2 refuses the third stream (RST_STREAM) or, the limit being acknowledged, ends the connection
        # with GOAWAY(PROTOCOL_ERROR); either way it never reaches a server
        assert third.status is None and (third.reset in (0x7, PROTOCOL_ERROR) or
                                         (c.goaways and c.goaways[0][0] == PROTOCOL_ERROR)), (vars(third), c.goaways)
    assert backend.stats()["requests"] - before - 1 <= 2
