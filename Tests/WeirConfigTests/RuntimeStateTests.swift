import Foundation
import Testing
@testable import WeirConfig

/// The runtime state (issue 12): its file format, the changes an operator makes, and how it is laid over conf.d.
@Suite struct RuntimeStateTests {
    /// Two pools (web: w1, w2; api: a1) and two listeners.
    private let conf = """
        [[listener]]
        name = "public"
        address = "127.0.0.1:8080"
        [[listener]]
        name = "inner"
        address = "127.0.0.1:8081"
        [[pool]]
        name = "web"
        [[pool.server]]
        id = "w1"
        address = "192.0.2.1:80"
        [[pool.server]]
        id = "w2"
        address = "192.0.2.2:80"
        weight = 4
        [[pool]]
        name = "api"
        [[pool.server]]
        id = "a1"
        address = "192.0.2.10:80"
        [[route]]
        name = "default"
        pool = "web"

        """

    private func base() throws -> WeirConfiguration { try parse([("a.toml", conf)]) }

    private func servers(_ c: WeirConfiguration, _ pool: String) -> [String] {
        c.pools.first { $0.name == pool }?.servers.map(\.id) ?? []
    }

    private func server(_ c: WeirConfiguration, _ id: String) -> Server? {
        c.pools.lazy.flatMap(\.servers).first { $0.id == id }
    }

    // MARK: - Codec

    @Test func aStateSurvivesItsOwnFile() throws {
        var state = RuntimeState()
        state.setMode(.redirect, listener: "public")
        state.setCondition(.drain, pool: "web", id: "w1")
        state.setWeight(7, pool: "web", id: "w2")
        state.add(.init(pool: "web", id: "w3", address: "192.0.2.3:80", weight: 2, publicURL: "http://w3.example/"))
        state.remove(pool: "api", id: "a1")
        let decoded = try RuntimeState.decode(state.encoded(), file: "runtime.json")
        #expect(decoded == state)
        let text = String(decoding: state.encoded(), as: UTF8.self)
        #expect(text.contains(#""public_url" : "http://w3.example/""#))     // snake case, slashes as written
        #expect(text.contains(#""version" : 1"#))
    }

    @Test func absentSectionsAreEmptyButTheVersionIsRequired() throws {
        #expect(try RuntimeState.decode(Array(#"{"version": 1}"#.utf8), file: "f") == RuntimeState())
        #expect(throws: RuntimeStateError(file: "f", reason: #"not a runtime state document: missing key "version""#)) {
            try RuntimeState.decode(Array("{}".utf8), file: "f")
        }
        #expect(throws: RuntimeStateError(file: "f", reason: "version 2 is not 1 (written by another Weir)")) {
            try RuntimeState.decode(Array(#"{"version": 2}"#.utf8), file: "f")
        }
    }

    @Test func aCorruptFileIsAnErrorNamingTheFileAndWhere() {
        for (text, needle) in [("{\"version\": 1, \"modes\"", "not valid JSON"),
                               (#"{"version": 1, "modes": {"public": "sideways"}}"#, "at modes.public"),
                               (#"{"version": 1, "servers": [{"pool": "web"}]}"#, #"missing key "id" at servers[0]"#)] {
            do {
                _ = try RuntimeState.decode(Array(text.utf8), file: "/var/lib/weir/runtime.json")
                Issue.record("decoded \(text)")
            } catch let error as RuntimeStateError {
                #expect(error.file == "/var/lib/weir/runtime.json")
                #expect(error.description.hasPrefix("/var/lib/weir/runtime.json: not a runtime state document"))
                #expect(error.reason.contains(needle), "\(error.reason)")
            } catch {
                Issue.record("unexpected \(error)")
            }
        }
    }

    @Test func readingAStateDirectoryWithoutAFileIsAnEmptyState() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weir-rs-\(getpid())-empty").path
        #expect(try RuntimeState.read(stateDirectory: directory) == RuntimeState())
        #expect(RuntimeState.path(stateDirectory: "/var/lib/weir") == "/var/lib/weir/runtime.json")
    }

    // MARK: - Changes

    @Test func enableClearsTheEntryAndAnEmptyOverrideGoes() {
        var state = RuntimeState()
        state.setCondition(.maint, pool: "web", id: "w1")
        state.setWeight(3, pool: "web", id: "w1")
        state.setCondition(nil, pool: "web", id: "w1")
        #expect(state.servers == [.init(pool: "web", id: "w1", weight: 3)])
        state.setWeight(nil, pool: "web", id: "w1")
        #expect(state.servers.isEmpty && state.isEmpty)
    }

    @Test func removingAnAddedServerForgetsItAndAConfServerIsListed() {
        var state = RuntimeState()
        state.add(.init(pool: "web", id: "w3", address: "192.0.2.3:80"))
        state.setCondition(.drain, pool: "web", id: "w3")
        state.remove(pool: "web", id: "w3")
        #expect(state.isEmpty)
        state.setWeight(9, pool: "web", id: "w1")
        state.remove(pool: "web", id: "w1")
        state.remove(pool: "web", id: "w1")
        #expect(state.removed == [.init(pool: "web", id: "w1")] && state.servers.isEmpty)
    }

    @Test func clearingBySectionAndKey() {
        var state = RuntimeState(modes: ["public": .redirect, "inner": .redirect],
                                 servers: [.init(pool: "web", id: "w1", condition: .drain, weight: 2)],
                                 added: [.init(pool: "web", id: "w3", address: "192.0.2.3:80")],
                                 removed: [.init(pool: "api", id: "a1")])
        #expect(state.count == 6)
        #expect(state.clear(section: "modes", key: "inner") == 1)
        #expect(state.clear(section: "conditions", key: "nope") == 0)
        #expect(state.clear(section: "conditions") == 1)
        #expect(state.servers == [.init(pool: "web", id: "w1", weight: 2)])
        #expect(state.clear(section: "colours") == 0)
        #expect(state.clear(section: nil) == 4)
        #expect(state.isEmpty)
    }

    // MARK: - Laid over conf.d

    @Test func everyKindOfChangeIsApplied() throws {
        let state = RuntimeState(modes: ["inner": .redirect],
                                 servers: [.init(pool: "web", id: "w1", condition: .drain),
                                           .init(pool: "web", id: "w3", condition: .maint, weight: 5)],
                                 added: [.init(pool: "web", id: "w3", address: "192.0.2.3:8080", capacity: 50)],
                                 removed: [.init(pool: "web", id: "w2")])
        let (c, warnings) = state.apply(to: try base())
        #expect(warnings == [])
        #expect(servers(c, "web") == ["w1", "w3"])
        #expect(server(c, "w1")?.adminCondition == .drain)
        #expect(server(c, "w3") == Server(id: "w3", address: SocketAddress(host: "192.0.2.3", port: 8080),
                                          weight: 5, capacity: 50, adminCondition: .maint))
        #expect(c.listeners.map(\.mode) == [.proxy, .redirect])
        #expect(try state.apply(to: base()).configuration == c)        // the same every load
    }

    @Test func anEmptyStateChangesNothing() throws {
        let (c, warnings) = RuntimeState().apply(to: try base())
        #expect(c == (try base()) && warnings.isEmpty)
    }

    @Test func entriesConfDNoLongerHasAreWarnedAndNotApplied() throws {
        let state = RuntimeState(modes: ["gone": .redirect],
                                 servers: [.init(pool: "web", id: "ghost", condition: .drain),
                                           .init(pool: "old", id: "w1", weight: 2)],
                                 added: [.init(pool: "old", id: "x1", address: "192.0.2.9:80")],
                                 removed: [.init(pool: "api", id: "w1")])
        let (c, warnings) = state.apply(to: try base())
        #expect(c == (try base()))
        #expect(warnings == [
            #"removal of server "w1": pool "api" has no such server in conf.d; not applied"#,
            #"added server "x1": conf.d has no pool "old"; not applied"#,
            #"drain of server "ghost": pool "web" has no such server; not applied"#,
            #"weight 2 of server "w1": conf.d has no pool "old"; not applied"#,
            #"mode redirect of listener "gone": conf.d has no such listener; not applied"#,
        ])
    }

    @Test func anAddedServerWhoseIdConfDNowHasLosesToConfD() throws {
        let state = RuntimeState(added: [.init(pool: "web", id: "a1", address: "192.0.2.99:80"),
                                         .init(pool: "web", id: "w2", address: "192.0.2.98:80")])
        let (c, warnings) = state.apply(to: try base())
        #expect(c == (try base()))
        #expect(warnings == [#"added server "a1": conf.d has a server with this id (pool "api"); conf.d wins, not applied"#,
                             #"added server "w2": conf.d has a server with this id (pool "web"); conf.d wins, not applied"#])
    }

    @Test func aRemovedConfServerMayComeBackAsAnAddedOne() throws {
        var state = RuntimeState()
        state.remove(pool: "web", id: "w2")
        state.add(.init(pool: "web", id: "w2", address: "192.0.2.22:81"))
        let (c, warnings) = state.apply(to: try base())
        #expect(warnings.isEmpty)
        #expect(server(c, "w2")?.address == SocketAddress(host: "192.0.2.22", port: 81))
        #expect(server(c, "w2")?.weight == 1)      // the added server's keys, not conf.d's
    }

    @Test func aPoolKeepsItsLastServer() throws {
        let state = RuntimeState(removed: [.init(pool: "api", id: "a1")])
        let (c, warnings) = state.apply(to: try base())
        #expect(servers(c, "api") == ["a1"])
        #expect(warnings == [#"removal of server "a1": the last server of pool "api"; not applied (a pool needs one)"#])
    }

    @Test func aHandEditedAddedServerIsCheckedLikeConfD() throws {
        let state = RuntimeState(added: [.init(pool: "web", id: "w9", address: "192.0.2.9", weight: 300)])
        let (c, warnings) = state.apply(to: try base())
        #expect(servers(c, "web") == ["w1", "w2"])
        #expect(warnings.count == 1)
        #expect(warnings[0].hasPrefix(#"added server "w9": not valid (address: invalid address "192.0.2.9": missing port"#))
        #expect(warnings[0].contains("weight: must be between 1 and 256, found 300"))
    }

    // MARK: - The checks a run-time server gets

    @Test func fieldsAreCheckedByTheServerTable() {
        let ok = RuntimeState.server(fields: [("id", "w9"), ("address", "[::1]:9009"), ("weight", "3"), ("max_conns", "10")],
                                     source: "POST /pools/web/servers")
        #expect(ok.map(\.weight) == .success(3))
        #expect((try? ok.get())?.maxConns == 10)
        guard case .failure(let errors) = RuntimeState.server(fields: [("address", "example.com:80"), ("weight", "heavy"), ("colour", "red")],
                                                              source: "POST /pools/web/servers") else {
            Issue.record("accepted")
            return
        }
        #expect(errors.errors.allSatisfy { $0.file == "POST /pools/web/servers" })
        #expect(RuntimeState.fieldMessages(errors) == [
            "colour: unknown key; known keys: id, address, weight, capacity, public_url, group, max_conns",
            #"id: missing required key, e.g. id = "demo-1""#,
            #"address: invalid address "example.com:80": "example.com" is a host name, not a numeric IP address (host names are not resolved); expected a numeric IP address and port such as "127.0.0.1:9001" or "[::1]:9001""#,
            #"weight: expected an integer, found a string ("heavy")"#,
        ])
    }

    @Test func weightsAreWholeNumbersUpTo256() {
        #expect(RuntimeState.weight("256") == .success(256))
        for bad in ["0", "257", "-1", "2.5", ""] {
            guard case .failure(let errors) = RuntimeState.weight(bad) else { Issue.record("accepted \(bad)"); continue }
            #expect(RuntimeState.fieldMessages(errors).first?.hasPrefix("weight: ") == true)
        }
    }

    @Test func theServersOfABeaconPoolAreNotChangedAtRunTime() throws {
        var c = try base()
        c.pools[1].loadSource = .beacons
        let state = RuntimeState(servers: [.init(pool: "api", id: "a1", condition: .drain)],
                                 added: [.init(pool: "api", id: "a2", address: "192.0.2.11:80")])
        let (applied, warnings) = state.apply(to: c)
        #expect(servers(applied, "api") == ["a1"])
        #expect(server(applied, "a1")?.adminCondition == .drain)     // a drain is fine
        #expect(warnings == [#"added server "a2": the servers of pool "api" come from [group] (its beacons), not from the runtime state; not applied"#])
    }
}
