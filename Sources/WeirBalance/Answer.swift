import WeirConfig

extension Decision {
    /// The complete answer to a request, in this order:
    /// 1. the listener has `https_redirect`: `.httpsRedirect` to the same host and target;
    /// 2. the path (query ignored) is a discovery endpoint (`[discovery] servers_path` /
    ///    `assign_path`): `.local` for the route of its `path=` query value (default "/"), or
    ///    `.reject` 400 (`path=` not starting with "/"), 404 (no route for it), 503 (assign: no server);
    ///    `assign?failed=ID` records the client's report and leaves out its excluded servers, and
    ///    `alive_path` answers `.local(.alive)` (see Reassign.swift);
    /// 3. no route: `.reject` 404;
    /// 4. the sticky plan (when a rule of the route concerns the path) sets the pin, then
    ///    `decide(_:route:snapshot:state:now:)` picks, and a `.forward` or `.redirect` carries the
    ///    plan's `PinCommit` for the chosen server.
    ///
    /// Pure apart from the caller's `PolicyState` and the atomic reads of the servers' live state:
    /// the register is only read (through `services`); its changes come back in the verdict.
    /// `request.pinnedServer` is ignored (the pin comes from the sticky plan). Asking again for the
    /// same request (after `.queue`, or with `excluded` servers after a failure) is expected: the
    /// plan is made afresh from the same cookie and the register as it is then.
    /// - Parameters:
    ///   - now: monotonic nanoseconds (loads, slow start, report ages).
    ///   - wallMs: wall-clock milliseconds since 1970 (pin expiry; the register's idle times).
    public static func answer(_ request: RequestFacts, snapshot: RoutingSnapshot, state: inout PolicyState,
                              services: some StickyServices, now: UInt64, wallMs: Int64) -> Verdict {
        let redirects = snapshot.httpsRedirectPorts
        if request.listener >= 0, request.listener < redirects.count, let port = redirects[request.listener] {
            return .httpsRedirect(location: httpsLocation(host: request.host, path: request.path, port: port))
        }
        if snapshot.serversPath != nil || snapshot.assignPath != nil || snapshot.alivePath != nil,
           let local = discovery(request, snapshot: snapshot, state: &state, services: services, now: now, wallMs: wallMs) {
            return local
        }
        guard let route = snapshot.route(host: request.host, path: request.path, listener: request.listener) else {
            return .reject(status: 404, reason: "no route for this host and path")
        }
        guard !route.sticky.isEmpty,
              let plan = StickyPlan.make(route: route, request: request, snapshot: snapshot, services: services, nowMs: wallMs) else {
            // The request as it came when it has no pin (always, from a session): a copy of the
            // facts retains and releases their references.
            if request.pinnedServer == nil { return decide(request, route: route, snapshot: snapshot, state: &state, now: now) }
            var facts = request
            facts.pinnedServer = nil
            return decide(facts, route: route, snapshot: snapshot, state: &state, now: now)
        }
        var facts = request
        facts.pinnedServer = plan.pinnedServer
        let commit = { (server: Int) in
            plan.commit(server: server, snapshot: snapshot, services: services, nowMs: wallMs, secure: request.secure,
                        firstAttempt: request.excluded.isEmpty)
        }
        switch decide(facts, route: route, snapshot: snapshot, state: &state, now: now) {
        case .forward(let server, _): return .forward(server: server, pin: commit(server))
        case .redirect(let server, let status, _): return .redirect(server: server, status: status, pin: commit(server))
        case let other: return other
        }
    }

    /// "https://host[:port]" + `path` ("localhost" when the request named no host; no port for 443).
    static func httpsLocation(host: UnsafeRawBufferPointer?, path: UnsafeRawBufferPointer, port: Int) -> String {
        var name = host.map { String(decoding: $0, as: UTF8.self) } ?? ""
        if name.isEmpty { name = "localhost" }
        let base = port == 443 ? "https://\(name)" : "https://\(name):\(port)"
        return base + String(decoding: path, as: UTF8.self)
    }

    /// Whether `a` holds the bytes of `b`; the lengths first (every request is compared with the
    /// endpoints' paths, and nearly every one differs in length).
    @inline(__always)
    private static func sameBytes(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.elementsEqual(b)
    }

    /// Index of the first "?" in `path`, or nil.
    @inline(__always)
    private static func firstQuestionMark(_ path: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        while i < path.count {
            if path[i] == UInt8(ascii: "?") { return i }
            i &+= 1
        }
        return nil
    }

    /// The answer of a discovery endpoint, or nil when the request is not for one.
    static func discovery(_ request: RequestFacts, snapshot: RoutingSnapshot, state: inout PolicyState,
                          services: some StickyServices, now: UInt64, wallMs: Int64) -> Verdict? {
        // Compared as bytes first: no string is made for the requests that are not for an endpoint.
        let queryStart = firstQuestionMark(request.path)
        let bare = UnsafeRawBufferPointer(rebasing: request.path[..<(queryStart ?? request.path.count)])
        if snapshot.alivePath.map({ sameBytes(bare, $0) }) == true {
            return alive(query: queryStart.map { Substring(String(decoding: request.path[($0 + 1)...], as: UTF8.self)) } ?? "",
                         snapshot: snapshot)
        }
        let isServers = snapshot.serversPath.map { sameBytes(bare, $0) } ?? false
        guard isServers || snapshot.assignPath.map({ sameBytes(bare, $0) }) == true else { return nil }
        let query = queryStart.map { String(decoding: request.path[($0 + 1)...], as: UTF8.self) } ?? ""
        let forPath = QueryString.value("path", in: Substring(query)) ?? "/"
        guard forPath.hasPrefix("/") else { return .reject(status: 400, reason: "path= must start with /") }
        let routePath = Array(forPath.utf8)
        return routePath.withUnsafeBytes { path -> Verdict in
            guard let route = snapshot.route(host: request.host, path: path, listener: request.listener) else {
                return .reject(status: 404, reason: "no route for \(forPath)")
            }
            if isServers { return .local(.serverList(serverList(route: route, snapshot: snapshot, users: services.users(nowMs: wallMs), now: now))) }
            // The server a request for `path` would get in proxy mode, without queueing and without a pin.
            let client: AssignClient
            switch assignClient(request, query: Substring(query), route: route, snapshot: snapshot, services: services,
                                now: now, wallMs: wallMs) {
            case .success(let c): client = c
            case .failure(let bad): return .reject(status: bad.status, reason: bad.reason)
            }
            var facts = request
            facts.path = path
            facts.pinnedServer = nil
            facts.listenerMode = .proxy
            facts.excluded = client.excluded
            guard case .forward(let server, _) = pick(facts, route: route, snapshot: snapshot, state: &state, now: now) else {
                return .reject(status: 503, reason: "no server available for \(forPath)")
            }
            let state = snapshot.servers[server]
            var assignment = Assignment(server: server, id: state.config.id, publicURL: state.publicURL)
            assignment.failed = client.failed
            if let rule = route.sticky.first {
                let (token, change) = StickyPlan(rule: rule, role: .transaction, session: client.session)
                    .issue(server: server, snapshot: snapshot, services: services, nowMs: wallMs)
                assignment.token = token
                assignment.cookie = rule.rule.cookieName
                assignment.lifetimeSeconds = rule.idleSeconds
                assignment.register = change
            }
            return .local(.assignment(assignment))
        }
    }

    /// Every server of the route's pool (then its spill pool, then the servers lent to the route's
    /// pool, with `lentFrom`); `users` adds the requests in flight. A server lent out says `lentTo`.
    static func serverList(route: CompiledRoute, snapshot: RoutingSnapshot, users: [Int: Int], now: UInt64) -> [ServerListEntry] {
        var pools = [route.pool]
        if let spill = route.spillPool { pools.append(spill) }
        let lentIn = snapshot.pools[route.pool].lendable.filter { snapshot.servers[$0].isLent(to: route.pool) }
        return (pools.flatMap { snapshot.pools[$0].servers } + lentIn).map { index in
            let s = snapshot.servers[index]
            var entry = ServerListEntry(id: s.config.id, publicURL: s.publicURL, available: s.condition == .up,
                                        load: (s.effectiveLoad(now: now) * 1000).rounded() / 1000,
                                        users: (users[index] ?? 0) + s.groupInFlightCount, group: s.config.group)
            if let lent = s.lentTo {
                let own = snapshot.pools.first { $0.servers.contains(index) }?.name
                if lent == route.pool { entry.lentFrom = own } else { entry.lentTo = snapshot.pools[lent].name }
            }
            return entry
        }
    }
}
