/// Parsing of the status line: HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4).
@usableFromInline
struct StatusLine {
    @usableFromInline var version: HTTPVersion
    @usableFromInline var status: Int
    @usableFromInline var reason: Range<Int>

    /// Parses `buf[0..<end]` (`end` = index of the line's CR). Errors have status 502.
    /// A missing SP after the status code is tolerated when the reason phrase is absent.
    @usableFromInline
    static func parse(_ buf: UnsafeRawBufferPointer, end: Int) throws(HTTPParseError) -> StatusLine {
        let version: HTTPVersion
        if end >= 8 && ASCII.equalsExactly(buf, 0..<8, "HTTP/1.1") {
            version = .http11
        } else if end >= 8 && ASCII.equalsExactly(buf, 0..<8, "HTTP/1.0") {
            version = .http10
        } else {
            throw HTTPParseError(status: 502, reason: "invalid or unsupported HTTP version in status line", offset: 0)
        }
        if end < 12 || buf[8] != ASCII.sp {
            throw HTTPParseError(status: 502, reason: "invalid status line", offset: Swift.min(8, end))
        }
        var status = 0
        for j in 9..<12 {
            let d = buf[j] &- 0x30
            if d >= 10 { throw HTTPParseError(status: 502, reason: "invalid status code", offset: j) }
            status = status &* 10 &+ Int(d)
        }
        if status < 100 || status > 599 {
            throw HTTPParseError(status: 502, reason: "invalid status code", offset: 9)
        }
        if end == 12 {
            return StatusLine(version: version, status: status, reason: 12..<12)
        }
        if buf[12] != ASCII.sp {
            throw HTTPParseError(status: 502, reason: buf[12] &- 0x30 < 10 ? "invalid status code" : "invalid status line", offset: 12)
        }
        for j in 13..<end where !ASCII.isFieldByte(buf[j]) {
            throw HTTPParseError(status: 502, reason: buf[j] == ASCII.cr ? "bare CR in status line" : "control character in reason phrase", offset: j)
        }
        return StatusLine(version: version, status: status, reason: 13..<end)
    }
}
