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
    @Test func aReceivedHopMarkerIsNeverPassedOnAndAPeerAddsItsOwn() {
        let head = request("GET / HTTP/1.1\r\nHost: h\r\nWeir-Hop: c.1.forged\r\nweir-hop: again\r\nAccept: */*\r\n\r\n")
        #expect(!upstreamText(head).lowercased().contains("weir-hop"))
        var out: [UInt8] = []
        HeadRewriter.upstreamRequest(head, path: TargetParts(head).path, client: client, fallbackHost: "x",
                                     extraFields: Array("Weir-Hop: a.2.MAC\r\n".utf8), into: &out)
        let text = String(decoding: out, as: UTF8.self)
        #expect(text.hasSuffix("Via: 1.1 weir\r\nWeir-Hop: a.2.MAC\r\n\r\n"))
        #expect(text.components(separatedBy: "eir-Hop").count == 2)
    }

    @Test func removesHopByHopAndConnectionNamedFieldsAndAddsForwardingFields() {
        let text = upstreamText(request(
            "GET /a?b=1 HTTP/1.1\r\nHost: gw.example:8080\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n"
            + "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n"))
        #expect(text == "GET /a?b=1 HTTP/1.1\r\nHost: gw.example:8080\r\nAccept: */*\r\n"
                + "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: gw.example:8080\r\nVia: 1.1 weir\r\n\r\n")
    }

    @Test func headsLongerThanTheWritersBufferComeOutWhole() {
        // Pieces of every length around the writer's word moves and its 1 KiB buffer, and one longer than it.
        var fields = ""
        for n in 0..<70 { fields += "F\(n): " + String(repeating: "v", count: n) + "\r\n" }
        fields += "Big: " + String(repeating: "b", count: 1500) + "\r\nHalf:" + String(repeating: "h", count: 600) + "\r\n"
        let text = upstreamText(request("GET /p HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n"))
        #expect(text == "GET /p HTTP/1.1\r\nHost: h\r\n" + fields.replacingOccurrences(of: "Half:", with: "Half: ")
                + "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: gw.example:8080\r\nVia: 1.1 weir\r\n\r\n")
        var out = Array("kept".utf8)
        HeadRewriter.upstreamRequest(request("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), path: ArraySlice("/".utf8), client: client,
                                     fallbackHost: "x", into: &out)
        #expect(String(decoding: out, as: UTF8.self).hasPrefix("keptGET / HTTP/1.1\r\nHost: h\r\n"))
    }

    @Test func fieldLinesAreSentAsNameColonSpaceValueWhateverTheirSpacing() {
        // Lines already in that shape are copied whole; the others are rebuilt (OWS dropped).
        let text = upstreamText(request(
            "GET / HTTP/1.1\r\nHost: h\r\nA:1\r\nB:  2  \r\nC:\t3\r\nD: 4 \r\nE:\r\nF: six six\r\n\r\n"))
        #expect(text.hasPrefix("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: \r\nF: six six\r\nX-Forwarded-For: "))
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

/// Issue-8 rules on what is forwarded: one Content-Length, normalised Transfer-Encoding, no h2c,
/// Host from an absolute-form target.
@Suite struct UpstreamRequestRulesTests {
    private func fieldLines(_ text: String, _ name: String) -> [String] {
        text.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix(name.lowercased() + ":") }
    }

    @Test func identicalContentLengthsBecomeOneLine() {
        for fields in ["Content-Length: 5\r\nContent-Length: 5\r\n", "Content-Length: 5, 5\r\n",
                       "Content-Length: 005\r\nContent-Length: 5,5\r\n"] {
            let text = upstreamText(request("POST /u HTTP/1.1\r\nHost: h\r\n" + fields + "X-A: 1\r\n\r\n"))
            #expect(fieldLines(text, "content-length") == ["Content-Length: 5"], "\(fields)")
            #expect(text.hasPrefix("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-A: 1\r\n"))
        }
        let zero = upstreamText(request("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"))
        #expect(fieldLines(zero, "content-length") == ["Content-Length: 0"])
        let big = upstreamText(request("POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n"))
        #expect(fieldLines(big, "content-length") == ["Content-Length: 9223372036854775807"])
    }

    @Test func transferEncodingIsForwardedAsOneListWithoutEmptyElements() {
        for fields in ["Transfer-Encoding: chunked, ,\r\n", "Transfer-Encoding: , chunked\r\n",
                       "Transfer-Encoding: ,\r\nTransfer-Encoding: chunked\r\n"] {
            let text = upstreamText(request("POST /u HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n"))
            #expect(fieldLines(text, "transfer-encoding") == ["Transfer-Encoding: chunked"], "\(fields)")
        }
        let two = upstreamText(request("POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip,\r\nTransfer-Encoding: ,chunked\r\n\r\n"))
        #expect(fieldLines(two, "transfer-encoding") == ["Transfer-Encoding: gzip, chunked"])
    }

    @Test func h2cUpgradeIsForwardedAsAPlainRequest() {
        for fields in ["Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n",
                       "Connection: upgrade\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"] {
            let text = upstreamText(request("GET /h HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n"))
            #expect(fieldLines(text, "upgrade").isEmpty && fieldLines(text, "http2-settings").isEmpty, "\(text)")
            #expect(fieldLines(text, "connection").isEmpty, "\(text)")
        }
    }

    @Test func otherUpgradesNextToH2CAreKept() {
        let one = upstreamText(request("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c, websocket\r\n\r\n"))
        #expect(one.hasSuffix("Connection: upgrade\r\nUpgrade: websocket\r\n\r\n"))
        let two = upstreamText(request("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nUpgrade: websocket, ,foo/2\r\n\r\n"))
        #expect(two.hasSuffix("Connection: upgrade\r\nUpgrade: websocket, foo/2\r\n\r\n"))
    }

    @Test func absoluteFormHostComesFromTheTarget() {
        for (version, host) in [("1.1", "Host: other.test\r\n"), ("1.1", "Host:\r\n"), ("1.1", "Host: example.test:8080\r\n"),
                                ("1.0", "")] {
            let text = upstreamText(request("GET http://example.test:8080/x HTTP/\(version)\r\n" + host + "Accept: */*\r\n\r\n"))
            #expect(text.hasPrefix("GET /x HTTP/1.1\r\nHost: example.test:8080\r\nAccept: */*\r\n"), "\(host)")
            #expect(fieldLines(text, "host") == ["Host: example.test:8080"], "\(host)")
        }
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

    @Test func identicalContentLengthsAndTransferEncodingListsAreNormalised() {
        let lengths = clientText(response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\n"))
        #expect(lengths == "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nVia: 1.1 weir\r\n\r\n")
        let head = response("HTTP/1.1 200 OK\r\nContent-Length: 007, 7\r\n\r\n")
        let headLengths = clientText(head)
        #expect(headLengths == "HTTP/1.1 200 OK\r\nContent-Length: 7\r\nVia: 1.1 weir\r\n\r\n")
        let codings = clientText(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: , chunked,\r\n\r\n"))
        #expect(codings == "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nVia: 1.1 weir\r\n\r\n")
        // A HEAD response's Content-Length is not its framing; it is still sent once.
        let bytes = Array("HTTP/1.1 200 OK\r\nContent-Length: 12, 12\r\nContent-Length: 12\r\n\r\n".utf8)
        let result = bytes.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: true, limits: ParserLimits()) }
        guard case .complete(let forHEAD, _) = result else { Issue.record("\(result)"); return }
        #expect(clientText(forHEAD) == "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nVia: 1.1 weir\r\n\r\n")
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

    @Test func absoluteFormWithoutPathOrWithOnlyAQueryGetsASlash() {
        func text(_ s: ArraySlice<UInt8>) -> String { String(decoding: s, as: UTF8.self) }
        let bare = TargetParts(request("GET http://a.example:8080 HTTP/1.1\r\nHost: b\r\n\r\n"))
        #expect(text(bare.path) == "/" && text(bare.routingPath) == "/")
        #expect(text(bare.hostWithPort) == "a.example:8080" && text(bare.hostOnly) == "a.example")
        let query = TargetParts(request("GET http://[::1]:81?x=1 HTTP/1.1\r\nHost: b\r\n\r\n"))
        #expect(text(query.path) == "/?x=1" && text(query.routingPath) == "/?x=1")
        #expect(text(query.hostWithPort) == "[::1]:81" && text(query.hostOnly) == "[::1]")
        let replaced = TargetParts(replacingPathOf: query, with: Array("/other".utf8))
        #expect(text(replaced.path) == "/other" && text(replaced.routingPath) == "/other" && text(replaced.hostOnly) == "[::1]")
        let noHost = TargetParts(request("GET /p HTTP/1.0\r\n\r\n"))
        #expect(noHost.hasNoHost && text(noHost.path) == "/p")
        noHost.withRoutingBytes { host, path in
            #expect(host.isEmpty && Array(path) == Array("/p".utf8))
        }
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

@Suite struct ForwardedFieldTests {
    private func upstream(_ text: String, client: HeadRewriter.ClientView, forwarded: Bool = true) -> String {
        let head = request(text)
        var out: [UInt8] = []
        HeadRewriter.upstreamRequest(head, path: TargetParts(head).path, client: client, fallbackHost: "127.0.0.1:9001",
                                     forwarded: forwarded, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func forwardedLines(_ text: String) -> [String] {
        text.components(separatedBy: "\r\n").filter { $0.lowercased().hasPrefix("forwarded:") }
    }

    @Test func ipv4ClientWithAHostThatHasAPortIsQuoted() {
        let out = upstream("GET / HTTP/1.1\r\nHost: gw.example:8080\r\n\r\n", client: client)
        #expect(forwardedLines(out) == [#"Forwarded: for=192.0.2.7;proto=http;host="gw.example:8080""#])
        #expect(out.contains("X-Forwarded-For: 192.0.2.7\r\n"))   // still there
    }

    @Test func ipv6ClientIsQuotedAndBracketed() {
        let six = HeadRewriter.ClientView(clientAddress: "2001:db8::1", scheme: "https", host: ArraySlice("example.com".utf8))
        #expect(forwardedLines(upstream("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", client: six))
                == [#"Forwarded: for="[2001:db8::1]";proto=https;host=example.com"#])
    }

    @Test func receivedElementsComeFirstInOneField() {
        let out = upstream("GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=198.51.100.1\r\nforwarded: for=\"[::1]\";proto=https\r\n\r\n",
                           client: client)
        #expect(forwardedLines(out) == [
            #"Forwarded: for=198.51.100.1, for="[::1]";proto=https, for=192.0.2.7;proto=http;host="gw.example:8080""#,
        ])
    }

    @Test func offByDefaultAndAReceivedFieldPassesUntouched() {
        let out = upstream("GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=198.51.100.1\r\n\r\n", client: client, forwarded: false)
        #expect(forwardedLines(out) == ["Forwarded: for=198.51.100.1"])
    }

    @Test func noHostNoHostParameter() {
        let bare = HeadRewriter.ClientView(clientAddress: "192.0.2.7", scheme: "http", host: [])
        #expect(forwardedLines(upstream("GET / HTTP/1.0\r\n\r\n", client: bare)) == ["Forwarded: for=192.0.2.7;proto=http"])
    }
}
