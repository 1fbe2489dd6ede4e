"""Reload of conf.d (issue 12): SIGHUP, `weir reload` and `POST /reload` read the whole directory
again and swap it in at once, or change nothing when it is broken.

* 20 reloads under a bounded mixed load (keep-alive, new connections, TLS, 20 WebSockets) that add,
  remove and change servers, routes and the certificate path: nothing fails or is reset, every
  WebSocket stays open, and each change is in effect after its reload;
* a broken conf.d (a bad key, a certificate that does not load, an address already taken) keeps
  everything serving, and `weir reload` and the log name the file and key;
* a server that stays keeps its run-time state (drain, counters); a removed server's request in
  flight finishes; listeners come and go.
"""
from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import time

import pytest

from conftest import ADMIN_AUTH, ADMIN_TOKEN, can_connect, free_port, toml_value, wait_until
from loadloop import LoadLoop
from tlsutil import PKI, peer_certificate


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    p.weir = p.issue("weir", "weir.test", ["DNS:weir.test", "IP:127.0.0.1"])
    return p


class ReloadableGateway:
    """A gateway on a conf.d this test rewrites; `reload()` sends SIGHUP and waits for the outcome."""

    def __init__(self, weir_bin, procs, tmp_path, port: int, tls_port: int, admin_port: int):
        self.bin, self.dir = weir_bin, tmp_path / "conf.d"
        self.dir.mkdir()
        self.port, self.tls_port, self.admin_port = port, tls_port, admin_port
        self.state = tmp_path / "state"
        self.err = tmp_path / "weir.stderr"
        self.procs, self.proc = procs, None
        self.outcomes = 0

    def write(self, servers: dict, *, cert, key, extra_route: bool = False, extra_listener: int | None = None,
              weights: dict | None = None, workers: int = 2, broken: str = "", sticky_idle: str | None = None):
        """servers: {id: port} of pool "web"; pool "alt" (server b-alt) is always there, routed only with extra_route."""
        lines = ["[global]", f"workers = {workers}", 'access_log = "off"', 'drain_timeout = "5s"',
                 f'state_dir = "{self.state}"', "", "[timeouts]", 'upstream_connect = "2s"', 'upstream_response = "5s"',
                 "", "[admin]", f'address = "127.0.0.1:{self.admin_port}"', f"token = {toml_value(ADMIN_TOKEN)}",
                 "", "[[listener]]", 'name = "public"', f'address = "127.0.0.1:{self.port}"',
                 "", "[[listener]]", 'name = "secure"', f'address = "127.0.0.1:{self.tls_port}"',
                 "[listener.tls]", f'cert = "{cert}"', f'key = "{key}"']
        if extra_listener:
            lines += ["", "[[listener]]", 'name = "more"', f'address = "127.0.0.1:{extra_listener}"']
        lines += ["", "[[pool]]", 'name = "web"', 'policy = "round-robin"']
        for sid, port in servers.items():
            lines += ["[[pool.server]]", f'id = "{sid}"', f'address = "127.0.0.1:{port}"']
            if weights and sid in weights:
                lines.append(f"weight = {weights[sid]}")
        lines += ["", "[[pool]]", 'name = "alt"', "[[pool.server]]", 'id = "b-alt"', f'address = "127.0.0.1:{self.alt_port}"']
        if extra_route:
            lines += ["", "[[route]]", 'name = "extra"', 'path = "/extra/*"', 'pool = "alt"']
        if sticky_idle:
            lines += ["", "[sticky]", 'secret = "reload-test-secret-0123456789abcdefghij"',
                      "", "[[route]]", 'name = "bank"', 'path = "/banking/*"', 'pool = "web"',
                      "[[route.sticky]]", 'path = "/banking/*"', 'complete = ["/banking/logout"]', f'idle_timeout = "{sticky_idle}"']
        lines += ["", "[[route]]", 'name = "all"', 'path = "/"', 'pool = "web"']
        (self.dir / "10-weir.toml").write_text("\n".join(lines) + "\n" + broken)

    def start(self):
        with open(self.err, "wb") as err:
            self.proc = self.procs.start([self.bin, "run", "-c", self.dir], stdout=subprocess.DEVNULL, stderr=err)
        wait_until(lambda: b"weir: serving" in self.err.read_bytes() or self.proc.poll() is not None, 10, what="start")
        assert self.proc.poll() is None, self.stderr()
        wait_until(lambda: can_connect("127.0.0.1", self.port) and can_connect("127.0.0.1", self.admin_port), 10)

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def reload(self, expect_ok: bool = True) -> str:
        """SIGHUP, then the log line of its outcome."""
        os.kill(self.proc.pid, signal.SIGHUP)
        self.outcomes += 1
        wait_until(lambda: self._outcomes() >= self.outcomes, 15, what=f"reload outcome {self.outcomes}")
        line = [l for l in self.stderr().splitlines() if "SIGHUP:" in l][-1]
        assert ("reloaded (configuration" in line) == expect_ok, line
        return line

    def _outcomes(self) -> int:
        return sum(1 for l in self.stderr().splitlines() if "SIGHUP:" in l and ("reloaded (" in l or "reload FAILED" in l))

    def status(self) -> dict:
        return json.loads(self.admin("GET", "/status")[1])

    def admin(self, method: str, path: str) -> tuple[int, str]:
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        try:
            c.request(method, path, headers=ADMIN_AUTH)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def servers(self, pool: str = "web") -> list[str]:
        return [s["id"] for p in self.status()["pools"] if p["name"] == pool for s in p["servers"]]


def get(port: int, path: str = "/") -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", path, headers={"Connection": "close"})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture
def reloadable(weir_bin, procs, tmp_path, demo_backend, pki):
    def make(**write_args) -> tuple[ReloadableGateway, dict]:
        backends = {f"b{i}": demo_backend(f"b{i}") for i in range(1, 5)}
        alt = demo_backend("b-alt")
        gw = ReloadableGateway(weir_bin, procs, tmp_path, free_port(), free_port(), free_port())
        gw.alt_port = alt.port
        ports = {k: b.port for k, b in backends.items()}
        gw.write({"b1": ports["b1"], "b2": ports["b2"]}, cert=pki.weir.cert, key=pki.weir.key, **write_args)
        gw.start()
        return gw, ports
    return make


def answered_by(port: int, n: int = 12) -> set[str]:
    return {get(port)[1].decode().strip() for _ in range(n)}


def test_twenty_reloads_under_load_change_everything_and_drop_nothing(reloadable, pki, tmp_path):
    gw, ports = reloadable()
    second = pki.issue("weir-second", "weir.test", ["DNS:weir.test", "IP:127.0.0.1"])
    certs = [(pki.weir.cert, pki.weir.key, pki.weir.serial), (second.cert, second.key, second.serial)]
    # Each step: which servers pool "web" has, whether /extra/* is routed, which certificate, a weight.
    extras = ["b2", "b3", "b4"]
    with LoadLoop(url_plain=f"http://127.0.0.1:{gw.port}/", url_tls=f"https://127.0.0.1:{gw.tls_port}/",
                  ca_file=pki.ca.cert, keepalive=4, fresh=2, tls=2, websockets=20,
                  ws_url=f"http://127.0.0.1:{gw.port}/ws", max_seconds=150, max_requests=400_000) as loop:
        loop.wait_websockets_open(15)
        loop.wait_progress(200)
        for step in range(20):
            members = {"b1": ports["b1"]}
            for i, name in enumerate(extras):
                if (step >> i) & 1 == 0 or step % 5 == 4:
                    members[name] = ports[name]
            cert, key, serial = certs[step % 2 == 0]
            routed = step % 2 == 1
            gw.write(members, cert=cert, key=key, extra_route=routed, weights={"b1": 1 + step % 3})
            line = gw.reload()
            # each change is in effect after its reload
            assert f"configuration {step + 2})" in line, line
            assert sorted(gw.servers()) == sorted(members), (step, gw.servers(), line)
            assert answered_by(gw.port) <= set(members), step
            status, body = get(gw.port, "/extra/x")
            assert (body.decode().strip() == "b-alt") == routed, (step, status, body)
            assert int(peer_certificate(gw.tls_port, pki.ca.cert)["serialNumber"], 16) == serial, step
            loop.wait_progress(150)
        assert not loop.report().ws_errors, loop.report()
    report = loop.report()
    assert report.clean, report
    assert report.retried == 0, report
    assert report.requests >= 2000, report
    assert report.by_client.get("tls", 0) > 0 and report.by_client.get("fresh", 0) > 0, report
    assert gw.proc.poll() is None


def test_a_broken_reload_keeps_everything_serving_and_names_file_and_key(reloadable, pki, weir_bin, tmp_path):
    gw, ports = reloadable()
    config = gw.dir / "10-weir.toml"
    good = config.read_text()
    with LoadLoop(url_plain=f"http://127.0.0.1:{gw.port}/", url_tls=f"https://127.0.0.1:{gw.tls_port}/",
                  ca_file=pki.ca.cert, keepalive=2, fresh=1, tls=1, websockets=2,
                  ws_url=f"http://127.0.0.1:{gw.port}/ws", max_seconds=60, max_requests=100_000) as loop:
        loop.wait_websockets_open(10)
        # 1. a key with a bad value, through `weir reload` (it prints the outcome and exits 1)
        config.write_text(good.replace(f'address = "127.0.0.1:{ports["b2"]}"', 'address = "nowhere"'))
        run = subprocess.run([weir_bin, "reload", "--admin", f"127.0.0.1:{gw.admin_port}"], capture_output=True, text=True, timeout=30)
        assert run.returncode == 1, run
        assert "reload FAILED, still serving the previous configuration" in run.stderr, run.stderr
        assert "10-weir.toml" in run.stderr and "address" in run.stderr, run.stderr
        # 2. a certificate path that does not exist, through SIGHUP (the log names the file)
        config.write_text(good.replace(str(pki.weir.cert), str(tmp_path / "missing.pem")))
        line = gw.reload(expect_ok=False)
        assert "missing.pem" in line, line
        # 3. a new listener on an address already taken
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        config.write_text(good + f'\n[[listener]]\nname = "more"\naddress = "127.0.0.1:{taken.getsockname()[1]}"\n')
        line = gw.reload(expect_ok=False)
        assert f"127.0.0.1:{taken.getsockname()[1]}" in line, line
        taken.close()
        assert sorted(gw.servers()) == ["b1", "b2"]
        loop.wait_progress(100)
        # and a good one afterwards works
        config.write_text(good)
        status, body = gw.admin("POST", "/reload")
        assert status == 200 and "reloaded (configuration 2)" in body, (status, body)
        loop.wait_progress(100)
    report = loop.report()
    assert report.clean, report


def test_a_server_that_stays_keeps_its_state_and_a_removed_one_finishes_its_request(reloadable, pki):
    gw, ports = reloadable(workers=1)
    for _ in range(10):
        assert get(gw.port)[0] == 200
    before = {s["id"]: s for p in gw.status()["pools"] for s in p["servers"]}
    assert gw.admin("POST", "/servers/b1/drain")[0] == 200
    # a slow request to b2 (delay 1.5 s) is in flight while b2 is removed
    results = {}

    def slow():
        results["slow"] = get(gw.port, "/slow?delay=1500")

    import threading
    t = threading.Thread(target=slow)
    t.start()
    wait_until(lambda: any(s["in_flight"] > 0 for p in gw.status()["pools"] for s in p["servers"] if s["id"] == "b2"), 5)
    gw.write({"b1": ports["b1"], "b3": ports["b3"]}, cert=pki.weir.cert, key=pki.weir.key, workers=1)
    line = gw.reload()
    assert "servers added: b3 (pool web)" in line and "servers removed: b2 (pool web)" in line, line
    t.join(10)
    assert results["slow"][0] == 200 and results["slow"][1].strip() == b"b2", results
    after = {s["id"]: s for p in gw.status()["pools"] for s in p["servers"]}
    assert after["b1"]["state"] == "drain", after["b1"]
    assert after["b1"]["requests"] >= before["b1"]["requests"] > 0, (before["b1"], after["b1"])
    # b1 drains, b2 is gone: only b3 answers
    assert answered_by(gw.port) == {"b3"}


def test_listeners_come_and_go_with_a_reload(reloadable, pki):
    gw, ports = reloadable()
    extra = free_port()
    gw.write({"b1": ports["b1"], "b2": ports["b2"]}, cert=pki.weir.cert, key=pki.weir.key, extra_listener=extra)
    line = gw.reload()
    assert "listeners added: more" in line, line
    assert get(extra)[0] == 200
    gw.write({"b1": ports["b1"], "b2": ports["b2"]}, cert=pki.weir.cert, key=pki.weir.key)
    line = gw.reload()
    assert "listeners removed: more" in line, line
    wait_until(lambda: not can_connect("127.0.0.1", extra), 5, what="the removed listener to stop accepting")
    assert get(gw.port)[0] == 200


def test_pins_to_servers_that_stay_remain_valid_across_reloads(reloadable, pki):
    gw, ports = reloadable(workers=1, sticky_idle="10m")
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    c.request("GET", "/banking/start")
    r = c.getresponse()
    pinned = r.read().decode().strip()
    cookie = r.getheader("Set-Cookie").split(";")[0]
    c.close()
    assert cookie.startswith("weir_pin="), cookie
    other = "b2" if pinned == "b1" else "b1"
    # the pool changes around the pinned server (the other one goes, b3 comes) and so does the rule
    gw.write({pinned: ports[pinned], "b3": ports["b3"]}, cert=pki.weir.cert, key=pki.weir.key, workers=1, sticky_idle="20m")
    line = gw.reload()
    assert f"servers removed: {other} (pool web)" in line and "routes changed: bank" in line, line
    for _ in range(6):
        c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        c.request("GET", "/banking/next", headers={"Cookie": cookie})
        r = c.getresponse()
        assert r.read().decode().strip() == pinned
        c.close()
