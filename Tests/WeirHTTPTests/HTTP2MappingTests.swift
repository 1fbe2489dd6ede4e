import Testing
@testable import WeirHTTP

/// Builds the HTTP/1.1 head of an HTTP/2 request from (name, value) pairs.
private func head(_ fields: [(String, String)], endStream: Bool = true, maxListBytes: Int = 65536) throws(HTTP2RequestHead.Refusal)
    -> (text: String, chunked: Bool) {
    let builder = HTTP2RequestHead(maxListBytes: maxListBytes)
    for (name, value) in fields {
        let n = Array(name.utf8), v = Array(value.utf8)
        n.withUnsafeBytes { nb in v.withUnsafeBytes { vb in builder.add(name: nb, value: vb) } }
        _ = (n, v)
    }
    let (bytes, chunked) = try builder.head(endStream: endStream)
    return (String(decoding: bytes, as: UTF8.self), chunked)
}

private let get: [(String, String)] = [(":method", "GET"), (":scheme", "https"), (":authority", "weir.test"), (":path", "/a?b=1")]

@Suite struct HTTP2RequestHeadTests {
    @Test func pseudoHeadersBecomeTheRequestLineAndHost() throws {
        let h = try head(get + [("accept", "*/*")])
        #expect(h.text == "GET /a?b=1 HTTP/1.1\r\nHost: weir.test\r\naccept: */*\r\n\r\n")
        #expect(!h.chunked)
    }

    @Test func theHeadParsesAsAnHTTP11Request() throws {
        let h = try head(get + [("user-agent", "t")])
        let bytes = Array(h.text.utf8)
        let parsed = bytes.withUnsafeBytes { RequestHeadParser.parse($0, limits: ParserLimits()) }
        guard case .complete(let request, let consumed) = parsed else { Issue.record("not parsed: \(parsed)"); return }
        #expect(consumed == bytes.count)
        #expect(request.value(of: "host").map(request.string) == "weir.test")
        #expect(request.keepAlive)   // the lane's session stays for the next stream
    }

    @Test func aBodyOfUnknownLengthIsChunkedAndAKnownOneKeepsItsLength() throws {
        let post = [(":method", "POST"), (":scheme", "https"), (":authority", "weir.test"), (":path", "/up")]
        let unknown = try head(post, endStream: false)
        #expect(unknown.chunked && unknown.text.contains("Transfer-Encoding: chunked\r\n"))
        let known = try head(post + [("content-length", "5")], endStream: false)
        #expect(!known.chunked && known.text.contains("content-length: 5\r\n") && !known.text.contains("chunked"))
        let none = try head(post, endStream: true)
        #expect(!none.chunked && !none.text.contains("chunked"))
        #expect(HTTP2RequestHead.chunkHeader(255) == Array("ff\r\n".utf8))
        #expect(HTTP2RequestHead.lastChunk(trailers: Array("x-t: 1\r\n".utf8)) == Array("0\r\nx-t: 1\r\n\r\n".utf8))
    }

    @Test func aResetBuilderWritesTheNextHeadAsAFreshOneWould() throws {
        func add(_ b: HTTP2RequestHead, _ fields: [(String, String)]) {
            for (name, value) in fields {
                let n = Array(name.utf8), v = Array(value.utf8)
                n.withUnsafeBytes { nb in v.withUnsafeBytes { vb in b.add(name: nb, value: vb) } }
            }
        }
        let builder = HTTP2RequestHead(maxListBytes: 200)
        add(builder, [(":method", "HEAD"), (":authority", "a.test"), (":path", "/x"), ("cookie", "a=1"),
                       ("x-big", String(repeating: "b", count: 150))])
        #expect(throws: HTTP2RequestHead.Refusal.self) { _ = try builder.head(endStream: true) }
        #expect(builder.isHEAD)
        builder.reset()
        add(builder, [(":method", "POST"), (":path", "/y"), ("host", "h.test"), ("accept", "*/*")])
        var out = ByteBuilder(capacity: 8)
        out.append("left over")
        let chunked = try builder.head(endStream: false, into: &out)
        #expect(chunked && !builder.isHEAD)
        #expect(String(decoding: out.bytes, as: UTF8.self)
                == "POST /y HTTP/1.1\r\nHost: h.test\r\naccept: */*\r\nTransfer-Encoding: chunked\r\n\r\n")
    }

    @Test func authorityAndHostMustAgree() throws {
        #expect(throws: HTTP2RequestHead.Refusal(status: 400, reason: ":authority and Host disagree")) {
            _ = try head(get + [("host", "other.test")])
        }
        let same = try head(get + [("host", "WEIR.test")])   // host names compare case-insensitively
        #expect(same.text.hasPrefix("GET /a?b=1 HTTP/1.1\r\nHost: weir.test\r\n"))
        let hostOnly = try head([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("host", "h.test")])
        #expect(hostOnly.text.contains("Host: h.test\r\n"))
    }

    @Test func cookieCrumbsAreJoined() throws {
        let h = try head(get + [("cookie", "a=1"), ("accept", "x"), ("cookie", "b=2")])
        #expect(h.text.contains("Cookie: a=1; b=2\r\n"))
        #expect(h.text.split(separator: "\r\n").filter { $0.lowercased().hasPrefix("cookie:") }.count == 1)
    }

    @Test func aHeaderListOverTheLimitIs431() {
        #expect(throws: HTTP2RequestHead.Refusal(status: 431, reason: "header list larger than 200 bytes")) {
            _ = try head(get + [("x-big", String(repeating: "a", count: 100))], maxListBytes: 200)
        }
    }

    @Test func connectIsNotServed() {
        #expect(throws: HTTP2RequestHead.Refusal(status: 501, reason: "CONNECT is not served over HTTP/2")) {
            _ = try head([(":method", "CONNECT"), (":authority", "weir.test:443")])
        }
        #expect(throws: HTTP2RequestHead.Refusal(status: 501, reason: "CONNECT is not served over HTTP/2")) {
            _ = try head([(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":path", "/ws"),
                          (":authority", "weir.test")])
        }
    }
}

@Suite struct HTTP2ResponseFieldsTests {
    private func fields(_ f: HTTP2ResponseFields) -> [String] {
        f.fields.map { String(decoding: f.storage[$0.name], as: UTF8.self) + "=" + String(decoding: f.storage[$0.value], as: UTF8.self) }
    }

    /// What `SessionResponseHead.read` makes of `text`, with the fields as "name=value".
    private func read(_ text: String, head: Bool = false) -> (status: Int, fields: [String], framing: BodyFraming, consumed: Int)? {
        let bytes = Array(text.utf8)
        guard case .complete(let status, let f, let framing, let consumed) =
                bytes.withUnsafeBytes({ SessionResponseHead.read($0, requestWasHEAD: head) }) else { return nil }
        return (status, fields(f), framing, consumed)
    }

    @Test func namesAreLowerCasedAndConnectionSpecificFieldsDropped() {
        let text = "HTTP/1.1 200 OK\r\nContent-Type:  text/plain \r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n"
            + "Transfer-Encoding: chunked\r\nX-Served-By:b1\r\nUpgrade: h2c\r\n\r\nbody"
        let r = read(text)
        #expect(r?.status == 200 && r?.fields == ["content-type=text/plain", "x-served-by=b1"])
        #expect(r?.framing == .chunked && r?.consumed == text.utf8.count - 4)
    }

    @Test func theBodyFramingFollowsTheHeadAndTheRequest() {
        #expect(read("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n")?.framing == .contentLength(12))
        #expect(read("HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", head: true)?.framing == BodyFraming.none)
        #expect(read("HTTP/1.1 200 OK\r\nServer: x\r\n\r\n")?.framing == .untilClose)
        #expect(read("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")?.framing == .chunked)
        #expect(read("HTTP/1.1 200 OK\r\nTransfer-Encoding: notchunked\r\n\r\n")?.framing == .untilClose)
        #expect(read("HTTP/1.1 204 No Content\r\n\r\n").map { ($0.status, $0.fields, $0.framing) } ?? (0, ["x"], .chunked)
                == (204, [], BodyFraming.none))
        #expect(read("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n")?.framing == BodyFraming.none)
        #expect(read("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")?.framing == BodyFraming.none)
    }

    @Test func anIncompleteHeadWaitsAndAnotherShapeIsMalformed() {
        func outcome(_ text: String) -> String {
            switch Array(text.utf8).withUnsafeBytes({ SessionResponseHead.read($0, requestWasHEAD: false) }) {
            case .needMore: return "more"
            case .malformed: return "malformed"
            case .complete: return "complete"
            }
        }
        #expect(outcome("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n") == "more")
        #expect(outcome("HTTP/1.1 2x0 OK\r\n\r\n") == "malformed")
        #expect(outcome("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n") == "malformed")
        #expect(outcome("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n") == "malformed")
        #expect(outcome("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n") == "malformed")
        #expect(outcome("HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n") == "malformed")
        #expect(outcome("HTTP/1.1 200 OK\r\n\r\n") == "complete")
    }

    @Test func trailersAreReadFromTheLastChunk() {
        let bytes = Array("0;ext=1\r\nX-Checksum: 100\r\nserver-timing:  a \r\n\r\n".utf8)
        let f = bytes.withUnsafeBytes { HTTP2ResponseFields(lastChunk: $0) }
        #expect(fields(f) == ["x-checksum=100", "server-timing=a"])
        let empty = Array("0\r\n\r\n".utf8).withUnsafeBytes { HTTP2ResponseFields(lastChunk: $0) }
        #expect(empty.fields.isEmpty)
    }

    @Test func appendedFieldsFollow() {
        var f = HTTP2ResponseFields()
        f.append(name: "content-length", value: Array("3".utf8))
        #expect(fields(f) == ["content-length=3"])
    }
}

@Suite struct HTTP2PrefaceTests {
    @Test func matchesThePrefaceAndWaitsForAllOfIt() {
        func match(_ s: String) -> HTTP2Preface.Match { Array(s.utf8).withUnsafeBytes { HTTP2Preface.match($0) } }
        #expect(match("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == .http2)
        #expect(match("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\u{12}") == .http2)
        #expect(match("PRI * HT") == .needMore)
        #expect(match("GET / HTTP/1.1\r\n") == .other)
        #expect(match("PRI * HTTP/2.1\r\n\r\nSM\r\n\r\n") == .other)
    }
}
