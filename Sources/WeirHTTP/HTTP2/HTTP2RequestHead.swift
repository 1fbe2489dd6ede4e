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
/// them), which keeps its buffers. A class: used where it lives, never copied (a copy of six arrays
/// retains six buffers). Use on one thread.
public final class HTTP2RequestHead {
    /// A request refused before it reaches the session.
    public struct Refusal: Error, Sendable, Equatable {
        public var status: Int
        public var reason: String
    }

    /// The bound on the header list (names + values + 32 per field).
    public let maxListBytes: Int
    private var method: [UInt8] = []
    private var path: [UInt8] = []
    private var authority: [UInt8] = []
    private var host: [UInt8] = []
    private var hasAuthority = false
    private var hasHost = false
    private var hasProtocol = false
    private var hasContentLength = false
    private var fields: [UInt8] = []
    private var cookie: [UInt8] = []
    private var listBytes = 0
    private var refusal: Refusal?

    public init(maxListBytes: Int) {
        self.maxListBytes = maxListBytes
        fields.reserveCapacity(512)
    }

    /// Forgets the last head, keeping the buffers, for the next header block.
    public func reset() {
        method.removeAll(keepingCapacity: true)
        path.removeAll(keepingCapacity: true)
        authority.removeAll(keepingCapacity: true)
        host.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        cookie.removeAll(keepingCapacity: true)
        hasAuthority = false
        hasHost = false
        hasProtocol = false
        hasContentLength = false
        listBytes = 0
        refusal = nil
    }

    /// Whether the request's method is HEAD (its response has no body whatever its head says).
    public var isHEAD: Bool { Self.equals(method, "HEAD") }

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
            case 5 where ASCII.equalsExactly(name, all, ":path"): path.append(contentsOf: value)
            case 7 where ASCII.equalsExactly(name, all, ":method"): method.append(contentsOf: value)
            case 9 where ASCII.equalsExactly(name, all, ":protocol"): hasProtocol = true
            case 10 where ASCII.equalsExactly(name, all, ":authority"): hasAuthority = true; authority.append(contentsOf: value)
            default: break
            }
            return
        }
        // nghttp2 hands names over lower-cased (it refuses others, RFC 9113 §8.2.1).
        switch name.count {
        case 4 where ASCII.equalsExactly(name, all, "host"):
            hasHost = true
            host.removeAll(keepingCapacity: true)
            host.append(contentsOf: value)
            return
        case 6 where ASCII.equalsExactly(name, all, "cookie"):
            if !cookie.isEmpty { Self.append("; ", to: &cookie) }
            cookie.append(contentsOf: value)
            return
        case 14 where ASCII.equalsExactly(name, all, "content-length"):
            hasContentLength = true
        default:
            break
        }
        fields.append(contentsOf: name)
        Self.append(": ", to: &fields)
        fields.append(contentsOf: value)
        Self.append("\r\n", to: &fields)
    }

    /// Writes the HTTP/1.1 head for the session into `out` (emptied first), and returns whether the
    /// body that follows must be framed chunked (`endStream`: the HEADERS frame ended the stream, no
    /// body follows). Throws a `Refusal`.
    public func head(endStream: Bool, into out: inout [UInt8]) throws(Refusal) -> Bool {
        if let refusal { throw refusal }
        if Self.equals(method, "CONNECT") || hasProtocol {
            throw Refusal(status: 501, reason: "CONNECT is not served over HTTP/2")
        }
        if hasAuthority, hasHost, !Self.sameHost(authority, host) {
            throw Refusal(status: 400, reason: ":authority and Host disagree")
        }
        let chunked = !endStream && !hasContentLength
        out.removeAll(keepingCapacity: true)
        out.reserveCapacity(method.count + path.count + fields.count + cookie.count + 96)
        out += method
        out.append(UInt8(ascii: " "))
        out += path
        Self.append(" HTTP/1.1\r\n", to: &out)
        if hasAuthority || hasHost {
            Self.append("Host: ", to: &out)
            out += hasAuthority ? authority : host
            Self.append("\r\n", to: &out)
        }
        out += fields
        if !cookie.isEmpty {
            Self.append("Cookie: ", to: &out)
            out += cookie
            Self.append("\r\n", to: &out)
        }
        if chunked { Self.append("Transfer-Encoding: chunked\r\n", to: &out) }
        Self.append("\r\n", to: &out)
        return chunked
    }

    /// The head as `head(endStream:into:)` writes it, in a new array (for tests).
    public func head(endStream: Bool) throws(Refusal) -> (bytes: [UInt8], chunkedBody: Bool) {
        var out: [UInt8] = []
        let chunked = try head(endStream: endStream, into: &out)
        return (out, chunked)
    }

    private static func append(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
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

    private static func equals(_ bytes: some Collection<UInt8>, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && zip(bytes, UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)).allSatisfy { $0 == $1 }
    }

    /// Host names compare case-insensitively (RFC 9110 §4.2.3); the port as written.
    private static func sameHost(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { ASCII.lower($0) == ASCII.lower($1) }
    }
}
