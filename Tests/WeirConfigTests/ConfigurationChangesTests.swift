import Testing
@testable import WeirConfig

/// What a reload reports: each kind of change on its own line, and what only a restart applies.
@Suite struct ConfigurationChangesTests {
    func load(_ toml: String) throws -> WeirConfiguration { try parse([("a.toml", toml)]) }

    @Test func identicalConfigurationsHaveNoChanges() throws {
        let a = try load(baseTOML)
        let changes = ConfigurationChanges(from: a, to: a)
        #expect(changes.isEmpty)
        #expect(changes.summary == "no configuration changes")
    }

    @Test func serversRoutesListenersAndPoolsAreNamed() throws {
        let old = try load(baseTOML)
        let new = try load(baseTOML.replacingOccurrences(of: "127.0.0.1:9001", with: "127.0.0.1:9011") + """
            [[pool.server]]
            id = "demo-2"
            address = "127.0.0.1:9002"

            [[listener]]
            name = "more"
            address = "127.0.0.1:8081"

            [[pool]]
            name = "alt"
            [[pool.server]]
            id = "alt-1"
            address = "127.0.0.1:9003"

            [[route]]
            name = "alt"
            path = "/alt/*"
            pool = "alt"

            [timeouts]
            client_idle = "5s"
            """)
        let changes = ConfigurationChanges(from: old, to: new)
        #expect(changes.applied == [
            "listeners added: more",
            "pools added: alt",
            "servers added: alt-1 (pool alt), demo-2 (pool demo)",
            "servers changed: demo-1 (pool demo)",
            "routes added: alt",
            "[timeouts] changed (new connections)",
        ])
        #expect(changes.needRestart.isEmpty)
        let back = ConfigurationChanges(from: new, to: old)
        #expect(back.applied.contains("servers removed: alt-1 (pool alt), demo-2 (pool demo)"))
        #expect(back.applied.contains("listeners removed: more"))
    }

    @Test func whatOnlyARestartAppliesIsSaidSeparately() throws {
        let old = try load("[global]\nworkers = 2\n" + baseTOML)
        let new = try load("[global]\nworkers = 4\n[sticky]\nsecret = \"0123456789abcdef0123456789abcdef\"\n" + baseTOML)
        let changes = ConfigurationChanges(from: old, to: new)
        #expect(changes.applied.isEmpty)
        #expect(changes.needRestart == ["[global] workers 2 → 4", "[sticky] changed"])
        #expect(changes.summary == "no configuration changes; NOT applied until a restart: [global] workers 2 → 4, [sticky] changed")
    }
}
