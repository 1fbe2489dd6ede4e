import Testing
@testable import WeirConfig

@Suite struct SocketAddressTests {
    @Test func parsesIPv4() throws {
        let address = try #require(SocketAddress.parse("127.0.0.1:9001"))
        #expect(address == SocketAddress(host: "127.0.0.1", port: 9001, isIPv6: false))
        #expect(address.description == "127.0.0.1:9001")
        #expect(SocketAddress.parse("0.0.0.0:80")?.port == 80)
        #expect(SocketAddress.parse("255.255.255.255:65535")?.port == 65535)
    }

    @Test func parsesIPv6InBrackets() throws {
        let address = try #require(SocketAddress.parse("[::1]:9001"))
        #expect(address == SocketAddress(host: "::1", port: 9001, isIPv6: true))
        #expect(address.description == "[::1]:9001")
        #expect(SocketAddress.parse("[::]:8080")?.host == "::")
        #expect(SocketAddress.parse("[2001:db8::1]:443")?.host == "2001:db8::1")
        #expect(SocketAddress.parse("[::ffff:192.0.2.1]:80")?.host == "::ffff:192.0.2.1")
    }

    @Test func canonicalizesIPv6SoEqualAddressesCompareEqual() {
        #expect(SocketAddress.parse("[0:0:0:0:0:0:0:1]:80") == SocketAddress.parse("[::1]:80"))
        #expect(SocketAddress.parse("[2001:DB8:0:0:1:0:0:1]:80")?.host == "2001:db8::1:0:0:1")
        #expect(SocketAddress.parse("[2001:db8:0:1:1:1:1:1]:80")?.host == "2001:db8:0:1:1:1:1:1")
        #expect(SocketAddress.parse("[fe80:0000:0000:0000:0000:0000:0000:00ff]:80")?.host == "fe80::ff")
    }

    @Test func infersIPv6FromHostInConvenienceInit() {
        #expect(SocketAddress(host: "::1", port: 1).isIPv6)
        #expect(!SocketAddress(host: "192.0.2.1", port: 1).isIPv6)
    }

    @Test func acceptsPortZeroLeavingThePolicyToTheCaller() {
        #expect(SocketAddress.parse("127.0.0.1:0")?.port == 0)
    }

    @Test(arguments: [
        "", "localhost:80", "example.com:443", "127.0.0.1", "127.0.0.1:", "[::1]", "::1:80", "[::1]80",
        "127.0.0.1:65536", "127.0.0.1:99999999999", "127.0.0.1:-1", "127.0.0.1:+80", "127.0.0.1:http",
        "256.0.0.1:80", "1.2.3:80", "1.2.3.4.5:80", "01.2.3.4:80", "[::g]:80", "[1:2:3:4:5:6:7:8:9]:80",
        "[1::2::3]:80", "[fe80::1%eth0]:80", " 127.0.0.1:80", "127.0.0.1:80 ",
    ])
    func rejects(_ text: String) {
        #expect(SocketAddress.parse(text) == nil)
    }
}
