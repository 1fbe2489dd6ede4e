"""`weir peer` on loopback (issue 10): three peers on 127.0.0.1 ports, each in front of its own demo
backend. Requests stay local below the first level; the extra of a loaded application goes to the
lighter peers, by proxy and by redirect; no request takes two hops; a peer killed with SIGKILL is
off-line for the others within 1.5 s and gets no request after that; a gateway with
`load_source = "beacons"` follows a peer's load within one interval.
"""
from __future__ import annotations

import json
import re
import socket
import time
from collections import Counter
from urllib.parse import urlsplit

import pytest

from conftest import free_port, wait_until
from peerutil import SECRET, PeerGroup, free_udp_port, get, hop_token


def served_by(status_headers_body) -> str:
    status, headers, _ = status_headers_body
    assert status == 200, status_headers_body
    return headers["x-served-by"]


def test_requests_stay_local_below_the_first_level(weir_bin, procs, tmp_path, demo_backend):
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend)
    group.start_all()
    for host in group.hosts.values():
        answers = Counter(served_by(get(host.url("/"))) for _ in range(20))
        assert answers == Counter({f"app-{host.id}": 20}), (host.id, answers)
    for host in group.hosts.values():
        g = host.group()
        assert g["hops_received"] == 0 and g["routed_local"] == 20
        assert all(m["routed"] == 0 for m in g["members"]), g


@pytest.mark.parametrize("route_by", ["proxy", "redirect"])
def test_a_loaded_application_sends_the_extra_to_lighter_peers(weir_bin, procs, tmp_path, demo_backend, route_by):
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend, route_by=route_by)
    group.start_all()
    group.set_app_load("a", "0.9")
    group.wait_load("a", lambda load: load >= 0.9)
    answers = Counter()
    for _ in range(30):
        if route_by == "proxy":
            answers[served_by(get(group["a"].url("/echo?x=1")))] += 1
            continue
        status, headers, _ = get(group["a"].url("/echo?x=1"))
        assert status == 307, (status, headers)
        location = urlsplit(headers["location"])
        assert f"{location.hostname}:{location.port}" in (group["b"].address, group["c"].address), headers["location"]
        assert location.path == "/echo" and re.match(r"x=1&weir-hop=a\.[0-9]+\.[A-Za-z0-9_-]+$", location.query), location
        status, headers, body = get(headers["location"])
        assert status == 200
        # The application never sees the hop marker: neither the parameter nor a header.
        echo = json.loads(body)
        assert "weir-hop" not in json.dumps(echo).lower(), echo
        answers[headers["x-served-by"]] += 1
    # Everything went to the lighter peers, and the herding correction spread it over both.
    assert set(answers) == {"app-b", "app-c"}, answers
    assert min(answers.values()) >= 5, answers
    assert answers["app-a"] == 0
    received = group["b"].group()["hops_received"] + group["c"].group()["hops_received"]
    assert received == 30
    routed = {m["id"]: m["routed"] for m in group["a"].group()["members"]}
    assert routed == {"b": answers["app-b"], "c": answers["app-c"]}, routed


def test_no_request_takes_two_hops(weir_bin, procs, tmp_path, demo_backend):
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend)
    group.start_all()
    # b and c loaded, a light: anything b balances goes to a.
    group.set_app_load("b", "0.9")
    group.set_app_load("c", "0.9")
    group.wait_load("b", lambda load: load >= 0.9)
    group.wait_load("c", lambda load: load >= 0.9)
    assert served_by(get(group["b"].url("/"))) == "app-a"
    # A request that c routed to b (valid hop token) stays at b, loaded as b is.
    assert served_by(get(group["b"].url("/echo"), headers={"Weir-Hop": hop_token("c")})) == "app-b"
    # So does one that came by redirect (token in the query); the application sees neither marker.
    status, headers, body = get(group["b"].url(f"/echo?q=1&weir-hop={hop_token('c')}"))
    assert status == 200 and headers["x-served-by"] == "app-b"
    echo = json.loads(body)
    assert "weir-hop" not in json.dumps(echo).lower() and echo.get("target", "/echo?q=1") == "/echo?q=1", echo
    # A forged, stale or stranger's marker is removed and ignored: the request is balanced (to a).
    forged = [hop_token("c", secret="x" * 40), hop_token("c", now=time.time() - 120), hop_token("mallory")]
    for token in forged:
        status, headers, body = get(group["b"].url("/echo"), headers={"Weir-Hop": token})
        assert headers["x-served-by"] == "app-a", token
        assert "weir-hop" not in body.decode().lower()
    g = group["b"].group()
    assert g["hops_received"] == 2 and g["hops_refused"] == 3, g
    # b's own forward to a carried b's token, so a did not route it on.
    assert group["a"].group()["hops_received"] == 4


def test_a_killed_peer_is_off_line_within_1_5_s_and_gets_no_requests(weir_bin, procs, tmp_path, demo_backend):
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend)
    group.start_all()
    worst = 0.0
    delays = []
    for _ in range(20):
        killed = time.monotonic()
        group["c"].kill()
        seen = {}
        deadline = killed + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            for observer in ("a", "b"):
                if observer not in seen and not group[observer].member("c")["online"]:
                    seen[observer] = time.monotonic() - killed
            time.sleep(0.01)
        assert len(seen) == 2, f"c still on-line for {set('ab') - set(seen)} 5 s after SIGKILL"
        delays.append(max(seen.values()))
        worst = max(worst, max(seen.values()))
        group.start("c")
        group.wait_all_online()
    print(f"\noff-line detection after SIGKILL over 20 kills: worst {worst:.3f} s, "
          f"median {sorted(delays)[10]:.3f} s")
    # dead_after = 3 intervals of 500 ms of silence, counted from the last beacon heard, which came
    # at most 1.5 s before this peer is declared off-line and before the kill: the bound is 1.5 s.
    # The test allows 100 ms more for its own 10 ms polling and scheduling on a loaded machine;
    # the measured worst is printed above (1.47 s here).
    assert worst <= 1.6, delays
    # Once off-line it gets nothing: a's extra goes to b only, and nothing fails.
    group["c"].kill()
    wait_until(lambda: not group["a"].member("c")["online"], 3, what="c off-line for a")
    group.set_app_load("a", "0.9")
    group.wait_load("a", lambda load: load >= 0.9)
    answers = Counter(served_by(get(group["a"].url("/"))) for _ in range(20))
    assert answers == Counter({"app-b": 20}), answers
    # Back on-line after a restart.
    group.start("c")
    group.wait_all_online()
    assert group["a"].member("c")["online"]


def test_a_peer_whose_application_fails_advertises_down_and_sends_everything_away(weir_bin, procs, tmp_path, demo_backend):
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend)
    group.start_all()
    group["a"].app.kill()
    wait_until(lambda: group["b"].member("a")["state"] == "down", 5, what="a to advertise down")
    assert group["a"].group()["state"] == "down"
    answers = Counter(served_by(get(group["a"].url("/"))) for _ in range(10))
    assert set(answers) <= {"app-b", "app-c"} and sum(answers.values()) == 10, answers
    # b sends nothing to a while it is down, even when loaded.
    group.set_app_load("b", "0.9")
    group.wait_load("b", lambda load: load >= 0.9)
    assert Counter(served_by(get(group["b"].url("/"))) for _ in range(10)) == Counter({"app-c": 10})


def test_beacons_under_another_secret_are_refused(weir_bin, procs, tmp_path, demo_backend):
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend, ids=("a", "b"),
                      per_host={"b": {"secret": "another-secret-of-at-least-32-characters"}})
    group.start("a")
    group.start("b")
    wait_until(lambda: group["a"].group()["beacons_refused"].get("bad_mac", 0) >= 3, 5, what="a to refuse b's beacons")
    assert not group["a"].member("b")["online"]
    assert "beacon MAC does not match" in group["a"].stderr()
    # A datagram that is not a beacon at all is counted too, never acted on.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"hello", ("127.0.0.1", group["a"].beacon_port))
        s.sendto(b"WRB" + b"\x01" * 20, ("127.0.0.1", group["a"].beacon_port))
    wait_until(lambda: sum(group["a"].group()["beacons_refused"].values()) >= 5, 3, what="the junk datagrams counted")
    assert not group["a"].member("b")["online"]


def test_paths_a_peer_does_not_serve_go_to_a_peer_that_serves_them(weir_bin, procs, tmp_path, demo_backend):
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend,
                      per_host={"c": {"serves": ["/banking/*"]}, "b": {"serves": ["/shop/"]}})
    group.start_all()
    wait_until(lambda: group["a"].member("c")["serves"] == ["/banking/*"], 3, what="c's paths in a's view")
    assert served_by(get(group["a"].url("/banking/account"))) == "app-a"   # a serves everything: local
    # b does not serve /banking: a and c do; by load among those two (a loaded: c).
    assert served_by(get(group["b"].url("/banking/account"))) in ("app-a", "app-c")
    group.set_app_load("a", "0.9")
    group.wait_load("a", lambda load: load >= 0.9)
    assert Counter(served_by(get(group["b"].url("/banking/account"))) for _ in range(5)) == Counter({"app-c": 5})
    group.set_app_load("a", "")
    group.wait_load("a", lambda load: load < 0.1)
    assert served_by(get(group["c"].url("/shop/cart"))) in ("app-a", "app-b")
    assert served_by(get(group["c"].url("/banking/x"))) == "app-c"
    # Among those that serve it, by load: b and c loaded, /shop/ goes to a from c.
    group.set_app_load("b", "0.9")
    group.wait_load("b", lambda load: load >= 0.9)
    assert Counter(served_by(get(group["c"].url("/shop/cart"))) for _ in range(5)) == Counter({"app-a": 5})


def test_a_gateway_with_beacon_load_source_follows_a_peers_load_within_an_interval(weir_bin, procs, tmp_path, demo_backend, gateway):
    gw_beacon = free_udp_port()
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend, listeners=[("gw", gw_beacon)])
    group.start_all()
    servers = [(i, group[i].address) for i in ("a", "b", "c")]
    members = "\n".join(f'[[group.member]]\nid = "{i}"\nbeacon = "127.0.0.1:{group[i].beacon_port}"\naddress = "{group[i].address}"\n'
                        for i in ("a", "b", "c"))
    gw = gateway(pools={"p": servers}, pool_options={"p": {"policy": "least-load", "load_source": "beacons"}},
                 admin=f"127.0.0.1:{free_port()}",
                 extra=f'[group]\nbeacon = "127.0.0.1:{gw_beacon}"\nsecret = "{SECRET}"\n\n{members}')
    wait_until(lambda: all(s["state"] == "up" for s in gw.status()["pools"][0]["servers"]), 5, what="the gateway to hear every peer")
    assert gw.status()["group"]["role"] == "listener"
    group.set_app_load("b", "0.8")
    # From the moment b itself knows its new load (its probe of its application, every 100 ms)
    # to the moment the gateway has it: at most one beacon interval (500 ms) plus the polling.
    peer_knew = gateway_knew = None
    deadline = time.monotonic() + 5
    while (peer_knew is None or gateway_knew is None) and time.monotonic() < deadline:
        if peer_knew is None and (group["b"].group()["load"] or 0) >= 0.8:
            peer_knew = time.monotonic()
        if gateway_knew is None and (gw.server_status("b")["reported_load"] or 0) >= 0.8:
            gateway_knew = time.monotonic()
        time.sleep(0.005)
    assert peer_knew is not None and gateway_knew is not None, "the new load never arrived"
    elapsed = gateway_knew - peer_knew
    print(f"\nthe gateway had the peer's new load {elapsed:.3f} s after the peer itself (beacon interval 0.5 s)")
    assert elapsed <= 0.5 + 0.1                        # one interval, and polling/scheduling slack
    # A peer that falls silent is off-line for the gateway within dead_after, probes notwithstanding.
    group["c"].kill()
    wait_until(lambda: gw.server_status("c")["state"] == "down", 2.5, interval=0.02, what="c down at the gateway")
    answers = Counter(served_by(get(gw.url("/"))) for _ in range(10))
    assert "app-c" not in answers and sum(answers.values()) == 10, answers


def test_levels_and_interval_change_at_run_time(weir_bin, procs, tmp_path, demo_backend):
    import subprocess
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend)
    group.start_all()
    group.set_app_load("a", "0.6")
    group.wait_load("a", lambda load: load >= 0.6)
    assert "app-a" not in Counter(served_by(get(group["a"].url("/"))) for _ in range(6))   # 0.6 ≥ 0.5: routed

    def levels(host, *args):
        p = subprocess.run([weir_bin, "levels", "--admin", f"127.0.0.1:{host.admin_port}", *args],
                           capture_output=True, text=True, timeout=10)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    assert levels(group["a"]) == {"first_level": 0.5, "second_level": 0.2, "interval_ms": 500}
    assert levels(group["a"], "--first-level", "70%")["first_level"] == 0.7
    assert Counter(served_by(get(group["a"].url("/"))) for _ in range(6)) == Counter({"app-a": 6})  # 0.6 < 0.7: local
    levels(group["a"], "--first-level", "0.5", "--second-level", "0.7")
    assert Counter(served_by(get(group["a"].url("/"))) for _ in range(6)) == Counter({"app-a": 6})  # nobody 0.7 lighter
    bad = subprocess.run([weir_bin, "levels", "--admin", f"127.0.0.1:{group['a'].admin_port}", "--second-level", "1.5"],
                         capture_output=True, text=True, timeout=10)
    assert bad.returncode == 1 and "second_level must be a fraction 0...1" in bad.stderr
    assert levels(group["a"])["second_level"] == 0.7                                             # unchanged
    # A shorter interval on every peer: a killed peer is off-line after 3 × 200 ms.
    for host in group.hosts.values():
        assert levels(host, "--interval-ms", "200")["interval_ms"] == 200
    time.sleep(0.5)
    killed = time.monotonic()
    group["c"].kill()
    wait_until(lambda: not group["a"].member("c")["online"], 2, interval=0.01, what="c off-line for a")
    assert time.monotonic() - killed <= 0.6 + 0.15     # 3 × 200 ms, and polling/scheduling slack


def test_a_banking_transaction_stays_on_its_peer_whatever_the_load(weir_bin, procs, tmp_path, demo_backend):
    from stickyutil import BANKING, PIN, sticky_extra
    sticky = sticky_extra([{"name": "site", "pool": "group", "path": "/", "sticky": [BANKING]}],
                          sticky={"secret": "peer-sticky-secret-0123456789abcdefghij"})
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend, extra=sticky)
    group.start_all()
    # a is loaded: the entry point is balanced to a lighter peer, which pins the transaction.
    group.set_app_load("a", "0.9")
    group.wait_load("a", lambda load: load >= 0.9)
    status, headers, _ = get(group["a"].url("/banking/"))
    home = headers["x-served-by"]
    assert status == 200 and home in ("app-b", "app-c")
    cookie = headers["set-cookie"].split(";")[0]
    assert cookie.startswith(PIN + "=")
    # The pinned peer becomes the busiest; a becomes light: the transaction still goes there,
    # from whichever peer the client reaches.
    pinned = home[-1]
    group.set_app_load("a", "")
    group.set_app_load(pinned, "0.95")
    group.wait_load(pinned, lambda load: load >= 0.95)
    group.wait_load("a", lambda load: load < 0.1)
    for entry in ("a", "b", "c"):
        assert served_by(get(group[entry].url("/banking/transfer"), headers={"Cookie": cookie})) == home, entry
    # After the completing request the client is free again: balanced by load (away from the pinned peer).
    status, headers, _ = get(group[pinned].url("/banking/logout"), headers={"Cookie": cookie})
    assert status == 200 and headers["x-served-by"] == home
    assert "Max-Age=0" in headers["set-cookie"], headers     # the client drops its pin
    assert served_by(get(group[pinned].url("/banking/transfer"))) != home


def test_the_commands_tell_a_peer_directory_from_a_gateway_directory(weir_bin, procs, tmp_path, demo_backend):
    import subprocess
    from conftest import REPO
    fixture = REPO / "Tests" / "Fixtures" / "peer-a"
    check = subprocess.run([weir_bin, "check", "-c", fixture], capture_output=True, text=True, timeout=20)
    assert check.returncode == 0 and "valid for peer" in check.stdout, check
    run = subprocess.run([weir_bin, "run", "-c", fixture], capture_output=True, text=True, timeout=20)
    assert run.returncode == 1 and "configures a peer ([peer]): run it with `weir peer" in run.stderr, run
    peer = subprocess.run([weir_bin, "peer", "-c", REPO / "conf.d"], capture_output=True, text=True, timeout=20)
    assert peer.returncode == 1 and "has no [peer] table" in peer.stderr, peer


def test_a_peer_listens_over_tls_like_a_gateway(weir_bin, procs, tmp_path, demo_backend):
    import subprocess
    from tlsutil import PKI, curl_tls_args
    pki = PKI(tmp_path / "pki")
    cert = pki.issue("weir", "weir.test", ["DNS:weir.test", "IP:127.0.0.1"])
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend, route_by="redirect",
                      per_host={"a": {"tls": {"cert": str(cert.cert), "key": str(cert.key)}}})
    group.start_all()
    a = group["a"]

    def curl_a(path):
        p = subprocess.run(["curl", "-sS", "-i", *curl_tls_args(pki.ca.cert, a.port), f"https://weir.test:{a.port}{path}"],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode == 0, p.stderr
        return p.stdout

    assert curl_a("/").rstrip().endswith("app-a")
    # Its public URL is https (the listener's), and the redirect to a plain peer says http.
    assert group["b"].member("a")["online"]
    group.set_app_load("a", "0.9")
    group.wait_load("a", lambda load: load >= 0.9)
    answer = curl_a("/x?y=1")
    assert re.match(r"HTTP/(1\.1|2) 307 ", answer), answer   # curl speaks h2 to a TLS listener
    assert re.search(rf"(?im)^location: http://127\.0\.0\.1:({group['b'].port}|{group['c'].port})/x\?y=1&weir-hop=a\.", answer), answer


def test_a_peer_reloads_its_conf_d_and_keeps_its_group(weir_bin, procs, tmp_path, demo_backend):
    """A reload of a peer's conf.d keeps the group as it was (members on-line, levels set at run time);
    [peer] and [group] changes are named as waiting for a restart."""
    import subprocess
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend)
    group.start_all()
    a = group["a"]
    admin = ["--admin", f"127.0.0.1:{a.admin_port}"]
    assert subprocess.run([weir_bin, "levels", *admin, "--first-level", "0.7"], capture_output=True, timeout=10).returncode == 0
    config = a.confdir / "10-peer.toml"
    config.write_text(config.read_text().replace('upstream_response = "5s"', 'upstream_response = "6s"'))
    run = subprocess.run([weir_bin, "reload", *admin], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and "[timeouts] changed" in run.stdout, (run.stdout, run.stderr)
    assert all(m["online"] for m in a.group()["members"]), a.group()
    levels = json.loads(subprocess.run([weir_bin, "levels", *admin], capture_output=True, text=True, timeout=10).stdout)
    assert levels["first_level"] == 0.7, levels
    # A loaded application still sends the extra elsewhere after the reload.
    group.set_app_load("a", "0.9")
    group.wait_load("a", lambda load: load >= 0.9)
    assert "app-a" not in Counter(served_by(get(a.url("/"))) for _ in range(6))
    config.write_text(config.read_text().replace("capacity = 100", "capacity = 50"))
    run = subprocess.run([weir_bin, "reload", *admin], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and "NOT applied until a restart: [peer] changed" in run.stdout, run.stdout
