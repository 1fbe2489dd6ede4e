"""Re-assignment after a failure and the availability question (source document 004), end to end:
`assign?failed=ID` after a kill never returns the dead server to that client and has it probed at
once (so it is known down in a fraction of the probe interval); a report alone never takes a server
down (a test server that answers its probes records when they arrive); `alive?server=ID`; and
examples/assign-client.py moving to another server when its own is killed mid-way.
"""
from __future__ import annotations

import http.client
import http.server
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO, Server, curl, wait_until
from stickyutil import PIN, admin_json, start_sticky_gateway, token_parts

ASSIGN = "/.well-known/weir/assign"
ALIVE = "/.well-known/weir/alive"
SLOW_HEALTH = {"type": "http", "interval": "5s", "timeout": "300ms", "rise": 2, "fall": 2, "path": "/health"}


def with_public_url(b) -> Server:
    return Server(b.name, b.address, {"public_url": f"http://127.0.0.1:{b.port}"})


def request(gw, path: str, cookie: str | None = None) -> tuple[int, dict | bytes]:
    """GET on the gateway's listener without a curl process (the loops here are timed)."""
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=5)
    try:
        conn.request("GET", path, headers={"Cookie": f"{PIN}={cookie}"} if cookie else {})
        r = conn.getresponse()
        body = r.read()
        if r.getheader("Content-Type") == "application/json":
            return r.status, json.loads(body)
        return r.status, body
    finally:
        conn.close()


def assign(gw, query: str = "", cookie: str | None = None) -> dict:
    status, doc = request(gw, ASSIGN + "?path=/banking/" + query, cookie)
    assert status == 200, (status, doc)
    return doc


def server_entry(gw, server_id: str) -> dict:
    return gw.server_status(server_id)


def test_reassign_after_a_kill_never_returns_the_dead_server_and_probes_it_at_once(demo_backend, gateway, tmp_path):
    backends = {b.name: b for b in (demo_backend(n) for n in ("s1", "s2", "s3"))}
    gw = start_sticky_gateway(gateway, tmp_path, [with_public_url(b) for b in backends.values()], admin="auto",
                              pool_options={"p": {"health": SLOW_HEALTH}})
    wait_until(lambda: all(server_entry(gw, s)["state"] == "up" for s in backends), 5, what="all up")
    mine = assign(gw)
    dead = mine["id"]
    backends[dead].kill()
    killed_at = time.monotonic()

    again = assign(gw, f"&failed={dead}", mine["token"])
    assert again["id"] != dead, again
    reported_at = time.monotonic()
    # Before this change the dead server came back for 4.5 s; now never, for this client, whatever it asks.
    # The report has the server probed at once: it is known down long before one 5 s interval (fall = 2).
    seen, reports, down_after = [], 1, None
    while time.monotonic() - reported_at < 2.0:
        seen.append(assign(gw, "", again["token"])["id"])
        seen.append(assign(gw, f"&failed={dead}", again["token"])["id"])
        reports += 1
        if down_after is None and server_entry(gw, dead)["state"] == "down":
            down_after = time.monotonic() - killed_at
    assert dead not in seen and len(seen) > 20, seen
    assert down_after is not None and down_after < 1.0, down_after     # ratio to fall × interval (10 s): < 0.1
    print(f"reported server down {down_after:.3f} s after the kill (fall x interval = 10 s)")
    assert "reported by a client (assign?failed=): probing it now" in gw.stderr()
    assert server_entry(gw, dead)["client_reports"] == reports
    assert all(server_entry(gw, s)["client_reports"] == 0 for s in backends if s != dead)
    # The session stayed the same through the moves (one user, not one per re-assignment).
    assert token_parts(again["token"])["session"] == token_parts(mine["token"])["session"]


class ProbeRecorder(http.server.BaseHTTPRequestHandler):
    """Answers everything 200; records when each weir-probe request arrived."""
    probes: list = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.headers.get("User-Agent") == "weir-probe":
            type(self).probes.append(time.monotonic())
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def probe_recorder():
    ProbeRecorder.probes = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ProbeRecorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_report_alone_never_takes_a_server_down_but_has_it_probed_at_once(demo_backend, gateway, tmp_path,
                                                                              probe_recorder):
    other = demo_backend("s2")
    port = probe_recorder.server_address[1]
    gw = start_sticky_gateway(gateway, tmp_path, [Server("rec", f"127.0.0.1:{port}"), with_public_url(other)],
                              admin="auto", pool_options={"p": {"health": {**SLOW_HEALTH, "interval": "20s"}}})
    wait_until(lambda: len(ProbeRecorder.probes) >= 1, 5, what="the first probe")
    time.sleep(0.3)
    before = len(ProbeRecorder.probes)

    sent = time.monotonic()
    assert request(gw, ASSIGN + "?failed=rec")[1]["id"] == "s2"
    arrived = wait_until(lambda: len(ProbeRecorder.probes) > before and ProbeRecorder.probes[before], 2,
                         interval=0.005, what="the requested probe")
    assert arrived - sent < 0.5, arrived - sent     # ratio to the 20 s interval: < 0.025
    print(f"requested probe arrived {arrived - sent:.4f} s after the report (interval 20 s)")

    # Many reports: counted, probed at most once per 100 ms, never marked down.
    burst_start = time.monotonic()
    for i in range(30):
        status, doc = request(gw, ASSIGN + "?failed=rec")
        assert status == 200 and doc["id"] == "s2", doc
        time.sleep(0.02)
    burst = time.monotonic() - burst_start
    time.sleep(0.3)
    probes = len(ProbeRecorder.probes) - before - 1
    print(f"{probes} probes for 30 reports in {burst:.3f} s")
    assert 1 <= probes <= burst / 0.1 + 1, (probes, burst)
    # The exclusion is this client's only: a client known by another pin still gets "rec".
    status, other_client = request(gw, ASSIGN + "?path=/banking/")
    assert status == 200 and other_client["id"] == "s2"
    got = {request(gw, ASSIGN + "?path=/banking/", other_client["token"])[1]["id"] for _ in range(4)}
    assert got == {"rec", "s2"}, got
    entry = server_entry(gw, "rec")
    assert entry["state"] == "up" and entry["healthy"] and entry["client_reports"] == 31, entry
    assert request(gw, ALIVE + "?server=rec") == (200, {"server": "rec", "available": True, "state": "up"})
    status, listing = request(gw, "/.well-known/weir/servers")
    assert {s["id"]: s["available"] for s in listing["servers"]} == {"rec": True, "s2": True}


def test_alive_answers_whether_a_server_is_available(demo_backend, gateway, tmp_path):
    backends = [demo_backend(n) for n in ("s1", "s2")]
    health = {**SLOW_HEALTH, "interval": "200ms", "timeout": "150ms"}
    gw = start_sticky_gateway(gateway, tmp_path, [with_public_url(b) for b in backends], admin="auto",
                              pool_options={"p": {"health": health}})
    r = curl(gw.url(ALIVE + "?server=s1"))
    assert r.status == 200 and r.header("Content-Type") == "application/json" and r.header("Cache-Control") == "no-store"
    assert json.loads(r.body) == {"server": "s1", "available": True, "state": "up"}
    admin_json(gw, "POST", "/servers/s2/drain")
    assert request(gw, ALIVE + "?server=s2") == (200, {"server": "s2", "available": False, "state": "drain"})
    backends[0].kill()
    wait_until(lambda: request(gw, ALIVE + "?server=s1")[1]["available"] is False, 5, what="s1 unavailable")
    assert request(gw, ALIVE + "?server=s1") == (200, {"server": "s1", "available": False, "state": "down"})
    assert request(gw, ALIVE + "?server=nope")[0] == 404
    status, body = request(gw, ALIVE)
    assert status == 400 and b"server=" in body, body


def test_alive_path_can_be_moved_or_turned_off(demo_backend, gateway, tmp_path):
    backends = [demo_backend("s1")]
    gw = start_sticky_gateway(gateway, tmp_path, backends, discovery={"alive_path": "/up"})
    assert request(gw, "/up?server=s1") == (200, {"server": "s1", "available": True, "state": "up"})
    off = start_sticky_gateway(gateway, tmp_path, backends, name="off", discovery={"alive_path": "off"})
    assert request(off, ALIVE + "?server=s1") == (200, b"s1\n")    # proxied, not answered


def test_the_example_client_moves_to_another_server_when_its_server_is_killed(demo_backend, gateway, procs, tmp_path):
    backends = {b.name: b for b in (demo_backend(n) for n in ("s1", "s2", "s3"))}
    gw = start_sticky_gateway(gateway, tmp_path, [with_public_url(b) for b in backends.values()], admin="auto",
                              pool_options={"p": {"health": SLOW_HEALTH}})
    count = 80
    client = procs.start([sys.executable, REPO / "examples" / "assign-client.py", "--gateway", gw.url("").rstrip("/"),
                          "--path", "/banking/", "--count", count, "--interval", 20, "--test-every", 60,
                          "--seconds", 30, "--timeout", 1], stdout=subprocess.PIPE, text=True)
    events, killed = [], None
    deadline = time.monotonic() + 40
    for line in client.stdout:
        event = json.loads(line)
        events.append(event)
        requests_seen = [e for e in events if e["event"] == "request"]
        if killed is None and len(requests_seen) == 20:
            killed = event["server"]
            backends[killed].kill()
        if event["event"] == "done" or time.monotonic() > deadline:
            break
    assert client.wait(timeout=10) == 0, events[-5:]
    done = events[-1]
    assert done["event"] == "done", events[-5:]
    # Every request answered; the one failure (a test message or the request it caught) led to one re-assignment.
    assert done["answered"] == count and done["lost"] == 0, done
    assert done["failed_tests"] + done["failed_requests"] == 1 and done["reassigned"] == 1, done
    assert killed is not None and done["server"] != killed, (killed, done)
    moved = [e for e in events if e["event"] == "assigned" and e["reported"]]
    assert len(moved) == 1 and moved[0]["reported"] == killed and moved[0]["server"] != killed, moved
    after = events[events.index(moved[0]):]
    assert all(e["server"] != killed for e in after if e["event"] in ("request", "test")), after
    numbers = [e["n"] for e in events if e["event"] == "request"]
    assert numbers == list(range(count)), numbers          # none skipped, none twice
    assert server_entry(gw, killed)["client_reports"] == 1
