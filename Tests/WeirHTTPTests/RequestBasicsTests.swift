import Testing
@testable import WeirHTTP

@Suite("Request head: well-formed requests")
struct RequestBasicsTests {
    @Test("simple GET: method, target, version, fields, host")
    func simpleGet() {
        let text = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent:  curl/8 \r\nAccept: */*\r\n\r\n"
        guard let h = expectRequest(text) else { return }
        #expect(h.methodString == "GET")
        #expect(h.targetString == "/index.html?q=1")
        #expect(h.version == .http11)
        #expect(h.fields.count == 3)
        #expect(h.string(h.fields[0].name) == "Host")
        #expect(h.string(h.fields[1].value) == "curl/8")  // OWS trimmed both sides
        #expect(h.host.map(h.string) == "example.com")
        #expect(h.framing == .none)
        #expect(h.keepAlive)
        #expect(!h.isUpgrade && !h.expectsContinue)
        #expect(!h.isHEAD && h.methodIsIdempotent)
        #expect(h.bytes == Array(text.utf8))
    }

    @Test("value(of:) is case-insensitive and returns the first match; fieldName(_:is:)")
    func lookups() {
        guard let h = expectRequest("GET / HTTP/1.1\r\nHOST: a\r\nX-Two: 1\r\nx-two: 2\r\n\r\n") else { return }
        #expect(h.value(of: "x-two").map(h.string) == "1")
        #expect(h.value(of: "host").map(h.string) == "a")
        #expect(h.value(of: "missing") == nil)
        #expect(h.fieldName(0, is: "host"))
        #expect(h.fieldName(2, is: "x-two"))
        #expect(!h.fieldName(1, is: "x-tw"))
        #expect(!h.fieldName(1, is: "host"))
    }

    @Test("listContains matches whole list elements case-insensitively")
    func listContains() {
        guard let h = expectRequest("GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive , TE,Upgrade\r\n\r\n"),
              let v = h.value(of: "connection") else { return }
        #expect(h.listContains(v, token: "keep-alive"))
        #expect(h.listContains(v, token: "te"))
        #expect(h.listContains(v, token: "upgrade"))
        #expect(!h.listContains(v, token: "keep"))
        #expect(!h.listContains(v, token: "close"))
    }

    @Test("empty field value is allowed and yields an empty range")
    func emptyValue() {
        guard let h = expectRequest("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Blank:   \r\n\r\n") else { return }
        #expect(h.fields[1].value.isEmpty)
        #expect(h.fields[2].value.isEmpty)
    }

    @Test("obs-text (bytes >= 0x80) and HTAB are allowed inside field values")
    func obsTextInValue() {
        var bytes = Array("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf".utf8)
        bytes += [0xC3, 0xA9, 0x09, 0x41]
        bytes += Array("\r\n\r\n".utf8)
        let r = parseRequest(bytes: bytes)
        #expect(r.head != nil)
    }

    @Test("methods are tokens: unknown and extension methods are accepted")
    func extensionMethod() {
        guard let h = expectRequest("PROPFIND /dav HTTP/1.1\r\nHost: a\r\n\r\n") else { return }
        #expect(h.methodString == "PROPFIND")
        #expect(!h.methodIsIdempotent)
    }

    @Test("isHEAD and methodIsIdempotent for each standard method")
    func methodProperties() {
        let idempotent = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"]
        for m in idempotent + ["POST", "PATCH", "get"] {
            guard let h = expectRequest("\(m) / HTTP/1.1\r\nHost: a\r\n\r\n") else { continue }
            #expect(h.methodIsIdempotent == idempotent.contains(m), "\(m)")
            #expect(h.isHEAD == (m == "HEAD"), "\(m)")
        }
    }

    @Test("HTTP/1.0 without Host is accepted")
    func http10WithoutHost() {
        guard let h = expectRequest("GET / HTTP/1.0\r\n\r\n") else { return }
        #expect(h.version == .http10)
        #expect(h.host == nil)
        #expect(!h.keepAlive)
    }

    @Test("leading empty lines (CRLF) before the request line are skipped and counted in consumed")
    func leadingCRLF() {
        let text = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
        let r = parseRequest(text)
        #expect(r.consumed == text.utf8.count)
        #expect(r.head?.bytes == Array("GET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
        #expect(r.head?.methodString == "GET")
    }

    @Test("only CRLFs so far → needMore")
    func onlyCRLF() {
        #expect(parseRequest("\r\n").isNeedMore)
        #expect(parseRequest("\r").isNeedMore)
        #expect(parseRequest("").isNeedMore)
    }

    @Test("request-target forms: origin, absolute, asterisk with OPTIONS, authority with CONNECT")
    func targetForms() {
        #expect(expectRequest("GET /a/b?c HTTP/1.1\r\nHost: a\r\n\r\n")?.targetString == "/a/b?c")
        #expect(expectRequest("GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n") != nil)
        #expect(expectRequest("GET HTTPS://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n") != nil)
        #expect(expectRequest("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")?.targetString == "*")
        let connect = expectRequest("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        #expect(connect?.isCONNECT == true)
        #expect(expectRequest("CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n") != nil)
    }

    @Test("Host with port and IPv6 literal is accepted; empty Host is accepted")
    func hostForms() {
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: example.com:8080\r\n\r\n") != nil)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n") != nil)
        #expect(expectRequest("GET / HTTP/1.1\r\nHost:\r\n\r\n")?.host?.isEmpty == true)
    }
}
