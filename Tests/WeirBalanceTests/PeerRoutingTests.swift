import Testing
import WeirBalance
import WeirConfig

/// The decision at a peer (`weir peer`): the figure 2 rule with home = the local application, over
/// the group's pool as the loader synthesizes it, with the members' loads as their beacons report
/// them (manual clock; no sockets).
@Suite struct PeerRoutingTests {
    /// Peer "a" in a group with "b" and "c"; `serves` per member id (empty: every path).
    static func snapshot(routeBy: PeerRouting = .proxy, capacity: Int = 100, serves: [String: [String]] = [:],
                         clock: ManualClock = ManualClock()) -> RoutingSnapshot {
        let app = SocketAddress(host: "127.0.0.1", port: 8000)
        let peer = PeerSettings(id: "a", app: app, routeBy: routeBy, serves: serves["a"] ?? [])
        let members = ["b", "c"].enumerated().map { i, id in
            GroupMember(id: id, beacon: SocketAddress(host: "127.0.0.1", port: UInt16(7947 + i)),
                        address: SocketAddress(host: "127.0.0.1", port: UInt16(8081 + i)))
        }
        let group = GroupSettings(beacon: SocketAddress(host: "127.0.0.1", port: 7946), members: members)
        let servers = [Server(id: "a", address: app, capacity: capacity)]
            + members.map { Server(id: $0.id, address: $0.address!, capacity: capacity, publicURL: "http://\($0.address!)", probed: false) }
        let pool = Pool(name: "group", policy: .threshold, servers: servers, slowStart: .zero, loadSource: .beacons)
        let configuration = WeirConfiguration(
            listeners: [Listener(name: "public", address: SocketAddress(host: "127.0.0.1", port: 8080))],
            pools: [pool], routes: [Route(name: "peer", pool: "group")], peer: peer, group: group)
        let snapshot = RoutingSnapshot(configuration: configuration, clock: clock)
        for (id, paths) in serves where id != "a" { snapshot.servers[snapshot.serverIndex(id: id)!].setServedPaths(paths) }
        return snapshot
    }

    /// Sets what each server last reported (the local app's probe, the members' beacons).
    static func report(_ snapshot: RoutingSnapshot, _ loads: [String: Double], now: UInt64) {
        for (id, load) in loads {
            snapshot.servers[snapshot.serverIndex(id: id)!].recordReport(load: load, state: .up, now: now)
        }
    }

    static func pick(_ snapshot: RoutingSnapshot, _ state: inout PolicyState, path: String = "/", hopped: Bool = false,
                     excluded: [Int] = [], now: UInt64) -> Verdict {
        let store = ByteStore()
        var facts = RequestFacts(host: nil, path: store.bytes(path), listener: 0, excluded: excluded, clientAddress: store.bytes("192.0.2.1"))
        facts.hopped = hopped
        return withExtendedLifetime(store) { Decision.decide(facts, snapshot: snapshot, state: &state, now: now) }
    }

    @Test func thePatentsExampleAtAPeer() {
        let clock = ManualClock()
        let snapshot = Self.snapshot(clock: clock)
        var state = PolicyState(snapshot: snapshot)
        let now = clock.nowNanoseconds
        // Below the first level: processed locally whatever the others carry.
        Self.report(snapshot, ["a": 0.45, "b": 0.0, "c": 0.1], now: now)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 0))
        // At 60 %, b at 30 % is lighter by exactly the second level: b.
        Self.report(snapshot, ["a": 0.6, "b": 0.3, "c": 0.45], now: now)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 1))
        // b at 41 % is lighter by 19 % only: local.
        Self.report(snapshot, ["a": 0.6, "b": 0.41, "c": 0.45], now: now)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 0))
    }

    @Test func theHerdingCorrectionSpreadsABurstAndABeaconResetsIt() {
        let clock = ManualClock()
        let snapshot = Self.snapshot(capacity: 10, clock: clock)
        var state = PolicyState(snapshot: snapshot)
        let now = clock.nowNanoseconds
        Self.report(snapshot, ["a": 0.9, "b": 0.0, "c": 0.0], now: now)
        var picks: [Int] = []
        for _ in 0..<18 {
            guard case .forward(let server, _) = Self.pick(snapshot, &state, now: now) else { Issue.record("no pick"); return }
            snapshot.servers[server].requestRouted()        // what the session does for each forward
            picks.append(server)
        }
        // b and c alternate (ties to the lower index) while the least is 0.2 lighter than a's 0.9:
        // each takes 8 (its corrected load 0.0 ... 0.7), then the rest stays local.
        #expect(picks == [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 0, 0])
        #expect(snapshot.servers[1].effectiveLoad(now: now) == 0.8)
        // b's next beacon replaces what was added: b is light again.
        clock.advance(milliseconds: 500)
        Self.report(snapshot, ["b": 0.1], now: clock.nowNanoseconds)
        #expect(Self.pick(snapshot, &state, now: clock.nowNanoseconds) == .forward(server: 1))
        // The local application gets no correction: its load is known without delay.
        snapshot.servers[0].requestRouted()
        #expect(snapshot.servers[0].routedSinceLastReport == 0)
    }

    @Test func aRequestAnotherPeerRoutedHereStaysHere() {
        let clock = ManualClock()
        let snapshot = Self.snapshot(clock: clock)
        var state = PolicyState(snapshot: snapshot)
        let now = clock.nowNanoseconds
        Self.report(snapshot, ["a": 0.95, "b": 0.0, "c": 0.0], now: now)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 1))
        #expect(Self.pick(snapshot, &state, hopped: true, now: now) == .forward(server: 0))
        // Its local attempt failed: no second hop, an error instead.
        guard case .reject(503, _) = Self.pick(snapshot, &state, hopped: true, excluded: [0], now: now) else {
            Issue.record("a hopped request went on after a local failure"); return
        }
    }

    @Test func aDownApplicationSendsEverythingToTheLeastLoadedOnlinePeer() {
        let clock = ManualClock()
        let snapshot = Self.snapshot(clock: clock)
        var state = PolicyState(snapshot: snapshot)
        let now = clock.nowNanoseconds
        Self.report(snapshot, ["a": 0.0, "b": 0.7, "c": 0.6], now: now)
        snapshot.servers[0].setHealth(up: false, now: now)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 2))
        // Off-line members (beacons silent) get nothing either: nobody left.
        snapshot.servers[1].recordReport(load: nil, state: .down, now: now)
        snapshot.servers[2].recordReport(load: nil, state: .down, now: now)
        guard case .reject(503, _) = Self.pick(snapshot, &state, now: now) else { Issue.record("expected 503"); return }
    }

    @Test func pathsArePickedAmongThePeersThatServeThem() {
        let clock = ManualClock()
        let snapshot = Self.snapshot(serves: ["a": ["/shop/"], "b": ["/banking/*"], "c": []], clock: clock)
        var state = PolicyState(snapshot: snapshot)
        let now = clock.nowNanoseconds
        Self.report(snapshot, ["a": 0.0, "b": 0.3, "c": 0.2], now: now)
        // a does not serve /banking: by load among b and c, whatever a's own load.
        #expect(Self.pick(snapshot, &state, path: "/banking/login", now: now) == .forward(server: 2))
        Self.report(snapshot, ["c": 0.5], now: now)
        #expect(Self.pick(snapshot, &state, path: "/banking/login", now: now) == .forward(server: 1))
        // b does not serve /shop: a is home and light.
        #expect(Self.pick(snapshot, &state, path: "/shop/cart", now: now) == .forward(server: 0))
        // Nobody serves /other but c.
        #expect(Self.pick(snapshot, &state, path: "/other", now: now) == .forward(server: 2))
    }

    @Test func redirectRoutingAnswersWithARedirectToThePeerAndForwardsLocally() {
        let clock = ManualClock()
        let snapshot = Self.snapshot(routeBy: .redirect, clock: clock)
        var state = PolicyState(snapshot: snapshot)
        let now = clock.nowNanoseconds
        Self.report(snapshot, ["a": 0.2, "b": 0.0, "c": 0.0], now: now)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 0))
        Self.report(snapshot, ["a": 0.8], now: now)
        #expect(Self.pick(snapshot, &state, now: now) == .redirect(server: 1, status: 307))
    }

    @Test func theLevelsChangeAtRunTime() {
        let clock = ManualClock()
        let snapshot = Self.snapshot(clock: clock)
        var state = PolicyState(snapshot: snapshot)
        let now = clock.nowNanoseconds
        Self.report(snapshot, ["a": 0.6, "b": 0.0, "c": 0.0], now: now)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 1))
        snapshot.peerLevels.set(first: 0.7, second: 0.2)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 0))
        snapshot.peerLevels.set(first: 0.5, second: 0.7)
        #expect(Self.pick(snapshot, &state, now: now) == .forward(server: 0))
    }
}
