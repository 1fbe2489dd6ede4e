/// The header fields of an HTTP/1.1 response head (`SessionResponseHead`) or trailer section as HTTP/2 sends them: names
/// lower-cased (RFC 9113 §8.2.1), connection-specific and hop-by-hop fields left out (§8.2.2:
/// Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, TE, Trailer).
public struct HTTP2ResponseFields: Sendable {
    /// Names and values, back to back; `fields` index into it.
    public private(set) var storage: [UInt8] = []
    /// Per field: the name's and the value's range in `storage`.
    public private(set) var fields: [(name: Range<Int>, value: Range<Int>)] = []

    public init() {}

    /// The fields of a chunked body's end as `BodyReader` steps over it ("0[;ext]\r\n", then
    /// "name: value\r\n" lines, then "\r\n"). Lines that are not fields are skipped.
    public init(lastChunk bytes: UnsafeRawBufferPointer) {
        addLines(bytes, skippingFirst: true)
    }

    /// Adds the fields of `bytes`, complete "name: value" lines each ending in LF or CRLF (as Weir's
    /// own additions are: an HSTS field, a pin's Set-Cookie); lines that are not fields are skipped.
    public mutating func addLines(_ bytes: UnsafeRawBufferPointer, skippingFirst: Bool = false) {
        var lineStart = 0
        var first = skippingFirst
        var i = 0
        while i < bytes.count {
            guard bytes[i] == 10 else { i += 1; continue }
            var end = i
            if end > lineStart && bytes[end - 1] == 13 { end -= 1 }
            if !first, end > lineStart, let colon = (lineStart..<end).first(where: { bytes[$0] == UInt8(ascii: ":") }), colon > lineStart {
                let value = ASCII.trimWS(bytes, colon + 1..<end)
                add(name: UnsafeRawBufferPointer(rebasing: bytes[lineStart..<colon]), value: UnsafeRawBufferPointer(rebasing: bytes[value]))
            }
            first = false
            i += 1
            lineStart = i
        }
    }

    /// Appends a field Weir adds itself (`name` lower case).
    public mutating func append(name: StaticString, value: [UInt8]) {
        value.withUnsafeBytes { append(name: name, value: $0) }
    }

    /// Appends a field Weir adds itself (`name` lower case).
    public mutating func append(name: StaticString, value: UnsafeRawBufferPointer) {
        append(name: name) { $0.append(contentsOf: value) }
    }

    /// Appends a field Weir adds itself (`name` lower case) whose value `writeValue` appends to the
    /// array it is given (in pieces, without building it first).
    public mutating func append(name: StaticString, writeValue: (inout [UInt8]) -> Void) {
        let n = storage.count
        storage.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        let v = storage.count
        writeValue(&storage)
        fields.append((n..<v, v..<storage.count))
    }

    /// Fields that will be ranges of a copy of `bytes` (added by `addCopied` in `add`); room for
    /// `count` of them and `extra` more bytes of fields that are appended.
    public init(copying bytes: UnsafeRawBufferPointer, fields count: Int, extra: Int = 0,
                _ add: (inout HTTP2ResponseFields) -> Void) {
        refill(copying: bytes, fields: count, extra: extra, add)
    }

    /// Replaces the fields with ranges of a copy of `bytes`, as `init(copying:fields:extra:_:)`
    /// does, in the storage these fields already have (a head after another: no allocation).
    /// Once `add` returns, the names of all fields are lower case.
    public mutating func refill(copying bytes: UnsafeRawBufferPointer, fields count: Int, extra: Int = 0,
                                _ add: (inout HTTP2ResponseFields) -> Void) {
        storage.removeAll(keepingCapacity: true)
        storage.reserveCapacity(bytes.count + extra)
        storage.append(contentsOf: bytes)
        fields.removeAll(keepingCapacity: true)
        fields.reserveCapacity(count)
        add(&self)
        // The copied names in one pass (those appended are lower case already: no harm done).
        storage.withUnsafeMutableBytes { all in
            guard let base = all.baseAddress else { return }
            for f in fields {
                ASCII.lowerInPlace(base + f.name.lowerBound, count: f.name.count, readable: all.count &- f.name.lowerBound)
            }
        }
    }

    /// Adds the field whose name and value are at `name` and `value` in the copied bytes. Only in
    /// the body of `refill` or `init(copying:fields:extra:_:)`, which lower-case the name. Precondition:
    /// the field is not hop-by-hop (the caller left those out).
    public mutating func addCopied(name: Range<Int>, value: Range<Int>) {
        fields.append((name, value))
    }

    /// Appends the field `nameAndValue[0..<nameCount]: nameAndValue[nameCount...]` (Weir's own, the
    /// name lower case), in one piece.
    public mutating func append(_ nameAndValue: UnsafeRawBufferPointer, nameCount: Int) {
        let n = storage.count
        storage.append(contentsOf: nameAndValue)
        fields.append((n..<n + nameCount, n + nameCount..<storage.count))
    }

    /// Adds the field named at `name` in the copied bytes with `newValue` instead of its own.
    /// Preconditions: as for `addCopied(name:value:)`.
    public mutating func addCopied(name: Range<Int>, newValue: [UInt8]) {
        let v = storage.count
        storage.append(contentsOf: newValue)
        addCopied(name: name, value: v..<storage.count)
    }

    /// The size of these fields as an HTTP/1.1 head with a status line whose reason phrase has
    /// `reasonCount` bytes (what the access log counts for a response head on either version).
    public func http1HeadSize(reasonCount: Int) -> Int {
        var n = 17 + reasonCount   // "HTTP/1.1 200 " reason CRLF, then the blank line's CRLF
        for f in fields { n += f.name.count + f.value.count + 4 }
        return n
    }

    /// Adds a field of an HTTP/1.1 head: left out if hop-by-hop, else its name lower-cased.
    mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard !HopByHop.isHopByHop(name) else { return }
        let n = storage.count
        storage.append(contentsOf: name)
        storage.withUnsafeMutableBytes { all in ASCII.lowerInPlace(all.baseAddress! + n, count: name.count) }
        let v = storage.count
        storage.append(contentsOf: value)
        fields.append((n..<v, v..<storage.count))
    }
}
