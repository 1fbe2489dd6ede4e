"""Redirect mode (the IP redirector) end to end: 307 to the chosen server's public URL with the
original path and query, bodies re-sent by the client (curl -L), per-route status overrides, pins
in redirect mode, the discarded request body and its limit, and the run-time mode switch (admin
`/mode` and `weir mode`) under a bounded request loop with zero failures.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
from collections import Counter
from urllib.parse import urlsplit

import pytest

from conftest import RawConn, Server, curl
from stickyutil import (BANKING, PIN, SECRET, admin_json, admin_request, pin_from, sticky_extra, token_parts)


def public(backend, slash: bool = True) -> Server:
    """The backend as a pool member whose public_url names it (with a trailing "/" that must be dropped)."""
    return Server(backend.name, backend.address, {"public_url": f"http://127.0.0.1:{backend.port}" + ("/" if slash else "")})


def start(gateway, tmp_path, backends, *, mode="redirect", routes=None, **kwargs):
    routes = routes or [{"name": "all", "pool": "p", "path": "/"}]
    kwargs.setdefault("global_extra", {"state_dir": str(tmp_path / "state")})
    return gateway(pools={"p": [public(b) for b in backends]}, routes=[], listener_extra={"mode": mode},
                   extra=sticky_extra(routes, {"secret": SECRET}), **kwargs)


def three(demo_backend):
    return [demo_backend(n) for n in ("s1", "s2", "s3")]


def test_get_is_redirected_to_the_chosen_servers_public_url(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    ports = {b.name: b.port for b in backends}
    gw = start(gateway, tmp_path, backends)
    seen = Counter()
    for i in range(6):
        r = curl(gw.url(f"/shop/item?id={i}&q=a%20b"))
        assert r.rc == 0 and r.status == 307, (r.status, r.headers)
        assert r.heads[-1][0].startswith("HTTP/1.1 307 Temporary Redirect"), r.heads
        assert r.header("Cache-Control") == "no-store"
        assert r.body == b""
        loc = r.header("Location")
        parts = urlsplit(loc)
        assert parts.scheme == "http" and parts.hostname == "127.0.0.1", loc
        assert parts.path == "/shop/item" and parts.query == f"id={i}&q=a%20b", loc   # no "//": the "/" was dropped
        server = next(n for n, p in ports.items() if p == parts.port)
        seen[server] += 1
        followed = curl(gw.url(f"/shop/item?id={i}"), "-L")
        assert followed.rc == 0 and followed.status == 200, followed.stderr
        assert [h[0].split()[1] for h in followed.heads] == ["307", "200"], followed.heads
        assert followed.body == followed.header("X-Served-By").encode() + b"\n"
    assert len(seen) == 3, seen   # picked as in proxy mode (round-robin)


def test_post_body_survives_a_307_and_every_method_is_redirected(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    gw = start(gateway, tmp_path, backends)
    data = os.urandom(300_000)
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    r = curl(gw.url("/echo?x=1"), "-L", "--data-binary", f"@{path}", "-H", "Content-Type: application/octet-stream")
    assert r.rc == 0 and r.status == 200, (r.stderr, r.heads)
    assert r.heads[0][0].split()[1] == "307"
    doc = json.loads(r.body)
    assert doc["method"] == "POST" and doc["target"] == "/echo?x=1", doc
    assert doc["body_bytes"] == len(data) and doc["body_sha256"] == hashlib.sha256(data).hexdigest(), doc
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
        r = curl(gw.url("/m"), "-X", method) if method != "HEAD" else curl(gw.url("/m"), "-I")
        assert r.status == 307 and r.header("Location", ) and r.header("Cache-Control") == "no-store", (method, r.heads)


@pytest.mark.parametrize("status,phrase", [(302, "Found"), (303, "See Other"), (307, "Temporary Redirect"),
                                           (308, "Permanent Redirect")])
def test_route_redirect_status_override_on_a_proxy_listener(demo_backend, gateway, tmp_path, status, phrase):
    backends = three(demo_backend)
    routes = [{"name": "r", "pool": "p", "path": "/go/", "mode": "redirect", "redirect_status": status},
              {"name": "all", "pool": "p", "path": "/"}]
    gw = start(gateway, tmp_path, backends, mode="proxy", routes=routes)
    r = curl(gw.url("/go/there?a=1"))
    assert r.status == status and r.heads[-1][0] == f"HTTP/1.1 {status} {phrase}", r.heads
    assert urlsplit(r.header("Location")).path == "/go/there"
    proxied = curl(gw.url("/elsewhere"))
    assert proxied.status == 200 and proxied.header("X-Served-By"), proxied.heads   # other routes still proxied


def test_pins_are_set_and_honoured_in_redirect_mode(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    ports = {b.port: b.name for b in backends}
    routes = [{"name": "all", "pool": "p", "path": "/", "sticky": [BANKING]}]
    gw = start(gateway, tmp_path, backends, routes=routes)
    entry = curl(gw.url("/banking/"))
    assert entry.status == 307
    token = pin_from(entry.headers)
    home = ports[urlsplit(entry.header("Location")).port]
    assert token and token_parts(token)["id"] == home, entry.headers
    for i in range(8):
        r = curl(gw.url(f"/banking/step{i}"), "-H", f"Cookie: {PIN}={token}")
        assert r.status == 307 and ports[urlsplit(r.header("Location")).port] == home, (i, r.headers)
        assert token_parts(pin_from(r.headers))["id"] == home
    done = curl(gw.url("/banking/logout"), "-H", f"Cookie: {PIN}={token}")
    assert ports[urlsplit(done.header("Location")).port] == home and pin_from(done.headers) == ""


def test_redirected_body_is_discarded_then_keep_alive_or_closed_beyond_the_limit(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    gw = start(gateway, tmp_path, backends, limits={"redirect_body_bytes": 4096})
    with RawConn(gw.host, gw.port) as c:
        body = b"b" * 3000
        c.send(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        assert c.read_response().status == 307
        c.send(b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
        r = c.read_response()
        assert r.status == 307 and urlsplit(r.header("Location")).path == "/b"
        c.send(b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n")            # the connection is still usable
        r = c.read_response()
        assert r.status == 307 and urlsplit(r.header("Location")).path == "/c"
    with RawConn(gw.host, gw.port) as c:
        body = b"b" * 200_000
        c.send(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        try:
            c.send(body)
        except OSError:
            pass
        r = c.read_response()
        assert r.status == 307
        assert c.is_closed(5), "connection kept open although the body exceeds redirect_body_bytes"


# --------------------------------------------------------------------------------------------
# Run-time mode switch


def test_mode_switch_during_a_request_loop_loses_nothing(weir_bin, demo_backend, gateway, tmp_path):
    requests = pytest.importorskip("requests")
    backends = three(demo_backend)
    gw = start(gateway, tmp_path, backends, mode="proxy", admin="auto", workers=2)
    assert admin_json(gw, "GET", "/mode") == {"listeners": [{"mode": "proxy", "name": "public"}]}

    total, per_thread = 400, 200
    done = [0]
    lock = threading.Lock()
    failures, kinds = [], Counter()

    def client(k: int):
        with requests.Session() as s:
            for i in range(per_thread):
                try:
                    r = s.get(gw.url(f"/loop/{k}/{i}?n={i}"), timeout=10)
                    ok = r.status_code == 200 and r.text == r.headers.get("X-Served-By", "?") + "\n"
                    with lock:
                        kinds["redirected" if r.history else "proxied"] += 1
                    if not ok:
                        failures.append((k, i, r.status_code, r.text[:100]))
                except Exception as e:   # noqa: BLE001 - every failure is recorded
                    failures.append((k, i, repr(e)))
                with lock:
                    done[0] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(total // per_thread)]
    for t in threads:
        t.start()
    mode, switched = "proxy", 0
    next_switch = 50
    for _ in range(20_000):   # bounded: polls every 5 ms
        with lock:
            count = done[0]
        if count >= total or not any(t.is_alive() for t in threads):
            break
        if count >= next_switch:
            mode = "redirect" if mode == "proxy" else "proxy"
            doc = admin_json(gw, "POST", f"/mode?mode={mode}")
            assert doc == {"listeners": [{"mode": mode, "name": "public"}]}
            switched += 1
            next_switch += 50
        threading.Event().wait(0.005)
    for t in threads:
        t.join(timeout=60)
    assert not failures, failures[:10]
    assert done[0] == total
    assert switched >= 6, switched
    assert kinds["redirected"] > 0 and kinds["proxied"] > 0, kinds

    # The CLI switch and GET /mode agree.
    out = subprocess.run([str(weir_bin), "mode", "redirect", "--listener", "public", "--admin", gw.admin],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"listeners": [{"mode": "redirect", "name": "public"}]}, out.stdout
    assert admin_json(gw, "GET", "/mode")["listeners"][0]["mode"] == "redirect"
    assert curl(gw.url("/x")).status == 307
    out = subprocess.run([str(weir_bin), "mode", "proxy", "--admin", gw.admin], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0 and json.loads(out.stdout)["listeners"][0]["mode"] == "proxy", (out.stdout, out.stderr)
    assert curl(gw.url("/x")).status == 200
    shown = subprocess.run([str(weir_bin), "mode", "--admin", gw.admin], capture_output=True, text=True, timeout=20)
    assert shown.returncode == 0 and json.loads(shown.stdout)["listeners"][0]["mode"] == "proxy", shown.stdout

    # Bad switches are refused and change nothing.
    assert admin_request(gw, "POST", "/mode?mode=sideways")[0] == 400
    assert admin_request(gw, "POST", "/mode?mode=redirect&listener=nosuch")[0] == 404
    assert admin_request(gw, "GET", "/mode?mode=redirect")[0] == 200
    assert admin_json(gw, "GET", "/mode")["listeners"][0]["mode"] == "proxy"
    assert "now in redirect mode" in gw.stderr() + gw.stdout()
