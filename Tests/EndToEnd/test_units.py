"""The shipped systemd units: `systemd-analyze verify` is clean and `systemd-analyze security`
rates weir.service at most 2.0 (weir-peer.service, which also needs CAP_NET_ADMIN/CAP_NET_RAW
and netlink/packet sockets, at most 2.5). Both work on unit files without systemd as PID 1
(`--offline=yes`). systemd's analyzer is installed first when it is missing (Debian: `systemd`)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

UNITS = sorted((REPO / "systemd").glob("*.service"))
LIMITS = {"weir.service": 2.0, "weir-peer.service": 2.5}
INSTALLED_BIN = "/usr/local/bin/weir"


@pytest.fixture(scope="module")
def analyzer() -> str:
    if shutil.which("systemd-analyze") is None:
        subprocess.run([REPO / "scripts" / "install-packages.sh", "systemd"], check=True, timeout=600)
    path = shutil.which("systemd-analyze")
    assert path, "systemd-analyze is missing after installing the systemd package"
    return path


def unit_with_binary(unit: Path, weir_bin: Path, directory: Path) -> Path:
    """A copy of `unit` whose commands run the built binary: verify checks that they exist."""
    copy = directory / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED_BIN, str(weir_bin.resolve())))
    return copy


def test_every_unit_is_shipped():
    assert {u.name for u in UNITS} == set(LIMITS)


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_verify_is_clean(analyzer, weir_bin, tmp_path, unit):
    copy = unit_with_binary(unit, weir_bin, tmp_path)
    # man:weir(8) is checked by test_install (installed pages); here only the unit itself.
    r = subprocess.run([analyzer, "verify", "--man=no", copy], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_security_exposure_is_low(analyzer, unit):
    r = subprocess.run([analyzer, "security", "--offline=yes", "--no-pager", unit],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    exposure = float(m.group(1))
    assert exposure <= LIMITS[unit.name], f"{unit.name}: exposure {exposure}\n{r.stdout}"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_is_notify_driven_and_checks_before_start_and_reload(unit):
    text = unit.read_text()
    keys = [tuple(line.split("=", 1)) for line in text.splitlines() if "=" in line and not line.startswith("#")]
    values = lambda k: [v for key, v in keys if key == k]
    assert values("Type") == ["notify"] and values("WatchdogSec") == ["10s"] and values("NotifyAccess") == ["all"]
    assert values("ExecStartPre") == [f"{INSTALLED_BIN} check -c /etc/weir/conf.d"]
    assert values("ExecReload") == [f"{INSTALLED_BIN} check -c /etc/weir/conf.d", "/bin/kill -HUP $MAINPID"]
    assert values("DynamicUser") == ["yes"] and values("StateDirectory") == ["weir"]
    caps = set(values("CapabilityBoundingSet")[0].split())
    assert caps == ({"CAP_NET_BIND_SERVICE"} if unit.name == "weir.service"
                    else {"CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN", "CAP_NET_RAW"})
