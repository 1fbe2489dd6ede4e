"""`weir check`, `weir run` with a broken configuration, and the SIGTERM drain."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time

import pytest

from conftest import ADMIN_TOKEN, RawConn, curl, free_port, wait_until

VALID = """
[global]
workers = 1
access_log = "off"
[[listener]]
name = "public"
address = "127.0.0.1:{port}"
[[pool]]
name = "p"
[[pool.server]]
id = "s1"
address = "127.0.0.1:{backend}"
[[route]]
name = "all"
pool = "p"
path = "/"
"""


def write_conf(directory, text: str, name: str = "00-weir.toml"):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)
    return directory


def run_weir(weir_bin, *args, timeout: float = 20):
    return subprocess.run([str(weir_bin), *map(str, args)], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, text=True)


# 17 -----------------------------------------------------------------------------------------

def test_check_valid_config(weir_bin, tmp_path):
    conf = write_conf(tmp_path / "ok", VALID.format(port=free_port(), backend=free_port()))
    p = run_weir(weir_bin, "check", "-c", conf)
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    assert "weir: configuration" in out and "is valid" in out
    assert "1 listener(s)" in out and "1 server(s)" in out


def test_check_invalid_config_names_file_and_key(weir_bin, tmp_path):
    text = VALID.format(port=free_port(), backend=free_port()).replace("workers = 1", "workers = 5000")
    text = text.replace('pool = "p"', 'pool = "nope"')
    conf = write_conf(tmp_path / "bad", text)
    p = run_weir(weir_bin, "check", "-c", conf)
    assert p.returncode == 1
    assert "is valid" not in p.stdout
    lines = p.stderr.splitlines()
    assert any(re.match(r"^\S*00-weir\.toml: global\.workers: .+", line) for line in lines), p.stderr
    assert any(re.match(r"^\S*00-weir\.toml: route\[0\]\.pool: .*nope", line) for line in lines), p.stderr


def test_check_reports_errors_from_the_right_file(weir_bin, tmp_path):
    conf = tmp_path / "split"
    write_conf(conf, VALID.format(port=free_port(), backend=free_port()), "00-main.toml")
    write_conf(conf, '[timeouts]\nupstream_response = "soon"\n', "10-timeouts.toml")
    p = run_weir(weir_bin, "check", "-c", conf)
    assert p.returncode == 1
    assert re.search(r"^\S*10-timeouts\.toml: timeouts\.upstream_response: .+", p.stderr, re.M), p.stderr
    assert "00-main.toml" not in p.stderr


def test_check_invalid_toml_syntax(weir_bin, tmp_path):
    conf = write_conf(tmp_path / "syntax", "[global\nworkers = 1\n")
    p = run_weir(weir_bin, "check", "-c", conf)
    assert p.returncode == 1
    assert "00-weir.toml" in p.stderr


def test_run_with_broken_config_exits_1_with_message(weir_bin, tmp_path):
    text = VALID.format(port=free_port(), backend=free_port()).replace("workers = 1", "workers = 5000")
    conf = write_conf(tmp_path / "bad", text)
    p = run_weir(weir_bin, "run", "-c", conf, timeout=20)
    assert p.returncode == 1
    assert re.search(r"^\S*00-weir\.toml: global\.workers: .+", p.stderr, re.M), p.stderr
    assert "weir: serving" not in p.stderr


def test_run_with_port_in_use_exits_1(weir_bin, tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        conf = write_conf(tmp_path / "busy", VALID.format(port=port, backend=free_port()))
        p = run_weir(weir_bin, "run", "-c", conf, timeout=20)
    assert p.returncode == 1
    assert f"127.0.0.1:{port}" in p.stderr, p.stderr


# 18 -----------------------------------------------------------------------------------------

class InFlight:
    """A gateway with an idle keep-alive connection and a slow request in flight, then SIGTERM."""

    def __init__(self, demo_backend, gateway, procs, tmp_path):
        self.b1 = demo_backend("b1")
        self.gw = gateway({"p": [self.b1]}, workers=2, global_extra={"drain_timeout": "10s"})
        # an idle keep-alive connection: the drain closes it rather than waiting for it
        self.idle = socket.create_connection(("127.0.0.1", self.gw.port), timeout=5)
        self.idle.sendall(b"GET /idle HTTP/1.1\r\nHost: t\r\n\r\n")
        got = b""
        while b"b1\n" not in got:
            data = self.idle.recv(4096)
            assert data, "idle connection closed early"
            got += data
        self.out = tmp_path / "slow.out"
        self.client = procs.start(["curl", "-sS", "--max-time", "20", "-o", self.out, "-w", "%{http_code}",
                                   self.gw.url("/slow?delay=1500")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # in flight once the backend has received it (its request counter counts each /stats call too)
        polls = [0]

        def backend_has_it():
            polls[0] += 1
            return self.b1.stats()["requests"] >= polls[0] + 2   # /idle + /slow + the stats calls so far

        wait_until(backend_has_it, 5, interval=0.02, what="the slow request to reach the backend")
        assert self.client.poll() is None
        os.kill(self.gw.pid, signal.SIGTERM)

    def close(self):
        self.idle.close()


def test_sigterm_drain_refuses_new_connections_and_exits_0(demo_backend, gateway, procs, tmp_path):
    f = InFlight(demo_backend, gateway, procs, tmp_path)
    try:
        # new connections are refused once the drain has begun
        wait_until(lambda: _refused(f.gw.port), 3, what="the listener to close")
        # the idle keep-alive connection is closed by the drain
        f.idle.settimeout(5)
        try:
            assert f.idle.recv(4096) == b""
        except ConnectionResetError:
            pass
        rc = f.gw.proc.wait(timeout=15)
        assert rc == 0, f.gw.stderr()
        f.client.communicate(timeout=15)
    finally:
        f.close()
    assert _refused(f.gw.port)
    assert "SIGTERM" in f.gw.stderr()
    # the gateway waited for the backend's answer to the request in flight before it exited
    assert '"GET /slow?delay=1500 HTTP/1.1" 200' in f.gw.stdout()


def test_sigterm_drain_delivers_in_flight_response(demo_backend, gateway, procs, tmp_path):
    f = InFlight(demo_backend, gateway, procs, tmp_path)
    try:
        stdout, stderr = f.client.communicate(timeout=15)
        assert f.gw.proc.wait(timeout=15) == 0, f.gw.stderr()
    finally:
        f.close()
    assert f.client.returncode == 0, stderr
    assert stdout == b"200"
    assert f.out.read_bytes() == b"b1\n"


def _refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def test_sigterm_on_idle_gateway_exits_quickly(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, workers=2)
    assert curl(gw.url("/")).status == 200
    started = time.monotonic()
    assert gw.terminate(timeout=10) == 0
    assert time.monotonic() - started < 5, "an idle gateway should not wait for the drain timeout"


def test_sigint_also_drains_and_exits_0(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]})
    assert curl(gw.url("/")).status == 200
    os.kill(gw.pid, signal.SIGINT)
    assert gw.proc.wait(timeout=10) == 0


def test_a_burst_of_stop_signals_drains_once_and_a_later_one_stops_at_once(demo_backend, gateway, procs, tmp_path):
    """Ctrl-C reaches the whole process group and wrappers pass signals on: a second signal in the
    same second still drains; one sent later means "stop now"."""
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, workers=1, global_extra={"drain_timeout": "30s"})
    client = procs.start(["curl", "-sS", "--max-time", "20", "-o", str(tmp_path / "slow.out"), "-w", "%{http_code}",
                          gw.url("/slow?delay=4000")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    polls = 0

    def slow_request_arrived():
        # Every /stats poll counts itself as a request (the tcp probes make none): the slow request
        # is there once the backend counts more requests than our own polls.
        nonlocal polls
        polls += 1
        return b1.stats()["requests"] - polls >= 1

    wait_until(slow_request_arrived, 5, interval=0.05, what="the slow request to reach the backend")
    first = time.monotonic()
    os.kill(gw.pid, signal.SIGTERM)
    os.kill(gw.pid, signal.SIGTERM)              # the same stop, twice at once
    wait_until(lambda: "SIGTERM: draining" in gw.stderr(), 5, what="the drain to start")
    assert gw.proc.poll() is None, "a burst of signals must not cut the drain short"
    assert gw.stderr().count("SIGTERM: draining") == 1 and "stopping now" not in gw.stderr(), gw.stderr()
    # "Later" is defined by time (1 s after the first signal): this wait is the behaviour under test.
    time.sleep(max(0.0, first + 1.3 - time.monotonic()))
    assert gw.proc.poll() is None and "stopping now" not in gw.stderr(), "the drain ended before the slow request did"
    os.kill(gw.pid, signal.SIGTERM)              # a later one: stop now
    assert gw.proc.wait(timeout=5) == 0
    assert "stopping now" in gw.stderr()
    client.communicate(timeout=20)


def test_admin_reads_a_chunked_request_body_to_its_end_then_answers(demo_backend, gateway):
    """The admin listener steps over a request body of any framing (here chunked, with a trailer)
    before answering, and names the status with its registered phrase."""
    b1 = demo_backend("b1")
    gw = gateway({"p": [b1]}, admin="auto", pool_options={"p": {"health": {"type": "none"}}})
    host, _, port = gw.admin.rpartition(":")
    with RawConn(host, int(port)) as c:
        c.send(b"POST /servers/b1/drain HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
               + f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
               + b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n")
        r = c.read_response()
        assert r.status == 200 and b'"state":"drain"' in r.body, (r.raw_head, r.body)
        assert c.is_closed()
    with RawConn(host, int(port)) as c:
        c.send(f"DELETE /status HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode())
        r = c.read_response()
        assert r.status == 405 and r.reason == "Method Not Allowed", r.raw_head
