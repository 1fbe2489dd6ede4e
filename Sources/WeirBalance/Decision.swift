import WeirConfig

/// Every answer Weir gives a request. `Decision.answer` gives any of them; the lower-level
/// `Decision.decide` (a request already routed to a pool) only `.forward`, `.redirect`, `.queue`
/// and `.reject`. Each case carries exactly what the caller needs to carry it out.
public enum Verdict: Sendable, Equatable {
    /// Forward to `RoutingSnapshot.servers[server]`. `pin`: the sticky side (Set-Cookie to send,
    /// register change, counters) when a sticky rule concerns the request, else nil.
    case forward(server: Int, pin: PinCommit? = nil)
    /// Redirect mode: tell the client to send the request to `server` itself, with `status`
    /// (the IP redirector; the server is chosen exactly as for `.forward`, and so is `pin`).
    case redirect(server: Int, status: Int, pin: PinCommit? = nil)
    /// Every eligible server of `RoutingSnapshot.pools[pool]` is at its max_conns: the caller queues
    /// the request (bounded by the pool's max_queue, for at most its queue_timeout) and asks again.
    case queue(pool: Int)
    /// Answer with `status` and a one-line `reason`: 400 (a bad discovery query), 404 (no route),
    /// 503 (no server available). Nothing is forwarded and no pin changes.
    case reject(status: Int, reason: String)
    /// A discovery endpoint: answer 200 with this document (nothing is forwarded).
    case local(LocalAnswer)
    /// A plain listener with `https_redirect`: answer 308 with `Location: location` (the same host
    /// and target over HTTPS), whatever the request.
    case httpsRedirect(location: String)
}

/// Where a decision reads a request's header and cookie values. A class-bound protocol rather than
/// closures, so that handing the lookups to a decision allocates nothing. The returned bytes must
/// stay valid until the decision returns.
public protocol RequestFieldSource: AnyObject {
    /// Value of a request header by lowercased name, nil when absent.
    func header(_ lowercasedName: String) -> UnsafeRawBufferPointer?
    /// Value of a cookie by name, nil when absent.
    func cookie(_ name: String) -> UnsafeRawBufferPointer?
}

/// The facts about a request that a decision may use.
public struct RequestFacts {
    /// Host without port, as sent (any case); nil when the request has none (HTTP/1.0).
    public var host: UnsafeRawBufferPointer?
    /// The path and query of the target ("/" for the asterisk-form "*").
    public var path: UnsafeRawBufferPointer
    /// Index of the listener that accepted the connection.
    public var listener: Int
    /// Servers not to pick (a retry after a failure there).
    public var excluded: [Int] = []
    /// The client's IP address as text, for hash_key = source (and the fallback of header/cookie keys).
    public var clientAddress: UnsafeRawBufferPointer
    /// The request's header and cookie values (for hash_key = header:NAME or cookie:NAME and for
    /// sticky cookies); nil: the request has none.
    public var fields: (any RequestFieldSource)?
    /// A sticky pin: the request goes to this server while it is up or draining, whatever its load.
    /// `Decision.answer` ignores it (the pin comes from the route's sticky plan).
    public var pinnedServer: Int? = nil
    /// The run-time mode of the listener the request came in on (a route's own mode wins).
    public var listenerMode: Mode = .proxy
    /// The client came over TLS (pin cookies get the Secure attribute).
    public var secure: Bool = false
    /// Peer mode: the request carries a valid hop token, i.e. another peer of the group routed it
    /// here. It is processed by the local application whatever the load (at most one hop).
    public var hopped: Bool = false

    public init(host: UnsafeRawBufferPointer?, path: UnsafeRawBufferPointer, listener: Int, excluded: [Int] = [],
                clientAddress: UnsafeRawBufferPointer = UnsafeRawBufferPointer(start: nil, count: 0),
                fields: (any RequestFieldSource)? = nil, pinnedServer: Int? = nil, listenerMode: Mode = .proxy, secure: Bool = false) {
        self.listenerMode = listenerMode
        self.secure = secure
        self.host = host
        self.path = path
        self.listener = listener
        self.excluded = excluded
        self.clientAddress = clientAddress
        self.fields = fields
        self.pinnedServer = pinnedServer
    }

    /// Value of a request header by lowercased name, nil when absent. Called only by policies that
    /// hash on a header.
    public func header(_ lowercasedName: String) -> UnsafeRawBufferPointer? { fields?.header(lowercasedName) }

    /// Value of a cookie by name, nil when absent.
    public func cookie(_ name: String) -> UnsafeRawBufferPointer? { fields?.cookie(name) }
}

/// The pure request decision: route, then policy pick. No I/O; the only state it touches is the
/// caller's `PolicyState` (one per worker, so no locks) and atomic reads of the servers' live state.
public enum Decision {
    /// Routes `request`, then picks by the pool's policy among eligible servers (condition `.up`, not
    /// excluded, not full), restricted to the lowest priority group that has an up, non-excluded server.
    ///
    /// Spill: when the route has a spill pool, every up server of its own pool's active group has
    /// effective load ≥ the route's `spill_level` (default 1.0; or none is up), and the spill pool
    /// itself has an up server below that level, the spill pool is asked first and the own pool is
    /// the fallback; otherwise the own pool first and the spill pool as the fallback when the own
    /// pool has no server to give. A forward from either wins; else `.queue` for the first pool whose
    /// servers are all full; else 503.
    public static func decide(_ request: RequestFacts, snapshot: RoutingSnapshot, state: inout PolicyState, now: UInt64) -> Verdict {
        guard let route = snapshot.route(host: request.host, path: request.path, listener: request.listener) else {
            return .reject(status: 404, reason: "no route for this host and path")
        }
        return decide(request, route: route, snapshot: snapshot, state: &state, now: now)
    }

    /// The same decision for a request whose route is already known.
    ///
    /// A pinned request (`request.pinnedServer`, from a sticky transaction) goes to its server while
    /// that server is up or draining and not excluded, whatever its load: a transaction is never
    /// moved for load. A full pinned server queues the request. A pin to a server that is down or in
    /// maintenance is ignored and the request is balanced as usual (the caller re-pins it).
    public static func decide(_ request: RequestFacts, route: CompiledRoute, snapshot: RoutingSnapshot,
                              state: inout PolicyState, now: UInt64) -> Verdict {
        let verdict = pick(request, route: route, snapshot: snapshot, state: &state, now: now)
        if route.pool == snapshot.peerPool {
            // A peer forwards to its own application, and to another peer by its route_by.
            if case .forward(let server, _) = verdict, server != snapshot.localServer, snapshot.peerRoutesByRedirect {
                return .redirect(server: server, status: snapshot.peerRedirectStatus)
            }
            return verdict
        }
        if case .forward(let server, _) = verdict, (route.mode ?? request.listenerMode) == .redirect {
            return .redirect(server: server, status: route.redirectStatus)
        }
        return verdict
    }

    /// The server for a request on `route`, before the mode is applied.
    static func pick(_ request: RequestFacts, route: CompiledRoute, snapshot: RoutingSnapshot,
                             state: inout PolicyState, now: UInt64) -> Verdict {
        if request.hopped, route.pool == snapshot.peerPool, let local = snapshot.localServer {
            // Routed here by another peer: processed here or nowhere (never a second hop).
            if request.excluded.contains(local) { return .reject(status: 503, reason: "the local application failed a request another peer routed here") }
            return .forward(server: local)
        }
        if let pin = request.pinnedServer, pin >= 0, pin < snapshot.servers.count, !request.excluded.contains(pin) {
            let server = snapshot.servers[pin]
            if server.condition == .up || server.condition == .drain {
                if !server.isFull { return .forward(server: pin) }
                if let pool = snapshot.pools.firstIndex(where: { $0.servers.contains(pin) }) { return .queue(pool: pool) }
            }
        }
        let own = route.pool
        var first = own
        var second: Int? = nil
        if let spill = route.spillPool, spill != own {
            if isSaturated(pool: own, snapshot: snapshot, now: now, level: route.spillLevel),
               !isSaturated(pool: spill, snapshot: snapshot, now: now, level: route.spillLevel) {
                first = spill
                second = own
            } else {
                second = spill
            }
        }
        let firstPick = state.pick(pool: first, request: request, snapshot: snapshot, now: now)
        if case .server(let server) = firstPick { return .forward(server: server) }
        var secondPick = PolicyState.Pick.none
        if let second {
            secondPick = state.pick(pool: second, request: request, snapshot: snapshot, now: now)
            if case .server(let server) = secondPick { return .forward(server: server) }
        }
        if case .full = firstPick { return .queue(pool: first) }
        if case .full = secondPick, let second { return .queue(pool: second) }
        return .reject(status: 503, reason: "no server available in pool \(snapshot.pools[own].name)")
    }

    /// `decide(_:snapshot:state:now:)` at `snapshot.clock`'s time.
    public static func decide(_ request: RequestFacts, snapshot: RoutingSnapshot, state: inout PolicyState) -> Verdict {
        decide(request, snapshot: snapshot, state: &state, now: snapshot.clock.nowNanoseconds)
    }

    /// True when every up server of the pool's active (lowest available) priority group has an
    /// effective load of at least `level` (default 1.0, capacity), or when no server of the pool is up.
    /// Servers lent to the pool are not counted (the pool's own servers say whether it is loaded).
    public static func isSaturated(pool: Int, snapshot: RoutingSnapshot, now: UInt64, level: Double = 1.0) -> Bool {
        let servers = snapshot.pools[pool].servers
        var group = Int.max
        for index in servers {
            let s = snapshot.servers[index]
            if s.config.group < group, s.condition == .up { group = s.config.group }
        }
        for index in servers {
            let s = snapshot.servers[index]
            if s.config.group == group, s.condition == .up, s.effectiveLoad(now: now) < level { return false }
        }
        return true
    }
}
