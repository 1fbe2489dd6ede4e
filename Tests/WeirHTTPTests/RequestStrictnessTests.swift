import Testing
@testable import WeirHTTP

/// One test per rejection rule of the request parser (RFC 9112 / RFC 9110).
@Suite("Request head: strictness rules")
struct RequestStrictnessTests {
    // MARK: Framing fields

    @Test("rule: Content-Length together with Transfer-Encoding → 400")
    func contentLengthWithTransferEncoding() {
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                       "Content-Length together with Transfer-Encoding")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
                       "Content-Length together with Transfer-Encoding")
    }

    @Test("rule: differing Content-Length values (two fields or list form) → 400")
    func differingContentLength() {
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "differing Content-Length")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", "differing Content-Length")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,5\r\nContent-Length: 7\r\n\r\n", "differing Content-Length")
    }

    @Test("rule: identical Content-Length repeats are accepted (\"5, 5\" and two fields \"5\")")
    func identicalContentLength() {
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n")?.framing == .contentLength(5))
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")?.framing == .contentLength(5))
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")?.framing == .contentLength(0))
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\n\r\n")?.framing == .contentLength(42))
    }

    @Test("rule: invalid Content-Length (non-digits, sign, empty, overflow) → 400",
          arguments: ["abc", "5a", "+5", "-5", "", " ", "5.0", "0x10", "5,", ",5", "5 5",
                      "99999999999999999999", "9223372036854775808"])
    func invalidContentLength(value: String) {
        let error = expectRejected("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(value)\r\n\r\n")
        #expect(error?.reason.contains("Content-Length") == true)
    }

    @Test("rule: Content-Length up to Int.max is accepted")
    func largestContentLength() {
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9223372036854775807\r\n\r\n")?.framing == .contentLength(Int.max))
    }

    @Test("rule: Transfer-Encoding whose last coding is not chunked → 400")
    func transferEncodingNotEndingInChunked() {
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "does not end with chunked")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "does not end with chunked")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", "does not end with chunked")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", "does not end with chunked")
    }

    @Test("rule: chunked applied more than once → 400")
    func chunkedTwice() {
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "more than once")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", "more than once")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip, chunked\r\n\r\n", "more than once")
    }

    @Test("rule: Transfer-Encoding ending in chunked is accepted (case-insensitive, after other codings)")
    func chunkedAccepted() {
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing == .chunked)
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n")?.framing == .chunked)
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")?.framing == .chunked)
        #expect(expectRequest("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n")?.framing == .chunked)
    }

    @Test("rule: empty or malformed Transfer-Encoding → 400")
    func malformedTransferEncoding() {
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", "empty Transfer-Encoding")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", "parameters")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", "Transfer-Encoding")
        expectRejected("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun ked\r\n\r\n", "Transfer-Encoding")
    }

    @Test("rule: Transfer-Encoding in an HTTP/1.0 request → 400")
    func transferEncodingInHTTP10() {
        expectRejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0")
    }

    // MARK: Field line syntax

    @Test("rule: obs-fold (field line starting with SP or HTAB) → 400")
    func obsFold() {
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n", "folding")
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n\ttwo\r\n\r\n", "folding")
        // Whitespace between the request line and the first field line.
        expectRejected("GET / HTTP/1.1\r\n Host: a\r\n\r\n", "folding")
    }

    @Test("rule: whitespace between field name and colon → 400")
    func whitespaceBeforeColon() {
        expectRejected("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace between header field name and colon")
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nContent-Length\t: 5\r\n\r\n", "whitespace between header field name and colon")
    }

    @Test("rule: bare LF in the request line or field lines → 400")
    func bareLF() {
        expectRejected("GET / HTTP/1.1\nHost: a\r\n\r\n", "bare LF")
        expectRejected("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", "bare LF")
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\n\n", "bare LF")
        expectRejected("GET / HTTP/1.1\r\nHost: a\n\n", "bare LF")
        expectRejected("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bare LF")
    }

    @Test("rule: bare CR in the request line or field lines → 400")
    func bareCR() {
        expectRejected("GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", "bare CR")
        expectRejected("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", "bare CR")
        expectRejected("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", "bare CR")
        expectRejected("GET / HTTP/1.1\r\nHo\rst: a\r\n\r\n", "bare CR")
        expectRejected("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bare CR")
    }

    @Test("rule: control characters other than HTAB in field values → 400")
    func controlCharactersInValue() {
        for ctl: UInt8 in [0x01, 0x07, 0x08, 0x0B, 0x0C, 0x1B, 0x1F, 0x7F] {
            var bytes = Array("GET / HTTP/1.1\r\nHost: a\r\nX: a".utf8)
            bytes.append(ctl)
            bytes += Array("b\r\n\r\n".utf8)
            let e = parseRequest(bytes: bytes).parseError
            #expect(e?.status == 400, "CTL \(ctl)")
            #expect(e?.reason.contains("control character") == true, "CTL \(ctl)")
        }
    }

    @Test("rule: NUL anywhere in the head → 400")
    func nul() {
        let cases: [[UInt8]] = [
            Array("GET / HTTP/1.1\r\nHost: a\r\nX: a".utf8) + [0] + Array("b\r\n\r\n".utf8),
            Array("GET / HTTP/1.1\r\nHost: a\r\nX".utf8) + [0] + Array(": b\r\n\r\n".utf8),
            Array("GET /".utf8) + [0] + Array(" HTTP/1.1\r\nHost: a\r\n\r\n".utf8),
            Array("GE".utf8) + [0] + Array("T / HTTP/1.1\r\nHost: a\r\n\r\n".utf8),
            [0] + Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8),
        ]
        for bytes in cases {
            let e = parseRequest(bytes: bytes).parseError
            #expect(e?.status == 400)
        }
        #expect(parseRequest(bytes: cases[0]).parseError?.reason.contains("NUL") == true)
        #expect(parseRequest(bytes: cases[1]).parseError?.reason.contains("NUL") == true)
    }

    @Test("rule: invalid token characters in method → 400")
    func invalidMethod() {
        expectRejected("GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", "method")
        expectRejected("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", "method")
        expectRejected("G\u{E9}T / HTTP/1.1\r\nHost: a\r\n\r\n", "method")
        expectRejected(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", "method")
    }

    @Test("rule: invalid token characters in field name → 400")
    func invalidFieldName() {
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", "invalid character in header field name")
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nX/Y: b\r\n\r\n", "invalid character in header field name")
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nX\u{E9}: b\r\n\r\n", "invalid character in header field name")
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n", "without colon")
    }

    @Test("rule: empty field name → 400")
    func emptyFieldName() {
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\n: value\r\n\r\n", "empty header field name")
    }

    // MARK: Host

    @Test("rule: missing Host in HTTP/1.1 → 400")
    func missingHost() {
        expectRejected("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", "missing Host")
    }

    @Test("rule: more than one Host field → 400 (also in HTTP/1.0)")
    func multipleHost() {
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host")
        expectRejected("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "more than one Host")
        expectRejected("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host")
    }

    @Test("rule: Host value with characters outside host[:port] → 400")
    func invalidHost() {
        expectRejected("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid Host")
        expectRejected("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", "invalid Host")
        expectRejected("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", "invalid Host")
    }

    // MARK: Request line

    @Test("rule: request-target must be origin-, absolute-, asterisk- (OPTIONS) or authority-form (CONNECT)")
    func invalidTargetForm() {
        expectRejected("GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request-target")
        expectRejected("GET ftp://example.com/ HTTP/1.1\r\nHost: a\r\n\r\n", "invalid request-target")
        expectRejected("GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n", "without authority")
        expectRejected("GET * HTTP/1.1\r\nHost: a\r\n\r\n", "only allowed with OPTIONS")
        expectRejected("GET example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", "only allowed with CONNECT")
        expectRejected("CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n", "CONNECT requires")
        expectRejected("CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n", "CONNECT requires")
        expectRejected("CONNECT example.com: HTTP/1.1\r\nHost: a\r\n\r\n", "CONNECT requires")
        expectRejected("CONNECT :443 HTTP/1.1\r\nHost: a\r\n\r\n", "CONNECT requires")
        expectRejected("CONNECT u@example.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", "CONNECT requires")
        expectRejected("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "fragment")
    }

    @Test("rule: request-target with CTL or unencoded bytes >= 0x80 → 400")
    func invalidTargetBytes() {
        expectRejected("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", "request-target")
        expectRejected("GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", "non-ASCII")
        var bytes = Array("GET /a".utf8)
        bytes.append(0x7F)
        bytes += Array(" HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        #expect(parseRequest(bytes: bytes).parseError?.status == 400)
        bytes = Array("GET /a".utf8) + [0x01] + Array(" HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        #expect(parseRequest(bytes: bytes).parseError?.status == 400)
    }

    @Test("rule: space inside the request-target → 400")
    func spaceInTarget() {
        expectRejected("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP version")
    }

    @Test("rule: multiple SP between request-line parts → 400")
    func multipleSpaces() {
        expectRejected("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "multiple spaces")
        expectRejected("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", "multiple spaces")
        expectRejected("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "multiple spaces")
    }

    @Test("rule: well-formed HTTP version other than 1.0/1.1 → 505")
    func unsupportedVersion() {
        expectRejected("GET / HTTP/2.0\r\nHost: a\r\n\r\n", status: 505, "HTTP Version Not Supported")
        expectRejected("GET / HTTP/1.2\r\nHost: a\r\n\r\n", status: 505)
        expectRejected("GET / HTTP/0.9\r\nHost: a\r\n\r\n", status: 505)
    }

    @Test("rule: garbage HTTP version → 400")
    func garbageVersion() {
        for v in ["http/1.1", "HTTP/1", "HTTP/1.1.1", "HTTP/11", "HTTP/a.b", "HTTP/1.10", "FOO"] {
            let e = parseRequest("GET / \(v)\r\nHost: a\r\n\r\n").parseError
            #expect(e?.status == 400, "\(v)")
        }
        expectRejected("GET /\r\nHost: a\r\n\r\n", "missing HTTP version")
    }

    @Test("early rejection: a non-token first byte is an error before the line is complete")
    func earlyGarbage() {
        let tlsHello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00]
        #expect(parseRequest(bytes: tlsHello).parseError?.status == 400)
    }
}
