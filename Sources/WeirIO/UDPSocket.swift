import Glibc
import CLibevent

/// A bound, non-blocking UDP socket on one loop (peer beacons). Use on the loop's thread.
///
/// Every datagram that arrives is handed to `onDatagram` with the sender's address; datagrams
/// longer than `maximumDatagram` are truncated by the kernel and reported with `truncated` set,
/// so the caller can count and drop them rather than parse a cut one.
public final class UDPSocket {
    private let fd: Int32
    private var event: OpaquePointer?
    private let onDatagram: ([UInt8], PeerAddress, _ truncated: Bool) -> Void
    private var receiveBuffer: [UInt8]
    /// The port actually bound (useful when asked for port 0).
    public let port: Int
    /// Sends that failed (the kernel refused: no route, buffer full), and the last errno.
    public private(set) var sendFailures = 0
    public private(set) var lastSendError: Int32 = 0

    /// Binds `host`:`port` (numeric IPv4 or IPv6) and starts receiving. Datagrams up to
    /// `maximumDatagram` bytes arrive whole. Throws an `IOError` naming the address when the bind fails.
    public init(loop: EventLoop, host: String, port: Int, maximumDatagram: Int = 2048,
                onDatagram: @escaping ([UInt8], PeerAddress, _ truncated: Bool) -> Void) throws {
        self.onDatagram = onDatagram
        receiveBuffer = [UInt8](repeating: 0, count: maximumDatagram + 1)
        var storage = sockaddr_storage()
        let len = weir_make_address(host, Int32(port), &storage)
        let shown = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        guard len > 0 else { throw IOError("udp \(shown): not a numeric address") }
        let fd = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { weir_udp_socket($0, socklen_t(len)) }
        }
        guard fd >= 0 else { throw IOError.errno("udp bind \(shown)") }
        self.fd = fd
        self.port = Int(weir_local_port(fd))
        event = event_new(loop.base, fd, weir_ev_read() | weir_ev_persist(), { _, _, arg in
            Unmanaged<UDPSocket>.fromOpaque(arg!).takeUnretainedValue().drain()
        }, Unmanaged.passUnretained(self).toOpaque())
        event_add(event, nil)
    }

    deinit { close() }

    /// Stops receiving and closes the socket. Harmless twice.
    public func close() {
        guard let event else { return }
        event_free(event)
        self.event = nil
        Glibc.close(fd)
    }

    /// Sends one datagram to `host`:`port`. Returns false (and counts it) when the kernel refuses
    /// it at once; UDP gives no word of delivery either way.
    @discardableResult
    public func send(_ bytes: [UInt8], host: String, port: Int) -> Bool {
        var storage = sockaddr_storage()
        let len = weir_make_address(host, Int32(port), &storage)
        guard len > 0, event != nil else { sendFailures += 1; return false }
        let result = SystemCall.run {
            withUnsafePointer(to: &storage) { address in
                address.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT), sa, socklen_t(len)) }
                }
            }
        }
        switch result {
        case .done: return true
        case .wouldBlock: sendFailures += 1; lastSendError = EAGAIN; return false
        case .failed(let code): sendFailures += 1; lastSendError = code; return false
        }
    }

    /// Reads every datagram waiting (bounded, so one busy socket cannot starve the loop).
    private func drain() {
        for _ in 0..<64 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let capacity = receiveBuffer.count
            let result = SystemCall.run {
                receiveBuffer.withUnsafeMutableBytes { buffer in
                    withUnsafeMutablePointer(to: &storage) { address in
                        address.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                            recvfrom(fd, buffer.baseAddress, capacity, Int32(MSG_DONTWAIT), sa, &length)
                        }
                    }
                }
            }
            guard case .done(let count) = result else { return }
            var text = [CChar](repeating: 0, count: 64)
            var port: Int32 = 0
            let formatted = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { weir_format_address($0, &text, 64, &port) }
            }
            let host = formatted == 0 ? text.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : ""
            let truncated = count >= capacity
            onDatagram(Array(receiveBuffer[0..<min(count, capacity - 1)]), PeerAddress(host: host, port: Int(port)), truncated)
        }
    }
}
