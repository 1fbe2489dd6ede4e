import Testing
@testable import WeirHTTP

/// The issue-8 request rules as the parser sees them (what is forwarded is tested in HeadRewriterTests).
@Suite("Request rules (issue 8)")
struct RequestRulesTests {
    // MARK: Transfer-Encoding list elements (RFC 9110 §5.6.1)

    @Test("rule: empty Transfer-Encoding list elements are ignored; a list of only empties → 400")
    func transferEncodingEmptyElements() {
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, ,\r\n\r\n")?.framing == .chunked)
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\n\r\n")?.framing == .chunked)
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\nTransfer-Encoding: gzip,,chunked\r\n\r\n")?.framing == .chunked)
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , ,\r\n\r\n", "empty Transfer-Encoding")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, , gzip\r\n\r\n", "does not end with chunked")
    }

    @Test("forEachListElement yields the non-empty OWS-trimmed elements in order")
    func listElements() {
        guard let h = expectRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , gzip ,,\tchunked , \r\n\r\n"),
              let te = h.value(of: "transfer-encoding") else { return }
        var seen: [String] = []
        h.forEachListElement(te) { seen.append(h.string($0)) }
        #expect(seen == ["gzip", "chunked"])
        var none = 0
        h.forEachListElement(te.lowerBound..<te.lowerBound) { _ in none += 1 }
        #expect(none == 0)
    }

    // MARK: Chunk sizes (RFC 9112 §7.1)

    @Test("rule: leading zeros in a chunk size are valid; the value is bounded, not the digits")
    func chunkSizeLeadingZeros() {
        let run = runChunked("000000000000000000005\r\nhello\r\n0000000000000000000000000\r\n\r\n")
        #expect(run.error == nil)
        #expect(String(decoding: run.data, as: UTF8.self) == "hello")
        #expect(run.end != nil)
        var d = ChunkedDecoder()
        let zeros = String(repeating: "0", count: 100)
        let step = Array((zeros + "7fffffffffffffff\r\n").utf8).withUnsafeBytes { d.step($0) }
        #expect(step == .framing(118))
        #expect(runChunked(zeros + "10000000000000000\r\n").error?.reason.contains("too large") == true)
        #expect(runChunked("0008000000000000000\r\n").error?.reason.contains("too large") == true)
        // The line itself stays bounded (4096 bytes).
        #expect(runChunked(String(repeating: "0", count: 5000) + "1\r\n").error?.reason.contains("too long") == true)
    }

    // MARK: h2c (RFC 9113 §3.1)

    @Test("rule: an Upgrade offering only h2c is not an upgrade; other protocols next to h2c still are")
    func h2cIsNotAnUpgrade() {
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")?.isUpgrade == false)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: H2C, \r\n\r\n")?.isUpgrade == false)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: ,\r\n\r\n")?.isUpgrade == false)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c, websocket\r\n\r\n")?.isUpgrade == true)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\nUpgrade: websocket\r\n\r\n")?.isUpgrade == true)
    }

    // MARK: absolute-form authority (RFC 9112 §3.2.2, RFC 9110 §4.2)

    @Test("absoluteFormAuthority is the authority of an absolute-form target, nil for other forms")
    func absoluteFormAuthority() {
        func authority(_ target: String) -> String? {
            guard let h = expectRequest("GET \(target) HTTP/1.1\r\nHost: other\r\n\r\n") else { return "unparsed" }
            return h.absoluteFormAuthority.map(h.string)
        }
        #expect(authority("http://example.test:8080/x?y") == "example.test:8080")
        #expect(authority("HTTPS://Example.test?q") == "Example.test")
        #expect(authority("http://[::1]:81") == "[::1]:81")
        #expect(authority("/x") == nil)
        #expect(expectRequest("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")?.absoluteFormAuthority == nil)
        #expect(expectRequest("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n")?.absoluteFormAuthority == nil)
    }

    @Test("rule: absolute-form with userinfo, an empty host or a non-host byte in the authority → 400")
    func absoluteFormAuthorityRejected() {
        expectRejected("GET http://user:pw@example.test/x HTTP/1.1\r\nHost: a\r\n\r\n", "userinfo")
        expectRejected("GET http://@example.test/x HTTP/1.1\r\nHost: a\r\n\r\n", "userinfo")
        expectRejected("GET http://:8080/x HTTP/1.1\r\nHost: a\r\n\r\n", "empty host")
        expectRejected("GET http://exa\"mple/x HTTP/1.1\r\nHost: a\r\n\r\n", "authority")
    }
}
