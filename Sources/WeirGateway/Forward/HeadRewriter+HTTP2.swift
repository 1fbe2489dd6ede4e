import WeirHTTP

extension HeadRewriter {
    /// The response head for a client on an HTTP/2 stream: the fields `clientResponse` would write
    /// (the same fate for each field of the server's head, see `responseFieldFate`), as HTTP/2 sends
    /// them: names lower-cased, no connection-specific field (no Connection, Transfer-Encoding or
    /// Upgrade), `content-length` only where the body keeps the server's framing. Building them
    /// here saves writing an HTTP/1.1 head and splitting it again (`SessionResponseHead`).
    ///
    /// Precondition: `head` was accepted by the strict parser and is no upgrade (an HTTP/2 stream
    /// cannot become a tunnel). `extraFields` and `setCookie` are complete field lines with CRLF.
    /// The fields replace those of `fields`, in its storage (see `HTTP2ResponseFields.refill`).
    static func clientResponseFields(_ head: ResponseHead, framing: ClientFraming, client: ClientView,
                                     serverPrefixes: [[UInt8]], extraFields: [UInt8] = [],
                                     setCookie: [UInt8] = [], into fields: inout HTTP2ResponseFields) {
        head.bytes.withUnsafeBytes { buf in fields.refill(copying: buf, fields: head.fields.count + 2, extra: 32) { fields in
            let named = head.connectionNamesFields ? connectionTokens(head, buf) : []
            var priorVia: Range<Int>? = nil
            var wroteLength = false
            for field in head.fields {
                switch responseFieldFate(head, buf, field, named: named, serverPrefixes: serverPrefixes, client: client) {
                case .copy:
                    fields.addCopied(name: field.name, value: field.value)
                case .drop, .transferEncoding:
                    continue
                case .contentLength:
                    guard framing == .asReceived, !wroteLength else { continue }
                    wroteLength = true
                    if case .contentLength(let n) = head.framing {
                        appendContentLength(n, to: &fields)
                    } else {
                        // A HEAD or 304 answer's length, informative: its first element as sent.
                        var first: Range<Int>? = nil
                        head.forEachListElement(field.value) { if first == nil { first = $0 } }
                        if let first { fields.append(name: "content-length", value: UnsafeRawBufferPointer(rebasing: buf[first])) }
                    }
                case .via:
                    priorVia = field.value
                case .rewritten(let value):
                    fields.addCopied(name: field.name, newValue: value)
                }
            }
            if let prior = priorVia, !prior.isEmpty {
                fields.append(name: "via") { out in
                    out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[prior]))
                    out.append(contentsOf: ", 1.1 weir".utf8)
                }
            } else {
                let via: StaticString = "via1.1 weir"
                fields.append(UnsafeRawBufferPointer(start: via.utf8Start, count: via.utf8CodeUnitCount), nameCount: 3)
            }
            if !extraFields.isEmpty { extraFields.withUnsafeBytes { fields.addLines($0) } }
            if !setCookie.isEmpty { setCookie.withUnsafeBytes { fields.addLines($0) } }
        } }
    }

    /// The framing of the body bytes the session writes after a head sent with `framing`.
    static func clientBodyFraming(_ head: ResponseHead, _ framing: ClientFraming) -> BodyFraming {
        if head.framing == .none { return .none }   // a rewriter never gives a body to what has none
        switch framing {
        case .asReceived: return head.framing
        case .rechunked: return .chunked
        case .dechunked, .closeDelimited: return .untilClose
        }
    }

    /// Appends `content-length: n`: the name and the digits side by side on the stack, appended in one piece.
    private static func appendContentLength(_ n: Int, to fields: inout HTTP2ResponseFields) {
        let name: StaticString = "content-length"
        let nameCount = name.utf8CodeUnitCount
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: nameCount + 20) { out in
            var start = out.count, v = n
            repeat { start -= 1; out[start] = UInt8(48 + v % 10); v /= 10 } while v > 0
            start -= nameCount
            (out.baseAddress! + start).update(from: name.utf8Start, count: nameCount)
            fields.append(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: out[start...])), nameCount: nameCount)
        }
    }
}
