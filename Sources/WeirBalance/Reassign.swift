import WeirConfig

/// Re-assignment after a failure and the availability question (source document 004): a client that
/// was assigned a server and whose test messages to it go unanswered asks `assign?failed=ID`; a
/// client may also ask `alive?server=ID`.
extension Decision {
    /// Who is asking `assign`, as far as exclusions go: the session of a valid pin the client presents
    /// (the `token` of its assignment, as the route's sticky cookie), else its address.
    struct AssignClient {
        var key: String
        /// The session to keep in the new assignment (the register entry moves, it is not doubled).
        var session: String?
        /// The server the client reports with `failed=`, if any.
        var failed: Int?
        /// The servers not to assign it: its live exclusions and `failed`.
        var excluded: [Int]
    }

    /// The client of an `assign` request and what it reports, or a 400 verdict for a `failed=` value
    /// that names no server. Records the report (exclusion, count, probe request) in
    /// `snapshot.failureReports`: the one write the discovery answer makes, so that it holds also when
    /// no other server is left (503). The report never changes the server's health.
    static func assignClient(_ request: RequestFacts, query: Substring, route: CompiledRoute, snapshot: RoutingSnapshot,
                             services: some StickyServices, now: UInt64, wallMs: Int64) -> Result<AssignClient, RejectReason> {
        let session = presentedSession(request, route: route, services: services, wallMs: wallMs)
        let key = session.map { "pin:" + $0 } ?? "addr:" + String(decoding: request.clientAddress, as: UTF8.self)
        var client = AssignClient(key: key, session: session, failed: nil, excluded: [])
        if let id = QueryString.value("failed", in: query) {
            guard let server = serverIndex(id: id, route: route, snapshot: snapshot) else {
                return .failure(RejectReason(status: 400, reason: "failed= names no server (\(id.prefix(64)))"))
            }
            snapshot.failureReports.report(server: server, for: key, now: now)
            client.failed = server
        }
        client.excluded = snapshot.failureReports.excluded(for: key, now: now)
        if let failed = client.failed, !client.excluded.contains(failed) { client.excluded.append(failed) }
        return .success(client)
    }

    /// A 400/404 answer of a discovery endpoint.
    struct RejectReason: Error {
        var status: Int
        var reason: String
    }

    /// The session of a valid pin of the route's first sticky rule (what `assign` issues) presented as
    /// that rule's cookie, or nil.
    static func presentedSession(_ request: RequestFacts, route: CompiledRoute, services: some StickyServices,
                                 wallMs: Int64) -> String? {
        guard let rule = route.sticky.first?.rule,
              let value = request.cookie(rule.cookieName),
              case .success(let pin) = PinToken.decode(Array(value), scope: rule.path, now: wallMs / 1000, mac: services.mac)
        else { return nil }
        return pin.session
    }

    /// The index of server `id`: one of the route's pools (then its spill pool) first, else any.
    static func serverIndex(id: String, route: CompiledRoute, snapshot: RoutingSnapshot) -> Int? {
        let pools = [route.pool] + (route.spillPool.map { [$0] } ?? [])
        let inRoute = pools.flatMap { snapshot.pools[$0].servers }.first { snapshot.servers[$0].config.id == id }
        return inRoute ?? snapshot.serverIndex(id: id)
    }

    /// The answer of `alive?server=ID`: 200 with the server's availability, 400 without `server=`,
    /// 404 for an id no pool has.
    static func alive(query: Substring, snapshot: RoutingSnapshot) -> Verdict {
        guard let id = QueryString.value("server", in: query), !id.isEmpty else {
            return .reject(status: 400, reason: "server= is missing (alive?server=ID)")
        }
        guard let index = snapshot.serverIndex(id: id) else {
            return .reject(status: 404, reason: "no server \(id.prefix(64))")
        }
        let condition = snapshot.servers[index].condition
        return .local(.alive(ServerAvailability(id: id, available: condition == .up, state: condition.description)))
    }
}
