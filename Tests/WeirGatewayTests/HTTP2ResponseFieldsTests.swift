import Testing
import WeirHTTP
@testable import WeirGateway

/// `HeadRewriter.clientResponseFields` (the head of an HTTP/2 stream's response, built as fields)
/// must send exactly what the HTTP/1.1 head `clientResponse` writes would become when read back
/// (`SessionResponseHead`, the path local answers still take): same fields, same order, same values.
@Suite struct ClientResponseFieldsTests {
    private let client = HeadRewriter.ClientView(clientAddress: "192.0.2.7", scheme: "https", host: ArraySlice("gw.example".utf8))
    private let prefixes = [Array("http://127.0.0.1:9001".utf8)]

    private func parse(_ text: String, head: Bool = false) -> ResponseHead {
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: head, limits: ParserLimits()) }
        guard case .complete(let parsed, _) = result else { fatalError("test response did not parse: \(result)") }
        return parsed
    }

    private func pairs(_ fields: HTTP2ResponseFields) -> [String] {
        fields.fields.map {
            String(decoding: fields.storage[$0.name], as: UTF8.self) + ": " + String(decoding: fields.storage[$0.value], as: UTF8.self)
        }
    }

    /// The fields built directly, and those of the HTTP/1.1 head read back, with the framing each gives.
    private func both(_ head: ResponseHead, framing: HeadRewriter.ClientFraming, requestWasHEAD: Bool,
                      extra: String = "", cookie: String = "") -> (direct: [String], readBack: [String], BodyFraming, BodyFraming?) {
        var direct = HTTP2ResponseFields()
        // Twice into the same fields: nothing of the first build may remain.
        HeadRewriter.clientResponseFields(parse("HTTP/1.1 500 X\r\nX-Old: 1\r\nContent-Length: 99\r\n\r\n"), framing: .asReceived,
                                          client: client, serverPrefixes: prefixes, into: &direct)
        HeadRewriter.clientResponseFields(head, framing: framing, client: client, serverPrefixes: prefixes,
                                          extraFields: Array(extra.utf8), setCookie: Array(cookie.utf8), into: &direct)
        var http1: [UInt8] = []
        HeadRewriter.clientResponse(head, framing: framing, connection: nil, client: client, serverPrefixes: prefixes,
                                    extraFields: Array(extra.utf8), setCookie: Array(cookie.utf8), into: &http1)
        let read = http1.withUnsafeBytes { SessionResponseHead.read($0, requestWasHEAD: requestWasHEAD) }
        guard case .complete(_, let fields, let readFraming, _) = read else {
            Issue.record("the HTTP/1.1 head did not read back: \(read)")
            return (pairs(direct), [], HeadRewriter.clientBodyFraming(head, framing), nil)
        }
        return (pairs(direct), pairs(fields), HeadRewriter.clientBodyFraming(head, framing), readFraming)
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 02 Dec 2026 19:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: keep-alive\r\nETag: \"abc\"\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nX-Mixed-Case: Value With Case\r\nKeep-Alive: timeout=5\r\n\r\n",
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9001/next?x=1\r\nLINK: <http://127.0.0.1:9001/a>; rel=next\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nX-Private: secret\r\nProxy-Connection: x\r\nTrailer: X-T\r\nTE: trailers\r\nUpgrade: foo\r\nContent-Length: 2, 2\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nVia: 1.1 upstream-cache\r\nvia: 2 other\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 12\r\nCache-Control: max-age=1\r\n\r\n",
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length:10\r\n\r\n",
        "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n",
    ])
    func fieldsAreThoseOfTheHTTP1HeadReadBack(text: String) {
        for (framing, requestWasHEAD) in [(HeadRewriter.ClientFraming.asReceived, false), (.rechunked, false), (.asReceived, true)] {
            let head = parse(text, head: requestWasHEAD)
            let (direct, readBack, directFraming, readFraming) = both(head, framing: framing, requestWasHEAD: requestWasHEAD,
                                                                      extra: "Strict-Transport-Security: max-age=60\r\n",
                                                                      cookie: "Set-Cookie: weir_pin=s1.mac; Path=/\r\n")
            #expect(direct == readBack, "\(framing) HEAD=\(requestWasHEAD): \(text)")
            #expect(directFraming == readFraming, "\(framing) HEAD=\(requestWasHEAD): \(text)")
            #expect(direct.allSatisfy { line in line.prefix(while: { $0 != ":" }) == line.prefix(while: { $0 != ":" }).lowercased() })
        }
    }

    @Test func namesAreLowerCasedValuesKeptAndViaAndLengthAreWeirs() {
        var fields = HTTP2ResponseFields()
        HeadRewriter.clientResponseFields(parse("HTTP/1.1 200 OK\r\nX-ABCDEFGHIJKLMNOPQRSTUVWXYZ-Long-Name: MiXeD\r\nContent-Length: 007\r\nVIA: 1.0 a\r\n\r\n"),
                                          framing: .asReceived, client: client, serverPrefixes: [], into: &fields)
        #expect(pairs(fields) == ["x-abcdefghijklmnopqrstuvwxyz-long-name: MiXeD", "content-length: 7", "via: 1.0 a, 1.1 weir"])
        HeadRewriter.clientResponseFields(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
                                          framing: .asReceived, client: client, serverPrefixes: [], into: &fields)
        #expect(pairs(fields) == ["via: 1.1 weir"])
        #expect(HeadRewriter.clientBodyFraming(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), .rechunked) == .chunked)
        #expect(HeadRewriter.clientBodyFraming(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), .asReceived) == .contentLength(5))
    }
}
