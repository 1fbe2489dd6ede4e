"""Sticky transactions end to end: pin cookies (curl's cookie jar and a `requests.Session`), the
completion path that releases a pin, tampered/expired/unknown pins, a pinned server killed
mid-transaction, two gateways sharing a secret, source-address pins with a bounded register,
drain keeping pinned work, and a generated secret that survives a restart.

Every gateway here runs one route "/" to pool "p" with a `[[route.sticky]]` rule on "/banking/*"
(complete: "/banking/logout" and "/banking/receipt/*"), round-robin unless said otherwise.
"""
from __future__ import annotations

import os
import time
import stat
from collections import Counter

import pytest

from conftest import curl, wait_until
from stickyutil import (BANKING, PIN, SECRET, admin_json, admin_request, b64url, cookie_attributes, forge_token,
                        pin_from, pinned_sessions, register, set_cookies, start_sticky_gateway, token_parts)

HTTP_HEALTH = {"type": "http", "interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 2, "path": "/health"}


def three(demo_backend):
    return [demo_backend(n) for n in ("s1", "s2", "s3")]


def get(gw, path: str, token: str | None = None):
    """One GET with the pin cookie (when given) in a Cookie field; returns the CurlResult."""
    args = ["-H", f"Cookie: other=1; {PIN}={token}"] if token is not None else []
    r = curl(gw.url(path), *args)
    assert r.rc == 0, r.stderr
    return r


def served_by(r) -> str:
    assert r.status == 200, (r.status, r.body)
    who = r.header("X-Served-By")
    assert who and r.body == f"{who}\n".encode(), (r.headers, r.body)
    return who


def jar_has_pin(jar) -> bool:
    if not jar.exists():
        return False
    for line in jar.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 7 and fields[5] == PIN and fields[6]:
            return True
    return False


def pin_to(gw, server_id: str, limit: int = 12) -> str:
    """Opens transactions at the entry point until one is pinned to `server_id`; returns its token."""
    for _ in range(limit):
        r = get(gw, "/banking/")
        if served_by(r) == server_id:
            token = pin_from(r.headers)
            assert token and token_parts(token)["id"] == server_id
            return token
    raise AssertionError(f"no entry landed on {server_id} in {limit} tries")


# --------------------------------------------------------------------------------------------
# The 20-step flow


def test_session_flow_with_curl_cookie_jar(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    gw = start_sticky_gateway(gateway, tmp_path, backends, admin="auto")
    jar = tmp_path / "jar.txt"
    jar_args = ["-c", str(jar), "-b", str(jar)]

    entry = curl(gw.url("/banking/"), *jar_args)
    home = served_by(entry)
    values = set_cookies(entry.headers)
    assert len(values) == 1, entry.headers
    attrs = cookie_attributes(values[0])
    assert attrs.get("max-age") == "1200" and attrs.get("path") == "/banking/", values
    assert "httponly" in attrs and attrs.get("samesite", "").lower() == "lax", values
    assert token_parts(pin_from(entry.headers))["id"] == home
    assert jar_has_pin(jar)

    outside = Counter()
    for i in range(18):
        r = curl(gw.url(f"/banking/step{i}?n={i}"), *jar_args)
        assert served_by(r) == home, f"step {i} left the pinned server {home}"
        assert token_parts(pin_from(r.headers))["id"] == home     # each answer renews the pin
        outside[served_by(curl(gw.url(f"/catalog/{i}"), *jar_args))] += 1
    assert len(outside) >= 2, f"requests outside /banking/ did not spread: {outside}"
    assert pinned_sessions(gw)[home] == 1

    logout = curl(gw.url("/banking/logout"), *jar_args)
    assert served_by(logout) == home
    cleared = set_cookies(logout.headers)
    assert len(cleared) == 1 and pin_pair_value(cleared[0]) == "" and cookie_attributes(cleared[0]).get("max-age") == "0", \
        logout.headers
    assert not jar_has_pin(jar), jar.read_text()
    assert pinned_sessions(gw)[home] == 0

    # The next entries are balanced again (round-robin): they land on different servers.
    landed = Counter()
    for _ in range(6):
        r = curl(gw.url("/banking/"), *jar_args)
        landed[served_by(r)] += 1
    assert len(landed) == 3, landed


def pin_pair_value(set_cookie_value: str) -> str:
    return set_cookie_value.split(";", 1)[0].split("=", 1)[1]


def test_session_flow_with_requests_session(demo_backend, gateway, tmp_path):
    requests = pytest.importorskip("requests")
    backends = three(demo_backend)
    gw = start_sticky_gateway(gateway, tmp_path, backends)
    other = requests.Session()
    with requests.Session() as s:
        r = s.get(gw.url("/banking/"), timeout=10)
        assert r.status_code == 200
        home = r.headers["X-Served-By"]
        assert s.cookies.get(PIN, path="/banking/"), s.cookies
        outside = Counter()
        for i in range(18):
            path = f"/banking/receipt-preview/{i}" if i % 2 else f"/banking/account/{i}?x={i}"
            r = s.post(gw.url(path), data=b"x" * i, timeout=10) if i % 3 == 0 else s.get(gw.url(path), timeout=10)
            assert r.status_code == 200 and r.headers["X-Served-By"] == home, (i, r.status_code, r.headers)
            outside[other.get(gw.url(f"/news/{i}"), timeout=10).headers["X-Served-By"]] += 1
        assert len(outside) >= 2, outside
        r = s.get(gw.url("/banking/receipt/42"), timeout=10)   # a "complete" pattern
        assert r.status_code == 200 and r.headers["X-Served-By"] == home
        assert PIN not in s.cookies, s.cookies
        landed = Counter(s.get(gw.url("/banking/"), timeout=10).headers["X-Served-By"] for _ in range(6))
        assert len(landed) == 3, landed
    other.close()


# --------------------------------------------------------------------------------------------
# Pins that are not honoured


def test_tampered_expired_and_unknown_pins_are_balanced_not_errors(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    gw = start_sticky_gateway(gateway, tmp_path, backends, admin="auto")
    token = pin_to(gw, "s2")
    parts = token.split(".")
    assert register(gw)["rejected_pins"] == 0

    # A token forged here with the documented format and the configured secret is honoured.
    forged = forge_token("s3", "c2Vzc2lvbg", 2_000_000_000)
    assert all(served_by(get(gw, f"/banking/x{i}", forged)) == "s3" for i in range(3))
    assert register(gw)["rejected_pins"] == 0

    flipped_mac = ".".join(parts[:4] + [("A" if parts[4][0] != "A" else "B") + parts[4][1:]])
    other_id = ".".join([parts[0], b64url(b"s3")] + parts[2:])          # id changed, old MAC
    later = ".".join(parts[:3] + [str(int(parts[3]) + 3600), parts[4]])  # extended expiry, old MAC
    bad = [flipped_mac, other_id, later,
           forge_token("s2", "c2Vzc2lvbg", 1_000_000_000),                   # expired (correct MAC)
           forge_token("nosuch", "c2Vzc2lvbg", 2_000_000_000),               # names no server
           forge_token("s2", "c2Vzc2lvbg", 2_000_000_000, scope="/other/*"),  # signed for another path
           forge_token("s2", "c2Vzc2lvbg", 2_000_000_000, secret="x" * 40),   # another secret
           "garbage", "1.....", ""]
    landed = Counter()
    for i, t in enumerate(bad):
        r = get(gw, f"/banking/pay/{i}", t)
        landed[served_by(r)] += 1   # 200 from some server, never an error page
        fresh = pin_from(r.headers)
        assert fresh and fresh != t and token_parts(fresh)["id"] == r.header("X-Served-By"), (t, r.headers)
    assert len(landed) >= 2, f"rejected pins were not balanced: {landed}"
    # The empty value may count as "no pin" rather than a rejected one; every other one is rejected.
    rejected = register(gw)["rejected_pins"]
    assert rejected in (len(bad) - 1, len(bad)), rejected
    # The real pin still works after all that.
    assert served_by(get(gw, "/banking/after", token)) == "s2"


# --------------------------------------------------------------------------------------------
# A pinned server goes away


@pytest.mark.parametrize("detection", ["probe", "passive"])
def test_pinned_server_killed_mid_transaction_is_repinned(demo_backend, gateway, tmp_path, detection):
    backends = three(demo_backend)
    options = {"p": {"health": HTTP_HEALTH}} if detection == "probe" else {"p": {"retries": 2}}
    gw = start_sticky_gateway(gateway, tmp_path, backends, admin="auto", pool_options=options)
    token = pin_to(gw, "s2")
    assert served_by(get(gw, "/banking/step1", token)) == "s2"
    backends[1].kill()
    if detection == "probe":
        wait_until(lambda: gw.server_status("s2")["state"] == "down", 10, what="s2 down")

    r = get(gw, "/banking/step2", token)
    new_home = served_by(r)
    assert new_home != "s2"
    new_token = pin_from(r.headers)
    assert new_token and token_parts(new_token)["id"] == new_home, r.headers
    for i in range(5):
        r = get(gw, f"/banking/step{3 + i}", new_token)
        assert served_by(r) == new_home
    doc = register(gw)
    assert doc["moved_pins"] == 1, doc
    assert doc["rejected_pins"] == 0, doc


def test_two_gateways_with_the_same_secret_honour_each_others_pins(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    gw_a = start_sticky_gateway(gateway, tmp_path, backends, name="a")
    gw_b = start_sticky_gateway(gateway, tmp_path, backends, name="b", admin="auto")
    token = pin_to(gw_a, "s3")
    session = token_parts(token)["session"]
    for i in range(8):
        r = get(gw_b, f"/banking/transfer/{i}", token)
        assert served_by(r) == "s3", f"gateway B ignored gateway A's pin at request {i}"
        renewed = token_parts(pin_from(r.headers))
        assert renewed["id"] == "s3" and renewed["session"] == session, renewed
    assert register(gw_b)["rejected_pins"] == 0
    # Without the pin, B balances as usual.
    assert len({served_by(get(gw_b, f"/banking/x{i}")) for i in range(6)}) >= 2


def test_a_gateway_with_another_secret_rejects_the_pin(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    gw_a = start_sticky_gateway(gateway, tmp_path, backends, name="a")
    gw_c = start_sticky_gateway(gateway, tmp_path, backends, name="c", admin="auto",
                                sticky={"secret": "another-secret-of-sufficient-length-0123"})
    token = pin_to(gw_a, "s1")
    r = get(gw_c, "/banking/x", token)
    served_by(r)
    assert register(gw_c)["rejected_pins"] == 1


# --------------------------------------------------------------------------------------------
# Source-address pins


def test_source_address_pins_and_bounded_register(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    rules = [{"path": f"/{p}/*", "by": "source", "complete": [f"/{p}/done"]} for p in ("a", "b", "c")]
    gw = start_sticky_gateway(gateway, tmp_path, backends, rules=rules, admin="auto",
                              sticky={"secret": SECRET, "source_table_size": 2})
    homes = {}
    for p in ("a", "b", "c"):
        first = get(gw, f"/{p}/")
        homes[p] = served_by(first)
        assert not set_cookies(first.headers), first.headers          # no cookie for source pins
        assert all(served_by(get(gw, f"/{p}/step{i}")) == homes[p] for i in range(6)), p
        doc = register(gw, detail=True)
        total = sum(s["pinned_sessions"] for s in doc["servers"])
        assert total <= 2, doc
    doc = register(gw, detail=True)
    paths = sorted(pin["path"] for s in doc["servers"] for pin in s["pins"])
    assert paths == ["/b/*", "/c/*"], doc          # the least recently used ("/a/*") was pushed out
    assert sum(s["pinned_sessions"] for s in doc["servers"]) == 2
    # Completing "/c/" frees its entry.
    assert served_by(get(gw, "/c/done")) == homes["c"]
    doc = register(gw, detail=True)
    assert [pin["path"] for s in doc["servers"] for pin in s["pins"]] == ["/b/*"], doc
    # Outside the sticky paths, requests spread.
    assert len({served_by(get(gw, f"/free/{i}")) for i in range(6)}) == 3


# --------------------------------------------------------------------------------------------
# Drain and maintenance


def test_drain_keeps_pinned_transactions_and_enable_brings_the_server_back(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    gw = start_sticky_gateway(gateway, tmp_path, backends, admin="auto")
    token = pin_to(gw, "s2")
    doc = admin_json(gw, "POST", "/servers/s2/drain")
    assert doc == {"id": "s2", "state": "drain"}, doc
    for i in range(8):
        assert served_by(get(gw, f"/banking/t{i}", token)) == "s2", f"drained s2 lost its pinned transaction ({i})"
        assert served_by(get(gw, "/banking/")) != "s2", "a new transaction went to drained s2"
        assert served_by(get(gw, f"/banking/new{i}")) != "s2", "a new pin went to drained s2"
    assert register(gw)["moved_pins"] == 0
    admin_json(gw, "POST", "/servers/s2/enable")
    assert "s2" in {served_by(get(gw, "/banking/")) for _ in range(6)}

    # Maintenance takes even pinned work: the pin moves.
    admin_json(gw, "POST", "/servers/s2/maint")
    r = get(gw, "/banking/t-maint", token)
    assert served_by(r) != "s2"
    assert token_parts(pin_from(r.headers))["id"] == r.header("X-Served-By")
    assert register(gw)["moved_pins"] == 1
    status, _ = admin_request(gw, "POST", "/servers/nosuch/drain")
    assert status == 404


# --------------------------------------------------------------------------------------------
# Generated secret


def test_generated_secret_is_kept_and_pins_survive_a_restart(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    state = tmp_path / "state-gen"
    gw = start_sticky_gateway(gateway, tmp_path, backends, name="gen", sticky={})
    secret_file = state / "sticky.secret"
    assert secret_file.exists(), list(tmp_path.iterdir())
    assert stat.S_IMODE(os.stat(secret_file).st_mode) == 0o600
    assert len(secret_file.read_text().strip()) >= 32
    assert f"generated one into {secret_file}" in gw.stderr() + gw.stdout(), gw.stderr()
    first_secret = secret_file.read_text()
    token = pin_to(gw, "s3")
    assert gw.terminate() == 0

    gw2 = start_sticky_gateway(gateway, tmp_path, backends, name="gen", sticky={}, admin="auto")
    assert secret_file.read_text() == first_secret
    assert str(secret_file) in gw2.stderr() + gw2.stdout()
    for i in range(5):
        r = get(gw2, f"/banking/after-restart/{i}", token)
        assert served_by(r) == "s3", f"pin issued before the restart not honoured ({i})"
        assert token_parts(pin_from(r.headers))["session"] == token_parts(token)["session"]
    assert register(gw2)["rejected_pins"] == 0


def test_moved_pin_leaves_no_session_on_the_old_server(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    gw = start_sticky_gateway(gateway, tmp_path, backends, admin="auto")
    token = pin_to(gw, "s2")
    assert served_by(get(gw, "/banking/confirm", token)) == "s2"    # presented back: now a user
    before = pinned_sessions(gw)      # pin_to's other entries were never presented back: no users
    assert before == {"s1": 0, "s2": 1, "s3": 0}, before
    admin_json(gw, "POST", "/servers/s2/maint")
    r = get(gw, "/banking/next", token)
    new_home = served_by(r)
    assert new_home != "s2" and register(gw)["moved_pins"] == 1
    # The same number of transactions; this one now on its new server only.
    expected = dict(before, s2=0, **{new_home: before[new_home] + 1})
    assert pinned_sessions(gw) == expected


def test_pin_expires_after_its_idle_timeout_and_each_request_renews_it(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    rule = dict(BANKING, idle_timeout="2s")
    gw = start_sticky_gateway(gateway, tmp_path, backends, rules=[rule], admin="auto")
    jar = tmp_path / "jar.txt"
    jar_args = ["-c", str(jar), "-b", str(jar)]
    entry = curl(gw.url("/banking/"), *jar_args)
    home = served_by(entry)
    assert cookie_attributes(set_cookies(entry.headers)[0]).get("max-age") == "2"
    token = pin_from(entry.headers)
    for i in range(6):      # 3 s in all, more than the idle timeout: each request renews the pin
        time.sleep(0.5)
        r = curl(gw.url(f"/banking/step{i}"), *jar_args)
        assert served_by(r) == home, i
    doc = register(gw, detail=True)
    pins = [p for s in doc["servers"] for p in s["pins"]]
    assert len(pins) == 1 and pins[0]["path"] == "/banking/*" and pins[0]["age_s"] >= 2 and pins[0]["idle_s"] <= 1, doc
    time.sleep(3.1)         # idle for longer than the timeout: the pin (and its register entry) is gone
    assert sum(pinned_sessions(gw).values()) == 0
    r = get(gw, "/banking/late", token)
    served_by(r)
    assert register(gw)["rejected_pins"] == 1          # an expired pin: treated as none


def test_source_pins_are_shared_by_workers(demo_backend, gateway, tmp_path):
    backends = three(demo_backend)
    rules = [{"path": "/shop/*", "by": "source"}]
    gw = start_sticky_gateway(gateway, tmp_path, backends, rules=rules, admin="auto", workers=2)
    home = served_by(get(gw, "/shop/"))
    # New connections are spread over both workers; the register is one.
    assert {served_by(get(gw, f"/shop/item{i}")) for i in range(12)} == {home}
    assert sum(pinned_sessions(gw).values()) == 1
