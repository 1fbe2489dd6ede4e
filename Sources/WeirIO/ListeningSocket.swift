import Glibc
import CLibevent

/// A listening TCP socket with SO_REUSEPORT on one loop: each worker binds its own, and the kernel
/// spreads new connections among them. Use on the loop's thread.
public final class ListeningSocket {
    private var listener: OpaquePointer?
    private let onAccept: (Int32, PeerAddress) -> Void
    /// The port actually bound (useful when asked for port 0).
    public let port: Int

    /// Binds `host`:`port` (numeric IPv4 or IPv6) and starts accepting; `onAccept` receives each new
    /// socket (ownership passes to it) and the client's address.
    /// Throws an `IOError` naming the address when the bind or listen fails.
    public init(loop: EventLoop, host: String, port: Int, backlog: Int32 = 1024,
                onAccept: @escaping (Int32, PeerAddress) -> Void) throws {
        self.onAccept = onAccept
        var storage = sockaddr_storage()
        let len = weir_make_address(host, Int32(port), &storage)
        let shown = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard len > 0 else { throw IOError("listen \(shown): not a numeric address") }
        let fd = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { weir_listen_socket($0, socklen_t(len), backlog) }
        }
        guard fd >= 0 else { throw IOError.errno("listen \(shown)") }
        self.port = Int(weir_local_port(fd))
        listener = evconnlistener_new(loop.base, { _, fd, sa, _, ctx in
            let me = Unmanaged<ListeningSocket>.fromOpaque(ctx!).takeUnretainedValue()
            var text = [CChar](repeating: 0, count: 64)
            var port: Int32 = 0
            _ = weir_format_address(sa, &text, 64, &port)
            let host = text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            me.onAccept(fd, PeerAddress(host: host, port: Int(port)))
        }, Unmanaged.passUnretained(self).toOpaque(), UInt32(weir_lev_opt_close_on_free()), -1, fd)
        guard listener != nil else {
            Glibc.close(fd)
            throw IOError("evconnlistener_new \(shown)")
        }
    }

    deinit { close() }

    /// Pauses accepting (connections wait in the kernel backlog).
    public func pause() { if let listener { evconnlistener_disable(listener) } }

    /// Resumes accepting.
    public func resume() { if let listener { evconnlistener_enable(listener) } }

    /// Closes the listening socket; no new connections arrive on it.
    public func close() {
        if let l = listener { evconnlistener_free(l); listener = nil }
    }
}
