import CLibevent
import Glibc

/// A connectionless AF_UNIX datagram socket that sends to one fixed address: a filesystem path,
/// or an abstract name written "@name" (as systemd writes `$NOTIFY_SOCKET`). Thread-safe: every
/// send is one `sendto` on a socket nobody reads from.
public final class UnixDatagramSender: @unchecked Sendable {
    private let fd: Int32
    private var address = sockaddr_un()
    private let addressLength: socklen_t

    /// Opens the socket for `destination`; nil when it is empty, too long for `sun_path`, or the
    /// socket cannot be created. Nothing is connected or bound: a missing peer shows at send time.
    public init?(destination: String) {
        var path = Array(destination.utf8)
        guard !path.isEmpty else { return nil }
        // Abstract namespace: a leading NUL instead of "@", and the length counts exactly the name.
        let abstract = path[0] == UInt8(ascii: "@")
        if abstract { path[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.count < capacity else { return nil }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        addressLength = socklen_t(pathOffset + path.count + (abstract ? 0 : 1))
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        // Not inherited by the children `weir peer` runs; never blocking the control thread.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(fd, F_SETFL, O_NONBLOCK)
        self.fd = fd
    }

    deinit { close(fd) }

    /// Sends `bytes` as one datagram; false when the kernel refused (no listener, buffer full).
    /// Never blocks (O_NONBLOCK): a reader whose queue is full loses the datagram instead of
    /// stalling the caller (the control thread).
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var destination = address
        return bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, addressLength)
                }
            }
        } == bytes.count
    }
}
