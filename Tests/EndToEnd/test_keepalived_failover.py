"""Two Weir gateways behind a keepalived virtual address, in network namespaces this test makes
(issue 15): examples/keepalived/keepalived.conf, as shipped (addresses, timers, track_script on
`weir health`, the notify hook), on two gateway hosts; two backend hosts; a client polling the
virtual address every 50 ms.

1. The active gateway's Weir is killed (its `weir health` fails): at most 2 s without answers,
   then the other gateway answers; a pinned transaction begun through the first continues on the
   same server through the second (both gateways have the same sticky secret).
2. The first gateway's Weir is back: it takes the address back (the example preempts).
3. Its link is cut: the same 2 s budget, the other gateway answers; link back: it takes over again.

VRRP is unicast between the two gateway hosts, inside the namespaces; nothing touches the host's
interfaces. keepalived runs in the foreground (-n) with its own config and pid files in tmp_path.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from conftest import ADMIN_TOKEN, Server, render_config
from netns import Answers, TestNet, require_netns, stop, wait_for
from stickyutil import SECRET, routes_toml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keepalived"
HOSTS = ["gw1", "gw2", "b1", "b2", "client"]   # 198.51.100.11 ... .15, as in the example
VIP = "198.51.100.100"
PORT = 8080
BUDGET = 2.0   # seconds of failed requests allowed per failover (the figure)
STICKY_ROUTE = {"name": "all", "pool": "p", "path": "/",
                "sticky": [{"path": "/banking/*", "complete": ["/banking/logout"], "idle_timeout": "5m"}]}


def weir_conf(net: TestNet, root: Path, host: str) -> Path:
    """conf.d of a gateway: 0.0.0.0:8080 (so the VIP is served when it arrives), admin on loopback."""
    directory = root / host / "conf.d"
    directory.mkdir(parents=True)
    servers = [Server(b, f"{net.addresses[b]}:{PORT}") for b in ("b1", "b2")]
    extra = routes_toml([STICKY_ROUTE]) + f'\n[sticky]\nsecret = "{SECRET}"\n'
    (directory / "00-weir.toml").write_text(render_config(
        port_host="0.0.0.0", port=PORT, pools={"p": servers}, routes=[], workers=2,
        access_log=str(root / host / "access.log"), timeouts={}, limits={},
        global_extra={"state_dir": str(root / host / "state")}, listener_extra={}, extra=extra,
        admin="127.0.0.1:9090", admin_token=ADMIN_TOKEN))
    return directory


def keepalived_conf(net: TestNet, root: Path, host: str, weir_bin) -> Path:
    """The shipped example; gateway B's three changes on gw2; paths of this test."""
    text = (EXAMPLE / "keepalived.conf").read_text()
    a, b = net.addresses["gw1"], net.addresses["gw2"]
    assert a in text and b in text and VIP in text, "the example's addresses changed: update HOSTS/VIP here"
    if host == "gw2":
        text = text.replace(f"unicast_src_ip {a}", "unicast_src_ip @SRC").replace(f"        {b}\n", f"        {a}\n")
        text = text.replace("@SRC", b).replace("priority 150", "priority 100").replace("router_id weir_a", "router_id weir_b")
    # Script security wants every directory on the script's path root-only; tmp_path is under /tmp.
    text = text.replace("    enable_script_security\n", "")
    text = text.replace("/usr/bin/weir", str(weir_bin))
    notify = root / host / "notify.sh"
    notify.write_text(f"#!/bin/sh\nWEIR_NOTIFY_LOG={root / host / 'notify.log'} WEIR_BIN={weir_bin} "
                      f"exec {EXAMPLE / 'weir-notify.sh'} \"$@\"\n")
    notify.chmod(0o755)
    text = text.replace("/etc/keepalived/weir-notify.sh", str(notify))
    path = root / host / "keepalived.conf"
    path.write_text(text)
    return path


def start_weir(net: TestNet, root: Path, host: str, weir_bin) -> subprocess.Popen:
    log = open(root / host / "weir.log", "ab")
    proc = net.popen(host, [weir_bin, "run", "-c", root / host / "conf.d"], stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: health(net, host, weir_bin) == "ok", 10, what=f"weir health ok on {host}")
    return proc


def start_keepalived(net: TestNet, root: Path, host: str, conf: Path) -> subprocess.Popen:
    d = root / host
    log = open(d / "keepalived.log", "ab")
    return net.popen(host, ["keepalived", "-n", "-l", "-D", "-P", "-f", conf, "-p", d / "keepalived.pid",
                            "-r", d / "vrrp.pid", "-c", d / "checkers.pid", "-b", d / "bfd.pid"], stdout=log, stderr=subprocess.STDOUT)


def health(net: TestNet, host: str, weir_bin) -> str:
    r = net.run(host, [weir_bin, "health", "--admin", "127.0.0.1:9090", "--timeout-ms", "300"], check=False)
    return r.stdout.strip()


def holds(net: TestNet, host: str) -> bool:
    return f"inet {VIP}/" in net.run(host, ["ip", "-4", "addr", "show", "dev", "eth0"], check=False).stdout


def served(net: TestNet, jar: Path, path: str) -> str:
    """X-Served-By of a GET through the VIP from the client, with the cookie jar (the pinned user)."""
    r = net.run("client", ["curl", "-s", "-m", "2", "-o", "/dev/null", "-D", "-", "-b", jar, "-c", jar,
                           f"http://{VIP}:{PORT}{path}"], check=False)
    m = re.search(r"^x-served-by:\s*(\S+)", r.stdout, re.I | re.M)
    assert m, f"no answer through the VIP for {path}: {r.stdout!r} {r.stderr!r}"
    return m.group(1)


def failover(answers: Answers, start: float, net: TestNet, to: str) -> float:
    """Seconds from `start` (just before the failure) to the first good answer after the last failed
    one, once `to` holds the VIP: the time clients saw failures, whatever was in flight at `start`."""
    wait_for(lambda: holds(net, to), BUDGET + 3, what=f"{to} to take the virtual address")
    took = time.monotonic()
    wait_for(lambda: any(a in ("b1", "b2") for _, a in answers.since(took)), BUDGET + 3, what=f"an answer through {to}")
    window = [(s, a) for s, a in answers.since(start) if s <= took + 0.5]
    failed = [s for s, a in window if a not in ("b1", "b2")]
    first = next((s for s, a in answers.since(max(failed, default=start)) if a in ("b1", "b2")), None)
    assert first is not None, "no good answer after the failures"
    print(f"failover to {to}: {len(failed)} polls failed, good answers again {first - start:.3f} s after the failure")
    return first - start


def log_tails(root: Path) -> str:
    out = []
    for f in sorted(root.glob("*/*.log")):
        if f.name != "access.log":
            out.append(f"--- {f.relative_to(root)}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-15:]))
    return "\n".join(out)


def test_keepalived_moves_the_address_within_two_seconds(weir_bin, tmp_path):
    require_netns()
    assert shutil.which("keepalived"), "keepalived is not installed (Makefile TEST_PACKAGES)"
    with TestNet(HOSTS, first=11) as net:
        try:
            run_scenario(net, tmp_path, weir_bin)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{log_tails(tmp_path)}") from None


def run_scenario(net: TestNet, root: Path, weir_bin) -> None:
    for b in ("b1", "b2"):
        net.popen(b, [weir_bin, "demo-backend", "--host", net.addresses[b], "--port", PORT, "--name", b])
    weir, keepalived = {}, {}
    for gw in ("gw1", "gw2"):
        weir_conf(net, root, gw)
        weir[gw] = start_weir(net, root, gw, weir_bin)
    for gw in ("gw1", "gw2"):
        keepalived[gw] = start_keepalived(net, root, gw, keepalived_conf(net, root, gw, weir_bin))
    wait_for(lambda: holds(net, "gw1"), 10, what="gw1 (priority 150) to hold the virtual address")
    assert not holds(net, "gw2")
    answers = Answers(net.poller("client", f"http://{VIP}:{PORT}/", interval=0.05, duration=45))
    wait_for(lambda: answers.first("b1", 0) or answers.first("b2", 0), 5, what="answers through the VIP")

    # A pinned transaction starts through gw1.
    jar = root / "client-cookies"
    pinned = served(net, jar, "/banking/start")
    assert all(served(net, jar, f"/banking/step{i}") == pinned for i in range(2))

    # 1. gw1's Weir dies: weir health fails, keepalived gives the address to gw2.
    start = time.monotonic()
    weir["gw1"].kill()
    weir["gw1"].wait(timeout=5)
    assert failover(answers, start, net, "gw2") <= BUDGET
    assert not holds(net, "gw1")
    before = (root / "gw2" / "access.log").stat().st_size
    assert served(net, jar, "/banking/after-failover") == pinned, "the pinned transaction changed server"
    # The access log is flushed every 100 ms.
    wait_for(lambda: (root / "gw2" / "access.log").stat().st_size > before, 2, what="gw2 to log the pinned request")
    assert "does not accept" in health(net, "gw1", weir_bin) or "admin listener" in health(net, "gw1", weir_bin)

    # 2. gw1's Weir is back: healthy again (rise 2), it takes the address back (preempt, delay 1 s).
    weir["gw1"] = start_weir(net, root, "gw1", weir_bin)
    wait_for(lambda: holds(net, "gw1") and not holds(net, "gw2"), 10, what="gw1 to take the address back (preempt)")
    back = time.monotonic()
    wait_for(lambda: answers.first("b1", back) or answers.first("b2", back), 3, what="answers after gw1 took it back")

    # 3. gw1's link is cut: gw2 hears no advertisement and takes over.
    start = time.monotonic()
    net.link("gw1", up=False)
    assert failover(answers, start, net, "gw2") <= BUDGET
    assert served(net, jar, "/banking/after-cut") == pinned
    net.link("gw1", up=True)
    wait_for(lambda: holds(net, "gw1") and not holds(net, "gw2"), 10, what="gw1 to take the address back after its link returns")

    # The notify hook logged the transitions and left Weir running on the backup.
    notes = (root / "gw2" / "notify.log").read_text()
    assert "weir_vip MASTER" in notes and "weir_vip BACKUP" in notes, notes
    assert "holding the virtual address; weir health: ok" in notes, notes
    assert weir["gw2"].poll() is None and health(net, "gw2", weir_bin) == "ok"
    for proc in list(keepalived.values()) + list(weir.values()):
        stop(proc)
    assert not holds(net, "gw1") and not holds(net, "gw2"), "keepalived left the address behind"
