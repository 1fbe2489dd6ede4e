import Foundation
import Testing
@testable import WeirConfig

private let listenerHead = """
    [[listener]]
    name = "edge"
    address = "127.0.0.1:8443"

    """

private let poolTOML = """
    [[pool]]
    name = "demo"

    [[pool.server]]
    id = "demo-1"
    address = "127.0.0.1:9001"

    [[route]]
    name = "default"
    pool = "demo"

    """

private func config(listener extra: String = "", pool poolExtra: String = "") throws -> WeirConfiguration {
    let pool = poolTOML.replacingOccurrences(of: "name = \"demo\"\n", with: "name = \"demo\"\n" + poolExtra)
    return try parse([("a.toml", listenerHead + extra + "\n" + pool)])
}

private func errors(listener extra: String = "", pool poolExtra: String = "") -> [String] {
    let pool = poolTOML.replacingOccurrences(of: "name = \"demo\"\n", with: "name = \"demo\"\n" + poolExtra)
    return errorLines([("a.toml", listenerHead + extra + "\n" + pool)])
}

@Suite struct ProxyProtocolConfigTests {
    @Test func offByDefaultAndLoopbackOnlyWhenOn() throws {
        let plain = try config()
        #expect(plain.listeners[0].proxyProtocol == false)
        let on = try config(listener: "proxy_protocol = true\n").listeners[0]
        #expect(on.proxyProtocol)
        #expect(on.proxyProtocolFrom.map(\.description) == ["127.0.0.0/8", "::1/128"])
    }

    @Test func networksAreReadAndMatched() throws {
        let from = try config(listener: #"""
            proxy_protocol = true
            proxy_protocol_from = ["198.51.100.0/24", "192.0.2.7", "2001:DB8::/32"]
            """#).listeners[0].proxyProtocolFrom
        #expect(from.map(\.description) == ["198.51.100.0/24", "192.0.2.7/32", "2001:db8::/32"])
        #expect(from[0].contains([198, 51, 100, 4]) && !from[0].contains([198, 51, 101, 1]))
        #expect(from[1].contains([192, 0, 2, 7]) && !from[1].contains([192, 0, 2, 8]))
        let mapped: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 3]   // ::ffff:198.51.100.3
        #expect(from[0].contains(mapped))
        #expect(from[2].contains([0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 7, count: 12)))
        #expect(!from[2].contains([0x20, 0x01, 0x0d, 0xb9] + [UInt8](repeating: 0, count: 12)))
        #expect(NetworkPrefix(bytes: [0, 0, 0, 0], length: 0).contains([203, 0, 113, 9]))
    }

    @Test func badNetworksNameTheKeyAndTheElement() {
        #expect(errors(listener: "proxy_protocol = true\nproxy_protocol_from = [\"198.51.100.1/24\", \"198.51.100.0/33\", 5]\n") == [
            #"a.toml: listener[0].proxy_protocol_from[0]: network "198.51.100.1/24" has bits set after its length; write "198.51.100.0/24""#,
            #"a.toml: listener[0].proxy_protocol_from[1]: invalid network "198.51.100.0/33"; expected a network "ADDRESS/LENGTH" such as "198.51.100.0/24" or "::1/128" (or one address)"#,
            #"a.toml: listener[0].proxy_protocol_from[2]: expected a network "ADDRESS/LENGTH" such as "198.51.100.0/24" or "::1/128" (or one address), found an integer (5)"#,
        ])
        #expect(errors(listener: "proxy_protocol = true\nproxy_protocol_from = []\n") == [
            "a.toml: listener[0].proxy_protocol_from: must list at least one network (a listener that trusts no one "
                + #"should not set proxy_protocol); expected an array of networks, e.g. proxy_protocol_from = ["127.0.0.1/32", "198.51.100.0/24"]"#,
        ])
    }

    @Test func networksWithoutTheSwitchAreAnError() {
        #expect(errors(listener: "proxy_protocol_from = [\"198.51.100.0/24\"]\n") == [
            "a.toml: listener[0].proxy_protocol_from: is set but proxy_protocol is not; add proxy_protocol = true to "
                + "accept PROXY protocol headers from these networks, or remove proxy_protocol_from",
        ])
        #expect(errors(listener: "proxy_protocol = \"yes\"\n") == [
            #"a.toml: listener[0].proxy_protocol: expected true or false, found a string ("yes")"#,
        ])
    }
}

@Suite struct SendProxyConfigTests {
    @Test func versionsAndForwarded() throws {
        #expect(try config().pools[0].sendProxy == nil)
        #expect(try config().pools[0].forwarded == false)
        #expect(try config(pool: "send_proxy = \"v1\"\n").pools[0].sendProxy == .v1)
        #expect(try config(pool: "send_proxy = \"v2\"\nforwarded = true\n").pools[0].forwarded)
    }

    @Test func anUnknownVersionIsNamed() {
        #expect(errors(pool: "send_proxy = \"v3\"\n") == [
            #"a.toml: pool[0].send_proxy: unknown PROXY protocol version "v3"; supported versions: "v1", "v2""#,
        ])
    }
}
