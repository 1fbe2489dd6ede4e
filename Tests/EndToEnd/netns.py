"""A test network of Linux network namespaces for the multi-host tests (`weir peer`).

    with TestNet(["a", "b", "client"]) as net:
        net.run("a", ["ip", "addr"])                       # runs inside host a
        proc = net.popen("a", [WEIR, "demo-backend", ...])  # stopped by PID at the end

Layout: a namespace `weir-<pid>-br` holding bridge `br0`, and one namespace `weir-<pid>-<host>` per
host whose `eth0` is a veth into that bridge, with 198.51.100.<n>/24 (n = first, first + 1, ... in
the order given; first = 1 unless told) and loopback up. Nothing is created in the root namespace: the veth pairs are made inside
the bridge namespace with their host end placed straight into the host's namespace.

Cleanup (the context manager's exit, and atexit for a hard failure in between) stops the processes
started through `popen`, then deletes exactly the namespaces it created; deleting a namespace
removes its interfaces. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN); `require_netns()` skips the
test with a clear message otherwise.
"""
from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import wait_until

SUBNET = "198.51.100"
PREFIX = 24

# A client that asks `URL` every INTERVAL seconds for at most DURATION seconds (or until stdin closes
# or it is killed) and prints one line per attempt: "<monotonic seconds> <body or ERR:reason>". CLOCK_MONOTONIC
# is the same in every process, so the test can line the answers up with its own clock.
POLLER = r"""
import sys, time, urllib.request
url, interval, duration = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + duration
while time.monotonic() < end:
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=0.3) as r:
            answer = r.read(200).decode("ascii", "replace").strip() or "EMPTY"
    except Exception as error:
        answer = "ERR:" + str(getattr(error, "reason", error) or type(error).__name__).replace(" ", "_")[:60]
    print(f"{start:.3f} {answer}", flush=True)
    time.sleep(max(0.0, interval - (time.monotonic() - start)))
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=check)


def require_netns() -> None:
    """Skips the calling test unless this process may create network namespaces."""
    if os.geteuid() != 0:
        pytest.skip("network namespace tests need root (ip netns add); run them as root")
    probe = f"weir-{os.getpid()}-probe"
    try:
        result = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"cannot run iproute2 `ip`: {error}")
    if result.returncode != 0:
        pytest.skip(f"cannot create a network namespace (ip netns add: {result.stderr.strip()})")
    _ip("netns", "del", probe, check=False)


class TestNet:
    """The namespaces, bridge and veths of one test; removes all of them, and only them, at the end."""

    __test__ = False  # not a pytest test class

    def __init__(self, hosts: list[str], first: int = 1):
        tag = f"weir-{os.getpid()}"
        self.bridge_ns = f"{tag}-br"
        self.namespaces = {host: f"{tag}-{host}" for host in hosts}
        self.addresses = {host: f"{SUBNET}.{n}" for n, host in enumerate(hosts, start=first)}
        self._created: list[str] = []
        self._procs: list[subprocess.Popen] = []
        self._closed = False

    # -- building and removing

    def __enter__(self) -> "TestNet":
        atexit.register(self.close)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self._created.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _build(self) -> None:
        self._add_namespace(self.bridge_ns)
        _ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for host, ns in self.namespaces.items():
            self._add_namespace(ns)
            port = self.bridge_port(host)
            _ip("-n", self.bridge_ns, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("-n", self.bridge_ns, "link", "set", port, "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{self.addresses[host]}/{PREFIX}", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")

    def close(self) -> None:
        """Stops the processes started here, then deletes the namespaces made here. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for proc in self._procs:
            stop(proc)
        for name in reversed(self._created):
            _ip("netns", "del", name, check=False)
        self._created.clear()
        atexit.unregister(self.close)

    # -- using

    def bridge_port(self, host: str) -> str:
        """The bridge end of `host`'s veth (inside the bridge namespace; ≤ 15 characters)."""
        return f"p-{host}"[:15]

    def ns(self, host: str) -> str:
        return self.namespaces[host]

    def exec_prefix(self, host: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[host]]

    def run(self, host: str, argv: list[str], check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess:
        return subprocess.run(self.exec_prefix(host) + [str(a) for a in argv], capture_output=True,
                              text=True, timeout=timeout, check=check)

    def popen(self, host: str, argv: list[str], **kwargs) -> subprocess.Popen:
        """Starts `argv` inside `host`; it is stopped (by PID) when the network is closed."""
        kwargs.setdefault("stdout", subprocess.DEVNULL)
        kwargs.setdefault("stderr", subprocess.DEVNULL)
        proc = subprocess.Popen(self.exec_prefix(host) + [str(a) for a in argv], **kwargs)
        self._procs.append(proc)
        return proc

    def poller(self, host: str, url: str, interval: float = 0.05, duration: float = 30.0) -> subprocess.Popen:
        """A client polling `url` from `host` (see POLLER); read its stdout line by line."""
        return self.popen(host, ["python3", "-c", POLLER, url, str(interval), str(duration)],
                          stdout=subprocess.PIPE, text=True, bufsize=1)

    def link(self, host: str, up: bool) -> None:
        """Sets `host`'s eth0 up or down: down, it is a host that dropped off the network."""
        _ip("-n", self.namespaces[host], "link", "set", "eth0", "up" if up else "down")

    def move_address(self, address: str, src: str, dst: str) -> None:
        """Moves `address` (in SUBNET) from `src`'s eth0 to `dst`'s, announcing it from `dst`."""
        _ip("-n", self.namespaces[src], "addr", "del", f"{address}/{PREFIX}", "dev", "eth0")
        _ip("-n", self.namespaces[dst], "addr", "add", f"{address}/{PREFIX}", "dev", "eth0")
        self.run(dst, ["arping", "-q", "-U", "-c", "1", "-I", "eth0", address], check=False)

    def sysctl(self, host: str, key: str, value: str) -> None:
        """Sets a per-namespace sysctl (e.g. net.ipv4.ip_nonlocal_bind) inside `host` only."""
        self.run(host, ["sysctl", "-q", "-w", f"{key}={value}"])


class Answers:
    """Collects a poller's lines, (monotonic time, answer), in a background thread."""

    def __init__(self, poller: subprocess.Popen):
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(poller,), daemon=True)
        self._thread.start()

    def _read(self, poller: subprocess.Popen) -> None:
        for line in poller.stdout:
            stamp, _, answer = line.strip().partition(" ")
            with self._lock:
                self.lines.append((float(stamp), answer))

    def since(self, t: float) -> list[tuple[float, str]]:
        with self._lock:
            return [(s, a) for s, a in self.lines if s >= t]

    def first(self, answer: str, after: float) -> float | None:
        """When `answer` was first seen at or after `after`, if it was."""
        return next((s for s, a in self.since(after) if a == answer), None)


def stop(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """Ends `proc` by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def leftovers(tag: str) -> list[str]:
    """Namespaces whose names start with `tag` (a test's `weir-<pid>`): what cleanup must leave empty."""
    out = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(tag)]


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Polls `predicate` until truthy (returned) or `timeout` seconds pass (AssertionError)."""
    return wait_until(predicate, timeout, interval, what)