import Foundation
import Testing
@testable import WeirConfig

/// A peer directory in one file, from host A's view: a listener, [peer] and a [group] of two other peers.
let peerTOML = """
    [[listener]]
    name = "public"
    address = "198.51.100.1:80"

    [peer]
    id = "peer-a"
    app = "127.0.0.1:8000"

    [group]
    beacon = "198.51.100.1:7946"

    [[group.member]]
    id = "peer-b"
    beacon = "198.51.100.2:7946"
    address = "198.51.100.2:80"

    [[group.member]]
    id = "peer-c"
    beacon = "198.51.100.3:7946"
    address = "198.51.100.3:80"

    """

/// Errors of `a.toml` = the valid peer directory followed by `extra`.
func peerErrorLines(appending extra: String) -> [String] {
    errorLines([("a.toml", peerTOML + extra)])
}

func addr(_ text: String) -> SocketAddress {
    SocketAddress.parse(text)!
}

/// `[peer]`, `[group]`, `[[group.member]]`, `load_source`, and the pool and route synthesized for a peer.
@Suite struct PeerConfigTests {
    @Test func aPeerDirectoryLoadsWithEveryDefault() throws {
        let config = try parse([("a.toml", peerTOML)])
        #expect(config.peer == PeerSettings(
            id: "peer-a", app: addr("127.0.0.1:8000"), capacity: 100, routeBy: .proxy, firstLevel: 0.5,
            secondLevel: 0.2, publicURL: nil, serves: [], addresses: [], redirectStatus: 307, health: HealthCheck()))
        #expect(config.group == GroupSettings(
            beacon: addr("198.51.100.1:7946"), interval: .milliseconds(500), deadAfter: 3, rise: 2, secret: nil,
            secretFile: nil, members: [
                GroupMember(id: "peer-b", beacon: addr("198.51.100.2:7946"), role: .peer,
                            address: addr("198.51.100.2:80"), publicURL: nil, capacity: 100, takeover: []),
                GroupMember(id: "peer-c", beacon: addr("198.51.100.3:7946"), role: .peer,
                            address: addr("198.51.100.3:80"), publicURL: nil, capacity: 100, takeover: []),
            ]))
        // The initializers use the same defaults.
        #expect(PeerSettings(id: "peer-a", app: addr("127.0.0.1:8000")) == config.peer)
        #expect(GroupMember(id: "x", beacon: addr("127.0.0.1:1")).role == .peer)
        #expect(GroupSettings(beacon: addr("127.0.0.1:1")).interval == .milliseconds(500))
        #expect(Pool(name: "p", servers: []).loadSource == .probes)
        #expect(Server(id: "s", address: addr("127.0.0.1:1")).probed)
        #expect(WeirConfiguration().peer == nil && WeirConfiguration().group == nil)
    }

    @Test func thePoolGroupIsSynthesized() throws {
        let config = try parse([("a.toml", peerTOML)])
        #expect(config.pools == [
            Pool(name: "group", policy: .threshold, servers: [
                Server(id: "peer-a", address: addr("127.0.0.1:8000"), capacity: 100,
                       publicURL: "http://198.51.100.1:80"),
                Server(id: "peer-b", address: addr("198.51.100.2:80"), capacity: 100,
                       publicURL: "http://198.51.100.2:80", probed: false),
                Server(id: "peer-c", address: addr("198.51.100.3:80"), capacity: 100,
                       publicURL: "http://198.51.100.3:80", probed: false),
            ], firstLevel: 0.5, secondLevel: 0.2, retries: 1, slowStart: .zero, health: HealthCheck(), loadSource: .beacons),
        ])
        // No [[route]]: "/" to the pool on every listener.
        #expect(config.routes == [Route(name: "peer", pathPrefix: "/", pool: "group", listener: nil)])
    }

    @Test func everyPeerKeyIsRead() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let secretPath = directory + "/group.secret"
        try (String(repeating: "g", count: 40) + "\n").write(toFile: secretPath, atomically: true, encoding: .utf8)
        let config = try parse([
            ("10-listeners.toml", """
                [[listener]]
                name = "public"
                address = "[2001:db8::1]:8443"
                [[listener]]
                name = "second"
                address = "198.51.100.1:80"
                """),
            ("20-peer.toml", """
                [peer]
                id = "A.host_1"
                app = "[::1]:8000"
                capacity = 1000000
                route_by = "redirect"
                first_level = "60%"
                second_level = 0.1
                public_url = "https://a.example.com"
                serves = ["/banking/*", "/api/", "/"]
                addresses = ["198.51.100.10/24 dev eth0", "2001:DB8:0:0::10/64   dev  bond0.100", "192.0.2.1/32 dev veth@1"]
                redirect_status = 308

                [peer.health]
                type = "http"
                interval = "500ms"
                timeout = "200ms"
                path = "/ready"
                """),
            ("30-group.toml", """
                [group]
                beacon = "[2001:db8::1]:7946"
                interval = "50ms"
                dead_after = 100
                rise = 1
                secret_file = "\(secretPath)"

                [[group.member]]
                id = "B"
                beacon = "198.51.100.2:7946"
                role = "peer"
                address = "198.51.100.2:80"
                public_url = "https://b.example.com/"
                capacity = 1
                takeover = ["198.51.100.11/24 dev eth0"]

                [[group.member]]
                id = "gw"
                beacon = "198.51.100.9:7946"
                role = "listener"
                """),
        ])
        var health = HealthCheck()
        health.kind = .http
        health.interval = .milliseconds(500)
        health.timeout = .milliseconds(200)
        health.path = "/ready"
        let peer = PeerSettings(
            id: "A.host_1", app: addr("[::1]:8000"), capacity: 1_000_000, routeBy: .redirect, firstLevel: 0.6,
            secondLevel: 0.1, publicURL: "https://a.example.com", serves: ["/banking/*", "/api/", "/"],
            addresses: [
                InterfaceAddress(address: "198.51.100.10", prefixLength: 24, device: "eth0", isIPv6: false),
                InterfaceAddress(address: "2001:db8::10", prefixLength: 64, device: "bond0.100", isIPv6: true),
                InterfaceAddress(address: "192.0.2.1", prefixLength: 32, device: "veth@1", isIPv6: false),
            ], redirectStatus: 308, health: health)
        #expect(config.peer == peer)
        #expect(config.peer?.addresses.map(\.description) == [
            "198.51.100.10/24 dev eth0", "2001:db8::10/64 dev bond0.100", "192.0.2.1/32 dev veth@1",
        ])
        #expect(config.peer?.addresses.map(\.cidr) == ["198.51.100.10/24", "2001:db8::10/64", "192.0.2.1/32"])
        #expect(config.group == GroupSettings(
            beacon: addr("[2001:db8::1]:7946"), interval: .milliseconds(50), deadAfter: 100, rise: 1,
            secret: String(repeating: "g", count: 40), secretFile: secretPath, members: [
                GroupMember(id: "B", beacon: addr("198.51.100.2:7946"), role: .peer,
                            address: addr("198.51.100.2:80"), publicURL: "https://b.example.com/", capacity: 1,
                            takeover: [InterfaceAddress(address: "198.51.100.11", prefixLength: 24, device: "eth0",
                                                        isIPv6: false)]),
                GroupMember(id: "gw", beacon: addr("198.51.100.9:7946"), role: .listener),
            ]))
        // The listener member is not a server; explicit public URLs are kept.
        #expect(config.pools == [
            Pool(name: "group", servers: [
                Server(id: "A.host_1", address: addr("[::1]:8000"), capacity: 1_000_000,
                       publicURL: "https://a.example.com"),
                Server(id: "B", address: addr("198.51.100.2:80"), capacity: 1, publicURL: "https://b.example.com/",
                       probed: false),
            ], firstLevel: 0.6, secondLevel: 0.1, retries: 1, slowStart: .zero, health: health, loadSource: .beacons),
        ])
    }

    @Test func theLocalPublicURLDefaultsToTheFirstListener() throws {
        let config = try parse([("a.toml", peerTOML.replacingOccurrences(of: "198.51.100.1:80", with: "[::]:8080"))])
        #expect(config.pools[0].servers[0].publicURL == "http://[::]:8080")
    }

    @Test func inlineGroupSecret() throws {
        let secret = String(repeating: "s", count: 32)
        let config = try parse([("a.toml", peerTOML.replacingOccurrences(
            of: "[group]\n", with: "[group]\nsecret = \"\(secret)\"\n"))])
        #expect(config.group?.secret == secret)
        #expect(config.group?.secretFile == nil)
    }

    @Test func aUserRouteWithStickyOnPoolGroup() throws {
        let config = try parse([("a.toml", peerTOML + """
            [[pool]]
            name = "static"
            [[pool.server]]
            id = "static-1"
            address = "127.0.0.1:9001"

            [[route]]
            name = "assets"
            path = "/assets/"
            pool = "static"

            [[route]]
            name = "bank"
            pool = "group"
            spill = "static"

            [[route.sticky]]
            path = "/banking/*"
            complete = ["/banking/logout"]
            """)])
        // The routes are the user's (no default route); the pool "group" comes after the user's pools.
        #expect(config.routes == [
            Route(name: "assets", pathPrefix: "/assets/", pool: "static"),
            Route(name: "bank", pool: "group", spill: "static",
                  sticky: [StickyRule(path: "/banking/*", complete: ["/banking/logout"])]),
        ])
        #expect(config.pools.map(\.name) == ["static", "group"])
        #expect(config.pools[0].loadSource == .probes)
    }

    @Test func loadSourceBeaconsOnAGatewayPool() throws {
        let config = try parse([("a.toml", """
            [[listener]]
            name = "public"
            address = "127.0.0.1:8080"

            [[pool]]
            name = "peers"
            load_source = "beacons"
            [[pool.server]]
            id = "peer-a"
            address = "198.51.100.1:80"
            [[pool.server]]
            id = "peer-b"
            address = "198.51.100.2:80"

            [[route]]
            name = "default"
            pool = "peers"

            [group]
            beacon = "198.51.100.9:7946"
            [[group.member]]
            id = "peer-a"
            beacon = "198.51.100.1:7946"
            address = "198.51.100.1:80"
            [[group.member]]
            id = "peer-b"
            beacon = "198.51.100.2:7946"
            address = "198.51.100.2:80"
            """)])
        #expect(config.peer == nil)
        #expect(config.group?.members.map(\.id) == ["peer-a", "peer-b"])
        // A gateway gets no synthesized pool or route.
        #expect(config.pools.map(\.name) == ["peers"])
        #expect(config.pools[0].loadSource == .beacons)
        #expect(config.pools[0].servers.map(\.probed) == [true, true])
        #expect(config.routes.map(\.name) == ["default"])
    }

    @Test func aGatewayMayNameAPoolGroup() throws {
        let config = try parse([("a.toml", baseTOML.replacingOccurrences(of: "\"demo\"", with: "\"group\""))])
        #expect(config.pools.map(\.name) == ["group"])
    }

    @Test func interfaceAddressParsing() {
        #expect(InterfaceAddress.parse("198.51.100.1/24 dev eth0")
            == InterfaceAddress(address: "198.51.100.1", prefixLength: 24, device: "eth0", isIPv6: false))
        #expect(InterfaceAddress.parse("::/0 dev lo")?.description == "::/0 dev lo")
        #expect(InterfaceAddress.parse("2001:db8::1/128 dev eth0")?.prefixLength == 128)
        #expect(InterfaceAddress.parse("0.0.0.0/0 dev abcdefghijklmno") != nil)
        for text in ["198.51.100.1/24", "198.51.100.1/24 eth0", "198.51.100.1/24 dev", "198.51.100.1/33 dev eth0",
                     "2001:db8::1/129 dev eth0", "198.51.100.1/-1 dev eth0", "198.51.100.1/24 dev abcdefghijklmnop",
                     "[2001:db8::1]/64 dev eth0", "fe80::1%eth0/64 dev eth0", "host/24 dev eth0", "1.2.3.4/2/4 dev x",
                     "198.51.100.1 dev eth0", "198.51.100.1/ dev eth0", "198.51.100.1/24 dev eth 0", ""] {
            #expect(InterfaceAddress.parse(text) == nil, "\(text)")
        }
    }

    /// The commented-out `load_source = "beacons"` example at the end of conf.d/20-pools.toml is valid.
    @Test func theShippedBeaconPoolExampleIsValid() throws {
        let pools = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("conf.d/20-pools.toml").path
        let text = try String(contentsOfFile: pools, encoding: .utf8)
        let example = try #require(text.range(of: "Uncommented, this example")).upperBound
        let lines = text[example...].split(separator: "\n").filter { $0.hasPrefix("#   ") }
        let config = try parse([("a.toml", baseTOML + lines.map { $0.dropFirst(4) }.joined(separator: "\n"))])
        #expect(config.pools.map(\.name) == ["demo", "peers"])
        #expect(config.pools[1].loadSource == .beacons)
        #expect(config.group?.members.map(\.id) == ["peer-a", "peer-b"])
    }

    @Test func theCommentedFixtureLoads() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/peer-a").path
        let config = try ConfigLoader.load(directory: fixture)
        #expect(config.peer?.id == "peer-a")
        #expect(config.group?.members.map(\.id) == ["peer-b", "peer-c", "gateway"])
        #expect(config.group?.members.map(\.role) == [.peer, .peer, .listener])
        #expect(config.pools.map(\.name) == ["group"])
        #expect(config.pools[0].servers.map(\.id) == ["peer-a", "peer-b", "peer-c"])
        #expect(config.pools[0].servers.map(\.probed) == [true, false, false])
        #expect(config.routes.map(\.pool) == ["group"])
        #expect(config.routes[0].sticky.map(\.path) == ["/banking/*"])
    }
}
