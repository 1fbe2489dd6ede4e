/// A parsed, validated response head. Every `Range<Int>` indexes `bytes`.
public struct ResponseHead: HTTPHead, Sendable {
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
    /// A Connection field lists an element other than close, keep-alive and upgrade (the name of a
    /// field the sender means for this hop only).
    public let connectionNamesFields: Bool

    @usableFromInline
    init(bytes: [UInt8], version: HTTPVersion, status: Int, reason: Range<Int>, fields: [HeaderField],
         framing: BodyFraming, keepAlive: Bool, isUpgrade: Bool, connectionNamesFields: Bool) {
        self.bytes = bytes
        self.version = version
        self.status = status
        self.reason = reason
        self.fields = fields
        self.framing = framing
        self.keepAlive = keepAlive
        self.isUpgrade = isUpgrade
        self.connectionNamesFields = connectionNamesFields
    }

    /// true for an interim response: 100...199 except 101 (another head follows on the same request).
    @inlinable public var isInterim: Bool { status >= 100 && status < 200 && status != 101 }
}
