// libFuzzer target: ResponseHeadParser on arbitrary bytes (what a backend server may send).
//
// Invariants beyond "never crash":
// - a complete head is exactly the input bytes it claims, starts with a valid status line, holds only
//   well-formed field lines; framing follows RFC 9112 §6.3 and keepAlive is never set for a body that
//   lasts until close (checkResponse);
// - the request having been HEAD changes only the framing (to none), never whether or where the head
//   parses;
// - arriving in pieces changes nothing (as for requests: checkPrefixes);
// - stricter limits only ever turn a result into an error;
// - a complete head re-serialised canonically reparses to the same response.
import WeirHTTP

let defaultLimits = ParserLimits()
let smallLimits = ParserLimits(maxRequestLine: 40, maxHeaderBytes: 160, maxHeaderCount: 5)
let hugeLimits = ParserLimits(maxRequestLine: 1 << 24, maxHeaderBytes: 1 << 26, maxHeaderCount: 1 << 20)

func parse(_ bytes: [UInt8], head: Bool, _ limits: ParserLimits) -> ParseResult<ResponseHead> {
    bytes.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: head, limits: limits) }
}

func describe(_ r: ParseResult<ResponseHead>) -> String {
    switch r {
    case .needMore: return "needMore"
    case .error(let e): return "error(\(e))"
    case .complete(let h, let c): return "complete(consumed: \(c), \(show(h.bytes)))"
    }
}

/// Same outcome; `framing` and `keepAlive` compared only when `semantics` (they depend on requestWasHEAD).
func same(_ a: ParseResult<ResponseHead>, _ b: ParseResult<ResponseHead>, semantics: Bool = true) -> Bool {
    switch (a, b) {
    case (.needMore, .needMore): return true
    case (.error(let x), .error(let y)): return x == y
    case (.complete(let x, let cx), .complete(let y, let cy)):
        return cx == cy && x.bytes == y.bytes && fieldPairs(x) == fieldPairs(y) && x.status == y.status
            && x.version == y.version && x.reason == y.reason && x.isUpgrade == y.isUpgrade
            && (!semantics || (x.framing == y.framing && x.keepAlive == y.keepAlive))
    default: return false
    }
}

func containsEndOfHead(_ b: [UInt8]) -> Bool {
    guard b.count >= 4 else { return false }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return true }
    return false
}

func checkResponse(_ result: ParseResult<ResponseHead>, input: [UInt8], head requestWasHEAD: Bool, limits: ParserLimits) {
    switch result {
    case .error(let e):
        checkError(e, inputCount: input.count, allowed: [502])
    case .needMore:
        require(!containsEndOfHead(input), "needMore although the head is complete: \(show(input))")
        require(input.count <= limits.maxHeaderBytes, "needMore beyond maxHeaderBytes (\(input.count) bytes buffered)")
    case .complete(let h, let consumed):
        let b = h.bytes
        require(consumed == b.count, "consumed \(consumed) != head length \(b.count)")
        checkHeadBytes(h, input: input, start: 0, consumed: consumed)
        require(b.count <= limits.maxHeaderBytes && h.fields.count <= limits.maxHeaderCount, "head exceeds the limits")
        // Status line: HTTP-version SP 3DIGIT [SP reason] CRLF.
        let version = Array((h.version == .http11 ? "HTTP/1.1 " : "HTTP/1.0 ").utf8)
        require(Array(b.prefix(9)) == version, "status line does not start with \(show(version))")
        let digits = Array(String(h.status).utf8)
        require((100...599).contains(h.status) && Array(b[9..<12]) == digits, "status \(h.status) is not the status line's code")
        require(h.reason.upperBound <= b.count && b[h.reason.upperBound] == 13, "reason does not end the status line")
        require(h.reason.upperBound <= limits.maxRequestLine, "status line longer than the limit")
        require(slice(b, h.reason).allSatisfy(isFieldValueByte), "reason holds a forbidden byte")
        if let f = h.fields.first { require(f.name.lowerBound == h.reason.upperBound + 2, "first field does not follow the status line") }
        // Framing, RFC 9112 §6.3.
        let hasCL = hasField(h, "content-length"), hasTE = hasField(h, "transfer-encoding")
        require(!(hasCL && hasTE), "Content-Length together with Transfer-Encoding accepted")
        let noBody = requestWasHEAD || h.status < 200 || h.status == 204 || h.status == 304
        switch h.framing {
        case .none: require(noBody, "framing none for status \(h.status) of a non-HEAD request")
        case .contentLength(let n): require(!noBody && n >= 0 && hasCL, "framing contentLength(\(n)) disagrees")
        case .chunked: require(!noBody && hasTE, "framing chunked disagrees")
        case .untilClose: require(!noBody && !hasCL, "framing untilClose disagrees")
        }
        if noBody { require(h.framing == .none, "body framed for status \(h.status) / HEAD") }
        if h.framing == .untilClose { require(!h.keepAlive, "keepAlive with a body that lasts until close") }
        require(h.isUpgrade == (h.status == 101), "isUpgrade disagrees with status")
        require(h.isInterim == (h.status >= 100 && h.status < 200 && h.status != 101), "isInterim disagrees with status")
    }
}

func checkPrefixes(_ input: [UInt8], whole: ParseResult<ResponseHead>, limits: ParserLimits, rng: inout SplitMix64) {
    if case .complete(_, let consumed) = whole {
        require(same(parse(Array(input[0..<consumed]), head: false, limits), whole), "head alone parses differently from head + rest")
    }
    for k in splitPoints(count: input.count, rng: &rng) {
        let prefix = parse(Array(input[0..<k]), head: false, limits)
        switch (prefix, whole) {
        case (.needMore, .complete(_, let consumed)):
            require(k < consumed, "prefix of \(k) bytes needs more although the head ends at \(consumed)")
        case (.needMore, _), (.error, .error):
            break  // Once rejected, never accepted (the first error seen may differ, see RequestHead.swift).
        case (.complete(_, let c), .complete(_, let wc)) where c == wc:
            require(same(prefix, whole), "prefix of \(k) bytes completes differently")
        default:
            invariantBroken("prefix of \(k) bytes: \(describe(prefix)), whole: \(describe(whole)) for \(show(input))",
                            file: #fileID, line: #line)
        }
    }
}

func checkReserialised(_ h: ResponseHead) {
    let b = h.bytes
    var out = Array((h.version == .http11 ? "HTTP/1.1 " : "HTTP/1.0 ").utf8) + Array(String(h.status).utf8)
    if !h.reason.isEmpty { out += [0x20] + slice(b, h.reason) }
    out += [13, 10] + serializeFields(h)
    let again = parse(out, head: false, hugeLimits)
    guard case .complete(let r, let consumed) = again else {
        invariantBroken("re-serialised head rejected: \(describe(again)) for \(show(out))", file: #fileID, line: #line)
    }
    require(consumed == out.count, "re-serialised head consumed \(consumed) of \(out.count)")
    require(r.status == h.status && r.version == h.version && slice(r.bytes, r.reason) == slice(b, h.reason),
            "re-serialised status line differs")
    require(fieldPairs(r) == fieldPairs(h) && r.framing == h.framing && r.keepAlive == h.keepAlive,
            "re-serialised head has different fields or semantics")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzResponseHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = inputBytes(data, size)
    var rng = SplitMix64(seededBy: input)
    let whole = parse(input, head: false, defaultLimits)
    checkResponse(whole, input: input, head: false, limits: defaultLimits)
    let afterHEAD = parse(input, head: true, defaultLimits)
    checkResponse(afterHEAD, input: input, head: true, limits: defaultLimits)
    require(same(whole, afterHEAD, semantics: false), "HEAD changes more than framing: \(describe(whole)) vs \(describe(afterHEAD))")
    checkPrefixes(input, whole: whole, limits: defaultLimits, rng: &rng)
    let small = parse(input, head: false, smallLimits)
    checkResponse(small, input: input, head: false, limits: smallLimits)
    checkPrefixes(input, whole: small, limits: smallLimits, rng: &rng)
    if case .complete = small { require(same(small, whole), "small limits accept what default limits parse differently") }
    if case .complete(let h, _) = whole {
        if h.reason.upperBound <= smallLimits.maxRequestLine && h.bytes.count <= smallLimits.maxHeaderBytes
            && h.fields.count <= smallLimits.maxHeaderCount {
            require(same(small, whole), "head within the small limits rejected by them: \(describe(small))")
        }
        checkReserialised(h)
    }
    return 0
}
