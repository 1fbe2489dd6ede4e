/// What a reload changes, as an operator reads it in the log and in `weir reload`: one line per
/// kind of change ("servers added: web-3 (pool web)"), and the changes a reload cannot apply
/// (they take effect at the next restart: the worker count, the admin listener, ...).
public struct ConfigurationChanges: Sendable, Equatable {
    /// What the reload applies, one line per kind, in a stable order.
    public private(set) var applied: [String] = []
    /// Settings that differ but only a restart applies (e.g. "[global] workers 2 → 4").
    public private(set) var needRestart: [String] = []

    public var isEmpty: Bool { applied.isEmpty && needRestart.isEmpty }

    /// Compares `old` (in force) with `new` (just read).
    public init(from old: WeirConfiguration, to new: WeirConfiguration) {
        compareNamed("listeners", old.listeners, new.listeners, name: \.name)
        compareNamed("pools", old.pools.map(Self.withoutServers), new.pools.map(Self.withoutServers), name: \.name)
        compareServers(old.pools, new.pools)
        compareNamed("routes", old.routes, new.routes, name: \.name)
        if old.timeouts != new.timeouts { applied.append("[timeouts] changed (new connections)") }
        if old.limits != new.limits { applied.append("[limits] changed (new connections)") }
        if old.discovery != new.discovery { applied.append("[discovery] changed") }
        if old.global.maxConnections != new.global.maxConnections {
            applied.append("[global] max_connections \(old.global.maxConnections) → \(new.global.maxConnections)")
        }
        if old.global.drainTimeout != new.global.drainTimeout {
            applied.append("[global] drain_timeout \(old.global.drainTimeout) → \(new.global.drainTimeout)")
        }
        restartOnly("[global] workers", old.global.workers, new.global.workers)
        restartOnly("[global] access_log", old.global.accessLog, new.global.accessLog)
        restartOnly("[global] state_dir", old.global.stateDirectory, new.global.stateDirectory)
        restartOnly("[global] access_log_format", old.global.accessLogFormat, new.global.accessLogFormat)
        restartOnly("[global] log_level", old.global.logLevel, new.global.logLevel)
        restartOnly("[global] log_format", old.global.logFormat, new.global.logFormat)
        // The admin token (token / token_file) applies at every load; only the address waits for a restart.
        restartOnly("[admin] address", old.admin.address, new.admin.address)
        restartOnly("[admin] address (unix)", old.admin.unixSocket, new.admin.unixSocket)
        restartOnly("[admin] socket_mode", old.admin.socketMode, new.admin.socketMode)
        // The pin secret stays, so that pins handed out before the reload remain valid.
        restartOnly("[sticky]", old.sticky, new.sticky)
        restartOnly("[peer]", old.peer, new.peer)
        restartOnly("[group]", old.group, new.group)
    }

    /// One line for the log: "no changes", or the applied kinds joined, then what waits for a restart.
    public var summary: String {
        var parts = applied.isEmpty ? ["no configuration changes"] : applied
        if !needRestart.isEmpty { parts.append("NOT applied until a restart: " + needRestart.joined(separator: ", ")) }
        return parts.joined(separator: "; ")
    }

    private mutating func compareNamed<T: Equatable>(_ kind: String, _ old: [T], _ new: [T], name: KeyPath<T, String>) {
        let oldNames = old.map { $0[keyPath: name] }, newNames = new.map { $0[keyPath: name] }
        let added = newNames.filter { !oldNames.contains($0) }
        let removed = oldNames.filter { !newNames.contains($0) }
        let changed = new.filter { item in old.contains { $0[keyPath: name] == item[keyPath: name] && $0 != item } }
            .map { $0[keyPath: name] }
        if !added.isEmpty { applied.append("\(kind) added: " + added.joined(separator: ", ")) }
        if !removed.isEmpty { applied.append("\(kind) removed: " + removed.joined(separator: ", ")) }
        if !changed.isEmpty { applied.append("\(kind) changed: " + changed.joined(separator: ", ")) }
        if added.isEmpty && removed.isEmpty && changed.isEmpty && oldNames != newNames {
            applied.append("\(kind) reordered")
        }
    }

    private mutating func compareServers(_ old: [Pool], _ new: [Pool]) {
        let before = Self.servers(old), after = Self.servers(new)
        let added = after.keys.filter { before[$0] == nil }.sorted()
        let removed = before.keys.filter { after[$0] == nil }.sorted()
        let changed = after.keys.filter { id in
            guard let was = before[id], let now = after[id] else { return false }
            return was.pool != now.pool || was.server != now.server
        }.sorted()
        let label = { (ids: [String], map: [String: (pool: String, server: Server)]) in
            ids.map { "\($0) (pool \(map[$0]!.pool))" }.joined(separator: ", ")
        }
        if !added.isEmpty { applied.append("servers added: " + label(added, after)) }
        if !removed.isEmpty { applied.append("servers removed: " + label(removed, before)) }
        if !changed.isEmpty { applied.append("servers changed: " + label(changed, after)) }
    }

    private mutating func restartOnly<T: Equatable>(_ label: String, _ old: T, _ new: T) {
        guard old != new else { return }
        if let a = old as? Int, let b = new as? Int {
            needRestart.append("\(label) \(a) → \(b)")
        } else {
            needRestart.append("\(label) changed")
        }
    }

    /// A pool's own settings, its servers left out (they are compared one by one).
    private static func withoutServers(_ pool: Pool) -> Pool {
        var copy = pool
        copy.servers = []
        return copy
    }

    /// Every server by id, with its pool's name, and compared with its pool (a server that moves to
    /// another pool is changed).
    private static func servers(_ pools: [Pool]) -> [String: (pool: String, server: Server)] {
        var map: [String: (pool: String, server: Server)] = [:]
        for pool in pools { for s in pool.servers { map[s.id] = (pool.name, s) } }
        return map
    }
}

