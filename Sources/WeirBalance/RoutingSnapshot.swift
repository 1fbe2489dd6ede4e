import Atomics
import WeirConfig

/// A pool compiled for picking: its servers as indices into `RoutingSnapshot.servers`, and its settings.
public struct CompiledPool: Sendable {
    public let name: String
    public let policy: PolicyName
    public let servers: [Int]
    /// The pool's configuration (first/second level, hash key, retries, queue, health...).
    public let config: Pool
    /// Hash of each server's id, per position in `servers` (rendezvous hashing).
    let serverHashes: [UInt64]
    /// Servers of other pools that may be lent to this pool (a `can_serve` pattern covers the path of a route
    /// to it), as indices into `RoutingSnapshot.servers`; usually empty. A pick takes one only while it is
    /// lent to this pool (`ServerState.isLent(to:)`) and the request's path lies in its `can_serve`.
    public internal(set) var lendable: [Int] = []
    /// Per entry of `lendable`: its `can_serve` patterns as bytes.
    var lendablePatterns: [[[UInt8]]] = []
    /// `servers` then `lendable`: the positions a pick works on; and the hash of each one's id.
    var members: [Int] = []
    var memberHashes: [UInt64] = []
}

/// Everything a request decision reads, built once per configuration and never changed: routes,
/// pools and the live server states. Workers share one snapshot; a reload swaps in a new one and
/// requests in flight finish on the one they started with.
public final class RoutingSnapshot: Sendable {
    public let configuration: WeirConfiguration
    public let routes: [CompiledRoute]
    public let pools: [CompiledPool]
    public let servers: [ServerState]
    /// The time source for callers that have no `now` at hand (the old `decide(_:snapshot:state:)`).
    /// Defaults to a `ManualClock` that stands still; the gateway passes its real monotonic clock.
    public let clock: any BalanceClock
    /// Per listener: the HTTPS port its requests are redirected to (`https_redirect`), if any.
    public let httpsRedirectPorts: [Int?]
    /// The discovery endpoints' paths as bytes (nil: off), so a request is checked without a String.
    public let serversPath: [UInt8]?
    public let assignPath: [UInt8]?
    public let alivePath: [UInt8]?
    /// Clients' reports of servers that stopped answering them (`assign?failed=ID`): per-client
    /// exclusions, counts, and the hook that has them probed at once.
    public let failureReports: FailureReports
    /// Peer mode: the pool of the peer group (named "group") and the local application's server in
    /// it, the home of every request (figure 2 at a peer); nil in a gateway.
    public let peerPool: Int?
    public let localServer: Int?
    /// Peer mode with `route_by = "redirect"`: a request for another peer is answered with a redirect
    /// (with `peerRedirectStatus`) instead of being forwarded there.
    public let peerRoutesByRedirect: Bool
    /// Peer mode: the figure 2 levels in force (from [peer], changeable at run time).
    public let peerLevels: PeerLevels
    public let peerRedirectStatus: Int

    /// Compiles `configuration`. Precondition: it was validated by `ConfigLoader` (every route names
    /// an existing pool, spill pool and listener).
    /// `previous`: the snapshot this one replaces (a reload). A server whose id it has keeps that
    /// server's run-time state (`ServerState.Live`: counters, health, reports, drain/maint, slow start;
    /// a lending mark is cleared, the lending service decides again), and the peer levels set at run
    /// time stay when [peer] did not change them.
    public init(configuration: WeirConfiguration, clock: any BalanceClock = ManualClock(), previous: RoutingSnapshot? = nil) {
        self.configuration = configuration
        self.clock = clock
        httpsRedirectPorts = configuration.listeners.map(\.httpsRedirectPort)
        serversPath = configuration.discovery.serversPath.map { Array($0.utf8) }
        assignPath = configuration.discovery.assignPath.map { Array($0.utf8) }
        alivePath = configuration.discovery.alivePath.map { Array($0.utf8) }
        var servers: [ServerState] = []
        var pools: [CompiledPool] = []
        let previousLive = Dictionary((previous?.servers ?? []).map { ($0.config.id, $0.live) }, uniquingKeysWith: { a, _ in a })
        for pool in configuration.pools {
            let settings = pool.loadSource == .beacons && configuration.group != nil
                ? ServerState.PoolSettings(pool: pool, group: configuration.group!) : ServerState.PoolSettings(pool: pool)
            var indices: [Int] = []
            for server in pool.servers {
                indices.append(servers.count)
                var own = settings
                let isLocal = configuration.peer.map { server.id == $0.id && pool.name == RoutingSnapshot.peerPoolName } ?? false
                // The local application's load is known without delay (in flight, or its own
                // report): no herding correction for it, only for the others' beacons.
                if isLocal { own.herding = false }
                let carried = previousLive[server.id]
                carried.map { ServerState.clearLending($0) }
                let state = ServerState(config: server, index: servers.count, settings: own, live: carried)
                // The operator's drain/maint is kept in the runtime state, laid over conf.d at every load:
                // it holds from the start and after every reload, and a cleared one ends with the reload.
                state.setAdminCondition(server.adminCondition.map { $0 == .drain ? .drain : .maint })
                if isLocal, let peer = configuration.peer { state.setServedPaths(peer.serves) }
                servers.append(state)
            }
            pools.append(CompiledPool(name: pool.name, policy: pool.policy, servers: indices, config: pool,
                                      serverHashes: pool.servers.map { BalanceHash.hash($0.id) }))
        }
        let poolIndex = { (name: String) in configuration.pools.firstIndex { $0.name == name } }
        let routes = configuration.routes.map { route in
            CompiledRoute(route: route,
                          pool: poolIndex(route.pool)!,
                          listener: route.listener.flatMap { l in configuration.listeners.firstIndex { $0.name == l } },
                          spillPool: route.spill.flatMap(poolIndex))
        }
        Self.compileLending(&pools, routes: routes, servers: servers)
        self.routes = routes
        self.pools = pools
        self.servers = servers
        failureReports = FailureReports(servers: servers.count,
                                        durationNanoseconds: configuration.discovery.failedExclusion.weirNanoseconds,
                                        capacity: configuration.discovery.failedClients)
        if let peer = configuration.peer, let pool = pools.firstIndex(where: { $0.name == RoutingSnapshot.peerPoolName }) {
            peerPool = pool
            localServer = pools[pool].servers.first { servers[$0].config.id == peer.id }
            peerRoutesByRedirect = peer.routeBy == .redirect
            peerRedirectStatus = peer.redirectStatus
            if let old = previous?.configuration.peer, old.firstLevel == peer.firstLevel, old.secondLevel == peer.secondLevel,
               let levels = previous?.peerLevels {
                peerLevels = levels
            } else {
                peerLevels = PeerLevels(first: peer.firstLevel, second: peer.secondLevel)
            }
        } else {
            peerPool = nil
            localServer = nil
            peerRoutesByRedirect = false
            peerRedirectStatus = 307
            peerLevels = PeerLevels(first: 0.5, second: 0.2)
        }
    }

    /// Fills each pool's `lendable` (servers of other pools whose `can_serve` covers a route to it) and
    /// `members`. A pattern covers a route when it takes the route's path without its final "*" (or that
    /// path followed by "/"): "/banking/*" covers routes with path "/banking", "/banking/" or "/banking/*".
    static func compileLending(_ pools: inout [CompiledPool], routes: [CompiledRoute], servers: [ServerState]) {
        for server in servers where !server.config.canServe.isEmpty {
            let patterns = server.config.canServe.map { Array($0.utf8) }
            let own = pools.firstIndex { $0.servers.contains(server.index) }
            var targets: [Int] = []
            for route in routes where route.pool != own && !targets.contains(route.pool) && route.pool < pools.count {
                if patterns.contains(where: { covers($0, routePath: route.pathPrefix) }) { targets.append(route.pool) }
            }
            for pool in targets {
                pools[pool].lendable.append(server.index)
                pools[pool].lendablePatterns.append(patterns)
            }
        }
        for i in pools.indices {
            pools[i].members = pools[i].servers + pools[i].lendable
            pools[i].memberHashes = pools[i].serverHashes + pools[i].lendable.map { BalanceHash.hash(servers[$0].config.id) }
        }
    }

    /// Whether the `can_serve` pattern takes the route path `routePath` (as bytes, as written).
    public static func covers(_ pattern: [UInt8], routePath: [UInt8]) -> Bool {
        var stem = routePath
        if stem.last == UInt8(ascii: "*") { stem.removeLast() }
        var samples = [stem]
        if stem.last != UInt8(ascii: "/") { samples.append(stem + [UInt8(ascii: "/")]) }
        return samples.contains { sample in sample.withUnsafeBytes { CompiledRoute.takes($0, pattern: pattern) } }
    }

    /// The name of the pool the loader makes for a peer's group.
    public static let peerPoolName = "group"

    /// The first route that takes the request, or nil.
    public func route(host: UnsafeRawBufferPointer?, path: UnsafeRawBufferPointer, listener: Int) -> CompiledRoute? {
        for route in routes where route.matches(host: host, path: path, listener: listener) { return route }
        return nil
    }

    /// Index of the pool named `name`, or nil.
    public func poolIndex(named name: String) -> Int? {
        pools.firstIndex { $0.name == name }
    }

    /// Index of the server whose id is `id`, or nil.
    public func serverIndex(id: String) -> Int? {
        servers.firstIndex { $0.config.id == id }
    }

    /// Plain values for the admin API: every pool and its servers as seen at `now`.
    public func status(now: UInt64) -> [PoolStatus] {
        pools.map { pool in
            PoolStatus(name: pool.name, policy: pool.policy.rawValue, servers: pool.servers.map { index in
                let s = servers[index]
                let report = s.reportedLoad(now: now, maxAge: .max)
                return ServerStatus(id: s.config.id, address: s.config.address.description,
                                    condition: s.condition.description, healthy: s.isHealthy,
                                    effectiveLoad: s.effectiveLoad(now: now),
                                    reportedLoad: report?.load,
                                    reportAgeMs: report.map { Int(min($0.ageNanoseconds / 1_000_000, UInt64(Int.max))) },
                                    inFlight: s.inFlight.load(ordering: .relaxed),
                                    inFlightElsewhere: s.remoteInFlightCount,
                                    totalRequests: s.totalRequests.load(ordering: .relaxed),
                                    failures: s.failures.load(ordering: .relaxed),
                                    consecutivePassiveFailures: s.consecutivePassiveFailures,
                                    group: s.config.group, weight: s.config.weight, capacity: s.config.capacity,
                                    maxConns: s.config.maxConns,
                                    slowStartFactor: s.slowStartFactor(now: now))
            })
        }
    }
}

/// The two levels of the figure 2 rule at a peer, changeable at run time (admin `POST /peer`):
/// workers read them for every decision, the control thread writes them. Each level is one
/// atomic; a decision racing a change may see the new first level with the old second one, once.
public final class PeerLevels: Sendable {
    private let firstBits: ManagedAtomic<UInt64>
    private let secondBits: ManagedAtomic<UInt64>

    public init(first: Double, second: Double) {
        firstBits = ManagedAtomic(first.bitPattern)
        secondBits = ManagedAtomic(second.bitPattern)
    }

    public var first: Double { Double(bitPattern: firstBits.load(ordering: .relaxed)) }
    public var second: Double { Double(bitPattern: secondBits.load(ordering: .relaxed)) }

    /// Sets both levels. Precondition: each in 0...1 (the caller validates what an operator sent).
    public func set(first: Double, second: Double) {
        precondition((0...1).contains(first) && (0...1).contains(second), "levels are fractions 0...1")
        firstBits.store(first.bitPattern, ordering: .relaxed)
        secondBits.store(second.bitPattern, ordering: .relaxed)
    }
}

/// One pool in `RoutingSnapshot.status(now:)`.
public struct PoolStatus: Sendable, Equatable {
    public var name: String
    /// The policy's configuration spelling ("threshold", "least-load", ...).
    public var policy: String
    public var servers: [ServerStatus]
}

/// One server in `RoutingSnapshot.status(now:)`.
public struct ServerStatus: Sendable, Equatable {
    public var id: String
    /// "host:port" ("[::1]:port" for IPv6).
    public var address: String
    /// "up", "down", "drain" or "maint".
    public var condition: String
    /// The probe/passive view (false after health checks or passive failures took it down).
    public var healthy: Bool
    public var effectiveLoad: Double
    /// The last reported load, however old (see `reportAgeMs`); nil when none was ever reported.
    public var reportedLoad: Double?
    public var reportAgeMs: Int?
    public var inFlight: Int
    /// Requests the other gateways of the group have in flight here (`[group] share_load`; else 0).
    public var inFlightElsewhere: Int
    public var totalRequests: Int
    public var failures: Int
    public var consecutivePassiveFailures: Int
    public var group: Int
    public var weight: Int
    public var capacity: Int
    public var maxConns: Int?
    public var slowStartFactor: Double
}
