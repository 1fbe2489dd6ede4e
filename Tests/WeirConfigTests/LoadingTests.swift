import Testing
@testable import WeirConfig

@Suite struct LoadingTests {
    @Test func minimalConfigurationGetsEveryDefault() throws {
        let config = try parse([("a.toml", baseTOML)])
        #expect(config.global == GlobalSettings(workers: 0, maxConnections: 20000, drainTimeout: .seconds(30),
                                                accessLog: .stdout))
        #expect(config.timeouts == Timeouts(clientHeader: .seconds(10), clientIdle: .seconds(60), clientBody: .seconds(60),
                                            upstreamConnect: .seconds(3), upstreamResponse: .seconds(60),
                                            upstreamIdle: .seconds(30), tunnelIdle: .seconds(300)))
        #expect(config.limits == Limits(maxRequestLine: 8192, maxHeaderBytes: 65536, maxHeaderCount: 100,
                                        upstreamIdlePerServer: 1024, bufferBytes: 262_144))
        #expect(config.listeners == [Listener(name: "public", address: SocketAddress(host: "127.0.0.1", port: 8080),
                                              maxConnections: 20000)])
        #expect(config.pools == [Pool(
            name: "demo", policy: .threshold,
            servers: [Server(id: "demo-1", address: SocketAddress(host: "127.0.0.1", port: 9001), weight: 1,
                             capacity: 100, publicURL: nil, group: 0, maxConns: nil)],
            firstLevel: 0.50, secondLevel: 0.20, hashKey: .source, retries: 2, slowStart: .seconds(10), maxQueue: 100,
            queueTimeout: .seconds(5), passiveFailures: 3,
            health: HealthCheck(kind: .tcp, interval: .seconds(2), timeout: .seconds(1), rise: 2, fall: 3,
                                method: "GET", path: "/health", host: nil, expectStatus: [200...399],
                                expectBody: nil))])
        #expect(config.routes == [Route(name: "default", host: nil, pathPrefix: "/", pool: "demo", listener: nil,
                                        spill: nil)])
        #expect(config.routes[0].pathIsGlob == false)
        #expect(config.admin == AdminSettings(address: SocketAddress(host: "127.0.0.1", port: 9090)))
        #expect(config.sourceFiles == ["a.toml"])
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse([("all.toml", """
            [global]
            workers = 4
            max_connections = 5000
            drain_timeout = "1m"
            access_log = "/var/log/weir/access.log"

            [timeouts]
            client_header = "250ms"
            client_idle = "2m"
            client_body = "15s"
            upstream_connect = "1s"
            upstream_response = "1h"
            upstream_idle = "45s"
            tunnel_idle = "10m"

            [limits]
            max_request_line = 4096
            max_header_bytes = 32768
            max_header_count = 50
            upstream_idle_per_server = 8
            buffer_bytes = 65536

            [[listener]]
            name = "public"
            address = "0.0.0.0:80"

            [[listener]]
            name = "internal"
            address = "[::1]:8081"
            max_connections = 100

            [[pool]]
            name = "api"
            policy = "round-robin"

            [[pool.server]]
            id = "api-1"
            address = "192.0.2.1:8000"
            weight = 256
            capacity = 1
            public_url = "https://api-1.example.com/"
            group = 2

            [[pool.server]]
            id = "api-2"
            address = "[2001:db8::2]:8000"
            public_url = "http://[2001:db8::2]:8000"

            [[route]]
            name = "api"
            host = "*.API.example.com"
            path = "/v1/"
            pool = "api"
            listener = "internal"
            """)])
        #expect(config.global == GlobalSettings(workers: 4, maxConnections: 5000, drainTimeout: .seconds(60),
                                                accessLog: .file("/var/log/weir/access.log")))
        #expect(config.timeouts == Timeouts(clientHeader: .milliseconds(250), clientIdle: .seconds(120), clientBody: .seconds(15),
                                            upstreamConnect: .seconds(1), upstreamResponse: .seconds(3600),
                                            upstreamIdle: .seconds(45), tunnelIdle: .seconds(600)))
        #expect(config.limits == Limits(maxRequestLine: 4096, maxHeaderBytes: 32768, maxHeaderCount: 50,
                                        upstreamIdlePerServer: 8, bufferBytes: 65536))
        #expect(config.listeners == [
            Listener(name: "public", address: SocketAddress(host: "0.0.0.0", port: 80, isIPv6: false), maxConnections: 5000),
            Listener(name: "internal", address: SocketAddress(host: "::1", port: 8081, isIPv6: true), maxConnections: 100),
        ])
        #expect(config.pools == [Pool(name: "api", policy: .roundRobin, servers: [
            Server(id: "api-1", address: SocketAddress(host: "192.0.2.1", port: 8000), weight: 256, capacity: 1,
                   publicURL: "https://api-1.example.com/", group: 2),
            Server(id: "api-2", address: SocketAddress(host: "2001:db8::2", port: 8000), publicURL: "http://[2001:db8::2]:8000"),
        ])])
        #expect(config.routes == [Route(name: "api", host: "*.api.example.com", pathPrefix: "/v1/", pool: "api",
                                        listener: "internal")])
    }

    @Test func accessLogOff() throws {
        let config = try parse([("a.toml", baseTOML + "[global]\naccess_log = \"off\"\n")])
        #expect(config.global.accessLog == .off)
    }

    @Test func filesAreMergedInOrderAndNamesResolveAcrossFiles() throws {
        let config = try parse([
            ("00-global.toml", "[global]\nworkers = 2\n[timeouts]\nclient_idle = \"5s\"\n"),
            ("10-routes.toml", """
                [[route]]
                name = "b"
                path = "/b/"
                pool = "second"

                [[route]]
                name = "a"
                pool = "first"
                """),
            ("20-pools.toml", """
                [[pool]]
                name = "first"
                [[pool.server]]
                id = "f1"
                address = "127.0.0.1:9001"
                [[pool]]
                name = "second"
                [[pool.server]]
                id = "s1"
                address = "127.0.0.1:9002"
                [[pool.server]]
                id = "s2"
                address = "127.0.0.1:9003"
                """),
            ("30-more.toml", """
                [global]
                max_connections = 10
                [[pool]]
                name = "third"
                [[pool.server]]
                id = "t1"
                address = "127.0.0.1:9004"
                [[listener]]
                name = "l1"
                address = "127.0.0.1:0"
                [[listener]]
                name = "l2"
                address = "127.0.0.1:0"
                max_connections = 3
                """),
        ])
        #expect(config.sourceFiles == ["00-global.toml", "10-routes.toml", "20-pools.toml", "30-more.toml"])
        #expect(config.global.workers == 2)
        #expect(config.global.maxConnections == 10)
        #expect(config.timeouts.clientIdle == .seconds(5))
        #expect(config.timeouts.clientHeader == .seconds(10))
        #expect(config.routes.map(\.name) == ["b", "a"])
        #expect(config.pools.map(\.name) == ["first", "second", "third"])
        #expect(config.pools[1].servers.map(\.id) == ["s1", "s2"])
        // Port 0 ("any free port") is allowed for listeners, and two of them do not clash.
        #expect(config.listeners.map(\.address.port) == [0, 0])
        // A listener without max_connections takes the global value, even when that is set in another file.
        #expect(config.listeners.map(\.maxConnections) == [10, 3])
    }

    @Test func inlineArrayOfTablesIsAccepted() throws {
        let config = try parse([("a.toml", """
            listener = [{ name = "public", address = "127.0.0.1:8080" }]
            route = [{ name = "default", pool = "demo" }]
            [[pool]]
            name = "demo"
            server = [{ id = "d1", address = "127.0.0.1:9001" }]
            """)])
        #expect(config.listeners.count == 1)
        #expect(config.pools[0].servers.map(\.id) == ["d1"])
    }

    @Test(arguments: [
        ("1ms", Duration.milliseconds(1)), ("250ms", .milliseconds(250)), ("10s", .seconds(10)),
        ("5m", .seconds(300)), ("1h", .seconds(3600)), ("0010s", .seconds(10)), ("90000ms", .seconds(90)),
    ])
    func durations(_ text: String, _ expected: Duration) throws {
        let config = try parse([("a.toml", baseTOML + "[timeouts]\nupstream_connect = \"\(text)\"\n")])
        #expect(config.timeouts.upstreamConnect == expected)
    }

    @Test func configurationValuesAreSendableAndEquatable() throws {
        let first = try parse([("a.toml", baseTOML)])
        let second = try parse([("a.toml", baseTOML)])
        #expect(first == second)
        let sendable: any Sendable = first
        #expect(sendable is WeirConfiguration)
    }
}
