/// Parsing of single field lines and of a whole field section, shared by request and response
/// heads and chunked trailers. Works on a buffer whose index 0 is the start of the message head.
@usableFromInline
enum FieldLine {
    /// Parses the field line starting at `start` and ending at the first CRLF before `limit`.
    /// Precondition: a CRLF (the line's end) lies within `buf[start..<limit]`.
    /// Returns the field (value trimmed of OWS) and the index of the line's CR, or throws an error
    /// with `status` at the offending byte (offset shifted by `base`).
    /// Rejects: obs-fold / leading whitespace, empty name, non-token name bytes, whitespace before
    /// the colon, missing colon, CTL other than HTAB in the value (NUL, bare CR, DEL included).
    @usableFromInline
    static func parse(_ buf: UnsafeRawBufferPointer, start: Int, limit: Int, status: Int, base: Int) throws(HTTPParseError) -> (field: HeaderField, cr: Int) {
        let first = buf[start]
        if ASCII.isWS(first) {
            throw HTTPParseError(status: status, reason: "obsolete line folding (field line starts with whitespace)", offset: base + start)
        }
        var i = ASCII.skipNameLetters8(buf, from: start, to: limit)
        while i < limit && ASCII.isTChar(buf[i]) { i &+= 1 }
        let c = buf[i]
        if c != ASCII.colon {
            let reason: String
            if ASCII.isWS(c) {
                reason = "whitespace between header field name and colon"
            } else if c == ASCII.cr {
                reason = buf[i &+ 1] == ASCII.lf ? "header field without colon" : "bare CR in header field"
            } else if c == 0 {
                reason = "NUL byte in header field name"
            } else {
                reason = "invalid character in header field name"
            }
            throw HTTPParseError(status: status, reason: reason, offset: base + i)
        }
        if i == start {
            throw HTTPParseError(status: status, reason: "empty header field name", offset: base + i)
        }
        let name = start..<i
        i = ASCII.skipWS(buf, from: i &+ 1, to: limit)
        let valueStart = i
        var cr: Int
        while true {
            i = ASCII.skipFieldBytes8(buf, from: i, to: limit)
            let b = buf[i]
            if !ASCII.isFieldByte(b) {
                if b == ASCII.cr && buf[i &+ 1] == ASCII.lf { cr = i; break }
                let reason: String
                if b == ASCII.cr {
                    reason = "bare CR in header field value"
                } else if b == 0 {
                    reason = "NUL byte in header field value"
                } else {
                    reason = "control character in header field value"
                }
                throw HTTPParseError(status: status, reason: reason, offset: base + i)
            }
            i &+= 1
        }
        var valueEnd = cr
        while valueEnd > valueStart && ASCII.isWS(buf[valueEnd &- 1]) { valueEnd &-= 1 }
        return (HeaderField(name: name, value: valueStart..<valueEnd), cr)
    }

    /// Result of scanning for the end of a field section.
    @usableFromInline
    enum Scan {
        case needMore
        /// The section ends at `end` (index just after the empty line's LF); `lines` field lines precede it.
        case complete(end: Int, lines: Int)
        case error(HTTPParseError)
    }

    /// Looks for the empty line ending the field section that begins at `from`, checking only line
    /// structure (every LF preceded by CR) and the size limits; field syntax is checked by `parse`.
    /// - Parameters:
    ///   - limit: the section must end (final LF included) at an index < `limit`; reaching it → `sizeStatus`.
    ///   - maxLines: more field lines → `sizeStatus`.
    ///   - base: added to offsets in errors.
    @usableFromInline
    static func scanSection(_ buf: UnsafeRawBufferPointer, from: Int, limit: Int, maxLines: Int,
                            syntaxStatus: Int, sizeStatus: Int, tooLarge: String, base: Int) -> Scan {
        let searchEnd = Swift.min(buf.count, limit)
        var p = from
        var lines = 0
        while true {
            guard let lf = ASCII.firstLF(buf, from: p, to: searchEnd) else {
                if buf.count >= limit {
                    return .error(HTTPParseError(status: sizeStatus, reason: tooLarge, offset: base + limit))
                }
                return .needMore
            }
            if lf == p || buf[lf &- 1] != ASCII.cr {
                return .error(HTTPParseError(status: syntaxStatus, reason: "bare LF (line not terminated by CRLF)", offset: base + lf))
            }
            if lf &- 1 == p {
                return .complete(end: lf &+ 1, lines: lines)
            }
            lines &+= 1
            if lines > maxLines {
                return .error(HTTPParseError(status: sizeStatus, reason: "too many header fields", offset: base + p))
            }
            p = lf &+ 1
        }
    }

    /// Parses every field line of a section already delimited by `scanSection`
    /// (`from` = first field line, `end` = index after the final empty line, `lines` = the number
    /// of field lines it counted) into `fields` (resized to `lines`, capacity kept).
    @usableFromInline
    static func parseSection(_ buf: UnsafeRawBufferPointer, from: Int, end: Int, lines: Int,
                             status: Int, base: Int, into fields: inout [HeaderField]) throws(HTTPParseError) {
        // Sized first, then written in place: an append per field costs a uniqueness check each. On
        // a kept-alive connection the size is usually right already.
        if fields.count > lines {
            fields.removeLast(fields.count &- lines)
        } else if fields.count < lines {
            fields.append(contentsOf: repeatElement(HeaderField(name: 0..<0, value: 0..<0), count: lines &- fields.count))
        }
        var failure: HTTPParseError? = nil
        fields.withUnsafeMutableBufferPointer { out in
            var p = from
            var k = 0
            let last = end &- 2  // start of the empty line
            while p < last {
                // scanSection checked that every LF follows a CR, so the first CRLF ends this line,
                // and counted the lines.
                precondition(k < out.count, "more field lines than scanSection counted")
                do throws(HTTPParseError) {
                    let (field, cr) = try parse(buf, start: p, limit: end, status: status, base: base)
                    out[k] = field
                    p = cr &+ 2
                    k &+= 1
                } catch {
                    failure = error
                    return
                }
            }
            precondition(k == out.count, "fewer field lines than scanSection counted")
        }
        if let failure { throw failure }
    }
}
