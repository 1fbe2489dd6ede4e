"""Binary upgrade (`weir upgrade`, SIGUSR2): the new process takes over the listening sockets of
every worker, the old one drains; under a mixed load nothing is refused, reset or failed. A new
binary that cannot start leaves the old one serving and says why.

The binary is a copy in the test's tmp directory: "installing" a new one replaces that file (a new
inode, as a package upgrade does), and the running process must find it by the path it was
started from.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import can_connect, curl, free_port, render_config, wait_until
from loadloop import LoadLoop
from tlsutil import PKI


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    p = PKI(tmp_path_factory.mktemp("pki"))
    p.weir = p.issue("weir", "weir.test", ["DNS:weir.test", "IP:127.0.0.1"])
    return p


# --------------------------------------------------------------------------------------------
# Processes that are not the test's children (a new process is started by the old one)


def alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting for its parent to reap it has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def listening_inodes(port: int) -> set[int]:
    """Socket inodes of the TCP sockets listening on `port` (IPv4 and IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and f[3] == "0A":
                inodes.add(int(f[9]))
    return inodes


def holders(pids, port: int) -> dict[int, int]:
    """{pid: how many of the sockets listening on `port` it holds} for the live `pids`."""
    inodes = listening_inodes(port)
    out = {}
    for pid in pids:
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        held = sum(1 for link in links if (m := re.fullmatch(r"socket:\[(\d+)\]", link)) and int(m.group(1)) in inodes)
        if held:
            out[pid] = held
    return out


def stop_pid(pid: int, timeout: float = 10.0):
    """SIGTERM to a process the test did not start itself, then SIGKILL."""
    if not alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# A gateway started from a binary in tmp, with a plain and a TLS listener


@dataclass
class Upgradable:
    binary: Path
    confdir: Path
    proc: subprocess.Popen
    port: int
    tls_port: int
    admin: str
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def url(self, path="/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def https_url(self, path="/") -> str:
        return f"https://127.0.0.1:{self.tls_port}{path}"

    def upgrade(self, *args, timeout: float = 30) -> subprocess.CompletedProcess:
        """`weir upgrade` run with the binary now installed (the new one)."""
        return subprocess.run([str(self.binary), "upgrade", "--admin", self.admin, *map(str, args)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)

    def install(self, source: Path):
        """Replaces the binary as a package upgrade does: a new file renamed over the old path."""
        staged = self.binary.with_name(self.binary.name + ".new")
        shutil.copy2(source, staged)
        os.replace(staged, self.binary)


@pytest.fixture
def upgradable(weir_bin, procs, demo_backend, pki, tmp_path):
    """Factory: upgradable(workers=2) -> Upgradable; every process it leads to is stopped at the end."""
    started_pids: list[int] = []

    def start(workers: int = 2, drain_timeout: str = "10s", extra: str = "") -> Upgradable:
        b1, b2 = demo_backend("b1"), demo_backend("b2")
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        binary = bindir / "weir"
        shutil.copy2(weir_bin, binary)
        port, tls_port, admin_port = free_port(), free_port(), free_port()
        confdir = tmp_path / "conf.d"
        confdir.mkdir()
        tls_listener = (f'[[listener]]\nname = "secure"\naddress = "127.0.0.1:{tls_port}"\n'
                        f'[listener.tls]\ncert = "{pki.weir.cert}"\nkey = "{pki.weir.key}"\n')
        (confdir / "00-weir.toml").write_text(render_config(
            port_host="127.0.0.1", port=port, pools={"p": [b1, b2]}, routes=None, workers=workers,
            access_log="off", timeouts={}, limits={},
            global_extra={"state_dir": str(tmp_path / "state"), "drain_timeout": drain_timeout},
            listener_extra={}, extra=tls_listener + extra, admin=f"127.0.0.1:{admin_port}"))
        err = tmp_path / "weir.stderr"
        with open(err, "wb") as f:
            p = procs.start([binary, "run", "-c", confdir], stdout=subprocess.DEVNULL, stderr=f)
        started_pids.append(p.pid)
        wait_until(lambda: p.poll() is None and b"weir: serving" in err.read_bytes()
                   and can_connect("127.0.0.1", port) and can_connect("127.0.0.1", tls_port)
                   and can_connect("127.0.0.1", admin_port), 15, what="the gateway to serve")
        return Upgradable(binary, confdir, p, port, tls_port, f"127.0.0.1:{admin_port}", err)

    start.started_pids = started_pids
    try:
        yield start
    finally:
        for pid in reversed(started_pids):
            stop_pid(pid)


def new_pid(outcome: subprocess.CompletedProcess) -> int:
    m = re.search(r"upgraded: pid (\d+) ", outcome.stdout)
    assert m, f"weir upgrade said: {outcome.stdout!r} {outcome.stderr!r}"
    return int(m.group(1))


# --------------------------------------------------------------------------------------------


def test_upgrade_under_load_refuses_resets_and_fails_nothing(upgradable, weir_bin, pki):
    gw = upgradable(workers=2)
    old = gw.proc
    assert holders([old.pid], gw.port) == {old.pid: 2}, "one SO_REUSEPORT socket per worker"
    gw.install(weir_bin)   # the "new" binary: same bytes, new inode at the same path
    with LoadLoop(url_plain=gw.url("/"), url_tls=gw.https_url("/"), ca_file=pki.ca.cert,
                  keepalive=4, fresh=2, tls=2, max_seconds=60, max_requests=60_000) as loop:
        loop.wait_progress(1500)   # a few seconds of traffic on the old process
        outcome = gw.upgrade()
        assert outcome.returncode == 0, (outcome.stdout, outcome.stderr, gw.stderr())
        pid = new_pid(outcome)
        loop.wait_progress(500)
        # The old process drains while the load goes on, then exits 0.
        assert old.wait(timeout=15) == 0, gw.stderr()
        loop.wait_progress(1500)
    report = loop.report()
    try:
        assert alive(pid)
        assert os.readlink(f"/proc/{pid}/exe") == str(gw.binary), "the new process runs the installed binary"
        assert holders([old.pid, pid], gw.port) == {pid: 2}
        assert holders([pid], gw.tls_port) == {pid: 2}
        assert report.refused == 0 and report.reset == 0 and report.failed == 0, f"{report}\n{gw.stderr()}"
        assert report.by_client.get("keepalive", 0) > 0 and report.by_client.get("fresh", 0) > 0 \
            and report.by_client.get("tls", 0) > 0, str(report)
        assert set(report.bodies) == {"b1", "b2"}, str(report)
        log = gw.stderr()
        assert f"upgrade: pid {pid} serves now" in log and "taking over 4 listening socket(s)" in log, log
        assert "no listener uses" not in log, "every inherited socket was taken by a worker"
        print(f"\n{report}")
    finally:
        stop_pid(pid)


def test_sigusr2_upgrades_and_the_new_process_can_upgrade_again(upgradable):
    gw = upgradable(workers=2)
    old = gw.proc
    os.kill(old.pid, signal.SIGUSR2)
    assert old.wait(timeout=20) == 0, gw.stderr()
    first = int(wait_until(lambda: re.search(r"pid (\d+) serves now", gw.stderr()), 5, what="the hand-over").group(1))
    try:
        assert curl(gw.url("/")).status == 200
        # The new process is an upgradable gateway itself: the hand-over variables did not stick.
        outcome = gw.upgrade()
        assert outcome.returncode == 0, (outcome.stdout, outcome.stderr, gw.stderr())
        second = new_pid(outcome)
        wait_until(lambda: not alive(first), 20, what="the first new process to drain and exit")
        assert holders([second], gw.port) == {second: 2}
        assert curl(gw.url("/")).status == 200
    finally:
        stop_pid(first)
        for m in re.finditer(r"pid (\d+) serves now", gw.stderr()):
            stop_pid(int(m.group(1)))


def test_fewer_workers_take_every_inherited_socket_and_more_workers_bind_their_own(upgradable):
    gw = upgradable(workers=2)
    conf = gw.confdir / "00-weir.toml"
    conf.write_text(conf.read_text().replace("workers = 2", "workers = 1"))
    outcome = gw.upgrade()
    assert outcome.returncode == 0, (outcome.stdout, outcome.stderr)
    one = new_pid(outcome)
    try:
        assert gw.proc.wait(timeout=20) == 0
        assert holders([one], gw.port) == {one: 2}, "one worker accepts on both sockets of the old two"
        conf.write_text(conf.read_text().replace("workers = 1", "workers = 3"))
        outcome = gw.upgrade()
        assert outcome.returncode == 0, (outcome.stdout, outcome.stderr)
        three = new_pid(outcome)
        wait_until(lambda: not alive(one), 20, what="the one-worker process to exit")
        assert holders([three], gw.port) == {three: 3}, "two inherited sockets and one bound anew"
        assert curl(gw.url("/")).status == 200
        stop_pid(three)
    finally:
        stop_pid(one)


def test_an_upgrade_to_a_binary_that_fails_keeps_the_old_process_serving_and_says_why(upgradable, tmp_path):
    gw = upgradable(workers=2)
    broken = tmp_path / "broken-weir"
    broken.write_text("#!/bin/sh\necho 'broken-weir: cannot start' >&2\nexit 3\n")
    broken.chmod(0o755)
    outcome = gw.upgrade("--binary", broken)
    assert outcome.returncode == 1
    assert f"upgrade to {broken} failed" in outcome.stderr and "stopped before it was ready (it exited with status 3)" in outcome.stderr, outcome.stderr
    assert f"pid {gw.proc.pid} keeps serving" in outcome.stderr
    broken.chmod(0o777)
    writable = gw.upgrade("--binary", broken)
    assert writable.returncode == 1 and "is writable by its group or others" in writable.stderr, writable.stderr
    missing = gw.upgrade("--binary", tmp_path / "no-such-weir")
    assert missing.returncode == 1 and "No such file or directory" in missing.stderr, missing.stderr
    assert gw.proc.poll() is None
    assert holders([gw.proc.pid], gw.port) == {gw.proc.pid: 2}
    assert curl(gw.url("/")).status == 200


def test_an_upgrade_onto_a_broken_conf_d_keeps_the_old_process_serving_and_names_file_and_key(upgradable):
    gw = upgradable(workers=2)
    (gw.confdir / "50-typo.toml").write_text("[global]\nworkerz = 4\n")
    outcome = gw.upgrade()
    assert outcome.returncode == 1, outcome
    assert "50-typo.toml" in outcome.stderr and "workerz" in outcome.stderr, outcome.stderr
    assert gw.proc.poll() is None
    assert curl(gw.url("/")).status == 200
    (gw.confdir / "50-typo.toml").unlink()
    # Fixed: the next upgrade goes through.
    outcome = gw.upgrade()
    assert outcome.returncode == 0, (outcome.stdout, outcome.stderr)
    pid = new_pid(outcome)
    try:
        assert gw.proc.wait(timeout=20) == 0
    finally:
        stop_pid(pid)


def test_a_removed_listener_is_closed_by_the_new_process_once_the_old_one_stopped_accepting(upgradable):
    gw = upgradable(workers=2)
    conf = gw.confdir / "00-weir.toml"
    text = conf.read_text()
    start = text.index('[[listener]]\nname = "secure"')
    conf.write_text(text[:start])   # the TLS listener is the last table
    outcome = gw.upgrade()
    assert outcome.returncode == 0, (outcome.stdout, outcome.stderr, gw.stderr())
    pid = new_pid(outcome)
    try:
        assert gw.proc.wait(timeout=20) == 0
        wait_until(lambda: not holders([pid], gw.tls_port), 5, what="the unused inherited sockets to close")
        assert "closed 2 inherited socket(s) no listener uses" in gw.stderr(), gw.stderr()
        assert not can_connect("127.0.0.1", gw.tls_port)
        assert curl(gw.url("/")).status == 200
    finally:
        stop_pid(pid)


def test_without_the_hand_over_a_restart_under_the_same_load_refuses_connections(upgradable, pki):
    """The load loop's counters can fail: stop and start again (no hand-over) under the same load."""
    gw = upgradable(workers=2, drain_timeout="1s")
    with LoadLoop(url_plain=gw.url("/"), keepalive=2, fresh=2, tls=0, max_seconds=20, max_requests=20_000) as loop:
        loop.wait_progress(200)
        os.kill(gw.proc.pid, signal.SIGTERM)
        assert gw.proc.wait(timeout=10) == 0
        loop.wait_progress(50)
    report = loop.report()
    assert report.refused > 0, str(report)


def test_a_peer_upgrades_too_and_hears_and_is_heard_by_the_group_afterwards(weir_bin, procs, tmp_path, demo_backend):
    from peerutil import PeerGroup
    group = PeerGroup(weir_bin, procs, tmp_path, demo_backend, ids=("a", "b"), interval="200ms")
    group.start_all()
    a, b = group["a"], group["b"]
    with LoadLoop(url_plain=a.url("/"), keepalive=2, fresh=1, tls=0, max_seconds=30, max_requests=20_000) as loop:
        loop.wait_progress(300)
        outcome = subprocess.run([str(weir_bin), "upgrade", "--admin", f"127.0.0.1:{a.admin_port}"],
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
        assert outcome.returncode == 0, (outcome.stdout, outcome.stderr, a.stderr())
        pid = new_pid(outcome)
        try:
            assert a.proc.wait(timeout=15) == 0, a.stderr()
            loop.wait_progress(300)
            # The new process bound the beacon port beside the old one: it hears b, and b hears it.
            wait_until(lambda: a.member("b")["online"] and b.member("a")["online"] and b.member("a")["state"] == "up",
                       5, what="the group to see the new peer a")
            assert wait_until(lambda: holders([a.proc.pid, pid], a.port) == {pid: 1}, 5, what="the new peer to hold the listener")
        except BaseException:
            stop_pid(pid)
            raise
    report = loop.report()
    stop_pid(pid)
    assert report.refused == 0 and report.reset == 0 and report.failed == 0, f"{report}\n{a.stderr()}"
