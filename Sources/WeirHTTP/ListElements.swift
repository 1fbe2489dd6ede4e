/// Iterates the elements of a comma-separated field value (RFC 9110 §5.6.1), each trimmed of OWS.
/// Empty elements are returned as empty ranges; callers decide whether to ignore them.
/// Quoted strings are not special-cased (no field read through this carries commas inside quotes).
@usableFromInline
struct ListElements {
    @usableFromInline let buf: UnsafeRawBufferPointer
    @usableFromInline var position: Int
    @usableFromInline let end: Int
    @usableFromInline var finished: Bool

    /// Precondition: `range` lies within `buf`, which stays valid while iterating.
    @inlinable
    init(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>) {
        self.buf = buf
        self.position = range.lowerBound
        self.end = range.upperBound
        self.finished = false
    }

    /// The next element (trimmed), or nil after the last one.
    @inlinable
    mutating func next() -> Range<Int>? {
        if finished { return nil }
        var i = position
        while i < end && buf[i] != ASCII.comma { i &+= 1 }
        let element = ASCII.trimWS(buf, position..<i)
        if i == end { finished = true } else { position = i &+ 1 }
        return element
    }
}

/// Whether a comma-separated list value contains `token` as a whole element (case-insensitive).
@inlinable
func listContainsToken(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, _ token: StaticString) -> Bool {
    var it = ListElements(buf, range)
    while let e = it.next() {
        if ASCII.equalsLowercased(buf, e, token) { return true }
    }
    return false
}
