import WeirConfig

/// What to do with a request. Produced by `Decision.decide`, carried out by the gateway.
public enum Verdict: Sendable, Equatable {
    /// Forward to `RoutingSnapshot.servers[server]`.
    case forward(server: Int)
    /// Answer with `status` and a one-line `reason` (no route, no server available...).
    case reject(status: Int, reason: String)
}

/// The facts about a request that a decision may use.
public struct RequestFacts {
    /// Host without port, as sent (any case); nil when the request has none (HTTP/1.0).
    public var host: UnsafeRawBufferPointer?
    /// The path and query of the target.
    public var path: UnsafeRawBufferPointer
    /// Index of the listener that accepted the connection.
    public var listener: Int
    /// Servers not to pick (a retry after a failure there).
    public var excluded: [Int] = []

    public init(host: UnsafeRawBufferPointer?, path: UnsafeRawBufferPointer, listener: Int, excluded: [Int] = []) {
        self.host = host
        self.path = path
        self.listener = listener
        self.excluded = excluded
    }
}

/// The pure request decision: route, then policy pick. No I/O; the only state it touches is the
/// caller's `PolicyState` (one per worker, so no locks).
public enum Decision {
    /// Decides where `request` goes under `snapshot`.
    /// Returns `.forward` with a server index, or `.reject` with 404 (no route) or 503 (no server available).
    public static func decide(_ request: RequestFacts, snapshot: RoutingSnapshot, state: inout PolicyState) -> Verdict {
        guard let route = snapshot.route(host: request.host, path: request.path, listener: request.listener) else {
            return .reject(status: 404, reason: "no route for this host and path")
        }
        let pool = snapshot.pools[route.pool]
        guard let server = state.pick(pool: route.pool, servers: pool.servers, snapshot: snapshot, excluding: request.excluded) else {
            return .reject(status: 503, reason: "no server available in pool \(pool.name)")
        }
        return .forward(server: server)
    }
}
