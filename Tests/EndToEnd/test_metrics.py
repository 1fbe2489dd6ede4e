"""`GET /metrics` on the admin listener (issue 13): the Prometheus text exposition.

A gateway with 2 workers in front of two demo backends and one dead server gets a known request mix
(200s, 404s from a backend, 502s from the dead server, redirect-mode answers); the scrape must
show exactly those counts per status class, histograms whose count equals the requests and whose
buckets are cumulative, text that promtool accepts without a lint warning, and counters that a
reload does not reset (a removed server's series disappear).
"""
from __future__ import annotations

import http.client
import math
import os
import re
import shutil
import signal
import subprocess

import pytest
import requests

from conftest import ADMIN_AUTH, free_port, wait_until

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

N_OK, M_NOT_FOUND, K_BAD_GATEWAY, R_REDIRECTS = 30, 12, 5, 4


def scrape(admin: str) -> tuple[str, dict]:
    """The /metrics text and its samples as {(name, frozenset(labels)): value}."""
    r = requests.get(f"http://{admin}/metrics", timeout=5)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = {}
    for line in r.text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL_RE.findall(m.group(2) or ""))
        samples[(m.group(1), labels)] = float(m.group(3))
    return r.text, samples


def value(samples: dict, name: str, **labels) -> float:
    """The sample `name` with exactly `labels`."""
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def total(samples: dict, name: str, **labels) -> float:
    """The sum of every sample `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, l), v in samples.items() if n == name and want <= set(l))


def histogram(samples: dict, name: str, **labels) -> tuple[list[tuple[float, float]], float, float]:
    """(buckets as (le, cumulative count) sorted by le, sum, count) of histogram `name`."""
    buckets = []
    for (n, l), v in samples.items():
        d = dict(l)
        if n == name + "_bucket" and all(d.get(k) == x for k, x in labels.items()) and len(d) == len(labels) + 1:
            buckets.append((math.inf if d["le"] == "+Inf" else float(d["le"]), v))
    buckets.sort()
    return buckets, value(samples, name + "_sum", **labels), value(samples, name + "_count", **labels)


def assert_histogram(samples: dict, name: str, expected_count: int, max_seconds: float, positive: bool = True, **labels):
    """Checks histogram `name`: 15 cumulative buckets ending at +Inf = count = `expected_count`, and a sum
    below count × `max_seconds` (above 0 when `positive`: times are per loop pass, so an exchange
    that ends in the pass it began, such as a refused connect, takes 0 s)."""
    buckets, total_seconds, count = histogram(samples, name, **labels)
    assert len(buckets) == 15, buckets
    counts = [c for _, c in buckets]
    assert counts == sorted(counts), f"{name}{labels} buckets are not cumulative: {buckets}"
    assert buckets[-1] == (math.inf, count)
    assert count == expected_count, (name, labels, count)
    if expected_count:
        assert (0 < total_seconds if positive else 0 <= total_seconds), (name, labels, total_seconds)
        assert total_seconds < expected_count * max_seconds, (name, labels, total_seconds)


@pytest.fixture
def metered(gateway, demo_backend):
    a, b = demo_backend("a"), demo_backend("b")
    dead = f"127.0.0.1:{free_port()}"   # nothing listens there: connect refused
    gw = gateway(
        pools={"web": [a, b], "dead": [("gone", dead)], "spare": [("s1", b.address)]},
        routes=[{"name": "go", "pool": "web", "path": "/go/", "mode": "redirect"},
                {"name": "dead", "pool": "dead", "path": "/dead/"},
                {"name": "spare", "pool": "spare", "path": "/spare/"},
                {"name": "all", "pool": "web", "path": "/"}],
        workers=2, admin="auto", access_log="off",
        pool_options={"web": {"health": {"type": "none"}}, "spare": {"health": {"type": "none"}},
                      "dead": {"health": {"type": "none"}, "retries": 0, "passive_failures": 0}})
    return gw, a, b


def send_mix(gw):
    """N 200s, M 404s (from the backends), K 502s (the dead server), R redirects; new connections
    each, so both workers take some."""
    for i in range(N_OK):
        assert requests.get(gw.url(f"/ok/{i}"), timeout=5).status_code == 200
    for i in range(M_NOT_FOUND):
        assert requests.get(gw.url(f"/missing/{i}?status=404"), timeout=5).status_code == 404
    for i in range(K_BAD_GATEWAY):
        assert requests.get(gw.url(f"/dead/{i}"), timeout=5).status_code == 502
    for i in range(R_REDIRECTS):
        assert requests.get(gw.url(f"/go/{i}"), timeout=5, allow_redirects=False).status_code == 307


def test_metrics_match_a_known_request_mix_exactly(metered):
    gw, a, b = metered
    send_mix(gw)
    _, s = scrape(gw.admin)
    forwarded = N_OK + M_NOT_FOUND
    # Servers and pools: the responses their servers gave, by class.
    assert total(s, "weir_server_responses_total", pool="web", code="2xx") == N_OK
    assert total(s, "weir_server_responses_total", pool="web", code="4xx") == M_NOT_FOUND
    assert total(s, "weir_server_responses_total", pool="web", code="5xx") == 0
    assert value(s, "weir_server_responses_total", pool="dead", server="gone", code="5xx") == K_BAD_GATEWAY
    assert value(s, "weir_pool_responses_total", pool="web", code="2xx") == N_OK
    assert value(s, "weir_pool_responses_total", pool="web", code="4xx") == M_NOT_FOUND
    assert value(s, "weir_pool_responses_total", pool="dead", code="5xx") == K_BAD_GATEWAY
    # Round-robin over two servers: both answered some.
    assert value(s, "weir_server_responses_total", pool="web", server="a", code="2xx") > 0
    assert value(s, "weir_server_responses_total", pool="web", server="b", code="2xx") > 0
    # The listener sees everything, Weir's own answers (307, 502) included.
    assert value(s, "weir_listener_requests_total", listener="public") == forwarded + K_BAD_GATEWAY + R_REDIRECTS
    for code, n in {"2xx": N_OK, "3xx": R_REDIRECTS, "4xx": M_NOT_FOUND, "5xx": K_BAD_GATEWAY, "1xx": 0}.items():
        assert value(s, "weir_listener_responses_total", listener="public", code=code) == n, code
    assert value(s, "weir_listener_redirects_total", listener="public") == R_REDIRECTS
    assert total(s, "weir_server_redirects_total", pool="web") == R_REDIRECTS
    # One connection per request, plus the fixture's readiness probe (a connect without a request).
    assert value(s, "weir_listener_connections_total", listener="public") == forwarded + K_BAD_GATEWAY + R_REDIRECTS + 1
    assert value(s, "weir_server_failures_total", pool="dead", server="gone") == K_BAD_GATEWAY
    # Histograms: one observation per forwarded exchange, in seconds, cumulative buckets.
    assert_histogram(s, "weir_pool_request_duration_seconds", forwarded, 2.0, pool="web")
    assert_histogram(s, "weir_pool_request_duration_seconds", K_BAD_GATEWAY, 2.0, positive=False, pool="dead")
    per_server = [histogram(s, "weir_server_request_duration_seconds", pool="web", server=x)[2] for x in ("a", "b")]
    assert sum(per_server) == forwarded
    assert_histogram(s, "weir_pool_first_byte_seconds", forwarded, 2.0, pool="web")
    # Every forwarded request went out on a new or a reused connection; each new one was timed.
    opened = total(s, "weir_server_upstream_connections_total", pool="web", connection="new")
    reused = total(s, "weir_server_upstream_connections_total", pool="web", connection="reused")
    assert opened + reused == forwarded and opened >= 1
    assert histogram(s, "weir_pool_upstream_connect_seconds", pool="web")[2] == opened
    # Gauges: nothing in flight, both servers up, bytes counted.
    assert total(s, "weir_server_in_flight") == 0
    assert value(s, "weir_server_up", pool="web", server="a") == 1
    assert value(s, "weir_server_state", pool="web", server="a", state="up") == 1
    assert value(s, "weir_pool_servers", pool="web", state="up") == 2
    assert value(s, "weir_pool_response_bytes_total", pool="web") > 0
    assert value(s, "weir_listener_request_bytes_total", listener="public") > 0
    assert value(s, "weir_requests_total") == forwarded + K_BAD_GATEWAY + R_REDIRECTS


def test_a_pool_with_no_server_available_counts_its_503s(metered):
    gw, _, _ = metered
    assert requests.post(f"http://{gw.admin}/servers/s1/maint", headers=ADMIN_AUTH, timeout=5).status_code == 200
    for i in range(3):
        assert requests.get(gw.url(f"/spare/{i}"), timeout=5).status_code == 503
    assert requests.get(gw.url("/spare/ok"), timeout=5).status_code == 503
    _, s = scrape(gw.admin)
    assert value(s, "weir_pool_unavailable_total", pool="spare") == 4
    assert value(s, "weir_pool_responses_total", pool="spare", code="5xx") == 4
    assert value(s, "weir_server_responses_total", pool="spare", server="s1", code="5xx") == 0
    assert value(s, "weir_pool_unavailable_total", pool="web") == 0
    assert value(s, "weir_listener_responses_total", listener="public", code="5xx") == 4
    assert value(s, "weir_server_state", pool="spare", server="s1", state="maint") == 1


def test_head_metrics_has_no_body_and_post_is_refused(metered):
    gw, _, _ = metered
    host, _, port = gw.admin.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("HEAD", "/metrics")
    r = conn.getresponse()
    assert r.status == 200 and r.read() == b""
    assert r.getheader("Content-Type").startswith("text/plain; version=0.0.4")
    conn.close()
    assert requests.post(f"http://{gw.admin}/metrics", headers=ADMIN_AUTH, timeout=5).status_code == 405
    # Without the admin token a POST is refused before its path is looked at (test_admin_auth.py).
    assert requests.post(f"http://{gw.admin}/metrics", timeout=5).status_code == 401


def test_promtool_accepts_the_exposition_without_a_warning(metered):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian package prometheus: make test-deps)")
    gw, _, _ = metered
    send_mix(gw)
    text, _ = scrape(gw.admin)
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == b"" and r.stderr.strip() == b"", (r.stdout, r.stderr)


def test_counters_survive_a_reload_and_removed_servers_disappear(metered):
    gw, a, b = metered
    send_mix(gw)
    _, before = scrape(gw.admin)
    config = gw.confdir / "00-weir.toml"
    text = config.read_text()
    # Drop the dead pool and its route: its server's series must go, the others stay.
    # (each [[pool]] and [[route]] is a block of non-empty lines after an empty one)
    text = re.sub(r'\n\[\[pool\]\]\nname = "dead"\n(?:.+\n)*', "\n", text, count=1)
    text = re.sub(r'\n\[\[route\]\]\nname = "dead"\n(?:.+\n)*', "\n", text, count=1)
    assert 'id = "gone"' not in text, text
    assert 'name = "dead"' not in text, text
    config.write_text(text)
    os.kill(gw.pid, signal.SIGHUP)
    wait_until(lambda: value(scrape(gw.admin)[1], "weir_configuration_generation") == 2, 10, what="the reload")
    for i in range(10):
        assert requests.get(gw.url(f"/again/{i}"), timeout=5).status_code == 200
    _, after = scrape(gw.admin)
    assert value(after, "weir_reloads_total", result="ok") == 1
    assert value(after, "weir_last_reload_success") == 1
    assert value(after, "weir_last_reload_timestamp_seconds") > 1.7e9
    assert value(after, "weir_pool_responses_total", pool="web", code="2xx") == N_OK + 10
    for x in ("a", "b"):
        for code in ("2xx", "4xx"):
            assert (value(after, "weir_server_responses_total", pool="web", server=x, code=code)
                    >= value(before, "weir_server_responses_total", pool="web", server=x, code=code))
    assert histogram(after, "weir_pool_request_duration_seconds", pool="web")[2] == N_OK + M_NOT_FOUND + 10
    assert value(after, "weir_listener_requests_total", listener="public") == N_OK + M_NOT_FOUND + K_BAD_GATEWAY + R_REDIRECTS + 10
    assert not [k for k in after if dict(k[1]).get("server") == "gone" or dict(k[1]).get("pool") == "dead"]


def test_tls_handshakes_and_certificate_expiry_per_file(gateway, demo_backend, tmp_path):
    from conftest import curl
    from tlsutil import PKI, curl_tls_args, tls_table
    pki = PKI(tmp_path / "pki")
    pki.weir = pki.issue("weir", "weir.test", ["DNS:weir.test", "IP:127.0.0.1"])
    pki.other = pki.issue("other", "other.test", ["DNS:other.test"], kind="rsa")
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki), admin="auto", workers=2,
                 pool_options={"p": {"health": {"type": "none"}}})
    for i in range(3):
        r = curl(gw.https_url(f"/{i}", host="weir.test"), *curl_tls_args(pki.ca.cert, gw.port, "weir.test"))
        assert r.status == 200, r
    text, s = scrape(gw.admin)
    assert value(s, "weir_tls_handshakes_total") == 3
    for cert in (pki.weir.cert, pki.other.cert):
        out = subprocess.run(["openssl", "x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in", str(cert)],
                             capture_output=True, text=True, check=True).stdout
        # notAfter=2027-12-01 22:49:37Z
        import datetime
        when = datetime.datetime.strptime(out.strip().split("=", 1)[1], "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        assert value(s, "weir_tls_certificate_expiry_timestamp_seconds", listener="public", file=str(cert)) == when.timestamp()
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == b"" and r.stderr.strip() == b"", (r.stdout, r.stderr)


def test_a_peer_shows_its_group_beacons_and_members(weir_bin, procs, tmp_path, demo_backend):
    from peerutil import PeerGroup
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend, ids=("a", "b"))
    group.start_all()
    group.wait_all_online()
    admin = f"127.0.0.1:{group['a'].admin_port}"
    wait_until(lambda: value(scrape(admin)[1], "weir_peer_beacons_received_total", result="accepted") >= 2, 10,
               what="beacons from b")
    text, s = scrape(admin)
    assert value(s, "weir_peer_beacons_sent_total") >= 1
    online = {dict(l)["member"]: v for (n, l), v in s.items() if n == "weir_peer_member_online"}
    assert online.get("b") == 1, online
    member = next(dict(l) for (n, l) in s if n == "weir_peer_member_online" and dict(l)["member"] == "b")
    assert value(s, "weir_peer_member_state", member="b", role=member["role"], state="up") == 1
    assert value(s, "weir_peer_isolated") == 0
    group["b"].kill()
    wait_until(lambda: value(scrape(admin)[1], "weir_peer_member_online", member="b", role=member["role"]) == 0, 5,
               what="b off-line in /metrics")
    promtool = shutil.which("promtool")
    if promtool:
        r = subprocess.run([promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        assert r.returncode == 0 and r.stdout.strip() == b"" and r.stderr.strip() == b"", (r.stdout, r.stderr)
