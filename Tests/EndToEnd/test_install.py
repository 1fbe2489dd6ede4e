"""`make install DESTDIR=...` and `make deb`: the files land where the units expect them, the
units run the installed binary, an operator's conf.d file is never overwritten, the package's
control files are right (conffiles, no start on install), and `weir --version` names the commit.
Reuses the built binary (INSTALL_BIN): nothing is rebuilt here."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

CONF_FILES = sorted(p.name for p in (REPO / "conf.d").glob("*.toml"))
UNITS = ("weir.service", "weir-peer.service")


def make(*args, timeout=180):
    r = subprocess.run(["make", "-s", "-C", REPO, *args], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def unit_values(path: Path, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in path.read_text().splitlines() if line.startswith(key + "=")]


def expected_commit() -> str:
    """The commit the build stamp recorded (the binary was built with it), else "unknown"."""
    stamp = REPO / "Sysroot" / "CWeirBuild" / "build-stamp.h"
    if not stamp.exists():
        return "unknown"
    return re.search(r'"(.*)"', stamp.read_text()).group(1)


def check_tree(root: Path, prefix: str, man_suffix: str = ""):
    binary = root / prefix.lstrip("/") / "bin" / "weir"
    assert binary.is_file() and os.access(binary, os.X_OK)
    for unit in UNITS:
        path = root / prefix.lstrip("/") / "lib" / "systemd" / "system" / unit
        command = "run" if unit == "weir.service" else "peer"
        assert unit_values(path, "ExecStart") == [f"{prefix}/bin/weir {command} -c /etc/weir/conf.d"]
        assert unit_values(path, "ExecStartPre") == [f"{prefix}/bin/weir check -c /etc/weir/conf.d"]
        assert unit_values(path, "ExecReload")[0] == f"{prefix}/bin/weir check -c /etc/weir/conf.d"
    assert sorted(p.name for p in (root / "etc/weir/conf.d").iterdir()) == CONF_FILES
    for name in CONF_FILES:
        assert (root / "etc/weir/conf.d" / name).read_bytes() == (REPO / "conf.d" / name).read_bytes()
    share = root / prefix.lstrip("/") / "share"
    assert (share / "doc/weir/README.md").read_bytes() == (REPO / "README.md").read_bytes()
    assert (share / f"man/man8/weir.8{man_suffix}").is_file()
    assert (share / f"man/man5/weir.toml.5{man_suffix}").is_file()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    assert version.returncode == 0 and version.stdout.strip().endswith(f"(commit {expected_commit()})"), version
    assert subprocess.run([binary, "version"], capture_output=True, text=True, timeout=10).stdout == version.stdout
    return binary


def test_make_install_into_destdir(weir_bin, tmp_path):
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", f"INSTALL_BIN={weir_bin.resolve()}")
    binary = check_tree(root, "/usr/local")
    # The shipped conf.d is valid as installed (no path relative to the working directory).
    r = subprocess.run([binary, "check", "-c", root / "etc/weir/conf.d"], capture_output=True, text=True,
                       cwd="/", timeout=20)
    assert r.returncode == 0, r.stderr
    assert "state_dir =" not in "".join(l for l in (root / "etc/weir/conf.d/00-global.toml").read_text()
                                        .splitlines(keepends=True) if not l.startswith("#"))


def test_make_install_keeps_an_operators_conf_file(weir_bin, tmp_path):
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", f"INSTALL_BIN={weir_bin.resolve()}")
    edited = root / "etc/weir/conf.d/00-global.toml"
    edited.write_text("[global]\nworkers = 2\n")
    r = make("install", f"DESTDIR={root}", f"INSTALL_BIN={weir_bin.resolve()}")
    assert edited.read_text() == "[global]\nworkers = 2\n"
    assert f"keeping {edited} (exists)" in r.stdout


def test_prefix_moves_the_units_commands(weir_bin, tmp_path):
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", "PREFIX=/opt/weir", f"INSTALL_BIN={weir_bin.resolve()}")
    assert unit_values(root / "opt/weir/lib/systemd/system/weir.service", "ExecStart") == [
        "/opt/weir/bin/weir run -c /etc/weir/conf.d"]


def test_installed_units_verify_with_their_man_pages(weir_bin, tmp_path):
    """verify also runs `man` for Documentation=man:...: the installed pages must be found."""
    analyzer = shutil.which("systemd-analyze")
    if analyzer is None or shutil.which("man") is None:
        pytest.skip("systemd-analyze or man is missing (test_units installs the analyzer)")
    root = tmp_path / "root"
    make("install", f"DESTDIR={root}", f"INSTALL_BIN={weir_bin.resolve()}")
    units = []
    for unit in UNITS:
        path = tmp_path / unit
        path.write_text((root / "usr/local/lib/systemd/system" / unit).read_text()
                        .replace("/usr/local/bin/weir", str(root / "usr/local/bin/weir")))
        units.append(path)
    env = dict(os.environ, MANPATH=str(root / "usr/local/share/man"))
    r = subprocess.run([analyzer, "verify", *units], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0 and (r.stdout + r.stderr).strip() == "", r.stdout + r.stderr


def test_make_deb_builds_a_package_that_installs_the_same(weir_bin, tmp_path):
    out = tmp_path / "out"
    make("deb", f"DEB_OUT={out}", "DEB_LEVEL=1", f"INSTALL_BIN={weir_bin.resolve()}")
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    version = re.search(r'WEIR_VERSION "(.*)"', (REPO / "Sysroot/CWeirBuild/shim.h").read_text()).group(1)
    deb = out / f"weir_{version}_{arch}.deb"
    assert deb.is_file()

    info = subprocess.run(["dpkg-deb", "--field", deb], capture_output=True, text=True, check=True).stdout
    assert "Package: weir" in info and f"Version: {version}" in info and "libevent" in info and "libssl3" in info
    contents = subprocess.run(["dpkg-deb", "--contents", deb], capture_output=True, text=True, check=True).stdout
    for path in ("./usr/bin/weir", "./usr/lib/systemd/system/weir.service", "./etc/weir/conf.d/00-global.toml"):
        assert path in contents, contents

    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    check_tree(root, "/usr", man_suffix=".gz")
    control = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", deb, control], check=True)
    assert (control / "conffiles").read_text().split() == [f"/etc/weir/conf.d/{n}" for n in CONF_FILES]
    postinst = (control / "postinst").read_text()
    code = [l for l in postinst.splitlines() if not l.lstrip().startswith("#")]
    assert not any(re.search(r"\b(start|enable|restart|useradd|adduser)\b", l) for l in code), postinst
