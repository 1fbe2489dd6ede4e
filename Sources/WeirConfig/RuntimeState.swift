import Foundation

/// An operator's condition on a server, set at run time and kept in the runtime state: `drain` keeps its
/// pinned transactions and gets no new requests, `maint` gets nothing.
public enum AdminCondition: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
    case drain, maint
}

extension Mode: Codable {}

/// Runtime changes that persist (`<state_dir>/runtime.json`): what operators changed through the admin API or the
/// CLI (listener modes, drain/maint, weights, servers added and removed), laid over conf.d at every load with
/// `apply(to:)`. conf.d stays the source of truth for everything else.
///
/// Entries are the operator's word: they change only when an operator changes or clears them. An entry that names
/// a listener, pool or server conf.d no longer has is kept (a conf.d edit may bring it back) but not applied, and
/// each load reports it as a warning until it is cleared (`weir state clear`).
public struct RuntimeState: Sendable, Equatable, Codable {
    /// A server of a pool, by pool name and server id.
    public struct ServerRef: Sendable, Equatable, Hashable, Codable {
        public var pool: String
        public var id: String
        public init(pool: String, id: String) {
            self.pool = pool
            self.id = id
        }
    }

    /// What was changed on one server: its admin condition and/or its weight (nil: as conf.d says).
    public struct ServerOverride: Sendable, Equatable, Codable {
        public var pool: String
        public var id: String
        public var condition: AdminCondition?
        public var weight: Int?
        public init(pool: String, id: String, condition: AdminCondition? = nil, weight: Int? = nil) {
            self.pool = pool
            self.id = id
            self.condition = condition
            self.weight = weight
        }
        var ref: ServerRef { ServerRef(pool: pool, id: id) }
        var isEmpty: Bool { condition == nil && weight == nil }
    }

    /// A server added at run time: the `[[pool.server]]` keys that make sense for it (nil: the default).
    public struct AddedServer: Sendable, Equatable, Codable {
        public var pool: String
        public var id: String
        public var address: String
        public var weight: Int?
        public var capacity: Int?
        public var publicURL: String?
        public var group: Int?
        public var maxConns: Int?

        enum CodingKeys: String, CodingKey {
            case pool, id, address, weight, capacity, group
            case publicURL = "public_url"
            case maxConns = "max_conns"
        }

        public init(pool: String, id: String, address: String, weight: Int? = nil, capacity: Int? = nil,
                    publicURL: String? = nil, group: Int? = nil, maxConns: Int? = nil) {
            self.pool = pool
            self.id = id
            self.address = address
            self.weight = weight
            self.capacity = capacity
            self.publicURL = publicURL
            self.group = group
            self.maxConns = maxConns
        }

        /// The entry for a validated server: only the keys that differ from the defaults are written.
        public init(pool: String, server: Server) {
            let d = Server(id: server.id, address: server.address)
            self.init(pool: pool, id: server.id, address: server.address.description,
                      weight: server.weight == d.weight ? nil : server.weight,
                      capacity: server.capacity == d.capacity ? nil : server.capacity,
                      publicURL: server.publicURL, group: server.group == d.group ? nil : server.group,
                      maxConns: server.maxConns)
        }

        var ref: ServerRef { ServerRef(pool: pool, id: id) }
    }

    /// Listener name -> the mode an operator switched it to.
    public var modes: [String: Mode]
    /// Per server (pool + id): its admin condition and weight changes, sorted by pool then id.
    public var servers: [ServerOverride]
    /// Servers added at run time, in the order they were added.
    public var added: [AddedServer]
    /// conf.d servers removed at run time, sorted by pool then id.
    public var removed: [ServerRef]
    /// The file format; a file of another version is refused (written by another Weir).
    public var version: Int

    public init(modes: [String: Mode] = [:], servers: [ServerOverride] = [], added: [AddedServer] = [],
                removed: [ServerRef] = []) {
        self.modes = modes
        self.servers = servers
        self.added = added
        self.removed = removed
        version = Self.currentVersion
    }

    /// `runtime.json`: the file's name in `global.stateDirectory`.
    public static let fileName = "runtime.json"
    public static let currentVersion = 1

    /// Whether nothing was changed at run time.
    public var isEmpty: Bool { modes.isEmpty && servers.isEmpty && added.isEmpty && removed.isEmpty }

    /// The path of the file in `stateDirectory`.
    public static func path(stateDirectory: String) -> String {
        ConfigLoader.joinPath(stateDirectory, fileName)
    }
}

// MARK: - Changes (pure; the caller persists)

extension RuntimeState {
    /// Records that `listener` was switched to `mode`.
    public mutating func setMode(_ mode: Mode, listener: String) {
        modes[listener] = mode
    }

    /// Records the admin condition of a server; nil (enable) clears it.
    public mutating func setCondition(_ condition: AdminCondition?, pool: String, id: String) {
        change(ServerRef(pool: pool, id: id)) { $0.condition = condition }
    }

    /// Records the weight of a server; nil clears it (conf.d's weight again).
    public mutating func setWeight(_ weight: Int?, pool: String, id: String) {
        change(ServerRef(pool: pool, id: id)) { $0.weight = weight }
    }

    /// Records a server added at run time (replacing an earlier added server with the same id).
    public mutating func add(_ server: AddedServer) {
        added.removeAll { $0.id == server.id }
        added.append(server)
    }

    /// Records the removal of a server: an added one is forgotten, a conf.d one is listed in `removed`.
    /// Its condition and weight entries go too (they have nothing left to apply to).
    public mutating func remove(pool: String, id: String) {
        let ref = ServerRef(pool: pool, id: id)
        servers.removeAll { $0.ref == ref }
        if added.contains(where: { $0.ref == ref }) {
            added.removeAll { $0.ref == ref }
        } else if !removed.contains(ref) {
            removed.append(ref)
            removed.sort { ($0.pool, $0.id) < ($1.pool, $1.id) }
        }
    }

    /// The sections `clear(section:key:)` knows: `modes` (key: listener), `conditions`, `weights`, `added`,
    /// `removed` (key: server id).
    public static let sections = ["modes", "conditions", "weights", "added", "removed"]

    /// Clears a whole section, or its entry `key` (a listener name, or a server id); nil section: everything.
    /// Returns how many entries went (0: nothing matched).
    @discardableResult
    public mutating func clear(section: String?, key: String? = nil) -> Int {
        let before = count
        let matches = { (id: String) in key == nil || key == id }
        switch section {
        case nil: self = RuntimeState()
        case "modes": modes = modes.filter { !matches($0.key) }
        case "conditions": for i in servers.indices where matches(servers[i].id) { servers[i].condition = nil }
        case "weights": for i in servers.indices where matches(servers[i].id) { servers[i].weight = nil }
        case "added": added.removeAll { matches($0.id) }
        case "removed": removed.removeAll { matches($0.id) }
        default: return 0
        }
        servers.removeAll(where: \.isEmpty)
        return before - count
    }

    /// Number of entries (a server's condition and weight count apart).
    public var count: Int {
        modes.count + servers.reduce(0) { $0 + ($1.condition == nil ? 0 : 1) + ($1.weight == nil ? 0 : 1) }
            + added.count + removed.count
    }

    private mutating func change(_ ref: ServerRef, _ body: (inout ServerOverride) -> Void) {
        var entry = servers.first { $0.ref == ref } ?? ServerOverride(pool: ref.pool, id: ref.id)
        body(&entry)
        servers.removeAll { $0.ref == ref }
        if !entry.isEmpty { servers.append(entry) }
        servers.sort { ($0.pool, $0.id) < ($1.pool, $1.id) }
    }
}

// MARK: - Codec

/// A runtime state file that cannot be used; names the file.
public struct RuntimeStateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var reason: String
    public var description: String { "\(file): \(reason)" }
}

extension RuntimeState {
    /// The file's contents: JSON, keys sorted, one entry per line (a person reads it; `weir state` prints it).
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return Array(data) + [UInt8(ascii: "\n")]
    }

    /// Decodes a file's contents. Throws a `RuntimeStateError` naming `file` when it is not a runtime state
    /// document of this version.
    public static func decode(_ bytes: [UInt8], file: String) throws -> RuntimeState {
        let state: RuntimeState
        do {
            state = try JSONDecoder().decode(RuntimeState.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw RuntimeStateError(file: file, reason: "not a runtime state document: \(describe(error))")
        } catch {
            throw RuntimeStateError(file: file, reason: "not a runtime state document: \(error)")
        }
        guard state.version == currentVersion else {
            throw RuntimeStateError(file: file, reason: "version \(state.version) is not \(currentVersion) (written by another Weir)")
        }
        return state
    }

    /// Reads `<stateDirectory>/runtime.json`: an empty state when there is no file; throws a `RuntimeStateError`
    /// when it cannot be read or decoded.
    public static func read(stateDirectory: String) throws -> RuntimeState {
        let file = path(stateDirectory: stateDirectory)
        guard FileManager.default.fileExists(atPath: file) else { return RuntimeState() }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw RuntimeStateError(file: file, reason: "cannot be read (check its permissions)")
        }
        return try decode(Array(data), file: file)
    }

    private static func describe(_ error: DecodingError) -> String {
        func at(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "" : " at \(path.hasPrefix(".") ? String(path.dropFirst()) : path)"
        }
        switch error {
        case .keyNotFound(let key, let c): return "missing key \"\(key.stringValue)\"\(at(c))"
        case .dataCorrupted(let c), .typeMismatch(_, let c), .valueNotFound(_, let c):
            return c.debugDescription.trimmingCharacters(in: ["."]) + at(c)
        @unknown default: return "\(error)"
        }
    }

    /// Decoding: every section may be absent (an empty one); `version` is required.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decode(Int.self, forKey: .version)
        modes = try c.decodeIfPresent([String: Mode].self, forKey: .modes) ?? [:]
        servers = try c.decodeIfPresent([ServerOverride].self, forKey: .servers) ?? []
        added = try c.decodeIfPresent([AddedServer].self, forKey: .added) ?? []
        removed = try c.decodeIfPresent([ServerRef].self, forKey: .removed) ?? []
    }
}
