/// Syntax of chunk-size lines and the trailer section (RFC 9112 §7.1), used by `ChunkedDecoder`.
/// Errors thrown here carry offsets relative to the buffer passed in (status 400).
@usableFromInline
enum ChunkLine {
    /// Parses `chunk-size [ chunk-ext ] CRLF` at the start of `buf`.
    /// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] ).
    /// - Returns: the chunk size and the line length including CRLF, or nil when the line is incomplete.
    /// - Throws: a size beyond Int.max, no hex digit, invalid extension, bare CR/LF, a line longer
    ///   than `maxLine` bytes. Leading zeros are valid (RFC 9112 §7.1: chunk-size = 1*HEXDIG), so the
    ///   value is bounded, not the number of digits; `maxLine` bounds the line.
    @usableFromInline
    static func parseSizeLine(_ buf: UnsafeRawBufferPointer, maxLine: Int) throws(HTTPParseError) -> (size: Int, length: Int)? {
        let end = Swift.min(buf.count, maxLine)
        let truncated = buf.count > maxLine
        var i = 0
        var size = 0
        while i < end, let d = ASCII.hexValue(buf[i]) {
            if size > (Int.max >> 4) {  // the next shift would overflow
                throw HTTPParseError(status: 400, reason: "chunk size too large", offset: i)
            }
            size = (size << 4) | d
            i &+= 1
        }
        if i == end { return try incomplete(truncated, end) }
        if i == 0 { throw HTTPParseError(status: 400, reason: "invalid chunk size", offset: 0) }
        while true {
            var j = ASCII.skipWS(buf, from: i, to: end)
            if j == end { return try incomplete(truncated, end) }
            let b = buf[j]
            if b == ASCII.semicolon {
                j = ASCII.skipWS(buf, from: j &+ 1, to: end)
                var k = j
                while k < end && ASCII.isTChar(buf[k]) { k &+= 1 }
                if k == end { return try incomplete(truncated, end) }
                if k == j { throw HTTPParseError(status: 400, reason: "invalid chunk extension", offset: k) }
                j = ASCII.skipWS(buf, from: k, to: end)
                if j == end { return try incomplete(truncated, end) }
                if buf[j] == 0x3D {  // "="
                    j = ASCII.skipWS(buf, from: j &+ 1, to: end)
                    if j == end { return try incomplete(truncated, end) }
                    if buf[j] == 0x22 {  // quoted-string
                        j &+= 1
                        while true {
                            if j == end { return try incomplete(truncated, end) }
                            let c = buf[j]
                            if c == 0x22 { j &+= 1; break }
                            if c == 0x5C {  // quoted-pair
                                if j &+ 1 == end { return try incomplete(truncated, end) }
                                if !ASCII.isFieldByte(buf[j &+ 1]) {
                                    throw HTTPParseError(status: 400, reason: "invalid chunk extension", offset: j &+ 1)
                                }
                                j &+= 2
                                continue
                            }
                            if !ASCII.isFieldByte(c) {
                                throw HTTPParseError(status: 400, reason: "invalid chunk extension", offset: j)
                            }
                            j &+= 1
                        }
                    } else {
                        k = j
                        while k < end && ASCII.isTChar(buf[k]) { k &+= 1 }
                        if k == end { return try incomplete(truncated, end) }
                        if k == j { throw HTTPParseError(status: 400, reason: "invalid chunk extension", offset: k) }
                        j = k
                    }
                }
                i = j
                continue
            }
            if j != i {
                throw HTTPParseError(status: 400, reason: "whitespace before end of chunk-size line", offset: i)
            }
            if b == ASCII.cr {
                if j &+ 1 == end { return try incomplete(truncated, end) }
                if buf[j &+ 1] != ASCII.lf {
                    throw HTTPParseError(status: 400, reason: "bare CR in chunk-size line", offset: j)
                }
                return (size, j &+ 2)
            }
            if b == ASCII.lf {
                throw HTTPParseError(status: 400, reason: "bare LF in chunk-size line", offset: j)
            }
            throw HTTPParseError(status: 400, reason: "invalid chunk size", offset: j)
        }
    }

    /// nil (need more) unless the line was cut at `maxLine`, then an error.
    @inline(__always)
    static func incomplete(_ truncated: Bool, _ end: Int) throws(HTTPParseError) -> (size: Int, length: Int)? {
        if truncated { throw HTTPParseError(status: 400, reason: "chunk-size line too long", offset: end) }
        return nil
    }

    /// Scans the trailer section (field lines, then CRLF) that begins at `from`, validating each field
    /// line like a header field (no obs-fold, token names, no CTL in values, CRLF only).
    /// - Returns: the index just after the final CRLF, or nil when incomplete.
    /// - Throws: invalid trailer field, bare LF, section (from `from` through the final CRLF) longer
    ///   than `maxTrailerBytes`. Offsets are relative to `buf`.
    @usableFromInline
    static func scanTrailers(_ buf: UnsafeRawBufferPointer, from: Int, maxTrailerBytes: Int) throws(HTTPParseError) -> Int? {
        let (limit, o) = from.addingReportingOverflow(maxTrailerBytes)
        let searchEnd = o ? buf.count : Swift.min(buf.count, limit)
        var p = from
        while true {
            guard let lf = ASCII.firstLF(buf, from: p, to: searchEnd) else {
                if !o && buf.count >= limit {
                    throw HTTPParseError(status: 400, reason: "trailer section too large", offset: limit)
                }
                return nil
            }
            if lf == p || buf[lf &- 1] != ASCII.cr {
                throw HTTPParseError(status: 400, reason: "bare LF in trailer section", offset: lf)
            }
            if lf &- 1 == p { return lf &+ 1 }
            do throws(HTTPParseError) {
                _ = try FieldLine.parse(buf, start: p, limit: lf &+ 1, status: 400, base: 0)
            } catch {
                throw HTTPParseError(status: 400, reason: "invalid trailer field: " + error.reason, offset: error.offset)
            }
            p = lf &+ 1
        }
    }
}
