/// Writes the head of a response Weir makes itself (errors, redirects, discovery documents, the
/// admin API, the demo backend): the status line with the phrase from `ReasonPhrase`, field lines
/// in the order they are added, then the empty line. Pure: it only appends to its own bytes.
///
/// Every name and value is checked, so no caller can end the head early or start a second
/// response (response splitting): a field name is a token, a value holds no CR, LF, NUL or other
/// control byte but HTAB. A violation is a programming error and stops the process; callers that
/// place outside data into a field check it first with `isValidFieldValue`.
///
/// The writing and checking functions are `@inlinable`: specialized where they are called, the
/// checks run over the caller's concrete bytes instead of through generic witness calls (a
/// redirect's head cost 28,000 instructions that way).
public struct ResponseHeadWriter: Sendable {
    /// The head written so far (without the final empty line until `finish`).
    public var bytes: [UInt8] { storage }
    @usableFromInline var storage: [UInt8]

    /// Starts a head with the status line `HTTP/1.1 <status> <phrase>`.
    /// Precondition: `status` is in 100...599.
    public init(status: Int, reservingCapacity capacity: Int = 256) {
        precondition((100...599).contains(status), "status \(status) is not a three-digit HTTP status code in 100...599")
        storage = []
        storage.reserveCapacity(capacity)
        storage.append(contentsOf: "HTTP/1.1 ".utf8)
        Self.appendDecimal(status, to: &storage)
        storage.append(ASCII.sp)
        storage.append(contentsOf: ReasonPhrase.for(status).utf8)
        storage.append(ASCII.cr)
        storage.append(ASCII.lf)
    }

    /// Appends `name: value` CRLF. Preconditions: `isValidFieldName(name)`, `isValidFieldValue(value)`.
    @inlinable
    public mutating func field(_ name: String, _ value: some Collection<UInt8>) {
        precondition(Self.isValidFieldName(name.utf8), "invalid field name \"\(name)\"")
        precondition(Self.isValidFieldValue(value), "invalid value for field \(name): contains CR, LF or another control byte")
        storage.append(contentsOf: name.utf8)
        storage.append(ASCII.colon)
        storage.append(ASCII.sp)
        storage.append(contentsOf: value)
        storage.append(ASCII.cr)
        storage.append(ASCII.lf)
    }

    /// Appends `name: value` CRLF. Same preconditions as the byte form.
    @inlinable
    public mutating func field(_ name: String, _ value: String) {
        field(name, value.utf8)
    }

    /// Appends `name: <decimal value>` CRLF (e.g. Retry-After). Precondition: `value >= 0`.
    @inlinable
    public mutating func field(_ name: String, _ value: Int) {
        precondition(value >= 0, "field \(name) takes a non-negative number, got \(value)")
        var digits: [UInt8] = []
        Self.appendDecimal(value, to: &digits)
        field(name, digits)
    }

    /// Appends `Content-Length: n` CRLF. Precondition: `n >= 0`.
    @inlinable
    public mutating func contentLength(_ n: Int) {
        field("Content-Length", n)
    }

    /// States whether the connection stays open after this response: `Connection: close` when
    /// `keepAlive` is false; when true, nothing for an HTTP/1.1 peer (persistence is its default)
    /// and `Connection: keep-alive` for an HTTP/1.0 peer (`peerIsHTTP10`), which needs it said.
    @inlinable
    public mutating func connection(keepAlive: Bool, peerIsHTTP10: Bool = false) {
        if !keepAlive {
            field("Connection", "close")
        } else if peerIsHTTP10 {
            field("Connection", "keep-alive")
        }
    }

    /// Appends complete field lines made elsewhere (each `name: value` CRLF, e.g. a listener's
    /// Strict-Transport-Security or a Set-Cookie). Precondition: `isValidFieldLines(lines)`.
    @inlinable
    public mutating func fieldLines(_ lines: some Collection<UInt8>) {
        precondition(Self.isValidFieldLines(lines), "invalid field lines: each must be a token, \":\", a value and CRLF")
        storage.append(contentsOf: lines)
    }

    /// The complete head: what was written plus the empty line that ends it.
    public consuming func finish() -> [UInt8] {
        storage.append(ASCII.cr)
        storage.append(ASCII.lf)
        return storage
    }

    /// Appends the complete head to `out` (see `finish()`).
    public consuming func finish(appendingTo out: inout [UInt8]) {
        storage.append(ASCII.cr)
        storage.append(ASCII.lf)
        out.append(contentsOf: storage)
    }

    // MARK: - Validation

    /// true when `name` is a non-empty token (RFC 9110 §5.1).
    @inlinable
    public static func isValidFieldName(_ name: some Collection<UInt8>) -> Bool {
        !name.isEmpty && name.allSatisfy(ASCII.isTChar)
    }

    /// true when `value` may be sent as a field value: HTAB, SP, visible ASCII and obs-text only,
    /// so no CR, LF, NUL, other control bytes or DEL (RFC 9110 §5.5). Leading or trailing
    /// whitespace is allowed but would be trimmed by the recipient.
    @inlinable
    public static func isValidFieldValue(_ value: some Collection<UInt8>) -> Bool {
        value.allSatisfy(ASCII.isFieldByte)
    }

    /// true when `value` is a valid field value (see the byte form).
    @inlinable
    public static func isValidFieldValue(_ value: String) -> Bool { isValidFieldValue(value.utf8) }

    /// true when `lines` is zero or more complete field lines: token ":" value CRLF each.
    @inlinable
    public static func isValidFieldLines(_ lines: some Collection<UInt8>) -> Bool {
        var place = LinePlace.lineStart
        for b in lines {
            switch place {
            case .lineStart:
                guard ASCII.isTChar(b) else { return false }
                place = .name
            case .name:
                if b == ASCII.colon { place = .value } else if !ASCII.isTChar(b) { return false }
            case .value:
                if b == ASCII.cr { place = .cr } else if !ASCII.isFieldByte(b) { return false }
            case .cr:
                guard b == ASCII.lf else { return false }
                place = .lineStart
            }
        }
        return place == .lineStart
    }

    @usableFromInline enum LinePlace { case lineStart, name, value, cr }

    /// Appends the decimal digits of `value` (≥ 0) to `out`.
    @usableFromInline
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value < 10 {
            out.append(0x30 &+ UInt8(value))
            return
        }
        let start = out.count
        var v = value
        while v > 0 {
            out.append(0x30 &+ UInt8(v % 10))
            v /= 10
        }
        out[start...].reverse()
    }
}
