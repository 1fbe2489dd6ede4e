import Testing
import WeirBalance
import WeirConfig
import WeirHTTP
@testable import WeirGateway

// Rewriting for the whole pool (issue 11, document 003): Refresh and Link as well as Location, and
// the prefixes of every server of the answering server's pool.

private func response(_ text: String) -> ResponseHead {
    let bytes = Array(text.utf8)
    let result = bytes.withUnsafeBytes { ResponseHeadParser.parse($0, requestWasHEAD: false, limits: ParserLimits()) }
    guard case .complete(let head, _) = result else { fatalError("test response did not parse: \(result)") }
    return head
}

private let client = HeadRewriter.ClientView(clientAddress: "192.0.2.7", scheme: "http", host: ArraySlice("gw.example:8080".utf8))
private let prefixes = [Array("http://127.0.0.1:9001".utf8), Array("http://127.0.0.1:9002".utf8), Array("https://b.internal".utf8)]

private func clientText(_ fields: String) -> String {
    var out: [UInt8] = []
    HeadRewriter.clientResponse(response("HTTP/1.1 200 OK\r\n" + fields + "Content-Length: 0\r\n\r\n"), framing: .asReceived,
                                connection: nil, client: client, serverPrefixes: prefixes, into: &out)
    return String(decoding: out, as: UTF8.self)
}

private func refresh(_ value: String) -> String? {
    HeadRewriter.rewriteRefresh(ArraySlice(value.utf8), prefixes: prefixes, client: client).map { String(decoding: $0, as: UTF8.self) }
}

private func link(_ value: String) -> String? {
    HeadRewriter.rewriteLink(ArraySlice(value.utf8), prefixes: prefixes, client: client).map { String(decoding: $0, as: UTF8.self) }
}

@Suite struct RefreshLinkRewriteTests {
    @Test func refreshURLNamingAnyServerOfThePoolIsRewritten() {
        #expect(refresh("5; url=http://127.0.0.1:9002/next") == "5; url=http://gw.example:8080/next")
        #expect(refresh("0;URL=http://127.0.0.1:9001") == "0;URL=http://gw.example:8080")
        #expect(refresh("3, url = 'https://b.internal/x?y=1' ") == "3, url = 'http://gw.example:8080/x?y=1' ")
        #expect(refresh("1; \"http://127.0.0.1:9001/q\"") == "1; \"http://gw.example:8080/q\"")
        #expect(refresh("2; http://127.0.0.1:9001/bare") == "2; http://gw.example:8080/bare")
    }

    @Test func refreshWithoutAServerURLIsLeftAlone() {
        #expect(refresh("5") == nil)
        #expect(refresh("5; url=http://other.example/x") == nil)
        #expect(refresh("5; url=http://127.0.0.1:90011/x") == nil)
        #expect(refresh("5; url=/relative") == nil)
    }

    @Test func everyLinkTargetNamingAServerIsRewritten() {
        #expect(link("<http://127.0.0.1:9001/a>; rel=next") == "<http://gw.example:8080/a>; rel=next")
        #expect(link("<http://other.example/s.css>; rel=stylesheet, <http://127.0.0.1:9002/b?p=2>; rel=\"prev\", <https://b.internal>; rel=x")
                == "<http://other.example/s.css>; rel=stylesheet, <http://gw.example:8080/b?p=2>; rel=\"prev\", <http://gw.example:8080>; rel=x")
        #expect(link("</relative>; rel=next, <http://other.example/>") == nil)
        #expect(link("<http://127.0.0.1:9001/unclosed") == nil)
    }

    @Test func clientResponseRewritesRefreshLinkAndLocationsOfEveryServer() {
        let text = clientText("Location: http://127.0.0.1:9002/moved\r\nContent-Location: https://b.internal/doc\r\n"
                              + "Refresh: 5; url=http://127.0.0.1:9001/r\r\nLink: <http://127.0.0.1:9002/l>; rel=next\r\n"
                              + "X-Other: http://127.0.0.1:9001/kept\r\n")
        #expect(text.contains("\r\nLocation: http://gw.example:8080/moved\r\n"))
        #expect(text.contains("\r\nContent-Location: http://gw.example:8080/doc\r\n"))
        #expect(text.contains("\r\nRefresh: 5; url=http://gw.example:8080/r\r\n"))
        #expect(text.contains("\r\nLink: <http://gw.example:8080/l>; rel=next\r\n"))
        #expect(text.contains("\r\nX-Other: http://127.0.0.1:9001/kept\r\n"))
    }

    @Test func fieldsThatNameNoServerAreCopiedAsReceived() {
        let text = clientText("Refresh: 10\r\nLink: <https://cdn.example/x>; rel=preload\r\n")
        #expect(text == "HTTP/1.1 200 OK\r\nRefresh: 10\r\nLink: <https://cdn.example/x>; rel=preload\r\nContent-Length: 0\r\nVia: 1.1 weir\r\n\r\n")
    }
}

@Suite struct PoolPrefixTests {
    private func snapshot() -> RoutingSnapshot {
        let a = Server(id: "a", address: SocketAddress(host: "127.0.0.1", port: 9001), publicURL: "http://a.example/")
        let b = Server(id: "b", address: SocketAddress(host: "127.0.0.1", port: 9002))
        let c = Server(id: "c", address: SocketAddress(host: "127.0.0.1", port: 9003))
        let pools = [Pool(name: "p", servers: [a, b]), Pool(name: "q", servers: [c], tls: PoolTLS())]
        return RoutingSnapshot(configuration: WeirConfiguration(pools: pools))
    }

    @Test func everyServerOfAPoolGetsThePrefixesOfAllItsServersAndNoOtherPools() {
        let lists = Generation.poolPrefixes(snapshot()).map { $0.map { String(decoding: $0, as: UTF8.self) } }
        let p = ["http://127.0.0.1:9001", "http://a.example", "http://127.0.0.1:9002"]
        #expect(lists[0] == p)
        #expect(lists[1] == p)
        #expect(lists[2] == ["http://127.0.0.1:9003", "https://127.0.0.1:9003"])
    }

    @Test func aBodyFromOneServerNamingAnotherComesBackNamingTheGateway() {
        var stream = URLRewriteStream(prefixes: Generation.poolPrefixes(snapshot())[0], replacement: Array("http://gw:80".utf8))
        var out: [UInt8] = []
        let body = #"<address location="http://127.0.0.1:9002/svc"/><a href="http://a.example/x">"#
        body.utf8.withContiguousStorageIfAvailable { stream.feed(UnsafeRawBufferPointer($0), into: &out) }
        stream.finish(into: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"<address location="http://gw:80/svc"/><a href="http://gw:80/x">"#)
    }
}
