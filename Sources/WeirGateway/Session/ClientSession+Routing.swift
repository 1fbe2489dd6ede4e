import WeirBalance
import WeirConfig
import WeirHTTP

/// Where a request goes: the shell's answer to the machine's `.route`. It runs the pure `Decision`
/// over the routing snapshot, commits sticky pins, and writes the responses Weir makes itself
/// (redirects, discovery documents, HTTPS redirects) before telling the machine `.answered`.
extension ClientSession {
    /// Routes `machine.request`. `retry`: the current server failed; another is chosen (never a redirect).
    func route(retry: Bool) -> Routing {
        if !retry, let head = machine.request {
            // A new exchange (or a queued one trying again).
            if currentRequest == nil {
                currentRequest = head
                snapshot = worker.snapshot
                let target = TargetParts(head)
                clientView.host = target.hostWithPort
                self.target = target
                excluded.removeAll(keepingCapacity: true)
                sticky = nil
                setCookie.removeAll()
            }
        }
        guard let head = currentRequest, let target else { return .reject(status: 500, reason: "no request", retryAfter: nil) }
        if retry {
            if let failed = routedServer { excluded.append(failed) }
            guard let route = findRoute(target.routingPath, target),
                  case .forward(let next) = decide(head, target, route: route, mode: .proxy) else { return .noAlternative }
            commitSticky(next)
            return .forward(forwardTarget(next))
        }
        if let port = worker.httpsRedirectPorts[listenerIndex] {
            return redirectToHTTPS(port: port, target: target)
        }
        if let answer = localEndpoint(head, target) { return answer }
        guard let route = findRoute(target.routingPath, target) else {
            return .reject(status: 404, reason: "no route for this host and path", retryAfter: nil)
        }
        if sticky == nil, !route.sticky.isEmpty {
            let nowMs = worker.loop.nowMilliseconds
            sticky = target.routingPath.withUnsafeBytes { path in
                StickyPlan.make(route: route, path: path, head: head, clientAddress: client.peer.host,
                                snapshot: snapshot, context: worker.sticky, nowMs: nowMs)
            }
        }
        switch decide(head, target, route: route) {
        case .reject(let status, let reason):
            return .reject(status: status, reason: reason, retryAfter: status == 503 ? 5 : nil)
        case .queue(let pool):
            // Every eligible server is at max_conns: wait (bounded) for one to free up.
            guard worker.enqueue(self, pool: pool, deadline: &queueDeadline) else {
                queueDeadline = nil
                return .reject(status: 503, reason: "every server of pool \(snapshot.pools[pool].name) is full and its queue is full",
                               retryAfter: 1)
            }
            return .queued
        case .forward(let server):
            queueDeadline = nil
            commitSticky(server)
            return .forward(forwardTarget(server))
        case .redirect(let server, let status):
            queueDeadline = nil
            commitSticky(server)
            return redirect(to: server, status: status, head: head, target: target)
        }
    }

    private func forwardTarget(_ server: Int) -> ForwardTarget {
        routedServer = server
        let pool = worker.poolOfServer[server]
        let rewrite = clientView.host.isEmpty ? [] : snapshot.configuration.pools[pool].rewriteBodyTypes
        return ForwardTarget(server: server, id: snapshot.servers[server].config.id,
                             retries: snapshot.configuration.pools[pool].retries, rewriteTypes: rewrite)
    }

    private func commitSticky(_ server: Int) {
        setCookie = sticky?.commit(server: server, snapshot: snapshot, context: worker.sticky,
                                   nowMs: worker.loop.nowMilliseconds, secure: clientView.scheme.description == "https") ?? []
    }

    private func findRoute(_ path: ArraySlice<UInt8>, _ target: TargetParts) -> CompiledRoute? {
        target.hostOnly.withUnsafeBytes { host in
            path.withUnsafeBytes { path in
                snapshot.route(host: target.hostWithPort.isEmpty ? nil : host, path: path, listener: listenerIndex)
            }
        }
    }

    /// Runs the `Decision` for the request. `mode` overrides the listener's run-time mode
    /// (a retry after a failure in proxy mode, an assignment, are never redirects).
    private func decide(_ head: RequestHead, _ target: TargetParts, route: CompiledRoute, mode: Mode? = nil) -> Verdict {
        let listenerMode = mode ?? worker.modes.mode(listenerIndex)
        let now = worker.clock.nowNanoseconds
        let pinned = sticky?.pinnedServer
        return head.bytes.withUnsafeBytes { raw in
            target.hostOnly.withUnsafeBytes { host in
                target.routingPath.withUnsafeBytes { path in
                    clientAddressBytes.withUnsafeBytes { address in
                        let facts = RequestFacts(
                            host: target.hostWithPort.isEmpty ? nil : host, path: path, listener: listenerIndex,
                            excluded: excluded, clientAddress: address,
                            header: { name in head.value(of: name).map { UnsafeRawBufferPointer(rebasing: raw[$0]) } },
                            cookie: { name in CookieLookup.value(named: name, in: head).map { UnsafeRawBufferPointer(rebasing: raw[$0]) } },
                            pinnedServer: pinned, listenerMode: listenerMode)
                        return Decision.decide(facts, route: route, snapshot: snapshot, state: &worker.policy, now: now)
                    }
                }
            }
        }
    }

    // MARK: - Redirect mode (the IP redirector)

    /// Answers with a redirect to `server`'s own public URL plus the original path and query, so
    /// the client sends the request there itself; the server is picked exactly as in proxy mode.
    private func redirect(to server: Int, status: Int, head: RequestHead, target: TargetParts) -> Routing {
        let config = snapshot.servers[server].config
        let base = config.publicURL ?? "http://\(config.address)"
        var out: [UInt8] = []
        let keepAlive = !machine.closeAfterResponse && head.version == .http11
        Redirector.response(status: status, base: base, path: target.path, setCookie: worker.hstsFields[listenerIndex] + setCookie,
                            keepAlive: keepAlive, into: &out)
        worker.stats.redirects.wrappingIncrement(ordering: .relaxed)
        redirectedTo = config.id
        return answer(out, status: status, keepAlive: keepAlive)
    }

    /// A plain listener with `https_redirect`: every request goes to the same host and path over HTTPS.
    private func redirectToHTTPS(port: Int, target: TargetParts) -> Routing {
        var host = String(decoding: target.hostOnly, as: UTF8.self)
        if host.isEmpty { host = "localhost" }
        let base = port == 443 ? "https://\(host)" : "https://\(host):\(port)"
        var out: [UInt8] = []
        let keepAlive = !machine.closeAfterResponse
        Redirector.response(status: 308, base: base, path: target.path, setCookie: [], keepAlive: keepAlive, into: &out)
        return answer(out, status: 308, keepAlive: keepAlive)
    }

    /// Writes a response Weir made itself for the current request.
    private func answer(_ response: [UInt8], status: Int, keepAlive: Bool) -> Routing {
        client.output.append(response)
        countBytesToClient(response.count)
        return .answered(status: status, keepAlive: keepAlive)
    }

    // MARK: - Local endpoints (server list, session assignment)

    /// Answers the discovery endpoints itself; nil for any other request.
    private func localEndpoint(_ head: RequestHead, _ target: TargetParts) -> Routing? {
        let discovery = snapshot.configuration.discovery
        guard discovery.serversPath != nil || discovery.assignPath != nil else { return nil }
        let pathEnd = target.path.firstIndex(of: UInt8(ascii: "?")) ?? target.path.endIndex
        let bare = String(decoding: target.path[..<pathEnd], as: UTF8.self)
        let isServers = bare == discovery.serversPath
        let isAssign = bare == discovery.assignPath
        guard isServers || isAssign else { return nil }
        let query = String(decoding: target.path[pathEnd...].dropFirst(), as: UTF8.self)
        let forPath = LocalEndpoints.queryValue("path", in: query) ?? "/"
        guard forPath.hasPrefix("/") else {
            return .reject(status: 400, reason: "path= must start with /", retryAfter: nil)
        }
        let routePath = Array(forPath.utf8)
        guard let route = findRoute(routePath[...], target) else {
            return .reject(status: 404, reason: "no route for \(forPath)", retryAfter: nil)
        }
        let nowMs = worker.loop.nowMilliseconds
        var body: [UInt8]
        if isServers {
            body = LocalEndpoints.serverList(route: route, snapshot: snapshot, users: worker.sticky.register.counts(nowMs: nowMs),
                                             now: worker.clock.nowNanoseconds)
        } else {
            let routed = TargetParts(replacingPathOf: target, with: routePath)
            guard case .forward(let server) = decide(head, routed, route: route, mode: .proxy) else {
                return .reject(status: 503, reason: "no server available for \(forPath)", retryAfter: 5)
            }
            var token: String? = nil
            var lifetime: Int64? = nil
            if let rule = route.sticky.first {
                let plan = StickyPlan(rule: rule, role: .transaction)
                token = plan.issue(server: server, snapshot: snapshot, context: worker.sticky, nowMs: nowMs)
                lifetime = rule.idleSeconds
            }
            body = LocalEndpoints.assignment(server: snapshot.servers[server], token: token,
                                             cookie: route.sticky.first?.rule.cookieName, lifetime: lifetime)
        }
        let keepAlive = !machine.closeAfterResponse
        var out = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: \(body.count)\r\n".utf8)
        out += Array((keepAlive ? "\r\n" : "Connection: close\r\n\r\n").utf8)
        if !head.isHEAD { out += body }
        return answer(out, status: 200, keepAlive: keepAlive)
    }
}
