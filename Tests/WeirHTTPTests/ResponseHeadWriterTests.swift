import Testing
@testable import WeirHTTP

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

@Suite struct ReasonPhraseTests {
    /// RFC 9110 §15, every defined code with its phrase.
    static let rfc9110: [(Int, String)] = [
        (100, "Continue"), (101, "Switching Protocols"),
        (200, "OK"), (201, "Created"), (202, "Accepted"), (203, "Non-Authoritative Information"), (204, "No Content"),
        (205, "Reset Content"), (206, "Partial Content"),
        (300, "Multiple Choices"), (301, "Moved Permanently"), (302, "Found"), (303, "See Other"), (304, "Not Modified"),
        (305, "Use Proxy"), (307, "Temporary Redirect"), (308, "Permanent Redirect"),
        (400, "Bad Request"), (401, "Unauthorized"), (402, "Payment Required"), (403, "Forbidden"), (404, "Not Found"),
        (405, "Method Not Allowed"), (406, "Not Acceptable"), (407, "Proxy Authentication Required"),
        (408, "Request Timeout"), (409, "Conflict"), (410, "Gone"), (411, "Length Required"), (412, "Precondition Failed"),
        (413, "Content Too Large"), (414, "URI Too Long"), (415, "Unsupported Media Type"), (416, "Range Not Satisfiable"),
        (417, "Expectation Failed"), (421, "Misdirected Request"), (422, "Unprocessable Content"), (426, "Upgrade Required"),
        (500, "Internal Server Error"), (501, "Not Implemented"), (502, "Bad Gateway"), (503, "Service Unavailable"),
        (504, "Gateway Timeout"), (505, "HTTP Version Not Supported"),
    ]

    @Test func everyRFC9110CodeHasItsPhrase() {
        for (status, phrase) in Self.rfc9110 {
            #expect(ReasonPhrase.for(status) == phrase, "status \(status)")
        }
    }

    @Test func otherRegisteredCodesUpTo511() {
        #expect(ReasonPhrase.for(429) == "Too Many Requests")
        #expect(ReasonPhrase.for(431) == "Request Header Fields Too Large")
        #expect(ReasonPhrase.for(511) == "Network Authentication Required")
    }

    @Test(arguments: [299, 306, 418, 499, 599])
    func unregisteredCodesHaveAnEmptyPhrase(status: Int) {
        #expect(ReasonPhrase.for(status) == "")
    }
}

@Suite struct ResponseHeadWriterTests {
    @Test func statusLineFieldsInOrderAndTheEmptyLine() {
        var w = ResponseHeadWriter(status: 503)
        w.field("Content-Type", "text/plain; charset=utf-8")
        w.field("Retry-After", 5)
        w.contentLength(12)
        w.connection(keepAlive: false)
        #expect(text(w.finish()) == "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Retry-After: 5\r\nContent-Length: 12\r\nConnection: close\r\n\r\n")
    }

    @Test func unregisteredStatusKeepsTheSpaceBeforeAnEmptyPhrase() {
        let head = ResponseHeadWriter(status: 299).finish()
        #expect(text(head) == "HTTP/1.1 299 \r\n\r\n")
        #expect(head.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits()) }.head?.status == 299)
    }

    @Test func connectionPersistenceIsSaidOnlyWhereNeeded() {
        var close = ResponseHeadWriter(status: 200)
        close.connection(keepAlive: false, peerIsHTTP10: true)
        var http11 = ResponseHeadWriter(status: 200)
        http11.connection(keepAlive: true)
        var http10 = ResponseHeadWriter(status: 200)
        http10.connection(keepAlive: true, peerIsHTTP10: true)
        #expect(text(close.finish()) == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        #expect(text(http11.finish()) == "HTTP/1.1 200 OK\r\n\r\n")
        #expect(text(http10.finish()) == "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n")
    }

    @Test func decimalsOfEveryWidth() {
        for n in [0, 7, 10, 99, 100, 4096, 1 << 40] {
            var w = ResponseHeadWriter(status: 200)
            w.contentLength(n)
            #expect(text(w.finish()) == "HTTP/1.1 200 OK\r\nContent-Length: \(n)\r\n\r\n")
        }
    }

    @Test func finishAppendsToAnExistingBuffer() {
        var out = Array("before".utf8)
        var w = ResponseHeadWriter(status: 204)
        w.field("X-A", Array("1".utf8))
        w.finish(appendingTo: &out)
        #expect(text(out) == "beforeHTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
    }

    @Test func writtenHeadsParseBackWithTheirFraming() {
        var w = ResponseHeadWriter(status: 404)
        w.field("Content-Type", "application/json")
        w.contentLength(3)
        w.connection(keepAlive: false)
        let head = w.finish()
        let parsed = head.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits()) }
        #expect(parsed.consumed == head.count)
        #expect(parsed.head?.status == 404 && parsed.head?.framing == .contentLength(3) && parsed.head?.keepAlive == false)
    }

    @Test func rawFieldLinesGoInAsTheyAre() {
        var w = ResponseHeadWriter(status: 308)
        w.fieldLines(Array("Strict-Transport-Security: max-age=60\r\nSet-Cookie: a=b; Path=/\r\n".utf8))
        w.fieldLines([UInt8]())
        #expect(text(w.finish()) == "HTTP/1.1 308 Permanent Redirect\r\nStrict-Transport-Security: max-age=60\r\nSet-Cookie: a=b; Path=/\r\n\r\n")
    }

    @Test func valuesWithLineBreaksOrControlBytesAreInvalid() {
        #expect(ResponseHeadWriter.isValidFieldValue("text/plain; q=\"a b\"\tx \u{e9}"))
        #expect(ResponseHeadWriter.isValidFieldValue(""))
        for bad in ["a\r\nSet-Cookie: x=1", "a\nb", "a\rb", "a\u{0}b", "a\u{7f}", "a\u{1b}"] {
            #expect(!ResponseHeadWriter.isValidFieldValue(bad), "\(Array(bad.utf8))")
        }
    }

    @Test func namesMustBeTokens() {
        #expect(ResponseHeadWriter.isValidFieldName("X-Served-By".utf8))
        for bad in ["", "X A", "X:A", "X\r\n", "Ä"] {
            #expect(!ResponseHeadWriter.isValidFieldName(bad.utf8), "\(bad)")
        }
    }

    @Test func fieldLinesMustBeCompleteAndCannotEndTheHead() {
        #expect(ResponseHeadWriter.isValidFieldLines(Array("A: 1\r\nB:2\r\n".utf8)))
        #expect(ResponseHeadWriter.isValidFieldLines([UInt8]()))
        for bad in ["A: 1", "A: 1\n", "A: 1\r\n\r\n", "\r\n", "A 1\r\n", ": 1\r\n", "A: 1\rB: 2\r\n", "A: 1\r\n B: 2\r\n"] {
            #expect(!ResponseHeadWriter.isValidFieldLines(Array(bad.utf8)), "\(Array(bad.utf8))")
        }
    }

    @Test func aValueWithCRLFStopsTheProcessInsteadOfSplittingTheResponse() async {
        await #expect(processExitsWith: .failure) {
            var w = ResponseHeadWriter(status: 302)
            w.field("Location", "/a\r\nSet-Cookie: stolen=1")
        }
    }

    @Test func fieldLinesThatEndTheHeadStopTheProcess() async {
        await #expect(processExitsWith: .failure) {
            var w = ResponseHeadWriter(status: 200)
            w.fieldLines(Array("X: 1\r\n\r\nHTTP/1.1 200 OK\r\n".utf8))
        }
    }

    @Test func statusOutsideThreeDigitsStopsTheProcess() async {
        await #expect(processExitsWith: .failure) {
            _ = ResponseHeadWriter(status: 600)
        }
    }
}
