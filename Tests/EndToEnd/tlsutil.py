"""Helpers for the TLS end-to-end tests (not a test module): a throw-away test CA made with the
openssl CLI, `openssl s_client` runs, python `ssl` clients and a raw-socket HTTP client over TLS.

Everything talks to 127.0.0.1 only; every subprocess has a timeout.
"""
from __future__ import annotations

import datetime
import os
import re
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from conftest import RawConn

OPENSSL = "openssl"


def run(args, cwd=None, timeout: float = 30.0, input: bytes | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run([str(a) for a in args], cwd=cwd, input=input,
                       stdin=None if input is not None else subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p


def check(args, cwd=None, timeout: float = 30.0) -> str:
    p = run(args, cwd=cwd, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(map(str, args))} failed: {p.stderr.decode(errors='replace')}"
    return p.stdout.decode(errors="replace")


# --------------------------------------------------------------------------------------------
# Test PKI


@dataclass
class Cert:
    cert: Path
    key: Path
    serial: int

    @property
    def serial_hex(self) -> str:
        return format(self.serial, "X")


class PKI:
    """A CA and leaf certificates signed by it, all under `root`."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.ca = Cert(root / "ca.pem", root / "ca.key", 1)
        self._serial = 0x1000
        self.issued: list[tuple[Cert, str]] = []
        check([OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", self.ca.key, "-out", self.ca.cert, "-days", "30", "-subj", "/CN=Weir E2E Test CA",
               "-set_serial", "1",
               "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign",
               "-addext", "subjectKeyIdentifier=hash"])

    def issue(self, name: str, cn: str, sans: list[str], *, kind: str = "ec", usage: str = "serverAuth",
              serial: int | None = None, key: Path | None = None) -> Cert:
        """A leaf certificate (P-256 "ec" or "rsa" 2048) for `sans` ("DNS:x", "IP:1.2.3.4")."""
        if serial is None:
            self._serial += 1
            serial = self._serial
        key_path = key or self.root / f"{name}.key"
        if key is None:
            if kind == "ec":
                check([OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                       "-out", key_path])
            else:
                check([OPENSSL, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                       "-out", key_path])
        csr = self.root / f"{name}.csr"
        check([OPENSSL, "req", "-new", "-key", key_path, "-subj", f"/CN={cn}", "-out", csr])
        ext = self.root / f"{name}.ext"
        lines = ["basicConstraints=critical,CA:FALSE", f"extendedKeyUsage={usage}",
                 "keyUsage=critical,digitalSignature" + (",keyEncipherment" if kind == "rsa" else ""),
                 "authorityKeyIdentifier=keyid", "subjectKeyIdentifier=hash"]
        if sans:
            lines.append("subjectAltName=" + ",".join(sans))
        ext.write_text("\n".join(lines) + "\n")
        cert_path = self.root / f"{name}.pem"
        check([OPENSSL, "x509", "-req", "-in", csr, "-CA", self.ca.cert, "-CAkey", self.ca.key,
               "-set_serial", str(serial), "-days", "10", "-sha256", "-extfile", ext, "-out", cert_path])
        c = Cert(cert_path, key_path, serial)
        self.issued.append((c, cn))
        return c

    def ocsp_response(self, leaf: Cert, out: Path) -> Path:
        """A DER OCSP response ("good") for `leaf`, signed by the CA (index file made here)."""
        index = self.root / "index.txt"
        expiry = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=10)).strftime("%y%m%d%H%M%SZ")
        index.write_text("".join(f"V\t{expiry}\t\t{c.serial_hex}\tunknown\t/CN={cn}\n" for c, cn in self.issued))
        (self.root / "index.txt.attr").write_text("unique_subject = no\n")
        req = out.with_suffix(".req")
        check([OPENSSL, "ocsp", "-issuer", self.ca.cert, "-cert", leaf.cert, "-no_nonce", "-reqout", req])
        check([OPENSSL, "ocsp", "-index", index, "-CA", self.ca.cert, "-rsigner", self.ca.cert,
               "-rkey", self.ca.key, "-reqin", req, "-respout", out, "-ndays", "1"])
        return out


# --------------------------------------------------------------------------------------------
# openssl s_client


@dataclass
class SClient:
    rc: int
    out: str

    def field(self, prefix: str) -> str | None:
        for line in self.out.splitlines():
            s = line.strip()
            if s.startswith(prefix):
                return s[len(prefix):].strip()
        return None

    @property
    def subject(self) -> str | None:
        return self.field("subject=")

    @property
    def protocol(self) -> str | None:
        """The negotiated version: the session's "Protocol  :" line, else (TLS 1.3 before a ticket arrived, no
        session printed) the "New, TLSv1.3, Cipher is ..." line (which names the cipher's version, not the
        protocol's, for older ciphers)."""
        p = self.field("Protocol  :") or self.field("Protocol :")
        if p:
            return p
        m = re.search(r"^(?:New|Reused), (TLSv[0-9.]+|SSLv3),", self.out, re.M)
        return m.group(1) if m else None

    @property
    def handshake_ok(self) -> bool:
        """A completed handshake: a cipher was negotiated (s_client prints "Cipher is (NONE)" otherwise)."""
        return self.rc == 0 and ("Cipher is " in self.out and "Cipher is (NONE)" not in self.out)

    @property
    def reused(self) -> bool:
        return any(line.startswith("Reused,") for line in self.out.splitlines())


def s_client(port: int, *args, servername: str | None = "weir.test", cafile: Path | None = None,
             stdin_seconds: float = 0.0, timeout: float = 15.0) -> SClient:
    """`openssl s_client -connect 127.0.0.1:PORT ...`; stdin stays open `stdin_seconds` (so that TLS 1.3
    tickets sent after the handshake arrive), then EOF ends the client."""
    argv = [OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}"]
    argv += ["-servername", servername] if servername else ["-noservername"]
    if cafile:
        argv += ["-CAfile", str(cafile)]
    argv += [str(a) for a in args]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if stdin_seconds:
            deadline = time.monotonic() + stdin_seconds     # stdin stays open (communicate would close it)
            while time.monotonic() < deadline and p.poll() is None:
                time.sleep(0.05)
            out, _ = p.communicate(input=b"", timeout=timeout)
        else:
            out, _ = p.communicate(input=b"", timeout=timeout)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)
    return SClient(p.returncode, out.decode(errors="replace"))


# --------------------------------------------------------------------------------------------
# python ssl clients


def client_context(cafile: Path, *, alpn: list[str] | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def peer_certificate(port: int, cafile: Path, server_name: str = "weir.test") -> dict:
    """Handshake (verified) with SNI `server_name`; returns getpeercert() (subject, serialNumber, SANs)."""
    ctx = client_context(cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            return s.getpeercert()


class TLSConn(RawConn):
    """RawConn over a verified TLS connection (SNI and name check: `server_name`)."""

    def __init__(self, port: int, cafile: Path, server_name: str = "weir.test", timeout: float = 10.0,
                 alpn: list[str] | None = None):
        super().__init__("127.0.0.1", port, timeout=timeout)
        self.sock = client_context(cafile, alpn=alpn).wrap_socket(self.sock, server_hostname=server_name)

    def _fill(self, max_bytes: int = 65536) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(max_bytes)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def is_closed(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        if self.buf:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return True
        except socket.timeout:
            return False
        if data:
            self.buf += data
            return False
        return True


def client_hello(server_name: str = "weir.test") -> bytes:
    """The bytes of a real ClientHello (TLS 1.2-1.3) made by python's ssl module with memory BIOs."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = outgoing.read()
    assert data[:1] == b"\x16" and len(data) > 100, data[:16]
    return data


def curl_tls_args(cafile: Path, port: int, name: str = "weir.test") -> list[str]:
    return ["--cacert", str(cafile), "--resolve", f"{name}:{port}:127.0.0.1"]


def replace_file(path: Path, data: bytes):
    """Writes `data` to `path` atomically (temp file + rename in the same directory)."""
    tmp = path.with_name(path.name + ".new")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def listener_pki(root: Path) -> PKI:
    """A CA with the two leaves `tls_table` needs: weir.test (also 127.0.0.1) and other.test (an SNI one)."""
    p = PKI(root)
    p.weir = p.issue("weir", "weir.test", ["DNS:weir.test", "IP:127.0.0.1"])
    p.other = p.issue("other", "other.test", ["DNS:other.test"])
    return p


def tls_table(pki, **extra) -> dict:
    """A [listener.tls] table: the PKI's weir.test certificate, other.test as an SNI certificate, and `extra`."""
    t = {"cert": str(pki.weir.cert), "key": str(pki.weir.key),
         "sni": [{"cert": str(pki.other.cert), "key": str(pki.other.key)}]}
    t.update(extra)
    return t
