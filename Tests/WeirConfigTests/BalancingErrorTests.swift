import Testing
@testable import WeirConfig

/// Every error of the balancing keys, with its exact text.
@Suite struct BalancingErrorTests {
    /// Errors of `a.toml` = the base followed by a pool "p" with `poolKeys`, an optional `[pool.health]` table
    /// and one server with `serverKeys`.
    func poolErrors(_ poolKeys: String = "", health: String? = nil, server serverKeys: String = "") -> [String] {
        let healthTable = health.map { "[pool.health]\n\($0)\n" } ?? ""
        return errorLines(appending: """
            [[pool]]
            name = "p"
            \(poolKeys)
            \(healthTable)
            [[pool.server]]
            id = "s"
            address = "127.0.0.1:9002"
            \(serverKeys)
            """)
    }

    // MARK: Pool keys

    @Test func levelsOutOfRange() {
        #expect(poolErrors("first_level = 1.5") == [
            #"a.toml: pool[1].first_level: must be between 0.0 and 1.0 (or "0%" and "100%"), found 1.5"#,
        ])
        #expect(poolErrors("first_level = -0.1\nsecond_level = 2") == [
            #"a.toml: pool[1].first_level: must be between 0.0 and 1.0 (or "0%" and "100%"), found -0.1"#,
            #"a.toml: pool[1].second_level: must be between 0.0 and 1.0 (or "0%" and "100%"), found 2"#,
        ])
        #expect(poolErrors(#"second_level = "150%""#) == [
            #"a.toml: pool[1].second_level: must be between 0.0 and 1.0 (or "0%" and "100%"), found "150%""#,
        ])
    }

    @Test func levelsOfTheWrongForm() {
        let form = #"expected a number between 0.0 and 1.0 such as 0.5, or a percentage such as "50%""#
        #expect(poolErrors("first_level = true") == [
            "a.toml: pool[1].first_level: \(form), found a boolean (true)",
        ])
        for text in ["half", "50", "0.5", "50 %", "%", "-5%", ".5%", "5.%", "1e2%"] {
            #expect(poolErrors("first_level = \"\(text)\"") == [
                #"a.toml: pool[1].first_level: \#(form), found "\#(text)""#,
            ])
        }
    }

    @Test func badHashKeys() {
        let form = #"expected "source", "path", "header:NAME" such as "header:X-User", or "cookie:NAME" such as "cookie:session""#
        #expect(poolErrors(#"hash_key = "ip""#) == [
            #"a.toml: pool[1].hash_key: invalid hash_key "ip"; \#(form)"#,
        ])
        #expect(poolErrors(#"hash_key = "Source""#) == [
            #"a.toml: pool[1].hash_key: invalid hash_key "Source" (did you mean "source"?); \#(form)"#,
        ])
        #expect(poolErrors(#"hash_key = "header""#) == [
            #"a.toml: pool[1].hash_key: invalid hash_key "header"; \#(form)"#,
        ])
        #expect(poolErrors(#"hash_key = "header:""#) == [
            #"a.toml: pool[1].hash_key: invalid hash_key "header:": the header name is missing; \#(form)"#,
        ])
        #expect(poolErrors(#"hash_key = "cookie:my session""#) == [
            #"a.toml: pool[1].hash_key: invalid hash_key "cookie:my session": "my session" is not a valid cookie name; \#(form)"#,
        ])
        #expect(poolErrors("hash_key = 1") == [
            "a.toml: pool[1].hash_key: expected a string, found an integer (1)",
        ])
    }

    @Test func poolNumbersOutOfRange() {
        #expect(poolErrors("retries = 11\nmax_queue = -1\npassive_failures = 101") == [
            "a.toml: pool[1].retries: must be between 0 and 10, found 11",
            "a.toml: pool[1].max_queue: must be between 0 and 100000, found -1",
            "a.toml: pool[1].passive_failures: must be between 0 and 100, found 101",
        ])
        #expect(poolErrors(server: "max_conns = 0") == [
            "a.toml: pool[1].server[0].max_conns: must be at least 1, found 0",
        ])
        #expect(poolErrors(server: "max_conns = \"10\"") == [
            #"a.toml: pool[1].server[0].max_conns: expected an integer, found a string ("10")"#,
        ])
    }

    @Test func poolDurations() {
        let form = #"expected a duration such as "10s" or "250ms" (a positive whole number followed by ms, s, m or h)"#
        let formWithOff = #"expected a duration such as "10s" or "250ms" (a whole number followed by ms, s, m or h), or "0s" for off"#
        #expect(poolErrors(#"queue_timeout = "0s""#) == [
            #"a.toml: pool[1].queue_timeout: \#(form), found "0s""#,
        ])
        #expect(poolErrors(#"slow_start = "-1s""#) == [
            #"a.toml: pool[1].slow_start: \#(formWithOff), found "-1s""#,
        ])
        #expect(poolErrors("slow_start = 0") == [
            "a.toml: pool[1].slow_start: \(formWithOff), found an integer (0)",
        ])
    }

    @Test func misplacedPoolKeys() {
        #expect(poolErrors(#"interval = "1s""#) == [
            "a.toml: pool[1].interval: unknown key; interval belongs in [pool.health], not [[pool]]",
        ])
        #expect(poolErrors(server: "max_queue = 5") == [
            "a.toml: pool[1].server[0].max_queue: unknown key; max_queue belongs in [[pool]], not [[pool.server]]",
        ])
        #expect(poolErrors(server: "max_con = 5") == [
            #"a.toml: pool[1].server[0].max_con: unknown key (did you mean "max_conns"?)"#,
        ])
        #expect(poolErrors("frist_level = 0.5") == [
            #"a.toml: pool[1].frist_level: unknown key (did you mean "first_level"?)"#,
        ])
    }

    // MARK: [pool.health]

    @Test func timeoutMustBeShorterThanInterval() {
        #expect(poolErrors(health: "interval = \"2s\"\ntimeout = \"2s\"") == [
            #"a.toml: pool[1].health.timeout: must be shorter than pool[1].health.interval ("2s"), found "2s""#,
        ])
        #expect(poolErrors(health: "timeout = \"5s\"") == [
            #"a.toml: pool[1].health.timeout: must be shorter than pool[1].health.interval (default "2s"), found "5s""#,
        ])
        #expect(poolErrors(health: "interval = \"500ms\"") == [
            #"a.toml: pool[1].health.interval: must be longer than pool[1].health.timeout (default "1s"), found "500ms""#,
        ])
        // An invalid interval is reported once, without a comparison.
        #expect(poolErrors(health: "interval = \"50ms\"\ntimeout = \"10ms\"") == [
            #"a.toml: pool[1].health.interval: must be at least 100ms, found "50ms""#,
        ])
    }

    @Test func riseAndFallOutOfRange() {
        #expect(poolErrors(health: "rise = 0\nfall = 101") == [
            "a.toml: pool[1].health.rise: must be between 1 and 100, found 0",
            "a.toml: pool[1].health.fall: must be between 1 and 100, found 101",
        ])
        #expect(poolErrors(health: "rise = 1.5") == [
            "a.toml: pool[1].health.rise: expected an integer, found a floating-point number (1.5)",
        ])
    }

    @Test func badExpectStatus() {
        let status = #"expected a status such as 200 or a range such as "200-399""#
        #expect(poolErrors(health: "expect_status = [200, 700, 99]") == [
            "a.toml: pool[1].health.expect_status[1]: must be between 100 and 599, found 700",
            "a.toml: pool[1].health.expect_status[2]: must be between 100 and 599, found 99",
        ])
        #expect(poolErrors(health: #"expect_status = ["399-200"]"#) == [
            #"a.toml: pool[1].health.expect_status[0]: invalid status range "399-200": the first status must not be greater than the second (write "200-399")"#,
        ])
        #expect(poolErrors(health: #"expect_status = ["500-600", "700"]"#) == [
            #"a.toml: pool[1].health.expect_status[0]: invalid status range "500-600": statuses must be between 100 and 599"#,
            #"a.toml: pool[1].health.expect_status[1]: invalid status "700": statuses must be between 100 and 599"#,
        ])
        for text in ["2xx", "200-", "-200", "200-300-400", "200 - 299", ""] {
            let what = text.contains("-") ? "status range" : "status"
            #expect(poolErrors(health: "expect_status = [\"\(text)\"]") == [
                #"a.toml: pool[1].health.expect_status[0]: invalid \#(what) "\#(text)"; \#(status)"#,
            ])
        }
        #expect(poolErrors(health: "expect_status = [true, 2.5]") == [
            "a.toml: pool[1].health.expect_status[0]: \(status), found a boolean (true)",
            "a.toml: pool[1].health.expect_status[1]: \(status), found a floating-point number (2.5)",
        ])
        #expect(poolErrors(health: "expect_status = 200") == [
            #"a.toml: pool[1].health.expect_status: expected an array of statuses such as [200, 204] or ["200-399"], found an integer (200)"#,
        ])
        #expect(poolErrors(health: #"expect_status = "200-399""#) == [
            #"a.toml: pool[1].health.expect_status: expected an array of statuses such as [200, 204] or ["200-399"], found a string ("200-399")"#,
        ])
        #expect(poolErrors(health: "expect_status = []") == [
            #"a.toml: pool[1].health.expect_status: must not be empty; expected an array of statuses such as [200, 204] or ["200-399"]"#,
        ])
    }

    @Test func badHealthValues() {
        #expect(poolErrors(health: #"type = "htp""#) == [
            #"a.toml: pool[1].health.type: unknown health check type "htp" (did you mean "http"?); supported types: "http", "tcp", "none""#,
        ])
        #expect(poolErrors(health: #"type = "ping""#) == [
            #"a.toml: pool[1].health.type: unknown health check type "ping"; supported types: "http", "tcp", "none""#,
        ])
        #expect(poolErrors(health: #"method = "GE T""#) == [
            #"a.toml: pool[1].health.method: invalid method "GE T"; expected an HTTP method such as "GET" or "HEAD""#,
        ])
        #expect(poolErrors(health: #"path = "health""#) == [
            ##"a.toml: pool[1].health.path: invalid path "health"; expected a request path starting with "/" (no spaces or "#") such as "/health""##,
        ])
        #expect(poolErrors(health: #"host = """#) == [
            "a.toml: pool[1].health.host: must not be empty; leave host out to send the server's address",
        ])
        #expect(poolErrors(health: #"host = "http://example.com""#) == [
            #"a.toml: pool[1].health.host: invalid host "http://example.com"; expected a Host header value such as "example.com" or "example.com:8080""#,
        ])
        #expect(poolErrors(health: #"expect_body = """#) == [
            "a.toml: pool[1].health.expect_body: must not be empty; leave expect_body out to not check the body",
        ])
        #expect(poolErrors(health: #"interval = "1.5s""#) == [
            #"a.toml: pool[1].health.interval: expected a duration such as "10s" or "250ms" (a positive whole number followed by ms, s, m or h), found "1.5s""#,
        ])
    }

    @Test func unknownAndMisplacedHealthKeys() {
        #expect(poolErrors(health: "intervall = \"1s\"") == [
            #"a.toml: pool[1].health.intervall: unknown key (did you mean "interval"?)"#,
        ])
        #expect(poolErrors(health: "retries = 1") == [
            "a.toml: pool[1].health.retries: unknown key; retries belongs in [[pool]], not [pool.health]",
        ])
        #expect(poolErrors(health: "scheme = \"https\"") == [
            "a.toml: pool[1].health.scheme: unknown key; known keys in [pool.health]: type, interval, timeout, rise, fall, method, path, host, expect_status, expect_body",
        ])
    }

    @Test func healthTableOfTheWrongShape() {
        #expect(errorLines(appending: """
            [[pool]]
            name = "p"
            [[pool.health]]
            type = "http"
            [[pool.server]]
            id = "s"
            address = "127.0.0.1:9002"
            """) == [
            "a.toml: pool[1].health: expected a table ([pool.health]), found an array; write [pool.health], not [[pool.health]]",
        ])
        #expect(poolErrors(#"health = "http""#) == [
            #"a.toml: pool[1].health: expected a table ([pool.health]), found a string ("http")"#,
        ])
        #expect(errorLines([("a.toml", baseTOML), ("b.toml", "[pool.health]\ntype = \"http\"\n")]) == [
            "b.toml: pool.health: [pool.health] must follow a [[pool]] in the same file",
        ])
    }

    @Test func anInvalidPoolIsStillKnownToRoutes() {
        // Only the bad key is reported, not also a dangling pool reference.
        #expect(errorLines(appending: """
            [[pool]]
            name = "p"
            first_level = 3
            [[pool.server]]
            id = "s"
            address = "127.0.0.1:9002"
            [[route]]
            name = "r"
            path = "/p/"
            pool = "p"
            """) == [
            #"a.toml: pool[1].first_level: must be between 0.0 and 1.0 (or "0%" and "100%"), found 3"#,
        ])
    }

    // MARK: Routes

    @Test func danglingSpill() {
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\nspill = \"overflow\"\n") == [
            #"a.toml: route[1].spill: no pool named "overflow"; defined pools: "demo""#,
        ])
        #expect(errorLines(appending: """
            [[pool]]
            name = "overflow"
            [[pool.server]]
            id = "o"
            address = "127.0.0.1:9002"
            [[route]]
            name = "r"
            pool = "demo"
            spill = "overflwo"
            """) == [
            #"a.toml: route[1].spill: no pool named "overflwo" (did you mean "overflow"?)"#,
        ])
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\nspill = \"\"\n") == [
            #"a.toml: route[1].spill: must not be empty, e.g. spill = "overflow""#,
        ])
    }

    @Test func spillToTheRoutesOwnPool() {
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"demo\"\nspill = \"demo\"\n") == [
            #"a.toml: route[1].spill: spill pool "demo" is the route's own pool; name another [[pool]] to take the overflow"#,
        ])
        // Also when that pool does not exist: the self reference is reported, the dangling pool once.
        #expect(errorLines(appending: "[[route]]\nname = \"r\"\npool = \"gone\"\nspill = \"gone\"\n") == [
            #"a.toml: route[1].spill: spill pool "gone" is the route's own pool; name another [[pool]] to take the overflow"#,
            #"a.toml: route[1].pool: no pool named "gone"; defined pools: "demo""#,
        ])
    }

    // MARK: [admin]

    @Test func adminAddressUsedByAListener() {
        #expect(errorLines([
            ("05-admin.toml", "[admin]\naddress = \"127.0.0.1:8080\"\n"),
            ("10-main.toml", baseTOML),
        ]) == [
            #"05-admin.toml: admin.address: address 127.0.0.1:8080 is already used by listener "public" at 10-main.toml: listener[0].address; the admin listener needs an address of its own"#,
        ])
        // The default admin address, with no [admin] table at all.
        #expect(errorLines([("a.toml", baseTOML.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:9090"))]) == [
            #"a.toml: listener[0].address: address 127.0.0.1:9090 is also the default address of the admin listener; set [admin] address to another address, or to "off""#,
        ])
    }

    @Test func badAdminAddresses() {
        let form = #"expected a numeric IP address and port such as "127.0.0.1:9090" or "[::1]:9090", or "off" to turn the admin listener off"#
        #expect(errorLines(appending: "[admin]\naddress = \"localhost:9090\"\n") == [
            #"a.toml: admin.address: invalid address "localhost:9090": "localhost" is a host name, not a numeric IP address (host names are not resolved); \#(form)"#,
        ])
        // An invalid admin address is reported once, not also as a clash of the default address.
        #expect(errorLines([("a.toml", baseTOML.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:9090")
                             + "[admin]\naddress = \"127.0.0.1\"\n")]) == [
            #"a.toml: admin.address: invalid address "127.0.0.1": missing port; \#(form)"#,
        ])
        #expect(errorLines(appending: "[admin]\naddress = \"\"\n") == [
            "a.toml: admin.address: must not be empty; \(form)",
        ])
        #expect(errorLines(appending: "[admin]\naddress = false\n") == [
            "a.toml: admin.address: \(form), found a boolean (false)",
        ])
        #expect(errorLines(appending: "[admin]\nadress = \"off\"\n") == [
            #"a.toml: admin.adress: unknown key (did you mean "address"?)"#,
        ])
        #expect(errorLines(appending: "[admin]\nworkers = 2\n") == [
            "a.toml: admin.workers: unknown key; workers belongs in [global], not [admin]",
        ])
        #expect(errorLines(appending: "[[admin]]\naddress = \"off\"\n") == [
            "a.toml: admin: expected a table ([admin]), found an array",
        ])
    }

    @Test func adminSetInTwoFiles() {
        #expect(errorLines([
            ("05-admin.toml", "[admin]\naddress = \"127.0.0.1:9191\"\n"),
            ("10-main.toml", baseTOML + "[admin]\naddress = \"off\"\n"),
        ]) == [
            "10-main.toml: admin.address: already set in 05-admin.toml; each [admin] key may be set in only one file",
        ])
    }

    @Test func adminTableWithASuggestion() {
        #expect(errorLines(appending: "[admn]\naddress = \"off\"\n") == [
            "a.toml: admn: unknown table (did you mean [admin]?)",
        ])
    }
}
