"""The live dashboard (issue 13) in a real headless chromium, driven over the DevTools protocol (cdp.py):
it loads with no console errors, shows every server, turns a killed server red within 2 s, drains a
server from its button, and renders 200 servers. Saves Tests/EndToEnd/artifacts/dashboard.png."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from cdp import Browser
from conftest import ADMIN_TOKEN, Server, curl, free_port, wait_until

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed (make test-deps)")


@pytest.fixture
def browser(tmp_path):
    b = Browser.start(tmp_path / "chromium-profile")
    try:
        yield b
    finally:
        b.close()


def unexpected_errors(b: Browser) -> list[str]:
    """Console errors, exceptions and error log entries; a failed network request only counts unless it is
    /metrics answering 404 (served by the metrics slice; the page shows "–" without it)."""
    network = [e for e in b.network_errors if not (e.get("url", "").endswith("/metrics") and "404" in e.get("text", ""))]
    return b.errors + [f"network: {e.get('url')}: {e.get('text')}" for e in network]


def log_in(b: Browser, token: str = ADMIN_TOKEN):
    b.wait_for("!document.getElementById('login').classList.contains('hidden')", 5, "the login form")
    b.evaluate(f"document.getElementById('token').value = {json.dumps(token)}; "
               "document.getElementById('login-button').click(); true")
    b.wait_for("document.getElementById('login').classList.contains('hidden')", 5, "the login to succeed")


ROWS = "Array.from(document.querySelectorAll('tr[data-server]')).map(r => [r.closest('section').dataset.pool, r.dataset.server, r.className])"


def test_the_dashboard_shows_every_server_turns_a_dead_one_red_and_drains_from_its_button(demo_backend, gateway, browser):
    backends = {name: demo_backend(name) for name in ("a1", "a2", "a3", "b1", "b2")}
    health = {"type": "http", "path": "/health", "interval": "200ms", "timeout": "150ms", "rise": 1, "fall": 1}
    gw = gateway(pools={"web": [backends["a1"], backends["a2"], backends["a3"]], "api": [backends["b1"], backends["b2"]]},
                 routes=[{"name": "api", "path": "/api/", "pool": "api"}, {"name": "default", "path": "/", "pool": "web"}],
                 admin="auto", pool_options={"web": {"health": health}, "api": {"health": health}})
    for _ in range(20):
        assert curl(gw.url("/")).status == 200
    browser.navigate(f"http://{gw.admin}/")
    log_in(browser)
    rows = browser.wait_for(f"(() => {{ const r = {ROWS}; return r.length === 5 ? r : null; }})()", 5, "five server rows")
    assert sorted((p, s) for p, s, _ in rows) == sorted([("web", "a1"), ("web", "a2"), ("web", "a3"), ("api", "b1"), ("api", "b2")])
    assert all(c == "s-up" for _, _, c in rows), rows
    listeners = browser.evaluate("Array.from(document.querySelectorAll('tr[data-listener]')).map(r => r.textContent)")
    assert len(listeners) == 1 and "public" in listeners[0] and "proxy" in listeners[0], listeners

    backends["a2"].kill()
    killed = time.monotonic()
    browser.wait_for("document.querySelector('section[data-pool=\"web\"] tr[data-server=\"a2\"]').className === 's-down'",
                     2.0, "a2's row to turn red")
    color = browser.evaluate("getComputedStyle(document.querySelector('tr[data-server=\"a2\"] .state')).backgroundColor")
    assert color == "rgb(198, 40, 40)", color
    print(f"a2 red {time.monotonic() - killed:.2f}s after the kill")

    browser.evaluate("document.querySelector('tr[data-server=\"b1\"] button[data-action=\"drain\"]').click(); true")
    wait_until(lambda: gw.server_status("b1")["state"] == "drain", 5, what="b1 drained from the dashboard")
    browser.wait_for("document.querySelector('tr[data-server=\"b1\"]').className === 's-drain'", 3, "b1's row to show drain")
    browser.evaluate("document.querySelector('button[data-mode=\"redirect\"]').click(); true")
    browser.wait_for("document.querySelector('tr[data-listener=\"public\"]').children[1].textContent === 'redirect'",
                     3, "the listener to show redirect")
    browser.screenshot(ARTIFACTS / "dashboard.png")
    try:
        shutil.copy(ARTIFACTS / "dashboard.png", "/work/dashboard.png")
    except OSError:
        pass
    assert unexpected_errors(browser) == []


def test_a_wrong_login_is_refused_and_changes_nothing(demo_backend, gateway, browser):
    b1 = demo_backend("b1")
    gw = gateway(pools={"p": [b1]}, admin="auto")
    browser.navigate(f"http://{gw.admin}/")
    browser.wait_for("!document.getElementById('login').classList.contains('hidden')", 5, "the login form")
    browser.evaluate("document.getElementById('token').value = 'not-the-token-not-the-token-xxxxxx'; "
                     "document.getElementById('login-button').click(); true")
    browser.wait_for("document.getElementById('msg').textContent.startsWith('login failed')", 5, "the refusal")
    # The rows show (reads are open on loopback) but their buttons are refused without a session.
    browser.wait_for("document.querySelectorAll('tr[data-server]').length === 1", 5, "the row")
    browser.evaluate("document.querySelector('button[data-action=\"maint\"]').click(); true")
    browser.wait_for("document.getElementById('msg').textContent.includes('refused (401)')", 5, "the 401")
    assert gw.server_status("b1")["state"] == "up"
    # The two 401s are the only failed requests.
    assert [e for e in browser.network_errors if "401" not in e.get("text", "")
            and not e.get("url", "").endswith("/metrics")] == []
    assert browser.errors == []


def test_two_hundred_servers_render_all_rows(gateway, browser):
    # Addresses nobody serves, without health checks: the page's work, not the backends', is measured here.
    servers = [Server(f"s{i:03d}", f"127.0.0.1:{20000 + i}") for i in range(200)]
    gw = gateway(pools={"big": servers[:120], "more": servers[120:]}, admin="auto",
                 routes=[{"name": "more", "path": "/more/", "pool": "more"}, {"name": "default", "path": "/", "pool": "big"}],
                 pool_options={"big": {"health": {"type": "none"}}, "more": {"health": {"type": "none"}}})
    browser.navigate(f"http://{gw.admin}/")
    log_in(browser)
    browser.wait_for("document.querySelectorAll('tr[data-server]').length === 200", 5, "200 rows")
    # Updated in place: the same row elements after another poll.
    browser.evaluate("window.firstRow = document.querySelector('tr[data-server=\"s000\"]'); true")
    before = browser.evaluate("document.getElementById('conn').textContent")
    browser.wait_for(f"document.getElementById('conn').textContent !== {json.dumps(before)}", 3, "the next poll")
    assert browser.evaluate("window.firstRow === document.querySelector('tr[data-server=\"s000\"]')")
    assert browser.evaluate("document.querySelectorAll('section.pool').length") == 2
    assert unexpected_errors(browser) == []


METRICS = """# HELP weir_server_responses_total Responses by status class.
# TYPE weir_server_responses_total counter
weir_server_responses_total{pool="web",server="a1",code="2xx"} %(ok)d
weir_server_responses_total{pool="web",server="a1",code="5xx"} %(bad)d
# TYPE weir_server_request_duration_seconds histogram
weir_server_request_duration_seconds_bucket{pool="web",server="a1",le="0.01"} %(b1)d
weir_server_request_duration_seconds_bucket{pool="web",server="a1",le="0.1"} %(b2)d
weir_server_request_duration_seconds_bucket{pool="web",server="a1",le="+Inf"} %(n)d
weir_server_request_duration_seconds_sum{pool="web",server="a1"} 1.5
weir_server_request_duration_seconds_count{pool="web",server="a1"} %(n)d
weir_server_in_flight{pool="web",server="a1"} 3
"""


def test_the_metrics_parser_gives_rates_error_rates_and_interpolated_percentiles(gateway, browser):
    gw = gateway(pools={"p": [Server("s", "127.0.0.1:1")]}, admin="auto", pool_options={"p": {"health": {"type": "none"}}})
    browser.navigate(f"http://{gw.admin}/")
    first = METRICS % {"ok": 100, "bad": 0, "b1": 50, "b2": 100, "n": 100}
    # One second later: 200 more answers, 20 of them 5xx; of the 200 new observations 100 took <= 10 ms, 80 more <= 100 ms.
    second = METRICS % {"ok": 280, "bad": 20, "b1": 150, "b2": 280, "n": 300}
    result = browser.evaluate(f"""(() => {{
        previous = {{t: 1000, servers: parseMetrics({json.dumps(first)})}};
        const d = derive(2000, parseMetrics({json.dumps(second)})).get("web\\u0000a1");
        return d;
    }})()""")
    assert result["rps"] == 200 and result["inFlight"] == 3
    assert abs(result["errors"] - 0.1) < 1e-9
    # p50 of the window: rank 100 of 200 falls at the top of the first bucket (100 <= 10 ms).
    assert abs(result["p50"] - 0.01) < 1e-9
    # p95: rank 190, in the +Inf bucket (180 observations <= 100 ms): its lower bound.
    assert abs(result["p95"] - 0.1) < 1e-9
    # Between bounds (since start): rank 210 of 300 lies in (10 ms, 100 ms], 60 of its 130 observations in.
    assert abs(browser.evaluate(f"quantile(0.7, parseMetrics({json.dumps(second)}).get('web\\u0000a1').buckets)")
               - (0.01 + 0.09 * (210 - 150) / 130)) < 1e-9
    assert unexpected_errors(browser) == []
