"""Services moved to meet capacity (source document 000, Grex; the third embodiment of 002).

* `spill_level` on a route: the dedicated pool overflows to its spill pool once every server is at
  that level (not only at capacity), and only while the spill pool is itself below it.
* `can_serve` on a server of another pool: while the /banking servers stay above their lend level
  for `lend_after`, a /securities server that can serve /banking/* is lent to the banking pool and
  takes new /banking transactions; it is given back once the banking load has stayed below
  `return_level` for `lend_after`. Pins made before, during and after stay where they are.

The demo backends report their load in the `Weir-Load` header of their health answers; a test sets
it with `GET /control?load=X` and waits for /status to show it.
"""
from __future__ import annotations

import http.client
import json
import time
from collections import Counter

import pytest

from conftest import Server, curl, wait_until
from stickyutil import PIN, SECRET, pin_from, sticky_extra, token_parts

HEALTH = {"type": "http", "interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 2, "path": "/health"}
SERVERS = "/.well-known/weir/servers"


def get(gw, path: str, token: str | None = None):
    """One GET on a new connection (with the pin cookie when given): (status, served_by, headers)."""
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Cookie": f"{PIN}={token}"} if token else {})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-Served-By"), resp.getheaders()
    finally:
        conn.close()


def served(gw, path: str, n: int) -> Counter:
    counts: Counter = Counter()
    for _ in range(n):
        status, by, _ = get(gw, path)
        assert status == 200, (path, status)
        counts[by] += 1
    return counts


def set_load(backend, load: str):
    assert curl(f"{backend.url}/control?load={load}").status == 200


def wait_load(gw, server_id: str, load: float):
    wait_until(lambda: gw.server_status(server_id).get("reported_load") == pytest.approx(load), 5, 0.02,
               what=f"{server_id} to report {load}")


def pool_entry(gw, name: str) -> dict:
    return next(p for p in gw.status()["pools"] if p["name"] == name)


# --------------------------------------------------------------------------------------------
# spill_level


def test_spill_at_the_configured_level_and_only_while_the_spill_pool_is_below_it(demo_backend, gateway):
    dedicated, overflow = demo_backend("dedicated", report_load="0.5"), demo_backend("overflow", report_load="0.1")
    options = {"policy": "least-load", "slow_start": "0s", "health": HEALTH}
    gw = gateway({"own": [dedicated], "spare": [overflow]},
                 routes=[{"name": "r", "path": "/", "pool": "own", "spill": "spare", "spill_level": 0.6}],
                 admin="auto", pool_options={"own": options, "spare": options})
    wait_load(gw, "dedicated", 0.5)
    wait_load(gw, "overflow", 0.1)
    assert served(gw, "/", 10) == Counter({"dedicated": 10})
    # At the spill level (0.6 ≤ 0.7 < capacity): the spill pool takes the requests.
    set_load(dedicated, "0.7")
    wait_load(gw, "dedicated", 0.7)
    assert served(gw, "/", 10) == Counter({"overflow": 10})
    # The spill pool itself at the level: it is not used, the dedicated pool keeps them.
    set_load(overflow, "0.65")
    wait_load(gw, "overflow", 0.65)
    assert served(gw, "/", 10) == Counter({"dedicated": 10})
    set_load(overflow, "0.2")
    wait_load(gw, "overflow", 0.2)
    assert served(gw, "/", 10) == Counter({"overflow": 10})
    # Below the level again: home.
    set_load(dedicated, "0.3")
    wait_load(gw, "dedicated", 0.3)
    assert served(gw, "/", 10) == Counter({"dedicated": 10})


# --------------------------------------------------------------------------------------------
# Lending


def lending_gateway(gateway, tmp_path, b1, b2, s1):
    options = {"policy": "least-load", "slow_start": "0s", "health": HEALTH}
    routes = [
        {"name": "banking", "path": "/banking/*", "pool": "banking",
         "sticky": [{"path": "/banking/*", "complete": ["/banking/logout"]}]},
        {"name": "securities", "path": "/securities/", "pool": "securities"},
    ]
    return gateway(pools={"banking": [b1, b2], "securities": [Server("s1", s1.address, {"can_serve": ["/banking/*"]})]},
                   routes=[], admin="auto", global_extra={"state_dir": str(tmp_path / "state")},
                   pool_options={"banking": {**options, "lend_after": "1s", "return_level": 0.3},
                                 "securities": options},
                   extra=sticky_extra(routes, {"secret": SECRET}))


def open_transaction(gw, path: str = "/banking/account"):
    """A new transaction (no cookie): (server id, pin token)."""
    status, by, headers = get(gw, path)
    assert status == 200, status
    token = pin_from(headers)
    assert token and token_parts(token)["id"] == by, (by, token)
    return by, token


def server_list(gw, path: str = "/banking/") -> dict:
    """The discovery server list of the route that takes `path`, by server id."""
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
    try:
        conn.request("GET", f"{SERVERS}?path={path}")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        return {s["id"]: s for s in json.loads(body)["servers"]}
    finally:
        conn.close()


def test_a_server_is_lent_to_loaded_banking_and_given_back_pins_untouched(demo_backend, gateway, tmp_path):
    b1, b2 = demo_backend("b1", report_load="0.1"), demo_backend("b2", report_load="0.1")
    s1 = demo_backend("s1", report_load="0.0")
    gw = lending_gateway(gateway, tmp_path, b1, b2, s1)
    for sid, load in (("b1", 0.1), ("b2", 0.1), ("s1", 0.0)):
        wait_load(gw, sid, load)
    assert pool_entry(gw, "banking")["lent_in"] == []
    # Before: banking transactions stay on the banking servers.
    before = [open_transaction(gw) for _ in range(6)]
    assert {by for by, _ in before} <= {"b1", "b2"}, before
    early_by, early_pin = before[0]

    # The banking servers stay above the lend level (first_level 0.5) for lend_after (1 s): s1 is lent.
    set_load(b1, "0.8")
    set_load(b2, "0.9")
    wait_load(gw, "b1", 0.8)
    wait_load(gw, "b2", 0.9)
    loaded_at = time.monotonic()
    assert pool_entry(gw, "banking")["lent_in"] == []   # not before lend_after
    wait_until(lambda: pool_entry(gw, "banking")["lent_in"] == ["s1"], 5, 0.02, what="s1 lent to banking")
    # lend_after (1 s) after the gateway saw both loads, at most one tick (250 ms) late, plus polling slack.
    lend_delay = time.monotonic() - loaded_at
    assert 0.9 <= lend_delay <= 1.25 + 0.5, lend_delay
    securities = pool_entry(gw, "securities")
    assert securities["lent_out"] == ["s1"]
    assert securities["servers"][0]["lent_to"] == "banking" and securities["servers"][0]["times_lent"] == 1
    assert "server s1 (pool securities) lent to pool banking" in gw.stderr()
    listed = server_list(gw)
    assert listed["s1"]["lent_from"] == "securities", listed

    # New transactions go to the lent server (least-load: 0.0 against 0.8 / 0.9); /securities keeps it too.
    during = [open_transaction(gw) for _ in range(6)]
    assert {by for by, _ in during} == {"s1"}, during
    assert served(gw, "/securities/quote", 3) == Counter({"s1": 3})
    # A transaction begun before the lending stays on its server.
    status, by, _ = get(gw, "/banking/transfer", early_pin)
    assert (status, by) == (200, early_by)

    # The load falls below return_level (0.3) for lend_after: s1 is given back.
    # (b1's report alone makes the pool calm: its least-loaded server is then below return_level.)
    set_load(b1, "0.1")
    wait_load(gw, "b1", 0.1)
    calm_at = time.monotonic()
    set_load(b2, "0.1")
    wait_until(lambda: pool_entry(gw, "banking")["lent_in"] == [], 5, 0.02, what="s1 given back")
    return_delay = time.monotonic() - calm_at
    assert 0.9 <= return_delay <= 1.25 + 0.5, return_delay
    print(f"lend delay {lend_delay:.2f} s, return delay {return_delay:.2f} s (lend_after 1 s)")
    assert pool_entry(gw, "securities")["lent_out"] == []
    assert "server s1 given back by pool banking to pool securities (load fell)" in gw.stderr()
    assert "lent_from" not in server_list(gw).get("s1", {})
    after = [open_transaction(gw) for _ in range(6)]
    assert {by for by, _ in after} <= {"b1", "b2"}, after
    # Pins made while s1 was lent still go to s1, and the early pin to its server.
    for _, token in during[:3]:
        status, by, _ = get(gw, "/banking/transfer", token)
        assert (status, by) == (200, "s1")
    status, by, _ = get(gw, "/banking/transfer", early_pin)
    assert (status, by) == (200, early_by)


def test_a_lent_server_reaching_its_own_first_level_is_given_back_at_once(demo_backend, gateway, tmp_path):
    b1, b2 = demo_backend("b1", report_load="0.8"), demo_backend("b2", report_load="0.8")
    s1 = demo_backend("s1", report_load="0.0")
    gw = lending_gateway(gateway, tmp_path, b1, b2, s1)
    wait_until(lambda: pool_entry(gw, "banking")["lent_in"] == ["s1"], 6, 0.05, what="s1 lent to banking")
    set_load(s1, "0.6")
    wait_until(lambda: pool_entry(gw, "banking")["lent_in"] == [], 3, 0.05, what="s1 given back")
    assert "server s1 given back by pool banking to pool securities (server loaded)" in gw.stderr()
    assert served(gw, "/banking/", 6).keys() <= {"b1", "b2"}
