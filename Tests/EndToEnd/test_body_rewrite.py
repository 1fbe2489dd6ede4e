"""Response body URL rewriting (`[[pool]] rewrite_body_types`) end to end: a small origin written
here serves a WSDL-like text/xml document naming its own address several times, chunked with the
URLs split across chunk boundaries (one small write per chunk, TCP_NODELAY, a pause between); the
client gets every occurrence replaced by the gateway's scheme://Host as a valid chunked response.
Types not listed pass untouched.
"""
from __future__ import annotations

import socket
import threading
import time

import pytest

from conftest import RawConn, Server


class XmlOrigin:
    """A loopback HTTP/1.1 origin: /svc.wsdl (text/xml, chunked in `piece`-byte chunks), /svc-cl
    (text/xml with Content-Length), /plain (text/plain, chunked). Keep-alive; bounded life."""

    def __init__(self, piece: int = 7):
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.piece = piece
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def document(self) -> bytes:
        me = f"http://127.0.0.1:{self.port}"
        return (f'<?xml version="1.0"?>\n<definitions targetNamespace="{me}/ns">\n'
                f'  <service name="Svc"><port><address location="{me}/svc"/></port></service>\n'
                f"  <import location='{me}?wsdl'/>\n"
                f"  <doc>see {me} or {me}#frag, not {me}0/other nor http://127.0.0.1:1{self.port}/x</doc>\n"
                f"  <last>{me}</last>\n</definitions>\n{me}").encode()

    def _run(self):
        deadline = time.monotonic() + 120
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c: socket.socket):
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.settimeout(10)
        buf = b""
        try:
            for _ in range(100):
                while b"\r\n\r\n" not in buf:
                    data = c.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                target = head.split(b"\r\n")[0].split()[1].decode()
                body = self.document()
                if target == "/health":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                elif target == "/svc-cl":
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                else:
                    ctype = b"text/plain" if target == "/plain" else b"Text/XML; charset=utf-8"
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + ctype + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
                    for i in range(0, len(body), self.piece):
                        part = body[i:i + self.piece]
                        c.sendall(b"%x\r\n" % len(part) + part + b"\r\n")
                        time.sleep(0.002)
                    c.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stop.set()
        self.thread.join(timeout=5)
        self.lsock.close()


@pytest.fixture
def xml_origin(request):
    origin = XmlOrigin(piece=getattr(request, "param", 7))
    try:
        yield origin
    finally:
        origin.close()


def expected(origin: XmlOrigin, replacement: str) -> bytes:
    me = f"http://127.0.0.1:{origin.port}"
    return (f'<?xml version="1.0"?>\n<definitions targetNamespace="{replacement}/ns">\n'
            f'  <service name="Svc"><port><address location="{replacement}/svc"/></port></service>\n'
            f"  <import location='{replacement}?wsdl'/>\n"
            f"  <doc>see {replacement} or {replacement}#frag, not {me}0/other nor http://127.0.0.1:1{origin.port}/x</doc>\n"
            f"  <last>{replacement}</last>\n</definitions>\n{replacement}").encode()


def get(gw, path: str, host: str, version: str = "1.1"):
    with RawConn(gw.host, gw.port) as c:
        c.send(f"GET {path} HTTP/{version}\r\nHost: {host}\r\n\r\n".encode())
        r = c.read_response()
        return r


@pytest.mark.parametrize("xml_origin", [3, 7, 64], indirect=True, ids=["3-byte-chunks", "7-byte-chunks", "64-byte-chunks"])
def test_xml_body_urls_are_rewritten_across_chunk_boundaries(gateway, xml_origin, tmp_path):
    gw = gateway(pools={"p": [Server("x", f"127.0.0.1:{xml_origin.port}")]},
                 pool_options={"p": {"rewrite_body_types": ["text/xml"]}},
                 global_extra={"state_dir": str(tmp_path / "state")})
    original = xml_origin.document()
    me = f"http://127.0.0.1:{xml_origin.port}".encode()
    assert original.count(me) == 8   # 7 rewritable + 1 followed by a digit (another port)

    r = get(gw, "/svc.wsdl", f"127.0.0.1:{gw.port}")
    assert r.status == 200 and r.chunked and r.header("Content-Length") is None, r.raw_head
    assert r.body == expected(xml_origin, f"http://127.0.0.1:{gw.port}"), r.body.decode()

    r = get(gw, "/svc-cl", "gw.example:8080")   # Content-Length from the server: re-chunked
    assert r.status == 200 and r.chunked and r.header("Content-Length") is None, r.raw_head
    assert r.body == expected(xml_origin, "http://gw.example:8080"), r.body.decode()

    r = get(gw, "/plain", f"127.0.0.1:{gw.port}")   # not a listed type: untouched
    assert r.status == 200 and r.body == original, r.body.decode()

    r = get(gw, "/svc.wsdl", f"127.0.0.1:{gw.port}", version="1.0")   # HTTP/1.0 client: close-delimited
    assert r.status == 200 and r.until_close and not r.chunked, r.raw_head
    assert r.body == expected(xml_origin, f"http://127.0.0.1:{gw.port}"), r.body.decode()


def test_without_rewrite_body_types_xml_passes_untouched(gateway, xml_origin, tmp_path):
    gw = gateway(pools={"p": [Server("x", f"127.0.0.1:{xml_origin.port}")]},
                 global_extra={"state_dir": str(tmp_path / "state")})
    r = get(gw, "/svc.wsdl", f"127.0.0.1:{gw.port}")
    assert r.status == 200 and r.body == xml_origin.document()
