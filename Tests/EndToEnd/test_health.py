"""`weir health` (issue 15, keepalived's track_script): exit 0 and "ok" only when the listeners
accept, every worker loop turns and every pool has a server up; exit 1 and a one-line reason
otherwise. Also GET /health itself (200 / 503) and how fast the command is."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
import urllib.error
import urllib.request

from conftest import ADMIN_AUTH, free_port, render_config, wait_until


def health(weir_bin, gw, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([str(weir_bin), "health", "--admin", gw.admin, *extra], capture_output=True, text=True, timeout=10)


def post(gw, path: str) -> None:
    req = urllib.request.Request(f"http://{gw.admin}{path}", method="POST", headers=ADMIN_AUTH)
    urllib.request.urlopen(req, timeout=5).read()


def test_healthy_gateway_says_ok_fast(weir_bin, demo_backend, gateway):
    gw = gateway(pools={"p": [demo_backend("h1")]}, workers=2, admin="auto")
    r = health(weir_bin, gw)
    assert (r.returncode, r.stdout) == (0, "ok\n"), r
    times = []
    for _ in range(20):
        start = time.monotonic()
        assert health(weir_bin, gw).returncode == 0
        times.append(time.monotonic() - start)
    median = statistics.median(times)
    print(f"weir health: median {median * 1000:.1f} ms over 20 runs (max {max(times) * 1000:.1f} ms)")
    assert median < 0.1, f"weir health takes {median * 1000:.0f} ms (median of 20)"
    with urllib.request.urlopen(f"http://{gw.admin}/health", timeout=5) as resp:
        document = json.loads(resp.read())
    assert document["ok"] and document["reason"] == "ok"
    assert [p["name"] for p in document["pools"]] == ["p"] and document["pools"][0]["available"] == 1
    assert len(document["worker_heartbeat_age_ms"]) == 2 and all(a < 1000 for a in document["worker_heartbeat_age_ms"])
    assert document["listeners"] == [{"name": "public", "address": "127.0.0.1", "port": gw.port}]


def test_pool_without_a_server_up_fails_with_its_name(weir_bin, demo_backend, gateway):
    gw = gateway(pools={"p": [demo_backend("h1"), demo_backend("h2")], "q": [demo_backend("h3")]}, admin="auto")
    post(gw, "/servers/h1/maint")
    assert health(weir_bin, gw).returncode == 0   # h2 still up
    post(gw, "/servers/h2/drain")                 # drained takes no new requests: not available
    r = health(weir_bin, gw)
    assert (r.returncode, r.stdout) == (1, "pool p: no server available (2 configured, none up)\n"), r
    try:
        urllib.request.urlopen(f"http://{gw.admin}/health", timeout=5)
        raise AssertionError("GET /health answered 2xx for an unhealthy gateway")
    except urllib.error.HTTPError as error:
        assert error.code == 503 and json.loads(error.read())["reason"].startswith("pool p:")
    post(gw, "/servers/h2/enable")
    assert health(weir_bin, gw).stdout == "ok\n"


def test_stopped_gateway_fails(weir_bin, demo_backend, gateway):
    gw = gateway(pools={"p": [demo_backend("h1")]}, admin="auto")
    gw.proc.kill()
    gw.proc.wait(timeout=5)
    r = health(weir_bin, gw)
    assert r.returncode == 1 and r.stdout.startswith("admin listener: cannot reach"), r
    assert len(r.stdout.splitlines()) == 1


def test_stuck_worker_fails_with_its_name(weir_bin, procs, tmp_path, demo_backend):
    """The test-only fault switch blocks worker 1 half a second after start; its heartbeat stops."""
    backend = demo_backend("h1")
    port, admin = free_port(), f"127.0.0.1:{free_port()}"
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "00-weir.toml").write_text(render_config(
        port_host="127.0.0.1", port=port, pools={"p": [backend]}, routes=None, workers=2, access_log="off",
        timeouts={}, limits={}, global_extra={"state_dir": str(tmp_path / "state")}, listener_extra={}, extra="",
        admin=admin))
    env = dict(os.environ, WEIR_TEST_FAULT="block-worker-1-after-ms=500")
    procs.start([weir_bin, "run", "-c", conf], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = lambda: subprocess.run([str(weir_bin), "health", "--admin", admin, "--stale-ms", "300"],
                                 capture_output=True, text=True, timeout=10)
    wait_until(lambda: run().stdout.startswith("worker weir-worker-1: loop has not turned for"), 10,
               what="weir health to name the stuck worker")
    assert run().returncode == 1
