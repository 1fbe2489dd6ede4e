import Foundation
import Testing
@testable import WeirConfig

/// Every error the loader reports, with its exact text.
@Suite struct ErrorMessageTests {
    // MARK: Unknown tables and keys

    @Test func unknownKeyWithSuggestion() {
        #expect(errorLines(appending: "[global]\nworker = 4\n") == [
            #"a.toml: global.worker: unknown key (did you mean "workers"?)"#,
        ])
        #expect(errorLines(appending: "[timeouts]\nclientIdle = \"5s\"\n") == [
            #"a.toml: timeouts.clientIdle: unknown key (did you mean "client_idle"?)"#,
        ])
    }

    @Test func unknownKeyWithoutSuggestion() {
        #expect(errorLines(appending: "[global]\ncolour = \"blue\"\n") == [
            "a.toml: global.colour: unknown key; known keys in [global]: workers, max_connections, drain_timeout, access_log, state_dir, access_log_format, log_level, log_format",
        ])
    }

    @Test func keyInTheWrongSettingsTable() {
        #expect(errorLines(appending: "[global]\nclient_idle = \"5s\"\n") == [
            "a.toml: global.client_idle: unknown key; client_idle belongs in [timeouts], not [global]",
        ])
    }

    @Test func unknownKeysInArrayTables() {
        let lines = errorLines([("a.toml", """
            [[listener]]
            name = "public"
            address = "127.0.0.1:8080"
            port = 8080
            [[pool]]
            name = "demo"
            address = "127.0.0.1:9001"
            [[pool.server]]
            id = "demo-1"
            adress = "127.0.0.1:9001"
            [[route]]
            name = "default"
            pool = "demo"
            prefix = "/"
            """)])
        #expect(lines == [
            "a.toml: listener[0].port: unknown key; known keys in [[listener]]: name, address, max_connections, mode, https_redirect, proxy_protocol, proxy_protocol_from, tls, http2, h2c, http2_max_concurrent_streams, http2_max_header_list_size, http2_max_frame_size, http2_stream_idle_timeout, http2_max_requests",
            "a.toml: pool[0].address: unknown key; address belongs in [[pool.server]], not [[pool]]",
            #"a.toml: pool[0].server[0].adress: unknown key (did you mean "address"?)"#,
            #"a.toml: pool[0].server[0].address: missing required key, e.g. address = "127.0.0.1:9001""#,
            "a.toml: route[0].prefix: unknown key; known keys in [[route]]: name, pool, host, path, listener, spill, spill_level, mode, redirect_status, sticky",
        ])
    }

    @Test func unknownTables() {
        #expect(errorLines(appending: "[globl]\nworkers = 1\n") == [
            "a.toml: globl: unknown table (did you mean [global]?)",
        ])
        #expect(errorLines(appending: "[[listeners]]\nname = \"x\"\n") == [
            "a.toml: listeners: unknown table (did you mean [[listener]]?)",
        ])
        #expect(errorLines(appending: "[tls]\ncert = \"x\"\n") == [
            "a.toml: tls: unknown table; known tables: [global], [timeouts], [limits], [admin], [sticky], [discovery], [[listener]], [[pool]], [[route]], [peer], [group], [http2]",
        ])
    }

    @Test func unknownTopLevelKeys() {
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "workers = 4\nfoo = 1\n")]) == [
            "b.toml: foo: unknown top-level key; keys belong inside one of [global], [timeouts], [limits], [admin], [sticky], [discovery], [[listener]], [[pool]], [[route]], [peer], [group], [http2]",
            "b.toml: workers: unknown top-level key; workers belongs in [global]",
        ])
    }

    @Test func tableWrittenWithTheWrongBrackets() {
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[listener]\nname = \"x\"\n")]) == [
            "b.toml: listener: expected an array of tables ([[listener]]), found a table; write [[listener]], not [listener]",
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[[global]]\nworkers = 1\n")]) == [
            "b.toml: global: expected a table ([global]), found an array",
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "route = 3\n")]) == [
            "b.toml: route: expected an array of tables ([[route]]), found an integer (3)",
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "route = [1]\n")]) == [
            "b.toml: route[0]: expected a table ([[route]]), found an integer (1)",
        ])
    }

    @Test func serverWithoutAPoolInTheSameFile() {
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[[pool.server]]\nid = \"x\"\naddress = \"127.0.0.1:9009\"\n")]) == [
            "b.toml: pool.server: [[pool.server]] must follow a [[pool]] in the same file",
        ])
    }

    // MARK: Types

    @Test func wrongTypes() {
        #expect(errorLines(appending: "[global]\nworkers = \"4\"\n") == [
            #"a.toml: global.workers: expected an integer, found a string ("4")"#,
        ])
        #expect(errorLines(appending: "[limits]\nbuffer_bytes = 1.5\n") == [
            "a.toml: limits.buffer_bytes: expected an integer, found a floating-point number (1.5)",
        ])
        #expect(errorLines(appending: "[[listener]]\nname = 3\naddress = \"127.0.0.1:8081\"\n") == [
            "a.toml: listener[1].name: expected a string, found an integer (3)",
        ])
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = [\"demo\"]\n") == [
            "a.toml: route[1].pool: expected a string, found an array",
        ])
        #expect(errorLines(appending: "[global]\naccess_log = false\n") == [
            #"a.toml: global.access_log: expected "stdout", "off" or an absolute file path such as "/var/log/weir/access.log", found a boolean (false)"#,
        ])
    }

    @Test func accessLogMustBeStdoutOffOrAnAbsolutePath() {
        #expect(errorLines(appending: "[global]\naccess_log = \"logs/access.log\"\n") == [
            #"a.toml: global.access_log: expected "stdout", "off" or an absolute file path such as "/var/log/weir/access.log", found "logs/access.log""#,
        ])
    }

    // MARK: Durations

    @Test func badDurations() {
        let form = #"expected a duration such as "10s" or "250ms" (a positive whole number followed by ms, s, m or h)"#
        #expect(errorLines(appending: "[timeouts]\nclient_idle = 60\n") == [
            "a.toml: timeouts.client_idle: \(form), found an integer (60)",
        ])
        #expect(errorLines(appending: "[timeouts]\nclient_idle = \"60\"\n") == [
            #"a.toml: timeouts.client_idle: \#(form), found "60""#,
        ])
        #expect(errorLines(appending: "[global]\ndrain_timeout = \"0s\"\n") == [
            #"a.toml: global.drain_timeout: \#(form), found "0s""#,
        ])
        for text in ["1.5s", "10 s", "10d", "-5s", "s", "", "10S", "1e3ms"] {
            #expect(errorLines(appending: "[timeouts]\ntunnel_idle = \"\(text)\"\n") == [
                #"a.toml: timeouts.tunnel_idle: \#(form), found "\#(text)""#,
            ])
        }
    }

    // MARK: Ranges

    @Test func numbersOutOfRange() {
        #expect(errorLines(appending: "[global]\nworkers = 2000\n") == [
            "a.toml: global.workers: must be between 0 and 1024, found 2000",
        ])
        #expect(errorLines(appending: "[global]\nworkers = -1\nmax_connections = 0\n") == [
            "a.toml: global.workers: must be between 0 and 1024, found -1",
            "a.toml: global.max_connections: must be between 1 and 10000000, found 0",
        ])
        #expect(errorLines(appending: """
            [limits]
            max_request_line = 10
            max_header_bytes = 100
            max_header_count = 0
            upstream_idle_per_server = 0
            buffer_bytes = 1024
            """) == [
            "a.toml: limits.max_request_line: must be between 256 and 1048576, found 10",
            "a.toml: limits.max_header_bytes: must be between 1024 and 16777216, found 100",
            "a.toml: limits.max_header_count: must be between 8 and 10000, found 0",
            "a.toml: limits.upstream_idle_per_server: must be between 1 and 4096, found 0",
            "a.toml: limits.buffer_bytes: must be between 4096 and 67108864, found 1024",
        ])
        #expect(errorLines(appending: "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:8081\"\nmax_connections = 0\n") == [
            "a.toml: listener[1].max_connections: must be between 1 and 10000000, found 0",
        ])
    }

    @Test func serverNumbersOutOfRange() {
        let lines = errorLines(appending: """
            [[pool]]
            name = "p"
            [[pool.server]]
            id = "s1"
            address = "127.0.0.1:9101"
            weight = 0
            [[pool.server]]
            id = "s2"
            address = "127.0.0.1:9102"
            weight = 257
            capacity = 0
            group = -1
            """)
        #expect(lines == [
            "a.toml: pool[1].server[0].weight: must be between 1 and 256, found 0",
            "a.toml: pool[1].server[1].weight: must be between 1 and 256, found 257",
            "a.toml: pool[1].server[1].capacity: must be at least 1, found 0",
            "a.toml: pool[1].server[1].group: must be at least 0, found -1",
        ])
    }

    // MARK: Addresses

    @Test func badAddresses() {
        func listener(_ address: String) -> [String] {
            errorLines(appending: "[[listener]]\nname = \"l\"\naddress = \"\(address)\"\n")
        }
        let form = #"expected a numeric IP address and port such as "127.0.0.1:8080" or "[::1]:8080""#
        #expect(listener("localhost:8080") == [
            #"a.toml: listener[1].address: invalid address "localhost:8080": "localhost" is a host name, not a numeric IP address (host names are not resolved); \#(form)"#,
        ])
        #expect(listener("127.0.0.1") == [
            #"a.toml: listener[1].address: invalid address "127.0.0.1": missing port; \#(form)"#,
        ])
        #expect(listener("127.0.0.1:70000") == [
            #"a.toml: listener[1].address: invalid address "127.0.0.1:70000": port 70000 is out of range (0-65535); \#(form)"#,
        ])
        #expect(listener("127.0.0.1:http") == [
            #"a.toml: listener[1].address: invalid address "127.0.0.1:http": port "http" is not a number; \#(form)"#,
        ])
        #expect(listener("300.0.0.1:80") == [
            #"a.toml: listener[1].address: invalid address "300.0.0.1:80": "300.0.0.1" is not a valid IPv4 address; \#(form)"#,
        ])
        #expect(listener("::1:8080") == [
            #"a.toml: listener[1].address: invalid address "::1:8080": an IPv6 address must be in brackets; \#(form)"#,
        ])
        #expect(listener("[::g]:8080") == [
            #"a.toml: listener[1].address: invalid address "[::g]:8080": "::g" is not a valid IPv6 address; \#(form)"#,
        ])
        #expect(listener("") == [
            "a.toml: listener[1].address: must not be empty; \(form)",
        ])
    }

    @Test func serverPortZeroIsRejected() {
        #expect(errorLines(appending: "[[pool]]\nname = \"p\"\n[[pool.server]]\nid = \"s\"\naddress = \"127.0.0.1:0\"\n") == [
            #"a.toml: pool[1].server[0].address: invalid address "127.0.0.1:0": a server port must be between 1 and 65535; expected a numeric IP address and port such as "127.0.0.1:9001" or "[::1]:9001""#,
        ])
    }

    @Test func duplicateListenerAddress() {
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[[listener]]\nname = \"second\"\naddress = \"127.0.0.1:8080\"\n")]) == [
            #"b.toml: listener[0].address: address 127.0.0.1:8080 is already used by listener "public" at a.toml: listener[0].address"#,
        ])
        // IPv6 addresses are compared in canonical form.
        #expect(errorLines(appending: """
            [[listener]]
            name = "v6"
            address = "[::1]:8080"
            [[listener]]
            name = "v6-again"
            address = "[0:0::0001]:8080"
            """) == [
            #"a.toml: listener[2].address: address [::1]:8080 is already used by listener "v6" at a.toml: listener[1].address"#,
        ])
    }

    // MARK: Names

    @Test func duplicateNames() {
        let lines = errorLines([("a.toml", baseTOML), ("b.toml", """
            [[listener]]
            name = "public"
            address = "127.0.0.1:8081"
            [[pool]]
            name = "demo"
            [[pool.server]]
            id = "other"
            address = "127.0.0.1:9002"
            [[pool]]
            name = "api"
            [[pool.server]]
            id = "demo-1"
            address = "127.0.0.1:9003"
            [[route]]
            name = "default"
            pool = "api"
            """)])
        #expect(lines == [
            #"b.toml: listener[0].name: duplicate listener name "public"; already defined at a.toml: listener[0].name"#,
            #"b.toml: pool[0].name: duplicate pool name "demo"; already defined at a.toml: pool[0].name"#,
            #"b.toml: pool[1].server[0].id: duplicate server id "demo-1"; already defined at a.toml: pool[0].server[0].id (server ids must be unique across all pools)"#,
            #"b.toml: route[0].name: duplicate route name "default"; already defined at a.toml: route[0].name"#,
        ])
    }

    @Test func emptyAndMissingNames() {
        let lines = errorLines(appending: """
            [[listener]]
            name = ""
            address = "127.0.0.1:8081"
            [[pool]]
            name = " "
            [[pool.server]]
            id = ""
            address = "127.0.0.1:9002"
            [[route]]
            pool = ""
            """)
        #expect(lines == [
            #"a.toml: listener[1].name: must not be empty, e.g. name = "public""#,
            #"a.toml: pool[1].name: must not be empty, e.g. name = "demo""#,
            #"a.toml: pool[1].server[0].id: must not be empty, e.g. id = "demo-1""#,
            #"a.toml: route[1].name: missing required key, e.g. name = "default""#,
            #"a.toml: route[1].pool: must not be empty, e.g. pool = "demo""#,
        ])
    }

    // MARK: Pools

    @Test func poolWithoutServers() {
        #expect(errorLines(appending: "[[pool]]\nname = \"empty\"\n") == [
            #"a.toml: pool[1].server: pool "empty" has no servers; add at least one [[pool.server]] with id and address after the [[pool]]"#,
        ])
        #expect(errorLines(appending: "[[pool]]\nname = \"empty\"\nserver = []\n") == [
            #"a.toml: pool[1].server: pool "empty" has no servers; add at least one [[pool.server]] with id and address after the [[pool]]"#,
        ])
    }

    @Test func unknownPolicy() {
        #expect(errorLines(appending: "[[pool]]\nname = \"p\"\npolicy = \"least-connections\"\n[[pool.server]]\nid = \"s\"\naddress = \"127.0.0.1:9002\"\n") == [
            #"a.toml: pool[1].policy: unknown policy "least-connections"; supported policies: "threshold", "least-load", "round-robin", "p2c", "hash""#,
        ])
        #expect(errorLines(appending: "[[pool]]\nname = \"p\"\npolicy = \"roundrobin\"\n[[pool.server]]\nid = \"s\"\naddress = \"127.0.0.1:9002\"\n") == [
            #"a.toml: pool[1].policy: unknown policy "roundrobin" (did you mean "round-robin"?); supported policies: "threshold", "least-load", "round-robin", "p2c", "hash""#,
        ])
    }

    @Test func badPublicURLs() {
        for url in ["ftp://example.com", "http://", "http://example.com/path", "https://example.com?q=1",
                    "example.com", "http://exa mple.com", "http://example.com:0", "http://example.com:http",
                    "http://user@example.com"] {
            #expect(errorLines(appending: "[[pool]]\nname = \"p\"\n[[pool.server]]\nid = \"s\"\naddress = \"127.0.0.1:9002\"\npublic_url = \"\(url)\"\n") == [
                #"a.toml: pool[1].server[0].public_url: invalid URL "\#(url)"; expected an http:// or https:// URL with no path beyond "/", such as "http://127.0.0.1:9001""#,
            ])
        }
    }

    // MARK: Routes

    @Test func danglingPoolReferences() {
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"dmeo\"\n") == [
            #"a.toml: route[1].pool: no pool named "dmeo" (did you mean "demo"?)"#,
        ])
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"api\"\n") == [
            #"a.toml: route[1].pool: no pool named "api"; defined pools: "demo""#,
        ])
        #expect(errorLines([("a.toml", "[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:80\"\n[[route]]\nname = \"r\"\npool = \"api\"\n")]) == [
            #"a.toml: route[0].pool: no pool named "api"; no [[pool]] is defined"#,
        ])
    }

    @Test func danglingListenerReference() {
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\nlistener = \"internal\"\n") == [
            #"a.toml: route[1].listener: no listener named "internal"; defined listeners: "public""#,
        ])
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\nlistener = \"pubilc\"\n") == [
            #"a.toml: route[1].listener: no listener named "pubilc" (did you mean "public"?)"#,
        ])
    }

    @Test func danglingReferencesAreResolvedAfterEveryFileAndNameTheRouteFile() {
        let lines = errorLines([
            ("10-routes.toml", "[[route]]\nname = \"r\"\npool = \"later\"\n[[route]]\nname = \"s\"\npool = \"missing\"\n"),
            ("20-rest.toml", baseTOML.replacingOccurrences(of: "name = \"demo\"", with: "name = \"later\"")
                .replacingOccurrences(of: "pool = \"demo\"", with: "pool = \"later\"")),
        ])
        #expect(lines == [
            #"10-routes.toml: route[1].pool: no pool named "missing"; defined pools: "later""#,
        ])
    }

    @Test func badHostsAndPaths() {
        let form = #"expected an exact host name such as "example.com" or a wildcard such as "*.example.com" (no scheme, no port)"#
        for host in ["example.com:8080", "http://example.com", "*", "*.", "a..b", "-a.com", "exa mple.com", "foo.*.com"] {
            #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\nhost = \"\(host)\"\n") == [
                #"a.toml: route[1].host: invalid host "\#(host)"; \#(form)"#,
            ])
        }
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\nhost = \"\"\n") == [
            "a.toml: route[1].host: must not be empty; leave host out to match any host",
        ])
        let pathForm = ##"expected a path prefix starting with "/" (no spaces, "?" or "#") such as "/" or "/api/", or a pattern with "*" such as "/users/*/banking""##
        for path in ["api", "", "/a b", "/a?b", "/a#b", "*/banking", "/a*?b"] {
            #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\npath = \"\(path)\"\n") == [
                #"a.toml: route[1].path: invalid path "\#(path)"; \#(pathForm)"#,
            ])
        }
    }

    // MARK: Whole configuration

    @Test func noListenerAndNoRoute() {
        let pool = "[[pool]]\nname = \"demo\"\n[[pool.server]]\nid = \"d\"\naddress = \"127.0.0.1:9001\"\n"
        #expect(errorLines([("a.toml", pool)]) == [
            #"(configuration): listener: no listener defined; add a [[listener]] with a name and an address, e.g. name = "public" and address = "127.0.0.1:8080""#,
            #"(configuration): route: no route defined; add a [[route]] that sends requests to a pool, e.g. name = "default", path = "/" and pool = "demo""#,
        ])
    }

    @Test func noFiles() {
        #expect(errorLines([]) == [
            "(configuration): *.toml: no *.toml files found; the configuration needs at least one [[listener]], [[pool]] and [[route]]",
        ])
    }

    @Test func settingTheSameKeyInTwoFiles() {
        let lines = errorLines([
            ("00-global.toml", "[global]\nworkers = 2\n[limits]\nbuffer_bytes = 8192\n"),
            ("10-main.toml", baseTOML),
            ("50-override.toml", "[global]\nworkers = 4\nmax_connections = 10\n[limits]\nbuffer_bytes = 8192\n"),
        ])
        #expect(lines == [
            "50-override.toml: global.workers: already set in 00-global.toml; each [global] key may be set in only one file",
            "50-override.toml: limits.buffer_bytes: already set in 00-global.toml; each [limits] key may be set in only one file",
        ])
    }

    @Test func syntaxErrorNamesFileLineAndColumn() {
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[global]\nworkers = \n")]) == [
            #"b.toml: line 2, column 11: TOML syntax error: Error while parsing key-value pair: expected value, saw '\n'"#,
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[global]\nworkers = 1\n[global]\n")]) == [
            "b.toml: line 3, column 1: TOML syntax error: Error while parsing table header: cannot redefine existing table 'global'",
        ])
    }

    @Test func syntaxErrorSuppressesCrossFileChecksButOtherFilesAreStillChecked() {
        // b.toml might have defined the listener, the pool and the route: only report what is certain.
        let lines = errorLines([
            ("a.toml", "[global]\nworkers = \"x\"\n[[route]]\nname = \"r\"\npool = \"in-broken-file\"\n"),
            ("b.toml", "[[pool]\nname = \"in-broken-file\"\n"),
        ])
        #expect(lines.count == 2)
        #expect(lines.first == #"a.toml: global.workers: expected an integer, found a string ("x")"#)
        #expect(lines.last?.hasPrefix("b.toml: line 1, column ") == true)
    }

    @Test func allErrorsAreCollected() throws {
        let error = try #require(throws: ConfigErrors.self) {
            try ConfigLoader.parse(files: [
                (name: "a.toml", contents: "[global]\nworkers = 5000\n[timeouts]\nclient_idle = 5\n"),
                (name: "b.toml", contents: "[[listener]]\nname = \"x\"\naddress = \"localhost:80\"\n"),
            ])
        }
        #expect(error.errors.map(\.file) == ["a.toml", "a.toml", "b.toml", "(configuration)"])
        #expect(error.errors.map(\.key) == ["global.workers", "timeouts.client_idle", "listener[0].address", "route"])
        #expect(error.description == error.errors.map(\.description).joined(separator: "\n"))
        #expect(error.errors[0] == ConfigError(file: "a.toml", key: "global.workers",
                                               message: "must be between 0 and 1024, found 5000"))
        #expect(error.errors[0].description == "a.toml: global.workers: must be between 0 and 1024, found 5000")
    }
}
