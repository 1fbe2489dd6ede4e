/// Turns an HTTP/2 request's header list into the HTTP/1.1 request head Weir's session reads, so an
/// HTTP/2 stream goes through the same parser, routing, decision and forwarding as an HTTP/1.1
/// request (and the same header rules: the parser checks the head it is given).
///
/// nghttp2 has already enforced RFC 9113 §8.2-§8.3 on the list: lower-case names, valid characters,
/// no connection-specific fields (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
/// Upgrade; TE other than "trailers"), pseudo-headers first, once each, the required ones present, a
/// Content-Length matching the DATA. This type adds what remains for a gateway:
/// * `:authority` and `Host` that disagree are refused (400); either one becomes the `Host` field;
/// * the header list is bounded (`maxListBytes`, counted as RFC 9113 §6.5.2 does: 431);
/// * CONNECT (and extended CONNECT) is not served over HTTP/2 (501);
/// * `Cookie` fields split into crumbs (§8.2.3) are joined with "; ";
/// * a body of unknown length is framed chunked.
///
/// The head carries no `Connection` field: the session keeps its connection (an `HTTP2Lane`) alive
/// for the next stream, as for an HTTP/1.1 keep-alive client.
///
/// HEADERS and CONTINUATION of one block are never interleaved with another stream's frames (RFC
/// 9113 §4.3), so an HTTP/2 connection builds every request head with one builder (`reset` between
/// them), which keeps its buffers (`ByteBuilder`s: a piece appended is one capacity check and one
/// copy). Use on one thread.
public final class HTTP2RequestHead {
    /// A request refused before it reaches the session.
    public struct Refusal: Error, Sendable, Equatable {
        public var status: Int
        public var reason: String
    }

    /// The bound on the header list (names + values + 32 per field).
    public let maxListBytes: Int
    private var method = ByteBuilder(capacity: 16)
    private var path = ByteBuilder(capacity: 256)
    private var authority = ByteBuilder(capacity: 64)
    private var host = ByteBuilder(capacity: 64)
    private var hasAuthority = false
    private var hasHost = false
    private var hasProtocol = false
    private var hasContentLength = false
    /// The regular fields as HTTP/1.1 lines ("name: value\r\n"), in order.
    private var fields = ByteBuilder(capacity: 512)
    private var cookie = ByteBuilder(capacity: 64)
    private var listBytes = 0
    private var refusal: Refusal?

    public init(maxListBytes: Int) {
        self.maxListBytes = maxListBytes
    }

    /// Forgets the last head, keeping the buffers, for the next header block.
    public func reset() {
        method.removeAll()
        path.removeAll()
        authority.removeAll()
        host.removeAll()
        fields.removeAll()
        cookie.removeAll()
        hasAuthority = false
        hasHost = false
        hasProtocol = false
        hasContentLength = false
        listBytes = 0
        refusal = nil
    }

    /// Whether the request's method is HEAD (its response has no body whatever its head says).
    public var isHEAD: Bool { Self.equals(method.bytes, "HEAD") }

    /// Adds one field of the request's header block (pseudo-headers included), in order.
    public func add(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard refusal == nil else { return }
        listBytes += name.count + value.count + 32
        guard listBytes <= maxListBytes else {
            refusal = Refusal(status: 431, reason: "header list larger than \(maxListBytes) bytes")
            return
        }
        let all = 0..<name.count
        if name.first == UInt8(ascii: ":") {
            // :scheme is not carried: the session knows the listener's scheme.
            switch name.count {
            case 5 where ASCII.equalsExactly(name, all, ":path"): path.append(value)
            case 7 where ASCII.equalsExactly(name, all, ":method"): method.append(value)
            case 9 where ASCII.equalsExactly(name, all, ":protocol"): hasProtocol = true
            case 10 where ASCII.equalsExactly(name, all, ":authority"): hasAuthority = true; authority.append(value)
            default: break
            }
            return
        }
        // nghttp2 hands names over lower-cased (it refuses others, RFC 9113 §8.2.1).
        switch name.count {
        case 4 where ASCII.equalsExactly(name, all, "host"):
            hasHost = true
            host.removeAll()
            host.append(value)
            return
        case 6 where ASCII.equalsExactly(name, all, "cookie"):
            if !cookie.isEmpty { cookie.append("; ") }
            cookie.append(value)
            return
        case 14 where ASCII.equalsExactly(name, all, "content-length"):
            hasContentLength = true
        default:
            break
        }
        fields.append(name, ": ", value, then: "\r\n")
    }

    /// Writes the HTTP/1.1 head for the session into `out` (emptied first), and returns whether the
    /// body that follows must be framed chunked (`endStream`: the HEADERS frame ended the stream, no
    /// body follows). Throws a `Refusal`.
    public func head(endStream: Bool, into out: inout ByteBuilder) throws(Refusal) -> Bool {
        if let refusal { throw refusal }
        if Self.equals(method.bytes, "CONNECT") || hasProtocol {
            throw Refusal(status: 501, reason: "CONNECT is not served over HTTP/2")
        }
        if hasAuthority, hasHost, !Self.sameHost(authority.bytes, host.bytes) {
            throw Refusal(status: 400, reason: ":authority and Host disagree")
        }
        let chunked = !endStream && !hasContentLength
        out.removeAll()
        out.append(method.bytes, " ", path.bytes, then: " HTTP/1.1\r\n")
        if hasAuthority {
            out.append("Host: ", authority.bytes, then: "\r\n")
        } else if hasHost {
            out.append("Host: ", host.bytes, then: "\r\n")
        }
        out.append(fields)
        if !cookie.isEmpty { out.append("Cookie: ", cookie.bytes, then: "\r\n") }
        if chunked { out.append("Transfer-Encoding: chunked\r\n") }
        out.append("\r\n")
        return chunked
    }

    /// The head as `head(endStream:into:)` writes it, in a new array (for tests).
    public func head(endStream: Bool) throws(Refusal) -> (bytes: [UInt8], chunkedBody: Bool) {
        var out = ByteBuilder(capacity: 256)
        let chunked = try head(endStream: endStream, into: &out)
        return (Array(out.bytes), chunked)
    }

    /// The chunk framing before `count` body bytes of a chunked request body.
    public static func chunkHeader(_ count: Int) -> [UInt8] {
        Array(String(count, radix: 16).utf8) + [13, 10]
    }

    /// The end of a chunked request body: the last chunk and the trailer section `trailers`
    /// ("name: value\r\n" lines, possibly empty).
    public static func lastChunk(trailers: [UInt8]) -> [UInt8] {
        Array("0\r\n".utf8) + trailers + [13, 10]
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && ASCII.equalsExactly(bytes, 0..<bytes.count, text)
    }

    /// Host names compare case-insensitively (RFC 9110 §4.2.3); the port as written.
    private static func sameHost(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { ASCII.lower($0) == ASCII.lower($1) }
    }
}
