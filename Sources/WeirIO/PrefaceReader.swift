import Glibc
import CLibevent

/// Reads a short header off an accepted socket before anything else touches it (the PROXY protocol
/// header, which comes in cleartext before a TLS ClientHello): it peeks at what has arrived and takes
/// exactly the header's bytes off the socket, so what follows stays in the socket for the connection
/// (and OpenSSL) to read as if nothing had been there. Use on the loop's thread.
///
/// The read event is edge-triggered: a peek leaves the bytes in the socket, so a level-triggered one
/// would fire again at once while a header is incomplete; this one fires when more bytes arrive.
public final class PrefaceReader {
    /// What `examine` says about the bytes received so far.
    public enum Verdict {
        /// A valid beginning: wait for more (up to `maxBytes` in all).
        case needMore
        /// A complete header of this many bytes: take them off the socket.
        case consume(Int)
        /// Not acceptable (the reason is for the log): the connection is closed.
        case refuse(String)
    }

    /// How the reading ended. With `.ready` the socket is the caller's; otherwise it has been closed.
    public enum Outcome {
        case ready(fd: Int32)
        case refused(String)
        /// Nothing complete arrived within the timeout.
        case timedOut
        /// The peer closed or reset the connection before a complete header.
        case closed
    }

    private var fd: Int32
    private let maxBytes: Int
    private let examine: (UnsafeRawBufferPointer) -> Verdict
    private var finish: ((PrefaceReader, Outcome) -> Void)?
    private var event: OpaquePointer?
    private var timer: LoopTimer?
    private var scratch: [UInt8]

    /// Starts watching `fd` (an accepted non-blocking socket, owned from now on). `examine` sees every
    /// byte received so far each time more arrive; `finish` is called once, on the loop's thread, when
    /// reading ends (within `timeoutMilliseconds`, or after `cancel()` never). Precondition: `maxBytes` > 0.
    public init(loop: EventLoop, fd: Int32, maxBytes: Int, timeoutMilliseconds: Int64,
                examine: @escaping (UnsafeRawBufferPointer) -> Verdict,
                finish: @escaping (PrefaceReader, Outcome) -> Void) {
        self.fd = fd
        self.maxBytes = maxBytes
        self.examine = examine
        self.finish = finish
        scratch = [UInt8](repeating: 0, count: maxBytes)
        let me = Unmanaged.passUnretained(self).toOpaque()
        event = event_new(loop.base, fd, weir_ev_read() | weir_ev_persist() | Int16(EV_ET), { _, _, arg in
            Unmanaged<PrefaceReader>.fromOpaque(arg!).takeUnretainedValue().readable()
        }, me)
        timer = LoopTimer(loop: loop) { [unowned self] in self.end(.timedOut) }
        timer?.schedule(milliseconds: timeoutMilliseconds)
        event_add(event, nil)
        readable()   // the header often comes with the connection: no need to wait for the event
    }

    deinit { stop(); if fd >= 0 { Glibc.close(fd) } }

    /// Whether reading has ended (`finish` was called, possibly from within `init`) or was cancelled.
    public var isDone: Bool { finish == nil }

    /// Stops reading and closes the socket without calling `finish` (a drain). Idempotent.
    public func cancel() {
        finish = nil
        stop()
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    private func readable() {
        guard fd >= 0, finish != nil else { return }
        let peeked = scratch.withUnsafeMutableBytes { buffer in
            SystemCall.run { Glibc.recv(fd, buffer.baseAddress, maxBytes, Int32(MSG_PEEK)) }
        }
        switch peeked {
        case .wouldBlock: return
        case .failed, .done(0): end(.closed)
        case .done(let n):
            let verdict = scratch.withUnsafeBytes { examine(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            switch verdict {
            case .needMore:
                if n >= maxBytes { end(.refused("more than \(maxBytes) bytes without a complete header")) }
            case .refuse(let reason): end(.refused(reason))
            case .consume(let count): take(count)
            }
        }
    }

    /// Takes the header's `count` bytes (already in the socket: the peek saw them) off the socket.
    private func take(_ count: Int) {
        let taken = scratch.withUnsafeMutableBytes { buffer in
            SystemCall.run { Glibc.recv(fd, buffer.baseAddress, count, 0) }
        }
        guard taken == .done(count) else { end(.closed); return }
        end(.ready(fd: fd))
    }

    private func end(_ outcome: Outcome) {
        stop()
        if case .ready = outcome { fd = -1 } else if fd >= 0 { Glibc.close(fd); fd = -1 }
        let finish = self.finish
        self.finish = nil
        // The owner usually lets go of this reader in `finish`: it must outlive the call.
        withExtendedLifetime(self) { finish?(self, outcome) }
    }

    private func stop() {
        timer?.cancel()
        if let event { event_free(event) }
        event = nil
    }
}
