/// Strict, incremental, stateless parser for HTTP/1.1 response heads received from a server.
/// Every error has status 502 (Bad Gateway): the reason says what the server got wrong.
public enum ResponseHeadParser {
    /// Parses the response head at the start of `buffer`.
    ///
    /// Same contract as `RequestHeadParser.parse`: stateless, call again with the grown buffer after
    /// `.needMore`; limits are enforced while incomplete (status line longer than `maxRequestLine`,
    /// head longer than `maxHeaderBytes`, more than `maxHeaderCount` fields → 502). No bare LF, no
    /// leading empty lines, no obs-fold are tolerated. Both Content-Length and Transfer-Encoding is an
    /// error (RFC 9112 §6.3 ¶3: "ought to be handled as an error").
    ///
    /// - Parameters:
    ///   - requestWasHEAD: the request this answers was HEAD, so no body follows whatever the fields say.
    /// - Precondition: `buffer` starts where a response is expected.
    /// - Returns: `.complete(head, consumed:)` with the head in `buffer[0..<consumed]` and `framing`
    ///   computed per RFC 9112 §6.3; `.needMore`; or `.error` (status 502).
    public static func parse(_ buffer: UnsafeRawBufferPointer, requestWasHEAD: Bool, limits: ParserLimits) -> ParseResult<ResponseHead> {
        var storage = HeadStorage()
        return parse(buffer, requestWasHEAD: requestWasHEAD, limits: limits, storage: &storage)
    }

    /// `parse(_:requestWasHEAD:limits:)` that builds the head in `storage` (see `HeadStorage`).
    public static func parse(_ buffer: UnsafeRawBufferPointer, requestWasHEAD: Bool, limits: ParserLimits,
                             storage: inout HeadStorage) -> ParseResult<ResponseHead> {
        do throws(HTTPParseError) {
            return try parseHead(buffer, requestWasHEAD: requestWasHEAD, limits: limits, storage: &storage)
        } catch {
            return .error(error)
        }
    }

    static func parseHead(_ buf: UnsafeRawBufferPointer, requestWasHEAD: Bool, limits: ParserLimits,
                          storage: inout HeadStorage) throws(HTTPParseError) -> ParseResult<ResponseHead> {
        let n = buf.count
        if n == 0 { return .needMore }
        let lineLimit = RequestHeadParser.saturatingAdd(limits.maxRequestLine, 2)
        guard let lf = ASCII.firstLF(buf, from: 0, to: Swift.min(n, lineLimit)) else {
            if n >= lineLimit {
                throw HTTPParseError(status: 502, reason: "status line too long", offset: limits.maxRequestLine)
            }
            // Reject a non-HTTP reply early.
            let prefix = Swift.min(n, 5)
            let looksLikeHTTP = ("HTTP/" as StaticString).withUTF8Buffer { expected in
                (0..<prefix).allSatisfy { buf[$0] == expected[$0] }
            }
            if !looksLikeHTTP {
                throw HTTPParseError(status: 502, reason: "invalid status line", offset: 0)
            }
            return .needMore
        }
        if lf == 0 || buf[lf &- 1] != ASCII.cr {
            throw HTTPParseError(status: 502, reason: "bare LF in response head", offset: lf)
        }
        let line = try StatusLine.parse(buf, end: lf &- 1)

        let scan = FieldLine.scanSection(buf, from: lf &+ 1, limit: limits.maxHeaderBytes, maxLines: limits.maxHeaderCount,
                                         syntaxStatus: 502, sizeStatus: 502, tooLarge: "response header section too large", base: 0)
        let end: Int
        let lines: Int
        switch scan {
        case .needMore: return .needMore
        case .error(let e): throw e
        case .complete(let e, let l): end = e; lines = l
        }

        try FieldLine.parseSection(buf, from: lf &+ 1, end: end, lines: lines, status: 502, base: 0, into: &storage.fields)
        let s = try FieldSummary.summarize(buf, storage.fields, status: 502, base: 0)

        if let teAt = s.transferEncodingAt {
            if s.contentLengthAt != nil {
                throw HTTPParseError(status: 502, reason: "Content-Length together with Transfer-Encoding", offset: teAt)
            }
            if s.codings == 0 {
                throw HTTPParseError(status: 502, reason: "empty Transfer-Encoding", offset: teAt)
            }
        }

        let status = line.status
        let framing: BodyFraming
        if requestWasHEAD || status < 200 || status == 204 || status == 304 {
            framing = .none
        } else if s.hasTransferEncoding {
            framing = s.lastCodingIsChunked ? .chunked : .untilClose
        } else if let length = s.contentLength {
            framing = .contentLength(length)
        } else {
            framing = .untilClose
        }

        let persistent = line.version == .http11 ? !s.connectionClose : (s.connectionKeepAlive && !s.connectionClose)
        storage.setBytes(UnsafeRawBufferPointer(rebasing: buf[0..<end]))
        let head = ResponseHead(
            bytes: storage.bytes,
            version: line.version, status: status, reason: line.reason, fields: storage.fields, framing: framing,
            keepAlive: persistent && framing != .untilClose, isUpgrade: status == 101,
            connectionNamesFields: s.connectionNamesFields)
        return .complete(head, consumed: end)
    }
}
