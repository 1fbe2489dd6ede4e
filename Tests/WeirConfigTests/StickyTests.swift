import Foundation
import Testing
@testable import WeirConfig

/// Creates a fresh temporary directory and returns its path (the caller removes it).
func makeTemporaryDirectory() throws -> String {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("weirconfig-tests-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
}

/// The sticky-transaction, redirect-mode and discovery keys: `[[route.sticky]]`, `[sticky]`, `[discovery]`,
/// `mode`, `redirect_status`, `[global] state_dir`, `[limits] redirect_body_bytes` and `rewrite_body_types`.
@Suite struct StickyTests {
    /// The base configuration's single route, with `routeKeys` and a `[[route.sticky]]` table per element of
    /// `sticky`.
    func demoRoute(_ routeKeys: String = "", sticky: [String] = []) throws -> Route {
        let tables = sticky.map { "[[route.sticky]]\n\($0)\n" }.joined()
        let config = try parse([("a.toml", baseTOML + "[[route]]\nname = \"r\"\npool = \"demo\"\n\(routeKeys)\n\(tables)")])
        return try #require(config.routes.last)
    }

    @Test func defaults() throws {
        let config = try parse([("a.toml", baseTOML)])
        #expect(config.global.stateDirectory == "/var/lib/weir")
        #expect(config.limits.redirectBodyBytes == 1_048_576)
        #expect(config.listeners[0].mode == .proxy)
        #expect(config.pools[0].rewriteBodyTypes == [])
        #expect(config.routes[0].sticky == [])
        #expect(config.routes[0].mode == nil)
        #expect(config.routes[0].redirectStatus == 307)
        #expect(config.sticky == StickySettings(secret: nil, secretFile: nil, sourceTableSize: 100_000))
        #expect(config.discovery == DiscoverySettings(serversPath: "/.well-known/weir/servers",
                                                      assignPath: "/.well-known/weir/assign"))
        // The initializers use the same defaults.
        #expect(GlobalSettings().stateDirectory == "/var/lib/weir")
        #expect(Limits().redirectBodyBytes == 1_048_576)
        #expect(Listener(name: "l", address: SocketAddress(host: "127.0.0.1", port: 1)).mode == .proxy)
        #expect(Pool(name: "p", servers: []).rewriteBodyTypes == [])
        let route = Route(name: "r", pool: "p")
        #expect(route.sticky == [] && route.mode == nil && route.redirectStatus == 307)
        #expect(WeirConfiguration().sticky == StickySettings())
        #expect(WeirConfiguration().discovery == DiscoverySettings())
        let rule = StickyRule(path: "/banking/*")
        #expect(rule.complete == [])
        #expect(rule.idleTimeout == .seconds(20 * 60))
        #expect(rule.by == .cookie)
        #expect(rule.cookieName == "weir_pin")
        #expect(rule.entryPoint == "/banking/")
    }

    @Test func stickyRuleDefaults() throws {
        let route = try demoRoute(sticky: [#"path = "/banking/*""#])
        #expect(route.sticky == [StickyRule(path: "/banking/*", complete: [], idleTimeout: .seconds(1200), by: .cookie,
                                            cookieName: "weir_pin")])
    }

    @Test func everyNewKeyIsRead() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let secretPath = directory + "/sticky.secret"
        try "\n  0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \n\n"
            .write(toFile: secretPath, atomically: true, encoding: .utf8)
        let config = try parse([("all.toml", """
            [global]
            state_dir = "state"

            [limits]
            redirect_body_bytes = 0

            [sticky]
            secret_file = "\(secretPath)"
            source_table_size = 10000000

            [discovery]
            servers_path = "/where"
            assign_path = "off"

            [[listener]]
            name = "public"
            address = "127.0.0.1:8080"
            mode = "redirect"

            [[pool]]
            name = "demo"
            rewrite_body_types = ["text/XML", "application/wsdl+xml", "Text/Html"]
            [[pool.server]]
            id = "demo-1"
            address = "127.0.0.1:9001"
            public_url = "http://127.0.0.1:9001"

            [[route]]
            name = "banking"
            path = "/banking"
            pool = "demo"
            mode = "proxy"
            redirect_status = 303

            [[route.sticky]]
            path = "/banking/*"
            complete = ["/banking/logout", "/banking/receipt/*"]
            idle_timeout = "1s"
            by = "source"
            cookie = "Pin_2"

            [[route.sticky]]
            path = "/*"
            idle_timeout = "2h"

            [[route]]
            name = "default"
            pool = "demo"
            mode = "redirect"
            """)])
        #expect(config.global.stateDirectory == "state")
        #expect(config.limits.redirectBodyBytes == 0)
        // The secret is resolved from the file (trimmed); secretFile keeps the path.
        #expect(config.sticky == StickySettings(
            secret: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", secretFile: secretPath,
            sourceTableSize: 10_000_000))
        #expect(config.discovery == DiscoverySettings(serversPath: "/where", assignPath: nil))
        #expect(config.listeners[0].mode == .redirect)
        #expect(config.pools[0].rewriteBodyTypes == ["text/xml", "application/wsdl+xml", "text/html"])
        #expect(config.routes == [
            Route(name: "banking", pathPrefix: "/banking", pool: "demo", sticky: [
                StickyRule(path: "/banking/*", complete: ["/banking/logout", "/banking/receipt/*"],
                           idleTimeout: .seconds(1), by: .source, cookieName: "Pin_2"),
                StickyRule(path: "/*", idleTimeout: .seconds(7200)),
            ], mode: .proxy, redirectStatus: 303),
            Route(name: "default", pool: "demo", mode: .redirect),
        ])
        #expect(config.routes[0].sticky.map(\.entryPoint) == ["/banking/", "/"])
    }

    @Test func inlineSecret() throws {
        let secret = String(repeating: "k", count: 32)
        let config = try parse([("a.toml", baseTOML + "[sticky]\nsecret = \"\(secret)\"\n")])
        #expect(config.sticky == StickySettings(secret: secret, secretFile: nil))
    }

    @Test func secretFileWithARelativePathIsReadFromTheWorkingDirectory() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let secret = String(repeating: "s", count: 32)
        try secret.write(toFile: directory + "/secret", atomically: true, encoding: .utf8)
        let relative = String(repeating: "../", count: FileManager.default.currentDirectoryPath
            .split(separator: "/").count) + String(directory.drop { $0 == "/" }) + "/secret"
        let config = try parse([("a.toml", baseTOML + "[sticky]\nsecret_file = \"\(relative)\"\n")])
        #expect(config.sticky.secret == secret)
        #expect(config.sticky.secretFile == relative)
    }

    @Test(arguments: [(302, 302), (303, 303), (307, 307), (308, 308)])
    func redirectStatuses(_ status: Int, _ expected: Int) throws {
        #expect(try demoRoute("redirect_status = \(status)").redirectStatus == expected)
    }

    @Test func stickyRulesOnAGlobRouteAndAroundAPrefix() throws {
        // A glob route is not checked against the rule's path; a route prefix below the entry point overlaps it.
        #expect(try demoRoute(#"path = "/users/*/x""#, sticky: [#"path = "/banking/*""#]).sticky.count == 1)
        #expect(try demoRoute(#"path = "/banking/accounts/""#, sticky: [#"path = "/banking/*""#]).sticky.count == 1)
        #expect(try demoRoute(#"path = "/bank""#, sticky: [#"path = "/banking/*""#]).sticky.count == 1)
    }

    @Test func inlineStickyArray() throws {
        let route = try demoRoute(#"sticky = [{ path = "/a/*", by = "source" }, { path = "/b/*" }]"#)
        #expect(route.sticky == [StickyRule(path: "/a/*", by: .source), StickyRule(path: "/b/*")])
    }

    @Test func stickyAndDiscoveryKeysMayLiveInDifferentFiles() throws {
        let secret = String(repeating: "x", count: 40)
        let config = try parse([
            ("a.toml", baseTOML + "[sticky]\nsource_table_size = 5\n[discovery]\nservers_path = \"off\"\n"),
            ("b.toml", "[sticky]\nsecret = \"\(secret)\"\n[discovery]\nassign_path = \"/.well-known/weir/servers\"\n"),
        ])
        #expect(config.sticky == StickySettings(secret: secret, sourceTableSize: 5))
        // servers_path is off, so the assign endpoint may take its default path.
        #expect(config.discovery == DiscoverySettings(serversPath: nil, assignPath: "/.well-known/weir/servers"))
    }

    @Test func bothDiscoveryEndpointsOff() throws {
        let config = try parse([("a.toml", baseTOML + "[discovery]\nservers_path = \"off\"\nassign_path = \"off\"\n")])
        #expect(config.discovery == DiscoverySettings(serversPath: nil, assignPath: nil))
    }

    @Test func contentTypesAreLowerCased() throws {
        let config = try parse([("a.toml", """
            [[listener]]
            name = "public"
            address = "127.0.0.1:8080"
            [[pool]]
            name = "demo"
            rewrite_body_types = ["APPLICATION/SOAP+XML", "text/vnd.example-1.0"]
            [[pool.server]]
            id = "demo-1"
            address = "127.0.0.1:9001"
            [[route]]
            name = "default"
            pool = "demo"
            """)])
        #expect(config.pools[0].rewriteBodyTypes == ["application/soap+xml", "text/vnd.example-1.0"])
    }

    @Test func redirectBodyBytesBounds() throws {
        #expect(try parse([("a.toml", baseTOML + "[limits]\nredirect_body_bytes = 1073741824\n")])
            .limits.redirectBodyBytes == 1_073_741_824)
    }
}
