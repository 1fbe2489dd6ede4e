import WeirHTTP

/// The parts of a request target Weir routes and forwards by.
///
/// Every part is a range of one byte array: the request head's bytes, followed by the bytes of a
/// path Weir had to make up (rare: see `init`). A copy of the parts then retains one buffer, not
/// one per part (the session keeps them for a retry and reads them for every attempt).
struct TargetParts {
    private let storage: [UInt8]
    private let pathRange: Range<Int>
    private let routingPathRange: Range<Int>
    private let hostWithPortRange: Range<Int>
    private let hostOnlyRange: Range<Int>

    /// Origin-form target sent to the server: "/path?query" (absolute-form is reduced to it), or "*".
    var path: ArraySlice<UInt8> { storage[pathRange] }
    /// The path the router matches ("/" for "*").
    var routingPath: ArraySlice<UInt8> { storage[routingPathRange] }
    /// Host as the client gave it, with port if any (the absolute-form authority wins over Host); may be empty.
    var hostWithPort: ArraySlice<UInt8> { storage[hostWithPortRange] }
    /// Host without port, for route matching.
    var hostOnly: ArraySlice<UInt8> { storage[hostOnlyRange] }
    /// Whether the host (with port) is empty.
    var hasNoHost: Bool { hostWithPortRange.isEmpty }

    /// Precondition: `head` was accepted by the strict parser (target is origin-, absolute- or asterisk-form).
    init(_ head: RequestHead) {
        self.init(bytes: head.bytes, target: head.target, host: head.host)
    }

    /// The parts of the head `bytes` whose request-target is `bytes[target]` and Host value `bytes[host]`.
    init(bytes: [UInt8], target: Range<Int>, host: Range<Int>?) {
        var target = target
        var host = host ?? 0..<0
        if !target.isEmpty, bytes[target.lowerBound] != UInt8(ascii: "/"), bytes[target.lowerBound] != UInt8(ascii: "*"),
           let schemeEnd = Self.findSchemeEnd(bytes, in: target) {
            // absolute-form: scheme://authority/path?query
            let authorityStart = schemeEnd + 3
            var end = authorityStart
            while end < target.upperBound, bytes[end] != UInt8(ascii: "/"), bytes[end] != UInt8(ascii: "?") { end += 1 }
            host = authorityStart..<end
            target = end..<target.upperBound
        }
        var storage = bytes
        let slash = UInt8(ascii: "/")
        if target.isEmpty {
            storage.append(slash)
            pathRange = bytes.count..<storage.count
        } else if bytes[target.lowerBound] == UInt8(ascii: "?") {
            storage.append(slash)
            storage.append(contentsOf: bytes[target])
            pathRange = bytes.count..<storage.count
        } else {
            pathRange = target
        }
        if storage[pathRange.lowerBound] == UInt8(ascii: "*") {
            storage.append(slash)
            routingPathRange = (storage.count - 1)..<storage.count
        } else {
            routingPathRange = pathRange
        }
        hostWithPortRange = host
        hostOnlyRange = Self.stripPort(bytes, host)
        self.storage = storage
    }

    /// The same host with another path (for decisions made on behalf of a path, e.g. /assign?path=).
    init(replacingPathOf other: TargetParts, with path: [UInt8]) {
        storage = other.storage + path
        pathRange = other.storage.count..<storage.count
        routingPathRange = pathRange
        hostWithPortRange = other.hostWithPortRange
        hostOnlyRange = other.hostOnlyRange
    }

    /// Calls `body` with the host without port and the routing path, as views of the parts' bytes.
    func withRoutingBytes<R>(_ body: (_ hostOnly: UnsafeRawBufferPointer, _ routingPath: UnsafeRawBufferPointer) -> R) -> R {
        storage.withUnsafeBytes { raw in
            body(UnsafeRawBufferPointer(rebasing: raw[hostOnlyRange]), UnsafeRawBufferPointer(rebasing: raw[routingPathRange]))
        }
    }

    /// "example.com:8080" → "example.com"; "[::1]:8080" → "[::1]".
    static func stripPort(_ host: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        host[portlessRange(host)]
    }

    /// The indices of `host` without its port (the indices of an ArraySlice are those of its base).
    private static func portlessRange(_ host: ArraySlice<UInt8>) -> Range<Int> {
        if host.first == UInt8(ascii: "[") {
            if let close = host.firstIndex(of: UInt8(ascii: "]")) { return host.startIndex..<(close + 1) }
            return host.startIndex..<host.endIndex
        }
        if let colon = host.lastIndex(of: UInt8(ascii: ":")) { return host.startIndex..<colon }
        return host.startIndex..<host.endIndex
    }

    /// `stripPort` for the host `bytes[host]`, as a range of `bytes`.
    private static func stripPort(_ bytes: [UInt8], _ host: Range<Int>) -> Range<Int> {
        portlessRange(bytes[host])
    }

    /// Index of the "://" in `bytes[range]`, or nil.
    private static func findSchemeEnd(_ bytes: [UInt8], in range: Range<Int>) -> Int? {
        var i = range.lowerBound
        while i + 3 <= range.upperBound {
            if bytes[i] == UInt8(ascii: ":"), bytes[i + 1] == UInt8(ascii: "/"), bytes[i + 2] == UInt8(ascii: "/") { return i }
            i += 1
        }
        return nil
    }
}
