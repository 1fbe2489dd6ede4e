import WeirConfig

/// A pool compiled for picking: its servers as indices into `RoutingSnapshot.servers`.
public struct CompiledPool: Sendable {
    public let name: String
    public let policy: PolicyName
    public let servers: [Int]
}

/// Everything a request decision reads, built once per configuration and never changed: routes,
/// pools and the live server states. Workers share one snapshot; a reload swaps in a new one and
/// requests in flight finish on the one they started with.
public final class RoutingSnapshot: Sendable {
    public let configuration: WeirConfiguration
    public let routes: [CompiledRoute]
    public let pools: [CompiledPool]
    public let servers: [ServerState]

    /// Compiles `configuration`. Precondition: it was validated by `ConfigLoader` (every route names
    /// an existing pool and listener).
    public init(configuration: WeirConfiguration) {
        self.configuration = configuration
        var servers: [ServerState] = []
        var pools: [CompiledPool] = []
        for pool in configuration.pools {
            var indices: [Int] = []
            for server in pool.servers {
                indices.append(servers.count)
                servers.append(ServerState(config: server, index: servers.count))
            }
            pools.append(CompiledPool(name: pool.name, policy: pool.policy, servers: indices))
        }
        self.routes = configuration.routes.map { route in
            CompiledRoute(route: route,
                          pool: configuration.pools.firstIndex { $0.name == route.pool }!,
                          listener: route.listener.flatMap { l in configuration.listeners.firstIndex { $0.name == l } })
        }
        self.pools = pools
        self.servers = servers
    }

    /// The first route that takes the request, or nil.
    public func route(host: UnsafeRawBufferPointer?, path: UnsafeRawBufferPointer, listener: Int) -> CompiledRoute? {
        for route in routes where route.matches(host: host, path: path, listener: listener) { return route }
        return nil
    }
}
