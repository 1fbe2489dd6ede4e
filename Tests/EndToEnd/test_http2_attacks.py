"""HTTP/2 attacks against Weir (issue 14): rapid reset (CVE-2023-44487), MadeYouReset (CVE-2025-8671), the
CONTINUATION flood, PING/SETTINGS/PRIORITY floods and a zero-window stall, each from a raw-frame client
(h2attack.py). Each test checks that Weir sends GOAWAY(ENHANCE_YOUR_CALM) or resets, that its CPU time during
the attack stays within a fixed generous budget (utime + stime from /proc, not wall time), that the backend did
not receive the flood, and that a normal HTTP/2 client's requests during the attack succeed. A legitimate
canceller (curl, browsers) is not cut off.

Skipped when Weir does not offer h2 by ALPN (a build without HTTP/2).
"""
import os
import threading
import time

import pytest

h2attack = pytest.importorskip("h2attack", reason="needs Python h2 (make test-deps)")
from conftest import curl  # noqa: E402
from tlsutil import listener_pki, curl_tls_args, tls_table  # noqa: E402

# Glitch threshold (default 1000) plus the concurrent streams (100) plus a batch in flight: the most requests
# an attacker's flood may land on the backend before Weir cuts it off.
FLOOD_REACH = 1000 + 100 + 100
# CPU seconds Weir may spend on one attack (a debug build included); an unguarded flood takes far more.
CPU_BUDGET = 6.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return listener_pki(tmp_path_factory.mktemp("pki"))


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


NO_H2 = []  # set once a gateway turned out not to offer h2: the later tests skip without starting one


@pytest.fixture
def h2gw(demo_backend, gateway, pki):
    if NO_H2:
        pytest.skip("this Weir does not offer h2 by ALPN")
    backend = demo_backend("b1")
    gw = gateway({"p": [backend]}, tls=tls_table(pki),
                 extra='[http2]\nzero_window_timeout = "1s"\n')
    try:
        h2attack.H2Conn("127.0.0.1", gw.port, cafile=pki.ca.cert).close()
    except AssertionError:
        NO_H2.append(True)
        pytest.skip("this Weir does not offer h2 by ALPN")
    return gw, backend


class NormalClient(threading.Thread):
    """curl --http2 requests in a loop (bounded) while an attack runs."""

    def __init__(self, gw, pki):
        super().__init__(daemon=True)
        self.gw, self.pki = gw, pki
        self.ok, self.failed, self.stopping = 0, [], threading.Event()

    def run(self):
        for _ in range(200):
            if self.stopping.is_set():
                break
            r = curl(self.gw.https_url("/?body=normal", host="weir.test"), "--http2",
                     *curl_tls_args(self.pki.ca.cert, self.gw.port), timeout=10)
            if r.status == 200 and r.body == b"normal":
                self.ok += 1
            else:
                self.failed.append(r)
            time.sleep(0.02)

    def finish(self):
        # at least one request after the attack began, then stop
        deadline = time.monotonic() + 10
        while self.ok + len(self.failed) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.stopping.set()
        self.join(15)


def under_attack(h2gw, pki, attack, *, settings=None):
    """Runs `attack(conn)` with a normal client alongside; returns (outcome, cpu seconds, backend requests
    caused by the attacker)."""
    gw, backend = h2gw
    requests_before = backend.stats()["requests"]
    normal = NormalClient(gw, pki)
    cpu_before = cpu_seconds(gw.pid)
    normal.start()
    with h2attack.H2Conn("127.0.0.1", gw.port, cafile=pki.ca.cert, settings=settings) as conn:
        outcome = attack(conn)
    normal.finish()
    cpu = cpu_seconds(gw.pid) - cpu_before
    assert not normal.failed, f"normal client failed during the attack: {normal.failed[:2]}"
    assert normal.ok >= 1
    # the normal client's requests, and the stats request itself, are not the attacker's
    caused = backend.stats()["requests"] - requests_before - normal.ok - 1
    assert gw.proc.poll() is None, "Weir died"
    return outcome, cpu, caused


# GOAWAY codes that end an attacker's connection: ENHANCE_YOUR_CALM from Weir's guard (or a flood nghttp2
# detects), or a connection error nghttp2 1.52 raises itself on the first offence (DATA on a half-closed
# stream is STREAM_CLOSED, streams past the concurrency limit PROTOCOL_ERROR): cut off sooner still.
CALM = (h2attack.ENHANCE_YOUR_CALM,)
CUT_OFF = (h2attack.ENHANCE_YOUR_CALM, 0x1, 0x5)


def assert_calmed(outcome, cpu, caused=0, reach=FLOOD_REACH, codes=CALM):
    assert outcome.goaway in codes, outcome
    assert cpu < CPU_BUDGET, f"Weir spent {cpu:.2f} s CPU on the attack"
    assert caused <= reach, f"the backend received {caused} of the attacker's requests"


def test_rapid_reset_is_cut_off(h2gw, pki):
    outcome, cpu, caused = under_attack(h2gw, pki, lambda c: h2attack.rapid_reset(c, count=20000))
    assert_calmed(outcome, cpu, caused)
    assert b"client resets" in outcome.goaway_debug


def test_made_you_reset_data_after_end_stream_is_cut_off(h2gw, pki):
    outcome, cpu, caused = under_attack(h2gw, pki, lambda c: h2attack.provoked_resets(c, count=20000))
    assert_calmed(outcome, cpu, caused, codes=CUT_OFF)


def test_made_you_reset_window_overflow_is_cut_off(h2gw, pki):
    outcome, cpu, caused = under_attack(h2gw, pki, lambda c: h2attack.window_overflow_resets(c, count=20000))
    # The streams nghttp2 resets stay open until its RST_STREAM is out: when one read carries more than
    # the concurrency limit of them, nghttp2 ends the connection itself (PROTOCOL_ERROR) before the guard
    # does; which one comes first depends on how the attacker's bytes are split into reads.
    assert_calmed(outcome, cpu, caused, codes=CUT_OFF)


def test_continuation_flood_is_cut_off_before_hpack(h2gw, pki):
    outcome, cpu, caused = under_attack(h2gw, pki, lambda c: h2attack.continuation_flood(c, frames=100000))
    assert_calmed(outcome, cpu, caused, reach=0)
    # nghttp2 stops at its 8th CONTINUATION (Debian's back-ported limit), the guard at 32; what the client
    # managed to send meanwhile is what the loopback socket buffers absorb (a few 200-frame batches).
    assert outcome.sent <= 5 * 200, "Weir read far past the header block's frame limit"


@pytest.mark.parametrize("flood", ["ping_flood", "settings_flood", "priority_flood"])
def test_control_frame_floods_are_cut_off(h2gw, pki, flood):
    outcome, cpu, caused = under_attack(h2gw, pki, lambda c: getattr(h2attack, flood)(c, count=100000))
    assert_calmed(outcome, cpu, caused, reach=0)


def test_zero_window_stall_is_closed_after_the_timeout(h2gw, pki):
    # INITIAL_WINDOW_SIZE 0: Weir can never send the 1 MB body; zero_window_timeout is 1 s in this config.
    outcome, cpu, _ = under_attack(h2gw, pki, lambda c: h2attack.zero_window(c, "/?size=1000000", seconds=6),
                                   settings={4: 0})
    assert outcome.resets >= 1 or outcome.goaway is not None or outcome.closed, outcome
    assert outcome.seconds < 5, f"the stalled stream was kept {outcome.seconds:.1f} s"
    assert cpu < CPU_BUDGET


def test_legitimate_canceller_is_not_cut_off(h2gw, pki):
    gw, _ = h2gw
    # 1500 cancels (past the 1000 threshold), each after its response head, alternating with completed streams
    with h2attack.H2Conn("127.0.0.1", gw.port, cafile=pki.ca.cert) as conn:
        outcome = h2attack.cancel_after_response(conn, rounds=1500, path="/?size=100000", seconds=40)
    assert outcome.goaway is None and not outcome.closed, outcome
    assert outcome.sent == 1500
    assert len(outcome.streams_done) >= 1500
