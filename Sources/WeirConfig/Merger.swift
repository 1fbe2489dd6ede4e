import Foundation
import TOMLKit

/// Accumulates the parsed files into one configuration, collecting every error on the way. Each table is read
/// by its spec in `Schema`; what is left here is the top level, what spans tables (listener addresses) and the
/// checks across files.
struct Merger {
    // MARK: State

    let scope: String
    var reader = Reader()
    var errors: [ConfigError] { reader.errors }
    /// A file could not be read or parsed: cross-file checks would only produce noise.
    var incomplete = false
    var sourceFiles: [String] = []

    var global = GlobalSettings()
    var timeouts = Timeouts()
    var limits = Limits()
    var admin = AdminState()
    var discovery = DiscoveryState()
    var sticky = StickyState()
    var http2Guard = HTTP2GuardSettings()

    var listeners: [ListenerDraft] = []
    var pools: [Pool] = []
    var routes: [Route] = []

    /// Valid listener addresses (port 0 exempt) -> the listener's name (when valid) and "file: key".
    var listenerAddresses: [SocketAddress: (name: String?, location: String)] = [:]
    var listenerTablesSeen = 0
    var routeTablesSeen = 0

    struct RouteReference {
        var site: Site
        var pool: String?
        var listener: String?
        var spill: String?
    }
    var routeReferences: [RouteReference] = []

    /// `[peer]` when valid, and where it was written (valid or not: a written [peer] makes this a peer directory).
    var peer: PeerSettings?
    var peerSite: Site?
    /// `[group]` when valid, and where it was written.
    var group: GroupState?
    var groupSite: Site?
    /// The valid pools with `load_source = "beacons"`, for the checks against `[group]`.
    var beaconPools: [(site: Site, pool: Pool)] = []

    init(scope: String) {
        self.scope = scope
    }

    var configuration: WeirConfiguration {
        WeirConfiguration(
            global: global, timeouts: timeouts, limits: limits,
            listeners: listeners.map { draft in
                var listener = draft.listener
                listener.maxConnections = draft.maxConnections ?? global.maxConnections
                return listener
            },
            pools: pools, routes: routes, sourceFiles: sourceFiles, admin: admin.settings,
            sticky: {
                var settings = sticky.settings
                settings.secret = sticky.inlineSecret ?? sticky.fileSecret
                return settings
            }(),
            discovery: discovery.settings, peer: peer, group: group?.resolved, http2Guard: http2Guard)
    }

    mutating func fail(_ file: String, _ key: String, _ message: String) {
        reader.fail(file, key, message)
    }

    // MARK: One file

    mutating func process(file: String, table: TOMLTable) {
        for (name, header) in Schema.topLevel {
            guard let value = table[name] else { continue }
            let site = Site(file: file, key: name)
            switch name {
            case "listener", "pool", "route":
                guard let elements = arrayOfTables(value, at: site, header: header) else { continue }
                for (index, element) in elements {
                    switch name {
                    case "listener": processListener(element, at: site.element(index))
                    case "pool": processPool(element, at: site.element(index))
                    default: processRoute(element, at: site.element(index))
                    }
                }
            default:
                guard let section = value.table else {
                    let hint = name == "sticky" && value.type == .array
                        ? "; to pin a route's path to one server, write [[route.sticky]] after the [[route]]" : ""
                    fail(file, name, "expected a table (\(header)), found \(ValueRules.describe(value))\(hint)")
                    continue
                }
                processSettings(name, section, at: site)
            }
        }
        let known = Schema.topLevel.map(\.name)
        let homes = Schema.settingsHomes
        for key in table.keys.sorted() where !known.contains(key) {
            guard let value = table[key] else { continue }
            if value.type == .table || value.type == .array {
                if let match = ValueRules.suggestion(for: key, among: known),
                   let header = Schema.topLevel.first(where: { $0.name == match })?.header {
                    fail(file, key, "unknown table (did you mean \(header)?)")
                } else {
                    fail(file, key, "unknown table; known tables: \(Schema.topLevelHeaders)")
                }
            } else if let home = homes.first(where: { $0.keys.contains(key) }) {
                fail(file, key, "unknown top-level key; \(key) belongs in \(home.header)")
            } else {
                fail(file, key, "unknown top-level key; keys belong inside one of \(Schema.topLevelHeaders)")
            }
        }
    }

    /// The tables of a top-level array of tables; a single table that only holds a sub-table (`[pool.health]`
    /// before any `[[pool]]`) is reported as written out of place.
    mutating func arrayOfTables(_ value: TOMLValueConvertible, at site: Site, header: String) -> [(Int, TOMLTable)]? {
        if value.array == nil, let table = value.table, let misplaced = misplacedSubtable(site.key, table) {
            fail(site.file, misplaced.key, misplaced.message)
            return nil
        }
        return reader.tables(value, at: site, header: header)
    }

    /// `[pool.tls]` written with no `[[pool]]` before it parses as a table `pool` holding `tls`: the key and message.
    func misplacedSubtable(_ name: String, _ table: TOMLTable) -> (key: String, message: String)? {
        switch name {
        case "pool":
            for (key, header) in [("server", "[[pool.server]]"), ("health", "[pool.health]"), ("tls", "[pool.tls]")]
            where table[key] != nil {
                return ("pool.\(key)", "\(header) must follow a [[pool]] in the same file")
            }
        case "route" where table["sticky"] != nil:
            return ("route.sticky", "[[route.sticky]] must follow a [[route]] in the same file")
        case "listener":
            guard let tls = table["tls"]?.table else { return nil }
            if tls.keys == ["sni"] {
                return ("listener.tls.sni",
                        "[[listener.tls.sni]] must follow a [[listener]] and its [listener.tls] in the same file")
            }
            return ("listener.tls", "[listener.tls] must follow a [[listener]] in the same file")
        default:
            break
        }
        return nil
    }

    // MARK: Settings tables

    mutating func processSettings(_ name: String, _ table: TOMLTable, at site: Site) {
        switch name {
        case "global": _ = reader.read(table, Schema.global, at: site, into: &global)
        case "timeouts": _ = reader.read(table, Schema.timeouts, at: site, into: &timeouts)
        case "limits": _ = reader.read(table, Schema.limits, at: site, into: &limits)
        case "admin": _ = reader.read(table, Schema.admin, at: site, into: &admin)
        case "sticky": _ = reader.read(table, Schema.sticky, at: site, into: &sticky)
        case "peer": processPeer(table, at: site)
        case "group": processGroup(table, at: site)
        case "http2": _ = reader.read(table, Schema.http2, at: site, into: &http2Guard)
        default: _ = reader.read(table, Schema.discovery, at: site, into: &discovery)
        }
    }

    // MARK: [[listener]], [[pool]], [[route]]

    mutating func processListener(_ table: TOMLTable, at site: Site) {
        listenerTablesSeen += 1
        var draft = ListenerDraft()
        let outcome = reader.read(table, Schema.listener, at: site, into: &draft)
        var addressIsNew = true
        let address = draft.listener.address
        if outcome.accepted.contains("address"), address.port != 0 {
            let name = draft.listener.name.isEmpty ? nil : draft.listener.name
            if let other = listenerAddresses[address] {
                addressIsNew = false
                let owner = other.name.map { "listener \"\($0)\" at " } ?? ""
                reader.fail(site.child("address"), "address \(address) is already used by \(owner)\(other.location)")
            } else {
                listenerAddresses[address] = (name, site.child("address").location)
            }
        }
        if outcome.valid, addressIsNew { listeners.append(draft) }
    }

    mutating func processPool(_ table: TOMLTable, at site: Site) {
        guard let pool = reader.read(table, Schema.pool, at: site) else { return }
        pools.append(pool)
        if pool.loadSource == .beacons { beaconPools.append((site, pool)) }
    }

    mutating func processRoute(_ table: TOMLTable, at site: Site) {
        routeTablesSeen += 1
        var draft = RouteDraft()
        let outcome = reader.read(table, Schema.route, at: site, into: &draft)
        let route = draft.route
        // The names as written (when they are valid names), resolved once every file is read.
        routeReferences.append(RouteReference(
            site: site, pool: route.pool.isEmpty ? nil : route.pool, listener: route.listener,
            spill: route.spill == route.pool ? nil : route.spill))
        if outcome.valid { routes.append(route) }
    }

    // MARK: Checks across files

    mutating func finish() {
        // Certain whatever the unreadable files hold: both were written.
        if let inline = sticky.inlineLocation, let fileKey = sticky.fileLocation {
            let (file, key) = Self.split(fileKey)
            fail(file, key, "secret and secret_file are both set (secret at \(inline)); set only one of them")
        }
        let servers = discovery.settings.serversPath, assign = discovery.settings.assignPath
        if let servers, let assign, servers == assign, !discovery.invalid {
            let serversWritten = discovery.locations["servers_path"] != nil
            let assignWritten = discovery.locations["assign_path"] != nil
            if let location = discovery.locations[assignWritten ? "assign_path" : "servers_path"],
               (serversWritten && assignWritten) || !incomplete {
                let (file, key) = Self.split(location)
                let other = assignWritten ? "servers_path" : "assign_path"
                let shown = "\(serversWritten && assignWritten ? "" : "default ")\"\(ValueRules.clip(servers))\""
                fail(file, key, "must differ from discovery.\(other) (\(shown)); each endpoint needs a path of its own")
            }
        }
        checkAlivePath()
        checkAdminToken()
        // A clash with an explicitly set admin address is certain even when another file is unreadable.
        if let address = admin.settings.address, address.port != 0, let location = admin.location,
           let listener = listenerAddresses[address] {
            let owner = listener.name.map { "listener \"\($0)\" at " } ?? ""
            let (file, key) = Self.split(location)
            fail(file, key, "address \(address) is already used by \(owner)\(listener.location); "
                 + "the admin listener needs an address of its own")
        }
        guard !incomplete else { return }
        if let address = admin.settings.address, address.port != 0, !admin.written,
           let listener = listenerAddresses[address] {
            let (file, key) = Self.split(listener.location)
            fail(file, key, "address \(address) is also the default address of the admin listener; "
                 + #"set [admin] address to another address, or to "off""#)
        }
        checkPeerGroup()
        for reference in routeReferences {
            if let pool = reference.pool, !isSynthesizedPool(pool), let message = dangling("pool", pool, kind: "pool name", header: "[[pool]]") {
                reader.fail(reference.site.child("pool"), message)
            }
            if let spill = reference.spill, !isSynthesizedPool(spill), let message = dangling("pool", spill, kind: "pool name", header: "[[pool]]") {
                reader.fail(reference.site.child("spill"), message)
            }
            if let listener = reference.listener,
               let message = dangling("listener", listener, kind: "listener name", header: "[[listener]]") {
                reader.fail(reference.site.child("listener"), message)
            }
        }
        if listenerTablesSeen == 0 {
            fail(scope, "listener",
                 #"no listener defined; add a [[listener]] with a name and an address, e.g. name = "public" and address = "127.0.0.1:8080""#)
        }
        // A peer directory without [[route]] gets the default route (see PeerSynthesis).
        if routeTablesSeen == 0, peerSite == nil {
            fail(scope, "route",
                 #"no route defined; add a [[route]] that sends requests to a pool, e.g. name = "default", path = "/" and pool = "demo""#)
        }
    }

    /// "file: key" -> (file, key). File names may contain ": " only in theory; the key never does.
    static func split(_ location: String) -> (file: String, key: String) {
        guard let range = location.range(of: ": ", options: .backwards) else { return (location, "") }
        return (String(location[..<range.lowerBound]), String(location[range.upperBound...]))
    }

    /// nil when `name` was declared as a `kind`; otherwise the message for a reference to it.
    func dangling(_ noun: String, _ name: String, kind: String, header: String) -> String? {
        guard reader.declared[kind]?[name] == nil else { return nil }
        let defined = reader.declarationOrder[kind] ?? []
        if let match = ValueRules.suggestion(for: name, among: defined) {
            return "no \(noun) named \"\(name)\" (did you mean \"\(match)\"?)"
        }
        if defined.isEmpty {
            return "no \(noun) named \"\(name)\"; no \(header) is defined"
        }
        return "no \(noun) named \"\(name)\"; defined \(noun)s: \(ValueRules.quotedList(defined))"
    }
}
