import WeirHTTP

/// The parts of a request target Weir routes and forwards by.
struct TargetParts {
    /// Origin-form target sent to the server: "/path?query" (absolute-form is reduced to it), or "*".
    let path: ArraySlice<UInt8>
    /// The path the router matches ("/" for "*").
    let routingPath: ArraySlice<UInt8>
    /// Host as the client gave it, with port if any (the absolute-form authority wins over Host); may be empty.
    let hostWithPort: ArraySlice<UInt8>
    /// Host without port, for route matching.
    let hostOnly: ArraySlice<UInt8>

    /// Precondition: `head` was accepted by the strict parser (target is origin-, absolute- or asterisk-form).
    init(_ head: RequestHead) {
        let bytes = head.bytes
        var target = bytes[head.target]
        var host: ArraySlice<UInt8> = head.host.map { bytes[$0] } ?? []
        if let first = target.first, first != UInt8(ascii: "/"), first != UInt8(ascii: "*"),
           let schemeEnd = Self.find(Array("://".utf8), in: target) {
            // absolute-form: scheme://authority/path?query
            let authorityStart = schemeEnd + 3
            var end = authorityStart
            while end < target.endIndex, target[end] != UInt8(ascii: "/"), target[end] != UInt8(ascii: "?") { end += 1 }
            host = target[authorityStart..<end]
            target = end < target.endIndex ? target[end...] : []
        }
        if target.isEmpty {
            path = ArraySlice("/".utf8)
        } else if target.first == UInt8(ascii: "?") {
            path = ArraySlice("/".utf8) + target
        } else {
            path = target
        }
        routingPath = path.first == UInt8(ascii: "*") ? ArraySlice("/".utf8) : path
        hostWithPort = host
        hostOnly = Self.stripPort(host)
    }

    /// The same host with another path (for decisions made on behalf of a path, e.g. /assign?path=).
    init(replacingPathOf other: TargetParts, with path: [UInt8]) {
        self.path = ArraySlice(path)
        routingPath = ArraySlice(path)
        hostWithPort = other.hostWithPort
        hostOnly = other.hostOnly
    }

    /// "example.com:8080" → "example.com"; "[::1]:8080" → "[::1]".
    static func stripPort(_ host: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        if host.first == UInt8(ascii: "[") {
            if let close = host.firstIndex(of: UInt8(ascii: "]")) { return host[...close] }
            return host
        }
        if let colon = host.lastIndex(of: UInt8(ascii: ":")) { return host[..<colon] }
        return host
    }

    private static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        var i = haystack.startIndex
        while i + needle.count <= haystack.endIndex {
            if haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
