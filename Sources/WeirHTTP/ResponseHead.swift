/// A parsed, validated response head. Every `Range<Int>` indexes `bytes`.
public struct ResponseHead: Sendable {
    /// Copy of the head exactly as received: status line through the final CRLFCRLF.
    public let bytes: [UInt8]
    /// HTTP/1.0 or HTTP/1.1 as sent in the status line.
    public let version: HTTPVersion
    /// The status code, 100...599.
    public let status: Int
    /// The reason phrase (possibly empty).
    public let reason: Range<Int>
    /// Field lines in received order; values trimmed of OWS.
    public let fields: [HeaderField]
    /// Body framing per RFC 9112 §6.3: `.none` for a HEAD request, 1xx, 204, 304; `.chunked` when the
    /// last transfer coding is chunked; `.untilClose` when Transfer-Encoding is present but does not end
    /// in chunked; `.contentLength(n)` for a valid Content-Length; otherwise `.untilClose`.
    public let framing: BodyFraming
    /// The server intends to keep the connection open: HTTP/1.1 without "Connection: close", HTTP/1.0
    /// with "Connection: keep-alive"; always false when `framing` is `.untilClose`.
    public let keepAlive: Bool
    /// Status is 101 (Switching Protocols).
    public let isUpgrade: Bool

    @usableFromInline
    init(bytes: [UInt8], version: HTTPVersion, status: Int, reason: Range<Int>, fields: [HeaderField],
         framing: BodyFraming, keepAlive: Bool, isUpgrade: Bool) {
        self.bytes = bytes
        self.version = version
        self.status = status
        self.reason = reason
        self.fields = fields
        self.framing = framing
        self.keepAlive = keepAlive
        self.isUpgrade = isUpgrade
    }

    /// true for an interim response: 100...199 except 101 (another head follows on the same request).
    @inlinable public var isInterim: Bool { status >= 100 && status < 200 && status != 101 }

    /// The value of the first field named `lowercasedName` (compared case-insensitively), or nil.
    /// Precondition: `lowercasedName` is ASCII. Not for the hot path (use `fieldName(_:is:)`).
    public func value(of lowercasedName: String) -> Range<Int>? {
        HeadAccessors.value(bytes, fields, of: lowercasedName)
    }

    /// `bytes[r]` decoded as UTF-8 (invalid bytes replaced). Precondition: `r` lies within `bytes`.
    public func string(_ r: Range<Int>) -> String { HeadAccessors.string(bytes, r) }

    /// true when field i's name equals `lowercasedName` ASCII-case-insensitively. Fast, no allocation.
    /// Precondition: `0 <= i < fields.count`; `lowercasedName` is lowercase ASCII.
    @inlinable
    public func fieldName(_ i: Int, is lowercasedName: StaticString) -> Bool {
        HeadAccessors.fieldName(bytes, fields, i, is: lowercasedName)
    }

    /// true when the comma-separated list value in `range` contains `lowercasedToken` as an element
    /// (case-insensitive, OWS trimmed). Precondition: `range` lies within `bytes`; token is lowercase ASCII.
    @inlinable
    public func listContains(_ range: Range<Int>, token lowercasedToken: StaticString) -> Bool {
        HeadAccessors.listContains(bytes, range, token: lowercasedToken)
    }
}
