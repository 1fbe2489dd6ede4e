import Testing
@testable import WeirHTTP

/// Parses `text` (use "\r\n" explicitly) as a request head.
func parseRequest(_ text: String, limits: ParserLimits = ParserLimits()) -> ParseResult<RequestHead> {
    parseRequest(bytes: Array(text.utf8), limits: limits)
}

func parseRequest(bytes: [UInt8], limits: ParserLimits = ParserLimits()) -> ParseResult<RequestHead> {
    bytes.withUnsafeBytes { RequestHeadParser.parse($0, limits: limits) }
}

/// Parses `text` as a response head answering a request that was HEAD or not.
func parseResponse(_ text: String, requestWasHEAD: Bool = false, limits: ParserLimits = ParserLimits()) -> ParseResult<ResponseHead> {
    Array(text.utf8).withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: requestWasHEAD, limits: limits) }
}

extension ParseResult {
    var head: Head? {
        if case .complete(let h, _) = self { return h }
        return nil
    }
    var consumed: Int? {
        if case .complete(_, let c) = self { return c }
        return nil
    }
    var parseError: HTTPParseError? {
        if case .error(let e) = self { return e }
        return nil
    }
    var isNeedMore: Bool {
        if case .needMore = self { return true }
        return false
    }
}

/// Expects `text` to parse as a complete request head and returns it.
@discardableResult
func expectRequest(_ text: String, limits: ParserLimits = ParserLimits(),
                   sourceLocation: SourceLocation = #_sourceLocation) -> RequestHead? {
    let result = parseRequest(text, limits: limits)
    guard let head = result.head else {
        Issue.record("expected a complete head, got \(result)", sourceLocation: sourceLocation)
        return nil
    }
    #expect(result.consumed == text.utf8.count, sourceLocation: sourceLocation)
    return head
}

/// Expects `text` to be rejected with `status`, and the reason to contain `reasonFragment` when given.
@discardableResult
func expectRejected(_ text: String, status: Int = 400, _ reasonFragment: String? = nil,
                    limits: ParserLimits = ParserLimits(),
                    sourceLocation: SourceLocation = #_sourceLocation) -> HTTPParseError? {
    let result = parseRequest(text, limits: limits)
    guard let error = result.parseError else {
        Issue.record("expected error \(status), got \(result)", sourceLocation: sourceLocation)
        return nil
    }
    #expect(error.status == status, "\(error)", sourceLocation: sourceLocation)
    if let fragment = reasonFragment {
        #expect(error.reason.contains(fragment), "reason was: \(error.reason)", sourceLocation: sourceLocation)
    }
    return error
}

/// Expects `text` to be rejected as a response (status 502).
@discardableResult
func expectResponseRejected(_ text: String, _ reasonFragment: String? = nil, requestWasHEAD: Bool = false,
                            limits: ParserLimits = ParserLimits(),
                            sourceLocation: SourceLocation = #_sourceLocation) -> HTTPParseError? {
    let result = parseResponse(text, requestWasHEAD: requestWasHEAD, limits: limits)
    guard let error = result.parseError else {
        Issue.record("expected error 502, got \(result)", sourceLocation: sourceLocation)
        return nil
    }
    #expect(error.status == 502, "\(error)", sourceLocation: sourceLocation)
    if let fragment = reasonFragment {
        #expect(error.reason.contains(fragment), "reason was: \(error.reason)", sourceLocation: sourceLocation)
    }
    return error
}

/// Expects a complete response head and returns it.
@discardableResult
func expectResponse(_ text: String, requestWasHEAD: Bool = false,
                    sourceLocation: SourceLocation = #_sourceLocation) -> ResponseHead? {
    let result = parseResponse(text, requestWasHEAD: requestWasHEAD)
    guard let head = result.head else {
        Issue.record("expected a complete head, got \(result)", sourceLocation: sourceLocation)
        return nil
    }
    #expect(result.consumed == text.utf8.count, sourceLocation: sourceLocation)
    return head
}
