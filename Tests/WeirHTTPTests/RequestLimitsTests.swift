import Testing
@testable import WeirHTTP

@Suite("Request head: limits")
struct RequestLimitsTests {
    @Test("rule: request line longer than maxRequestLine → 414, also while incomplete")
    func requestLineTooLong() {
        let limits = ParserLimits(maxRequestLine: 32)
        let longTarget = "/" + String(repeating: "a", count: 40)
        expectRejected("GET \(longTarget) HTTP/1.1\r\nHost: a\r\n\r\n", status: 414, limits: limits)
        // Incomplete: no CRLF yet but already more than maxRequestLine bytes.
        expectRejected("GET \(longTarget)", status: 414, limits: limits)
        // Below the limit and incomplete: still waiting.
        #expect(parseRequest("GET /aaaa", limits: limits).isNeedMore)
    }

    @Test("request line of exactly maxRequestLine bytes is accepted; one more is 414")
    func requestLineBoundary() {
        let line = "GET /" + String(repeating: "x", count: 27) + " HTTP/1.1"  // 41 bytes
        #expect(line.utf8.count == 41)
        #expect(expectRequest(line + "\r\nHost: a\r\n\r\n", limits: ParserLimits(maxRequestLine: 41)) != nil)
        expectRejected(line + "\r\nHost: a\r\n\r\n", status: 414, limits: ParserLimits(maxRequestLine: 40))
        // Exactly at the limit but CRLF not yet arrived: still needMore.
        #expect(parseRequest(line + "\r", limits: ParserLimits(maxRequestLine: 41)).isNeedMore)
        #expect(parseRequest(line, limits: ParserLimits(maxRequestLine: 41)).isNeedMore)
    }

    @Test("rule: head longer than maxHeaderBytes → 431, also while incomplete")
    func headTooLarge() {
        let limits = ParserLimits(maxHeaderBytes: 64)
        let head = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "b", count: 60) + "\r\n\r\n"
        expectRejected(head, status: 431, limits: limits)
        // Incomplete head already over the limit.
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "b", count: 60), status: 431, limits: limits)
        #expect(parseRequest("GET / HTTP/1.1\r\nHost: a\r\n", limits: limits).isNeedMore)
    }

    @Test("head of exactly maxHeaderBytes is accepted; one byte less limit is 431")
    func headBoundary() {
        let head = "GET / HTTP/1.1\r\nHost: a\r\nX: 12345\r\n\r\n"
        let n = head.utf8.count
        #expect(expectRequest(head, limits: ParserLimits(maxHeaderBytes: n)) != nil)
        expectRejected(head, status: 431, limits: ParserLimits(maxHeaderBytes: n - 1))
    }

    @Test("rule: more than maxHeaderCount fields → 431, also while incomplete")
    func tooManyFields() {
        let limits = ParserLimits(maxHeaderCount: 3)
        expectRequest("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", limits: limits)
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", status: 431, "too many", limits: limits)
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n", status: 431, limits: limits)
    }

    @Test("defaults: 8192 / 65536 / 100")
    func defaults() {
        let l = ParserLimits()
        #expect(l.maxRequestLine == 8192 && l.maxHeaderBytes == 65536 && l.maxHeaderCount == 100)
    }

    @Test("an endless run of empty lines before the request line is rejected")
    func endlessEmptyLines() {
        let text = String(repeating: "\r\n", count: 20)
        expectRejected(text, "empty lines", limits: ParserLimits(maxRequestLine: 16))
    }
}

@Suite("Request head: incremental feeding and pipelining")
struct RequestIncrementalTests {
    static let request = "\r\nPOST /upload?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Length: 11\r\nConnection: keep-alive\r\nX-Trace:\tabc \r\n\r\n"

    @Test("feeding one byte at a time: needMore until the last byte, then complete with the right consumed count")
    func byteByByte() {
        let bytes = Array(Self.request.utf8)
        for n in 0..<bytes.count {
            let r = parseRequest(bytes: Array(bytes[0..<n]))
            #expect(r.isNeedMore, "prefix of \(n) bytes gave \(r)")
        }
        let r = parseRequest(bytes: bytes)
        #expect(r.consumed == bytes.count)
        #expect(r.head?.framing == .contentLength(11))
        #expect(r.head?.string(r.head!.fields[3].value) == "abc")
    }

    @Test("body bytes after the head are not consumed")
    func bodyFollows() {
        let text = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
        let r = parseRequest(text)
        #expect(r.consumed == text.utf8.count - 5)
        #expect(r.head?.bytes.count == text.utf8.count - 5)
    }

    @Test("pipelined requests: consumed stops at the end of the first head; the rest parses next")
    func pipelined() {
        let first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
        let second = "GET /two HTTP/1.1\r\nHost: b\r\n\r\n"
        let bytes = Array((first + second + "GET /thr").utf8)
        let r1 = parseRequest(bytes: bytes)
        #expect(r1.consumed == first.utf8.count)
        #expect(r1.head?.targetString == "/one")
        let rest = Array(bytes[r1.consumed!...])
        let r2 = parseRequest(bytes: rest)
        #expect(r2.consumed == second.utf8.count)
        #expect(r2.head?.targetString == "/two")
        #expect(r2.head?.host.map { r2.head!.string($0) } == "b")
        #expect(parseRequest(bytes: Array(rest[r2.consumed!...])).isNeedMore)
    }

    @Test("errors carry the offset of the offending byte")
    func errorOffset() {
        let text = "GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n"
        let e = parseRequest(text).parseError
        #expect(e?.status == 400)
        #expect(e?.offset == "GET / HTTP/1.1\r\nHost: a\r\nBad".utf8.count)
        let lf = parseRequest("GET / HTTP/1.1\nHost").parseError
        #expect(lf?.offset == 14)
    }

    @Test("error offsets count skipped leading empty lines")
    func errorOffsetWithLeadingCRLF() {
        let e = parseRequest("\r\nGET  / HTTP/1.1\r\n").parseError
        #expect(e?.offset == 6)
    }
}
