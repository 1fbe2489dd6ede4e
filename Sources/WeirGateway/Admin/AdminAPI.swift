import Foundation
import WeirBalance
import WeirConfig
import WeirHTTP

/// What the admin listener answers, apart from the socket work:
///
/// - `GET /status`: pools and servers (state, load, reports, in-flight, failures) and totals
/// - `GET /metrics`: the Prometheus text exposition (AdminAPI+Metrics.swift, Metrics/)
/// - `GET /servers[?detail=1]`: the register of users: per server its confirmed pinned sessions
///   (count; with detail each pin's age, idle time and path), its unconfirmed pins (handed out, not
///   presented back yet), the users other gateway instances report, and `users` as the server list
///   counts them (confirmed here + elsewhere + requests in flight)
/// - `POST /servers/{id}/drain | enable | maint`: a drained server keeps its pinned transactions
///   and gets no new requests; maint gets nothing; enable clears either
/// - `GET /mode`, `POST /mode?mode=proxy|redirect[&listener=NAME]`: the listeners' run-time mode,
///   effective for new requests at once (requests in flight finish as they started)
/// - `POST /servers/{id}/weight?value=N`, `POST /pools/{name}/servers?id=&address=[&weight=...]`,
///   `DELETE /pools/{name}/servers/{id}[?now=1]`, `GET /state`, `DELETE /state[/SECTION[/KEY]]`: runtime
///   changes that persist (see AdminAPI+RuntimeState.swift). Drains, enables and mode switches are kept too.
/// - `GET /health`: listeners, worker heartbeat ages and pool availability for `weir health`
///   (AdminAPI+Health.swift); 503 when a worker is stuck or a pool has no server up
/// - `POST /reload`: reads conf.d again and swaps it in (200 and what changed), or keeps the
///   configuration in force (409 and why: the file and key of a broken one)
struct AdminAPI {
    /// The configuration load in force (a reload replaces it).
    let generation: () -> SharedGeneration
    let stats: GatewayStats
    let sticky: StickyContext
    let clock: () -> UInt64
    let wallMs: () -> Int64
    let log: (String) -> Void
    /// The `group` section of /status (peer group services), or nil.
    var groupStatus: () -> GroupStatus? = { nil }
    /// The peer group service whose beacon interval `POST /peer` may change (peer mode), or nil.
    var groupService: ControlService? = nil
    /// Per pool index, its `[pool.monitor]` status (control thread), for /status.
    var monitorStatus: (UInt64) -> [Int: StatusDocument.MonitorEntry] = { _ in [:] }
    /// Where runtime changes are kept (`<state_dir>/runtime.json`); nil: they are not kept.
    var runtimeState: RuntimeStateStore? = nil
    /// `POST /reload`, and the runtime changes that need a new snapshot (weights, servers added or
    /// removed): reads conf.d again with the runtime state laid over it (nil: refused, or saved for the next start).
    var reload: (() -> ReloadResult)? = nil
    /// The last reload's outcome (nil: none yet), for /status.
    var lastReload: () -> ReloadResult? = { nil }
    /// `POST /upgrade[?binary=PATH]`, answered once its outcome is known (AdminAPI+Upgrade.swift); nil: not offered.
    var upgrade: UpgradeControl? = nil
    /// When the last reload was tried (Unix seconds, 0 before the first), for /metrics.
    var lastReloadSeconds: () -> Int64 = { 0 }
    /// The admin token when the configuration in force sets none (AdminAuth.swift): the one configured at start,
    /// or generated into `<state_dir>/admin.token`. Empty: only a configured token is accepted.
    var startToken: [UInt8] = []
    /// Reads (GET, HEAD) need no token: the listener is on a loopback address.
    var openReads = true
    /// The listener is a Unix socket: its file permissions are the protection, no token is asked.
    var overUnixSocket = false
    /// The workers' heartbeats, for `GET /health` (AdminAPI+Health.swift).
    var heartbeats: [WorkerHeartbeat] = []

    var snapshot: RoutingSnapshot { generation().snapshot }
    var modes: ListenerModes { generation().modes }

    struct Answer {
        var status: Int
        var contentType = "application/json"
        var body: [UInt8]
        /// Further header fields, e.g. `Set-Cookie`, `WWW-Authenticate`.
        var headers: [(String, String)] = []
    }

    /// The group section with this process's hop counters filled in.
    func groupWithHops() -> GroupStatus? {
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
        case ("GET", []), ("HEAD", []):
            return Answer(status: 200, contentType: "text/html; charset=utf-8", body: Dashboard.page)
        case ("GET", ["status"]), ("HEAD", ["status"]):
            let now = clock()
            var document = StatusDocument(snapshot: snapshot, stats: stats, now: now, group: groupWithHops(),
                                          monitors: monitorStatus(now))
            let last = lastReload()
            document.configuration = .init(number: generation().number, reloads: stats.reloads.load(ordering: .relaxed),
                                           reloads_failed: stats.reloadsFailed.load(ordering: .relaxed),
                                           last_reload_ok: last?.ok, last_reload: last?.message)
            return Answer(status: 200, body: document.encoded())
        case ("GET", ["servers"]), ("HEAD", ["servers"]):
            return Answer(status: 200, body: register(detail: LocalEndpoints.queryValue("detail", in: query) == "1"))
        case ("POST", let s) where s.count == 3 && s[0] == "servers" && s[2] == "weight":
            return setWeight(id: s[1], query: query)
        case ("POST", let s) where s.count == 3 && s[0] == "servers":
            return setCondition(id: s[1], action: s[2])
        case ("POST", let s) where s.count == 3 && s[0] == "pools" && s[2] == "servers":
            return addServer(pool: s[1], query: query)
        case ("DELETE", let s) where s.count == 4 && s[0] == "pools" && s[2] == "servers":
            return removeServer(pool: s[1], id: s[3], now: LocalEndpoints.queryValue("now", in: query) == "1")
        case ("GET", ["state"]), ("HEAD", ["state"]):
            return stateDocument()
        case ("DELETE", let s) where (1...3).contains(s.count) && s[0] == "state":
            return clearState(section: s.count > 1 ? s[1] : nil, key: s.count > 2 ? s[2] : nil)
        case ("GET", ["peer"]), ("HEAD", ["peer"]):
            return peerSettings()
        case ("POST", ["peer"]):
            return tunePeer(query: query)
        case ("GET", ["mode"]), ("HEAD", ["mode"]):
            return Answer(status: 200, body: modeDocument())
        case ("POST", ["mode"]):
            return switchMode(query: query)
        case ("POST", ["reload"]):
            guard let reload else { return text(409, "reload refused: this process cannot read its configuration again") }
            let result = reload()
            return text(result.ok ? 200 : 409, result.message)
        case ("GET", ["metrics"]), ("HEAD", ["metrics"]):
            return metricsAnswer()
        case ("GET", ["health"]), ("HEAD", ["health"]):
            return healthAnswer(query: query)
        case (_, ["health"]):
            return text(405, "method \(method) is not allowed on \(path)")
        case (_, ["metrics"]):
            return text(405, "method \(method) is not allowed on \(path)")
        case (_, ["status"]), (_, ["servers"]), (_, ["mode"]), (_, ["peer"]), (_, ["state"]), (_, ["reload"]):
            return text(405, "method \(method) is not allowed on \(path)")
        default:
            return text(404, "unknown admin path \(path); try GET /status, GET /servers, POST /servers/ID/drain|enable|maint, GET or POST /mode, GET or POST /peer, POST /reload, POST /servers/ID/weight?value=N, POST /pools/NAME/servers?id=ID&address=IP:PORT, DELETE /pools/NAME/servers/ID, GET or DELETE /state")
        }
    }

    func text(_ status: Int, _ message: String) -> Answer {
        Answer(status: status, contentType: "text/plain; charset=utf-8", body: Array((message + "\n").utf8))
    }

    private struct RegisterEntry: Codable {
        var id: String
        var state: String
        var pinned_sessions: Int
        var unconfirmed: Int
        var users_elsewhere: Int
        var users: Int
        var in_flight: Int
        var in_flight_elsewhere: Int
        var pins: [Pin]?
        struct Pin: Codable { var age_s: Int64; var idle_s: Int64; var path: String }
    }

    private func register(detail: Bool) -> [UInt8] {
        let now = wallMs()
        let live = sticky.register.live(nowMs: now)
        let candidates = sticky.unconfirmed.counts(nowMs: now)
        let elsewhere = sticky.remoteUsers()
        let entries = snapshot.servers.map { s -> RegisterEntry in
            let mine = live.filter { $0.server == s.index }
            let remote = elsewhere[s.index] ?? 0
            return RegisterEntry(id: s.config.id, state: s.condition.description, pinned_sessions: mine.count,
                                 unconfirmed: candidates[s.index] ?? 0, users_elsewhere: remote,
                                 users: mine.count + remote + s.groupInFlightCount, in_flight: s.inFlightCount,
                                 in_flight_elsewhere: s.remoteInFlightCount,
                                 pins: detail ? mine.map { .init(age_s: (now - $0.createdMs) / 1000, idle_s: (now - $0.lastUseMs) / 1000, path: $0.path) } : nil)
        }
        return encode(["servers": entries], extra: ["rejected_pins": sticky.rejectedPins.load(ordering: .relaxed),
                                                   "unconfirmed_pins": candidates.values.reduce(0, +),
                                                   "unconfirmed_evicted": sticky.unconfirmed.evicted,
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
        log(LogLevel.notice.tag + "weir: server \(id): \(action) (admin API); now \(server.condition.description)")
        let kept = keepLive { $0.setCondition(AdminCondition(rawValue: action), pool: poolName(ofServer: index), id: id) }
        return Answer(status: 200, body: Array("{\"id\":\"\(id)\",\(kept)\"state\":\"\(server.condition.description)\"}\n".utf8))
    }

    // MARK: - Peer levels and interval (weir peer)

    /// `GET /peer`: the figure 2 levels and the beacon interval in force.
    private func peerSettings() -> Answer {
        guard snapshot.peerPool != nil else { return text(404, "not a peer: /peer is only served by weir peer") }
        let levels = snapshot.peerLevels
        var text = "{\"first_level\":\(levels.first),\"second_level\":\(levels.second)"
        if let interval = groupService?.beaconIntervalMilliseconds { text += ",\"interval_ms\":\(interval)" }
        return Answer(status: 200, body: Array((text + "}\n").utf8))
    }

    /// `POST /peer?first_level=0.6&second_level=0.3&interval_ms=250`: any of the three; each
    /// level a fraction 0...1 (or a percentage "60%"), the interval 50...60000 ms. Nothing changes
    /// unless every value given is valid. Effective for the next request / the next beacon.
    private func tunePeer(query: String) -> Answer {
        guard snapshot.peerPool != nil else { return text(404, "not a peer: /peer is only served by weir peer") }
        /// The level `name` when given: nil when absent; the error message when invalid.
        func level(_ name: String) -> (value: Double?, error: String?) {
            guard let raw = LocalEndpoints.queryValue(name, in: query) else { return (nil, nil) }
            let number = raw.hasSuffix("%") ? Double(raw.dropLast()).map { $0 / 100 } : Double(raw)
            guard let number, (0...1).contains(number) else {
                return (nil, "\(name) must be a fraction 0...1 or a percentage such as 60%, not \"\(raw)\"")
            }
            return (number, nil)
        }
        let (first, firstError) = level("first_level")
        let (second, secondError) = level("second_level")
        if let message = firstError ?? secondError { return text(400, message) }
        var interval: Int64? = nil
        if let raw = LocalEndpoints.queryValue("interval_ms", in: query) {
            guard let ms = Int64(raw), (50...60_000).contains(ms) else {
                return text(400, "interval_ms must be a whole number of milliseconds 50...60000, not \"\(raw)\"")
            }
            interval = ms
        }
        guard first != nil || second != nil || interval != nil else {
            return text(400, "give first_level, second_level and/or interval_ms, e.g. POST /peer?first_level=0.6&second_level=0.3")
        }
        let levels = snapshot.peerLevels
        if first != nil || second != nil {
            levels.set(first: first ?? levels.first, second: second ?? levels.second)
            log(LogLevel.notice.tag + "weir: peer levels now first \(levels.first), second \(levels.second) (admin API)")
        }
        if let interval { groupService?.setBeaconInterval(milliseconds: interval) }
        return peerSettings()
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
            log(LogLevel.notice.tag + "weir: listener \(modes.names[i]) now in \(mode.rawValue) mode (admin API)")
        }
        let kept = keepLive { state in for i in targets { state.setMode(mode.mode, listener: modes.names[i]) } }
        var body = modeDocument()
        if !kept.isEmpty, body.last == 10, body.first == UInt8(ascii: "{") { body = Array("{".utf8) + Array(kept.utf8) + body.dropFirst() }
        return Answer(status: 200, body: body)
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
