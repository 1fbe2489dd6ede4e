import WeirHTTP

/// Builds the heads Weir sends on: the request head for the server and the response head for the
/// client. Removes hop-by-hop fields (and those the Connection field names), adds the forwarding
/// fields, and points `Location` back at the gateway. Appends to a byte array (one copy into the
/// socket buffer afterwards; the request head is kept for a retry).
enum HeadRewriter {
    /// What the client-facing side of an exchange looks like.
    struct ClientView {
        /// Client IP as text (UTF-8 bytes, appended to X-Forwarded-For as they are).
        var clientAddress: [UInt8]
        /// "http" or "https".
        var scheme: StaticString
        /// Host (with port if the client sent one) to put in X-Forwarded-Host and rewritten Locations.
        var host: ArraySlice<UInt8>

        init(clientAddress: String, scheme: StaticString, host: ArraySlice<UInt8>) {
            self.clientAddress = Array(clientAddress.utf8)
            self.scheme = scheme
            self.host = host
        }
    }

    /// Appends the request head for the server: `method SP path SP HTTP/1.1`, the end-to-end fields,
    /// X-Forwarded-For/-Proto/-Host and Via. Preconditions: `head` was accepted by the strict parser;
    /// `path` is the origin-form target. When the client sent no Host, `fallbackHost` is used
    /// (evaluated only then: HTTP/1.1 requests always carry a Host).
    ///
    /// Framing and upgrade fields are rebuilt, never copied as received, so that the server cannot
    /// read them differently from Weir (issue 8):
    /// - Content-Length: one line with the agreed value, however many identical values were sent
    ///   (RFC 9110 §8.6);
    /// - Transfer-Encoding: one line listing the codings of every Transfer-Encoding field, without
    ///   empty list elements (RFC 9110 §5.6.1: recipients ignore them, so they are dropped here);
    /// - Host: for an absolute-form target, built from its authority, and the client's Host fields
    ///   are dropped (RFC 9112 §3.2.2); it comes first;
    /// - Upgrade: only when `head.isUpgrade`, listing the offered protocols other than h2c, with
    ///   `Connection: upgrade`; an h2c-only upgrade is forwarded as a plain request, and
    ///   HTTP2-Settings is never forwarded.
    ///
    /// A `Weir-Hop` field (a peer's hop marker) is never passed on: a peer adds its own in
    /// `extraFields` (complete field lines with CRLF) when it forwards to another peer.
    ///
    /// `forwarded` (the pool's `forwarded = true`) also adds an RFC 7239 `Forwarded` field (see
    /// `appendForwarded`); the received Forwarded fields are then folded into it instead of copied.
    static func upstreamRequest(_ head: RequestHead, path: ArraySlice<UInt8>, client: ClientView,
                                fallbackHost: @autoclosure () -> String, extraFields: [UInt8] = [],
                                forwarded: Bool = false, into out: inout [UInt8]) {
        let bytes = head.bytes
        HeadWriter.appending(to: &out) { out in bytes.withUnsafeBufferPointer { bytes in
            let buf = UnsafeRawBufferPointer(bytes)
            let method = head.method
            if method.upperBound < bytes.count && bytes[method.upperBound] == UInt8(ascii: " ") {
                append(bytes, method.lowerBound..<(method.upperBound &+ 1), to: &out)   // "GET " in one piece
            } else {
                append(bytes, method, to: &out)
                out.append(UInt8(ascii: " "))
            }
            out.append(contentsOf: path)
            append(" HTTP/1.1\r\n", to: &out)
            var sawHost = false
            if let authority = head.absoluteFormAuthority {
                append("Host: ", to: &out)
                append(bytes, authority, to: &out)
                append("\r\n", to: &out)
                sawHost = true
            }
            let named = head.connectionNamesFields ? connectionTokens(head, buf) : []   // the parser knows
            var priorForwardedFor: Range<Int>? = nil
            var priorVia: Range<Int>? = nil
            var wroteLength = false
            var wroteCodings = false
            for field in head.fields {
                switch FieldName(buf, field.name) {
                case .xForwardedFor:
                    if priorForwardedFor == nil { priorForwardedFor = field.value }
                    continue
                case .via:
                    priorVia = field.value
                    continue
                case .forwarded where forwarded:
                    continue   // folded into ours below
                case .xForwardedProto, .xForwardedHost, .weirHop:
                    continue
                case .contentLength:
                    if !wroteLength { wroteLength = true; appendContentLength(head, framing: head.framing, field: field, into: &out) }
                    continue
                case .transferEncoding:
                    // The chunked body passes through verbatim, so its codings go on (as one clean list).
                    if !wroteCodings { wroteCodings = true; appendTransferEncoding(head, into: &out) }
                    continue
                case .te:
                    if head.listContains(field.value, token: "trailers") { append("TE: trailers\r\n", to: &out) }
                    continue
                case .upgrade, .hopByHop:
                    continue
                case .host:
                    if isNamed(buf, field, by: named) || head.absoluteFormAuthority != nil { continue }
                    sawHost = true
                default:
                    if isNamed(buf, field, by: named) { continue }
                }
                copy(bytes, field, into: &out)
            }
            if !sawHost {
                append("Host: ", to: &out)
                out.append(contentsOf: fallbackHost().utf8)
                append("\r\n", to: &out)
            }
            append("X-Forwarded-For: ", to: &out)
            if let prior = priorForwardedFor, !prior.isEmpty {
                append(bytes, prior, to: &out)
                append(", ", to: &out)
            }
            out.append(contentsOf: client.clientAddress)
            append("\r\nX-Forwarded-Proto: ", to: &out)
            append(client.scheme, to: &out)
            if !client.host.isEmpty {
                append("\r\nX-Forwarded-Host: ", to: &out)
                out.append(contentsOf: client.host)
            }
            if forwarded { appendForwarded(head, client: client, into: &out) }
            append("\r\nVia: ", to: &out)
            if let prior = priorVia, !prior.isEmpty {
                append(bytes, prior, to: &out)
                append(", ", to: &out)
            }
            append("1.1 weir\r\n", to: &out)
            out.append(contentsOf: extraFields)
            if head.isUpgrade {
                append("Connection: upgrade\r\nUpgrade: ", to: &out)
                var first = true
                for f in head.fields where FieldName(buf, f.name) == .upgrade {
                    head.forEachListElement(f.value) { protocolName in
                        if isH2C(buf, protocolName) { return }
                        if !first { append(", ", to: &out) }
                        first = false
                        append(bytes, protocolName, to: &out)
                    }
                }
                append("\r\n", to: &out)
            }
            append("\r\n", to: &out)
        } }
    }

    /// Appends `CRLF Forwarded: <received elements>, for=<client>;proto=<scheme>;host=<host>` (RFC 7239):
    /// the elements of every received Forwarded field come first, as the received X-Forwarded-For does; an
    /// IPv6 client is quoted and bracketed (`for="[2001:db8::1]"`, §6), a host that is not a token (one with a
    /// port) is quoted; no `host` when the request has none. The client's port is left out, as in
    /// X-Forwarded-For. Precondition: the fields were accepted by the strict parser (no quote or backslash in
    /// a Host value).
    static func appendForwarded(_ head: RequestHead, client: ClientView, into out: inout HeadWriter) {
        let bytes = head.bytes
        append("\r\nForwarded: ", to: &out)
        for i in head.fields.indices where head.fieldName(i, is: "forwarded") && !head.fields[i].value.isEmpty {
            append(bytes, head.fields[i].value, to: &out)
            append(", ", to: &out)
        }
        append("for=", to: &out)
        if client.clientAddress.contains(UInt8(ascii: ":")) {
            append("\"[", to: &out)
            out.append(contentsOf: client.clientAddress)
            append("]\"", to: &out)
        } else {
            out.append(contentsOf: client.clientAddress)
        }
        append(";proto=", to: &out)
        append(client.scheme, to: &out)
        guard !client.host.isEmpty else { return }
        append(";host=", to: &out)
        let token = client.host.allSatisfy(isTokenByte)
        if !token { out.append(UInt8(ascii: "\"")) }
        out.append(contentsOf: client.host)
        if !token { out.append(UInt8(ascii: "\"")) }
    }

    /// A token character (RFC 9110 §5.6.2): a Forwarded value of only these needs no quotes.
    private static func isTokenByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        default: return "!#$%&'*+-.^_`|~".utf8.contains(b)
        }
    }

    /// How the response body is sent on to the client.
    enum ClientFraming {
        /// As the server framed it (Content-Length, chunked passed through, or none).
        case asReceived
        /// The server's chunked body is de-chunked and the connection closed at its end (HTTP/1.0 client).
        case dechunked
        /// The body is rewritten (its length changes) and sent chunked.
        case rechunked
        /// The body is rewritten and delimited by closing the connection (HTTP/1.0 client).
        case closeDelimited
    }

    /// Appends the response head for the client. `connection` is the Connection field to send
    /// ("close", "keep-alive", "upgrade" or nil for none); `serverPrefixes` are the URL prefixes
    /// (scheme://address, public URLs) under which the servers of the pool know themselves, rewritten
    /// to the client's view in Location, Content-Location, Refresh and Link. `extraFields` (the listener's HSTS field) and `setCookie` (a
    /// pin's Set-Cookie field) are complete field lines with CRLF, appended as they are.
    static func clientResponse(_ head: ResponseHead, framing: ClientFraming, connection: StaticString?,
                               client: ClientView, serverPrefixes: [[UInt8]], extraFields: [UInt8] = [],
                               setCookie: [UInt8] = [], into out: inout [UInt8]) {
        let bytes = head.bytes
        HeadWriter.appending(to: &out) { out in bytes.withUnsafeBufferPointer { bytes in
            let buf = UnsafeRawBufferPointer(bytes)
            // Status line: our version, the server's status code and reason phrase.
            append("HTTP/1.1", to: &out)
            // The parser's reason phrase ends at the line's CR (no CR may come before it).
            var lineEnd = head.reason.upperBound
            if lineEnd >= bytes.count || bytes[lineEnd] != UInt8(ascii: "\r") {
                lineEnd = 0
                while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\r") { lineEnd &+= 1 }
            }
            if lineEnd > 8 && lineEnd &+ 1 < bytes.count && bytes[lineEnd &+ 1] == UInt8(ascii: "\n") {
                append(bytes, 8..<(lineEnd &+ 2), to: &out)   // SP status SP reason CRLF, in one piece
            } else {
                if lineEnd > 8 { append(bytes, 8..<lineEnd, to: &out) }
                append("\r\n", to: &out)
            }
            let named = head.connectionNamesFields ? connectionTokens(head, buf) : []   // the parser knows
            var priorVia: Range<Int>? = nil
            var wroteLength = false
            var wroteCodings = false
            for field in head.fields {
                switch responseFieldFate(head, buf, field, named: named, serverPrefixes: serverPrefixes, client: client) {
                case .copy:
                    copy(bytes, field, into: &out)
                case .drop:
                    continue
                case .transferEncoding:
                    if framing == .asReceived && !wroteCodings { wroteCodings = true; appendTransferEncoding(head, into: &out) }
                case .contentLength:
                    // As for requests: one line, whatever identical repeats the server sent.
                    if framing == .rechunked || framing == .closeDelimited || wroteLength { continue }
                    wroteLength = true
                    appendContentLength(head, framing: head.framing, field: field, into: &out)
                case .via:
                    priorVia = field.value
                case .rewritten(let value):
                    append(bytes, field.name, to: &out)
                    append(": ", to: &out)
                    out.append(contentsOf: value)
                    append("\r\n", to: &out)
                }
            }
            append("Via: ", to: &out)
            if let prior = priorVia, !prior.isEmpty {
                append(bytes, prior, to: &out)
                append(", ", to: &out)
            }
            append("1.1 weir\r\n", to: &out)
            if framing == .rechunked { append("Transfer-Encoding: chunked\r\n", to: &out) }
            out.append(contentsOf: extraFields)
            out.append(contentsOf: setCookie)
            if let connection {
                append("Connection: ", to: &out)
                append(connection, to: &out)
                append("\r\n", to: &out)
            }
            append("\r\n", to: &out)
        } }
    }

    /// What becomes of one field of a server's response head on its way to the client, whichever
    /// version the client speaks (`clientResponse`, `clientResponseFields`).
    enum ResponseFieldFate {
        /// Passed on as it is.
        case copy
        /// Hop-by-hop (also: named by the Connection field, an Upgrade of a response that is none, TE).
        case drop
        /// Framing: rebuilt by the writer from the parsed framing.
        case contentLength, transferEncoding
        /// Folded into Weir's own Via field.
        case via
        /// A URL naming a server, with this value in the client's view.
        case rewritten([UInt8])
    }

    /// The fate of `field` of `head` (`buf`: the head's bytes); `named`: the field names its
    /// Connection fields list (`connectionTokens`).
    @inline(__always)
    static func responseFieldFate(_ head: ResponseHead, _ buf: UnsafeRawBufferPointer, _ field: HeaderField,
                                  named: [Range<Int>], serverPrefixes: [[UInt8]], client: ClientView) -> ResponseFieldFate {
        let name = FieldName(buf, field.name)
        switch name {
        case .transferEncoding: return .transferEncoding
        case .contentLength: return .contentLength
        case .via: return .via
        case .upgrade: return head.isUpgrade ? .copy : .drop
        case .te, .hopByHop: return .drop
        default: if isNamed(buf, field, by: named) { return .drop }
        }
        if !serverPrefixes.isEmpty, name.mayNameAServer,
           let rewritten = rewrittenValue(head, name, field, prefixes: serverPrefixes, client: client) {
            return .rewritten(rewritten)
        }
        return .copy
    }

    /// The rewritten value of `field` (named `name`) when it is Location, Content-Location, Refresh
    /// or Link and names a server; nil otherwise (the field is copied as it is, without allocating).
    private static func rewrittenValue(_ head: ResponseHead, _ name: FieldName, _ field: HeaderField, prefixes: [[UInt8]],
                                       client: ClientView) -> [UInt8]? {
        switch name {
        case .location, .contentLocation: return rewriteURL(head.bytes[field.value], prefixes: prefixes, client: client)
        case .refresh: return rewriteRefresh(head.bytes[field.value], prefixes: prefixes, client: client)
        case .link: return rewriteLink(head.bytes[field.value], prefixes: prefixes, client: client)
        default: return nil
        }
    }

    /// `Refresh: 5; url=http://server/next` (also `URL = '...'`, or the URL right after the ";"):
    /// the URL rewritten as in `rewriteURL`; nil when there is none or it names no server.
    static func rewriteRefresh(_ value: ArraySlice<UInt8>, prefixes: [[UInt8]], client: ClientView) -> [UInt8]? {
        guard var i = value.firstIndex(where: { $0 == UInt8(ascii: ";") || $0 == UInt8(ascii: ",") }) else { return nil }
        func skipSpaces() { while i < value.endIndex, value[i] == 32 || value[i] == 9 { i += 1 } }
        i += 1
        skipSpaces()
        if value.endIndex - i >= 3, equalsIgnoringCase(value[i..<(i + 3)], "url".utf8) {
            var j = i + 3
            while j < value.endIndex, value[j] == 32 || value[j] == 9 { j += 1 }
            if j < value.endIndex, value[j] == UInt8(ascii: "=") { i = j + 1; skipSpaces() }
        }
        var end = value.endIndex
        if i < value.endIndex, value[i] == UInt8(ascii: "'") || value[i] == UInt8(ascii: "\"") {
            let quote = value[i]
            i += 1
            end = value[i...].firstIndex(of: quote) ?? value.endIndex
        }
        guard let url = rewriteURL(value[i..<end], prefixes: prefixes, client: client) else { return nil }
        return Array(value[..<i]) + url + Array(value[end...])
    }

    /// `Link: <http://server/a>; rel=next, <...>; rel=prev`: each `<URI>` rewritten as in `rewriteURL`;
    /// nil when none names a server.
    static func rewriteLink(_ value: ArraySlice<UInt8>, prefixes: [[UInt8]], client: ClientView) -> [UInt8]? {
        var out: [UInt8] = []
        var copied = value.startIndex
        var i = value.startIndex
        var changed = false
        while let open = value[i...].firstIndex(of: UInt8(ascii: "<")),
              let close = value[(open + 1)...].firstIndex(of: UInt8(ascii: ">")) {
            if let url = rewriteURL(value[(open + 1)..<close], prefixes: prefixes, client: client) {
                out.append(contentsOf: value[copied...open])
                out.append(contentsOf: url)
                copied = close
                changed = true
            }
            i = close + 1
        }
        guard changed else { return nil }
        out.append(contentsOf: value[copied...])
        return out
    }

    /// Replaces a leading server prefix (e.g. "http://127.0.0.1:9001") of `url` with the client's
    /// scheme and host, when the prefix is followed by "/", "?", "#" or the end. nil when nothing matches.
    static func rewriteURL(_ url: ArraySlice<UInt8>, prefixes: [[UInt8]], client: ClientView) -> [UInt8]? {
        guard !client.host.isEmpty else { return nil }
        for prefix in prefixes where url.count >= prefix.count {
            let candidate = url.prefix(prefix.count)
            guard equalsIgnoringCase(candidate, prefix) else { continue }
            let rest = url.dropFirst(prefix.count)
            if let next = rest.first, next != UInt8(ascii: "/"), next != UInt8(ascii: "?"), next != UInt8(ascii: "#") { continue }
            var out: [UInt8] = []
            append(client.scheme, to: &out)
            append("://", to: &out)
            out.append(contentsOf: client.host)
            out.append(contentsOf: rest)
            return out
        }
        return nil
    }

    // MARK: - Helpers

    /// Appends one `Content-Length` line: the framing length when the head is framed by it, else
    /// (a response to HEAD, a 304) the first element of `field`. The parser has checked that every
    /// Content-Length element of the head is the same number.
    private static func appendContentLength(_ head: some HTTPHead, framing: BodyFraming, field: HeaderField,
                                            into out: inout HeadWriter) {
        append("Content-Length: ", to: &out)
        if case .contentLength(let n) = framing {
            appendDecimal(n, to: &out)
        } else {
            var first: Range<Int>? = nil
            head.forEachListElement(field.value) { if first == nil { first = $0 } }
            if let first { out.append(contentsOf: head.bytes[first]) }
        }
        append("\r\n", to: &out)
    }

    /// Appends one `Transfer-Encoding` line with the non-empty codings of every Transfer-Encoding
    /// field of `head`, in order, separated by ", ". Precondition: the head has such a field with a
    /// coding (the parsers reject a Transfer-Encoding made of empty elements).
    private static func appendTransferEncoding(_ head: some HTTPHead, into out: inout HeadWriter) {
        let bytes = head.bytes
        append("Transfer-Encoding: ", to: &out)
        var first = true
        for i in head.fields.indices where head.fieldName(i, is: "transfer-encoding") {
            head.forEachListElement(head.fields[i].value) { coding in
                if !first { append(", ", to: &out) }
                first = false
                append(bytes, coding, to: &out)
            }
        }
        append("\r\n", to: &out)
    }

    /// Appends the decimal digits of `n` (n ≥ 0) without going through a String.
    private static func appendDecimal(_ n: Int, to out: inout HeadWriter) {
        var divisor = 1
        while divisor <= n / 10 { divisor *= 10 }
        var rest = n
        while divisor > 0 {
            out.append(UInt8(ascii: "0") &+ UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }

    private static func isH2C(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>) -> Bool {
        range.count == 3 && FieldName.equals(buf, range, "h2c")
    }

    /// Appends `name: value` CRLF. A line received in exactly that shape (one space after the
    /// colon, no trailing whitespace) is copied in one piece, CRLF included.
    @inline(__always)
    private static func copy(_ bytes: UnsafeBufferPointer<UInt8>, _ field: HeaderField, into out: inout HeadWriter) {
        let name = field.name, value = field.value
        if value.lowerBound == name.upperBound &+ 2, !value.isEmpty, bytes[name.upperBound &+ 1] == UInt8(ascii: " "),
           value.upperBound &+ 1 < bytes.count, bytes[value.upperBound] == UInt8(ascii: "\r") {
            append(bytes, name.lowerBound..<(value.upperBound &+ 2), to: &out)
            return
        }
        append(bytes, name, to: &out)
        append(": ", to: &out)
        append(bytes, value, to: &out)
        append("\r\n", to: &out)
    }

    /// Appends `bytes[range]` (through a buffer pointer: an ArraySlice would retain and release
    /// the head's storage for every field).
    @inline(__always)
    private static func append(_ bytes: [UInt8], _ range: Range<Int>, to out: inout HeadWriter) {
        bytes.withUnsafeBufferPointer { append($0, range, to: &out) }
    }

    @inline(__always)
    private static func append(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, to out: inout HeadWriter) {
        guard let base = bytes.baseAddress else { return }   // empty: so is the range
        out.append(base + range.lowerBound, count: range.count)
    }

    private static func append(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    @inline(__always)
    private static func append(_ text: StaticString, to out: inout HeadWriter) {
        out.append(text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// The field names listed in Connection fields, other than close/keep-alive/upgrade, as ranges
    /// of the head's bytes (`buf`). Empty (no allocation) when there are none, the usual case.
    static func connectionTokens(_ head: some HTTPHead, _ buf: UnsafeRawBufferPointer) -> [Range<Int>] {
        var tokens: [Range<Int>] = []
        for field in head.fields where field.name.count == 10 && FieldName.equals(buf, field.name, "connection") {
            head.forEachListElement(field.value) { token in
                switch token.count {
                case 5 where FieldName.equals(buf, token, "close"): return
                case 7 where FieldName.equals(buf, token, "upgrade"): return
                case 10 where FieldName.equals(buf, token, "keep-alive"): return
                default: tokens.append(token)
                }
            }
        }
        return tokens
    }

    /// Whether `field`'s name is one of `tokens` (ranges of the same bytes), case-insensitively.
    private static func isNamed(_ buf: UnsafeRawBufferPointer, _ field: HeaderField, by tokens: [Range<Int>]) -> Bool {
        guard !tokens.isEmpty else { return false }
        let name = field.name
        return tokens.contains { token in
            guard token.count == name.count else { return false }
            var i = name.lowerBound, j = token.lowerBound
            while i < name.upperBound {
                if lower(buf[i]) != lower(buf[j]) { return false }
                i &+= 1
                j &+= 1
            }
            return true
        }
    }

    @inline(__always)
    private static func lower(_ b: UInt8) -> UInt8 { (b &- 0x41) < 26 ? b | 0x20 : b }

    static func equalsIgnoringCase<B: Collection>(_ a: ArraySlice<UInt8>, _ b: B) -> Bool where B.Element == UInt8 {
        guard a.count == b.count else { return false }
        var i = a.startIndex
        for y in b {
            var x = a[i]
            var z = y
            if x >= 65 && x <= 90 { x |= 0x20 }
            if z >= 65 && z <= 90 { z |= 0x20 }
            if x != z { return false }
            i += 1
        }
        return true
    }
}

extension HeadRewriter {
    /// The field names the head rewriter treats specially, told apart by one switch on the name's
    /// length and at most two comparisons (instead of a comparison per name for every field).
    enum FieldName: Equatable {
        case other
        /// Hop-by-hop and never forwarded as received (RFC 9110 §7.6.1; see `HopByHop`), other than the
        /// ones named below: Connection, Keep-Alive, Proxy-Connection, Trailer, HTTP2-Settings.
        case hopByHop
        case te, transferEncoding, upgrade, contentLength, host, via, forwarded
        case xForwardedFor, xForwardedProto, xForwardedHost, weirHop
        case location, contentLocation, refresh, link

        /// Classifies the name `buf[name]` (case-insensitive).
        @inline(__always)
        init(_ buf: UnsafeRawBufferPointer, _ name: Range<Int>) {
            switch name.count {
            case 2: self = Self.equals(buf, name, "te") ? .te : .other
            case 3: self = Self.equals(buf, name, "via") ? .via : .other
            case 4: self = Self.equals(buf, name, "host") ? .host : Self.equals(buf, name, "link") ? .link : .other
            case 7:
                self = Self.equals(buf, name, "upgrade") ? .upgrade : Self.equals(buf, name, "refresh") ? .refresh
                    : Self.equals(buf, name, "trailer") ? .hopByHop : .other
            case 8: self = Self.equals(buf, name, "location") ? .location : Self.equals(buf, name, "weir-hop") ? .weirHop : .other
            case 9: self = Self.equals(buf, name, "forwarded") ? .forwarded : .other
            case 10: self = Self.equals(buf, name, "connection") || Self.equals(buf, name, "keep-alive") ? .hopByHop : .other
            case 14:
                self = Self.equals(buf, name, "content-length") ? .contentLength
                    : Self.equals(buf, name, "http2-settings") ? .hopByHop : .other
            case 15: self = Self.equals(buf, name, "x-forwarded-for") ? .xForwardedFor : .other
            case 16:
                self = Self.equals(buf, name, "x-forwarded-host") ? .xForwardedHost
                    : Self.equals(buf, name, "content-location") ? .contentLocation
                    : Self.equals(buf, name, "proxy-connection") ? .hopByHop : .other
            case 17:
                self = Self.equals(buf, name, "transfer-encoding") ? .transferEncoding
                    : Self.equals(buf, name, "x-forwarded-proto") ? .xForwardedProto : .other
            default: self = .other
            }
        }

        /// The response fields whose URLs may name a server (rewritten to the client's view).
        var mayNameAServer: Bool {
            switch self {
            case .location, .contentLocation, .refresh, .link: return true
            default: return false
            }
        }

        /// true when `buf[range]` equals `lowercased` ASCII-case-insensitively (`lowercased` starts with a letter).
        @inline(__always)
        static func equals(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercased: StaticString) -> Bool {
            // The first byte here, before a call: most names differ in it. (The literals begin with
            // a letter, so `| 0x20` differing means the lowercase differs.)
            guard !range.isEmpty, buf[range.lowerBound] | 0x20 == lowercased.withUTF8Buffer({ $0.first ?? 0 }) else { return false }
            return HeadBytes.equalsLowercased(buf, range, lowercased)
        }
    }
}

/// Collects the pieces of a head in a buffer on the stack and appends them to the output array in
/// one piece: an Array append costs some 130 instructions however short the piece (a uniqueness
/// check, a capacity check, a call to memcpy), and a head is some 25 pieces. A head larger than the
/// buffer goes out in several appends.
struct HeadWriter {
    /// At most this on the stack: beyond 1 KiB, withUnsafeTemporaryAllocation asks the runtime
    /// whether the stack has room.
    static let capacity = 1024
    private let buffer: UnsafeMutablePointer<UInt8>
    private var count = 0
    private let out: UnsafeMutablePointer<[UInt8]>

    private init(buffer: UnsafeMutablePointer<UInt8>, out: UnsafeMutablePointer<[UInt8]>) {
        self.buffer = buffer
        self.out = out
    }

    /// Calls `body` with a writer whose bytes are appended to `out` (all of them by the time it returns).
    @inline(__always)
    static func appending(to out: inout [UInt8], _ body: (inout HeadWriter) -> Void) {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: capacity) { buffer in
            withUnsafeMutablePointer(to: &out) { out in
                var writer = HeadWriter(buffer: buffer.baseAddress!, out: out)
                body(&writer)
                writer.flush()
            }
        }
    }

    /// Appends `count` bytes from `source`.
    @inline(__always)
    mutating func append(_ source: UnsafePointer<UInt8>, count n: Int) {
        if n > Self.capacity &- count {
            flush()
            if n > Self.capacity {
                out.pointee.append(contentsOf: UnsafeBufferPointer(start: source, count: n))
                return
            }
        }
        Self.copy(source, to: buffer + count, n)
        count &+= n
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if count == Self.capacity { flush() }
        buffer[count] = byte
        count &+= 1
    }

    @inline(__always)
    mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { if let base = $0.baseAddress { append(base, count: $0.count) } }
    }

    @inline(__always)
    mutating func append(contentsOf bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBufferPointer { if let base = $0.baseAddress { append(base, count: $0.count) } }
    }

    mutating func append(contentsOf bytes: String.UTF8View) {
        for b in bytes { append(b) }
    }

    private mutating func flush() {
        guard count > 0 else { return }
        out.pointee.append(contentsOf: UnsafeBufferPointer(start: buffer, count: count))
        count = 0
    }

    /// Copies `n` bytes with a few word moves (overlapping at the end), which costs short pieces
    /// less than a call to memcpy. The two ranges do not overlap.
    @inline(__always)
    private static func copy(_ source: UnsafePointer<UInt8>, to destination: UnsafeMutablePointer<UInt8>, _ n: Int) {
        let s = UnsafeRawPointer(source), d = UnsafeMutableRawPointer(destination)
        if n >= 8 {
            if n > 64 { d.copyMemory(from: s, byteCount: n); return }
            var i = 0
            while i &+ 8 <= n {
                d.storeBytes(of: s.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
                i &+= 8
            }
            if i < n {
                d.storeBytes(of: s.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self), toByteOffset: n &- 8, as: UInt64.self)
            }
        } else if n >= 4 {
            d.storeBytes(of: s.loadUnaligned(as: UInt32.self), as: UInt32.self)
            d.storeBytes(of: s.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self), toByteOffset: n &- 4, as: UInt32.self)
        } else if n > 0 {
            destination[0] = source[0]
            destination[n &- 1] = source[n &- 1]
            if n == 3 { destination[1] = source[1] }
        }
    }
}
