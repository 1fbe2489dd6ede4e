import Testing
import WeirHTTP
@testable import WeirGateway

private func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

private func parsed(_ bytes: [UInt8]) -> ResponseHead? {
    let result = bytes.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits()) }
    if case .complete(let head, _) = result { return head }
    return nil
}

/// The responses Weir writes itself keep their exact bytes (clients and tests read them).
@Suite struct ErrorResponseTests {
    @Test func closingErrorWithRetryAfterAndHSTS() {
        let bytes = ErrorResponse.bytes(status: 503, reason: "too many connections", retryAfter: 1,
                                        extraFields: Array("Strict-Transport-Security: max-age=60\r\n".utf8))
        #expect(text(bytes) == "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Cache-Control: no-store\r\nConnection: close\r\nContent-Length: 21\r\nRetry-After: 1\r\n"
                + "Strict-Transport-Security: max-age=60\r\n\r\ntoo many connections\n")
    }

    @Test func keepAliveErrorLeavesTheConnectionOpen() {
        let bytes = ErrorResponse.bytes(status: 404, reason: "no route", keepAlive: true)
        #expect(text(bytes) == "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Cache-Control: no-store\r\nContent-Length: 9\r\n\r\nno route\n")
        #expect(parsed(bytes)?.keepAlive == true)
        #expect(parsed(ErrorResponse.bytes(status: 404, reason: "no route"))?.keepAlive == false)
    }

    @Test(arguments: [400, 405, 408, 413, 414, 431, 501, 502, 504, 505])
    func everyErrorHasItsRegisteredPhrase(status: Int) {
        let line = text(ErrorResponse.bytes(status: status, reason: "x")).split(separator: "\r\n").first.map(String.init)
        #expect(line == "HTTP/1.1 \(status) \(ReasonPhrase.for(status))")
        #expect(!ReasonPhrase.for(status).isEmpty)
    }
}

@Suite struct RedirectorTests {
    @Test func redirectWithCookieClosing() {
        var out: [UInt8] = []
        Redirector.response(status: 307, base: "http://b.example:9001/", path: ArraySlice("/a?x=1".utf8),
                            setCookie: Array("Set-Cookie: s=1; Path=/\r\n".utf8), keepAlive: false, into: &out)
        #expect(text(out) == "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://b.example:9001/a?x=1\r\n"
                + "Cache-Control: no-store\r\nContent-Length: 0\r\nVia: 1.1 weir\r\nSet-Cookie: s=1; Path=/\r\n"
                + "Connection: close\r\n\r\n")
    }

    @Test func keepAliveRedirectAppendsAndAsteriskGoesToTheRoot() {
        var out = Array("x".utf8)
        Redirector.response(status: 308, base: "https://h", path: ArraySlice("*".utf8), setCookie: [], keepAlive: true, into: &out)
        #expect(text(out) == "xHTTP/1.1 308 Permanent Redirect\r\nLocation: https://h/\r\nCache-Control: no-store\r\n"
                + "Content-Length: 0\r\nVia: 1.1 weir\r\n\r\n")
    }

    @Test(arguments: [(301, "Moved Permanently"), (302, "Found"), (303, "See Other")])
    func phrases(status: Int, phrase: String) {
        var out: [UInt8] = []
        Redirector.response(status: status, base: "http://h", path: ArraySlice("/".utf8), setCookie: [], keepAlive: true, into: &out)
        #expect(text(out).hasPrefix("HTTP/1.1 \(status) \(phrase)\r\n"))
    }
}

@Suite struct DiscoveryResponseTests {
    @Test func documentWithLengthAndConnection() {
        let body = Array("{\"servers\":[]}\n".utf8)
        #expect(text(LocalEndpoints.response(body: body, isHEAD: false, keepAlive: false))
                == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: 15\r\n"
                + "Connection: close\r\n\r\n{\"servers\":[]}\n")
        #expect(text(LocalEndpoints.response(body: body, isHEAD: true, keepAlive: true))
                == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: 15\r\n\r\n")
    }
}
