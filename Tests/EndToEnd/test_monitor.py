"""Issue 11, document 003 (client server model): the intermediary asks a monitoring server, and
rewrites the addresses of every server of the pool.

- A `[pool.monitor]` (a small http.server here) drives the balancing: it says b is loaded 0.9, so the
  threshold policy sends b's requests elsewhere, and c is down, so c gets nothing. Then it says every
  server is down (refused: probes reach them), answers 500, then garbage, then dies: each failure is
  counted and logged once (rate-limited), nothing is
  marked down, and once its last good answer is older than max_age the probes alone decide again.
- Another Weir's admin `GET /status` serves as the monitor (a server drained there is drained here).
- A body and Location/Content-Location/Refresh/Link fields from one server that name another server
  of the pool (its address or public URL) come back naming the gateway.
"""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import ADMIN_AUTH, Server, curl, wait_until


class MonitorServer:
    """A loopback monitoring endpoint: `mode` is "good" (the JSON `doc`), "500", "garbage"; `close()`
    stops it (connections are then refused). Bounded: it stops itself after 120 s."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.mode = "good"
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                if outer.mode == "500":
                    body, status = b"oops\n", 500
                elif outer.mode == "garbage":
                    body, status = b"<html>not json</html>", 200
                else:
                    body, status = json.dumps(outer.doc).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.timer = threading.Timer(120, self.close)
        self.timer.daemon = True
        self.timer.start()
        self.closed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/monitor"

    def close(self):
        if not self.closed:
            self.closed = True
            self.httpd.shutdown()
            self.httpd.server_close()
            self.timer.cancel()


def served_by(gw, count: int) -> dict:
    """`count` requests with distinct paths (threshold hash_key = path: each server is home for some)."""
    seen: dict = {}
    for i in range(count):
        r = curl(gw.url(f"/item/{i}"))
        assert r.status == 200, r
        name = r.header("X-Served-By")
        seen[name] = seen.get(name, 0) + 1
    return seen


def pool_entry(gw, name: str = "p") -> dict:
    return next(p for p in gw.status()["pools"] if p["name"] == name)


def monitor_failure_lines(gw) -> list:
    return [line for line in gw.stderr().splitlines() if "weir: monitor" in line and "failed" in line]


def test_monitor_drives_balancing_and_its_failures_are_ignored(demo_backend, gateway):
    a, b, c = demo_backend("a"), demo_backend("b"), demo_backend("c")
    monitor = MonitorServer({"servers": {"a": {"load": 0.1, "state": "up"}, "b": {"load": 0.9},
                                         "c": {"load": 0.0, "state": "down"}, "zz": {"load": 0.5}}})
    try:
        gw = gateway(pools={"p": [a, b, c]}, admin="auto", pool_options={"p": {
            "policy": "threshold", "hash_key": "path", "slow_start": "0s",
            "health": {"type": "http", "interval": "300ms", "timeout": "200ms"},
            "monitor": {"url": monitor.url, "interval": "300ms", "timeout": "200ms", "max_age": "1500ms"}}})
        wait_until(lambda: gw.server_status("b")["reported_load"] == 0.9 and gw.server_status("c")["state"] == "down",
                   10, what="the monitor's reports")
        # b is loaded, c is down: every request is served by a.
        assert served_by(gw, 30) == {"a": 30}
        entry = pool_entry(gw)["monitor"]
        assert entry["url"] == monitor.url and entry["failures"] == 0 and entry["last_error"] is None
        assert entry["last_success_age_ms"] is not None and entry["last_success_age_ms"] < 1500
        assert entry["unknown_ids"] >= 1 and entry["polls"] >= 1

        # An answer that takes the whole pool down while probes reach it: its states are ignored.
        monitor.doc = {"servers": {"a": {"load": 0.1, "state": "down"}, "b": {"load": 0.9, "state": "down"},
                                   "c": {"state": "down"}}}
        wait_until(lambda: "every server is down" in (pool_entry(gw)["monitor"]["last_error"] or ""), 5,
                   what="an all-down answer refused")
        assert gw.server_status("a")["state"] == "up" and gw.server_status("b")["state"] == "up"
        assert served_by(gw, 10) == {"a": 10}

        # Non-200, then garbage: counted, ignored, not logged again; the reports still hold until max_age.
        monitor.mode = "500"
        wait_until(lambda: pool_entry(gw)["monitor"]["last_error"] == "status 500", 5, what="a 500 counted")
        monitor.mode = "garbage"
        wait_until(lambda: "not JSON" in (pool_entry(gw)["monitor"]["last_error"] or ""), 5, what="garbage counted")
        # Once the last good answer is older than max_age: b's load and c's down have expired.
        wait_until(lambda: gw.server_status("c")["state"] == "up" and gw.server_status("b")["load"] < 0.5,
                   10, what="the monitor's reports to expire")
        spread = served_by(gw, 30)
        assert set(spread) == {"a", "b", "c"}, spread

        # The monitor dies: refused connections are counted; nothing is marked down.
        failures = pool_entry(gw)["monitor"]["failures"]
        monitor.close()
        wait_until(lambda: pool_entry(gw)["monitor"]["failures"] >= failures + 3, 5, what="refused polls counted")
        assert all(s["state"] == "up" and s["healthy"] for s in pool_entry(gw)["servers"])
        assert set(served_by(gw, 30)) == {"a", "b", "c"}
        entry = pool_entry(gw)["monitor"]
        assert entry["last_error"] and entry["last_success_age_ms"] > 1500
        # Rate-limited: one line for the whole failing stretch (at most one per 30 s).
        lines = monitor_failure_lines(gw)
        assert len(lines) == 1 and "every server is down" in lines[0] and "ignored, probes decide" in lines[0], lines
        assert "its state for server c expired" in gw.stderr()
    finally:
        monitor.close()


def test_another_weirs_status_serves_as_the_monitor(demo_backend, gateway, tmp_path):
    a, b = demo_backend("a"), demo_backend("b")
    upstream = gateway(pools={"p": [a, b]}, admin="auto")
    host, _, port = upstream.admin.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("POST", "/servers/b/drain", headers=ADMIN_AUTH)
    assert conn.getresponse().status == 200
    conn.close()
    # Its own state_dir: the upstream's drain is kept in the shared one, and b must be drained by the monitor.
    gw = gateway(pools={"p": [a, b]}, admin="auto", global_extra={"state_dir": str(tmp_path / "monitor-state")},
                 pool_options={"p": {"monitor": {"url": f"http://{upstream.admin}/status", "interval": "300ms",
                                                 "timeout": "200ms"}}})
    wait_until(lambda: gw.server_status("b")["state"] == "drain", 10, what="b drained through the other Weir")
    assert served_by(gw, 10) == {"a": 10}
    entry = pool_entry(gw)["monitor"]
    assert entry["failures"] == 0 and entry["unknown_ids"] == 0


def test_bodies_and_fields_naming_any_server_of_the_pool_are_rewritten(demo_backend, gateway):
    a, b = demo_backend("a"), demo_backend("b")
    b_public = "http://b.public.example"
    gw = gateway(pools={"p": [Server("a", a.address), Server("b", b.address, {"public_url": b_public + "/"})]},
                 pool_options={"p": {"rewrite_body_types": ["application/wsdl+xml"]}})
    body = (f'<definitions><service><port><address location="{a.url}/svc"/></port>'
            f'<port><address location="{b.url}/svc?wsdl"/></port><doc>{b_public}/doc</doc></service></definitions>')
    query = urllib.parse.urlencode({
        "type": "application/wsdl+xml", "body": body,
        "location": f"{b.url}/moved", "refresh": f"5; url={a.url}/next",
        "link": f"<{b.url}/l>; rel=next, <http://other.example/x>; rel=stylesheet"}, quote_via=urllib.parse.quote)
    me = f"http://{gw.address}"
    answered = set()
    for _ in range(4):   # round robin: both servers answer
        r = curl(gw.url(f"/wsdl?{query}"))
        assert r.status == 200, r
        answered.add(r.header("X-Served-By"))
        text = r.body.decode()
        assert text == (f'<definitions><service><port><address location="{me}/svc"/></port>'
                        f'<port><address location="{me}/svc?wsdl"/></port><doc>{me}/doc</doc></service></definitions>'), text
        assert r.header("Location") == f"{me}/moved"
        assert r.header("Refresh") == f"5; url={me}/next"
        assert r.header("Link") == f"<{me}/l>; rel=next, <http://other.example/x>; rel=stylesheet"
    assert answered == {"a", "b"}
    # A type that is not listed keeps its body; its fields are still rewritten.
    plain = curl(gw.url("/plain?" + urllib.parse.urlencode({"body": f"{b.url}/x", "refresh": f"1;url={b.url}/"},
                                                           quote_via=urllib.parse.quote)))
    assert plain.body.decode() == f"{b.url}/x" and plain.header("Refresh") == f"1;url={me}/"
