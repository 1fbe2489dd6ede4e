/// A growable run of bytes for builders that append many small pieces (an HTTP/2 request's fields
/// as HTTP/1.1 lines): an append is one capacity check and one copy, where an `Array`'s costs a
/// uniqueness check and a generic call besides. Noncopyable: it owns its memory and frees it when
/// it goes. Use on one thread.
public struct ByteBuilder: ~Copyable {
    private var base: UnsafeMutableRawPointer
    private var capacity: Int
    /// How many bytes were appended since the last `removeAll`.
    public private(set) var count = 0

    /// Precondition: `capacity` > 0 (it grows as needed).
    public init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    /// The bytes appended so far, valid until the next append or `removeAll`.
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    public var isEmpty: Bool { count == 0 }

    /// Forgets the bytes, keeping the memory.
    public mutating func removeAll() { count = 0 }

    /// Room for `extra` more bytes; returns where they go. The caller writes them and adds `extra` to `count` (`advance`).
    @inline(__always)
    private mutating func reserve(_ extra: Int) -> UnsafeMutableRawPointer {
        if count + extra > capacity { grow(to: count + extra) }
        return base + count
    }

    private mutating func grow(to needed: Int) {
        var bigger = capacity * 2
        while bigger < needed { bigger *= 2 }
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: bigger, alignment: 8)
        fresh.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = fresh
        capacity = bigger
    }

    public mutating func append(_ piece: UnsafeRawBufferPointer) {
        guard let source = piece.baseAddress, piece.count > 0 else { return }
        reserve(piece.count).copyMemory(from: source, byteCount: piece.count)
        count += piece.count
    }

    public mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Appends the bytes of `other`.
    public mutating func append(_ other: borrowing ByteBuilder) { append(other.bytes) }

    /// Appends `first`, `separator` and `second` with one capacity check (a field line's
    /// `name: value` or a crumb joined to a cookie).
    public mutating func append(_ first: UnsafeRawBufferPointer, _ separator: StaticString, _ second: UnsafeRawBufferPointer,
                                then end: StaticString) {
        let s = separator.utf8CodeUnitCount, e = end.utf8CodeUnitCount
        let total = first.count + s + second.count + e
        var p = reserve(total)
        if let f = first.baseAddress, first.count > 0 { p.copyMemory(from: f, byteCount: first.count) }
        p += first.count
        p.copyMemory(from: separator.utf8Start, byteCount: s)
        p += s
        if let v = second.baseAddress, second.count > 0 { p.copyMemory(from: v, byteCount: second.count) }
        p += second.count
        p.copyMemory(from: end.utf8Start, byteCount: e)
        count += total
    }

    /// Appends `prefix`, `value` and `end` with one capacity check ("Host: " value CRLF).
    public mutating func append(_ prefix: StaticString, _ value: UnsafeRawBufferPointer, then end: StaticString) {
        append(UnsafeRawBufferPointer(start: prefix.utf8Start, count: prefix.utf8CodeUnitCount), "", value, then: end)
    }
}
