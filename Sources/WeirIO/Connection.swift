import Glibc
import CLibevent

/// What happened on a connection besides data arriving or draining.
public enum ConnectionEvent: Sendable {
    /// An outgoing connection completed its TCP handshake.
    case connected
    /// The peer closed its side (FIN).
    case endOfStream
    /// A socket error (refused, reset, unreachable...).
    case failed(IOError)
    /// No byte arrived within the read timeout while reading was enabled.
    case readTimeout
    /// Output could not be written within the write timeout.
    case writeTimeout
}

/// Receives a connection's callbacks on the loop's thread.
public protocol ConnectionHandler: AnyObject {
    /// New bytes are in `connection.input`.
    func connectionReadable(_ connection: Connection)
    /// `connection.output` drained to its low watermark (0 unless set).
    func connectionWritable(_ connection: Connection)
    /// See `ConnectionEvent`. After `.endOfStream`, `.failed` or a timeout the connection stays open
    /// until the handler closes it (the input may still hold unread bytes).
    func connection(_ connection: Connection, event: ConnectionEvent)
}

/// Text form of a peer's address.
public struct PeerAddress: Sendable {
    /// "192.0.2.1" or "2001:db8::1" (no brackets).
    public var host: String
    public var port: Int
}

/// A TCP connection driven by a libevent bufferevent: an input and an output `Buffer`, callbacks to
/// a `ConnectionHandler`, optional timeouts and watermarks. Lives on one loop's thread.
///
/// Ownership: the handler usually owns the connection and the connection holds its handler strongly;
/// `close()` breaks that cycle. A connection must be closed exactly once (a second close is ignored).
public final class Connection {
    public let loop: EventLoop
    @usableFromInline var bev: OpaquePointer?
    /// Who gets callbacks; set to nil by `close()`.
    public var handler: ConnectionHandler?
    /// The remote address (for accepted connections: the client).
    public let peer: PeerAddress
    public let input: Buffer
    public let output: Buffer
    private var closeWhenFlushed = false
    /// Keeps the connection alive while it flushes after its owner let go (see `closeAfterFlush`).
    private var retainedWhileFlushing: Connection?

    private init(loop: EventLoop, bev: OpaquePointer, peer: PeerAddress) {
        self.loop = loop
        self.bev = bev
        self.peer = peer
        input = Buffer(bufferevent_get_input(bev))
        output = Buffer(bufferevent_get_output(bev))
        bufferevent_setcb(bev, { _, arg in
            let c = Unmanaged<Connection>.fromOpaque(arg!).takeUnretainedValue()
            c.handler?.connectionReadable(c)
        }, { _, arg in
            let c = Unmanaged<Connection>.fromOpaque(arg!).takeUnretainedValue()
            if c.closeWhenFlushed { c.close(); return }
            c.handler?.connectionWritable(c)
        }, { bev, what, arg in
            let c = Unmanaged<Connection>.fromOpaque(arg!).takeUnretainedValue()
            c.dispatch(what, socketError: weir_errno())
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    private func dispatch(_ what: Int16, socketError: Int32) {
        if closeWhenFlushed, what & (weir_bev_event_error() | weir_bev_event_eof() | weir_bev_event_timeout()) != 0 {
            close()
            return
        }
        guard let handler else { return }
        if what & weir_bev_event_connected() != 0 {
            handler.connection(self, event: .connected)
        } else if what & weir_bev_event_timeout() != 0 {
            handler.connection(self, event: what & weir_bev_event_reading() != 0 ? .readTimeout : .writeTimeout)
        } else if what & weir_bev_event_eof() != 0 {
            handler.connection(self, event: .endOfStream)
        } else if what & weir_bev_event_error() != 0 {
            handler.connection(self, event: .failed(IOError(what & weir_bev_event_writing() != 0 ? "write" : "read", code: socketError)))
        }
    }

    /// Wraps an accepted socket `fd` (takes ownership of it). Reading starts enabled.
    public static func accepted(loop: EventLoop, fd: Int32, peer: PeerAddress) -> Connection? {
        weir_set_nodelay(fd)
        guard let bev = bufferevent_socket_new(loop.base, fd, weir_bev_opt_close_on_free()) else {
            Glibc.close(fd)
            return nil
        }
        let c = Connection(loop: loop, bev: bev, peer: peer)
        c.setIOSizes()
        bufferevent_enable(bev, weir_ev_read() | weir_ev_write())
        return c
    }

    /// libevent reads and writes at most 16 KiB per call by default; larger bodies stream with
    /// fewer system calls when each call may move more.
    private func setIOSizes() {
        guard let bev else { return }
        bufferevent_set_max_single_read(bev, 64 * 1024)
        bufferevent_set_max_single_write(bev, 64 * 1024)
    }

    /// Starts a non-blocking connect to a numeric `host`:`port`. The handler receives `.connected`
    /// or `.failed`. Bytes written before the connection completes are sent once it does.
    /// Throws only when the address is not numeric or no socket could be made.
    public static func connect(loop: EventLoop, host: String, port: Int, handler: ConnectionHandler) throws -> Connection {
        var storage = sockaddr_storage()
        let len = weir_make_address(host, Int32(port), &storage)
        guard len > 0 else { throw IOError("connect \(host):\(port): not a numeric address") }
        guard let bev = bufferevent_socket_new(loop.base, -1, weir_bev_opt_close_on_free()) else {
            throw IOError("bufferevent_socket_new")
        }
        let c = Connection(loop: loop, bev: bev, peer: PeerAddress(host: host, port: port))
        c.handler = handler
        c.setIOSizes()
        bufferevent_enable(bev, weir_ev_read() | weir_ev_write())
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bufferevent_socket_connect(bev, $0, len) }
        }
        if rc != 0 {
            let error = IOError.errno("connect \(host):\(port)")
            c.close()
            throw error
        }
        let fd = bufferevent_getfd(bev)
        if fd >= 0 { weir_set_nodelay(fd) }
        return c
    }

    /// Whether `close()` has not been called yet.
    @inlinable public var isOpen: Bool { bev != nil }

    /// Starts or stops delivering input (stopping is how backpressure reaches the peer through TCP).
    @inlinable public func setReading(_ on: Bool) {
        guard let bev else { return }
        if on { bufferevent_enable(bev, weir_ev_read()) } else { bufferevent_disable(bev, weir_ev_read()) }
    }

    /// Whether reading is enabled.
    public var isReading: Bool {
        guard let bev else { return false }
        return bufferevent_get_enabled(bev) & weir_ev_read() != 0
    }

    /// Sets read and write timeouts in milliseconds (nil or 0 = none). A read timeout counts only while reading is enabled.
    public func setTimeouts(readMilliseconds: Int64?, writeMilliseconds: Int64?) {
        guard let bev else { return }
        var r = timeval(tv_sec: Int((readMilliseconds ?? 0) / 1000), tv_usec: Int(((readMilliseconds ?? 0) % 1000) * 1000))
        var w = timeval(tv_sec: Int((writeMilliseconds ?? 0) / 1000), tv_usec: Int(((writeMilliseconds ?? 0) % 1000) * 1000))
        let rp = (readMilliseconds ?? 0) > 0
        let wp = (writeMilliseconds ?? 0) > 0
        withUnsafePointer(to: &r) { rptr in
            withUnsafePointer(to: &w) { wptr in
                _ = bufferevent_set_timeouts(bev, rp ? rptr : nil, wp ? wptr : nil)
            }
        }
    }

    /// `connectionWritable` fires when the output drains to `bytes` or less (0 = fully flushed).
    public func setWriteLowWatermark(_ bytes: Int) {
        guard let bev else { return }
        bufferevent_setwatermark(bev, weir_ev_write(), bytes, 0)
    }

    /// Stops reading from the socket once the input holds `bytes` (0 = unlimited).
    public func setReadHighWatermark(_ bytes: Int) {
        guard let bev else { return }
        bufferevent_setwatermark(bev, weir_ev_read(), 0, bytes)
    }

    /// Closes now, discarding unsent output. Idempotent.
    public func close() {
        guard let b = bev else { return }
        bev = nil
        handler = nil
        bufferevent_free(b)
        retainedWhileFlushing = nil
    }

    deinit {
        if let b = bev { bufferevent_free(b) }
    }

    /// Closes with a TCP reset (the peer sees ECONNRESET), discarding unsent output.
    public func abort() {
        guard let b = bev else { return }
        let fd = bufferevent_getfd(b)
        if fd >= 0 { weir_set_linger_zero(fd) }
        close()
    }

    /// Stops reading, sends what is in the output, then closes. The handler gets no more callbacks.
    public func closeAfterFlush() {
        guard let b = bev else { return }
        handler = nil
        if output.isEmpty { close(); return }
        closeWhenFlushed = true
        retainedWhileFlushing = self
        // A peer that never reads must not keep the connection forever.
        var limit = timeval(tv_sec: 30, tv_usec: 0)
        bufferevent_set_timeouts(b, nil, &limit)
        bufferevent_disable(b, weir_ev_read())
        bufferevent_setwatermark(b, weir_ev_write(), 0, 0)
    }

    /// Sends FIN after the output is flushed, keeping the socket open for reading (half-close).
    public func shutdownWriteWhenFlushed() {
        guard let b = bev else { return }
        let fd = bufferevent_getfd(b)
        if output.isEmpty, fd >= 0 { shutdown(fd, Int32(SHUT_WR)) }
    }
}
