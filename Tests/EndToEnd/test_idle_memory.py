"""Idle memory: once the gateway serves, the executable's start-up-only code pages are handed back
(`TextPages.releaseStartupPages`). Read from /proc/PID/smaps: only a small part of the binary's r-x mapping
is resident after a few requests (about 47 % without the release: start-up plus fault-around)."""
from __future__ import annotations

import os
import re

from conftest import curl


def code_mapping(pid: int) -> dict:
    """Size and Rss (kB) and VmFlags of the executable's r-x mapping."""
    exe = os.readlink(f"/proc/{pid}/exe")
    text = open(f"/proc/{pid}/smaps").read()
    for block in re.split(r"\n(?=[0-9a-f]+-[0-9a-f]+ )", text):
        first = block.split("\n", 1)[0]
        if " r-xp " in first and first.endswith(" " + exe):
            fields = dict(re.findall(r"^(\w+):\s+(.*)$", block, re.M))
            return {"size": int(fields["Size"].split()[0]), "rss": int(fields["Rss"].split()[0]),
                    "flags": fields["VmFlags"].split()}
    raise AssertionError(f"no r-x mapping of {exe} in /proc/{pid}/smaps")


def test_start_up_code_pages_are_released_once_serving(demo_backend, gateway):
    gw = gateway({"p": [demo_backend("b1")]})
    for _ in range(3):
        r = curl(gw.url("/"))
        assert r.rc == 0 and r.status == 200, r.stderr   # the code comes back as it is needed
    m = code_mapping(gw.pid)
    assert m["rss"] < 0.35 * m["size"], m
