import WeirHTTP
import WeirIO

/// The error responses Weir writes itself: a status line, a one-line plain-text reason as the body,
/// and `Connection: close` unless the connection is to stay open.
enum ErrorResponse {
    /// Appends a complete response to `output` (see `bytes`).
    static func write(status: Int, reason: String, retryAfter: Int? = nil, extraFields: [UInt8] = [], keepAlive: Bool = false,
                      to output: Buffer) {
        output.append(bytes(status: status, reason: reason, retryAfter: retryAfter, extraFields: extraFields, keepAlive: keepAlive))
    }

    /// The complete response: head and body `reason` + LF. `retryAfter` adds a Retry-After field
    /// (seconds); `extraFields` are complete field lines (with CRLFs), e.g. the listener's
    /// Strict-Transport-Security. `keepAlive` false (the default) says `Connection: close`; true says
    /// nothing, so an HTTP/1.1 client keeps the connection. Preconditions: `status` in 100...599;
    /// `extraFields` valid field lines (`ResponseHeadWriter.isValidFieldLines`).
    static func bytes(status: Int, reason: String, retryAfter: Int? = nil, extraFields: [UInt8] = [],
                      keepAlive: Bool = false) -> [UInt8] {
        let bodyCount = reason.utf8.count + 1
        var head = ResponseHeadWriter(status: status)
        head.field("Content-Type", "text/plain; charset=utf-8")
        head.field("Cache-Control", "no-store")
        head.connection(keepAlive: keepAlive)
        head.contentLength(bodyCount)
        if let retryAfter { head.field("Retry-After", retryAfter) }
        head.fieldLines(extraFields)
        var out = head.finish()
        out.append(contentsOf: reason.utf8)
        out.append(0x0A)
        return out
    }
}
