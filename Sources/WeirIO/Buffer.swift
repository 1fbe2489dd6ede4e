import Glibc
import CLibevent

/// A non-owning view of a libevent `evbuffer` (a chain of byte segments). Moving bytes between
/// buffers relinks segments instead of copying them, which is how bodies stream through Weir.
/// Use on the owning loop's thread only, and only while the connection that owns it is open.
public struct Buffer {
    @usableFromInline let raw: OpaquePointer

    @inlinable init(_ raw: OpaquePointer) { self.raw = raw }

    /// Bytes currently held.
    @inlinable public var count: Int { evbuffer_get_length(raw) }

    @inlinable public var isEmpty: Bool { count == 0 }

    /// Calls `body` with the first `min(limit, count)` bytes made contiguous (may copy to linearize).
    @inlinable
    public func withContiguousPrefix<R>(_ limit: Int = Int.max, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let n = Swift.min(limit, count)
        guard n > 0, let p = evbuffer_pullup(raw, n) else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// Calls `body` with the first contiguous segment, without copying (possibly shorter than `count`).
    @inlinable
    public func withFirstSegment<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var vec = iovec()
        let n = evbuffer_peek(raw, -1, nil, &vec, 1)
        guard n > 0, let base = vec.iov_base else { return try body(UnsafeRawBufferPointer(start: nil, count: 0)) }
        return try body(UnsafeRawBufferPointer(start: base, count: vec.iov_len))
    }

    /// Discards the first `n` bytes (precondition: n ≤ count).
    @inlinable public func drain(_ n: Int) { evbuffer_drain(raw, n) }

    /// Discards everything.
    @inlinable public func drainAll() { evbuffer_drain(raw, count) }

    /// Moves up to `n` bytes from the front of this buffer to the end of `destination`; returns how many moved.
    /// Up to `copyLimit` bytes held in the first segment are copied: relinking would hand the
    /// destination this buffer's whole segment (32 KiB for a fresh read holding a small answer),
    /// which then stays allocated until the destination is written, for every connection served
    /// in a loop pass. Larger moves relink segments without copying.
    @inlinable @discardableResult
    public func move(_ n: Int, to destination: Buffer) -> Int {
        let wanted = Swift.min(n, count)
        if wanted > 0 && wanted <= Self.copyLimit {
            var vec = iovec()
            if evbuffer_peek(raw, wanted, nil, &vec, 1) == 1, vec.iov_len >= wanted, let base = vec.iov_base {
                evbuffer_add(destination.raw, base, wanted)
                evbuffer_drain(raw, wanted)
                return wanted
            }
        }
        return Int(evbuffer_remove_buffer(raw, destination.raw, n))
    }

    /// The most bytes `move(_:to:)` copies instead of relinking.
    public static let copyLimit = 4096

    /// Moves everything to the end of `destination`.
    @inlinable public func moveAll(to destination: Buffer) { evbuffer_add_buffer(destination.raw, raw) }

    /// Appends raw bytes.
    @inlinable public func append(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        evbuffer_add(raw, base, bytes.count)
    }

    /// Appends an array of bytes.
    @inlinable public func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    /// Appends a slice of an array of bytes.
    @inlinable public func append(_ bytes: ArraySlice<UInt8>) { bytes.withUnsafeBytes { append($0) } }

    /// Appends a string's UTF-8 bytes.
    @inlinable public func append(_ text: String) {
        var text = text
        text.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends a compile-time string.
    @inlinable public func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends the decimal digits of `value`.
    @inlinable public func appendDecimal(_ value: Int) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { raw in
            var v = value.magnitude
            var i = raw.count
            repeat { i -= 1; raw[i] = UInt8(48 + v % 10); v /= 10 } while v > 0
            if value < 0 { i -= 1; raw[i] = UInt8(ascii: "-") }
            append(UnsafeRawBufferPointer(rebasing: raw[i...]))
        }
    }

    /// Copies up to `destination.count` bytes from the front into `destination` and removes them;
    /// returns how many.
    @inlinable public func take(into destination: UnsafeMutableRawBufferPointer) -> Int {
        guard let base = destination.baseAddress, destination.count > 0 else { return 0 }
        return max(0, Int(evbuffer_remove(raw, base, destination.count)))
    }

    /// Copies the first `min(n, count)` bytes out without removing them.
    public func copyPrefix(_ n: Int) -> [UInt8] {
        withContiguousPrefix(n) { Array($0) }
    }
}

/// A buffer owned by Swift (not attached to a connection), for building messages ahead of time.
/// Noncopyable: it frees its evbuffer when it goes, and costs no object of its own (it lives inline
/// in its owner, e.g. an HTTP/2 stream's pending response bytes).
public struct OwnedBuffer: ~Copyable {
    public let buffer: Buffer
    public init() { buffer = Buffer(evbuffer_new()!) }
    deinit { evbuffer_free(buffer.raw) }
}
