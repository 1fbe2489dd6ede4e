import Testing
@testable import WeirHTTP

@Suite("Request head: keep-alive, upgrade, expect")
struct RequestConnectionTests {
    @Test("keepAlive: HTTP/1.1 persistent by default, not with Connection: close")
    func keepAlive11() {
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n")?.keepAlive == true)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")?.keepAlive == false)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n")?.keepAlive == false)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n")?.keepAlive == false)
    }

    @Test("keepAlive: HTTP/1.0 only with Connection: keep-alive")
    func keepAlive10() {
        #expect(expectRequest("GET / HTTP/1.0\r\n\r\n")?.keepAlive == false)
        #expect(expectRequest("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")?.keepAlive == true)
        #expect(expectRequest("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n")?.keepAlive == false)
    }

    @Test("isUpgrade needs both the Connection upgrade token and an Upgrade field offering more than h2c")
    func upgrade() {
        #expect(expectRequest("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")?.isUpgrade == true)
        #expect(expectRequest("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, upgrade\r\nUpgrade: h2c\r\n\r\n")?.isUpgrade == false)
        #expect(expectRequest("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")?.isUpgrade == false)
        #expect(expectRequest("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n\r\n")?.isUpgrade == false)
    }

    @Test("expectsContinue for Expect: 100-continue, case-insensitive")
    func expectContinue() {
        #expect(expectRequest("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n")?.expectsContinue == true)
        #expect(expectRequest("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n")?.expectsContinue == false)
        #expect(expectRequest("PUT /x HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n")?.expectsContinue == false)
        // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored.
        #expect(expectRequest("PUT /x HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")?.expectsContinue == false)
    }

    @Test("connectionNamesFields: a Connection element other than close, keep-alive, upgrade (empty ones aside)")
    func connectionNamesFields() {
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\n\r\n")?.connectionNamesFields == false)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close, ,KEEP-ALIVE , upgrade\r\n\r\n")?.connectionNamesFields == false)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nconnection: X-Secret\r\n\r\n")?.connectionNamesFields == true)
        let response = parseResponse("HTTP/1.1 200 OK\r\nConnection: keep-alive, Foo\r\nContent-Length: 0\r\n\r\n").head
        #expect(response?.connectionNamesFields == true)
        #expect(parseResponse("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").head?.connectionNamesFields == false)
    }
}
