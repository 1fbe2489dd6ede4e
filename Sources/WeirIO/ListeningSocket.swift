import Glibc
import CLibevent
import Synchronization

/// A listening TCP socket with SO_REUSEPORT on one loop: each worker binds its own, and the kernel
/// spreads new connections among them. Use on the loop's thread.
///
/// libevent accepts in a loop and retries EINTR, EAGAIN and ECONNABORTED on the next readiness.
/// Any other failure (out of descriptors: EMFILE, ENFILE; out of memory: ENOBUFS, ENOMEM) pauses
/// accepting for `backoffMilliseconds`: left alone, libevent would only print a warning and try
/// again at once, spinning the loop and flooding stderr for as long as the shortage lasts.
public final class ListeningSocket {
    private var listener: OpaquePointer?
    private let loop: EventLoop
    private let onAccept: (Int32, PeerAddress) -> Void
    private var backoff: LoopTimer?
    private var pausedByOwner = false
    private var backingOff = false
    /// The port actually bound (useful when asked for port 0).
    public let port: Int
    /// Accepts that failed with an error other than EINTR, EAGAIN or ECONNABORTED, and the last errno.
    public private(set) var acceptFailures = 0
    public private(set) var lastAcceptError: Int32 = 0
    /// How long accepting pauses after such a failure.
    public static let backoffMilliseconds: Int64 = 100

    /// Binds `host`:`port` (numeric IPv4 or IPv6) and starts accepting; `onAccept` receives each new
    /// socket (ownership passes to it) and the client's address.
    /// Throws an `IOError` naming the address when the bind or listen fails.
    /// `freebind`: bind even when the address is not (yet) on any interface (IP_FREEBIND), for a
    /// peer's listener on an address it may take over.
    public convenience init(loop: EventLoop, host: String, port: Int, backlog: Int32 = 1024, freebind: Bool = false,
                            onAccept: @escaping (Int32, PeerAddress) -> Void) throws {
        let fd = try Self.bind(host: host, port: port, backlog: backlog, freebind: freebind)
        try self.init(loop: loop, adopting: fd, onAccept: onAccept)
    }

    /// A new non-blocking SO_REUSEPORT socket bound to `host`:`port` and listening, not yet on any loop
    /// (any thread may call this: the gateway binds a reload's new listeners on its control thread,
    /// so a bind that fails fails the reload before any worker changes). Throws an `IOError` naming
    /// the address when the bind or listen fails. The caller owns the descriptor.
    public static func bind(host: String, port: Int, backlog: Int32 = 1024, freebind: Bool = false) throws -> Int32 {
        var storage = sockaddr_storage()
        let len = weir_make_address(host, Int32(port), &storage)
        let shown = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard len > 0 else { throw IOError("listen \(shown): not a numeric address") }
        let fd = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { weir_listen_socket($0, socklen_t(len), backlog, freebind ? 1 : 0) }
        }
        guard fd >= 0 else { throw IOError.errno("listen \(shown)") }
        return fd
    }

    /// The port a bound socket has (the one the kernel chose for port 0).
    public static func localPort(_ fd: Int32) -> Int { Int(weir_local_port(fd)) }

    /// Starts accepting on `fd`, a listening socket (from `bind`, or inherited), on `loop`; the socket
    /// is owned (closed by `close`) from now on, also when this throws. An inherited socket keeps
    /// its accept queue: connections already waiting in it are accepted here.
    /// `handOver`: a binary upgrade passes this socket to the new process (`handOverCopies`).
    public init(loop: EventLoop, adopting fd: Int32, handOver: Bool = false, onAccept: @escaping (Int32, PeerAddress) -> Void) throws {
        self.onAccept = onAccept
        self.loop = loop
        self.port = Int(weir_local_port(fd))
        let shown = "listening socket \(fd) (port \(port))"
        // Accepted sockets are close-on-exec: a process spawned meanwhile (an upgrade's new
        // binary, `ip`) must not hold client connections open after this process closes them.
        let options = UInt32(weir_lev_opt_close_on_free() | weir_lev_opt_close_on_exec())
        listener = evconnlistener_new(loop.base, { _, fd, sa, _, ctx in
            let me = Unmanaged<ListeningSocket>.fromOpaque(ctx!).takeUnretainedValue()
            var port: Int32 = 0
            // On the stack: an array here was one heap allocation per connection.
            let host = withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { text in
                text[0] = 0
                _ = weir_format_address(sa, text.baseAddress, 64, &port)
                return String(cString: text.baseAddress!)
            }
            me.onAccept(fd, PeerAddress(host: host, port: Int(port)))
        }, Unmanaged.passUnretained(self).toOpaque(), options, -1, fd)
        guard let listener else {
            Glibc.close(fd)
            throw IOError("evconnlistener_new \(shown)")
        }
        // Called by libevent right after the failed accept: errno is still that call's.
        evconnlistener_set_error_cb(listener) { _, ctx in
            Unmanaged<ListeningSocket>.fromOpaque(ctx!).takeUnretainedValue().acceptFailed(SystemCall.lastErrno)
        }
        if handOver {
            // The address as bound (a port 0 listener's real port), as the new process will see it.
            let bound = (try? InheritedSocket.address(of: fd)) ?? shown
            Self.handOverTable.withLock { $0[fd] = bound }
            handOverFD = fd
        }
    }

    deinit { close() }

    /// Pauses accepting (connections wait in the kernel backlog).
    public func pause() {
        pausedByOwner = true
        if let listener { evconnlistener_disable(listener) }
    }

    /// Resumes accepting (after a running back-off, if any).
    public func resume() {
        pausedByOwner = false
        if let listener, !backingOff { evconnlistener_enable(listener) }
    }

    /// Closes the listening socket; no new connections arrive on it. (After an upgrade handed it
    /// over, this closes only this process's copy: the socket and its queue live on in the new one.)
    public func close() {
        backoff?.cancel()
        backoff = nil
        guard let l = listener else { return }
        // Out of the hand-over table first, under its lock: a copy is never made of a closed number.
        if handOverFD >= 0 { Self.handOverTable.withLock { _ = $0.removeValue(forKey: handOverFD) } }
        evconnlistener_free(l)
        listener = nil
    }

    // MARK: - Binary upgrade

    /// The listening sockets marked `handOver` that are open, by descriptor, with their addresses
    /// as bound ("127.0.0.1:8080", "[::1]:8443"). Any thread.
    private static let handOverTable = Mutex<[Int32: String]>([:])
    private var handOverFD: Int32 = -1

    /// A copy (close-on-exec) of every open listening socket marked `handOver`, in every worker,
    /// with its address, ordered by address and then by descriptor (a stable order for the new
    /// process to spread them over its workers). The caller owns and closes the copies.
    /// Made under the table's lock, so a worker closing its socket meanwhile cannot hand over a
    /// number that is already reused. Any thread.
    public static func handOverCopies() throws -> [(fd: Int32, address: String)] {
        try handOverTable.withLock { table in
            var copies: [(fd: Int32, address: String)] = []
            for (fd, address) in table.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) {
                let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
                guard copy >= 0 else {
                    let error = IOError.errno("copy listening socket \(address)")
                    for c in copies { Glibc.close(c.fd) }
                    throw error
                }
                copies.append((copy, address))
            }
            return copies
        }
    }

    private func acceptFailed(_ code: Int32) {
        guard let listener else { return }
        acceptFailures += 1
        lastAcceptError = code
        backingOff = true
        evconnlistener_disable(listener)
        if backoff == nil {
            backoff = LoopTimer(loop: loop) { [unowned self] in
                self.backingOff = false
                if !self.pausedByOwner, let listener = self.listener { evconnlistener_enable(listener) }
            }
        }
        backoff?.schedule(milliseconds: Self.backoffMilliseconds)
    }
}
