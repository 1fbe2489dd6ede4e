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
        var lineStart = 0
        var first = true
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
        let n = storage.count
        storage.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        let v = storage.count
        storage.append(contentsOf: value)
        fields.append((n..<v, v..<storage.count))
    }

    /// Fields that will be ranges of a copy of `bytes` (`addCopied`); room for `count` of them.
    init(copying bytes: UnsafeRawBufferPointer, fields count: Int) {
        storage = Array(bytes)
        fields.reserveCapacity(count)
    }

    /// Adds the field whose name and value are at `name` and `value` in the copied bytes (see
    /// `init(copying:fields:)`): left out if hop-by-hop, else its name lower-cased in place.
    mutating func addCopied(name: Range<Int>, value: Range<Int>) {
        let hopByHop = storage.withUnsafeMutableBytes { all -> Bool in
            guard !HopByHop.isHopByHop(UnsafeRawBufferPointer(rebasing: all[name])) else { return true }
            for i in name { all[i] = ASCII.lower(all[i]) }
            return false
        }
        if !hopByHop { fields.append((name, value)) }
    }

    /// Adds a field of an HTTP/1.1 head: left out if hop-by-hop, else its name lower-cased.
    mutating func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard !HopByHop.isHopByHop(name) else { return }
        let n = storage.count
        storage.append(contentsOf: name)
        storage.withUnsafeMutableBufferPointer { all in
            for i in n..<all.count { all[i] = ASCII.lower(all[i]) }
        }
        let v = storage.count
        storage.append(contentsOf: value)
        fields.append((n..<v, v..<storage.count))
    }
}
