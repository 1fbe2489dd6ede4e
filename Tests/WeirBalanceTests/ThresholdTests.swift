import Testing
import WeirBalance
import WeirConfig

/// The patent's rule on plain numbers (figure 2, S203–S209), with first level 0.50 and second 0.20.
@Suite struct ThresholdRuleTests {
    func choose(_ home: Int, _ loads: [Double], first: Double = 0.50, second: Double = 0.20) -> Int {
        ThresholdRule.choose(home: home, loads: loads, firstLevel: first, secondLevel: second)
    }

    @Test func patentExampleMovesToTheLightestPeerWhenItIsLighterByTheSecondLevel() {
        // Server 7 (home) at 60 %, servers 9 and 10 at 30 % and 45 %: 60 − 30 ≥ 20 → the 30 % one.
        #expect(choose(0, [0.60, 0.30, 0.45]) == 1)
        #expect(choose(0, [0.60, 0.45, 0.30]) == 2)
    }

    @Test func patentExampleStaysHomeWhenNoPeerIsLighterByTheSecondLevel() {
        // Peers at 45 % and 50 %: 60 − 45 = 15 < 20 → stays home.
        #expect(choose(0, [0.60, 0.45, 0.50]) == 0)
    }

    @Test func homeBelowTheFirstLevelStaysHomeRegardlessOfPeers() {
        #expect(choose(0, [0.40, 0.00, 0.05]) == 0)
        #expect(choose(2, [0.00, 0.00, 0.49]) == 2)
    }

    @Test func loadExactlyAtTheFirstLevelIsExamined() {
        // 0.50 is not "below" 0.50: the peers are looked at, and 0.50 − 0.30 = 0.20 moves it.
        #expect(choose(0, [0.50, 0.30]) == 1)
        // Just below the first level it stays, even with an idle peer.
        #expect(choose(0, [0.499, 0.0]) == 0)
    }

    @Test func differenceExactlyTheSecondLevelMoves() {
        #expect(choose(0, [0.60, 0.40]) == 1)      // 0.6 − 0.4 is 0.19999… in binary: still "exactly" 0.2
        #expect(choose(0, [0.70, 0.50]) == 1)
        #expect(choose(0, [0.60, 0.41]) == 0)
    }

    @Test func tiesBetweenLeastLoadedGoToTheLowestIndex() {
        #expect(choose(0, [0.90, 0.20, 0.20]) == 1)
        #expect(choose(1, [0.20, 0.90, 0.20]) == 0)
        #expect(choose(2, [0.30, 0.30, 0.90]) == 0)
    }

    @Test func allServersAboveCapacityKeepHome() {
        #expect(choose(0, [1.20, 1.10, 1.15]) == 0)
        #expect(choose(1, [1.00, 1.00, 1.00]) == 1)
        // Above capacity the rule still moves when a peer is lighter by the second level.
        #expect(choose(0, [1.50, 1.00]) == 1)
    }

    @Test func configuredLevelsAreUsed() {
        #expect(choose(0, [0.60, 0.30], first: 0.70) == 0)
        #expect(choose(0, [0.60, 0.45], second: 0.10) == 1)
    }
}

/// The threshold policy through `Decision`: home by rendezvous hash (or pin), loads from reports
/// and in-flight counts.
@Suite struct ThresholdDecisionTests {
    let clock = ManualClock()

    func snapshot(_ servers: [Server], spill: [Server]? = nil, configure: @escaping (inout Pool) -> Void = { _ in }) -> RoutingSnapshot {
        var pools = [pool("web", .threshold, servers, configure: configure)]
        var route = Route(name: "r", pool: "web")
        if let spill {
            pools.append(pool("overflow", .roundRobin, spill))
            route.spill = "overflow"
        }
        return RoutingSnapshot(configuration: configuration(pools: pools, routes: [route]), clock: clock)
    }

    /// The server a client lands on when every server is idle (its rendezvous home).
    func home(_ snapshot: RoutingSnapshot, client: String) -> Int {
        var state = PolicyState(snapshot: snapshot)
        guard case .forward(let server, _) = decide(snapshot, &state, now: clock.nowNanoseconds, client: client) else {
            Issue.record("no home")
            return -1
        }
        return server
    }

    func report(_ snapshot: RoutingSnapshot, _ loads: [Int: Double]) {
        for (server, load) in loads { snapshot.servers[server].recordReport(load: load, state: nil, now: clock.nowNanoseconds) }
    }

    @Test func patentExampleThroughDecision() {
        let snap = snapshot([server("s7", port: 7), server("s9", port: 9), server("s10", port: 10)])
        let client = "198.51.100.7"
        let h = home(snap, client: client)
        let peers = [0, 1, 2].filter { $0 != h }
        var state = PolicyState(snapshot: snap)

        // Home at 60 % (in-flight), peers at 30 % and 45 % (reports): moves to the 30 % one.
        for _ in 0..<60 { snap.servers[h].requestStarted() }
        report(snap, [peers[0]: 0.30, peers[1]: 0.45])
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client) == .forward(server: peers[0]))

        // Peers at 45 % and 50 %: stays home.
        report(snap, [peers[0]: 0.45, peers[1]: 0.50])
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client) == .forward(server: h))

        // Home at 40 %: stays home whatever the peers carry.
        for _ in 0..<20 { snap.servers[h].requestFinished() }
        report(snap, [peers[0]: 0.0, peers[1]: 0.0])
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client) == .forward(server: h))
    }

    @Test func homeOffLineIsChosenAmongEligibleServersOnly() {
        let snap = snapshot([server("a", port: 1), server("b", port: 2), server("c", port: 3)])
        var state = PolicyState(snapshot: snap)
        let clients = (0..<200).map { "10.1.\($0 / 250).\($0 % 250)" }
        let homes = clients.map { home(snap, client: $0) }
        let down = homes[0]
        snap.servers[down].setHealth(up: false, now: clock.nowNanoseconds)
        for (client, original) in zip(clients, homes) {
            let verdict = decide(snap, &state, now: clock.nowNanoseconds, client: client)
            #expect(verdict != .forward(server: down))
            // Rendezvous hashing: clients whose home is still up keep it.
            if original != down { #expect(verdict == .forward(server: original)) }
        }
    }

    @Test func homeOverloadedWithEveryPeerOffLineStaysHome() {
        let snap = snapshot([server("a", port: 1), server("b", port: 2)])
        let client = "203.0.113.9"
        let h = home(snap, client: client)
        report(snap, [h: 0.95])
        snap.servers[1 - h].setHealth(up: false, now: clock.nowNanoseconds)
        var state = PolicyState(snapshot: snap)
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client) == .forward(server: h))
    }

    @Test func allServersAboveCapacityKeepHomeWithoutSpill() {
        let snap = snapshot([server("a", port: 1), server("b", port: 2), server("c", port: 3)])
        let clients = (0..<60).map { "10.9.0.\($0)" }
        let homes = clients.map { home(snap, client: $0) }
        #expect(Set(homes).count == 3)
        report(snap, [0: 1.2, 1: 1.1, 2: 1.15])
        var state = PolicyState(snapshot: snap)
        for (client, h) in zip(clients, homes) {
            #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client) == .forward(server: h))
        }
    }

    @Test func allServersAboveCapacityWithASpillRouteGoToTheSpillPool() {
        let snap = snapshot([server("a", port: 1), server("b", port: 2)], spill: [server("x", port: 9)])
        var state = PolicyState(snapshot: snap)
        report(snap, [0: 1.0, 1: 0.99])
        #expect(decide(snap, &state, now: clock.nowNanoseconds) != .forward(server: 2))     // one still below 1.0
        report(snap, [0: 1.0, 1: 1.3])
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .forward(server: 2))
        // The spill pool gone too: back to the own pool (overloaded beats nothing).
        snap.servers[2].setHealth(up: false, now: clock.nowNanoseconds)
        let verdict = decide(snap, &state, now: clock.nowNanoseconds)
        #expect(verdict == .forward(server: 0) || verdict == .forward(server: 1))
    }

    @Test func pinnedTransactionIsNeverMovedForLoad() {
        let snap = snapshot([server("a", port: 1), server("b", port: 2), server("c", port: 3)])
        var state = PolicyState(snapshot: snap)
        let client = "192.0.2.44"
        let h = home(snap, client: client)
        let pin = (h + 1) % 3
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client, pinned: pin) == .forward(server: pin))
        // The pin above the first level with a peer lighter by far more than the second level: a
        // transaction still stays where its state is.
        report(snap, [pin: 0.8, h: 0.1, (h + 2) % 3: 0.7])
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client, pinned: pin) == .forward(server: pin))
        // Draining keeps pinned work; maintenance does not.
        snap.servers[pin].setAdminCondition(.drain)
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client, pinned: pin) == .forward(server: pin))
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client) != .forward(server: pin))
        snap.servers[pin].setAdminCondition(.maint)
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client, pinned: pin) != .forward(server: pin))
        snap.servers[pin].setAdminCondition(nil)
        // A pin that is down is ignored: the hash home takes over.
        snap.servers[pin].setHealth(up: false, now: clock.nowNanoseconds)
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client, pinned: pin) == .forward(server: h))
    }

    @Test func rampingServerLooksBusier() {
        // Two servers; the home just came back up (slow start 10 s): its 20 % in-flight looks like
        // 20 % / 0.25 = 80 % at 2.5 s, so a 10 % peer takes the request; at 10 s it is 20 % again.
        let snap = snapshot([server("a", port: 1), server("b", port: 2)]) {
            $0.slowStart = .seconds(10)
            $0.health.interval = .seconds(5)
        }
        let client = "192.0.2.77"
        let h = home(snap, client: client)
        snap.servers[h].setHealth(up: false, now: clock.nowNanoseconds)
        snap.servers[h].setHealth(up: true, now: clock.nowNanoseconds)
        for _ in 0..<20 { snap.servers[h].requestStarted() }
        report(snap, [1 - h: 0.10])
        var state = PolicyState(snapshot: snap)
        clock.advance(milliseconds: 2500)
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client) == .forward(server: 1 - h))
        clock.advance(milliseconds: 7500)
        report(snap, [1 - h: 0.10])
        #expect(decide(snap, &state, now: clock.nowNanoseconds, client: client) == .forward(server: h))
    }
}

@Suite struct StickyRuleTests {
    private func role(_ rule: StickyRule, _ path: String) -> StickyRole? {
        let compiled = RoutingSnapshot(configuration: configuration(
            pools: [Pool(name: "p", servers: [server("a", port: 1)])],
            routes: [Route(name: "r", pool: "p", sticky: [rule])])).routes[0]
        return Array(path.utf8).withUnsafeBytes { compiled.sticky(for: $0)?.role }
    }

    @Test func entryTransactionAndCompletePaths() {
        let rule = StickyRule(path: "/banking/*", complete: ["/banking/logout", "/banking/receipt/*"])
        #expect(role(rule, "/banking/") == .entry)
        #expect(role(rule, "/banking/?x=1") == .entry)
        #expect(role(rule, "/banking/account") == .transaction)
        #expect(role(rule, "/banking/a/b?c") == .transaction)
        #expect(role(rule, "/banking/logout") == .complete)
        #expect(role(rule, "/banking/logout/more") == .transaction)
        #expect(role(rule, "/banking/receipt/42") == .complete)
        #expect(role(rule, "/banking") == nil)
        #expect(role(rule, "/other") == nil)
    }
}

@Suite struct PinTokenTests {
    private let mac: ([UInt8]) -> [UInt8] = { message in
        // A stand-in keyed function for the test (the gateway uses HMAC-SHA256).
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var out: [UInt8] = []
        for round in 0..<4 {
            for b in message { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h ^= UInt64(round)
            for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8((h >> UInt64(shift)) & 0xff)) }
        }
        return out
    }

    @Test func roundTripsAndRejectsTamperingExpiryAndOtherScopes() throws {
        let pin = PinToken.Pin(serverID: "demo-2", session: "c2Vzc2lvbg", expires: 2_000)
        let token = Array(PinToken.encode(pin, scope: "/banking/*", mac: mac).utf8)
        #expect(try PinToken.decode(token, scope: "/banking/*", now: 1_000, mac: mac).get() == pin)
        #expect(throws: PinToken.Rejection.expired) { try PinToken.decode(token, scope: "/banking/*", now: 2_000, mac: mac).get() }
        #expect(throws: PinToken.Rejection.tampered) { try PinToken.decode(token, scope: "/securities/*", now: 1_000, mac: mac).get() }
        // Another server id under the original MAC.
        var tampered = token
        let idStart = tampered.firstIndex(of: UInt8(ascii: "."))! + 1
        tampered[idStart] = tampered[idStart] == UInt8(ascii: "Z") ? UInt8(ascii: "Y") : UInt8(ascii: "Z")
        #expect(throws: PinToken.Rejection.tampered) { try PinToken.decode(tampered, scope: "/banking/*", now: 1_000, mac: mac).get() }
        #expect(throws: PinToken.Rejection.malformed) { try PinToken.decode(Array("garbage".utf8), scope: "/banking/*", now: 1_000, mac: mac).get() }
    }
}
