import Testing
@testable import WeirConfig

/// The keys of services moved to meet capacity: route `spill_level`, pool `lend_level`, `return_level`,
/// `lend_after` and server `can_serve`.
@Suite struct LendingConfigTests {
    let twoPools = """
        [[listener]]
        name = "public"
        address = "127.0.0.1:8080"

        [[pool]]
        name = "banking"
        POOLKEYS

        [[pool.server]]
        id = "b1"
        address = "127.0.0.1:9001"

        [[pool]]
        name = "securities"

        [[pool.server]]
        id = "s1"
        address = "127.0.0.1:9002"
        SERVERKEYS

        [[route]]
        name = "banking"
        path = "/banking/*"
        pool = "banking"
        ROUTEKEYS

        [[route]]
        name = "securities"
        path = "/securities/"
        pool = "securities"

        """

    func text(pool: String = "", server: String = "", route: String = "") -> String {
        twoPools.replacingOccurrences(of: "POOLKEYS", with: pool).replacingOccurrences(of: "SERVERKEYS", with: server)
            .replacingOccurrences(of: "ROUTEKEYS", with: route)
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse([("a.toml", text(pool: "lend_level = 0.8\nreturn_level = \"40%\"\nlend_after = \"1s\"",
                                                server: #"can_serve = ["/banking/*", "/securities/"]"#,
                                                route: "spill = \"securities\"\nspill_level = 0.75"))])
        #expect(config.pools[0].lendLevel == 0.8)
        #expect(config.pools[0].returnLevel == 0.4)
        #expect(config.pools[0].lendAfter == .seconds(1))
        #expect(config.pools[0].effectiveReturnLevel == 0.4)
        #expect(config.pools[1].servers[0].canServe == ["/banking/*", "/securities/"])
        #expect(config.routes[0].spillLevel == 0.75)
    }

    @Test func defaults() throws {
        let config = try parse([("a.toml", text())])
        let banking = config.pools[0]
        #expect(banking.lendLevel == nil && banking.returnLevel == nil)
        #expect(banking.effectiveLendLevel == 0.5)
        #expect(abs(banking.effectiveReturnLevel - 0.3) < 1e-9)
        #expect(banking.lendAfter == .seconds(10))
        #expect(config.pools[1].servers[0].canServe == [])
        #expect(config.routes[0].spillLevel == 1.0)
    }

    @Test func aReturnLevelNotBelowTheLendLevelIsRefused() {
        #expect(errorLines([("a.toml", text(pool: "lend_level = 0.6\nreturn_level = 0.6"))]) == [
            "a.toml: pool[0].return_level: must be below lend_level (0.6), found 0.6; a lent server is given back once "
                + "the pool's load falls below return_level",
        ])
        #expect(errorLines([("a.toml", text(pool: "return_level = 0.7"))]) == [
            "a.toml: pool[0].return_level: must be below first_level (the lend level when lend_level is not set) (0.5), "
                + "found 0.7; a lent server is given back once the pool's load falls below return_level",
        ])
    }

    @Test func badValuesAreRefusedWithTheirForm() {
        #expect(errorLines([("a.toml", text(route: "spill = \"securities\"\nspill_level = 1.5"))]) == [
            #"a.toml: route[0].spill_level: must be between 0.0 and 1.0 (or "0%" and "100%"), found 1.5"#,
        ])
        #expect(errorLines([("a.toml", text(server: #"can_serve = "/banking/*""#))]).count == 1)
        #expect(errorLines([("a.toml", text(server: #"can_serve = ["/bank*ing/"]"#))]).count == 1)
        #expect(errorLines([("a.toml", text(pool: #"lend_after = "soon""#))]).count == 1)
    }
}
