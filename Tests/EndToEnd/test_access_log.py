"""Access-log formats and operational log levels, end to end (README "Logs").

* `access_log_format = "json"`: every line parses with json.loads and carries every field with the
  values of a known request (status, bytes the client received, server, pool, method, target,
  version, timings, the TLS version on an HTTPS listener), also for a hostile request line.
* `combined`: the nginx/Apache line.
* SIGUSR1 after `mv access.log access.log.1`: the lines before the signal are in the old file, the
  ones after in the new one, and together they hold exactly every request (none lost, none twice).
* Operational messages: `<N>` priority prefixes when standard error is the journal (JOURNAL_STREAM),
  a timestamp and the level word otherwise; `log_level = "warning"` hides notice and info.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone

from conftest import RawConn, can_connect, curl, free_port, render_config, wait_until
from test_tls import https, pki  # noqa: F401  (pki is a fixture)

FIELDS = ["time", "client", "client_port", "listener", "method", "target", "version", "status", "bytes",
          "server", "pool", "duration_ms", "upstream_connect_ms", "upstream_ms", "pin", "mode", "tls",
          "user_agent", "referer"]
HEALTH = {"type": "http", "interval": "200ms", "timeout": "150ms", "rise": 2, "fall": 2, "path": "/health"}


def json_lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_json_lines_carry_every_field(demo_backend, gateway, tmp_path):
    b1 = demo_backend("b1")
    log = tmp_path / "access.log"
    gw = gateway({"web": [b1]}, access_log=str(log), global_extra={"access_log_format": "json"})
    with RawConn(gw.host, gw.port) as c:
        c.send(b"GET /echo?x=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: weir-test/1 \"quoted\"\r\n"
               b"Referer: http://ref.example/a\r\n\r\n")
        r = c.read_response()
        port = c.sock.getsockname()[1]
        assert r.status == 200
        received = len(r.raw_head) + len(r.body)
        # A request line with a quote, a backslash and a byte that is not UTF-8: refused, still one JSON line.
        c.send(b'GET /a"b\\c\xff HTTP/1.1\r\nHost: t\r\n\r\n')
        bad = c.read_response()
    assert gw.terminate() == 0   # the drain flushes the batch
    ok, hostile = json_lines(log)
    assert list(ok) == FIELDS and list(hostile) == FIELDS, ok
    assert ok["client"] == "127.0.0.1" and ok["client_port"] == port and ok["listener"] == "public"
    assert (ok["method"], ok["target"], ok["version"]) == ("GET", "/echo?x=1", "HTTP/1.1")
    assert ok["status"] == 200 and ok["bytes"] == received, (ok, received)
    assert ok["server"] == "b1" and ok["pool"] == "web" and ok["mode"] == "proxy" and ok["pin"] is None
    assert ok["tls"] is None
    assert ok["user_agent"] == 'weir-test/1 "quoted"' and ok["referer"] == "http://ref.example/a"
    assert isinstance(ok["upstream_connect_ms"], int) and isinstance(ok["upstream_ms"], int)
    assert 0 <= ok["upstream_connect_ms"] <= ok["upstream_ms"] <= ok["duration_ms"] < 5000, ok
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ok["time"]), ok["time"]
    logged = datetime.strptime(ok["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - logged).total_seconds()) < 60
    assert hostile["status"] == bad.status == 400 and hostile["server"] is None and hostile["upstream_ms"] is None
    assert hostile["method"] == "GET" and hostile["target"] == '/a"b\\c\ufffd', hostile


def test_json_line_names_the_tls_version(demo_backend, gateway, pki, tmp_path):  # noqa: F811
    log = tmp_path / "access.log"
    gw = gateway({"p": [demo_backend("b1")]}, access_log=str(log), global_extra={"access_log_format": "json"},
                 tls={"cert": str(pki.weir.cert), "key": str(pki.weir.key)})
    assert https(gw, pki, "/tls12", "--tls-max", "1.2").status == 200
    assert https(gw, pki, "/tls13", "--tlsv1.3").status == 200
    assert curl(gw.https_url("/nothing"), "--http1.1", "-k").status == 200
    assert gw.terminate() == 0
    versions = {line["target"]: line["tls"] for line in json_lines(log)}
    assert versions == {"/tls12": "TLSv1.2", "/tls13": "TLSv1.3", "/nothing": "TLSv1.3"}, versions


COMBINED = re.compile(r'^(\S+) - - \[(\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$')


def test_combined_lines(demo_backend, gateway):
    gw = gateway({"p": [demo_backend("b1")]}, global_extra={"access_log_format": "combined"})
    assert curl(gw.url("/c?x=1"), "-A", "agent/1.0", "-e", "http://ref.example/").status == 200
    assert curl(gw.url("/plain"), "-A", "").status == 200
    assert gw.terminate() == 0
    first, second = gw.stdout().splitlines()
    m = COMBINED.match(first)
    assert m, first
    assert m.group(1) == "127.0.0.1" and m.group(3) == "GET /c?x=1 HTTP/1.1" and m.group(4) == "200"
    assert (m.group(6), m.group(7)) == ("http://ref.example/", "agent/1.0")
    datetime.strptime(m.group(2), "%d/%b/%Y:%H:%M:%S %z")
    m = COMBINED.match(second)
    assert m and (m.group(6), m.group(7)) == ("-", "-"), second


def _send_requests(gw, tag: str, connections: int = 4, per_connection: int = 50):
    """connections × per_connection keep-alive GETs of /TAG-<n>, the connections in parallel."""
    errors = []

    def run(c: int):
        conn = http.client.HTTPConnection(gw.host, gw.port, timeout=10)
        try:
            for i in range(per_connection):
                conn.request("GET", f"/{tag}-{c * per_connection + i}")
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append(resp.status)
        finally:
            conn.close()

    threads = [threading.Thread(target=run, args=(c,)) for c in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and not any(t.is_alive() for t in threads), errors
    return {f"/{tag}-{n}" for n in range(connections * per_connection)}


def test_sigusr1_reopens_the_log_and_loses_nothing(demo_backend, gateway, tmp_path):
    log = tmp_path / "access.log"
    gw = gateway({"p": [demo_backend("b1")]}, workers=2, access_log=str(log),
                 global_extra={"access_log_format": "json"})
    before = _send_requests(gw, "before")
    # Lines still batched in the workers go to the old file when the signal comes.
    os.rename(log, tmp_path / "access.log.1")
    os.kill(gw.pid, signal.SIGUSR1)
    wait_until(lambda: "access log reopened" in gw.stderr(), 5, what="the reopen message")
    assert log.exists()
    after = _send_requests(gw, "after")
    assert gw.terminate() == 0
    old = [line["target"] for line in json_lines(tmp_path / "access.log.1")]
    new = [line["target"] for line in json_lines(log)]
    assert sorted(old) == sorted(before) and len(old) == 200, (len(old), set(old) ^ before)
    assert sorted(new) == sorted(after) and len(new) == 200, (len(new), set(new) ^ after)
    assert re.search(r"^\S+Z notice weir: SIGUSR1: access log reopened$", gw.stderr(), re.M), gw.stderr()


def test_missing_access_log_directory_names_the_key(demo_backend, weir_bin, tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    missing = tmp_path / "no-such-dir"
    (conf / "00.toml").write_text(_config(demo_backend("b1"), access_log=str(missing / "access.log")))
    p = subprocess.run([weir_bin, "run", "-c", conf], capture_output=True, text=True, timeout=30)
    assert p.returncode == 1
    assert f'[global] access_log = "{missing}/access.log": cannot open it for appending' in p.stderr, p.stderr
    assert "No such file or directory" in p.stderr and f"the directory {missing} must exist and be writable" in p.stderr


def test_unwritable_access_log_directory_names_the_key(demo_backend, weir_bin, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):
        locked.chmod(0o700)
        import pytest
        pytest.skip("running as root: every directory is writable")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "00.toml").write_text(_config(demo_backend("b1"), access_log=str(locked / "access.log")))
    p = subprocess.run([weir_bin, "run", "-c", conf], capture_output=True, text=True, timeout=30)
    locked.chmod(0o700)
    assert p.returncode == 1
    assert f'[global] access_log = "{locked}/access.log": cannot open it for appending' in p.stderr, p.stderr
    assert "Permission denied" in p.stderr and f"the directory {locked} must exist and be writable" in p.stderr


# --------------------------------------------------------------------------------------------
# Operational messages


def _config(*backends, access_log="off", global_extra: dict | None = None, port: int | None = None) -> str:
    return render_config(port_host="127.0.0.1", port=port or free_port(), pools={"p": list(backends)}, routes=None,
                         workers=1, access_log=access_log, timeouts={}, limits={}, global_extra=global_extra or {},
                         listener_extra={}, extra="", pool_options={"p": {"health": HEALTH, "slow_start": "0s"}})


def _start_under_journal(procs, weir_bin, tmp_path, text: str, port: int):
    """Starts `weir run` with standard error on a file and JOURNAL_STREAM naming that file (as systemd
    does for the journal); returns (process, stderr path) once the listener accepts."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "00.toml").write_text(text)
    err = tmp_path / "stderr.log"
    with open(err, "wb") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        p = procs.start([weir_bin, "run", "-c", conf], stdout=subprocess.DEVNULL, stderr=f, env=env)
    wait_until(lambda: p.poll() is None and can_connect("127.0.0.1", port), 10, what="the gateway to listen")
    return p, err


def test_journal_stream_gives_priority_prefixes(demo_backend, procs, weir_bin, tmp_path):
    b1, b2 = demo_backend("b1"), demo_backend("b2")
    port = free_port()
    p, err = _start_under_journal(procs, weir_bin, tmp_path, _config(b1, b2, port=port), port)
    wait_until(lambda: "<5>weir: serving " in err.read_text(), 5, what="the serving line")
    b2.kill()
    wait_until(lambda: "<4>weir: server b2 is down" in err.read_text(), 5, what="b2 to go down")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    lines = err.read_text().splitlines()
    assert lines and all(re.match(r"<[3-7]>weir", line) for line in lines), lines
    assert any(line.startswith("<5>weir: stopped; ") for line in lines), lines


def test_log_level_warning_hides_info_and_notice(demo_backend, procs, weir_bin, tmp_path):
    b1, b2 = demo_backend("b1"), demo_backend("b2")
    port = free_port()
    text = _config(b1, b2, port=port, global_extra={"log_level": "warning"})
    p, err = _start_under_journal(procs, weir_bin, tmp_path, text, port)
    b2.kill()
    wait_until(lambda: "<4>weir: server b2 is down" in err.read_text(), 5, what="b2 to go down")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=15) == 0
    lines = err.read_text().splitlines()
    assert all(line.startswith(("<3>", "<4>")) for line in lines), lines
    assert not any("weir: serving" in line or "weir: stopped" in line for line in lines), lines


def test_plain_lines_carry_a_timestamp_and_the_level(demo_backend, gateway):
    gw = gateway({"p": [demo_backend("b1")]})
    assert gw.terminate() == 0
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z notice weir: serving ", gw.stderr(), re.M), gw.stderr()


def test_json_pin_follows_the_sticky_transaction(demo_backend, gateway, tmp_path):
    from stickyutil import start_sticky_gateway
    log = tmp_path / "access.log"
    backends = [demo_backend(f"b{i}") for i in (1, 2)]
    gw = start_sticky_gateway(gateway, tmp_path, backends, access_log=str(log),
                              global_extra={"access_log_format": "json"})
    jar = tmp_path / "jar.txt"
    for path in ("/banking/", "/banking/step", "/catalog", "/banking/logout"):
        assert curl(gw.url(path), "-c", str(jar), "-b", str(jar)).status == 200
    # A pin that does not verify is balanced anew, and counted.
    assert curl(gw.url("/banking/step"), "-b", "weir_pin=forged").status == 200
    assert gw.terminate() == 0
    pins = [(line["target"], line["pin"]) for line in json_lines(log)]
    assert pins == [("/banking/", "new"), ("/banking/step", "kept"), ("/catalog", None),
                    ("/banking/logout", "ended"), ("/banking/step", "rejected")], pins


def test_json_names_a_redirect_and_its_server(demo_backend, gateway, tmp_path):
    from test_redirect import public
    log = tmp_path / "access.log"
    gw = gateway({"p": [public(demo_backend("s1"))]}, access_log=str(log), listener_extra={"mode": "redirect"},
                 global_extra={"access_log_format": "json"})
    assert curl(gw.url("/go")).status == 307
    assert gw.terminate() == 0
    (line,) = json_lines(log)
    assert (line["mode"], line["status"], line["server"], line["pool"]) == ("redirect", 307, "s1", "p"), line
    assert line["upstream_ms"] is None and line["upstream_connect_ms"] is None
