/// Strict, incremental, stateless parser for HTTP/1.1 request heads (RFC 9112, RFC 9110).
public enum RequestHeadParser {
    /// Parses the request head at the start of `buffer`.
    ///
    /// Stateless: when it returns `.needMore`, call again with the grown buffer (same start). While the
    /// head is incomplete only line structure and limits are checked (and the request line once it is
    /// complete), so `.needMore` is cheap: no CRLF within `maxRequestLine` bytes → 414, no end of head
    /// within `maxHeaderBytes` → 431, more than `maxHeaderCount` field lines → 431.
    ///
    /// Leading empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2); they count in
    /// `consumed` but not in `bytes`.
    ///
    /// - Precondition: `buffer` starts where a request is expected (after the previous message's body).
    /// - Returns: `.complete(head, consumed:)` with the validated head occupying `buffer[0..<consumed]`;
    ///   `.needMore`; or `.error` with status 400, 414, 431 or 505 and the offset in `buffer`.
    public static func parse(_ buffer: UnsafeRawBufferPointer, limits: ParserLimits) -> ParseResult<RequestHead> {
        var storage = HeadStorage()
        return parse(buffer, limits: limits, storage: &storage)
    }

    /// `parse(_:limits:)` that builds the head in `storage` (see `HeadStorage`: reused buffers).
    public static func parse(_ buffer: UnsafeRawBufferPointer, limits: ParserLimits,
                             storage: inout HeadStorage) -> ParseResult<RequestHead> {
        let n = buffer.count
        var start = 0
        while start < n {
            let b = buffer[start]
            if b == ASCII.cr {
                if start &+ 1 == n { return .needMore }
                if buffer[start &+ 1] != ASCII.lf {
                    return .error(HTTPParseError(status: 400, reason: "bare CR before request line", offset: start))
                }
                start &+= 2
                if start > limits.maxRequestLine {
                    return .error(HTTPParseError(status: 400, reason: "too many empty lines before request line", offset: start))
                }
            } else if b == ASCII.lf {
                return .error(HTTPParseError(status: 400, reason: "bare LF (line not terminated by CRLF)", offset: start))
            } else {
                break
            }
        }
        if start == n { return .needMore }
        do throws(HTTPParseError) {
            return try parseHead(UnsafeRawBufferPointer(rebasing: buffer[start...]), limits: limits, base: start,
                                 storage: &storage)
        } catch {
            return .error(error)
        }
    }

    /// `a + b` clamped to Int.max (limits may be set to huge values to disable them).
    @inline(__always)
    static func saturatingAdd(_ a: Int, _ b: Int) -> Int {
        let (s, o) = a.addingReportingOverflow(b)
        return o ? Int.max : s
    }

    /// Parses a head starting at `buf[0]` (the request line); `base` is its offset in the caller's buffer.
    static func parseHead(_ buf: UnsafeRawBufferPointer, limits: ParserLimits, base: Int,
                          storage: inout HeadStorage) throws(HTTPParseError) -> ParseResult<RequestHead> {
        let n = buf.count
        // Request line: its LF must come at index < maxRequestLine + 2 (line + CR).
        let lineLimit = saturatingAdd(limits.maxRequestLine, 2)
        guard let lf = ASCII.firstLF(buf, from: 0, to: Swift.min(n, lineLimit)) else {
            if n >= lineLimit {
                throw HTTPParseError(status: 414, reason: "request line too long", offset: base + limits.maxRequestLine)
            }
            // Reject obvious garbage (e.g. a TLS handshake) without waiting for a whole line.
            if !ASCII.isTChar(buf[0]) {
                throw RequestLine.error(buf, at: 0, end: n, base: base, context: "invalid method")
            }
            return .needMore
        }
        if buf[lf &- 1] != ASCII.cr {
            throw HTTPParseError(status: 400, reason: "bare LF (line not terminated by CRLF)", offset: base + lf)
        }
        let line = try RequestLine.parse(buf, end: lf &- 1, base: base)

        let scan = FieldLine.scanSection(buf, from: lf &+ 1, limit: limits.maxHeaderBytes, maxLines: limits.maxHeaderCount,
                                         syntaxStatus: 400, sizeStatus: 431, tooLarge: "request header section too large", base: base)
        let end: Int
        let lines: Int
        switch scan {
        case .needMore: return .needMore
        case .error(let e): throw e
        case .complete(let e, let l): end = e; lines = l
        }

        try FieldLine.parseSection(buf, from: lf &+ 1, end: end, lines: lines, status: 400, base: base, into: &storage.fields)
        let s = try FieldSummary.summarize(buf, storage.fields, status: 400, base: base)

        // Host (RFC 9112 §3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0.
        if s.hostCount > 1 {
            throw HTTPParseError(status: 400, reason: "more than one Host header", offset: base + (s.host?.lowerBound ?? 0))
        }
        if let host = s.host {
            for j in host where !ASCII.isHostChar(buf[j]) {
                throw HTTPParseError(status: 400, reason: "invalid Host header", offset: base + j)
            }
        } else if line.version == .http11 {
            throw HTTPParseError(status: 400, reason: "missing Host header", offset: base + end)
        }

        // Framing (RFC 9112 §6.1, §6.3).
        let framing: BodyFraming
        if let teAt = s.transferEncodingAt {
            if s.contentLengthAt != nil {
                throw HTTPParseError(status: 400, reason: "Content-Length together with Transfer-Encoding", offset: base + teAt)
            }
            if line.version == .http10 {
                throw HTTPParseError(status: 400, reason: "Transfer-Encoding in HTTP/1.0 request", offset: base + teAt)
            }
            if s.codings == 0 {
                throw HTTPParseError(status: 400, reason: "empty Transfer-Encoding", offset: base + teAt)
            }
            if !s.lastCodingIsChunked {
                throw HTTPParseError(status: 400, reason: "Transfer-Encoding does not end with chunked", offset: base + teAt)
            }
            framing = .chunked
        } else if let length = s.contentLength {
            framing = .contentLength(length)
        } else {
            framing = .none
        }

        let keepAlive = line.version == .http11 ? !s.connectionClose : (s.connectionKeepAlive && !s.connectionClose)
        storage.setBytes(UnsafeRawBufferPointer(rebasing: buf[0..<end]))
        let head = RequestHead(
            bytes: storage.bytes,
            method: line.method, target: line.target, version: line.version, fields: storage.fields,
            framing: framing, host: s.host, keepAlive: keepAlive,
            isUpgrade: s.connectionUpgrade && s.upgradeOffersOtherThanH2C, absoluteFormAuthority: line.authority,
            expectsContinue: s.expectsContinue && line.version == .http11, knownMethod: line.knownMethod,
            connectionNamesFields: s.connectionNamesFields)
        return .complete(head, consumed: base &+ end)
    }
}
