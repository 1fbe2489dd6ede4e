#!/usr/bin/env python3
"""Writes the man pages weir(8) and weir.toml(5) into OUT_DIR (man8/weir.8, man5/weir.toml.5).

weir(8): the commands and options come from the binary itself, from swift-argument-parser's
description of its command tree (`weir --experimental-dump-help`, what the parser's own
generate-manual plugin reads), so the page cannot drift from `--help`; signals, environment and
files are written here. weir.toml(5): the shipped conf.d files, whose comments document every key
with its default, turned into roff (one section per file).

Usage: gen-man.py WEIR_BIN CONF_DIR OUT_DIR
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path


def esc(text: str) -> str:
    """Roff-safe text: backslashes and hyphens escaped, no line starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + l if l[:1] in (".", "'") else l) for l in text.split("\n"))


def option_label(arg: dict) -> str:
    names = [("--" if n["kind"] == "long" else "-") + n["name"] for n in arg.get("names", [])]
    label = ", ".join(f"\\fB{esc(n)}\\fR" for n in names) or f"\\fI{esc(arg['valueName'])}\\fR"
    if arg["kind"] == "option":
        label += f" \\fI{esc(arg['valueName'])}\\fR"
    return label


def synopsis(cmd: dict) -> str:
    parts = []
    for arg in cmd.get("arguments", []):
        if not arg.get("shouldDisplay", True) or arg.get("valueName") in ("help", "version"):
            continue
        if arg["kind"] == "positional":
            word = f"\\fI{esc(arg['valueName'])}\\fR"
        else:
            name = arg["preferredName"]
            word = f"\\fB{'--' if name['kind'] == 'long' else '-'}{esc(name['name'])}\\fR"
            if arg["kind"] == "option":
                word += f" \\fI{esc(arg['valueName'])}\\fR"
        parts.append(f"[{word}]" if arg.get("isOptional") else word)
    return " ".join(parts)


def command_section(cmd: dict) -> list[str]:
    lines = [f".SS \"weir {esc(cmd['commandName'])}\"", f".B weir {esc(cmd['commandName'])}", synopsis(cmd), ".PP",
             esc(cmd.get("abstract", ""))]
    if cmd.get("discussion"):
        lines += [".PP", esc(cmd["discussion"])]
    for arg in cmd.get("arguments", []):
        if not arg.get("shouldDisplay", True) or arg.get("valueName") in ("help", "version"):
            continue
        text = arg.get("abstract", "")
        if "defaultValue" in arg:
            text += f" (default: {arg['defaultValue']})"
        lines += [".TP", option_label(arg), esc(text)]
    return lines


STATIC_8 = r"""
.SH SIGNALS
.TP
.B SIGHUP
Reload (today the TLS certificates; a broken one keeps the previous serving).
.TP
.BR SIGTERM ", " SIGINT
Drain: listeners close, requests in flight finish within [global] drain_timeout; a second
signal a second later stops at once.
.SH ENVIRONMENT
.TP
.B NOTIFY_SOCKET
Set by systemd for Type=notify: READY=1, RELOADING=1, STOPPING=1, STATUS= and WATCHDOG=1 are sent
there (sd_notify(3) protocol). Unset: nothing is sent.
.TP
.BR WATCHDOG_USEC ", " WATCHDOG_PID
Set by systemd for WatchdogSec=: WATCHDOG=1 is sent every half period, only while every worker's
event loop turns.
.TP
.B STATE_DIRECTORY
Set by systemd for StateDirectory=: the default [global] state_dir (else /var/lib/weir).
.TP
.B WEIR_TEST_FAULT
For tests only: \fBblock\-worker\-\fIN\fB\-after\-ms=\fIM\fR blocks worker N after M ms.
.SH FILES
.TP
.I /etc/weir/conf.d/*.toml
The configuration, read in lexical order; see \fBweir.toml\fR(5).
.TP
.I /var/lib/weir
State kept across restarts (generated secrets).
.TP
.IR weir.service ", " weir\-peer.service
The systemd units (Type=notify, watchdog, sandboxed).
.SH SEE ALSO
.BR weir.toml (5),
.BR systemd.service (5),
.BR sd_notify (3)
"""


def weir8(weir_bin: str) -> str:
    tree = json.loads(subprocess.run([weir_bin, "--experimental-dump-help"], check=True, capture_output=True,
                                     text=True).stdout)["command"]
    version = subprocess.run([weir_bin, "version"], check=True, capture_output=True, text=True).stdout.strip()
    out = [f'.TH WEIR 8 "" "{esc(version)}" "System Administration"',
           ".SH NAME", f"weir \\- {esc(tree.get('abstract', '').removeprefix('Weir: '))}",
           ".SH SYNOPSIS", ".B weir", "[\\fIcommand\\fR] [\\fIoptions\\fR]",
           ".SH DESCRIPTION", esc(tree.get("abstract", "")),
           "Without a command, \\fBweir\\fR runs \\fBweir run\\fR. \\fBweir \\-\\-version\\fR and "
           "\\fBweir version\\fR print the version and the commit the binary was built from.",
           ".SH COMMANDS"]
    for cmd in tree.get("subcommands", []):
        if cmd.get("shouldDisplay", True) and cmd["commandName"] != "help":
            out += command_section(cmd)
    return "\n".join(out) + STATIC_8


def toml5(conf_dir: Path) -> str:
    out = ['.TH WEIR.TOML 5 "" "weir" "File Formats"', ".SH NAME",
           "weir.toml \\- the configuration files of weir(8) (conf.d/*.toml)",
           ".SH DESCRIPTION",
           "Weir reads every \\fI*.toml\\fR file of its configuration directory (default "
           "\\fI/etc/weir/conf.d\\fR) in lexical order and merges them. The sections below are the "
           "shipped files: each key is shown with its default (or example) value and what it means; "
           "commented examples are shown as they are written. \\fBweir check \\-c\\fR \\fIDIR\\fR "
           "validates a directory and names file and key of each error."]
    for path in sorted(conf_dir.glob("*.toml")):
        out += toml_file_section(path)
    out += [".SH SEE ALSO", ".BR weir (8)"]
    return "\n".join(out) + "\n"


def toml_file_section(path: Path) -> list[str]:
    lines = path.read_text().split("\n")
    title = re.sub(r"^# Weir configuration, part \d+ of \d+: ", "", lines[0]).rstrip(".")
    out = [f'.SH "{esc(title.upper())}"', f"(\\fI{esc(path.name)}\\fR)"]
    prose: list[str] = []
    verbatim: list[str] = []

    def flush():
        if verbatim:
            out.extend([".PP", ".nf"] + [esc(v) for v in verbatim] + [".fi"])
            verbatim.clear()
        if prose:
            out.extend([".PP", esc(" ".join(prose))])
            prose.clear()

    for line in lines[1:]:
        if line.startswith("#"):
            text = line[1:].removeprefix(" ")
            indented = text.startswith("  ") or re.match(r"^(\[|[a-z_]+ = )", text)
            if not text.strip():
                flush()
            elif indented:
                if prose:
                    flush()
                verbatim.append(text)
            else:
                if verbatim:
                    flush()
                prose.append(text.strip())
        elif line.strip().startswith("["):
            flush()
            out.append(f'.SS "{esc(line.strip())}"')
        elif "=" in line:
            key = line.split("=", 1)[0].strip()
            description = " ".join(prose)
            prose.clear()
            if verbatim:
                flush()
            out += [".TP", f"\\fB{esc(key)}\\fR = {esc(line.split('=', 1)[1].strip())}", esc(description)]
        else:
            flush()
    flush()
    return out


def main():
    weir_bin, conf_dir, out_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    (out_dir / "man8").mkdir(parents=True, exist_ok=True)
    (out_dir / "man5").mkdir(parents=True, exist_ok=True)
    (out_dir / "man8" / "weir.8").write_text(weir8(weir_bin))
    (out_dir / "man5" / "weir.toml.5").write_text(toml5(conf_dir))


if __name__ == "__main__":
    main()
