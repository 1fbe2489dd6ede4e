"""Self-test of the namespace harness (netns.py) that the multi-host peer tests stand on."""
from __future__ import annotations

import os
import subprocess
import time

from netns import Answers, TestNet, leftovers, require_netns, wait_for

PORT = 8000
SERVICE = "198.51.100.100"  # an address that moves between hosts


def curl(net: TestNet, host: str, url: str) -> str:
    result = net.run(host, ["curl", "-s", "--max-time", "1", url], check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


def start_backend(net: TestNet, host: str, weir_bin, bind: str, port: int = PORT) -> None:
    """A demo backend answering `host` (its name) inside `host`, bound to `bind`."""
    net.popen(host, [weir_bin, "demo-backend", "--host", bind, "--port", port, "--name", host])
    local = "127.0.0.1" if bind == "0.0.0.0" else bind
    wait_for(lambda: curl(net, host, f"http://{local}:{port}/") == host, 5, what=f"demo backend in {host}")


def root_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def test_hosts_reach_each_other_and_an_address_moves_with_arping(weir_bin):
    require_netns()
    links_before = root_links()
    tag = f"weir-{os.getpid()}"
    with TestNet(["a", "b", "client"]) as net:
        a, b = net.addresses["a"], net.addresses["b"]
        start_backend(net, "a", weir_bin, a)
        start_backend(net, "b", weir_bin, b)
        assert curl(net, "b", f"http://{a}:{PORT}/") == "a"
        assert curl(net, "a", f"http://{b}:{PORT}/") == "b"
        assert curl(net, "client", f"http://{b}:{PORT}/") == "b"

        # The moving address, served on A by a backend bound to every address of A's namespace.
        net.run("a", ["ip", "addr", "add", f"{SERVICE}/24", "dev", "eth0"])
        for host in ("a", "b"):
            start_backend(net, host, weir_bin, "0.0.0.0", port=PORT + 1)
        url = f"http://{SERVICE}:{PORT + 1}/"
        answers = Answers(net.poller("client", url, interval=0.05, duration=15))
        wait_for(lambda: answers.first("a", 0), 5, what="the client's first answer from A")

        moved = time.monotonic()
        net.move_address(SERVICE, "a", "b")
        reached = wait_for(lambda: answers.first("b", moved), 2.0, what="answers from B within 2 s of the move")
        print(f"address moved: answers from B {reached - moved:.3f} s after the move")
        assert net.run("a", ["ip", "-o", "addr", "show", "dev", "eth0"]).stdout.count(SERVICE) == 0

    assert leftovers(tag) == [], "namespaces left behind"
    assert root_links() <= links_before, "interfaces left behind in the root namespace"


def test_cleanup_after_a_failure_inside_the_block():
    require_netns()
    tag = f"weir-{os.getpid()}"
    try:
        with TestNet(["x", "y"]) as net:
            assert sorted(leftovers(tag)) == sorted([net.bridge_ns, net.ns("x"), net.ns("y")])
            sleeper = net.popen("x", ["sleep", "30"])
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert sleeper.poll() is not None, "a process started in a namespace outlived it"
    assert leftovers(tag) == []
