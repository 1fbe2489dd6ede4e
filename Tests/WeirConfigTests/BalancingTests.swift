import Testing
@testable import WeirConfig

/// The balancing keys: pool policy settings, `[pool.health]`, server `max_conns`, route `spill` and path
/// patterns, and `[admin]`.
@Suite struct BalancingTests {
    /// The base configuration's single pool.
    func demoPool(_ poolKeys: String = "", health: String? = nil, server: String = "") throws -> Pool {
        let healthTable = health.map { "[pool.health]\n\($0)\n" } ?? ""
        let config = try parse([("a.toml", """
            [[listener]]
            name = "public"
            address = "127.0.0.1:8080"

            [[pool]]
            name = "demo"
            \(poolKeys)
            \(healthTable)
            [[pool.server]]
            id = "demo-1"
            address = "127.0.0.1:9001"
            \(server)

            [[route]]
            name = "default"
            pool = "demo"
            """)])
        return try #require(config.pools.first)
    }

    @Test func everyNewKeyIsRead() throws {
        let config = try parse([("all.toml", """
            [admin]
            address = "[::1]:9191"

            [[listener]]
            name = "public"
            address = "0.0.0.0:80"

            [[pool]]
            name = "api"
            policy = "hash"
            first_level = 0.75
            second_level = 0.1
            hash_key = "header:X-User"
            retries = 0
            slow_start = "30s"
            max_queue = 0
            queue_timeout = "250ms"
            passive_failures = 0

            [pool.health]
            type = "http"
            interval = "500ms"
            timeout = "200ms"
            rise = 1
            fall = 100
            method = "HEAD"
            path = "/healthz?full=1"
            host = "api.example.com:8080"
            expect_status = [200, 204, "300-399"]
            expect_body = "ok"

            [[pool.server]]
            id = "api-1"
            address = "192.0.2.1:8000"
            max_conns = 64

            [[pool]]
            name = "overflow"
            [[pool.server]]
            id = "overflow-1"
            address = "192.0.2.2:8000"

            [[route]]
            name = "banking"
            path = "/users/*/banking"
            pool = "api"
            spill = "overflow"
            """)])
        #expect(config.admin == AdminSettings(address: SocketAddress(host: "::1", port: 9191, isIPv6: true)))
        #expect(config.pools[0] == Pool(
            name: "api", policy: .hash,
            servers: [Server(id: "api-1", address: SocketAddress(host: "192.0.2.1", port: 8000), maxConns: 64)],
            firstLevel: 0.75, secondLevel: 0.1, hashKey: .header("x-user"), retries: 0, slowStart: .seconds(30),
            maxQueue: 0, queueTimeout: .milliseconds(250), passiveFailures: 0,
            health: HealthCheck(kind: .http, interval: .milliseconds(500), timeout: .milliseconds(200), rise: 1,
                                fall: 100, method: "HEAD", path: "/healthz?full=1", host: "api.example.com:8080",
                                expectStatus: [200...200, 204...204, 300...399], expectBody: "ok")))
        // A pool without the keys gets every default, whatever the pool before it set.
        #expect(config.pools[1] == Pool(name: "overflow", servers: [
            Server(id: "overflow-1", address: SocketAddress(host: "192.0.2.2", port: 8000)),
        ]))
        #expect(config.routes == [Route(name: "banking", pathPrefix: "/users/*/banking", pool: "api", spill: "overflow")])
        #expect(config.routes[0].pathIsGlob)
    }

    @Test func initializerDefaults() {
        let pool = Pool(name: "p", servers: [])
        #expect(pool.policy == .threshold)
        #expect(pool.firstLevel == 0.5 && pool.secondLevel == 0.2)
        #expect(pool.hashKey == .source)
        #expect(pool.retries == 2 && pool.maxQueue == 100 && pool.passiveFailures == 3)
        #expect(pool.slowStart == .seconds(10) && pool.queueTimeout == .seconds(5))
        #expect(pool.health == HealthCheck(kind: .tcp, interval: .seconds(2), timeout: .seconds(1), rise: 2, fall: 3,
                                           method: "GET", path: "/health", host: nil, expectStatus: [200...399],
                                           expectBody: nil))
        #expect(Pool(name: "p", policy: .roundRobin, servers: []).policy == .roundRobin)
        #expect(Server(id: "s", address: SocketAddress(host: "127.0.0.1", port: 1)).maxConns == nil)
        #expect(Route(name: "r", pool: "p").spill == nil)
        #expect(AdminSettings().address == SocketAddress(host: "127.0.0.1", port: 9090))
        #expect(WeirConfiguration().admin == AdminSettings())
    }

    // MARK: Pool keys

    @Test(arguments: [
        ("threshold", PolicyName.threshold), ("least-load", .leastLoad), ("round-robin", .roundRobin),
        ("p2c", .p2c), ("hash", .hash),
    ])
    func policies(_ text: String, _ expected: PolicyName) throws {
        #expect(try demoPool("policy = \"\(text)\"").policy == expected)
    }

    @Test(arguments: [
        ("0.5", 0.5), ("0.0", 0.0), ("1.0", 1.0), ("0", 0.0), ("1", 1.0), ("\"50%\"", 0.5), ("\"12.5%\"", 0.125),
        ("\"0%\"", 0.0), ("\"100%\"", 1.0),
    ])
    func levels(_ text: String, _ expected: Double) throws {
        let pool = try demoPool("first_level = \(text)\nsecond_level = \(text)")
        #expect(pool.firstLevel == expected)
        #expect(pool.secondLevel == expected)
    }

    @Test(arguments: [
        ("source", HashKey.source), ("path", .path), ("header:X-User", .header("x-user")),
        ("header:authorization", .header("authorization")), ("cookie:Session_ID", .cookie("Session_ID")),
    ])
    func hashKeys(_ text: String, _ expected: HashKey) throws {
        #expect(try demoPool("hash_key = \"\(text)\"").hashKey == expected)
    }

    @Test func zeroDurationsWhereAllowed() throws {
        #expect(try demoPool(#"slow_start = "0s""#).slowStart == .zero)
        #expect(try demoPool(#"slow_start = "0ms""#).slowStart == .zero)
        #expect(try demoPool(#"slow_start = "2m""#).slowStart == .seconds(120))
    }

    @Test func integerBoundsAreAccepted() throws {
        let low = try demoPool("retries = 0\nmax_queue = 0\npassive_failures = 0")
        #expect((low.retries, low.maxQueue, low.passiveFailures) == (0, 0, 0))
        let high = try demoPool("retries = 10\nmax_queue = 100000\npassive_failures = 100")
        #expect((high.retries, high.maxQueue, high.passiveFailures) == (10, 100_000, 100))
        #expect(try demoPool(server: "max_conns = 1").servers[0].maxConns == 1)
    }

    // MARK: [pool.health]

    @Test func healthDefaultsFillInKeysLeftOut() throws {
        let pool = try demoPool(health: "type = \"http\"\npath = \"/ping\"")
        #expect(pool.health == HealthCheck(kind: .http, path: "/ping"))
        #expect(try demoPool(health: "type = \"none\"").health.kind == .none)
        #expect(try demoPool(health: "").health == HealthCheck())
    }

    @Test func expectStatusForms() throws {
        #expect(try demoPool(health: "expect_status = [200]").health.expectStatus == [200...200])
        #expect(try demoPool(health: #"expect_status = ["200-299", 304, "404"]"#).health.expectStatus ==
                [200...299, 304...304, 404...404])
        #expect(try demoPool(health: #"expect_status = [100, "599-599"]"#).health.expectStatus == [100...100, 599...599])
    }

    @Test func timeoutJustBelowInterval() throws {
        let health = try demoPool(health: "interval = \"100ms\"\ntimeout = \"99ms\"").health
        #expect(health.interval == .milliseconds(100))
        #expect(health.timeout == .milliseconds(99))
        // Only the interval is given: the default 1s timeout must be below it.
        #expect(try demoPool(health: "interval = \"1001ms\"").health.timeout == .seconds(1))
        // Only the timeout is given: below the default 2s interval.
        #expect(try demoPool(health: "timeout = \"1999ms\"").health.interval == .seconds(2))
    }

    @Test func healthTableAfterTheServersAndPerPool() throws {
        let config = try parse([("a.toml", """
            [[listener]]
            name = "public"
            address = "127.0.0.1:8080"
            [[pool]]
            name = "first"
            [[pool.server]]
            id = "f1"
            address = "127.0.0.1:9001"
            [pool.health]
            type = "none"
            [[pool]]
            name = "second"
            [pool.health]
            type = "http"
            [[pool.server]]
            id = "s1"
            address = "127.0.0.1:9002"
            [[pool.server]]
            id = "s2"
            address = "127.0.0.1:9003"
            [[pool]]
            name = "third"
            [[pool.server]]
            id = "t1"
            address = "127.0.0.1:9004"
            [[route]]
            name = "default"
            pool = "first"
            """)])
        #expect(config.pools.map(\.health.kind) == [.none, .http, .tcp])
        #expect(config.pools.map(\.servers.count) == [1, 2, 1])
    }

    @Test func inlineHealthTable() throws {
        let pool = try demoPool(#"health = { type = "http", expect_status = ["200-204"] }"#)
        #expect(pool.health == HealthCheck(kind: .http, expectStatus: [200...204]))
    }

    // MARK: Routes

    @Test func pathPatterns() throws {
        for (path, isGlob) in [("/", false), ("/api/", false), ("/static/*.css", true), ("/*", true),
                               ("/a/**/b", true), ("/users/*/banking", true)] {
            let config = try parse([("a.toml", baseTOML + "[[route]]\nname = \"r\"\npool = \"demo\"\npath = \"\(path)\"\n")])
            #expect(config.routes[1].pathPrefix == path)
            #expect(config.routes[1].pathIsGlob == isGlob)
        }
    }

    @Test func spillMayNameAPoolOfALaterFile() throws {
        let config = try parse([
            ("a.toml", baseTOML + "[[route]]\nname = \"banking\"\npath = \"/banking\"\npool = \"demo\"\nspill = \"later\"\n"),
            ("b.toml", "[[pool]]\nname = \"later\"\n[[pool.server]]\nid = \"l1\"\naddress = \"127.0.0.1:9005\"\n"),
        ])
        #expect(config.routes[1].spill == "later")
    }

    // MARK: [admin]

    @Test func adminOff() throws {
        // Off: a listener may then use the default admin address.
        let config = try parse([
            ("a.toml", baseTOML.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:9090")),
            ("b.toml", "[admin]\naddress = \"off\"\n"),
        ])
        #expect(config.admin == AdminSettings(address: nil))
        #expect(config.admin.address == nil)
    }

    @Test func adminAddressForms() throws {
        #expect(try parse([("a.toml", baseTOML + "[admin]\naddress = \"0.0.0.0:9999\"\n")]).admin.address ==
                SocketAddress(host: "0.0.0.0", port: 9999))
        // Port 0 (any free port) is allowed and never clashes with a port-0 listener.
        let config = try parse([("a.toml", baseTOML.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:0")
                                 + "[admin]\naddress = \"127.0.0.1:0\"\n")])
        #expect(config.admin.address == SocketAddress(host: "127.0.0.1", port: 0))
        // The same port on another address is not a clash.
        #expect(try parse([("a.toml", baseTOML + "[admin]\naddress = \"127.0.0.2:8080\"\n")]).admin.address?.port == 8080)
    }
}
