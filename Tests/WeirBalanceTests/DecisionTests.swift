import Testing
import WeirBalance
import WeirConfig

/// Builds a configuration with one listener, the given pools and routes.
func configuration(pools: [Pool], routes: [Route]) -> WeirConfiguration {
    WeirConfiguration(listeners: [Listener(name: "public", address: SocketAddress(host: "127.0.0.1", port: 8080))],
                      pools: pools, routes: routes)
}

func server(_ id: String, port: UInt16, weight: Int = 1, capacity: Int = 100, group: Int = 0,
            maxConns: Int? = nil) -> Server {
    var server = Server(id: id, address: SocketAddress(host: "127.0.0.1", port: port), weight: weight,
                        capacity: capacity, group: group)
    server.maxConns = maxConns
    return server
}

/// A pool with `policy`; `configure` sets any other key (the keys are set as properties so that the
/// tests do not depend on the order of `Pool.init`'s parameters).
func pool(_ name: String, _ policy: PolicyName, _ servers: [Server], configure: (inout Pool) -> Void = { _ in }) -> Pool {
    var pool = Pool(name: name, policy: policy, servers: servers)
    configure(&pool)
    return pool
}

/// Keeps byte buffers alive for the duration of one decision.
final class ByteStore {
    private var buffers: [UnsafeMutableRawBufferPointer] = []

    func bytes(_ text: String) -> UnsafeRawBufferPointer {
        let utf8 = Array(text.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(utf8.count, 1), alignment: 1)
        buffer.copyBytes(from: utf8)
        buffers.append(buffer)
        return UnsafeRawBufferPointer(rebasing: buffer[0..<utf8.count])
    }

    deinit { for buffer in buffers { buffer.deallocate() } }
}

/// Header and cookie values of a test request.
final class FieldTable: RequestFieldSource {
    let headers: [String: UnsafeRawBufferPointer]
    let cookies: [String: UnsafeRawBufferPointer]
    init(headers: [String: UnsafeRawBufferPointer] = [:], cookies: [String: UnsafeRawBufferPointer] = [:]) {
        self.headers = headers
        self.cookies = cookies
    }
    func header(_ lowercasedName: String) -> UnsafeRawBufferPointer? { headers[lowercasedName] }
    func cookie(_ name: String) -> UnsafeRawBufferPointer? { cookies[name] }
}

/// Runs `Decision.decide` for a request given as strings. `now` nil uses the old entry point
/// (the snapshot's clock).
func decide(_ snapshot: RoutingSnapshot, _ state: inout PolicyState, host: String? = nil, path: String = "/",
            excluded: [Int] = [], now: UInt64? = nil, client: String = "192.0.2.1",
            headers: [String: String] = [:], cookies: [String: String] = [:], pinned: Int? = nil) -> Verdict {
    let store = ByteStore()
    let headerBytes = headers.mapValues { store.bytes($0) }
    let cookieBytes = cookies.mapValues { store.bytes($0) }
    let facts = RequestFacts(host: host.map { store.bytes($0) }, path: store.bytes(path), listener: 0, excluded: excluded,
                             clientAddress: store.bytes(client),
                             fields: FieldTable(headers: headerBytes, cookies: cookieBytes), pinnedServer: pinned)
    return withExtendedLifetime(store) {
        if let now { return Decision.decide(facts, snapshot: snapshot, state: &state, now: now) }
        return Decision.decide(facts, snapshot: snapshot, state: &state)
    }
}

@Suite struct RoundRobinTests {
    @Test func equalWeightsTakeTurnsInOrder() {
        let snapshot = RoutingSnapshot(configuration: configuration(
            pools: [Pool(name: "p", policy: .roundRobin, servers: [server("a", port: 1), server("b", port: 2), server("c", port: 3)])],
            routes: [Route(name: "r", pool: "p")]))
        var state = PolicyState(snapshot: snapshot)
        let picks = (0..<9).map { _ in decide(snapshot, &state) }
        #expect(picks == [0, 1, 2, 0, 1, 2, 0, 1, 2].map { Verdict.forward(server: $0) })
    }

    @Test func weightsShareTenThousandPicksProportionallyAndInterleaved() {
        let snapshot = RoutingSnapshot(configuration: configuration(
            pools: [Pool(name: "p", policy: .roundRobin, servers: [server("a", port: 1, weight: 5), server("b", port: 2, weight: 1), server("c", port: 3, weight: 1)])],
            routes: [Route(name: "r", pool: "p")]))
        var state = PolicyState(snapshot: snapshot)
        var counts = [0, 0, 0]
        var longestRun = 0, run = 0, last = -1
        for _ in 0..<10_000 {
            guard case .forward(let s, _) = decide(snapshot, &state) else { Issue.record("no pick"); return }
            counts[s] += 1
            run = s == last ? run + 1 : 1
            last = s
            longestRun = max(longestRun, run)
        }
        // Smooth weighted round-robin is exact over each cycle of 7 picks: 10,000 = 1428 cycles + 4.
        #expect(abs(counts[0] - 10_000 * 5 / 7) <= 5)
        #expect(abs(counts[1] - 10_000 / 7) <= 2)
        #expect(abs(counts[2] - 10_000 / 7) <= 2)
        // "Smooth": the heavy server never gets its whole share in one burst.
        #expect(longestRun < 5)
    }

    @Test func excludedServerIsSkipped() {
        let snapshot = RoutingSnapshot(configuration: configuration(
            pools: [Pool(name: "p", policy: .roundRobin, servers: [server("a", port: 1), server("b", port: 2)])],
            routes: [Route(name: "r", pool: "p")]))
        var state = PolicyState(snapshot: snapshot)
        for _ in 0..<4 { #expect(decide(snapshot, &state, excluded: [0]) == .forward(server: 1)) }
        #expect(decide(snapshot, &state, excluded: [0, 1]) == .reject(status: 503, reason: "no server available in pool p"))
    }
}

@Suite struct RouterTests {
    let snapshot = RoutingSnapshot(configuration: configuration(
        pools: [Pool(name: "web", servers: [server("w", port: 1)]),
                Pool(name: "banking", servers: [server("b", port: 2)]),
                Pool(name: "api", servers: [server("a", port: 3)])],
        routes: [Route(name: "bank", host: nil, pathPrefix: "/banking", pool: "banking"),
                 Route(name: "api", host: "*.example.com", pathPrefix: "/", pool: "api"),
                 Route(name: "default", pool: "web")]))

    @Test func pathPrefixMatchesWholeSegments() {
        var state = PolicyState(snapshot: snapshot)
        #expect(decide(snapshot, &state, path: "/banking") == .forward(server: 1))
        #expect(decide(snapshot, &state, path: "/banking/account?id=1") == .forward(server: 1))
        #expect(decide(snapshot, &state, path: "/banking?x") == .forward(server: 1))
        #expect(decide(snapshot, &state, path: "/bankingx") == .forward(server: 0))
    }

    @Test func wildcardHostMatchesSubdomainsCaseInsensitively() {
        var state = PolicyState(snapshot: snapshot)
        #expect(decide(snapshot, &state, host: "API.Example.COM", path: "/x") == .forward(server: 2))
        #expect(decide(snapshot, &state, host: "example.com", path: "/x") == .forward(server: 0))
        #expect(decide(snapshot, &state, host: nil, path: "/x") == .forward(server: 0))
    }

    @Test func noMatchingRouteIs404() {
        let only = RoutingSnapshot(configuration: configuration(
            pools: [Pool(name: "p", servers: [server("a", port: 1)])],
            routes: [Route(name: "r", host: "example.com", pathPrefix: "/", pool: "p")]))
        var state = PolicyState(snapshot: only)
        #expect(decide(only, &state, host: "other.org") == .reject(status: 404, reason: "no route for this host and path"))
    }
}

@Suite struct ModeTests {
    @Test func redirectModeRedirectsToTheServerProxyModeWouldPick() {
        let snapshot = RoutingSnapshot(configuration: configuration(
            pools: [Pool(name: "p", policy: .roundRobin, servers: [server("a", port: 1), server("b", port: 2)])],
            routes: [Route(name: "r", pool: "p")]))
        var proxyState = PolicyState(snapshot: snapshot)
        var redirectState = PolicyState(snapshot: snapshot)
        let path = Array("/x".utf8)
        for _ in 0..<4 {
            path.withUnsafeBytes { p in
                let proxied = Decision.decide(RequestFacts(host: nil, path: p, listener: 0), snapshot: snapshot,
                                              state: &proxyState, now: 0)
                let redirected = Decision.decide(RequestFacts(host: nil, path: p, listener: 0, listenerMode: .redirect),
                                                 snapshot: snapshot, state: &redirectState, now: 0)
                guard case .forward(let server, _) = proxied else { Issue.record("no forward: \(proxied)"); return }
                #expect(redirected == .redirect(server: server, status: 307))
            }
        }
    }

    @Test func aRouteModeOverridesTheListener() {
        let snapshot = RoutingSnapshot(configuration: configuration(
            pools: [Pool(name: "p", servers: [server("a", port: 1)])],
            routes: [Route(name: "r", pathPrefix: "/old", pool: "p", mode: .redirect, redirectStatus: 308), Route(name: "all", pool: "p")]))
        var state = PolicyState(snapshot: snapshot)
        Array("/old/page".utf8).withUnsafeBytes { p in
            #expect(Decision.decide(RequestFacts(host: nil, path: p, listener: 0), snapshot: snapshot, state: &state, now: 0)
                    == .redirect(server: 0, status: 308))
        }
        Array("/new".utf8).withUnsafeBytes { p in
            #expect(Decision.decide(RequestFacts(host: nil, path: p, listener: 0), snapshot: snapshot, state: &state, now: 0)
                    == .forward(server: 0))
        }
    }
}
