import Glibc
import CLibevent
import COpenSSL

/// What happened on a connection besides data arriving or draining.
public enum ConnectionEvent: Sendable {
    /// An outgoing connection completed its TCP (and TLS) handshake; or an accepted TLS connection
    /// completed its handshake with ALPN `h2` (its handler hands it to HTTP/2).
    case connected
    /// The peer closed its side (FIN).
    case endOfStream
    /// A socket error (refused, reset, unreachable...).
    case failed(IOError)
    /// No byte arrived within the read timeout while reading was enabled.
    case readTimeout
    /// Output could not be written within the write timeout (or the connect did not complete).
    case writeTimeout
}

/// Receives a connection's callbacks on the loop's thread.
public protocol ConnectionHandler: AnyObject {
    /// New bytes are in `connection.input`.
    func connectionReadable(_ connection: Connection)
    /// `connection.output` drained from above its low watermark to at or below it (0 unless set).
    func connectionWritable(_ connection: Connection)
    /// See `ConnectionEvent`. After `.endOfStream`, `.failed` or a timeout the connection stays open
    /// until the handler closes it (the input may still hold unread bytes); reading has stopped.
    func connection(_ connection: Connection, event: ConnectionEvent)
}

/// Text form of a peer's address.
public struct PeerAddress: Sendable {
    /// "192.0.2.1" or "2001:db8::1" (no brackets).
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }
}

/// A non-blocking TCP socket driven by two libevent events, with an input and an output `Buffer`.
///
/// Reading: up to `maxRead` bytes per readiness straight into `input` (no FIONREAD probe).
/// Writing: whatever is appended to `output` is written later in the same loop pass (no epoll
/// registration while the socket keeps up); only a socket that cannot take everything is watched
/// for writability. Lives on one loop's thread.
///
/// Ownership: the handler usually owns the connection and the connection holds its handler strongly;
/// `close()` breaks that cycle. The buffers stay valid until the object is released.
public final class Connection {
    public let loop: EventLoop
    @usableFromInline var fd: Int32
    /// Who gets callbacks; set to nil by `close()`.
    public var handler: ConnectionHandler?
    /// The remote address (for accepted connections: the client).
    public let peer: PeerAddress
    public let input: Buffer
    public let output: Buffer
    private var readEvent: OpaquePointer?
    private var writeEvent: OpaquePointer?
    /// The handler wants input. The read event is then added to the loop (`readArmed`) or, right after
    /// an accept, activated for one read in this loop pass and added only if the handler still wants
    /// input after it (see `accepted`).
    private var reading = false
    private var readArmed = false        // read event added
    private var watchingWrite = false    // write event added (waiting for writability)
    private var connecting = false
    private var closeWhenFlushed = false
    /// Timeouts (0 = none) and the deadlines they set while they run (0 = not running). One timer
    /// event (made on first use) serves both, scheduled for the earlier: a deadline that moves later
    /// (the read deadline does with every read, a new exchange sets new timeouts) costs no
    /// timer-heap work (`LazyDeadline`).
    private var readTimeoutMs: Int64 = 0
    private var writeTimeoutMs: Int64 = 0
    private var readDeadlineMs: Int64 = 0
    private var writeDeadlineMs: Int64 = 0
    private var deadlineEvent: OpaquePointer?
    private var deadline = LazyDeadline()
    private var lowWatermark = 0
    /// Keeps the connection alive while it flushes after its owner let go (see `closeAfterFlush`).
    private var retainedWhileFlushing: Connection?
    /// The OpenSSL session when the connection is TLS (SSL*), and where its handshake stands.
    private var ssl: OpaquePointer?
    /// The listener's TLS side a server-side `ssl` was made from: held for the connection's life,
    /// since the SSL's SNI and ticket callbacks use it (a reload may let go of it meanwhile).
    private var serverContext: TLSServerContext?
    private var handshaking = false
    /// A TLS read that could not proceed until the socket is writable (OpenSSL's WANT_WRITE).
    private var readWaitsForWrite = false
    /// The peer ended its side (end of stream, TLS close_notify, or a reset).
    private var peerEnded = false
    /// TLS: our close_notify has been handed to the socket.
    private var sentCloseNotify = false
    /// After `closeAfterFlush` sent everything: our side is shut down and what the peer still
    /// sends is read and discarded until it closes too, or until `lingerDeadlineMs`.
    private var lingering = false
    /// Whether `closeAfterFlush` asked for the lingering read (see there).
    private var lingerWanted = true
    private var lingerDeadlineMs: Int64 = 0
    /// `notifyWhenWritable` asked for a `connectionWritable` once the output is empty.
    private var writableWanted = false
    /// Readiness to read is reported without reading (see `readsDirectly`).
    private var readsDirectlyFlag = false
    /// `outputGrew` activated the write event and it has not run yet.
    private var writeActivated = false
    /// Sent raw on the socket as soon as an outgoing connect completes, before TLS and `output`
    /// (a PROXY protocol header); emptied once sent.
    private var preface: [UInt8] = []
    /// The address the peer connected to, when a PROXY protocol header stated it (see `localAddress`).
    private var statedLocal: PeerAddress?
    /// unowned(unsafe), not weak: a weak reference gives the endpoint a side table, which sends every
    /// retain and release of it down the slow path. The endpoint detaches itself when it goes
    /// (`detachStreamEndpoint`, from its deinit), so the reference never dangles.
    private unowned(unsafe) var streamEndpoint: StreamEndpoint?
    /// A stream connection's view of the connection it is carried on (TLS or not, its TLS version).
    private var streamSecure = false
    private var streamTLSVersion: StaticString?

    /// The most bytes read per readiness notification.
    static let maxRead = 256 * 1024
    /// How long a connection closing after a flush waits for the peer to close its side: the
    /// whole time, and the longest pause between two reads (see `closeAfterFlush`).
    static let lingerMilliseconds: Int64 = 2_000

    /// The connection's buffers, which go back to the loop for the next connection of the same
    /// kind when this one is released (a stream's buffers call back its endpoint).
    private let buffers: ConnectionBuffers
    /// A stream connection (`Connection.stream`): no socket, the endpoint carries the bytes.
    private let isStream: Bool

    private init(loop: EventLoop, fd: Int32, peer: PeerAddress, stream: StreamEndpoint? = nil) {
        self.loop = loop
        self.fd = fd
        self.peer = peer
        isStream = stream != nil
        buffers = isStream ? loop.takeBuffers(stream: true) ?? Self.makeStreamBuffers()
                           : loop.takeBuffers(stream: false) ?? Self.makeSocketBuffers()
        input = Buffer(buffers.input)
        output = Buffer(buffers.output)
        streamEndpoint = stream
        let me = Unmanaged.passUnretained(self).toOpaque()
        buffers.owner.pointee = me
        if isStream { return }
        readEvent = loop.makeEvent(fd: fd, flags: weir_ev_read() | weir_ev_persist(), callback: { _, what, arg in
            Unmanaged<Connection>.fromOpaque(arg!).takeUnretainedValue().readEventFired(what)
        }, argument: me)
        // One-shot: a persistent event that was once added with a timeout re-adds itself after
        // `event_active`, which would leave EPOLLOUT armed on an idle socket (a busy loop).
        writeEvent = loop.makeEvent(fd: fd, flags: weir_ev_write(), callback: { _, what, arg in
            Unmanaged<Connection>.fromOpaque(arg!).takeUnretainedValue().writeReady(what)
        }, argument: me)
    }

    /// New buffers for a socket connection: the output's callback finds the connection in the
    /// owner cell, so the pair can serve the loop's next connection after this one.
    private static func makeSocketBuffers() -> ConnectionBuffers {
        let owner = newOwnerCell()
        let output = evbuffer_new()!
        evbuffer_add_cb(output, { _, info, arg in
            guard let info, info.pointee.n_added > 0, let c = Connection.current(inCell: arg) else { return }
            c.outputGrew()
        }, owner)
        return ConnectionBuffers(input: evbuffer_new()!, output: output, owner: owner, isStream: false)
    }

    /// New buffers for a stream connection: both call back the endpoint of the connection in the
    /// owner cell (bytes appended to the output, bytes taken from the input).
    private static func makeStreamBuffers() -> ConnectionBuffers {
        let owner = newOwnerCell()
        let input = evbuffer_new()!, output = evbuffer_new()!
        evbuffer_add_cb(output, { _, info, arg in
            guard let info, info.pointee.n_added > 0, let c = Connection.current(inCell: arg) else { return }
            c.streamEndpoint?.streamOutputGrew(c)
        }, owner)
        evbuffer_add_cb(input, { _, info, arg in
            guard let info, info.pointee.n_deleted > 0, let c = Connection.current(inCell: arg) else { return }
            c.streamEndpoint?.streamInputTaken(c, count: info.pointee.n_deleted)
        }, owner)
        return ConnectionBuffers(input: input, output: output, owner: owner, isStream: true)
    }

    /// An empty owner cell for a new buffer pair.
    private static func newOwnerCell() -> UnsafeMutablePointer<UnsafeMutableRawPointer?> {
        let owner = UnsafeMutablePointer<UnsafeMutableRawPointer?>.allocate(capacity: 1)
        owner.initialize(to: nil)
        return owner
    }

    /// The connection in the owner cell a buffer callback was given (nil while the pair is spare
    /// or being emptied).
    private static func current(inCell cell: UnsafeMutableRawPointer?) -> Connection? {
        guard let c = cell!.assumingMemoryBound(to: UnsafeMutableRawPointer?.self).pointee else { return nil }
        return Unmanaged<Connection>.fromOpaque(c).takeUnretainedValue()
    }

    deinit {
        closeSocket()
        buffers.owner.pointee = nil   // first: draining calls the buffers' callbacks
        // A drain of everything frees every segment. An empty buffer has none: reads that got
        // nothing into an empty buffer give back what they reserved (weir_read_into,
        // tlsReadReady), so a kept pair pins no memory.
        if !input.isEmpty { input.drainAll() }
        if !output.isEmpty { output.drainAll() }
        loop.recycle(buffers: buffers)
    }

    /// Wraps an accepted socket `fd` (takes ownership of it). Reading starts enabled: the first read
    /// is tried later in this loop pass without registering the socket with epoll, since a client's
    /// first bytes usually came with its connection; the socket is registered only if the handler
    /// still wants input after that read (a `Connection: close` request that was read whole never
    /// needs it, which saves an `epoll_ctl` pair and a loop wake-up per connection). With `tls`,
    /// the TLS handshake runs first; a failed one is reported as `.failed` ("tls handshake: …").
    /// `local`: the address the client connected to when a PROXY protocol header stated it (else
    /// `localAddress` asks the socket).
    public static func accepted(loop: EventLoop, fd: Int32, peer: PeerAddress, tls: TLSServerContext? = nil,
                                local: PeerAddress? = nil) -> Connection? {
        weir_set_nodelay(fd)
        let c = Connection(loop: loop, fd: fd, peer: peer)
        c.statedLocal = local
        if let tls {
            guard let ssl = tls.newSession(fd: fd) else { c.close(); return nil }
            c.ssl = ssl
            c.serverContext = tls
            c.handshaking = true
        }
        c.reading = true
        event_active(c.readEvent, Int32(weir_ev_read()), 1)
        return c
    }

    /// The local end of the connection: for an accepted one, the address the client connected to (as a
    /// PROXY protocol header stated it, else the socket's own). nil when the socket cannot tell (closed).
    /// Asks the kernel each time unless stated: call it only where it is needed.
    public var localAddress: PeerAddress? {
        if let statedLocal { return statedLocal }
        guard fd >= 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        var text = [CChar](repeating: 0, count: 64)
        var port: Int32 = 0
        let formatted = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { weir_format_address($0, &text, 64, &port) }
        }
        guard formatted >= 0 else { return nil }
        return PeerAddress(host: text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }, port: Int(port))
    }

    /// Whether this is a TLS connection (for a stream connection: whether the connection it is carried on is).
    public var isTLS: Bool { ssl != nil || streamSecure }

    /// Whether ALPN selected HTTP/2 (`h2`) in the completed TLS handshake.
    public var negotiatedHTTP2: Bool { ssl.map { weir_ssl_alpn_is_h2($0) == 1 } ?? false }

    /// Whether the TLS handshake has not completed yet.
    public var isHandshaking: Bool { handshaking }

    /// Whether the TLS session was resumed (ticket or session cache) rather than fully negotiated.
    public var tlsSessionReused: Bool { ssl.map { weir_ssl_session_reused($0) == 1 } ?? false }

    /// The negotiated TLS version's name ("TLSv1.3", "TLSv1.2", ...), or nil on a plain connection
    /// (static text: nothing is allocated; for the access log).
    public var tlsVersionName: StaticString? {
        guard let ssl else { return streamTLSVersion }
        switch SSL_version(ssl) {
        case 0x0304: return "TLSv1.3"
        case 0x0303: return "TLSv1.2"
        case 0x0302: return "TLSv1.1"
        case 0x0301: return "TLSv1"
        default: return "unknown"
        }
    }

    /// Starts a non-blocking connect to a numeric `host`:`port`. The handler receives `.connected`
    /// or `.failed` (or `.writeTimeout` when a write timeout is set and passes first). Bytes written
    /// before the connection completes are sent once it does.
    /// Throws only when the address is not numeric or no socket could be made.
    /// With `tls`, the TLS handshake follows the TCP connect (`serverName` is verified and sent as
    /// SNI) and `.connected` comes when it has completed.
    /// `preface` (a PROXY protocol header) is sent as it is right after the TCP connect, before the TLS
    /// handshake and anything appended to `output`.
    public static func connect(loop: EventLoop, host: String, port: Int, handler: ConnectionHandler,
                               tls: TLSClientContext? = nil, serverName: String? = nil,
                               preface: [UInt8] = []) throws -> Connection {
        var storage = sockaddr_storage()
        let len = weir_make_address(host, Int32(port), &storage)
        guard len > 0 else { throw IOError("connect \(host):\(port): not a numeric address") }
        let fd = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { weir_connect($0, socklen_t(len)) }
        }
        guard fd >= 0 else { throw IOError.errno("connect \(host):\(port)") }   // errno from weir_connect
        let c = Connection(loop: loop, fd: fd, peer: PeerAddress(host: host, port: port))
        c.handler = handler
        c.connecting = true
        c.preface = preface
        if let tls {
            guard let ssl = tls.newSession(fd: fd, serverName: serverName ?? host) else {
                c.close()
                throw IOError("tls: cannot create a session for \(host):\(port)")
            }
            c.ssl = ssl
        }
        c.watchWrite(true)
        return c
    }

    /// Whether `close()` has not been called yet.
    @inlinable public var isOpen: Bool { fd >= 0 }

    /// Starts or stops delivering input (stopping is how backpressure reaches the peer through TCP).
    public func setReading(_ on: Bool) {
        guard fd >= 0, on != reading else { return }
        reading = on
        if isStream { streamEndpoint?.streamReadingChanged(self); return }
        if on { armRead() } else { disarmRead() }
    }

    /// Adds the read event to the loop (again: restarting the read timeout).
    private func armRead() {
        readArmed = true
        event_add(readEvent, nil)
        restartReadDeadline()
    }

    /// Takes the read event out of the loop, and out of its active list if `event_active` queued it.
    private func disarmRead() {
        readArmed = false
        readDeadlineMs = 0
        event_del(readEvent)
    }

    /// The read timeout starts again (reading was armed, or bytes arrived).
    private func restartReadDeadline() {
        guard readTimeoutMs > 0 else { readDeadlineMs = 0; return }
        let now = loop.monotonicMilliseconds
        readDeadlineMs = now + readTimeoutMs
        armDeadline(now: now)
    }

    /// Schedules the timer event for the earliest running deadline. One that stopped running is
    /// left scheduled: `deadlineFired` then finds nothing due.
    private func armDeadline(now: Int64) {
        let due = readDeadlineMs == 0 ? writeDeadlineMs
            : writeDeadlineMs == 0 ? readDeadlineMs : min(readDeadlineMs, writeDeadlineMs)
        guard due > 0, fd >= 0 else { return }
        if deadlineEvent == nil {
            deadlineEvent = loop.makeEvent(fd: -1, flags: 0, callback: { _, _, arg in
                Unmanaged<Connection>.fromOpaque(arg!).takeUnretainedValue().deadlineFired()
            }, argument: Unmanaged.passUnretained(self).toOpaque())
        }
        deadline.schedule(dueMs: due, now: now, event: deadlineEvent)
    }

    /// The timer event ran: once its deadline has come, reports the deadlines that passed (read
    /// first) and schedules it for the earliest one still running.
    private func deadlineFired() {
        var now = loop.monotonicMilliseconds
        guard fd >= 0, deadline.eventRan(now: now, event: deadlineEvent) else { return }
        if readDeadlineMs > 0 && now >= readDeadlineMs {
            readDeadlineMs = 0
            readTimedOut()
            guard fd >= 0 else { return }
            now = loop.monotonicMilliseconds
        }
        if writeDeadlineMs > 0 && now >= writeDeadlineMs {
            writeDeadlineMs = 0
            writeTimedOut()
            guard fd >= 0 else { return }
            now = loop.monotonicMilliseconds
        }
        armDeadline(now: now)
    }


    /// Sets read and write timeouts in milliseconds (nil or 0 = none). The read timeout counts only
    /// while reading is enabled and restarts with every read; the write timeout only while output waits.
    public func setTimeouts(readMilliseconds: Int64?, writeMilliseconds: Int64?) {
        if isStream { return }   // the carrying connection keeps its own timeouts (see `stream`)
        readTimeoutMs = max(0, readMilliseconds ?? 0)
        writeTimeoutMs = max(0, writeMilliseconds ?? 0)
        readDeadlineMs = 0
        writeDeadlineMs = 0
        let readRuns = readArmed && readTimeoutMs > 0, writeRuns = watchingWrite && writeTimeoutMs > 0
        guard fd >= 0, readRuns || writeRuns else { return }   // no clock read when neither runs
        let now = loop.monotonicMilliseconds
        if readRuns { readDeadlineMs = now + readTimeoutMs }
        if writeRuns { writeDeadlineMs = now + writeTimeoutMs }
        armDeadline(now: now)
    }

    /// `connectionWritable` fires when the output drains from above `bytes` to `bytes` or less.
    public func setWriteLowWatermark(_ bytes: Int) { lowWatermark = bytes }

    // MARK: - Splicing

    /// Whether this is a plain TCP connection (splice works on it; TLS bytes must go through OpenSSL).
    public var canSplice: Bool { ssl == nil && fd >= 0 && !isStream }

    /// When true, readiness to read is reported by `connectionReadable` without reading anything
    /// into `input`: the handler takes the bytes itself with `splice(into:max:)`. Timeouts work as
    /// usual. Precondition for setting it: `canSplice`.
    public var readsDirectly: Bool {
        get { readsDirectlyFlag }
        set { readsDirectlyFlag = newValue && ssl == nil }
    }

    /// The outcome of moving bytes from this socket into a pipe.
    public enum SpliceRead {
        /// This many bytes went into the pipe.
        case moved(Int)
        /// Nothing to read now (or the pipe is full).
        case wouldBlock
        /// The peer closed its side: reading stops (as after `.endOfStream`).
        case ended
        /// A socket error: reading stops.
        case failed(IOError)
    }

    /// Moves up to `max` bytes (and at most what the pipe has room for) from the socket into `pipe`.
    /// Precondition: `canSplice`, `input` is empty (bytes already read must go first).
    public func splice(into pipe: SplicePipe, max: Int) -> SpliceRead {
        let room = Swift.min(max, pipe.capacity - pipe.count)
        guard fd >= 0, room > 0 else { return .wouldBlock }
        switch SystemCall.run({ weir_splice(fd, pipe.writeEnd, room) }) {
        case .done(let n) where n > 0:
            pipe.count += n
            return .moved(n)
        case .done:
            peerEnded = true
            setReading(false)
            return .ended
        case .wouldBlock:
            return .wouldBlock
        case .failed(let code):
            peerEnded = true
            setReading(false)
            return .failed(IOError("splice from socket", code: code))
        }
    }

    /// The outcome of moving bytes from a pipe to this socket.
    public enum SpliceWrite {
        /// This many bytes left the pipe (0 when the socket is full: `notifyWhenWritable`).
        case moved(Int)
        /// The peer is gone (EPIPE, ECONNRESET...).
        case failed(IOError)
    }

    /// Moves what `pipe` holds into the socket, as far as the socket takes it. Precondition:
    /// `canSplice`, `output` is empty (bytes queued before must go first).
    public func splice(from pipe: SplicePipe) -> SpliceWrite {
        var total = 0
        while pipe.count > 0 && fd >= 0 {
            switch SystemCall.run({ weir_splice(pipe.readEnd, fd, pipe.count) }) {
            case .done(let n) where n > 0:
                pipe.count -= n
                total += n
            case .done, .wouldBlock:
                return .moved(total)
            case .failed(let code):
                return .failed(IOError("splice to socket", code: code))
            }
        }
        return .moved(total)
    }

    /// `connectionWritable` fires once the output is empty and the socket takes bytes again (for a
    /// writer that bypasses `output`, e.g. `splice(from:)`); the write timeout runs meanwhile.
    public func notifyWhenWritable() {
        guard fd >= 0, !closeWhenFlushed, !isStream else { return }
        writableWanted = true
        if output.isEmpty && !connecting && !handshaking { watchWrite(true) }
    }

    /// Closes now, discarding unsent output. Idempotent.
    public func close() {
        if isStream { closeStream(flushed: false); return }
        closeSocket()
        handler = nil
        if retainedWhileFlushing != nil { loop.flushingConnections -= 1 }
        retainedWhileFlushing = nil
    }

    /// Stops reading, sends what is in the output (within 30 s at most), then closes gracefully:
    /// a TLS close_notify, a FIN, and up to `lingerMilliseconds` of reading and discarding what the
    /// peer still sends until it closes too. Closing with unread input would make the kernel send
    /// a reset, and a reset makes the peer's TCP stack discard the answer it has not read yet (an
    /// error response to a client that is still sending). The handler gets no more callbacks;
    /// `EventLoop.flushingConnections` counts the connection until it is closed. Idempotent.
    /// With nothing to send before its TLS handshake has completed, the connection is closed at
    /// once; with something to send, the handshake completes first.
    ///
    /// `linger` false (a clean end: the peer has sent all it meant to, and nothing is left unread)
    /// skips the lingering read: the socket closes right after the FIN, which saves the peer's
    /// round trip and two event registrations per connection. Unread input lingers regardless.
    public func closeAfterFlush(linger: Bool = true) {
        guard fd >= 0, !closeWhenFlushed else { return }   // idempotent: counted once in flushingConnections
        if isStream { closeStream(flushed: true); return }
        handler = nil
        lingerWanted = linger || !input.isEmpty
        if output.isEmpty && !connecting && handshaking { close(); return }
        closeWhenFlushed = true
        retainedWhileFlushing = self
        loop.flushingConnections += 1
        setReading(false)
        if output.isEmpty && !connecting { shutdownAndLinger(); return }
        writeTimeoutMs = 30_000
        if watchingWrite {
            let now = loop.monotonicMilliseconds
            writeDeadlineMs = now + writeTimeoutMs
            armDeadline(now: now)
        } else {
            event_active(writeEvent, Int32(weir_ev_write()), 1)
        }
    }

    // MARK: - Event handling

    private func readEventFired(_ what: Int16) {
        readReady(what)
        // After the first read of an accepted socket: register it only if input is still wanted.
        if reading && !readArmed && fd >= 0 { armRead() }
    }

    /// No byte arrived within the read timeout (or the linger time's longest pause).
    private func readTimedOut() {
        if lingering { close(); return }
        setReading(false)
        handler?.connection(self, event: .readTimeout)
    }

    /// The output could not be written (or the connect did not complete) within the write timeout.
    private func writeTimedOut() {
        if closeWhenFlushed { close(); return }
        watchWrite(false)
        handler?.connection(self, event: .writeTimeout)
    }

    private func readReady(_ what: Int16) {
        if lingering { discardWhileLingering(); return }
        if ssl != nil { tlsReadReady(); return }
        if readsDirectlyFlag {
            if readDeadlineMs > 0 { restartReadDeadline() }   // readiness is activity: the handler splices
            handler?.connectionReadable(self)
            return
        }
        var total = 0
        // Start small (a 32 KiB chain comes from the allocator's free lists) and grow only while
        // reads fill what was offered: large fresh allocations per read cost page faults.
        var offer = 32 * 1024
        reads: while total < Self.maxRead {
            let room = min(offer, Self.maxRead - total)
            switch SystemCall.run({ weir_read_into(input.raw, fd, room) }) {
            case .done(let n) where n > 0:
                total += n
                if n < room { break reads }   // the socket is most likely empty now
                offer = min(offer * 4, 128 * 1024)
            case .done:
                peerEnded = true
                setReading(false)
                if total > 0 { handler?.connectionReadable(self) }
                guard fd >= 0 else { return }
                handler?.connection(self, event: .endOfStream)
                return
            case .wouldBlock:
                break reads
            case .failed(let error):
                peerEnded = true
                setReading(false)
                if total > 0 { handler?.connectionReadable(self) }
                guard fd >= 0 else { return }
                handler?.connection(self, event: .failed(IOError("read", code: error)))
                return
            }
        }
        if total > 0 {
            if readDeadlineMs > 0 { restartReadDeadline() }
            handler?.connectionReadable(self)
        }
    }

    private func writeReady(_ what: Int16) {
        guard fd >= 0 else { return }
        watchingWrite = false   // a one-shot event is no longer pending once it ran
        writeDeadlineMs = 0     // watchWrite(true) starts it again if output is still waiting
        writeActivated = false
        if connecting {
            let error = weir_socket_error(fd)
            if error != 0 {
                connecting = false
                watchWrite(false)
                if closeWhenFlushed { close(); return }
                handler?.connection(self, event: .failed(IOError("connect \(peer.host):\(peer.port)", code: error)))
                return
            }
            connecting = false
            if !preface.isEmpty, let error = sendPreface() {
                watchWrite(false)
                if closeWhenFlushed { close(); return }
                handler?.connection(self, event: .failed(IOError("send PROXY header to \(peer.host):\(peer.port)", code: error)))
                return
            }
            if ssl != nil {
                handshaking = true
                if !reading { setReading(true) }
                continueHandshake()
                return
            }
            if !closeWhenFlushed {
                if !reading { setReading(true) }
                handler?.connection(self, event: .connected)
                guard fd >= 0 else { return }
            }
        }
        if handshaking { continueHandshake(); return }
        if readWaitsForWrite {
            readWaitsForWrite = false
            tlsReadReady()
            guard fd >= 0 else { return }
        }
        flush()
    }

    /// Writes `preface` on a socket that just connected (its send buffer is empty, so the few bytes of a
    /// PROXY header go in one call). Returns nil when all were sent, else the errno (EAGAIN counted as one).
    private func sendPreface() -> Int32? {
        defer { preface = [] }
        let result = preface.withUnsafeBytes { raw in
            SystemCall.run { Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL)) }
        }
        switch result {
        case .done(let n) where n == preface.count: return nil
        case .failed(let code): return code
        default: return EAGAIN
        }
    }

    /// Something was appended to the output: write it later in this loop pass.
    private func outputGrew() {
        guard fd >= 0, !connecting, !handshaking, !watchingWrite, !writeActivated else { return }
        writeActivated = true
        event_active(writeEvent, Int32(weir_ev_write()), 1)
    }

    private func flush() {
        if ssl != nil { tlsFlush(); return }
        let before = output.count
        writes: while !output.isEmpty {
            let error: Int32
            switch SystemCall.run({ weir_write_from(output.raw, fd) }) {
            case .done(let n) where n > 0: continue writes
            case .done: error = EPIPE   // nothing taken from a non-empty buffer
            case .wouldBlock: break writes
            case .failed(let code): error = code
            }
            // The peer is gone (EPIPE, ECONNRESET...).
            watchWrite(false)
            if closeWhenFlushed { close(); return }
            output.drainAll()
            setReading(false)
            handler?.connection(self, event: .failed(IOError("write", code: error)))
            return
        }
        flushed(from: before)
    }

    /// After writing: wait for writability if output is left, close if that was the last of it,
    /// and tell the handler when the output fell to its low watermark.
    private func flushed(from before: Int) {
        let after = output.count
        if after == 0 {
            watchWrite(false)
            if closeWhenFlushed { shutdownAndLinger(); return }
        } else {
            watchWrite(true)
        }
        if (before > lowWatermark && after <= lowWatermark) || (writableWanted && after == 0) {
            writableWanted = false
            handler?.connectionWritable(self)
        }
    }

    /// Everything is sent after `closeAfterFlush`: sends the TLS close_notify and a FIN, then
    /// reads and discards until the peer closes (or `lingerMilliseconds` pass), then closes.
    private func shutdownAndLinger() {
        guard fd >= 0, !lingering else { return }
        if let ssl, !sentCloseNotify {
            weir_err_clear()
            let rc = SSL_shutdown(ssl)
            // Only a full socket buffer is worth waiting for; any other failure ends the session anyway.
            if rc < 0, SSL_get_error(ssl, rc) == weir_ssl_err_want_write() { watchWrite(true); return }
            weir_err_clear()
            sentCloseNotify = true
        }
        // A socket the handler stopped reading may hold bytes that arrived since: closing over them
        // would send a reset, so look (one peek) before skipping the linger.
        let linger = lingerWanted || (!readArmed && hasUnreadBytes())
        if peerEnded || !linger || SystemCall.run({ Glibc.shutdown(fd, Int32(SHUT_WR)) }) != .done(0) { close(); return }
        lingering = true
        lingerDeadlineMs = loop.monotonicMilliseconds + Self.lingerMilliseconds
        readTimeoutMs = Self.lingerMilliseconds
        reading = true
        armRead()
    }

    /// Whether bytes the handler has not read are waiting in the socket (its end of stream aside).
    private func hasUnreadBytes() -> Bool {
        var byte: UInt8 = 0
        if case .done(let n) = SystemCall.run({ Glibc.recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) }), n > 0 { return true }
        return false
    }

    /// While lingering: reads and drops what arrived; closes at the peer's end, on an error, or
    /// once the linger time is over.
    private func discardWhileLingering() {
        var total = 0
        while total < Self.maxRead {
            switch SystemCall.run({ weir_read_into(input.raw, fd, 64 * 1024) }) {
            case .done(let n) where n > 0:
                total += n
                input.drainAll()
                restartReadDeadline()
            case .wouldBlock:
                if loop.monotonicMilliseconds >= lingerDeadlineMs { close() }
                return
            case .done, .failed:
                close()
                return
            }
        }
        if loop.monotonicMilliseconds >= lingerDeadlineMs { close() }
    }

    private func watchWrite(_ on: Bool) {
        guard fd >= 0, on != watchingWrite else { return }
        watchingWrite = on
        if on {
            event_add(writeEvent, nil)
            if writeTimeoutMs > 0 {
                let now = loop.monotonicMilliseconds
                writeDeadlineMs = now + writeTimeoutMs
                armDeadline(now: now)
            }
        } else {
            writeDeadlineMs = 0
            event_del(writeEvent)
        }
    }

    // MARK: - TLS

    /// Drives the handshake as far as the socket allows.
    private func continueHandshake() {
        guard let ssl, fd >= 0 else { return }
        weir_err_clear()
        let (rc, code) = SystemCall.withErrno { SSL_do_handshake(ssl) }
        if rc == 1 {
            handshaking = false
            let isClient = SSL_is_server(ssl) == 0
            // An accepted connection hears `.connected` only when ALPN chose h2: its handler changes.
            if (isClient || weir_ssl_alpn_is_h2(ssl) == 1), !closeWhenFlushed {
                handler?.connection(self, event: .connected)
                guard fd >= 0 else { return }
            }
            flush()
            guard fd >= 0 else { return }
            tlsReadReady()   // application data may have come with the last handshake flight
            return
        }
        let error = SSL_get_error(ssl, rc)
        if error == weir_ssl_err_want_read() { if !reading { setReading(true) }; return }
        if error == weir_ssl_err_want_write() { watchWrite(true); return }
        let reason = openSSLErrors()
        setReading(false)
        if closeWhenFlushed { close(); return }
        handler?.connection(self, event: .failed(IOError("tls handshake: \(reason.isEmpty ? "connection closed" : reason)",
                                                         code: error == weir_ssl_err_syscall() ? code : 0)))
    }

    /// Reads decrypted bytes into `input` until OpenSSL needs more from the socket.
    private func tlsReadReady() {
        guard let ssl, fd >= 0, !lingering else { return }   // lingering reads bypass TLS (discardWhileLingering)
        if handshaking {
            if readDeadlineMs > 0 { restartReadDeadline() }   // each handshake flight is activity
            continueHandshake()
            return
        }
        var total = 0
        // A read that gets nothing into an empty input gives back the segment it reserved: an idle
        // keep-alive connection must not pin 16 KiB (as `weir_read_into` does for plain reads).
        let wasEmpty = input.isEmpty
        while total < Self.maxRead {
            weir_err_clear()
            var vec = iovec()
            var got = 0
            guard evbuffer_reserve_space(input.raw, 16 * 1024, &vec, 1) >= 1 else { break }
            let (n, code) = SystemCall.withErrno { SSL_read_ex(ssl, vec.iov_base, vec.iov_len, &got) }
            vec.iov_len = n == 1 ? got : 0
            evbuffer_commit_space(input.raw, &vec, n == 1 ? 1 : 0)
            if n == 1 {
                total += got
                // Nothing buffered inside OpenSSL: the socket is most likely empty, so skip the
                // read that would only say EAGAIN.
                if SSL_has_pending(ssl) == 0 { break }
                continue
            }
            let error = SSL_get_error(ssl, n)
            // OpenSSL's socket BIO already retries EINTR as WANT_READ / WANT_WRITE.
            if error == weir_ssl_err_want_read() { break }
            if error == weir_ssl_err_want_write() { readWaitsForWrite = true; watchWrite(true); break }
            peerEnded = true
            setReading(false)
            let systemError = error == weir_ssl_err_syscall() ? code : 0
            let reason = openSSLErrors()
            if total > 0 { handler?.connectionReadable(self) }
            guard fd >= 0 else { return }
            if error == weir_ssl_err_zero_return() || (error == weir_ssl_err_syscall() && systemError == 0) {
                handler?.connection(self, event: .endOfStream)
            } else {
                handler?.connection(self, event: .failed(IOError("tls read: \(reason.isEmpty ? "connection reset" : reason)", code: systemError)))
            }
            return
        }
        if total == 0 && wasEmpty { weir_evbuffer_clear(input.raw) }
        if total >= Self.maxRead, SSL_pending(ssl) > 0 {
            event_active(readEvent, Int32(weir_ev_read()), 1)   // more is decrypted already: come back
        }
        if total > 0 {
            if readDeadlineMs > 0 { restartReadDeadline() }
            handler?.connectionReadable(self)
        }
    }

    /// Encrypts and sends `output`, segment by segment.
    private func tlsFlush() {
        guard let ssl, fd >= 0, !handshaking, !connecting else { return }
        let before = output.count
        while !output.isEmpty {
            weir_err_clear()
            var written = 0
            // One record for small pieces (a head and its body are separate segments): fewer
            // records, fewer system calls. Large bodies go segment by segment without copying.
            let (rc, code): (Int32, Int32)
            if output.withFirstSegment({ $0.count }) < 16 * 1024 {
                (rc, code) = output.withContiguousPrefix(16 * 1024) { bytes in
                    SystemCall.withErrno { SSL_write_ex(ssl, bytes.baseAddress, bytes.count, &written) }
                }
            } else {
                (rc, code) = output.withFirstSegment { bytes in
                    SystemCall.withErrno { SSL_write_ex(ssl, bytes.baseAddress, min(bytes.count, 64 * 1024), &written) }
                }
            }
            if rc == 1 { output.drain(written); continue }
            let error = SSL_get_error(ssl, rc)
            if error == weir_ssl_err_want_write() { break }
            if error == weir_ssl_err_want_read() { if !reading { setReading(true) }; break }
            watchWrite(false)
            if closeWhenFlushed { close(); return }
            output.drainAll()
            setReading(false)
            let reason = openSSLErrors()
            handler?.connection(self, event: .failed(IOError("tls write: \(reason.isEmpty ? "connection reset" : reason)",
                                                             code: error == weir_ssl_err_syscall() ? code : 0)))
            return
        }
        flushed(from: before)
    }

    private func closeSocket() {
        guard fd >= 0, !isStream else { fd = -1; return }
        if let ssl {
            if !handshaking && !sentCloseNotify { weir_err_clear(); _ = SSL_shutdown(ssl); weir_err_clear() }   // best effort close_notify
            SSL_free(ssl)
            self.ssl = nil
        }
        if let readEvent { loop.recycle(event: readEvent) }
        if let writeEvent { loop.recycle(event: writeEvent) }
        if let deadlineEvent { loop.recycle(event: deadlineEvent) }
        readEvent = nil
        writeEvent = nil
        deadlineEvent = nil
        deadline.forget()
        readDeadlineMs = 0
        writeDeadlineMs = 0
        reading = false
        readArmed = false
        watchingWrite = false
        lingering = false
        Glibc.close(fd)   // not retried on EINTR: Linux frees the descriptor even then
        fd = -1
    }

    private static func timeval(milliseconds: Int64) -> Glibc.timeval {
        Glibc.timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int((milliseconds % 1000) * 1000))
    }
}

// MARK: - Stream connections

/// The other end of a stream connection (`Connection.stream`): what carries its bytes, e.g. one
/// HTTP/2 stream. Called on the loop's thread, synchronously from the connection's operations, so
/// an implementation only records what happened and does its work later in the loop pass.
public protocol StreamEndpoint: AnyObject {
    /// Bytes were appended to the connection's output.
    func streamOutputGrew(_ connection: Connection)
    /// The handler switched reading on or off (`isReading`): backpressure towards the stream's sender.
    func streamReadingChanged(_ connection: Connection)
    /// The handler took (drained or moved) `count` bytes of the connection's input.
    func streamInputTaken(_ connection: Connection, count: Int)
    /// The handler closed the connection: `flushed` after `closeAfterFlush` (the output holds the
    /// rest of what it sends), not after `close` (the exchange was cut off).
    func streamClosed(_ connection: Connection, flushed: Bool)
}

extension Connection {
    /// A connection without a socket, for a handler that reads and writes a `Connection` (a client
    /// session) while `endpoint` carries the bytes: the endpoint appends to `input` and calls
    /// `streamInputArrived`, takes from `output` and calls `streamOutputTaken`. It reports
    /// `peer`, `local`, `secure` and `tlsVersion` of the connection it is carried on. Timeouts are
    /// ignored (the carrying connection has its own), it cannot splice, and closing it only tells the
    /// endpoint (`StreamEndpoint.streamClosed`). The endpoint is not retained: it must call
    /// `detachStreamEndpoint` before it goes if the connection may outlive it.
    public static func stream(loop: EventLoop, peer: PeerAddress, local: PeerAddress?, secure: Bool,
                              tlsVersion: StaticString?, endpoint: StreamEndpoint) -> Connection {
        let c = Connection(loop: loop, fd: Int32.max, peer: peer, stream: endpoint)   // never a real descriptor
        c.statedLocal = local
        c.streamSecure = secure
        c.streamTLSVersion = tlsVersion
        c.reading = true
        return c
    }

    /// Stream connections: the endpoint is going away (call from its deinit): nothing is reported to it any more.
    public func detachStreamEndpoint() { streamEndpoint = nil }

    /// Whether the handler reads input now (stream connections: the endpoint holds its bytes back meanwhile).
    public var isReading: Bool { reading }

    /// Stream connections: bytes were appended to `input`; tells the handler while it is reading.
    public func streamInputArrived() {
        guard isStream, fd >= 0, reading, !input.isEmpty else { return }
        handler?.connectionReadable(self)
    }

    /// Stream connections: the carrier failed (the stream was reset); the handler gets `.failed`.
    public func streamFailed(_ reason: String) {
        guard isStream, fd >= 0 else { return }
        reading = false
        handler?.connection(self, event: .failed(IOError(reason)))
    }

    /// Stream connections: the endpoint took bytes from `output`, which held `before` bytes; the
    /// handler hears `connectionWritable` when that brought it to the low watermark.
    public func streamOutputTaken(before: Int) {
        guard isStream, fd >= 0 else { return }
        let after = output.count
        if before > lowWatermark && after <= lowWatermark { handler?.connectionWritable(self) }
    }

    fileprivate func closeStream(flushed: Bool) {
        guard fd >= 0 else { return }
        fd = -1
        reading = false
        handler = nil
        streamEndpoint?.streamClosed(self, flushed: flushed)
    }
}
