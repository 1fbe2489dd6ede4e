import Glibc
import CLibevent

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
    /// is owned (closed by `close`) from now on, also when this throws.
    public init(loop: EventLoop, adopting fd: Int32, onAccept: @escaping (Int32, PeerAddress) -> Void) throws {
        self.onAccept = onAccept
        self.loop = loop
        self.port = Int(weir_local_port(fd))
        let shown = "listening socket \(fd) (port \(port))"
        listener = evconnlistener_new(loop.base, { _, fd, sa, _, ctx in
            let me = Unmanaged<ListeningSocket>.fromOpaque(ctx!).takeUnretainedValue()
            var text = [CChar](repeating: 0, count: 64)
            var port: Int32 = 0
            _ = weir_format_address(sa, &text, 64, &port)
            let host = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            me.onAccept(fd, PeerAddress(host: host, port: Int(port)))
        }, Unmanaged.passUnretained(self).toOpaque(), UInt32(weir_lev_opt_close_on_free()), -1, fd)
        guard let listener else {
            Glibc.close(fd)
            throw IOError("evconnlistener_new \(shown)")
        }
        // Called by libevent right after the failed accept: errno is still that call's.
        evconnlistener_set_error_cb(listener) { _, ctx in
            Unmanaged<ListeningSocket>.fromOpaque(ctx!).takeUnretainedValue().acceptFailed(SystemCall.lastErrno)
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

    /// Closes the listening socket; no new connections arrive on it.
    public func close() {
        backoff?.cancel()
        backoff = nil
        if let l = listener { evconnlistener_free(l); listener = nil }
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
