import Testing
@testable import WeirHTTP

@Suite("Response head")
struct ResponseHeadTests {
    @Test("status line: version, status, reason, fields")
    func statusLine() {
        guard let h = expectResponse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: x\r\n\r\n") else { return }
        #expect(h.version == .http11)
        #expect(h.status == 200)
        #expect(h.string(h.reason) == "OK")
        #expect(h.fields.count == 2)
        #expect(h.value(of: "server").map(h.string) == "x")
        #expect(h.fieldName(0, is: "content-length"))
        #expect(h.framing == .contentLength(3))
        #expect(h.keepAlive)
        #expect(!h.isUpgrade && !h.isInterim)
    }

    @Test("empty reason phrase, with and without the SP after the status code")
    func emptyReason() {
        #expect(expectResponse("HTTP/1.1 204 \r\n\r\n")?.status == 204)
        #expect(expectResponse("HTTP/1.1 204\r\n\r\n")?.status == 204)
        #expect(expectResponse("HTTP/1.0 200 Very Fine Thanks\r\nContent-Length: 0\r\n\r\n")?.version == .http10)
    }

    @Test("framing: HEAD request → none whatever the fields say")
    func framingHEAD() {
        #expect(expectResponse("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", requestWasHEAD: true)?.framing == BodyFraming.none)
        #expect(expectResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", requestWasHEAD: true)?.framing == BodyFraming.none)
        #expect(expectResponse("HTTP/1.1 200 OK\r\n\r\n", requestWasHEAD: true)?.keepAlive == true)
    }

    @Test("framing: 1xx, 204 and 304 → none")
    func framingNoBodyStatuses() {
        for status in [100, 102, 103, 204, 304] {
            let h = expectResponse("HTTP/1.1 \(status) X\r\nContent-Length: 10\r\n\r\n")
            #expect(h?.framing == BodyFraming.none, "\(status)")
        }
    }

    @Test("framing: Transfer-Encoding ending in chunked → chunked")
    func framingChunked() {
        #expect(expectResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing == .chunked)
        #expect(expectResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n")?.framing == .chunked)
    }

    @Test("framing: Transfer-Encoding not ending in chunked → untilClose (and not keepAlive)")
    func framingTENotChunked() {
        let h = expectResponse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")
        #expect(h?.framing == .untilClose)
        #expect(h?.keepAlive == false)
    }

    @Test("framing: Content-Length → contentLength; list of identical values accepted")
    func framingContentLength() {
        #expect(expectResponse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")?.framing == .contentLength(0))
        #expect(expectResponse("HTTP/1.1 404 Not Found\r\nContent-Length: 7, 7\r\n\r\n")?.framing == .contentLength(7))
    }

    @Test("framing: neither → close-delimited (untilClose), keepAlive false")
    func framingUntilClose() {
        let h = expectResponse("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        #expect(h?.framing == .untilClose)
        #expect(h?.keepAlive == false)
    }

    @Test("keepAlive: 1.1 unless close; 1.0 only with keep-alive")
    func keepAlive() {
        #expect(expectResponse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?.keepAlive == false)
        #expect(expectResponse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")?.keepAlive == false)
        #expect(expectResponse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n")?.keepAlive == true)
    }

    @Test("101 Switching Protocols is an upgrade, not interim")
    func upgrade101() {
        let h = expectResponse("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
        #expect(h?.isUpgrade == true)
        #expect(h?.isInterim == false)
        #expect(h?.framing == BodyFraming.none)
    }

    @Test("interim 100 Continue, followed by the final response in the same buffer")
    func interim100() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
        let bytes = Array(text.utf8)
        let r1 = bytes.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits()) }
        #expect(r1.head?.isInterim == true)
        #expect(r1.head?.status == 100)
        #expect(r1.consumed == 25)
        let rest = Array(bytes[25...])
        let r2 = rest.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits()) }
        #expect(r2.head?.status == 201)
        #expect(r2.head?.isInterim == false)
    }

    @Test("incremental: needMore for every proper prefix")
    func incremental() {
        let bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\n".utf8)
        for n in 0..<bytes.count {
            let r = Array(bytes[0..<n]).withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits()) }
            #expect(r.isNeedMore, "prefix \(n)")
        }
    }

    @Test("errors are 502: bad status line, bad status code, unsupported version")
    func badStatusLine() {
        expectResponseRejected("HTTP/1.1 20 OK\r\n\r\n", "status code")
        expectResponseRejected("HTTP/1.1 2000 OK\r\n\r\n", "status code")
        expectResponseRejected("HTTP/1.1 099 Low\r\n\r\n", "status code")
        expectResponseRejected("HTTP/1.1 600 High\r\n\r\n", "status code")
        expectResponseRejected("HTTP/1.1  200 OK\r\n\r\n")
        expectResponseRejected("HTTP/2.0 200 OK\r\n\r\n", "HTTP version")
        expectResponseRejected("HTTP/1.1 200 O\u{1}K\r\n\r\n", "control character")
        expectResponseRejected("SSH-2.0-OpenSSH\r\n\r\n")
        // Rejected before a whole line arrived.
        expectResponseRejected("<html>")
    }

    @Test("errors are 502: bare LF, obs-fold, bad field syntax")
    func badFields() {
        expectResponseRejected("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF")
        expectResponseRejected("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", "bare LF")
        expectResponseRejected("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "folding")
        expectResponseRejected("HTTP/1.1 200 OK\r\nX : a\r\n\r\n", "colon")
        expectResponseRejected("HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "bare CR")
    }

    @Test("errors are 502: invalid or differing Content-Length, CL with TE, chunked twice")
    func badFraming() {
        expectResponseRejected("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length")
        expectResponseRejected("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "differing")
        expectResponseRejected("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", "together")
        expectResponseRejected("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "more than once")
    }

    @Test("limits apply to responses too, reported as 502")
    func limits() {
        expectResponseRejected("HTTP/1.1 200 " + String(repeating: "O", count: 40), limits: ParserLimits(maxRequestLine: 32))
        expectResponseRejected("HTTP/1.1 200 OK\r\nX: " + String(repeating: "v", count: 80), limits: ParserLimits(maxHeaderBytes: 64))
        expectResponseRejected("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", limits: ParserLimits(maxHeaderCount: 1))
    }
}
