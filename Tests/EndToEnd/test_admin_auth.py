"""Admin API safety (issue 13): state changes need the token, cross-site posts are refused, weir commands
send the token (README, "Admin API security")."""
from __future__ import annotations

import http.client
import os
import stat
import subprocess

from conftest import ADMIN_TOKEN


def request(gw, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
    """(status, headers as a dict of lower-cased names, body text) of one admin request."""
    host, _, port = gw.admin.rpartition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read().decode()
    finally:
        conn.close()


def state(gw, server: str) -> str:
    return gw.server_status(server)["state"]


def test_a_post_without_the_token_is_401_and_changes_nothing(demo_backend, gateway):
    b1, b2 = demo_backend("b1"), demo_backend("b2")
    gw = gateway(pools={"p": [b1, b2]}, admin="auto")
    status, headers, body = request(gw, "POST", "/servers/b1/drain")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="weir"', (status, headers)
    assert body.startswith("unauthorized: POST needs the admin token"), body
    status, _, body = request(gw, "POST", "/servers/b1/drain", {"Authorization": "Bearer not-the-token"})
    assert status == 401 and "the bearer token is wrong" in body, body
    status, _, _ = request(gw, "POST", "/mode?mode=redirect")
    assert status == 401
    assert state(gw, "b1") == "up"
    assert {l["mode"] for l in request_json(gw, "/mode")["listeners"]} == {"proxy"}
    status, _, body = request(gw, "POST", "/servers/b1/drain", {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 200, body
    assert state(gw, "b1") == "drain"


def request_json(gw, path: str) -> dict:
    import json
    status, _, body = request(gw, "GET", path)
    assert status == 200, (status, body)
    return json.loads(body)


def test_a_cross_site_form_post_with_the_cookie_is_403_and_a_wrong_login_401(demo_backend, gateway):
    b1 = demo_backend("b1")
    gw = gateway(pools={"p": [b1]}, admin="auto")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, headers, _ = request(gw, "POST", "/login", form, b"token=wrong-token")
    assert status == 401 and "set-cookie" not in headers
    status, headers, _ = request(gw, "POST", "/login", form, f"token={ADMIN_TOKEN}".encode())
    assert status == 200, headers
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie, cookie
    session = cookie.split(";")[0]
    evil = {**form, "Cookie": session, "Origin": "http://evil.example"}
    status, _, body = request(gw, "POST", "/servers/b1/drain", evil, b"x=1")
    assert status == 403 and "evil.example" in body, (status, body)
    status, _, _ = request(gw, "POST", "/servers/b1/drain", {**form, "Cookie": session, "Sec-Fetch-Site": "cross-site",
                                                            "X-Weir-CSRF": "1"}, b"x=1")
    assert status == 403
    # The cookie without the CSRF header (what a plain form can send from this very origin) is refused too.
    status, _, _ = request(gw, "POST", "/servers/b1/drain", {"Cookie": session})
    assert status == 403
    assert state(gw, "b1") == "up"
    own = {"Cookie": session, "Origin": f"http://{gw.admin}", "X-Weir-CSRF": "1"}
    status, _, body = request(gw, "POST", "/servers/b1/drain", own)
    assert status == 200, body
    assert state(gw, "b1") == "drain"


def test_weir_commands_use_the_generated_token_file(weir_bin, demo_backend, gateway, tmp_path):
    b1, b2 = demo_backend("b1"), demo_backend("b2")
    gw = gateway(pools={"p": [b1, b2]}, admin="auto", admin_token=None)
    token_file = tmp_path / "weir-state" / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text().strip()
    assert len(token) == 64 and token != ADMIN_TOKEN
    env = {k: v for k, v in os.environ.items() if k != "WEIR_ADMIN_TOKEN"}

    def weir(*args):
        return subprocess.run([str(weir_bin), *args], capture_output=True, text=True, timeout=20, env=env)

    refused = weir("server", "drain", "b1", "--admin", gw.admin)
    assert refused.returncode == 1 and "401" in refused.stderr, refused.stderr
    assert state(gw, "b1") == "up"
    drained = weir("server", "drain", "b1", "--admin", gw.admin, "-c", str(gw.confdir))
    assert drained.returncode == 0, drained.stderr
    assert state(gw, "b1") == "drain"
    mode = weir("mode", "redirect", "--admin", gw.admin, "--token", token)
    assert mode.returncode == 0, mode.stderr
    assert {l["mode"] for l in request_json(gw, "/mode")["listeners"]} == {"redirect"}
    env["WEIR_ADMIN_TOKEN"] = token
    assert weir("server", "enable", "b1", "--admin", gw.admin).returncode == 0
    assert state(gw, "b1") == "up"
    # A restart reuses the kept token.
    gw.terminate()
    again = gateway(pools={"p": [b1, b2]}, admin="auto", admin_token=None)
    assert token_file.read_text().strip() == token
    assert weir("server", "maint", "b2", "--admin", again.admin).returncode == 0


def start_with_admin(weir_bin, procs, tmp_path, backends, admin: str, admin_lines: str, name: str):
    """A gateway with [admin] address `admin` and the further [admin] lines `admin_lines`: (process, confdir, stderr path)."""
    from conftest import free_port, render_config
    confdir = tmp_path / name
    confdir.mkdir()
    text = render_config(port_host="127.0.0.1", port=free_port(), pools={"p": backends}, routes=None, workers=1,
                         access_log="off", timeouts={}, limits={}, global_extra={"state_dir": str(tmp_path / "weir-state")},
                         listener_extra={}, extra="", admin=admin, admin_token=None)
    (confdir / "00-weir.toml").write_text(text.replace("[admin]\n", "[admin]\n" + admin_lines, 1))
    err = confdir / "stderr.log"
    with open(err, "wb") as e:
        p = procs.start([str(weir_bin), "run", "-c", str(confdir)], stdout=subprocess.DEVNULL, stderr=e)
    return p, confdir, err


def start_unix_admin(weir_bin, procs, tmp_path, backends, socket_path, name: str):
    """A gateway whose admin listener is the Unix socket `socket_path` (socket_mode 0660)."""
    return start_with_admin(weir_bin, procs, tmp_path, backends, f"unix:{socket_path}", 'socket_mode = "0660"\n', name)


def test_a_token_file_is_read_again_at_reload(weir_bin, procs, demo_backend, tmp_path):
    import signal
    from conftest import free_port, wait_until
    b1, b2 = demo_backend("b1"), demo_backend("b2")
    token_file = tmp_path / "admin.token"
    old, new = "o" * 40, "n" * 40
    token_file.write_text(old + "\n")
    address = f"127.0.0.1:{free_port()}"
    p, confdir, err = start_with_admin(weir_bin, procs, tmp_path, [b1, b2], address, f'token_file = "{token_file}"\n', "file")
    wait_until(lambda: b"weir: serving" in err.read_bytes(), 10, what="the gateway serving")

    class Gw:
        admin = address
    assert request(Gw, "POST", "/servers/b1/drain", {"Authorization": f"Bearer {old}"})[0] == 200
    token_file.write_text(new + "\n")
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: b"SIGHUP: reloaded" in err.read_bytes(), 10, what="the reload")
    assert request(Gw, "POST", "/servers/b1/enable", {"Authorization": f"Bearer {old}"})[0] == 401
    assert request(Gw, "POST", "/servers/b1/enable", {"Authorization": f"Bearer {new}"})[0] == 200
    # A token file gone at reload: the reload fails naming file and key, the token in force stays.
    token_file.unlink()
    p.send_signal(signal.SIGHUP)
    wait_until(lambda: b"reload FAILED" in err.read_bytes(), 10, what="the failed reload")
    line = [l for l in err.read_text().splitlines() if "reload FAILED" in l or "admin.token_file" in l]
    assert any("00-weir.toml: admin.token_file: cannot read secret file" in l for l in err.read_text().splitlines()), line
    assert request(Gw, "POST", "/servers/b1/drain", {"Authorization": f"Bearer {new}"})[0] == 200


def test_the_admin_listener_on_a_unix_socket(weir_bin, procs, demo_backend, tmp_path):
    from conftest import curl, wait_until
    b1, b2 = demo_backend("b1"), demo_backend("b2")
    sock = tmp_path / "admin.sock"
    # A stale socket file (nobody accepts on it) is replaced.
    import socket as s
    stale = s.socket(s.AF_UNIX, s.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()
    p, confdir, err = start_unix_admin(weir_bin, procs, tmp_path, [b1, b2], sock, "unix")
    wait_until(lambda: b"weir: serving" in err.read_bytes(), 10, what="the gateway serving")
    assert f"admin on unix:{sock}".encode() in err.read_bytes()
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    r = curl("http://localhost/status", "--unix-socket", str(sock))
    assert r.status == 200 and b'"pools"' in r.body, r
    # File permissions are the protection here: no token is asked.
    r = curl("http://localhost/servers/b1/drain", "--unix-socket", str(sock), "-X", "POST")
    assert r.status == 200, r.body
    env = {k: v for k, v in os.environ.items() if k != "WEIR_ADMIN_TOKEN"}
    enabled = subprocess.run([str(weir_bin), "server", "enable", "b1", "--admin", f"unix:{sock}"],
                             capture_output=True, text=True, timeout=20, env=env)
    assert enabled.returncode == 0, enabled.stderr
    status = subprocess.run([str(weir_bin), "status", "-c", str(confdir), "--json"], capture_output=True, text=True,
                            timeout=20, env=env)
    assert status.returncode == 0, status.stderr
    assert '"state" : "up"' in status.stdout or '"state": "up"' in status.stdout, status.stdout
    # A second gateway on the same live socket refuses to start, and says why.
    q, _, err2 = start_unix_admin(weir_bin, procs, tmp_path, [b1, b2], sock, "second")
    assert q.wait(timeout=15) == 1
    assert "another process listens there" in err2.read_text(), err2.read_text()
    assert sock.exists()
    # Stopped, the gateway removes its socket file.
    p.terminate()
    p.wait(timeout=15)
    assert not sock.exists()
