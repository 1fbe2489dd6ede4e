import TOMLKit

// Laying the runtime state over conf.d, and the checks a run-time server gets (the same table of keys as a
// `[[pool.server]]` in conf.d, so a server is valid at run time exactly when it would be in a file).

extension RuntimeState {
    /// `base` (conf.d, merged and validated) with the runtime changes laid over it, in this order: conf.d servers
    /// removed, servers added, conditions and weights, listener modes. Never fails: each entry that cannot be
    /// applied is left out and described in `warnings` (one line each), and stays in the state:
    /// - a listener, pool or server conf.d does not have (any more);
    /// - an added server whose id conf.d has (conf.d wins), or that is not valid any more (e.g. a hand-edited file);
    /// - a removal that would leave its pool without servers (the pool keeps its conf.d servers);
    /// - a server added to or removed from the pool of a peer group or a pool with `load_source = "beacons"` (its
    ///   servers come from `[group]`).
    public func apply(to base: WeirConfiguration) -> (configuration: WeirConfiguration, warnings: [String]) {
        var configuration = base
        var warnings: [String] = []
        applyRemovals(to: &configuration, warnings: &warnings)
        applyAdditions(to: &configuration, warnings: &warnings)
        applyOverrides(to: &configuration, warnings: &warnings)
        applyModes(to: &configuration, warnings: &warnings)
        return (configuration, warnings)
    }

    private func applyRemovals(to configuration: inout WeirConfiguration, warnings: inout [String]) {
        for ref in removed {
            guard let p = mutablePool(ref.pool, in: configuration, for: "removal of server \"\(ref.id)\"", &warnings) else { continue }
            guard let s = configuration.pools[p].servers.firstIndex(where: { $0.id == ref.id }) else {
                warnings.append("removal of server \"\(ref.id)\": pool \"\(ref.pool)\" has no such server in conf.d; not applied")
                continue
            }
            guard configuration.pools[p].servers.count > 1 else {
                warnings.append("removal of server \"\(ref.id)\": the last server of pool \"\(ref.pool)\"; not applied (a pool needs one)")
                continue
            }
            configuration.pools[p].servers.remove(at: s)
        }
    }

    private func applyAdditions(to configuration: inout WeirConfiguration, warnings: inout [String]) {
        for entry in added {
            let what = "added server \"\(entry.id)\""
            guard let p = mutablePool(entry.pool, in: configuration, for: what, &warnings) else { continue }
            if let owner = configuration.pools.first(where: { $0.servers.contains { $0.id == entry.id } }) {
                warnings.append("\(what): conf.d has a server with this id (pool \"\(owner.name)\"); conf.d wins, not applied")
                continue
            }
            switch Self.server(entry, source: "runtime state") {
            case .success(let server): configuration.pools[p].servers.append(server)
            case .failure(let errors): warnings.append("\(what): not valid (\(Self.fieldMessages(errors).joined(separator: "; "))); not applied")
            }
        }
    }

    private func applyOverrides(to configuration: inout WeirConfiguration, warnings: inout [String]) {
        for entry in servers {
            let what = [entry.condition.map { "\($0.rawValue)" }, entry.weight.map { "weight \($0)" }]
                .compactMap { $0 }.joined(separator: ", ") + " of server \"\(entry.id)\""
            // A drain or weight may be set on any pool (also one whose servers come from [group]).
            guard let p = configuration.pools.firstIndex(where: { $0.name == entry.pool }) else {
                warnings.append("\(what): conf.d has no pool \"\(entry.pool)\"; not applied")
                continue
            }
            guard let s = configuration.pools[p].servers.firstIndex(where: { $0.id == entry.id }) else {
                warnings.append("\(what): pool \"\(entry.pool)\" has no such server; not applied")
                continue
            }
            if let condition = entry.condition { configuration.pools[p].servers[s].adminCondition = condition }
            guard let weight = entry.weight else { continue }
            switch Self.weight(String(weight)) {
            case .success(let w): configuration.pools[p].servers[s].weight = w
            case .failure(let errors): warnings.append("\(what): \(Self.fieldMessages(errors).joined(separator: "; ")); weight not applied")
            }
        }
    }

    private func applyModes(to configuration: inout WeirConfiguration, warnings: inout [String]) {
        for (name, mode) in modes.sorted(by: { $0.key < $1.key }) {
            guard let i = configuration.listeners.firstIndex(where: { $0.name == name }) else {
                warnings.append("mode \(mode.rawValue) of listener \"\(name)\": conf.d has no such listener; not applied")
                continue
            }
            configuration.listeners[i].mode = mode
        }
    }

    /// The index of pool `name` when run-time changes may touch its servers; else nil and a warning.
    private func mutablePool(_ name: String, in configuration: WeirConfiguration, for what: String,
                             _ warnings: inout [String]) -> Int? {
        guard let p = configuration.pools.firstIndex(where: { $0.name == name }) else {
            warnings.append("\(what): conf.d has no pool \"\(name)\"; not applied")
            return nil
        }
        if let problem = Self.fixedPoolProblem(configuration.pools[p], in: configuration) {
            warnings.append("\(what): \(problem); not applied")
            return nil
        }
        return p
    }

    /// Why the servers of `pool` cannot be changed at run time, or nil when they can.
    public static func fixedPoolProblem(_ pool: Pool, in configuration: WeirConfiguration) -> String? {
        if pool.loadSource == .beacons || (configuration.peer != nil && pool.name == PeerSettings.poolName) {
            return "the servers of pool \"\(pool.name)\" come from [group] (its beacons), not from the runtime state"
        }
        return nil
    }
}

// MARK: - Validation by the [[pool.server]] table

extension RuntimeState {
    /// The keys `POST /pools/{name}/servers` takes, as in `[[pool.server]]` (`can_serve` is left to conf.d).
    public static let serverKeys = ["id", "address", "weight", "capacity", "public_url", "group", "max_conns"]

    /// Validates a server given as text fields (an admin request's query) by the `[[pool.server]]` table: the
    /// same rules and messages as conf.d. Whole numbers are read as integers; any other key is reported unknown.
    /// `source` names where the fields came from in the errors (their `file`; keys are `server.<field>`).
    public static func server(fields: [(String, String)], source: String) -> Result<Server, ConfigErrors> {
        var values: [String: TOMLValueConvertible] = [:]
        for (key, text) in fields { values[key] = Int(text).map { $0 as TOMLValueConvertible } ?? text }
        return server(table: TOMLTable(values), source: source)
    }

    /// Validates an added server of the state file the same way.
    static func server(_ entry: AddedServer, source: String) -> Result<Server, ConfigErrors> {
        var values: [String: TOMLValueConvertible] = ["id": entry.id, "address": entry.address]
        if let v = entry.weight { values["weight"] = v }
        if let v = entry.capacity { values["capacity"] = v }
        if let v = entry.publicURL { values["public_url"] = v }
        if let v = entry.group { values["group"] = v }
        if let v = entry.maxConns { values["max_conns"] = v }
        return server(table: TOMLTable(values), source: source)
    }

    private static func server(table: TOMLTable, source: String) -> Result<Server, ConfigErrors> {
        var reader = Reader()
        var server = Schema.server.defaults()
        let known = Set(serverKeys)
        for key in table.keys.sorted() where !known.contains(key) {
            reader.fail(Site(file: source, key: "server.\(key)"), "unknown key; known keys: \(serverKeys.joined(separator: ", "))")
        }
        for key in Schema.server.keys where known.contains(key.name) {
            let site = Site(file: source, key: "server.\(key.name)")
            if let value = table[key.name] {
                _ = key.store(value, site, &reader, &server)
            } else if let message = key.missing.message(table, server) {
                reader.fail(site, message)
            }
        }
        return reader.errors.isEmpty ? .success(server) : .failure(ConfigErrors(errors: reader.errors))
    }

    /// A weight as `[[pool.server]] weight` takes it (whole number 1...256); else the error (key `server.weight`).
    public static func weight(_ text: String) -> Result<Int, ConfigErrors> {
        server(fields: [("id", "w"), ("address", "192.0.2.1:80"), ("weight", text)], source: "weight").map(\.weight)
    }

    /// `"<field>: <message>"` per error (the `server.` prefix of the key dropped): what an operator sent is named.
    public static func fieldMessages(_ errors: ConfigErrors) -> [String] {
        errors.errors.map { error in
            let field = error.key.hasPrefix("server.") ? String(error.key.dropFirst("server.".count)) : error.key
            return "\(field): \(error.message)"
        }
    }
}
