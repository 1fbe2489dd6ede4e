import Testing
import WeirHTTP
@testable import WeirGateway

private func request(_ text: String) -> RequestHead {
    let bytes = Array(text.utf8)
    let result = bytes.withUnsafeBytes { RequestHeadParser.parse($0, limits: ParserLimits()) }
    guard case .complete(let head, _) = result else { fatalError("test request did not parse: \(result)") }
    return head
}

private func response(_ text: String) -> ResponseHead {
    let bytes = Array(text.utf8)
    let result = bytes.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits()) }
    guard case .complete(let head, _) = result else { fatalError("test response did not parse: \(result)") }
    return head
}

private let client = HeadRewriter.ClientView(clientAddress: "192.0.2.7", scheme: "http", host: ArraySlice("gw.example:8080".utf8))

private func upstreamText(_ head: RequestHead) -> String {
    var out: [UInt8] = []
    HeadRewriter.upstreamRequest(head, path: TargetParts(head).path, client: client, fallbackHost: "127.0.0.1:9001", into: &out)
    return String(decoding: out, as: UTF8.self)
}

@Suite struct UpstreamRequestTests {
    @Test func removesHopByHopAndConnectionNamedFieldsAndAddsForwardingFields() {
        let text = upstreamText(request(
            "GET /a?b=1 HTTP/1.1\r\nHost: gw.example:8080\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
            + "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"))
        #expect(text == "GET /a?b=1 HTTP/1.1\r\nHost: gw.example:8080\r\nAccept: */*\r\n"
                + "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: gw.example:8080\r\nVia: 1.1 weir\r\n\r\n")
    }

    @Test func appendsToExistingForwardedForAndViaAndReplacesProtoAndHost() {
        let text = upstreamText(request(
            "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\nVia: 1.0 edge\r\nX-Forwarded-Proto: https\r\n"
            + "X-Forwarded-Host: evil\r\n\r\n"))
        #expect(text.contains("X-Forwarded-For: 198.51.100.1, 192.0.2.7\r\n"))
        #expect(text.contains("Via: 1.0 edge, 1.1 weir\r\n"))
        #expect(!text.contains("https") && !text.contains("evil"))
    }

    @Test func keepsChunkedFramingAndUpgrade() {
        let chunked = upstreamText(request("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"))
        #expect(chunked.contains("Transfer-Encoding: chunked\r\n"))
        let upgrade = upstreamText(request("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"))
        #expect(upgrade.hasSuffix("Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"))
    }

    @Test func absoluteFormBecomesOriginFormAndHTTP10GetsAHost() {
        let absolute = upstreamText(request("GET http://gw.example:8080/x?y HTTP/1.1\r\nHost: gw.example:8080\r\n\r\n"))
        #expect(absolute.hasPrefix("GET /x?y HTTP/1.1\r\n"))
        let old = upstreamText(request("GET /old HTTP/1.0\r\n\r\n"))
        #expect(old.hasPrefix("GET /old HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"))
    }
}

@Suite struct ClientResponseTests {
    private func clientText(_ head: ResponseHead, framing: HeadRewriter.ClientFraming = .asReceived, connection: StaticString? = nil) -> String {
        var out: [UInt8] = []
        HeadRewriter.clientResponse(head, framing: framing, connection: connection, client: client,
                                    serverPrefixes: [Array("http://127.0.0.1:9001".utf8), Array("http://app-1.internal".utf8)], into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @Test func rewritesLocationsThatPointAtTheServer() {
        let text = clientText(response("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9001/next?x=1\r\n"
                                       + "Content-Location: http://app-1.internal/doc\r\nContent-Length: 0\r\n\r\n"))
        #expect(text.contains("Location: http://gw.example:8080/next?x=1\r\n"))
        #expect(text.contains("Content-Location: http://gw.example:8080/doc\r\n"))
    }

    @Test func leavesForeignAndLookalikeLocationsAlone() {
        let foreign = clientText(response("HTTP/1.1 302 Found\r\nLocation: https://other.example/x\r\nContent-Length: 0\r\n\r\n"))
        #expect(foreign.contains("Location: https://other.example/x\r\n"))
        let lookalike = clientText(response("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:90011/x\r\nContent-Length: 0\r\n\r\n"))
        #expect(lookalike.contains("Location: http://127.0.0.1:90011/x\r\n"))
    }

    @Test func dechunkingDropsTransferEncodingAndSetsConnection() {
        let head = response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nKeep-Alive: timeout=5\r\n\r\n")
        let passed = clientText(head)
        #expect(passed == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVia: 1.1 weir\r\n\r\n")
        let dechunked = clientText(head, framing: .dechunked, connection: "close")
        #expect(dechunked == "HTTP/1.1 200 OK\r\nVia: 1.1 weir\r\nConnection: close\r\n\r\n")
    }
}

@Suite struct TargetPartsTests {
    @Test func hostComesFromAbsoluteFormOverHostField() {
        let parts = TargetParts(request("GET http://a.example:81/p HTTP/1.1\r\nHost: b.example\r\n\r\n"))
        #expect(String(decoding: parts.hostWithPort, as: UTF8.self) == "a.example:81")
        #expect(String(decoding: parts.hostOnly, as: UTF8.self) == "a.example")
        #expect(String(decoding: parts.path, as: UTF8.self) == "/p")
    }

    @Test func portIsStrippedFromIPv6Hosts() {
        #expect(String(decoding: TargetParts.stripPort(ArraySlice("[::1]:8080".utf8)), as: UTF8.self) == "[::1]")
        #expect(String(decoding: TargetParts.stripPort(ArraySlice("example.com".utf8)), as: UTF8.self) == "example.com")
    }

    @Test func asteriskRoutesAsRoot() {
        let parts = TargetParts(request("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"))
        #expect(String(decoding: parts.path, as: UTF8.self) == "*")
        #expect(String(decoding: parts.routingPath, as: UTF8.self) == "/")
    }
}

@Suite struct CookieLookupTests {
    @Test func findsTheNamedCookieAmongSeveralFields() {
        let head = request("GET / HTTP/1.1\r\nHost: h\r\nCookie: a=1; session=\"abc\"\r\nCookie: b=2\r\n\r\n")
        let bytes = head.bytes
        #expect(CookieLookup.value(named: "session", in: head).map { String(decoding: bytes[$0], as: UTF8.self) } == "abc")
        #expect(CookieLookup.value(named: "b", in: head).map { String(decoding: bytes[$0], as: UTF8.self) } == "2")
        #expect(CookieLookup.value(named: "sess", in: head) == nil)
        #expect(CookieLookup.value(named: "A", in: head) == nil)
    }
}

@Suite struct URLRewriteStreamTests {
    private func rewrite(_ pieces: [String]) -> (String, Int) {
        var stream = URLRewriteStream(prefixes: [Array("http://127.0.0.1:9001".utf8)], replacement: Array("http://gw:8080".utf8))
        var out: [UInt8] = []
        for piece in pieces { Array(piece.utf8).withUnsafeBytes { stream.feed($0, into: &out) } }
        stream.finish(into: &out)
        return (String(decoding: out, as: UTF8.self), stream.rewrites)
    }

    @Test func rewritesURLsWhereverTheBodyIsCut() {
        let doc = "<soap:address location=\"http://127.0.0.1:9001/svc\"/><a href='http://127.0.0.1:9001'>x</a>"
        let expected = "<soap:address location=\"http://gw:8080/svc\"/><a href='http://gw:8080'>x</a>"
        #expect(rewrite([doc]) == (expected, 2))
        for cut in 1..<doc.utf8.count {
            let bytes = Array(doc.utf8)
            let pieces = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            #expect(rewrite(pieces).0 == expected, "cut at \(cut)")
        }
    }

    @Test func leavesLookalikesAlone() {
        #expect(rewrite(["see http://127.0.0.1:90011/x and http://127.0.0.1:9001"]).0 == "see http://127.0.0.1:90011/x and http://gw:8080")
        #expect(rewrite(["http://127.0.0.1:900"]).0 == "http://127.0.0.1:900")
    }
}
