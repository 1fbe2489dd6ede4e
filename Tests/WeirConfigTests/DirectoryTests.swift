import Foundation
import Testing
@testable import WeirConfig

/// The directory-reading path: temporary directories built per test, and the shipped conf.d.
@Suite struct DirectoryTests {
    /// Creates a fresh temporary directory holding `files` (a name ending in "/" makes a subdirectory).
    func makeDirectory(_ files: [String: String]) throws -> String {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("weirconfig-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for (name, contents) in files {
            let path = directory + "/" + name
            if name.hasSuffix("/") {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            } else {
                try contents.write(toFile: path, atomically: true, encoding: .utf8)
            }
        }
        return directory
    }

    func loadErrors(_ directory: String) -> [String] {
        do {
            _ = try ConfigLoader.load(directory: directory)
            return []
        } catch let errors as ConfigErrors {
            return errors.errors.map(\.description)
        } catch {
            return ["unexpected error type: \(error)"]
        }
    }

    @Test func shippedConfigurationLoads() throws {
        let confD = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("conf.d").path
        let config = try ConfigLoader.load(directory: confD)
        #expect(config.sourceFiles.map { ($0 as NSString).lastPathComponent } ==
                ["00-global.toml", "05-admin.toml", "10-listeners.toml", "15-http2-guard.toml", "20-pools.toml", "30-routes.toml",
                 "40-sticky.toml"])
        #expect(config.sourceFiles.allSatisfy { $0.hasPrefix(confD + "/") })
        // The shipped files spell out the defaults; state_dir is left to its default ($STATE_DIRECTORY
        // under systemd, else /var/lib/weir), so the installed conf.d has no path relative to the working directory.
        #expect(config.global == GlobalSettings())
        #expect(config.timeouts == Timeouts())
        #expect(config.limits == Limits())
        #expect(config.listeners == [Listener(name: "public", address: SocketAddress(host: "127.0.0.1", port: 8080))])
        #expect(config.admin == AdminSettings())
        #expect(config.admin.address == SocketAddress(host: "127.0.0.1", port: 9090))
        #expect(config.listeners[0].mode == .proxy)
        // No secret is configured: the gateway generates one at first start.
        #expect(config.sticky == StickySettings())
        #expect(config.sticky.secret == nil && config.sticky.secretFile == nil)
        #expect(config.discovery == DiscoverySettings())
        // The demo pool spells out the pool defaults too, except for an http health check of /health
        // and a home chosen by the X-Client header (so one machine can play several clients).
        #expect(config.pools == [Pool(name: "demo", servers: (1...3).map { n in
            Server(id: "demo-\(n)", address: SocketAddress(host: "127.0.0.1", port: UInt16(9000 + n)),
                   publicURL: "http://127.0.0.1:900\(n)")
        }, hashKey: .header("x-client"), health: HealthCheck(kind: .http))])
        let pool = try #require(config.pools.first)
        #expect(pool.policy == .threshold)
        #expect(pool.firstLevel == 0.5)
        #expect(pool.secondLevel == 0.2)
        #expect(pool.hashKey == .header("x-client"))
        #expect(pool.retries == 2)
        #expect(pool.slowStart == .seconds(10))
        #expect(pool.maxQueue == 100)
        #expect(pool.queueTimeout == .seconds(5))
        #expect(pool.passiveFailures == 3)
        #expect(pool.health == HealthCheck(kind: .http, interval: .seconds(2), timeout: .seconds(1), rise: 2, fall: 3,
                                           method: "GET", path: "/health", host: nil, expectStatus: [200...399],
                                           expectBody: nil))
        #expect(pool.servers.allSatisfy { $0.maxConns == nil })
        #expect(pool.rewriteBodyTypes == [])
        // The demo route pins /banking/ transactions to one server.
        let sticky = StickyRule(path: "/banking/*", complete: ["/banking/logout", "/banking/receipt/*"],
                                idleTimeout: .seconds(1200), by: .cookie, cookieName: "weir_pin")
        #expect(config.routes == [Route(name: "default", pathPrefix: "/", pool: "demo", sticky: [sticky])])
        #expect(config.routes[0].spill == nil)
        #expect(config.routes[0].mode == nil)
        #expect(config.routes[0].redirectStatus == 307)
        #expect(config.routes[0].sticky[0].entryPoint == "/banking/")
    }

    /// The commented-out examples in the shipped 30-routes.toml are valid once uncommented.
    @Test func shippedCommentedExamplesAreValid() throws {
        let confD = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("conf.d").path
        let directory = try makeDirectory([:])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for name in try FileManager.default.contentsOfDirectory(atPath: confD) where name.hasSuffix(".toml") {
            var text = try String(contentsOfFile: confD + "/" + name, encoding: .utf8)
            if name == "30-routes.toml" {
                // Uncomment every example line: "#   [[table]]" and "#   key = value".
                text = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
                    let isExample = line.wholeMatch(of: /#   (\[\[[a-z.]+\]\]|[a-z_]+ = .+)/) != nil
                    return isExample ? String(line.dropFirst(4)) : String(line)
                }.joined(separator: "\n")
            }
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        let config = try ConfigLoader.load(directory: directory)
        #expect(config.routes.map(\.name) == ["api", "banking", "default"])
        #expect(config.routes[1] == Route(name: "banking", pathPrefix: "/banking", pool: "banking", spill: "demo",
                                          spillLevel: 0.8))
        #expect(config.pools.map(\.name) == ["demo", "banking"])
        #expect(config.pools[1].hashKey == .cookie("session"))
        #expect(config.pools[1].servers[0].maxConns == 80)
    }

    /// Uncommenting the shipped secret placeholder without replacing it fails, and says how to make a secret.
    @Test func shippedSecretPlaceholderMustBeReplaced() throws {
        let confD = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("conf.d").path
        let directory = try makeDirectory([:])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for name in try FileManager.default.contentsOfDirectory(atPath: confD) where name.hasSuffix(".toml") {
            var text = try String(contentsOfFile: confD + "/" + name, encoding: .utf8)
            if name == "40-sticky.toml" {
                text = text.replacingOccurrences(of: "\n# secret = ", with: "\nsecret = ")
            }
            try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        #expect(loadErrors(directory) == [
            "\(directory)/40-sticky.toml: sticky.secret: must be at least 32 characters, found 10; generate one with: openssl rand -hex 32 (or leave secret out: one is then generated at first start and kept in [global] state_dir)",
        ])
    }

    @Test func readsOnlyTomlFilesInByteOrder() throws {
        let directory = try makeDirectory([
            "b-pool.toml": "[[pool]]\nname = \"demo\"\n[[pool.server]]\nid = \"d\"\naddress = \"127.0.0.1:9001\"\n",
            "B-listener.toml": "[[listener]]\nname = \"public\"\naddress = \"127.0.0.1:8080\"\n",
            "a-route.toml": "[[route]]\nname = \"default\"\npool = \"demo\"\n",
            "README.md": "not toml",
            "old.toml.bak": "garbage = ",
            ".hidden.toml": "garbage = ",
            "sub.toml/": "",
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = try ConfigLoader.load(directory: directory + "/")
        #expect(config.sourceFiles == [directory + "/B-listener.toml", directory + "/a-route.toml",
                                       directory + "/b-pool.toml"])
        #expect(config.routes.map(\.pool) == ["demo"])
    }

    @Test func errorsNameTheDirectoryJoinedWithTheFile() throws {
        let directory = try makeDirectory([
            "10-listener.toml": "[[listener]]\nname = \"public\"\naddress = \"localhost:8080\"\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(loadErrors(directory) == [
            #"\#(directory)/10-listener.toml: listener[0].address: invalid address "localhost:8080": "localhost" is a host name, not a numeric IP address (host names are not resolved); expected a numeric IP address and port such as "127.0.0.1:8080" or "[::1]:8080""#,
            #"\#(directory): route: no route defined; add a [[route]] that sends requests to a pool, e.g. name = "default", path = "/" and pool = "demo""#,
        ])
    }

    @Test func directoryWithoutTomlFiles() throws {
        let directory = try makeDirectory(["README.md": "hello"])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(loadErrors(directory) == [
            "\(directory): *.toml: no *.toml files found; the configuration needs at least one [[listener]], [[pool]] and [[route]]",
        ])
    }

    @Test func missingDirectory() {
        #expect(loadErrors("/nonexistent/weir/conf.d") == [
            "/nonexistent/weir/conf.d: directory: does not exist; expected a directory of *.toml configuration files, such as conf.d",
        ])
    }

    @Test func fileInsteadOfDirectory() throws {
        let directory = try makeDirectory(["weir.toml": baseTOML])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(loadErrors(directory + "/weir.toml") == [
            "\(directory)/weir.toml: directory: is not a directory; expected a directory of *.toml configuration files, such as conf.d",
        ])
    }

    @Test func invalidUTF8File() throws {
        let directory = try makeDirectory(["00-base.toml": baseTOML])
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data([0x5b, 0xff, 0xfe, 0x5d]).write(to: URL(fileURLWithPath: directory + "/10-bad.toml"))
        #expect(loadErrors(directory) == [
            "\(directory)/10-bad.toml: (file): is not valid UTF-8 text",
        ])
    }
}
