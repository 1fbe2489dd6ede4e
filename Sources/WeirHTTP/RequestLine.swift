/// Parsing of the request line: method SP request-target SP HTTP-version (RFC 9112 §3).
@usableFromInline
struct RequestLine {
    @usableFromInline var method: Range<Int>
    @usableFromInline var target: Range<Int>
    @usableFromInline var version: HTTPVersion
    @usableFromInline var knownMethod: KnownMethod
    /// The authority of an absolute-form target, nil for the other forms.
    @usableFromInline var authority: Range<Int>?

    /// Parses `buf[0..<end]` (`end` = index of the line's CR). Offsets in errors are shifted by `base`.
    /// Rejects (400): empty/invalid method, multiple SP, empty or invalid target, bare CR,
    /// target form not allowed for the method, an absolute-form authority with userinfo, an empty
    /// host or a non-host byte; 505 for a well-formed HTTP/x.y other than 1.0/1.1.
    @usableFromInline
    static func parse(_ buf: UnsafeRawBufferPointer, end: Int, base: Int) throws(HTTPParseError) -> RequestLine {
        var i = 0
        while i < end && ASCII.isTChar(buf[i]) { i &+= 1 }
        if i == end || buf[i] != ASCII.sp {
            throw error(buf, at: i, end: end, base: base, context: i == 0 ? "invalid method" : "invalid character in method")
        }
        if i == 0 {
            throw HTTPParseError(status: 400, reason: "empty method", offset: base)
        }
        let method = 0..<i
        i &+= 1
        let targetStart = i
        while i < end {
            let b = buf[i]
            if b <= 0x20 || b >= 0x7F || b == 0x23 { break }
            i &+= 1
        }
        if i < end && buf[i] == 0x23 {
            throw HTTPParseError(status: 400, reason: "fragment in request-target", offset: base + i)
        }
        if i == targetStart {
            if i < end && buf[i] == ASCII.sp {
                throw HTTPParseError(status: 400, reason: "multiple spaces in request line", offset: base + i)
            }
            throw error(buf, at: i, end: end, base: base, context: "empty request-target")
        }
        if i == end {
            throw HTTPParseError(status: 400, reason: "missing HTTP version", offset: base + i)
        }
        if buf[i] != ASCII.sp {
            throw error(buf, at: i, end: end, base: base, context: "invalid character in request-target")
        }
        let target = targetStart..<i
        i &+= 1
        let version = try parseVersion(buf, i..<end, base: base)
        let known = KnownMethod.classify(buf, method)
        let authority = try validateTarget(buf, target, method: known, base: base)
        return RequestLine(method: method, target: target, version: version, knownMethod: known, authority: authority)
    }

    /// Builds the error for the unexpected byte at `i` (or the end of the line).
    @usableFromInline
    static func error(_ buf: UnsafeRawBufferPointer, at i: Int, end: Int, base: Int, context: String) -> HTTPParseError {
        if i == end { return HTTPParseError(status: 400, reason: "incomplete request line", offset: base + i) }
        let b = buf[i]
        let reason: String
        if b == ASCII.cr {
            reason = "bare CR in request line"
        } else if b == 0 {
            reason = "NUL byte in request line"
        } else if b >= 0x80 {
            reason = context == "invalid character in request-target" ? "non-ASCII byte in request-target" : context
        } else {
            reason = context
        }
        return HTTPParseError(status: 400, reason: reason, offset: base + i)
    }

    /// HTTP-version = "HTTP/" DIGIT "." DIGIT, exactly 1.0 or 1.1 accepted.
    @usableFromInline
    static func parseVersion(_ buf: UnsafeRawBufferPointer, _ r: Range<Int>, base: Int) throws(HTTPParseError) -> HTTPVersion {
        if r.count >= 1 && buf[r.lowerBound] == ASCII.sp {
            throw HTTPParseError(status: 400, reason: "multiple spaces in request line", offset: base + r.lowerBound)
        }
        if ASCII.equalsExactly(buf, r, "HTTP/1.1") { return .http11 }
        if ASCII.equalsExactly(buf, r, "HTTP/1.0") { return .http10 }
        if r.count == 8 && ASCII.equalsExactly(buf, r.lowerBound..<r.lowerBound + 5, "HTTP/")
            && buf[r.lowerBound + 5] &- 0x30 < 10 && buf[r.lowerBound + 6] == 0x2E && buf[r.lowerBound + 7] &- 0x30 < 10 {
            throw HTTPParseError(status: 505, reason: "HTTP Version Not Supported", offset: base + r.lowerBound)
        }
        if r.count > 8 && ASCII.equalsExactly(buf, r.lowerBound..<r.lowerBound + 8, "HTTP/1.1")
            || r.count > 8 && ASCII.equalsExactly(buf, r.lowerBound..<r.lowerBound + 8, "HTTP/1.0") {
            let b = buf[r.lowerBound + 8]
            let reason = b == ASCII.sp ? "multiple spaces in request line" : b == ASCII.cr ? "bare CR in request line" : "invalid HTTP version"
            throw HTTPParseError(status: 400, reason: reason, offset: base + r.lowerBound + 8)
        }
        for j in r where buf[j] == ASCII.cr {
            throw HTTPParseError(status: 400, reason: "bare CR in request line", offset: base + j)
        }
        throw HTTPParseError(status: 400, reason: "invalid HTTP version", offset: base + r.lowerBound)
    }

    /// request-target forms (RFC 9112 §3.2): origin-form "/...", absolute-form "http(s)://authority...",
    /// asterisk-form "*" only for OPTIONS, authority-form "host:port" only (and always) for CONNECT.
    /// Bytes are already known to be visible ASCII other than "#" (a fragment is rejected by `parse`).
    /// - Returns: the authority of an absolute-form target (see `absoluteAuthority`), else nil.
    @usableFromInline
    static func validateTarget(_ buf: UnsafeRawBufferPointer, _ t: Range<Int>, method: KnownMethod, base: Int) throws(HTTPParseError) -> Range<Int>? {
        let first = buf[t.lowerBound]
        if method == .connect {
            if isAuthorityForm(buf, t) { return nil }
            throw HTTPParseError(status: 400, reason: "CONNECT requires an authority-form target (host:port)", offset: base + t.lowerBound)
        }
        if first == 0x2F { return nil }  // origin-form
        if first == 0x2A && t.count == 1 {
            if method == .options { return nil }
            throw HTTPParseError(status: 400, reason: "asterisk-form target only allowed with OPTIONS", offset: base + t.lowerBound)
        }
        if let authorityStart = schemeEnd(buf, t) {
            if authorityStart < t.upperBound && buf[authorityStart] != 0x2F && buf[authorityStart] != 0x3F {
                return try absoluteAuthority(buf, from: authorityStart, to: t.upperBound, base: base)
            }
            throw HTTPParseError(status: 400, reason: "absolute-form target without authority", offset: base + authorityStart)
        }
        if isAuthorityForm(buf, t) {
            throw HTTPParseError(status: 400, reason: "authority-form target only allowed with CONNECT", offset: base + t.lowerBound)
        }
        throw HTTPParseError(status: 400, reason: "invalid request-target", offset: base + t.lowerBound)
    }

    /// The authority of an absolute-form target: `buf[start...]` up to the first "/" or "?" (or `end`).
    /// A proxy sends it as Host (RFC 9112 §3.2.2), so it must be a valid Host value: host bytes only,
    /// no userinfo (RFC 9110 §4.2.4 lets a recipient treat it as an error; it would be a Host
    /// spoofing vector), and a non-empty host (§4.2.1: such a URI MUST be rejected).
    /// Precondition: `start < end` and `buf[start]` is neither "/" nor "?".
    @usableFromInline
    static func absoluteAuthority(_ buf: UnsafeRawBufferPointer, from start: Int, to end: Int, base: Int) throws(HTTPParseError) -> Range<Int> {
        var j = start
        while j < end {
            let b = buf[j]
            if b == 0x2F || b == 0x3F { break }
            if b == 0x40 {
                throw HTTPParseError(status: 400, reason: "userinfo in request-target", offset: base + j)
            }
            if !ASCII.isHostChar(b) {
                throw HTTPParseError(status: 400, reason: "invalid character in request-target authority", offset: base + j)
            }
            j &+= 1
        }
        if buf[start] == ASCII.colon {
            throw HTTPParseError(status: 400, reason: "empty host in request-target", offset: base + start)
        }
        return start..<j
    }

    /// For a target starting with "http://" or "https://" (case-insensitive), the index after "//".
    @usableFromInline
    static func schemeEnd(_ buf: UnsafeRawBufferPointer, _ t: Range<Int>) -> Int? {
        let s = t.lowerBound
        if t.count >= 7 && ASCII.equalsLowercased(buf, s..<s + 7, "http://") { return s + 7 }
        if t.count >= 8 && ASCII.equalsLowercased(buf, s..<s + 8, "https://") { return s + 8 }
        return nil
    }

    /// authority-form = uri-host ":" port, host non-empty, port 1*DIGIT.
    @usableFromInline
    static func isAuthorityForm(_ buf: UnsafeRawBufferPointer, _ t: Range<Int>) -> Bool {
        var colon = t.upperBound
        var j = t.upperBound
        while j > t.lowerBound {
            j &-= 1
            let b = buf[j]
            if b == ASCII.colon { colon = j; break }
            if b &- 0x30 >= 10 { return false }
        }
        if colon == t.upperBound || colon == t.lowerBound || colon &+ 1 == t.upperBound { return false }
        for k in t.lowerBound..<colon where !ASCII.isHostChar(buf[k]) || buf[k] == 0x40 {
            return false
        }
        return true
    }
}
