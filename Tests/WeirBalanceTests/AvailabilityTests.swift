import Testing
import WeirBalance
import WeirConfig

@Suite struct PriorityGroupTests {
    let clock = ManualClock()

    @Test func aLowerGroupIsUsedOnlyWhileNoServerOfAHigherOneIsUp() {
        let snap = RoutingSnapshot(configuration: configuration(
            pools: [pool("p", .roundRobin, [server("a", port: 1), server("b", port: 2), server("backup", port: 3, group: 1)])],
            routes: [Route(name: "r", pool: "p")]), clock: clock)
        var state = PolicyState(snapshot: snap)
        func picks() -> [Int] {
            (0..<100).compactMap { _ in
                if case .forward(let s, _) = decide(snap, &state, now: clock.nowNanoseconds) { return s }
                return nil
            }
        }
        #expect(!picks().contains(2))
        snap.servers[0].setHealth(up: false, now: clock.nowNanoseconds)
        #expect(Set(picks()) == [1])
        snap.servers[1].setHealth(up: false, now: clock.nowNanoseconds)
        #expect(Set(picks()) == [2])
        snap.servers[1].setHealth(up: true, now: clock.nowNanoseconds)
        #expect(Set(picks()) == [1])
        // Group 1 is also the fallback of a retry that excludes every group-0 server.
        #expect(decide(snap, &state, excluded: [1], now: clock.nowNanoseconds) == .forward(server: 2))
    }

    @Test func groupsApplyToEveryPolicy() {
        for policy in PolicyName.allCases {
            let snap = RoutingSnapshot(configuration: configuration(
                pools: [pool("p", policy, [server("backup", port: 1, group: 2), server("a", port: 2, group: 1), server("b", port: 3, group: 1)])],
                routes: [Route(name: "r", pool: "p")]), clock: clock)
            var state = PolicyState(snapshot: snap)
            for i in 0..<50 {
                let v = decide(snap, &state, now: clock.nowNanoseconds, client: "10.0.0.\(i)")
                #expect(v != .forward(server: 0), "\(policy)")
            }
            snap.servers[1].setHealth(up: false, now: clock.nowNanoseconds)
            snap.servers[2].setAdminCondition(.maint)
            #expect(decide(snap, &state, now: clock.nowNanoseconds) == .forward(server: 0), "\(policy)")
        }
    }

    @Test func aGroupWhoseServersAreAllFullQueuesRatherThanFallingBack() {
        let snap = RoutingSnapshot(configuration: configuration(
            pools: [pool("p", .leastLoad, [server("a", port: 1, maxConns: 1), server("backup", port: 2, group: 1)])],
            routes: [Route(name: "r", pool: "p")]), clock: clock)
        var state = PolicyState(snapshot: snap)
        snap.servers[0].requestStarted()
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .queue(pool: 0))
    }
}

@Suite struct MaxConnsAndSpillTests {
    let clock = ManualClock()

    func snapshot(_ policy: PolicyName = .leastLoad, spill: Bool) -> RoutingSnapshot {
        var route = Route(name: "r", pool: "web")
        if spill { route.spill = "overflow" }
        return RoutingSnapshot(configuration: configuration(
            pools: [pool("web", policy, [server("a", port: 1, capacity: 10, maxConns: 2), server("b", port: 2, capacity: 10, maxConns: 3)]),
                    pool("overflow", .roundRobin, [server("x", port: 9, capacity: 10, maxConns: 1)])],
            routes: [route]), clock: clock)
    }

    @Test func aFullServerIsSkipped() {
        for policy in PolicyName.allCases {
            let snap = snapshot(policy, spill: false)
            var state = PolicyState(snapshot: snap)
            snap.servers[0].requestStarted()
            snap.servers[0].requestStarted()
            #expect(snap.servers[0].isFull)
            #expect(!snap.servers[1].isFull)
            for i in 0..<20 { #expect(decide(snap, &state, now: clock.nowNanoseconds, client: "10.0.0.\(i)") == .forward(server: 1), "\(policy)") }
        }
    }

    @Test func everyServerFullQueues() {
        let snap = snapshot(spill: false)
        var state = PolicyState(snapshot: snap)
        for _ in 0..<2 { snap.servers[0].requestStarted() }
        for _ in 0..<3 { snap.servers[1].requestStarted() }
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .queue(pool: 0))
        snap.servers[1].requestFinished()
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .forward(server: 1))
    }

    @Test func unlimitedIsNeverFull() {
        let s = RoutingSnapshot(configuration: configuration(pools: [pool("p", .hash, [server("a", port: 1, capacity: 1)])],
                                                             routes: [Route(name: "r", pool: "p")])).servers[0]
        for _ in 0..<1000 { s.requestStarted() }
        #expect(!s.isFull)
    }

    @Test func everyServerFullWithASpillRouteGoesToTheSpillPoolThenQueues() {
        let snap = snapshot(spill: true)
        var state = PolicyState(snapshot: snap)
        for _ in 0..<2 { snap.servers[0].requestStarted() }
        for _ in 0..<3 { snap.servers[1].requestStarted() }
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .forward(server: 2))
        snap.servers[2].requestStarted()
        // Both pools full: queue for the route's own pool.
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .queue(pool: 0))
    }

    @Test func saturatedPoolSpillsEvenBelowMaxConns() {
        let snap = snapshot(spill: true)
        var state = PolicyState(snapshot: snap)
        #expect(decide(snap, &state, now: clock.nowNanoseconds) != .forward(server: 2))
        snap.servers[0].recordReport(load: 1.0, state: nil, now: clock.nowNanoseconds)
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .forward(server: 1))
        snap.servers[1].recordReport(load: 1.4, state: nil, now: clock.nowNanoseconds)
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .forward(server: 2))
        // One own server back under capacity: no spill.
        snap.servers[1].recordReport(load: 0.5, state: nil, now: clock.nowNanoseconds)
        #expect(decide(snap, &state, now: clock.nowNanoseconds) == .forward(server: 1))
    }

    @Test func noServerUpIs503WithoutSpillAndSpillsWithIt() {
        for spill in [false, true] {
            let snap = snapshot(spill: spill)
            var state = PolicyState(snapshot: snap)
            snap.servers[0].setHealth(up: false, now: clock.nowNanoseconds)
            snap.servers[1].setAdminCondition(.drain)
            let verdict = decide(snap, &state, now: clock.nowNanoseconds)
            if spill {
                #expect(verdict == .forward(server: 2))
                snap.servers[2].setHealth(up: false, now: clock.nowNanoseconds)
                #expect(decide(snap, &state, now: clock.nowNanoseconds) == .reject(status: 503, reason: "no server available in pool web"))
            } else {
                #expect(verdict == .reject(status: 503, reason: "no server available in pool web"))
            }
        }
    }
}

@Suite struct DrainTests {
    let clock = ManualClock()

    @Test func aDrainingServerKeepsPinnedWorkOnly() {
        for policy in PolicyName.allCases {
            let snap = RoutingSnapshot(configuration: configuration(
                pools: [pool("p", policy, [server("a", port: 1), server("b", port: 2)])],
                routes: [Route(name: "r", pool: "p")]), clock: clock)
            var state = PolicyState(snapshot: snap)
            snap.servers[0].setAdminCondition(.drain)
            for i in 0..<20 {
                #expect(decide(snap, &state, now: clock.nowNanoseconds, client: "10.0.0.\(i)") == .forward(server: 1), "\(policy)")
            }
            #expect(decide(snap, &state, now: clock.nowNanoseconds, pinned: 0) == .forward(server: 0), "\(policy)")
            snap.servers[0].setAdminCondition(.maint)
            #expect(decide(snap, &state, now: clock.nowNanoseconds, pinned: 0) == .forward(server: 1), "\(policy)")
        }
    }
}

@Suite struct GlobRouteTests {
    let snapshot = RoutingSnapshot(configuration: configuration(
        pools: [pool("web", .roundRobin, [server("w", port: 1)]), pool("css", .roundRobin, [server("c", port: 2)]),
                pool("users", .roundRobin, [server("u", port: 3)]), pool("banking", .roundRobin, [server("b", port: 4)])],
        routes: [Route(name: "css", pathPrefix: "/static/*.css", pool: "css"),
                 Route(name: "users", pathPrefix: "/api/*/users*", pool: "users"),
                 Route(name: "banking", pathPrefix: "/users/*/banking", pool: "banking"),
                 Route(name: "default", pool: "web")]))

    func target(_ path: String) -> Verdict {
        var state = PolicyState(snapshot: snapshot)
        return decide(snapshot, &state, path: path)
    }

    @Test func aPathWithAStarIsAPattern() {
        #expect(Route(name: "g", pathPrefix: "/a/*", pool: "p").pathIsGlob)
        #expect(!Route(name: "g", pathPrefix: "/a/", pool: "p").pathIsGlob)
    }

    @Test func starMatchesAnyRunIncludingSlashes() {
        #expect(target("/static/a.css") == .forward(server: 1))
        #expect(target("/static/x/y/z.css") == .forward(server: 1))
        #expect(target("/static/.css") == .forward(server: 1))
        #expect(target("/static/a.css?v=3") == .forward(server: 1))
        #expect(target("/static/a.css/x") == .forward(server: 0))
        #expect(target("/static/a.js") == .forward(server: 0))
        #expect(target("/api/v1/users") == .forward(server: 2))
        #expect(target("/api/v1/beta/users/42") == .forward(server: 2))
        #expect(target("/api/users") == .forward(server: 0))      // the star sits between two slashes
    }

    @Test func aPatternMatchesTheWholePathWithoutTheQuery() {
        #expect(target("/users/42/banking") == .forward(server: 3))
        #expect(target("/users/42/banking?tab=1") == .forward(server: 3))
        #expect(target("/users/a/b/banking") == .forward(server: 3))
        #expect(target("/users/42/banking/x") == .forward(server: 0))
        #expect(target("/users/42/bankingx") == .forward(server: 0))
        #expect(target("/x/users/42/banking") == .forward(server: 0))
    }
}

@Suite struct StatusTests {
    @Test func statusReportsEveryPoolAndServer() {
        let clock = ManualClock()
        let snap = RoutingSnapshot(configuration: configuration(
            pools: [pool("web", .threshold, [server("a", port: 8001, weight: 3, capacity: 10, group: 0, maxConns: 5),
                                             server("b", port: 8002, capacity: 20, group: 1)]),
                    pool("api", .p2c, [server("c", port: 8003)])],
            routes: [Route(name: "r", pool: "web")]), clock: clock)
        snap.servers[0].requestStarted()
        snap.servers[0].requestStarted()
        _ = snap.servers[0].recordPassiveFailure()
        snap.servers[1].recordReport(load: 0.4, state: .drain, now: clock.nowNanoseconds)
        clock.advance(milliseconds: 250)
        let status = snap.status(now: clock.nowNanoseconds)
        #expect(status.map(\.name) == ["web", "api"])
        #expect(status.map(\.policy) == ["threshold", "p2c"])
        let a = status[0].servers[0]
        #expect(a.id == "a" && a.address == "127.0.0.1:8001")
        #expect(a.condition == "up" && a.healthy)
        #expect(a.effectiveLoad == 0.2 && a.reportedLoad == nil && a.reportAgeMs == nil)
        #expect(a.inFlight == 2 && a.totalRequests == 2 && a.failures == 0 && a.consecutivePassiveFailures == 1)
        #expect(a.group == 0 && a.weight == 3 && a.capacity == 10 && a.maxConns == 5 && a.slowStartFactor == 1)
        let b = status[0].servers[1]
        #expect(b.condition == "drain" && b.healthy)
        #expect(b.reportedLoad == 0.4 && b.reportAgeMs == 250 && b.effectiveLoad == 0.4)
        #expect(b.group == 1 && b.maxConns == nil)
        #expect(status[1].servers.map(\.id) == ["c"])
    }
}
