import Testing
import WeirBalance
import WeirConfig

/// The lending rule (source document 000, Grex; third embodiment of 002) on a manual clock: its time
/// condition, its hysteresis and the lender's own load.
@Suite struct LendingRuleTests {
    let second: UInt64 = 1_000_000_000

    /// Pool 0 (/banking) may borrow server 5; lend level 0.5, return level 0.3, lend_after 10 s.
    func banking(_ load: Double?) -> LendingRule.Borrower {
        LendingRule.Borrower(pool: 0, load: load, lendLevel: 0.5, returnLevel: 0.3, lendAfterNanoseconds: 10 * second)
    }

    func lender(_ load: Double, up: Bool = true, server: Int = 5) -> LendingRule.Candidate {
        LendingRule.Candidate(server: server, load: load, firstLevel: 0.5, up: up, pools: [0])
    }

    @Test func aPoolLoadedForLendAfterBorrowsAServerBelowItsFirstLevel() {
        var rule = LendingRule()
        let t0: UInt64 = 100 * second
        #expect(rule.evaluate(borrowers: [banking(0.6)], candidates: [lender(0.1)], now: t0).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.1)], now: t0 + 9 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.5)], candidates: [lender(0.1)], now: t0 + 10 * second)
                == [.lend(server: 5, to: 0)])
        #expect(rule.pool(lentServer: 5) == 0)
        // Lent already: nothing more to lend, nothing to give back while the pool stays loaded.
        #expect(rule.evaluate(borrowers: [banking(0.7)], candidates: [lender(0.2)], now: t0 + 30 * second).isEmpty)
    }

    @Test func aBreakInTheLoadRestartsTheTimeCondition() {
        var rule = LendingRule()
        let t0: UInt64 = 100 * second
        _ = rule.evaluate(borrowers: [banking(0.8)], candidates: [lender(0.1)], now: t0)
        // One evaluation just below the lend level (not yet calm) breaks the run.
        #expect(rule.evaluate(borrowers: [banking(0.49)], candidates: [lender(0.1)], now: t0 + 5 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.8)], candidates: [lender(0.1)], now: t0 + 6 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.8)], candidates: [lender(0.1)], now: t0 + 15 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.8)], candidates: [lender(0.1)], now: t0 + 16 * second)
                == [.lend(server: 5, to: 0)])
    }

    @Test func noLenderWhileEveryCandidateIsAtItsFirstLevelOrNotUp() {
        var rule = LendingRule()
        let t0: UInt64 = 100 * second
        _ = rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.5)], now: t0)
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.5)], now: t0 + 10 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.1, up: false)], now: t0 + 11 * second).isEmpty)
        // Still loaded: the first candidate that fits is lent at once.
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.1)], now: t0 + 12 * second)
                == [.lend(server: 5, to: 0)])
    }

    @Test func noServerUpCountsAsLoadedAndTheLeastLoadedLenderIsChosen() {
        var rule = LendingRule()
        let candidates = [lender(0.4, server: 7), lender(0.2, server: 9), lender(0.2, server: 8)]
        _ = rule.evaluate(borrowers: [banking(nil)], candidates: candidates, now: 0)
        #expect(rule.evaluate(borrowers: [banking(nil)], candidates: candidates, now: 10 * second) == [.lend(server: 8, to: 0)])
        // A second server only after another lend_after of load.
        #expect(rule.evaluate(borrowers: [banking(nil)], candidates: candidates, now: 19 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(nil)], candidates: candidates, now: 20 * second) == [.lend(server: 9, to: 0)])
    }

    @Test func hysteresisGivesBackOnlyBelowTheReturnLevelForLendAfter() {
        var rule = LendingRule()
        _ = rule.evaluate(borrowers: [banking(0.8)], candidates: [lender(0.1)], now: 0)
        #expect(rule.evaluate(borrowers: [banking(0.8)], candidates: [lender(0.1)], now: 10 * second) == [.lend(server: 5, to: 0)])
        // Between the levels (0.3 ≤ load < 0.5): neither lent more nor given back, however long.
        #expect(rule.evaluate(borrowers: [banking(0.4)], candidates: [lender(0.3)], now: 11 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.3)], candidates: [lender(0.3)], now: 40 * second).isEmpty)
        // Below the return level: given back after lend_after without a break.
        #expect(rule.evaluate(borrowers: [banking(0.29)], candidates: [lender(0.3)], now: 41 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.35)], candidates: [lender(0.3)], now: 45 * second).isEmpty)   // break
        #expect(rule.evaluate(borrowers: [banking(0.1)], candidates: [lender(0.3)], now: 46 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.1)], candidates: [lender(0.3)], now: 55 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.1)], candidates: [lender(0.3)], now: 56 * second)
                == [.giveBack(server: 5, from: 0, reason: .poolCalm)])
        #expect(rule.pool(lentServer: 5) == nil)
        #expect(rule.lent.isEmpty)
    }

    @Test func theLastLentIsGivenBackFirstOnePerLendAfter() {
        var rule = LendingRule()
        let candidates = [lender(0.1, server: 1), lender(0.2, server: 2)]
        _ = rule.evaluate(borrowers: [banking(0.9)], candidates: candidates, now: 0)
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: candidates, now: 10 * second) == [.lend(server: 1, to: 0)])
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: candidates, now: 20 * second) == [.lend(server: 2, to: 0)])
        _ = rule.evaluate(borrowers: [banking(0.0)], candidates: candidates, now: 21 * second)
        #expect(rule.evaluate(borrowers: [banking(0.0)], candidates: candidates, now: 31 * second)
                == [.giveBack(server: 2, from: 0, reason: .poolCalm)])
        #expect(rule.evaluate(borrowers: [banking(0.0)], candidates: candidates, now: 40 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.0)], candidates: candidates, now: 41 * second)
                == [.giveBack(server: 1, from: 0, reason: .poolCalm)])
    }

    @Test func aLentServerAtItsOwnFirstLevelOrDownIsGivenBackAtOnce() {
        var rule = LendingRule()
        _ = rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.1)], now: 0)
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.1)], now: 10 * second) == [.lend(server: 5, to: 0)])
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.5)], now: 11 * second)
                == [.giveBack(server: 5, from: 0, reason: .serverLoaded)])
        // Lent again once it is below its first level and the pool stayed loaded another lend_after.
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.1)], now: 19 * second).isEmpty)
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.1)], now: 20 * second) == [.lend(server: 5, to: 0)])
        #expect(rule.evaluate(borrowers: [banking(0.9)], candidates: [lender(0.1, up: false)], now: 21 * second)
                == [.giveBack(server: 5, from: 0, reason: .serverNotUp)])
    }

    @Test func aServerIsLentToOnePoolAtATime() {
        var rule = LendingRule()
        let securities = LendingRule.Borrower(pool: 1, load: 0.9, lendLevel: 0.5, returnLevel: 0.3, lendAfterNanoseconds: 0)
        let both = LendingRule.Candidate(server: 5, load: 0.1, firstLevel: 0.5, pools: [0, 1])
        let lendAfterZero = LendingRule.Borrower(pool: 0, load: 0.9, lendLevel: 0.5, returnLevel: 0.3, lendAfterNanoseconds: 0)
        #expect(rule.evaluate(borrowers: [lendAfterZero, securities], candidates: [both], now: 0) == [.lend(server: 5, to: 0)])
        #expect(rule.evaluate(borrowers: [lendAfterZero, securities], candidates: [both], now: second).isEmpty)
    }
}

/// Lent servers in the picks of a snapshot, spill_level, and the rule's inputs read from a snapshot.
@Suite struct LendingSnapshotTests {
    let clock = ManualClock()

    /// /banking → pool banking (b1, b2); /securities → pool securities (s1, which can serve /banking/*).
    func snapshot(_ policy: PolicyName = .leastLoad) -> RoutingSnapshot {
        var s1 = server("s1", port: 3)
        s1.canServe = ["/banking/*"]
        return RoutingSnapshot(configuration: configuration(
            pools: [pool("banking", policy, [server("b1", port: 1), server("b2", port: 2)]),
                    pool("securities", policy, [s1]) { $0.lendAfter = .seconds(1) }],
            routes: [Route(name: "banking", pathPrefix: "/banking/*", pool: "banking"),
                     Route(name: "securities", pathPrefix: "/securities/", pool: "securities")]), clock: clock)
    }

    @Test func canServeMakesTheServerLendableToThePoolOfTheRouteItCovers() {
        let snap = snapshot()
        #expect(snap.pools[0].lendable == [2])
        #expect(snap.pools[1].lendable == [])
        #expect(snap.lendingCandidates(now: clock.nowNanoseconds) == [
            LendingRule.Candidate(server: 2, load: 0, firstLevel: 0.5, up: true, pools: [0])])
        #expect(snap.lendingBorrowers(now: clock.nowNanoseconds).map(\.pool) == [0])
    }

    @Test func aLentServerTakesNewRequestsOfItsCanServeOnlyWhileLent() {
        for policy in PolicyName.allCases {
            let snap = snapshot(policy)
            var state = PolicyState(snapshot: snap)
            func picks(_ path: String) -> Set<Int> {
                Set((0..<60).compactMap { i in
                    if case .forward(let s, _) = decide(snap, &state, path: path, client: "10.0.0.\(i)") { return s }
                    return nil
                })
            }
            for s in snap.servers[0...1] { s.recordReport(load: 0.9, state: nil, now: clock.nowNanoseconds) }
            #expect(!picks("/banking/pay").contains(2), "\(policy)")
            snap.servers[2].setLent(to: 0)
            #expect(snap.servers[2].timesLent == 1)
            #expect(picks("/banking/pay").contains(2), "\(policy)")
            // The securities route still has its server.
            #expect(picks("/securities/x") == [2], "\(policy)")
            snap.servers[2].setLent(to: nil)
            #expect(!picks("/banking/pay").contains(2), "\(policy)")
        }
    }

    @Test func aLentServerTakesNoPathOutsideItsCanServe() {
        var s1 = server("s1", port: 3)
        s1.canServe = ["/banking/*"]
        let snap = RoutingSnapshot(configuration: configuration(
            pools: [pool("main", .leastLoad, [server("m1", port: 1)]), pool("securities", .leastLoad, [s1])],
            routes: [Route(name: "banking", pathPrefix: "/banking", pool: "main"), Route(name: "all", pool: "main")]), clock: clock)
        #expect(snap.pools[0].lendable == [1])
        snap.servers[0].recordReport(load: 0.9, state: nil, now: clock.nowNanoseconds)
        snap.servers[1].setLent(to: 0)
        var state = PolicyState(snapshot: snap)
        #expect(decide(snap, &state, path: "/banking/x") == .forward(server: 1))
        #expect(decide(snap, &state, path: "/other") == .forward(server: 0))
    }

    @Test func aPinToAServerGivenBackStillGoesThereWhileItIsUp() {
        let snap = snapshot()
        var state = PolicyState(snapshot: snap)
        snap.servers[2].setLent(to: 0)
        snap.servers[2].setLent(to: nil)
        #expect(decide(snap, &state, path: "/banking/pay", pinned: 2) == .forward(server: 2))
        snap.servers[2].setHealth(up: false, now: clock.nowNanoseconds)
        #expect(decide(snap, &state, path: "/banking/pay", pinned: 2) != .forward(server: 2))
    }

    @Test func aPoolWithNoOwnServerUpUsesItsLentServer() {
        let snap = snapshot()
        var state = PolicyState(snapshot: snap)
        for s in snap.servers[0...1] { s.setHealth(up: false, now: clock.nowNanoseconds) }
        #expect(decide(snap, &state, path: "/banking/pay") == .reject(status: 503, reason: "no server available in pool banking"))
        #expect(snap.leastActiveLoad(pool: 0, now: clock.nowNanoseconds) == nil)
        snap.servers[2].setLent(to: 0)
        #expect(decide(snap, &state, path: "/banking/pay") == .forward(server: 2))
    }

    @Test func coversTakesTheRoutePathWithOrWithoutItsStarOrSlash() {
        let pattern = Array("/banking/*".utf8)
        for path in ["/banking", "/banking/", "/banking/*"] {
            #expect(RoutingSnapshot.covers(pattern, routePath: Array(path.utf8)), "\(path)")
        }
        for path in ["/", "/bank", "/securities/*"] {
            #expect(!RoutingSnapshot.covers(pattern, routePath: Array(path.utf8)), "\(path)")
        }
        #expect(RoutingSnapshot.covers(Array("/api/".utf8), routePath: Array("/api/v1/*".utf8)))
    }

    // MARK: spill_level

    func spillSnapshot(level: Double) -> RoutingSnapshot {
        RoutingSnapshot(configuration: configuration(
            pools: [pool("own", .leastLoad, [server("a", port: 1), server("b", port: 2)]),
                    pool("spare", .leastLoad, [server("x", port: 9)])],
            routes: [Route(name: "r", pool: "own", spill: "spare", spillLevel: level)]), clock: clock)
    }

    @Test func theDedicatedPoolSpillsWhenEveryServerIsAtTheSpillLevel() {
        let snap = spillSnapshot(level: 0.6)
        var state = PolicyState(snapshot: snap)
        snap.servers[0].recordReport(load: 0.7, state: nil, now: clock.nowNanoseconds)
        snap.servers[1].recordReport(load: 0.59, state: nil, now: clock.nowNanoseconds)
        #expect(decide(snap, &state) == .forward(server: 1))
        snap.servers[1].recordReport(load: 0.6, state: nil, now: clock.nowNanoseconds)
        #expect(decide(snap, &state) == .forward(server: 2))
        // The default level is capacity: the same loads do not spill.
        let atCapacity = spillSnapshot(level: 1.0)
        var other = PolicyState(snapshot: atCapacity)
        for s in atCapacity.servers[0...1] { s.recordReport(load: 0.9, state: nil, now: clock.nowNanoseconds) }
        #expect(decide(atCapacity, &other) != .forward(server: 2))
        #expect(Route(name: "r", pool: "p").spillLevel == 1.0)
    }

    @Test func theSpillPoolIsUsedOnlyWhileItIsItselfBelowTheSpillLevel() {
        let snap = spillSnapshot(level: 0.6)
        var state = PolicyState(snapshot: snap)
        for s in snap.servers[0...1] { s.recordReport(load: 0.8, state: nil, now: clock.nowNanoseconds) }
        snap.servers[2].recordReport(load: 0.6, state: nil, now: clock.nowNanoseconds)
        #expect(decide(snap, &state) != .forward(server: 2))
        snap.servers[2].recordReport(load: 0.5, state: nil, now: clock.nowNanoseconds)
        #expect(decide(snap, &state) == .forward(server: 2))
        // With no own server up the spill pool still takes the requests (availability, whatever its load).
        snap.servers[2].recordReport(load: 0.9, state: nil, now: clock.nowNanoseconds)
        for s in snap.servers[0...1] { s.setHealth(up: false, now: clock.nowNanoseconds) }
        #expect(decide(snap, &state) == .forward(server: 2))
    }
}
