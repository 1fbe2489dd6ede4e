"""Response bodies moved socket to socket (splice(2)) instead of through Weir's buffers (issue 9).

A Content-Length body of 64 KiB or more, passed on as received between two plain TCP connections,
goes server socket -> pipe -> client socket. `/status` totals.spliced_bytes counts those bytes.

- test_large_nginx_body_is_spliced_and_arrives_whole: an 8 MiB file from nginx arrives byte for byte,
  most of it spliced; the next request on the same client connection (a small answer) follows it
  correctly, so nothing of the body is left behind in a pipe or a buffer.
- test_a_client_that_reads_late_gets_the_whole_body: a client with a small receive buffer that reads
  in small pieces with pauses: the client socket and the pipe fill, Weir waits for the client again
  and again, and the body still arrives whole, followed by the next answer.
- test_a_server_that_stops_mid_body_closes_the_client: a scripted server announces 4 MiB, sends 1 MiB
  and closes: the client gets the head and part of the body, then the close (no hang, no second
  answer); the exchange counts as aborted.
- test_small_and_chunked_bodies_are_not_spliced: a 2 KiB body and a chunked 1 MiB body arrive whole
  and spliced_bytes stays 0.
"""
from __future__ import annotations

import hashlib
import os
import time

from conftest import RawConn, Server

POOL = {"health": {"type": "none"}}


def start(gateway, address: str, **kwargs):
    return gateway({"p": [Server("o", address)]}, admin="auto", pool_options={"p": POOL}, **kwargs)


def get(c: RawConn, path: str):
    c.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return c.read_response()


def test_large_nginx_body_is_spliced_and_arrives_whole(nginx_backend, gateway):
    content = os.urandom(8 << 20)
    (nginx_backend.root / "static" / "big.bin").write_bytes(content)
    gw = start(gateway, nginx_backend.address)
    with RawConn(gw.host, gw.port, timeout=20) as c:
        r = get(c, "/static/big.bin")
        assert r.status == 200 and len(r.body) == len(content)
        assert hashlib.sha256(r.body).digest() == hashlib.sha256(content).digest()
        r = get(c, "/fixed")
        assert r.status == 200 and r.body == b"fixed text from nginx\n"
    spliced = gw.status()["totals"]["spliced_bytes"]
    # What came with the head in the first read goes through the buffers; the rest is spliced.
    assert len(content) - (1 << 20) <= spliced <= len(content), spliced


def test_a_client_that_reads_late_gets_the_whole_body(nginx_backend, gateway):
    content = os.urandom(6 << 20)
    (nginx_backend.root / "static" / "big.bin").write_bytes(content)
    gw = start(gateway, nginx_backend.address)
    with RawConn(gw.host, gw.port, timeout=20, rcvbuf=16384) as c:
        c.send(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, headers, _ = c.read_head()
        assert status == 200
        # A slow reader: small pieces with pauses, so that the client's socket and Weir's pipe fill
        # and Weir has to wait for the client again and again.
        body = bytearray()
        while len(body) < len(content):
            body += c.read_exact(min(32768, len(content) - len(body)))
            if len(body) % (1 << 20) == 0:
                time.sleep(0.02)
        assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest()
        r = get(c, "/fixed")
        assert r.status == 200 and r.body == b"fixed text from nginx\n"
    assert gw.status()["totals"]["spliced_bytes"] > 0


def test_a_server_that_stops_mid_body_closes_the_client(origin, gateway):
    announced, sent = 4 << 20, 1 << 20

    def handler(conn):
        head = conn.read_head()
        if head is None:
            return
        conn.sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\n\r\n".encode())
        chunk = b"z" * 65536
        for _ in range(sent // len(chunk)):
            conn.sock.sendall(chunk)
        conn.sock.close()

    o = origin(handler)
    gw = start(gateway, o.address)
    with RawConn(gw.host, gw.port, timeout=10) as c:
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        status, _, headers, _ = c.read_head()
        assert status == 200
        got = c.read_to_eof()   # bounded by the socket timeout: a hang fails the test
        assert len(got) == sent, len(got)
        assert b"HTTP/1.1" not in got[-4096:], "a second answer followed the cut body"
    assert gw.status()["totals"]["aborted"] >= 1
    assert gw.status()["totals"]["spliced_bytes"] > 0
    assert not o.errors


def test_small_and_chunked_bodies_are_not_spliced(origin, gateway):
    small = os.urandom(2048)
    large = os.urandom(1 << 20)

    def handler(conn):
        while True:
            head = conn.read_head()
            if head is None:
                return
            if b"/chunked" in head:
                conn.sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                for i in range(0, len(large), 65536):
                    part = large[i:i + 65536]
                    conn.sock.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                conn.sock.sendall(b"0\r\n\r\n")
            else:
                conn.sock.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(small)}\r\n\r\n".encode() + small)

    o = origin(handler)
    gw = start(gateway, o.address)
    with RawConn(gw.host, gw.port, timeout=10) as c:
        r = get(c, "/small")
        assert r.status == 200 and r.body == small
        r = get(c, "/chunked")
        assert r.status == 200 and r.chunked and r.body == large
    assert gw.status()["totals"]["spliced_bytes"] == 0
    assert not o.errors
