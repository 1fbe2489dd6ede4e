"""One view of load across gateways (issue 15, `[group] share_load`): two gateways on loopback, each
receiving half of a load toward server s1 (capacity 10) of a threshold pool (first level 0.5, second
level 0.2), exchange their requests in flight per server in their beacons (every 100 ms).

With share_load on, both see s1's effective load as the total of both halves, and the rule hands the
next request whose home is s1 to s2 exactly when the total reaches the first level; a gateway killed
without a goodbye stops counting after dead_after. With share_load off (beacons still flow, for
users), each sees only its own half and keeps the home server although the total is above the level.

Held requests are `?delay=` answers of the demo backend on raw sockets. A gateway keeps waiting for
an upstream answer after its client has gone, so at the end the test kills s1 (its own process):
the held requests then end at once (retries 0) and the gateways stop without a drain wait.
"""
from __future__ import annotations

import re
import socket
import time

import pytest

from conftest import Server, curl, wait_until

GROUP_SECRET = "e2e-group-secret-for-shared-load-0123456789"
HOLD_MS = 15_000          # longer than the test; the sockets are closed before it ends
POOL = {"policy": "threshold", "first_level": 0.5, "second_level": 0.2, "hash_key": "header:X-Client",
        "slow_start": "0s", "retries": 0}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_toml(own: int, me: str, other: str, other_port: int, share_load: bool) -> str:
    # Sharing off: the gateways still beacon each other (share_users), so "not shared" is not "not heard".
    share = "share_load = true" if share_load else "share_users = true"
    return "\n".join([
        "", "[group]", f'beacon = "127.0.0.1:{own}"', 'interval = "100ms"', "dead_after = 3", "rise = 2",
        f'secret = "{GROUP_SECRET}"', share, f'id = "{me}"',
        "", "[[group.member]]", f'id = "{other}"', f'beacon = "127.0.0.1:{other_port}"', 'role = "listener"', ""])


def start_pair(demo_backend, gateway, tmp_path, share_load: bool):
    """Backends s1, s2 (capacity 10 each) and gateways A and B in one group; (A, B, s1's backend)."""
    backends = [demo_backend("s1"), demo_backend("s2")]
    servers = [Server(b.name, b.address, {"capacity": 10}) for b in backends]
    port_a, port_b = free_udp_port(), free_udp_port()
    gws = []
    for me, other, own, theirs in (("gw-a", "gw-b", port_a, port_b), ("gw-b", "gw-a", port_b, port_a)):
        gws.append(gateway(pools={"p": servers}, admin="auto", workers=2, pool_options={"p": POOL},
                           timeouts={"upstream_response": "30s"},
                           global_extra={"state_dir": str(tmp_path / f"state-{me}")},
                           extra=group_toml(own, me, other, theirs, share_load)))
    return gws[0], gws[1], backends[0]


def served_by(gw, client: str, path: str = "/probe") -> str:
    r = curl(gw.url(path), "-H", f"X-Client: {client}", timeout=5)
    assert r.rc == 0 and r.status == 200, (r.status, r.stderr, r.body)
    return r.header("X-Served-By")


def home_on_s1(a, b) -> str:
    """A client value whose home is s1 on both gateways (nothing in flight: the rule keeps it home)."""
    for i in range(64):
        client = f"client-{i}"
        if served_by(a, client) == "s1" and served_by(b, client) == "s1":
            return client
    raise AssertionError("no client with home s1 among 64")


def s1(gw) -> dict:
    return gw.server_status("s1", pool="p")


def metric(gw, name: str, server: str) -> int:
    r = curl(f"http://{gw.admin}/metrics", timeout=5)
    assert r.status == 200, (r.status, r.body)
    m = re.search(rf'^{name}{{[^}}]*server="{server}"[^}}]*}} (\d+)$', r.body.decode(), re.M)
    assert m, f"no {name} for {server}"
    return int(m.group(1))


class Holds:
    """Requests held open at s1 through a gateway (raw sockets); `close` ends all of them."""

    def __init__(self):
        self.sockets: list[socket.socket] = []

    def add(self, gw, client: str, count: int):
        before = s1(gw)["in_flight"]
        for _ in range(count):
            s = socket.create_connection((gw.host, gw.port), timeout=5)
            s.sendall(f"GET /hold?delay={HOLD_MS} HTTP/1.1\r\nHost: t\r\nX-Client: {client}\r\n\r\n".encode())
            self.sockets.append(s)
        wait_until(lambda: s1(gw)["in_flight"] == before + count, 5, interval=0.02,
                   what=f"{before + count} requests in flight at s1")

    def close(self):
        for s in self.sockets:
            s.close()
        self.sockets.clear()


def beacons_from_other(gw) -> int:
    return gw.status()["group"]["beacons_accepted"]


def wait_view(gw, own: int, elsewhere: int, what: str):
    """Until s1's /status on `gw` says `own` in flight here, `elsewhere` at the other gateway, and the
    load the rule sees as their sum over capacity 10."""
    def seen():
        s = s1(gw)
        return s["in_flight"] == own and s["in_flight_elsewhere"] == elsewhere and \
            s["load"] == pytest.approx((own + elsewhere) / 10)
    wait_until(seen, 3, interval=0.02, what=what)


def test_shared_load_sums_both_halves_and_hands_off_at_the_first_level_of_the_total(demo_backend, gateway, tmp_path):
    a, b, backend = start_pair(demo_backend, gateway, tmp_path, share_load=True)
    client = home_on_s1(a, b)
    holds = Holds()
    try:
        # 2 + 2 in flight: total 0.4 on both, below the first level: home (s1) on both.
        holds.add(a, client, 2)
        holds.add(b, client, 2)
        wait_view(a, 2, 2, "A sees B's 2 requests")
        wait_view(b, 2, 2, "B sees A's 2 requests")
        assert served_by(a, client) == "s1" and served_by(b, client) == "s1"

        # One more at B: total 5 of 10 = 0.5, the first level: both hand the next request to s2
        # (lighter by 0.5 >= the second level), although each has only 2 or 3 of its own.
        holds.add(b, client, 1)
        wait_view(a, 2, 3, "A sees B's 3 requests")
        wait_view(b, 3, 2, "B still sees A's 2")
        assert served_by(a, client) == "s2" and served_by(b, client) == "s2"
        assert metric(a, "weir_server_in_flight_elsewhere", "s1") == 3
        assert metric(a, "weir_server_in_flight", "s1") == 2
        assert metric(b, "weir_server_in_flight_elsewhere", "s1") == 2

        # B killed without a goodbye: A stops counting its requests after dead_after (3 x 100 ms).
        b.proc.kill()
        b.proc.wait(timeout=5)
        killed = time.monotonic()
        wait_view(a, 2, 0, "B's requests no longer counted at A")
        dropped_after = time.monotonic() - killed
        assert dropped_after < 1.0, dropped_after
        assert served_by(a, client) == "s1"
        print(f"B's count dropped {dropped_after:.2f} s after the kill (deadline 0.30 s)")
    finally:
        holds.close()
        backend.kill()


def test_without_share_load_each_gateway_sees_only_its_half_and_keeps_home(demo_backend, gateway, tmp_path):
    a, b, backend = start_pair(demo_backend, gateway, tmp_path, share_load=False)
    client = home_on_s1(a, b)
    holds = Holds()
    try:
        # 4 + 4 in flight: 0.8 of s1 in all, but each gateway counts only its own 4.
        holds.add(a, client, 4)
        holds.add(b, client, 4)
        # Beacons do flow between them (share_users): several heard since the requests were held.
        for gw in (a, b):
            heard = beacons_from_other(gw)
            wait_until(lambda gw=gw, heard=heard: beacons_from_other(gw) >= heard + 3, 3, interval=0.02,
                       what="beacons from the other gateway")
        for gw in (a, b):
            wait_view(gw, 4, 0, "only its own half")
            assert metric(gw, "weir_server_in_flight_elsewhere", "s1") == 0
        # 0.4 < 0.5 on each: the next request stays at home on both.
        assert served_by(a, client) == "s1" and served_by(b, client) == "s1"
    finally:
        holds.close()
        backend.kill()
