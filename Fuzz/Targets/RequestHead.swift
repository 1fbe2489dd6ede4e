// libFuzzer target: RequestHeadParser on arbitrary bytes (what a client may send).
//
// Invariants beyond "never crash":
// - a complete head is exactly the input bytes it claims (`consumed` ≤ input length), starts with a
//   valid request line, holds only well-formed field lines, and its framing / Host / flags agree
//   with its fields (checkRequest);
// - arriving in pieces changes nothing: every prefix shorter than a complete head is `.needMore`, a
//   prefix that completes does so exactly as the whole input, a prefix that fails means the whole
//   input fails too (checkPrefixes);
// - stricter limits only ever turn a result into an error, never into a different head (checkLimits);
// - a complete head re-serialised canonically ("name: value") reparses to the same request.
import WeirHTTP

let defaultLimits = ParserLimits()
/// Small enough that the fuzzer reaches every limit with short inputs.
let smallLimits = ParserLimits(maxRequestLine: 40, maxHeaderBytes: 160, maxHeaderCount: 5)
/// For the re-serialised head, which may be a few bytes longer than the original.
let hugeLimits = ParserLimits(maxRequestLine: 1 << 24, maxHeaderBytes: 1 << 26, maxHeaderCount: 1 << 20)
let requestStatuses: Set<Int> = [400, 414, 431, 505]

func parse(_ bytes: [UInt8], _ limits: ParserLimits) -> ParseResult<RequestHead> {
    bytes.withUnsafeBytes { RequestHeadParser.parse($0, limits: limits) }
}

/// Number of bytes taken by the empty lines (CRLF pairs) before the request line.
func leadingEmptyLines(_ input: [UInt8]) -> Int {
    var i = 0
    while i + 1 < input.count && input[i] == 13 && input[i + 1] == 10 { i += 2 }
    return i
}

func containsEndOfHead(_ bytes: ArraySlice<UInt8>) -> Bool {
    let b = Array(bytes)
    guard b.count >= 4 else { return false }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return true }
    return false
}

func describe(_ r: ParseResult<RequestHead>) -> String {
    switch r {
    case .needMore: return "needMore"
    case .error(let e): return "error(\(e))"
    case .complete(let h, let c): return "complete(consumed: \(c), \(show(h.bytes)))"
    }
}

/// Two results describe the same outcome (same head bytes and consumed, or same error status and reason).
func same(_ a: ParseResult<RequestHead>, _ b: ParseResult<RequestHead>) -> Bool {
    switch (a, b) {
    case (.needMore, .needMore): return true
    case (.error(let x), .error(let y)): return x.status == y.status && x.reason == y.reason && x.offset == y.offset
    case (.complete(let x, let cx), .complete(let y, let cy)):
        return cx == cy && x.bytes == y.bytes && fieldPairs(x) == fieldPairs(y) && x.framing == y.framing
            && x.keepAlive == y.keepAlive && x.isUpgrade == y.isUpgrade && x.expectsContinue == y.expectsContinue
    default: return false
    }
}

func checkRequest(_ result: ParseResult<RequestHead>, input: [UInt8], limits: ParserLimits) {
    let skip = leadingEmptyLines(input)
    switch result {
    case .error(let e):
        checkError(e, inputCount: input.count, allowed: requestStatuses)
    case .needMore:
        require(!containsEndOfHead(input[skip...]), "needMore although the head is complete: \(show(input))")
        require(input.count - skip <= limits.maxHeaderBytes, "needMore beyond maxHeaderBytes (\(input.count - skip) bytes buffered)")
    case .complete(let head, let consumed):
        let b = head.bytes
        require(consumed == skip + b.count, "consumed \(consumed) != \(skip) empty-line bytes + head \(b.count)")
        checkHeadBytes(head, input: input, start: skip, consumed: consumed)
        require(b.count <= limits.maxHeaderBytes, "head of \(b.count) bytes exceeds maxHeaderBytes")
        require(head.fields.count <= limits.maxHeaderCount, "\(head.fields.count) fields exceed maxHeaderCount")
        // Request line: method SP target SP HTTP-version CRLF.
        let m = head.method, t = head.target
        require(m.lowerBound == 0 && !m.isEmpty && slice(b, m).allSatisfy(isTChar), "bad method \(show(slice(b, m)))")
        require(b[m.upperBound] == 0x20 && t.lowerBound == m.upperBound + 1 && !t.isEmpty, "bad method/target layout")
        require(slice(b, t).allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != 0x23 }, "bad target \(show(slice(b, t)))")
        let version = Array((head.version == .http11 ? "HTTP/1.1\r\n" : "HTTP/1.0\r\n").utf8)
        let lineEnd = t.upperBound + 1 + version.count
        require(b[t.upperBound] == 0x20 && lineEnd <= b.count && Array(b[(t.upperBound + 1)..<lineEnd]) == version,
                "request line does not end with SP \(head.version) CRLF")
        require(t.upperBound + 9 <= limits.maxRequestLine, "request line longer than maxRequestLine")
        if let f = head.fields.first { require(f.name.lowerBound == lineEnd, "first field does not follow the request line") }
        // Host: exactly one in HTTP/1.1, at most one in HTTP/1.0, and `host` is its value.
        let hosts = head.fields.indices.filter { head.fieldName($0, is: "host") }
        require(hosts.count <= 1, "\(hosts.count) Host fields accepted")
        require(head.host == hosts.first.map { head.fields[$0].value }, "host range is not the Host field's value")
        if head.version == .http11 { require(head.host != nil, "HTTP/1.1 request without Host accepted") }
        // Framing agrees with the fields (no smuggling: never both, TE only in 1.1 and only ending in chunked).
        let hasCL = hasField(head, "content-length"), hasTE = hasField(head, "transfer-encoding")
        switch head.framing {
        case .none: require(!hasCL && !hasTE, "framing none with Content-Length or Transfer-Encoding")
        case .contentLength(let n): require(n >= 0 && hasCL && !hasTE, "framing contentLength(\(n)) disagrees with fields")
        case .chunked: require(hasTE && !hasCL && head.version == .http11, "framing chunked disagrees with fields")
        case .untilClose: invariantBroken("request framed untilClose", file: #fileID, line: #line)
        }
        if !hasField(head, "connection") { require(head.keepAlive == (head.version == .http11), "keepAlive without Connection field") }
        if head.isUpgrade { require(hasField(head, "upgrade") && hasField(head, "connection"), "isUpgrade without fields") }
        if head.expectsContinue { require(head.version == .http11 && hasField(head, "expect"), "expectsContinue without Expect") }
        require(head.isHEAD == (slice(b, m) == Array("HEAD".utf8)), "isHEAD disagrees with method")
        require(head.isCONNECT == (slice(b, m) == Array("CONNECT".utf8)), "isCONNECT disagrees with method")
    }
}

/// Parsing any prefix must agree with parsing the whole: the parser is stateless, so a caller that
/// re-parses as bytes arrive sees `.needMore` until the head is complete, and a prefix that already
/// completes or fails must give the final answer.
func checkPrefixes(_ input: [UInt8], whole: ParseResult<RequestHead>, limits: ParserLimits, rng: inout SplitMix64) {
    if case .complete(_, let consumed) = whole {
        require(same(parse(Array(input[0..<consumed]), limits), whole), "head alone parses differently from head + rest")
    }
    for k in splitPoints(count: input.count, rng: &rng) {
        let prefix = parse(Array(input[0..<k]), limits)
        switch (prefix, whole) {
        case (.needMore, .complete(_, let consumed)):
            require(k < consumed, "prefix of \(k) bytes needs more although the head ends at \(consumed)")
        case (.needMore, _):
            break
        case (.complete(_, let consumed), .complete(_, let wholeConsumed)) where consumed == wholeConsumed:
            require(same(prefix, whole), "prefix of \(k) bytes completes differently: \(describe(prefix)) vs \(describe(whole))")
        case (.error, .error):
            // Once rejected, never accepted. Status and reason may differ: a short prefix is rejected by the
            // cheap early checks (e.g. 400 "invalid method"), the whole by the first complete-line check
            // (e.g. 414); a caller only ever sees the first.
            break
        default:
            invariantBroken("prefix of \(k) bytes: \(describe(prefix)), whole input: \(describe(whole)) for \(show(input))",
                            file: #fileID, line: #line)
        }
    }
}

/// A head accepted under the default limits that also fits the small limits must be accepted the same
/// way under them; whatever the small limits accept, the default limits accept identically.
func checkLimits(_ input: [UInt8], whole: ParseResult<RequestHead>, small: ParseResult<RequestHead>) {
    if case .complete = small {
        require(same(small, whole), "small limits accept \(describe(small)) but default limits give \(describe(whole))")
    }
    if case .complete(let head, _) = whole, leadingEmptyLines(input) <= smallLimits.maxRequestLine,
       head.target.upperBound + 9 <= smallLimits.maxRequestLine, head.bytes.count <= smallLimits.maxHeaderBytes,
       head.fields.count <= smallLimits.maxHeaderCount {
        require(same(small, whole), "head within the small limits rejected by them: \(describe(small))")
    }
}

/// The canonical re-serialisation of a complete head reparses to the same request.
func checkReserialised(_ head: RequestHead) {
    let b = head.bytes
    var out = slice(b, head.method) + [0x20] + slice(b, head.target)
    out += Array((head.version == .http11 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n").utf8)
    out += serializeFields(head)
    guard case .complete(let again, let consumed) = parse(out, hugeLimits) else {
        invariantBroken("re-serialised head rejected: \(describe(parse(out, hugeLimits))) for \(show(out))", file: #fileID, line: #line)
    }
    require(consumed == out.count && again.bytes == out, "re-serialised head consumed \(consumed) of \(out.count)")
    require(slice(again.bytes, again.method) == slice(b, head.method) && slice(again.bytes, again.target) == slice(b, head.target)
            && again.version == head.version, "re-serialised request line differs")
    require(fieldPairs(again) == fieldPairs(head), "re-serialised fields differ")
    require(again.framing == head.framing && again.keepAlive == head.keepAlive && again.isUpgrade == head.isUpgrade
            && again.expectsContinue == head.expectsContinue, "re-serialised head has different semantics")
    require(again.host.map { slice(again.bytes, $0) } == head.host.map { slice(b, $0) }, "re-serialised Host differs")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRequestHead(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = inputBytes(data, size)
    var rng = SplitMix64(seededBy: input)
    let whole = parse(input, defaultLimits)
    checkRequest(whole, input: input, limits: defaultLimits)
    checkPrefixes(input, whole: whole, limits: defaultLimits, rng: &rng)
    let small = parse(input, smallLimits)
    checkRequest(small, input: input, limits: smallLimits)
    checkPrefixes(input, whole: small, limits: smallLimits, rng: &rng)
    checkLimits(input, whole: whole, small: small)
    if case .complete(let head, _) = whole { checkReserialised(head) }
    return 0
}
