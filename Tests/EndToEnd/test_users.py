"""The register of users counts users (issue 11, documents 001 and 000): a pin counts as a user only
once its client has presented it back; cookieless requests and `/assign` answers that never come back
are candidates that expire quickly. The server list's `users` and the admin register agree, exactly.
Two gateway instances with `[group] share_users` count each other's users through their beacons.

Every gateway runs one route "/" to pool "p" with a cookie rule on "/banking/*" (complete:
"/banking/logout") and a source-address rule on "/shop/*".
"""
from __future__ import annotations

import json
import re
import socket
import time

from conftest import curl, wait_until
from stickyutil import BANKING, PIN, SECRET, register, sticky_extra, token_parts

SERVERS = "/.well-known/weir/servers"
ASSIGN = "/.well-known/weir/assign"
GROUP_SECRET = "e2e-group-secret-for-shared-users-0123456789"
RULES = [BANKING, {"path": "/shop/*", "by": "source", "complete": ["/shop/done"]}]
IDS = ("s1", "s2", "s3")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(gateway, tmp_path, backends, name="gw", sticky=None, group: str = ""):
    routes = [{"name": "all", "pool": "p", "path": "/", "sticky": RULES}]
    table = {"secret": SECRET, "unconfirmed_timeout": "4s", **(sticky or {})}
    return gateway(pools={"p": backends}, routes=[], admin="auto",
                   global_extra={"state_dir": str(tmp_path / f"state-{name}")},
                   extra=sticky_extra(routes, table) + group)


def served_by(r) -> str:
    assert r.rc == 0 and r.status == 200, (r.status, r.stderr, r.body)
    return r.header("X-Served-By")


def listed_users(gw) -> dict:
    r = curl(gw.url(SERVERS + "?path=/banking/"))
    assert r.status == 200, (r.status, r.body)
    return {s["id"]: s["users"] for s in json.loads(r.body)["servers"]}


def registered(gw) -> dict:
    """Per server: confirmed pins here, users elsewhere, and `users` as the list counts them."""
    doc = register(gw)
    return {s["id"]: s for s in doc["servers"]}


def assert_counts(gw, expected: dict):
    """The server list, the admin register's users and its confirmed pins all say `expected`."""
    want = {sid: expected.get(sid, 0) for sid in IDS}
    reg = registered(gw)
    assert listed_users(gw) == want, (listed_users(gw), want)
    assert {sid: reg[sid]["users"] for sid in IDS} == want, reg
    assert {sid: reg[sid]["pinned_sessions"] + reg[sid]["users_elsewhere"] for sid in IDS} == want, reg


def server_gauge(gw, name: str) -> dict:
    """Server id -> the value of the per-server gauge `name` on the gateway's /metrics."""
    r = curl(f"http://{gw.admin}/metrics")
    assert r.status == 200, (r.status, r.body)
    found = re.findall(rf'^{name}{{[^}}]*server="([^"]+)"[^}}]*}} (\d+)$', r.body.decode(), re.M)
    return {sid: int(v) for sid, v in found}


def jar_client(gw, tmp_path, name: str, steps: int = 2) -> str:
    """A browser-like client (curl's cookie jar) entering /banking/ and doing `steps` requests; its server."""
    jar = tmp_path / f"{name}.jar"
    args = ["-c", str(jar), "-b", str(jar)]
    home = served_by(curl(gw.url("/banking/"), *args))
    for i in range(steps):
        assert served_by(curl(gw.url(f"/banking/step{i}"), *args)) == home
    return home


def test_users_are_exact_across_cookie_jar_cookieless_and_assign_clients(demo_backend, gateway, tmp_path):
    backends = [demo_backend(n) for n in IDS]
    gw = start(gateway, tmp_path, backends)
    expected = {}

    # Five curls without a cookie jar: five pins handed out, none presented back: no user.
    for i in range(5):
        served_by(curl(gw.url(f"/banking/page{i}")))
    assert_counts(gw, {})
    assert register(gw)["unconfirmed_pins"] == 5

    # Three /assign answers nobody uses: no user either.
    for _ in range(3):
        r = curl(gw.url(ASSIGN + "?path=/banking/"))
        assert r.status == 200
    assert_counts(gw, {})
    assert register(gw)["unconfirmed_pins"] == 8

    # An /assign token presented back as the pin cookie: one user on its server.
    doc = json.loads(curl(gw.url(ASSIGN + "?path=/banking/")).body)
    for i in range(2):
        r = curl(gw.url(f"/banking/t{i}"), "-H", f"Cookie: {PIN}={doc['token']}")
        assert served_by(r) == doc["id"]
    expected[doc["id"]] = expected.get(doc["id"], 0) + 1
    assert_counts(gw, expected)

    # Two cookie-jar clients: a user each, once their second request carries the pin.
    for name in ("jar1", "jar2"):
        home = jar_client(gw, tmp_path, name)
        expected[home] = expected.get(home, 0) + 1
    assert_counts(gw, expected)

    # A source-address client: its first request is a candidate, its second makes it a user.
    home = served_by(curl(gw.url("/shop/")))
    assert_counts(gw, expected)
    assert served_by(curl(gw.url("/shop/cart"))) == home
    expected[home] = expected.get(home, 0) + 1
    assert_counts(gw, expected)
    assert sum(expected.values()) == 4

    # The candidates go after unconfirmed_timeout (4 s); the users stay.
    wait_until(lambda: register(gw)["unconfirmed_pins"] == 0, 10, interval=0.2, what="candidates expired")
    assert_counts(gw, expected)

    # Completing transactions ends users: the jar client logs out, the source client is done.
    jar = tmp_path / "jar1.jar"
    logout_home = served_by(curl(gw.url("/banking/logout"), "-c", str(jar), "-b", str(jar)))
    expected[logout_home] -= 1
    assert served_by(curl(gw.url("/shop/done"))) == home
    expected[home] -= 1
    assert_counts(gw, expected)
    assert sum(expected.values()) == 2


def test_a_flood_of_cookieless_clients_does_not_push_out_users(demo_backend, gateway, tmp_path):
    backends = [demo_backend(n) for n in IDS]
    gw = start(gateway, tmp_path, backends, sticky={"unconfirmed_table_size": 3, "source_table_size": 10})
    home = jar_client(gw, tmp_path, "real")
    for i in range(12):
        served_by(curl(gw.url(f"/banking/flood{i}")))
    doc = register(gw)
    assert doc["unconfirmed_pins"] == 3 and doc["unconfirmed_evicted"] == 9, doc
    assert_counts(gw, {home: 1})


def group_toml(own: int, me: str, other: str, other_port: int) -> str:
    return "\n".join([
        "", "[group]", f'beacon = "127.0.0.1:{own}"', 'interval = "100ms"', "dead_after = 3", "rise = 2",
        f'secret = "{GROUP_SECRET}"', "share_users = true", f'id = "{me}"',
        "", "[[group.member]]", f'id = "{other}"', f'beacon = "127.0.0.1:{other_port}"', 'role = "listener"', ""])


def test_two_gateways_share_their_users_through_beacons(demo_backend, gateway, tmp_path):
    backends = [demo_backend(n) for n in IDS]
    port_a, port_b = free_udp_port(), free_udp_port()
    gw_a = start(gateway, tmp_path, backends, name="a", group=group_toml(port_a, "gw-a", "gw-b", port_b))
    gw_b = start(gateway, tmp_path, backends, name="b", group=group_toml(port_b, "gw-b", "gw-a", port_a))
    on_a, on_b = {}, {}
    for name in ("a1", "a2"):
        home = jar_client(gw_a, tmp_path, name)
        on_a[home] = on_a.get(home, 0) + 1
    home = jar_client(gw_b, tmp_path, "b1")
    on_b[home] = on_b.get(home, 0) + 1
    for i in range(4):          # cookieless requests on both: candidates only, counted nowhere
        served_by(curl(gw_a.url(f"/banking/x{i}")))
        served_by(curl(gw_b.url(f"/banking/x{i}")))
    total = {sid: on_a.get(sid, 0) + on_b.get(sid, 0) for sid in IDS}
    started = time.monotonic()
    for gw in (gw_a, gw_b):
        wait_until(lambda gw=gw: listed_users(gw) == total, 5, interval=0.05, what="users shared through beacons")
    lag = time.monotonic() - started
    for gw, own in ((gw_a, on_a), (gw_b, on_b)):
        assert_counts(gw, total)
        reg = registered(gw)
        assert {sid: reg[sid]["pinned_sessions"] for sid in IDS} == {sid: own.get(sid, 0) for sid in IDS}, reg
        # /metrics: this gateway's pins, and the other's as pins_elsewhere.
        other = on_b if own is on_a else on_a
        assert server_gauge(gw, "weir_server_pins_active") == {sid: own.get(sid, 0) for sid in IDS}
        assert server_gauge(gw, "weir_server_pins_elsewhere") == {sid: other.get(sid, 0) for sid in IDS}
    group = gw_a.status()["group"]
    assert group["id"] == "gw-a" and group["beacons_sent"] > 0, group
    member = next(m for m in group["members"] if m["id"] == "gw-b")
    assert member["online"], member

    # B goes away without a goodbye: after dead_after (3 x 100 ms) A counts only its own users.
    gw_b.proc.kill()
    gw_b.proc.wait(timeout=5)
    killed = time.monotonic()
    wait_until(lambda: listed_users(gw_a) == {sid: on_a.get(sid, 0) for sid in IDS}, 3, interval=0.05,
               what="B's users dropped after its deadline")
    dropped_after = time.monotonic() - killed
    assert dropped_after < 1.5, dropped_after
    assert_counts(gw_a, on_a)
    print(f"shared in {lag:.2f} s; dropped {dropped_after:.2f} s after the kill (deadline 0.30 s)")
