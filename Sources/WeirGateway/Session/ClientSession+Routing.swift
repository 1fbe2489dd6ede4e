import WeirBalance
import WeirConfig
import WeirHTTP

/// Where a request goes: the shell's answer to the machine's `.route`. It runs the pure `Decision`
/// over the routing snapshot, commits sticky pins, and writes the responses Weir makes itself
/// (redirects, discovery documents, HTTPS redirects) before telling the machine `.answered`.
extension ClientSession {
    /// Routes `machine.request` with WeirBalance's pure `Decision.answer` and carries out the
    /// verdict's side: pins, queueing, the answers Weir writes itself. `retry`: the current server
    /// failed; another one is chosen (never a redirect), or `.noAlternative`.
    func route(retry: Bool) -> Routing {
        // The head's bytes only: binding the whole head would copy it (through its value witnesses).
        guard let bytes = machine.request?.bytes else { return .reject(status: 500, reason: "no request", retryAfter: nil) }
        // The new exchange's target is used as built: reading it back from `self.target` would copy
        // it again (a retain and a release for each of its four slices).
        let target: TargetParts
        if exchangeIsNew {
            // A new exchange (a queued one trying again keeps its data).
            exchangeIsNew = false
            adoptCurrentGeneration()
            snapshot = generation.snapshot
            var parts = TargetParts(bytes: bytes, target: machine.request?.target ?? 0..<0, host: machine.request?.host)
            clientView.host = parts.hostWithPort
            if let peer = generation.peer, let head = machine.request { parts = checkHop(head, parts, peer) }
            self.target = parts
            target = parts
            excluded.removeAll(keepingCapacity: true)
            setCookie.removeAll()
        } else {
            guard let kept = self.target else { return .reject(status: 500, reason: "no request", retryAfter: nil) }
            target = kept
        }
        if retry {
            if let failed = routedServer { excluded.append(failed) }
            guard case .forward(let next, let pin) = decide(bytes, target, mode: .proxy) else { return .noAlternative }
            setCookie = worker.sticky.apply(pin, nowMs: worker.loop.wallClockMilliseconds)
            if worker.accessLog.needsDetail { pinOutcome = PinOutcome(pin) }
            return .forward(forwardTarget(next))
        }
        switch decide(bytes, target) {
        case .reject(let status, let reason):
            if status == 503 { meterUnavailable(pool: routedPool(target)) }
            return .reject(status: status, reason: reason, retryAfter: status == 503 ? 5 : nil)
        case .queue(let pool):
            meterUnavailable(pool: pool)   // counted only if the request ends in a 503 (queue full or timed out)
            // Every eligible server is at max_conns: wait (bounded) for one to free up.
            guard worker.enqueue(self, pool: pool, deadline: &queueDeadline) else {
                queueDeadline = nil
                return .reject(status: 503, reason: "every server of pool \(snapshot.pools[pool].name) is full and its queue is full",
                               retryAfter: 1)
            }
            return .queued
        case .forward(let server, let pin):
            queueDeadline = nil
            setCookie = worker.sticky.apply(pin, nowMs: worker.loop.wallClockMilliseconds)
            if worker.accessLog.needsDetail { pinOutcome = PinOutcome(pin) }
            return .forward(forwardTarget(server))
        case .redirect(let server, let status, let pin):
            queueDeadline = nil
            setCookie = worker.sticky.apply(pin, nowMs: worker.loop.wallClockMilliseconds)
            if worker.accessLog.needsDetail { pinOutcome = PinOutcome(pin) }
            return redirect(to: server, status: status, isHTTP11: machine.request?.version == .http11, target: target)
        case .httpsRedirect(let location):
            return redirectToHTTPS(location: location)
        case .local(let answer):
            return localEndpoint(isHEAD: machine.request?.isHEAD ?? false, answer)
        }
    }

    private func forwardTarget(_ server: Int) -> ForwardTarget {
        routedServer = server
        let pool = generation.poolOfServer[server]
        let rewrite = clientView.host.isEmpty ? [] : snapshot.configuration.pools[pool].rewriteBodyTypes
        return ForwardTarget(server: server, id: snapshot.servers[server].config.id,
                             retries: snapshot.configuration.pools[pool].retries, rewriteTypes: rewrite)
    }

    /// Runs `Decision.answer` for the request (with the servers in `excluded` left out). `mode`
    /// overrides the listener's run-time mode (a retry after a failure is never a redirect).
    private func decide(_ bytes: [UInt8], _ target: TargetParts, mode: Mode? = nil) -> Verdict {
        let listenerMode = mode ?? generation.modes.mode(listenerIndex)
        return bytes.withUnsafeBytes { raw in
            target.withRoutingBytes { host, path in
                clientView.clientAddress.withUnsafeBytes { address in
                    headBytesDuringDecision = raw
                    defer { headBytesDuringDecision = UnsafeRawBufferPointer(start: nil, count: 0) }
                    var facts = RequestFacts(
                        host: target.hasNoHost ? nil : host, path: path, listener: listenerIndex,
                        excluded: excluded, clientAddress: address, fields: self,
                        listenerMode: listenerMode, secure: client.isTLS)
                    facts.hopped = hopped
                    return Decision.answer(facts, snapshot: snapshot, state: &generation.policy, services: worker.sticky,
                                           now: worker.clock.nowNanoseconds, wallMs: worker.loop.wallClockMilliseconds)
                }
            }
        }
    }

    // MARK: - Redirect mode (the IP redirector)

    /// Answers with a redirect to `server`'s own public URL plus the original path and query, so
    /// the client sends the request there itself; the server is picked exactly as in proxy mode.
    private func redirect(to server: Int, status: Int, isHTTP11: Bool, target: TargetParts) -> Routing {
        let config = snapshot.servers[server].config
        let base = config.publicURL ?? "http://\(config.address)"
        var out: [UInt8] = []
        let keepAlive = !machine.closeAfterResponse && isHTTP11
        snapshot.servers[server].requestRouted()
        snapshot.servers[server].redirected.wrappingIncrement(ordering: .relaxed)
        var path = target.path
        if let peer = generation.peer, peer.isMemberServer[server], path.first != UInt8(ascii: "*") {
            // Another peer: the token tells it that a peer routed the request (it will not route it again).
            path += Array(((path.contains(UInt8(ascii: "?")) ? "&" : "?") + peer.hopParameter(nowWallMs: worker.loop.wallClockMilliseconds)).utf8)
        }
        Redirector.response(status: status, base: base, path: path, setCookie: generation.hstsFields[listenerIndex] + setCookie,
                            keepAlive: keepAlive, into: &out)
        worker.stats.redirects.wrappingIncrement(ordering: .relaxed)
        redirectedServer = server
        return answer(out, status: status, keepAlive: keepAlive)
    }

    /// Peer mode: reads and removes the request's hop marker (the `Weir-Hop` header is dropped when
    /// the head is rewritten; the `weir-hop` query parameter is cut from the target here, so the
    /// application sees neither). `hopped` is set only for a valid token of a group member: a marker
    /// from anyone else is removed and ignored.
    private func checkHop(_ head: RequestHead, _ target: TargetParts, _ peer: PeerContext) -> TargetParts {
        let now = worker.loop.wallClockMilliseconds
        hopped = false
        var sawMarker = false
        var target = target
        if let (path, token) = HopMarker.takeParameter(from: target.path) {
            sawMarker = true
            hopped = peer.verify(token, nowWallMs: now)
            target = TargetParts(replacingPathOf: target, with: path)
        }
        if let range = head.value(of: HopMarker.headerName) {
            sawMarker = true
            if !hopped { hopped = peer.verify(head.bytes[range], nowWallMs: now) }
        }
        if hopped {
            worker.stats.peerHopsReceived.wrappingIncrement(ordering: .relaxed)
        } else if sawMarker {
            worker.stats.peerHopsRefused.wrappingIncrement(ordering: .relaxed)
        }
        return target
    }

    /// A plain listener with `https_redirect`: every request goes to the same host and path over HTTPS.
    private func redirectToHTTPS(location: String) -> Routing {
        var out: [UInt8] = []
        let keepAlive = !machine.closeAfterResponse
        Redirector.response(status: 308, base: "", path: ArraySlice(location.utf8), setCookie: [], keepAlive: keepAlive, into: &out)
        return answer(out, status: 308, keepAlive: keepAlive)
    }

    /// Writes a response Weir made itself for the current request.
    private func answer(_ response: [UInt8], status: Int, keepAlive: Bool) -> Routing {
        client.output.append(response)
        countBytesToClient(response.count)
        return .answered(status: status, keepAlive: keepAlive)
    }

    // MARK: - Local endpoints (server list, session assignment)

    /// Writes the discovery document the `Decision` made.
    private func localEndpoint(isHEAD: Bool, _ local: LocalAnswer) -> Routing {
        if case .assignment(let assignment) = local {
            worker.sticky.apply(assignment.register, nowMs: worker.loop.wallClockMilliseconds)
        }
        let body = LocalEndpoints.document(local)
        let keepAlive = !machine.closeAfterResponse
        return answer(LocalEndpoints.response(body: body, isHEAD: isHEAD, keepAlive: keepAlive), status: 200, keepAlive: keepAlive)
    }
}

/// The header and cookie lookups of the request being decided (valid only during `decide`).
extension ClientSession: RequestFieldSource {
    func header(_ lowercasedName: String) -> UnsafeRawBufferPointer? {
        guard let head = machine.request, let range = head.value(of: lowercasedName) else { return nil }
        return UnsafeRawBufferPointer(rebasing: headBytesDuringDecision[range])
    }

    func cookie(_ name: String) -> UnsafeRawBufferPointer? {
        guard let head = machine.request, let range = CookieLookup.value(named: name, in: head) else { return nil }
        return UnsafeRawBufferPointer(rebasing: headBytesDuringDecision[range])
    }
}
