"""The I/O layer's rules seen from outside: answers Weir writes itself reach a TLS client before the
close (also while the client is still sending), the key exchange groups a TLS listener accepts, certificate
reloads racing new handshakes, and worker threads named at the OS level.

A test CA and two certificates are made once per module with the openssl CLI (tlsutil.PKI).
"""
from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import RawConn, wait_until
from tlsutil import PKI, TLSConn, client_context, s_client, tls_table


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki-io"))
    p.weir = p.issue("weir", "weir.test", ["DNS:weir.test", "DNS:*.weir.test", "IP:127.0.0.1"])
    p.other = p.issue("other", "other.test", ["DNS:other.test"])
    return p


# --------------------------------------------------------------------------------------------
# 1. Answers Weir writes itself are delivered over TLS before the close


ERRORS = {
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost: weir.test\r\nX-Space : b\r\n\r\n", 400),
    "uri-too-long": (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: weir.test\r\n\r\n", 414),
    "too-many-header-fields":
        (b"GET / HTTP/1.1\r\nHost: weir.test\r\n" + b"".join(b"X-N-%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    "headers-too-large":
        (b"GET / HTTP/1.1\r\nHost: weir.test\r\n" + b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 6990) for i in range(10))
         + b"\r\n", 431),
}


def read_error_answer(conn: RawConn) -> tuple[int, bytes]:
    """Status and body of the one response on `conn`, and asserts the connection is closed after it."""
    status, _, headers, _ = conn.read_head()
    length = int(dict((k.lower(), v) for k, v in headers).get("content-length", "0"))
    body = conn.read_exact(length)
    assert conn.is_closed(timeout=5), "the connection must be closed after the error response"
    return status, body


@pytest.mark.parametrize("name", list(ERRORS))
def test_error_answers_arrive_over_tls_before_the_close(demo_backend, gateway, pki, name):
    request, expected = ERRORS[name]
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    with TLSConn(gw.port, pki.ca.cert, timeout=5) as c:
        try:
            c.send(request)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass   # the gateway may answer and close before reading everything
        status, body = read_error_answer(c)
        assert status == expected, body
        assert body, "an error answer says why"


class SmallWindowTLSConn(TLSConn):
    """TLSConn with a small receive buffer (set before the connect, so the window stays small)."""

    def __init__(self, port: int, cafile: Path, rcvbuf: int):
        RawConn.__init__(self, "127.0.0.1", port, timeout=10, rcvbuf=rcvbuf)
        self.sock = client_context(cafile).wrap_socket(self.sock, server_hostname="weir.test")


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_error_answer_queued_behind_a_response_survives_a_client_still_sending(demo_backend, gateway, pki, tls):
    """A client with a small receive window pipelines a request for a 100 kB response and a malformed POST whose
    1 MiB body it sends in full before it reads anything. The 400 then waits in the gateway's socket buffer behind
    the response when the gateway is done. Closing with unread input there made the kernel reset the connection
    and throw away what it had not sent yet (the end of the response and the 400); the gateway now sends a FIN,
    reads and drops what the client still sends, and closes when the client has."""
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki) if tls else None)
    size = 100_000
    body = b"x" * (1 << 20)
    requests = (b"GET /?size=%d HTTP/1.1\r\nHost: weir.test\r\n\r\n" % size
                + b"POST /echo HTTP/1.1\r\nHost: weir.test\r\nX-Space : b\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    c = SmallWindowTLSConn(gw.port, pki.ca.cert, 4096) if tls else RawConn("127.0.0.1", gw.port, timeout=10, rcvbuf=4096)
    sent: list[str] = []

    def send_everything():
        try:
            c.sock.sendall(requests)
            sent.append("all")
        except (OSError, ssl.SSLError) as e:
            sent.append(repr(e))

    with c:
        sender = threading.Thread(target=send_everything, daemon=True)
        sender.start()
        sender.join(timeout=20)   # the client reads only once it has sent everything (or failed to)
        assert not sender.is_alive(), "the client could not send its requests within 20 s"
        status, _, _, _ = c.read_head()
        assert status == 200
        assert len(c.read_exact(size)) == size
        status, _, headers, _ = c.read_head()
        assert status == 400, sent
        assert c.read_exact(int(dict((k.lower(), v) for k, v in headers)["content-length"])).startswith(b"whitespace")
        assert c.is_closed(timeout=5)
    assert sent == ["all"], "the gateway reset the connection while the client was sending"


# --------------------------------------------------------------------------------------------
# 2. Key exchange groups: X25519, P-256, P-384 (Mozilla), not X448, P-521 or FFDHE


def test_only_mozilla_key_exchange_groups_are_accepted(demo_backend, gateway, pki):
    """TLS 1.3, where the client's groups are only about the key exchange (in TLS 1.2 the same list also limits
    the curve of an ECDSA certificate, so a client without P-256 fails there whatever the server offers)."""
    gw = gateway({"p": [demo_backend("b1")]}, tls=tls_table(pki))
    for group, shown in (("X25519", "X25519"), ("P-256", "ECDH, prime256v1"), ("P-384", "ECDH, secp384r1")):
        r = s_client(gw.port, "-tls1_3", "-groups", group, cafile=pki.ca.cert)
        assert r.handshake_ok, f"{group}: {r.out}"
        assert (r.field("Server Temp Key:") or "").startswith(shown), r.out
    for group in ("X448", "P-521", "ffdhe2048"):
        r = s_client(gw.port, "-tls1_3", "-groups", group, cafile=pki.ca.cert)
        assert not r.handshake_ok, f"{group} was accepted: {r.out}"
    # a client that prefers P-521 but also offers X25519 (a HelloRetryRequest away) gets X25519
    r = s_client(gw.port, "-tls1_3", "-groups", "P-521:X25519", cafile=pki.ca.cert)
    assert r.handshake_ok, r.out
    assert (r.field("Server Temp Key:") or "").startswith("X25519"), r.out


# --------------------------------------------------------------------------------------------
# 3. Certificate reloads racing handshakes


def test_certificate_reloads_racing_handshakes(demo_backend, gateway, pki, monkeypatch):
    """SIGHUP reloads (each frees the contexts it replaces) while two workers accept handshakes for the default,
    a wildcard and the SNI certificate: every handshake completes with the right certificate and the gateway
    survives. glibc's MALLOC_PERTURB_ fills freed memory, so that a context used after its release crashes rather
    than reads stale bytes; the window is microseconds per accept, so the sharp test of the race is the
    in-process one (Tests/WeirIOTests/TLSContextTests.swift)."""
    monkeypatch.setenv("MALLOC_PERTURB_", "165")
    gw = gateway({"p": [demo_backend("b1")]}, workers=2, tls=tls_table(pki))
    ctx = client_context(pki.ca.cert)
    stop = threading.Event()
    results: list[str] = []

    def handshakes(name: str, expected_cn: str):
        deadline = time.monotonic() + 20
        for _ in range(400):   # bounded in count and time
            if stop.is_set() or time.monotonic() > deadline:
                return
            try:
                with socket.create_connection(("127.0.0.1", gw.port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname=name) as s:
                        cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
                        results.append("ok" if cn == expected_cn else f"wrong certificate {cn} for {name}")
            except (OSError, ssl.SSLError) as e:
                results.append(f"{name}: {e!r}")

    clients = [threading.Thread(target=handshakes, args=a, daemon=True)
               for a in (("weir.test", "weir.test"), ("other.test", "other.test"), ("a.weir.test", "weir.test"))]
    for t in clients:
        t.start()
    reloads = 0
    try:
        deadline = time.monotonic() + 20
        while reloads < 150 and time.monotonic() < deadline and gw.proc.poll() is None:
            os.kill(gw.pid, signal.SIGHUP)
            reloads += 1
            # one at a time (signals that arrive together merge into one reload)
            wait_until(lambda: gw.stderr().count("reloaded (configuration") >= reloads or gw.proc.poll() is not None,
                       10, interval=0.002, what=f"reload {reloads}")
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=30)
    assert gw.proc.poll() is None, f"the gateway died: {gw.stderr()[-2000:]}"
    assert reloads >= 50, reloads
    assert results and all(r == "ok" for r in results), [r for r in results if r != "ok"][:5]


# --------------------------------------------------------------------------------------------
# 4. Thread names


def thread_names(pid: int) -> list[str]:
    names = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:   # a thread that just ended
            pass
    return names


def test_worker_threads_carry_their_names_at_the_os_level(demo_backend, gateway):
    gw = gateway({"p": [demo_backend("b1")]}, workers=3)
    expected = ["weir-worker-0", "weir-worker-1", "weir-worker-2"]

    def worker_names():
        return sorted(n for n in thread_names(gw.pid) if n.startswith("weir-worker-"))

    # the workers name themselves first thing; the gateway says "serving" once they were started
    try:
        wait_until(lambda: worker_names() == expected, 5, what=f"threads named {expected}")
    except AssertionError:
        raise AssertionError(f"thread names: {sorted(thread_names(gw.pid))}") from None
    # the main thread (the control loop) keeps the process's name, which ps, pgrep and killall match
    assert Path(f"/proc/{gw.pid}/comm").read_text().strip() == "weir"


# --------------------------------------------------------------------------------------------
# 5. Out of descriptors: accepting pauses instead of spinning


def cpu_ticks(pid: int) -> int:
    """User + system clock ticks the process has used (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_out_of_descriptors_pauses_accepting_and_recovers(demo_backend, gateway):
    """With its descriptor limit reached and connections waiting in the backlog, every accept fails with
    EMFILE. libevent alone then warns and tries again at once, in a loop (a core at 100 % and stderr flooded with
    "Error from accept() call"); Weir pauses accepting for 100 ms at a time and serves again once descriptors
    are free."""
    gw = gateway({"p": [demo_backend("b1")]}, workers=1, timeouts={"client_header": "30s", "client_idle": "30s"})
    fd_dir = Path(f"/proc/{gw.pid}/fd")
    limit = len(list(fd_dir.iterdir())) + 3
    subprocess.run(["prlimit", f"--pid={gw.pid}", f"--nofile={limit}:{limit}"], check=True, timeout=10)
    held = [socket.create_connection(("127.0.0.1", gw.port), timeout=5) for _ in range(10)]   # > 3 free descriptors
    try:
        wait_until(lambda: len(list(fd_dir.iterdir())) >= limit, 5, what="the gateway to use up its descriptors")
        before = cpu_ticks(gw.pid)
        time.sleep(1.0)   # the span over which a spinning loop shows (no event marks "still failing")
        used = cpu_ticks(gw.pid) - before
        warnings = gw.stderr().count("Error from accept() call")
        assert warnings == 0, f"{warnings} accept warnings from libevent in 1 s ({used} ticks of CPU)"
        assert used < 30, f"{used} ticks of CPU in 1 s while out of descriptors"
    finally:
        for s in held:
            s.close()
    # once the idle connections are gone the waiting ones are accepted and served
    with RawConn("127.0.0.1", gw.port, timeout=10) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.read_response().body == b"b1\n"
