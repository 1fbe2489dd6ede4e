"""Runtime changes that persist (issue 12): drains, mode switches and servers added or removed through the admin
API / CLI are kept in state_dir/runtime.json and applied again when the gateway restarts on the same conf.d.

Every restart is a SIGTERM (the drain) and a new `weir run` on the same directory; every wait is a bounded poll.
"""
from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

from conftest import Gateway, Server, can_connect, curl, wait_until


def weir(weir_bin, *args, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([str(weir_bin), *map(str, args)], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, text=True)


def start_again(gw: Gateway, procs) -> Gateway:
    """Starts `weir run` again on the conf.d (and so the state_dir) of the stopped `gw`."""
    err_path = gw.confdir / f"stderr-{time.monotonic_ns()}.log"
    with open(gw.stdout_path, "ab") as out, open(err_path, "wb") as err:
        p = procs.start([gw.proc.args[0], "run", "-c", gw.confdir], stdout=out, stderr=err)
    host, _, port = gw.admin.rpartition(":")
    wait_until(lambda: p.poll() is None and b"weir: serving" in err_path.read_bytes()
               and can_connect(gw.host, gw.port) and can_connect(host, int(port)), 10,
               what="the gateway to serve again")
    return Gateway(p, gw.host, gw.port, gw.confdir, gw.stdout_path, err_path, gw.admin)


def restart(gw: Gateway, procs) -> Gateway:
    """Stops `gw` with SIGTERM (its drain) and starts it again on the same conf.d."""
    assert gw.terminate() == 0, gw.stderr()
    return start_again(gw, procs)


def served_by(gw: Gateway, n: int) -> Counter:
    """Who answered `n` plain GETs (the demo backend names itself in X-Served-By)."""
    seen = Counter()
    for _ in range(n):
        r = curl(gw.url("/"))
        assert r.status == 200, (r.status, r.body)
        seen[r.header("X-Served-By")] += 1
    return seen


def state_of(weir_bin, gw: Gateway) -> dict:
    p = weir(weir_bin, "state", "--json", "--admin", gw.admin)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def public(backend) -> Server:
    return Server(backend.name, backend.address, {"public_url": f"http://127.0.0.1:{backend.port}"})


def test_a_drain_and_a_mode_switch_survive_a_restart(weir_bin, demo_backend, gateway, procs):
    b1, b2 = demo_backend("b1"), demo_backend("b2")
    gw = gateway(pools={"p": [public(b1), public(b2)]}, admin="auto")
    p = weir(weir_bin, "server", "drain", "b1", "--admin", gw.admin)
    assert p.returncode == 0 and '"state":"drain"' in p.stdout, (p.stdout, p.stderr)
    p = weir(weir_bin, "mode", "redirect", "--admin", gw.admin)
    assert p.returncode == 0, p.stderr

    gw = restart(gw, procs)
    assert gw.server_status("b1")["state"] == "drain"
    assert gw.server_status("b2")["state"] == "up"
    for _ in range(6):       # redirect mode, and never to the drained server
        r = curl(gw.url("/x"))
        assert r.status == 307 and r.header("Location") == f"http://127.0.0.1:{b2.port}/x", (r.status, r.headers)
    assert "runtime state" in gw.stderr() and "2 entries laid over conf.d" in gw.stderr()

    shown = weir(weir_bin, "state", "--admin", gw.admin)
    assert shown.returncode == 0, shown.stderr
    assert "mode     listener public: redirect" in shown.stdout and "drain    p/b1" in shown.stdout, shown.stdout

    # Cleared, conf.d applies again at once (the gateway reloads) and after the next start: both up, proxy mode.
    cleared = weir(weir_bin, "state", "clear", "--admin", gw.admin)
    assert cleared.returncode == 0 and "state cleared: in effect; reloaded" in cleared.stdout, cleared.stdout
    assert state_of(weir_bin, gw)["state"] == {"added": [], "modes": {}, "removed": [], "servers": [], "version": 1}
    assert gw.server_status("b1")["state"] == "up"
    assert set(served_by(gw, 4)) == {"b1", "b2"}
    gw = restart(gw, procs)
    assert gw.server_status("b1")["state"] == "up"
    assert set(served_by(gw, 4)) == {"b1", "b2"}


def test_an_added_server_gets_traffic_and_a_removed_one_stays_removed(weir_bin, demo_backend, gateway, procs):
    b1, b2, b3 = demo_backend("b1"), demo_backend("b2"), demo_backend("b3")
    gw = gateway(pools={"p": [b1, b2]}, admin="auto")
    bad = weir(weir_bin, "server", "add", "p", "b3", "localhost:80", "--admin", gw.admin)
    assert bad.returncode == 1 and "400" in bad.stderr and 'address: invalid address "localhost:80"' in bad.stderr, bad.stderr
    added = weir(weir_bin, "server", "add", "p", "b3", b3.address, "--weight", "2", "--admin", gw.admin)
    assert added.returncode == 0, added.stderr
    assert "in effect" in added.stdout, added.stdout        # the gateway reloads at once
    wait_until(lambda: "b3" in served_by(gw, 6), 5, what="b3 to get traffic")
    removed = weir(weir_bin, "server", "remove", "p", "b2", "--admin", gw.admin)
    assert removed.returncode == 0, removed.stderr
    assert gw.server_status("b2")["state"] == "drain"           # drained first
    assert "b2" not in served_by(gw, 4)

    for _ in range(2):                                           # and so after every restart
        gw = restart(gw, procs)
        ids = [s["id"] for s in gw.status()["pools"][0]["servers"]]
        assert ids == ["b1", "b3"], ids
        seen = served_by(gw, 9)
        assert set(seen) == {"b1", "b3"} and seen["b3"] > seen["b1"], seen     # weight 2 against 1
    # and after a reload of conf.d (which has b1 and b2 only)
    reloaded = weir(weir_bin, "reload", "--admin", gw.admin)
    assert reloaded.returncode == 0 and "no configuration changes" in reloaded.stdout, (reloaded.stdout, reloaded.stderr)
    assert [s["id"] for s in gw.status()["pools"][0]["servers"]] == ["b1", "b3"]
    assert set(served_by(gw, 6)) == {"b1", "b3"}
    document = state_of(weir_bin, gw)
    assert document["state"]["added"] == [{"pool": "p", "id": "b3", "address": b3.address, "weight": 2}]
    assert document["state"]["removed"] == [{"pool": "p", "id": "b2"}]
    assert document["not_applied"] == []


def test_state_when_the_gateway_is_down_and_a_corrupt_file(weir_bin, demo_backend, gateway, procs, tmp_path):
    b1, b2 = demo_backend("b1"), demo_backend("b2")
    gw = gateway(pools={"p": [b1, b2]}, admin="auto")
    assert weir(weir_bin, "server", "maint", "b2", "--admin", gw.admin).returncode == 0
    assert gw.terminate() == 0
    state_file = tmp_path / "weir-state" / "runtime.json"
    assert state_file.stat().st_mode & 0o777 == 0o600
    # Down: `weir state -c DIR` reads the file the gateway keeps, and clears it.
    shown = weir(weir_bin, "state", "-c", gw.confdir)
    assert shown.returncode == 0 and "maint    p/b2" in shown.stdout, (shown.stdout, shown.stderr)
    assert "the gateway does not answer" in shown.stderr
    cleared = weir(weir_bin, "state", "clear", "conditions", "b2", "-c", gw.confdir)
    assert cleared.returncode == 0 and "1 entries cleared" in cleared.stdout, (cleared.stdout, cleared.stderr)
    assert json.loads(state_file.read_text())["servers"] == []

    # A corrupt file: the gateway starts on conf.d alone, says so, and keeps the file aside.
    state_file.write_text('{"version": 1, "servers": [{"pool": "p", "id": "b1", "condition": "drain"')
    gw = start_again(gw, procs)
    assert "WARNING: runtime state" in gw.stderr() and "IGNORED, starting on conf.d alone" in gw.stderr()
    assert (tmp_path / "weir-state" / "runtime.json.corrupt").exists() and not state_file.exists()
    assert gw.server_status("b1")["state"] == "up"
    assert set(served_by(gw, 4)) == {"b1", "b2"}

