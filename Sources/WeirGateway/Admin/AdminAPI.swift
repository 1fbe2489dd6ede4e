import Foundation
import WeirBalance
import WeirHTTP

/// What the admin listener answers, apart from the socket work:
///
/// - `GET /status`: pools and servers (state, load, reports, in-flight, failures) and totals
/// - `GET /servers[?detail=1]`: the register of users: per server its pinned sessions (count; with
///   detail each pin's age, idle time and path)
/// - `POST /servers/{id}/drain | enable | maint`: a drained server keeps its pinned transactions
///   and gets no new requests; maint gets nothing; enable clears either
/// - `GET /mode`, `POST /mode?mode=proxy|redirect[&listener=NAME]`: the listeners' run-time mode,
///   effective for new requests at once (requests in flight finish as they started)
struct AdminAPI {
    let snapshot: RoutingSnapshot
    let stats: GatewayStats
    let sticky: StickyContext
    let modes: ListenerModes
    let clock: () -> UInt64
    let wallMs: () -> Int64
    let log: (String) -> Void
    /// The `group` section of /status (peer group services), or nil.
    var groupStatus: () -> GroupStatus? = { nil }

    struct Answer {
        var status: Int
        var contentType = "application/json"
        var body: [UInt8]
    }

    /// The group section with this process's hop counters filled in.
    private func groupWithHops() -> GroupStatus? {
        guard var group = groupStatus() else { return nil }
        group.hops_received = stats.peerHopsReceived.load(ordering: .relaxed)
        group.hops_refused = stats.peerHopsRefused.load(ordering: .relaxed)
        return group
    }

    func answer(method: String, target: String) -> Answer {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = String(parts.first ?? "/")
        let query = parts.count > 1 ? String(parts[1]) : ""
        let segments = path.split(separator: "/").map(String.init)
        switch (method, segments) {
        case ("GET", ["status"]), ("HEAD", ["status"]):
            return Answer(status: 200, body: StatusDocument(snapshot: snapshot, stats: stats, now: clock(), group: groupWithHops()).encoded())
        case ("GET", ["servers"]), ("HEAD", ["servers"]):
            return Answer(status: 200, body: register(detail: LocalEndpoints.queryValue("detail", in: query) == "1"))
        case ("POST", let s) where s.count == 3 && s[0] == "servers":
            return setCondition(id: s[1], action: s[2])
        case ("GET", ["mode"]), ("HEAD", ["mode"]):
            return Answer(status: 200, body: modeDocument())
        case ("POST", ["mode"]):
            return switchMode(query: query)
        case (_, ["status"]), (_, ["servers"]), (_, ["mode"]):
            return text(405, "method \(method) is not allowed on \(path)")
        default:
            return text(404, "unknown admin path \(path); try GET /status, GET /servers, POST /servers/ID/drain|enable|maint, GET or POST /mode")
        }
    }

    private func text(_ status: Int, _ message: String) -> Answer {
        Answer(status: status, contentType: "text/plain; charset=utf-8", body: Array((message + "\n").utf8))
    }

    private struct RegisterEntry: Codable {
        var id: String
        var state: String
        var pinned_sessions: Int
        var in_flight: Int
        var pins: [Pin]?
        struct Pin: Codable { var age_s: Int64; var idle_s: Int64; var path: String }
    }

    private func register(detail: Bool) -> [UInt8] {
        let now = wallMs()
        let live = sticky.register.live(nowMs: now)
        let entries = snapshot.servers.map { s -> RegisterEntry in
            let mine = live.filter { $0.server == s.index }
            return RegisterEntry(id: s.config.id, state: s.condition.description, pinned_sessions: mine.count,
                                 in_flight: s.inFlightCount,
                                 pins: detail ? mine.map { .init(age_s: (now - $0.createdMs) / 1000, idle_s: (now - $0.lastUseMs) / 1000, path: $0.path) } : nil)
        }
        return encode(["servers": entries], extra: ["rejected_pins": sticky.rejectedPins.load(ordering: .relaxed),
                                                   "moved_pins": sticky.movedPins.load(ordering: .relaxed)])
    }

    private func setCondition(id: String, action: String) -> Answer {
        guard let index = snapshot.serverIndex(id: id) else { return text(404, "no server \(id)") }
        let server = snapshot.servers[index]
        switch action {
        case "drain": server.setAdminCondition(.drain)
        case "maint": server.setAdminCondition(.maint)
        case "enable": server.setAdminCondition(nil)
        default: return text(404, "unknown action \(action); use drain, enable or maint")
        }
        log("weir: server \(id): \(action) (admin API); now \(server.condition.description)")
        return Answer(status: 200, body: Array("{\"id\":\"\(id)\",\"state\":\"\(server.condition.description)\"}\n".utf8))
    }

    private func modeDocument() -> [UInt8] {
        let listeners = modes.names.enumerated().map { ["name": $1, "mode": modes.mode($0).rawValue] }
        return encode(["listeners": listeners], extra: [:])
    }

    private func switchMode(query: String) -> Answer {
        guard let value = LocalEndpoints.queryValue("mode", in: query), let mode = ModeName(rawValue: value) else {
            return text(400, "give mode=proxy or mode=redirect (and optionally listener=NAME)")
        }
        let targets: [Int]
        if let name = LocalEndpoints.queryValue("listener", in: query) {
            guard let i = modes.names.firstIndex(of: name) else { return text(404, "no listener \(name)") }
            targets = [i]
        } else {
            targets = Array(modes.names.indices)
        }
        for i in targets {
            modes.set(i, mode.mode)
            log("weir: listener \(modes.names[i]) now in \(mode.rawValue) mode (admin API)")
        }
        return Answer(status: 200, body: modeDocument())
    }

    private enum ModeName: String {
        case proxy, redirect
        var mode: WeirConfigMode { self == .proxy ? .proxy : .redirect }
    }

    private func encode<T: Encodable>(_ value: [String: T], extra: [String: Int]) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var text = String(decoding: (try? encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
        if !extra.isEmpty, text.hasSuffix("}") {
            text.removeLast()
            for (k, v) in extra.sorted(by: { $0.key < $1.key }) { text += ",\"\(k)\":\(v)" }
            text += "}"
        }
        return Array((text + "\n").utf8)
    }
}
