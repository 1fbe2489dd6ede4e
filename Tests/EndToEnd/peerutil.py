"""Helpers for the peer-module tests: a group of `weir peer` processes on loopback, each in front of
its own demo backend, with the group's configuration written by the test.

Every address is 127.0.0.1; ports are picked free. Processes are registered with the `procs`
fixture and stopped by PID.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from conftest import ADMIN_TOKEN, admin_status, can_connect, free_port, toml_value, wait_until

SECRET = "peer-group-test-secret-0123456789abcdef"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hop_token(sender: str, secret: str = SECRET, now: float | None = None) -> str:
    """A hop token as a peer makes it: sender.seconds.base64url(HMAC-SHA256(...)[:16])."""
    seconds = int(now if now is not None else time.time())
    mac = hmac.new(secret.encode(), f"weir-hop|{sender}|{seconds}".encode(), hashlib.sha256).digest()[:16]
    return f"{sender}.{seconds}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


@dataclass
class PeerHost:
    """One host of the group: its peer id, ports, its demo backend (the local application)."""
    id: str
    port: int
    admin_port: int
    beacon_port: int
    app: object = None                     # conftest.Backend
    confdir: Path | None = None
    proc: subprocess.Popen | None = None
    stderr_path: Path | None = None
    starts: int = 0
    options: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.address}{path}"

    def status(self, timeout: float = 3.0) -> dict:
        return admin_status("127.0.0.1", self.admin_port, timeout)

    def group(self) -> dict:
        return self.status()["group"]

    def member(self, member_id: str) -> dict:
        for m in self.group()["members"]:
            if m["id"] == member_id:
                return m
        raise AssertionError(f"{member_id} is not a member in {self.id}'s view")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path else ""

    def kill(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


class PeerGroup:
    """Writes each host's conf.d and starts, kills and restarts its `weir peer`."""

    def __init__(self, weir_bin, procs, tmp_path: Path, demo_backend, ids=("a", "b", "c"), *,
                 route_by: str = "proxy", capacity: int = 100, interval: str = "500ms", health_interval: str = "100ms",
                 listeners: list | None = None, per_host: dict | None = None, secret: str = SECRET, extra: str = ""):
        self.weir_bin, self.procs, self.tmp = weir_bin, procs, tmp_path
        self.route_by, self.capacity, self.interval, self.health_interval = route_by, capacity, interval, health_interval
        self.listeners = listeners or []      # extra [[group.member]] role = "listener": (id, beacon_port)
        self.secret = secret
        self.extra = extra                    # TOML appended to every host's conf.d (routes, [sticky], ...)
        self.hosts = {}
        # The applications first: a demo backend binds port 0, and the kernel could hand it a port
        # picked below for a peer that is not listening yet.
        apps = {i: demo_backend(f"app-{i}") for i in ids}
        taken = {app.port for app in apps.values()}

        def unique(pick):
            while (port := pick()) in taken:
                pass
            taken.add(port)
            return port

        for i in ids:
            host = PeerHost(i, unique(free_port), unique(free_port), unique(free_udp_port), options=(per_host or {}).get(i, {}))
            host.app = apps[i]
            self.hosts[i] = host

    def __getitem__(self, key) -> PeerHost:
        return self.hosts[key]

    def config(self, host: PeerHost) -> str:
        o = host.options
        lines = ["[global]", "workers = 1", 'access_log = "off"', 'drain_timeout = "2s"',
                 f"state_dir = {toml_value(str(self.tmp / ('state-' + host.id)))}",
                 "", "[timeouts]", 'upstream_connect = "1s"', 'upstream_response = "5s"',
                 "", "[[listener]]", 'name = "public"', f'address = "{host.address}"',
                 *([f"[listener.tls]", f"cert = {toml_value(o['tls']['cert'])}", f"key = {toml_value(o['tls']['key'])}"] if "tls" in o else []),
                 "", "[admin]", f'address = "127.0.0.1:{host.admin_port}"', f"token = {toml_value(ADMIN_TOKEN)}",
                 "", "[peer]", f'id = "{host.id}"', f'app = "{host.app.address}"', f"capacity = {o.get('capacity', self.capacity)}",
                 f'route_by = "{o.get("route_by", self.route_by)}"']
        for key in ("first_level", "second_level", "serves", "redirect_status"):
            if key in o:
                lines.append(f"{key} = {toml_value(o[key])}")
        lines += ["", "[peer.health]", 'type = "http"', f'interval = "{self.health_interval}"', 'timeout = "80ms"',
                  "rise = 1", "fall = 1", 'path = "/health"',
                  "", "[group]", f'beacon = "127.0.0.1:{host.beacon_port}"', f'interval = "{self.interval}"',
                  f"secret = {toml_value(o.get('secret', self.secret))}"]
        for other in self.hosts.values():
            if other.id == host.id:
                continue
            lines += ["", "[[group.member]]", f'id = "{other.id}"', f'beacon = "127.0.0.1:{other.beacon_port}"',
                      f'address = "{other.address}"', f'public_url = "http://{other.address}"']
        for lid, lport in self.listeners:
            lines += ["", "[[group.member]]", f'id = "{lid}"', f'beacon = "127.0.0.1:{lport}"', 'role = "listener"']
        return "\n".join(lines) + "\n\n" + self.extra + "\n"

    def start(self, host_id: str) -> PeerHost:
        host = self.hosts[host_id]
        host.starts += 1
        host.confdir = self.tmp / f"peer-{host.id}"
        host.confdir.mkdir(exist_ok=True)
        (host.confdir / "10-peer.toml").write_text(self.config(host))
        host.stderr_path = self.tmp / f"peer-{host.id}-{host.starts}.stderr"
        with open(host.stderr_path, "wb") as err:
            host.proc = self.procs.start([self.weir_bin, "peer", "-c", host.confdir], stdout=subprocess.DEVNULL, stderr=err)

        def up():
            if host.proc.poll() is not None:
                raise AssertionError(f"weir peer {host.id} exited {host.proc.returncode}: {host.stderr()}")
            return can_connect("127.0.0.1", host.port) and can_connect("127.0.0.1", host.admin_port)

        wait_until(up, 15, what=f"peer {host.id} to listen")
        return host

    def start_all(self):
        for i in self.hosts:
            self.start(i)
        self.wait_all_online()

    def wait_all_online(self, timeout: float = 10.0):
        def all_online():
            for host in self.hosts.values():
                if host.proc is None or host.proc.poll() is not None:
                    continue
                members = {m["id"]: m for m in host.group()["members"]}
                for other in self.hosts.values():
                    if other.id != host.id and other.proc is not None and other.proc.poll() is None:
                        if not members[other.id]["online"]:
                            return False
            return True

        wait_until(all_online, timeout, interval=0.05, what="every peer to see every other on-line")

    def set_app_load(self, host_id: str, load: str):
        """Makes host's application report `load` on /health (the peer probes it every health_interval)."""
        host = self.hosts[host_id]
        conn = http.client.HTTPConnection("127.0.0.1", host.app.port, timeout=3)
        try:
            conn.request("GET", f"/control?load={load}")
            assert conn.getresponse().status == 200
        finally:
            conn.close()

    def wait_load(self, host_id: str, predicate, timeout: float = 5.0):
        """Waits until every running peer (host itself included) sees host's load satisfy `predicate`."""
        def seen():
            for other in self.hosts.values():
                if other.proc is None or other.proc.poll() is not None:
                    continue
                if other.id == host_id:
                    load = other.group()["load"]
                else:
                    load = other.member(host_id)["load"]
                if load is None or not predicate(load):
                    return False
            return True

        wait_until(seen, timeout, interval=0.05, what=f"the group to see {host_id}'s new load")


def get(url: str, headers: dict | None = None, timeout: float = 5.0):
    """One GET without following redirects: (status, headers dict lowercased, body bytes)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        conn.request("GET", target, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()
