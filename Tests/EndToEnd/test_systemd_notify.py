"""systemd's notification protocol without systemd: the test binds the AF_UNIX datagram socket
that `$NOTIFY_SOCKET` names, starts `weir run` with it (and `$WATCHDOG_USEC`), and reads what
arrives: READY=1 with STATUS, RELOADING=1 with MONOTONIC_USEC then READY=1 around a SIGHUP,
STOPPING=1 at the drain, refreshed STATUS lines, WATCHDOG=1 pings; and, with the test-only fault
switch WEIR_TEST_FAULT blocking a worker, no more pings."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import Procs, can_connect, free_port, render_config, wait_until


class NotifySocket:
    """The datagram socket systemd would own; every message kept with its arrival time."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict]] = []
        self.lock = threading.Lock()
        self.running = True
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while self.running:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def close(self):
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()

    def snapshot(self) -> list[tuple[float, dict]]:
        with self.lock:
            return list(self.messages)

    def first(self, key: str, value: str | None = None, after: int = 0):
        """Index of the first message at or after `after` that sets `key` (to `value`), else None."""
        for i, (_, fields) in enumerate(self.snapshot()[after:], start=after):
            if key in fields and (value is None or fields[key] == value):
                return i
        return None

    def wait_for(self, key: str, value: str | None = None, after: int = 0, timeout: float = 10) -> int:
        """Waits for `first(key, value, after)` and returns it (index 0 is an answer too)."""
        wait_until(lambda: self.first(key, value, after) is not None, timeout, what=f"{key}={value or '*'}")
        return self.first(key, value, after)

    def pings(self, since: float, until: float) -> int:
        return sum(1 for t, f in self.snapshot() if f.get("WATCHDOG") == "1" and since <= t < until)


@pytest.fixture
def notify(tmp_path):
    s = NotifySocket(tmp_path / "notify.sock")
    yield s
    s.close()


def start_weir(weir_bin, procs, tmp_path, backend, notify, workers: int, fault: str | None = None):
    port = free_port()
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "00-weir.toml").write_text(render_config(
        port_host="127.0.0.1", port=port, pools={"p": [backend]}, routes=None, workers=workers,
        access_log="off", timeouts={}, limits={}, global_extra={"state_dir": str(tmp_path / "state"),
                                                                 "drain_timeout": "2s"},
        listener_extra={}, extra="", admin="off", pool_options=None, tls=None))
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, WATCHDOG_USEC="1000000")
    env.pop("WATCHDOG_PID", None)
    if fault:
        env["WEIR_TEST_FAULT"] = fault
    err = tmp_path / "weir.stderr"
    with open(err, "wb") as f:
        p = procs.start([weir_bin, "run", "-c", conf], env=env, stdout=subprocess.DEVNULL, stderr=f)
    wait_until(lambda: can_connect("127.0.0.1", port), 10, what="weir to listen")
    return p, err


def test_ready_reloading_stopping_status_and_watchdog_in_order(weir_bin, procs, tmp_path, demo_backend, notify):
    backend = demo_backend("n1")
    p, err = start_weir(weir_bin, procs, tmp_path, backend, notify, workers=2)
    ready = notify.wait_for("READY", "1")
    status = notify.snapshot()[ready][1].get("STATUS", "")
    assert status.startswith("serving 1 listener, ") and "of 1 servers up" in status, status

    # A STATUS refresh (every 5 s) and pings every 500 ms (WATCHDOG_USEC = 1 s) over the same window.
    t0 = time.monotonic()
    refresh = notify.wait_for("STATUS", after=ready + 1)
    assert "READY" not in notify.snapshot()[refresh][1] and "servers up" in notify.snapshot()[refresh][1]["STATUS"]
    assert notify.pings(t0, time.monotonic()) >= 3, notify.snapshot()

    before_hup = len(notify.snapshot())
    hup_time_us = int(time.monotonic() * 1_000_000)
    os.kill(p.pid, signal.SIGHUP)
    reloading = notify.wait_for("RELOADING", "1", after=before_hup)
    fields = notify.snapshot()[reloading][1]
    # MONOTONIC_USEC is CLOCK_MONOTONIC in µs, the clock Python's monotonic() reads on Linux.
    assert abs(int(fields["MONOTONIC_USEC"]) - hup_time_us) < 5_000_000, fields
    again = notify.wait_for("READY", "1", after=reloading + 1)
    assert "last reload ok" in notify.snapshot()[again][1].get("STATUS", ""), notify.snapshot()[again]

    os.kill(p.pid, signal.SIGTERM)
    stopping = notify.wait_for("STOPPING", "1", after=again + 1)
    assert p.wait(timeout=15) == 0
    order = [ready, reloading, again, stopping]
    assert order == sorted(order), order
    assert "systemd watchdog: WATCHDOG=1 every 500 ms" in err.read_text()


def test_a_blocked_worker_stops_the_watchdog_pings(weir_bin, procs, tmp_path, demo_backend, notify):
    backend = demo_backend("n2")
    p, err = start_weir(weir_bin, procs, tmp_path, backend, notify, workers=2, fault="block-worker-0-after-ms=2000")
    notify.wait_for("READY", "1")
    started = time.monotonic()
    wait_until(lambda: notify.pings(started - 10, time.monotonic()) >= 2, 5, what="pings before the fault")
    wait_until(lambda: b"blocking weir-worker-0 forever" in err.read_bytes(), 10, what="the fault to fire")
    # One ping may still be on its way (checked just before the block); none after that, over 3 s
    # (six ping intervals).
    time.sleep(1.2)
    window = time.monotonic()
    time.sleep(3.0)
    assert notify.pings(window, time.monotonic()) == 0, notify.snapshot()
    assert "weir-worker-0 did not turn" in err.read_text()
    assert p.poll() is None   # still alive: only systemd's watchdog would end it
    os.kill(p.pid, signal.SIGKILL)   # the blocked worker never drains
    p.wait(timeout=5)


def test_without_notify_socket_no_watchdog_and_a_malformed_fault_is_ignored(weir_bin, procs, tmp_path, demo_backend):
    """Without NOTIFY_SOCKET the watchdog stays off even with WATCHDOG_USEC; a malformed fault is ignored, said so."""
    backend = demo_backend("n3")
    port = free_port()
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "00-weir.toml").write_text(render_config(
        port_host="127.0.0.1", port=port, pools={"p": [backend]}, routes=None, workers=1, access_log="off",
        timeouts={}, limits={}, global_extra={"state_dir": str(tmp_path / "state")}, listener_extra={}, extra="",
        admin="off", pool_options=None, tls=None))
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_PID")}
    env.update(WATCHDOG_USEC="1000000", WEIR_TEST_FAULT="block-everything")
    err = tmp_path / "weir.stderr"
    with open(err, "wb") as f:
        p = procs.start([weir_bin, "run", "-c", conf], env=env, stdout=subprocess.DEVNULL, stderr=f)
    wait_until(lambda: can_connect("127.0.0.1", port), 10, what="weir to listen")
    wait_until(lambda: b"not understood" in err.read_bytes(), 5, what="the fault warning")
    assert "WEIR_TEST_FAULT=block-everything is not understood" in err.read_text()
    assert "systemd watchdog" not in err.read_text()
    Procs.stop(p)
