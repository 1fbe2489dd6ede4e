import Foundation
import Testing
import WeirBalance
@testable import WeirConfig
@testable import WeirGateway

/// The admin API's runtime changes (issue 12): what each keeps in `<state_dir>/runtime.json`, what acts at once,
/// and what waits for the reload hook.
@Suite struct RuntimeStateAdminTests {
    private let conf = """
        [[listener]]
        name = "public"
        address = "127.0.0.1:8080"
        [[pool]]
        name = "web"
        [[pool.server]]
        id = "w1"
        address = "192.0.2.1:80"
        [[pool.server]]
        id = "w2"
        address = "192.0.2.2:80"
        [[pool]]
        name = "solo"
        [[pool.server]]
        id = "s1"
        address = "192.0.2.9:80"
        [[route]]
        name = "default"
        pool = "web"

        """

    /// An admin API over `conf` (with the state of `directory` laid over it) and its store.
    private func api(_ directory: String, reload: (() -> ReloadResult)? = nil) throws -> (AdminAPI, RuntimeStateStore) {
        let base = try ConfigLoader.parse(files: [(name: "a.toml", contents: conf)])
        let store = RuntimeStateStore(stateDirectory: directory, log: { _ in })
        let configuration = store.overlay(on: base)
        let generation = SharedGeneration(number: 1, configuration: configuration, snapshot: RoutingSnapshot(configuration: configuration),
                                          tls: try TLSSetup(configuration), modes: ListenerModes(configuration.listeners), peer: nil,
                                          slots: configuration.listeners.map(ListenerSlot.init))
        var api = AdminAPI(generation: { generation }, stats: GatewayStats(),
                           sticky: StickyContext(key: Array(repeating: 1, count: 32), capacity: 10),
                           clock: { 0 }, wallMs: { 0 }, log: { _ in })
        api.runtimeState = store
        api.reload = reload
        return (api, store)
    }

    private func stateDirectory(_ name: String) -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("weir-rs-admin-\(getpid())-\(name)").path
        try? FileManager.default.removeItem(atPath: path)
        return path      // not created: the store creates it at the first change
    }

    private func call(_ api: AdminAPI, _ method: String, _ target: String) -> (Int, String) {
        let answer = api.answer(method: method, target: target)
        return (answer.status, String(decoding: answer.body, as: UTF8.self))
    }

    @Test func aDrainAndAModeSwitchActAtOnceAndAreThereAfterARestart() throws {
        let dir = stateDirectory("drain")
        let (first, _) = try api(dir)
        #expect(call(first, "POST", "/servers/w1/drain") == (200, #"{"id":"w1","state":"drain"}"# + "\n"))
        #expect(call(first, "POST", "/mode?mode=redirect").0 == 200)
        #expect(first.snapshot.servers[0].condition == .drain && first.modes.mode(0) == .redirect)
        let (second, _) = try api(dir)           // a restart on the same conf.d and state_dir
        #expect(second.snapshot.servers[0].condition == .drain && second.modes.mode(0) == .redirect)
        #expect(call(second, "POST", "/servers/w1/enable").0 == 200)
        let (third, store) = try api(dir)
        #expect(third.snapshot.servers[0].condition == .up)
        #expect(store.state == RuntimeState(modes: ["public": .redirect]))
    }

    @Test func withoutTheReloadHookAnAddedServerIsSavedForTheNextStart() throws {
        let dir = stateDirectory("add")
        let (first, _) = try api(dir)
        let (status, message) = call(first, "POST", "/pools/web/servers?id=w3&address=192.0.2.3%3A8080&weight=2")
        #expect(status == 202)
        #expect(message == "server w3 (192.0.2.3:8080) added to pool web: saved; takes effect at the next reload or restart\n")
        #expect(first.snapshot.serverIndex(id: "w3") == nil)
        let (second, _) = try api(dir)
        let w3 = try #require(second.snapshot.serverIndex(id: "w3"))
        #expect(second.snapshot.servers[w3].config.weight == 2 && second.snapshot.pools[0].servers.contains(w3))
    }

    @Test func badServersAre400sNamingTheField() throws {
        let (api, store) = try api(stateDirectory("bad"))
        #expect(call(api, "POST", "/pools/web/servers?id=w3&address=192.0.2.3:80&weight=0")
                == (400, "weight: must be between 1 and 256, found 0\n"))
        #expect(call(api, "POST", "/pools/web/servers?id=w3").1 == #"address: missing required key, e.g. address = "127.0.0.1:9001""# + "\n")
        #expect(call(api, "POST", "/pools/web/servers?id=s1&address=192.0.2.3:80")
                == (409, "id: server s1 already exists (pool solo); server ids are unique across all pools\n"))
        #expect(call(api, "POST", "/pools/nope/servers?id=x&address=192.0.2.3:80").0 == 404)
        #expect(call(api, "POST", "/servers/w1/weight?value=300") == (400, "weight: must be between 1 and 256, found 300\n"))
        #expect(store.state.isEmpty)
    }

    @Test func theReloadHookPutsAChangeInEffectOrTheStateBack() throws {
        let dir = stateDirectory("hook")
        var outcome = ReloadResult(ok: true, message: "1 server changed")
        var reloads = 0
        let (api, store) = try api(dir, reload: { reloads += 1; return outcome })
        #expect(call(api, "POST", "/servers/w2/weight?value=5") == (200, "weight of server w2 set to 5: in effect; 1 server changed\n"))
        #expect(store.state.servers == [.init(pool: "web", id: "w2", weight: 5)])
        outcome = ReloadResult(ok: false, message: "conf.d/20-pools.toml: pool[0].name: ...")
        let (status, message) = call(api, "POST", "/servers/w1/weight?value=7")
        #expect(status == 500 && message.hasSuffix("the reload failed: conf.d/20-pools.toml: pool[0].name: ...; the runtime state is as before\n"))
        #expect(store.state.servers == [.init(pool: "web", id: "w2", weight: 5)])
        #expect(try RuntimeState.read(stateDirectory: dir) == store.state)      // the file too
        #expect(reloads == 2)
    }

    @Test func aRemovedServerDrainsAtOnceAndLeavesAtTheNextStart() throws {
        let dir = stateDirectory("remove")
        let (first, _) = try api(dir)
        #expect(call(first, "DELETE", "/pools/solo/servers/s1").0 == 409)       // the last of its pool
        let (status, message) = call(first, "DELETE", "/pools/web/servers/w2")
        #expect(status == 202 && message.hasPrefix("server w2 is draining; it leaves pool web at the next reload or restart"))
        #expect(first.snapshot.servers[1].condition == .drain)
        #expect(call(first, "DELETE", "/pools/web/servers/w1").0 == 409)        // w2 is leaving: w1 is the last
        let (second, _) = try api(dir)
        #expect(second.snapshot.serverIndex(id: "w2") == nil)
    }

    @Test func stateIsShownAndCleared() throws {
        let dir = stateDirectory("clear")
        let (api, store) = try api(dir)
        _ = call(api, "POST", "/servers/w1/maint")
        _ = call(api, "POST", "/pools/web/servers?id=w3&address=192.0.2.3:80")
        let document = try JSONDecoder().decode(StateDocument.self, from: Data(api.answer(method: "GET", target: "/state").body))
        #expect(document.file == dir + "/runtime.json" && document.state == store.state && document.not_applied.isEmpty)
        #expect(call(api, "DELETE", "/state/colours").0 == 404)
        #expect(call(api, "DELETE", "/state/added/w9") == (404, "nothing to clear in state/added/w9\n"))
        #expect(call(api, "DELETE", "/state/added/w3").0 == 202)
        #expect(store.state.added.isEmpty && store.state.servers.count == 1)
        #expect(call(api, "DELETE", "/state").0 == 202)
        #expect(try RuntimeState.read(stateDirectory: dir).isEmpty)
    }

    @Test func aDrainThatCannotBeKeptStillActsAndSaysSoButAServerChangeChangesNothing() throws {
        let blocker = stateDirectory("blocked")
        try Data("a file, not a directory".utf8).write(to: URL(fileURLWithPath: blocker))
        defer { try? FileManager.default.removeItem(atPath: blocker) }
        let (api, store) = try api(blocker + "/state")
        let (status, body) = call(api, "POST", "/servers/w1/drain")
        #expect(status == 200 && body.hasPrefix(#"{"id":"w1","persisted":false,"persist_error":"cannot write \#(blocker)/state/runtime.json: "#))
        #expect(api.snapshot.servers[0].condition == .drain)
        #expect(store.state.servers == [.init(pool: "web", id: "w1", condition: .drain)])   // kept for a later write
        let (added, message) = call(api, "POST", "/pools/web/servers?id=w3&address=192.0.2.3:80")
        #expect(added == 500 && message.hasPrefix("nothing changed: cannot write \(blocker)/state/runtime.json: "))
        #expect(store.state.added.isEmpty)
    }

    @Test func aCorruptFileIsSetAsideAndTheGatewayStartsOnConfDAlone() throws {
        let dir = stateDirectory("corrupt")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Data("{\"version\": 1, \"modes\": ".utf8).write(to: URL(fileURLWithPath: dir + "/runtime.json"))
        var lines: [String] = []
        let store = RuntimeStateStore(stateDirectory: dir, log: { lines.append($0) })
        #expect(store.state.isEmpty)
        #expect(lines.count == 1 && lines[0].hasPrefix(LogLevel.warning.tag + "weir: WARNING: runtime state \(dir)/runtime.json: not a runtime state document"))
        #expect(lines[0].contains("IGNORED, starting on conf.d alone") && lines[0].hasSuffix("moved to \(dir)/runtime.json.corrupt"))
        #expect(FileManager.default.fileExists(atPath: dir + "/runtime.json.corrupt"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/runtime.json"))
    }
}
