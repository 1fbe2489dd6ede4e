/// A parsed, validated request head. Every `Range<Int>` indexes `bytes`.
public struct RequestHead: HTTPHead, Sendable {
    /// Copy of the head exactly as received: request line through the final CRLFCRLF
    /// (leading empty lines skipped by the parser are not included).
    public let bytes: [UInt8]
    /// The method token (case-sensitive, e.g. "GET").
    public let method: Range<Int>
    /// The request-target: origin-form, absolute-form (http/https), "*" (OPTIONS) or authority-form (CONNECT).
    public let target: Range<Int>
    /// HTTP/1.0 or HTTP/1.1 as sent in the request line.
    public let version: HTTPVersion
    /// Field lines in received order; values trimmed of OWS.
    public let fields: [HeaderField]
    /// `.none`, `.contentLength(n)` or `.chunked` (never `.untilClose`).
    public let framing: BodyFraming
    /// Value of the single Host field, if any (empty range for an empty Host).
    public let host: Range<Int>?
    /// RFC 9112 §9.3: HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with "Connection: keep-alive" (and no close).
    public let keepAlive: Bool
    /// Connection lists the "upgrade" token and an Upgrade field offers a protocol other than h2c.
    /// An h2c-only upgrade is not one: Weir speaks HTTP/1.1 to servers and forwards such a request as
    /// a plain request (RFC 9113 §3.1 deprecates h2c).
    public let isUpgrade: Bool
    /// For an absolute-form target (`http://authority/path`), the authority (host[:port], validated as
    /// a Host value: no userinfo, non-empty host); nil for origin-, asterisk- and authority-form.
    /// RFC 9112 §3.2.2: a proxy sends Host built from it, whatever the client's Host field says.
    public let absoluteFormAuthority: Range<Int>?
    /// Expect contains "100-continue" (case-insensitive) in an HTTP/1.1 request (ignored in HTTP/1.0, RFC 9110 §10.1.1).
    public let expectsContinue: Bool

    /// A Connection field lists an element other than close, keep-alive and upgrade (the name of a
    /// field the sender means for this hop only).
    public let connectionNamesFields: Bool

    @usableFromInline let knownMethod: KnownMethod

    @usableFromInline
    init(bytes: [UInt8], method: Range<Int>, target: Range<Int>, version: HTTPVersion, fields: [HeaderField],
         framing: BodyFraming, host: Range<Int>?, keepAlive: Bool, isUpgrade: Bool,
         absoluteFormAuthority: Range<Int>?, expectsContinue: Bool, knownMethod: KnownMethod, connectionNamesFields: Bool) {
        self.bytes = bytes
        self.method = method
        self.target = target
        self.version = version
        self.fields = fields
        self.framing = framing
        self.host = host
        self.keepAlive = keepAlive
        self.isUpgrade = isUpgrade
        self.absoluteFormAuthority = absoluteFormAuthority
        self.expectsContinue = expectsContinue
        self.knownMethod = knownMethod
        self.connectionNamesFields = connectionNamesFields
    }

    /// true when the method is exactly "HEAD".
    @inlinable public var isHEAD: Bool { knownMethod == .head }

    /// true for GET, HEAD, PUT, DELETE, OPTIONS, TRACE (RFC 9110 §9.2.2), exact case.
    @inlinable public var methodIsIdempotent: Bool { knownMethod.isIdempotent }

    /// true when the method is exactly "CONNECT" (the target is then authority-form).
    @inlinable public var isCONNECT: Bool { knownMethod == .connect }

    /// The method as a String (allocates; not for the hot path).
    public var methodString: String { HeadAccessors.string(bytes, method) }

    /// The request-target as a String (allocates; not for the hot path).
    public var targetString: String { HeadAccessors.string(bytes, target) }
}
