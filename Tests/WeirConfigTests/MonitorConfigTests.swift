import Testing
@testable import WeirConfig

/// `[pool.monitor]` (issue 11, document 003).
@Suite struct MonitorConfigTests {
    func pool(_ monitor: String) -> String {
        baseTOML + """
            [[pool]]
            name = "p"
            [pool.monitor]
            \(monitor)
            [[pool.server]]
            id = "s"
            address = "127.0.0.1:9002"
            """
    }

    @Test func defaultsAndParts() throws {
        let config = try parse([("a.toml", pool(#"url = "http://127.0.0.1:9500/status?x=1""#))])
        let monitor = try #require(config.pools[1].monitor)
        #expect(monitor.address == SocketAddress(host: "127.0.0.1", port: 9500))
        #expect(monitor.path == "/status?x=1")
        #expect(monitor.interval == .seconds(2) && monitor.timeout == .seconds(1) && monitor.maxAge == nil)
        #expect(monitor.effectiveMaxAge == .seconds(6))
        #expect(config.pools[0].monitor == nil)
    }

    @Test func everyKeyAndAnIPv6AddressWithoutPath() throws {
        let config = try parse([("a.toml", pool("""
            url = "http://[::1]:9500"
            interval = "500ms"
            timeout = "200ms"
            max_age = "5s"
            """))])
        let monitor = try #require(config.pools[1].monitor)
        #expect(monitor.address.isIPv6 && monitor.address.port == 9500 && monitor.path == "/")
        #expect(monitor.interval == .milliseconds(500) && monitor.timeout == .milliseconds(200))
        #expect(monitor.effectiveMaxAge == .seconds(5))
    }

    @Test func badURLsAreRefused() {
        for url in ["https://127.0.0.1:9500/", "http://monitor.example:9500/", "http://127.0.0.1/status",
                    "http://127.0.0.1:0/", "127.0.0.1:9500", "http://127.0.0.1:9500/a b"] {
            let errors = errorLines([("a.toml", pool("url = \"\(url)\""))])
            #expect(errors.count == 1, "\(url)")
            #expect(errors.first?.hasPrefix("a.toml: pool[1].monitor.url: invalid monitor URL") == true, "\(url): \(errors)")
        }
    }

    @Test func urlIsRequiredAndTimeoutShorterThanInterval() {
        #expect(errorLines([("a.toml", pool(#"interval = "3s""#))]) == [
            #"a.toml: pool[1].monitor.url: missing required key, e.g. url = "http://127.0.0.1:9500/status""#,
        ])
        let errors = errorLines([("a.toml", pool(#"url = "http://127.0.0.1:9500/"\#ninterval = "1s"\#ntimeout = "1s""#))])
        #expect(errors.count == 1 && errors[0].hasPrefix("a.toml: pool[1].monitor.timeout: must be shorter than"), "\(errors)")
    }

    @Test func unknownKeyAndWrongType() {
        let unknown = errorLines([("a.toml", pool(#"url = "http://127.0.0.1:9500/"\#nrise = 2"#))])
        #expect(unknown.count == 1 && unknown[0].contains("pool[1].monitor.rise: unknown key"), "\(unknown)")
        let wrong = errorLines([("a.toml", baseTOML + "[[pool]]\nname = \"p\"\nmonitor = 3\n[[pool.server]]\nid = \"s\"\naddress = \"127.0.0.1:9002\"\n")])
        #expect(wrong == ["a.toml: pool[1].monitor: expected a table ([pool.monitor]), found an integer (3)"], "\(wrong)")
    }
}
