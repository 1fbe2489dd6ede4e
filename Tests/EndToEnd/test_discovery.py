"""Discovery endpoints on the client listener end to end: the server list
(`/.well-known/weir/servers`) and session assignment (`/.well-known/weir/assign`) compared with
the real state after admin drain and a killed server (200 ms probes), assignment tokens that work
as pin cookies, the users count, and the endpoints turned off.
"""
from __future__ import annotations

import json
from collections import Counter

from conftest import Server, curl, wait_until
from stickyutil import BANKING, PIN, admin_json, pin_from, start_sticky_gateway, token_parts

HTTP_HEALTH = {"type": "http", "interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 2, "path": "/health"}
SERVERS = "/.well-known/weir/servers"
ASSIGN = "/.well-known/weir/assign"


def with_public_url(b) -> Server:
    return Server(b.name, b.address, {"public_url": f"http://localhost:{b.port}"})


def get_json(gw, path: str) -> dict:
    r = curl(gw.url(path))
    assert r.rc == 0 and r.status == 200, (path, r.status, r.body)
    assert r.header("Content-Type") == "application/json" and r.header("Cache-Control") == "no-store", r.headers
    return json.loads(r.body)


def server_list(gw, path: str | None = None) -> dict:
    doc = get_json(gw, SERVERS + (f"?path={path}" if path else ""))
    return {s["id"]: s for s in doc["servers"]}


def test_server_list_and_assignment_follow_drain_and_a_killed_server(demo_backend, gateway, tmp_path):
    backends = [demo_backend(n) for n in ("s1", "s2", "s3")]
    gw = start_sticky_gateway(gateway, tmp_path, [with_public_url(b) for b in backends], admin="auto",
                              pool_options={"p": {"health": HTTP_HEALTH}})
    wait_until(lambda: all(s["available"] for s in server_list(gw).values()), 5, what="all servers available")
    listed = server_list(gw)
    assert set(listed) == {"s1", "s2", "s3"}
    for b in backends:
        entry = listed[b.name]
        assert entry["public_url"] == f"http://localhost:{b.port}", entry
        assert entry["group"] == 0 and entry["users"] == 0 and isinstance(entry["load"], (int, float)), entry
        assert set(entry) == {"id", "public_url", "available", "load", "users", "group"}, entry
    assert Counter(get_json(gw, ASSIGN)["id"] for _ in range(6)) == {"s1": 2, "s2": 2, "s3": 2}

    assert admin_json(gw, "POST", "/servers/s2/drain")["state"] == "drain"
    listed = server_list(gw)
    assert not listed["s2"]["available"] and listed["s1"]["available"] and listed["s3"]["available"], listed
    assigned = Counter(get_json(gw, ASSIGN + "?path=/banking/x")["id"] for _ in range(20))
    assert "s2" not in assigned and set(assigned) == {"s1", "s3"}, assigned

    backends[2].kill()
    wait_until(lambda: not server_list(gw)["s3"]["available"], 10, what="s3 listed unavailable")
    for _ in range(10):
        doc = get_json(gw, ASSIGN)
        assert doc["id"] == "s1" and doc["public_url"] == f"http://localhost:{backends[0].port}", doc
    assert gw.server_status("s3")["state"] == "down"

    admin_json(gw, "POST", "/servers/s2/enable")
    assert server_list(gw)["s2"]["available"]
    assert set(get_json(gw, ASSIGN)["id"] for _ in range(6)) == {"s1", "s2"}


def test_assignment_token_works_as_the_pin_cookie_and_users_are_counted(demo_backend, gateway, tmp_path):
    backends = [demo_backend(n) for n in ("s1", "s2", "s3")]
    gw = start_sticky_gateway(gateway, tmp_path, backends, admin="auto")

    plain = get_json(gw, ASSIGN)           # the route of "/" has a sticky rule: a token comes with it
    assert plain["id"] in {"s1", "s2", "s3"} and plain["public_url"].startswith("http://127.0.0.1:"), plain
    assert plain["cookie"] == PIN and token_parts(plain["token"])["id"] == plain["id"], plain

    doc = get_json(gw, ASSIGN + "?path=/banking/start")
    assert doc["cookie"] == PIN and doc["lifetime_s"] == 1200, doc
    assert token_parts(doc["token"])["id"] == doc["id"]
    for i in range(6):
        r = curl(gw.url(f"/banking/t{i}"), "-H", f"Cookie: {PIN}={doc['token']}")
        assert r.status == 200 and r.header("X-Served-By") == doc["id"], (i, r.headers)
        assert token_parts(pin_from(r.headers))["session"] == token_parts(doc["token"])["session"]
    assert admin_json(gw, "GET", "/servers")["rejected_pins"] == 0

    # users = pinned sessions + requests in flight; the register and the list agree.
    register = {s["id"]: s["pinned_sessions"] for s in admin_json(gw, "GET", "/servers")["servers"]}
    listed = server_list(gw, "/banking/")
    for sid in ("s1", "s2", "s3"):
        assert listed[sid]["users"] == register[sid], (listed, register)
    assert sum(register.values()) >= 1 and register[doc["id"]] >= 1, register


def test_assignment_without_a_sticky_rule_has_no_token(demo_backend, gateway, tmp_path):
    backends = [demo_backend(n) for n in ("s1", "s2")]
    gw = gateway(pools={"p": backends}, global_extra={"state_dir": str(tmp_path / "state")})
    doc = get_json(gw, ASSIGN + "?path=/anything")
    assert set(doc) == {"id", "public_url"}, doc
    assert doc["public_url"] == f"http://{backends[0].address}" or doc["public_url"] == f"http://{backends[1].address}"
    assert set(server_list(gw, "/x")) == {"s1", "s2"}
    r = curl(gw.url(SERVERS + "?path=relative"))
    assert r.status == 400, (r.status, r.body)


def test_discovery_endpoints_can_be_turned_off_or_moved(demo_backend, gateway, tmp_path):
    backends = [demo_backend("s1")]
    gw = start_sticky_gateway(gateway, tmp_path, backends,
                              discovery={"servers_path": "off", "assign_path": "/where"})
    r = curl(gw.url(SERVERS))
    assert r.status == 200 and r.body == b"s1\n" and r.header("X-Served-By") == "s1"   # proxied, not answered
    assert get_json(gw, "/where")["id"] == "s1"
    r = curl(gw.url(ASSIGN))
    assert r.status == 200 and r.body == b"s1\n"
