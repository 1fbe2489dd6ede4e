import Testing
import WeirBalance
import WeirConfig

/// A reload builds a new snapshot from the previous one: servers whose id stays keep their run-time
/// state (shared, so requests in flight on the old snapshot count in the same place).
@Suite struct SnapshotSuccessionTests {
    let clock = ManualClock()

    func snapshot(_ servers: [Server], previous: RoutingSnapshot? = nil) -> RoutingSnapshot {
        RoutingSnapshot(configuration: configuration(pools: [pool("p", .roundRobin, servers)], routes: [Route(name: "r", pool: "p")]),
                        clock: clock, previous: previous)
    }

    @Test func aServerThatStaysKeepsHealthDrainCountersAndInFlight() {
        let old = snapshot([server("a", port: 1), server("b", port: 2)])
        old.servers[0].setAdminCondition(.drain)
        old.servers[1].setHealth(up: false, now: clock.nowNanoseconds)
        old.servers[1].requestStarted()
        old.servers[1].recordReport(load: 0.7, state: nil, now: clock.nowNanoseconds)
        // b moves to the front and changes weight; c is new; a stays, drained (the runtime state laid
        // over conf.d says so: every drain made at run time is kept there).
        var drained = server("a", port: 1)
        drained.adminCondition = .drain
        let new = snapshot([server("b", port: 2, weight: 5), server("c", port: 3), drained], previous: old)
        #expect(new.servers.map(\.config.id) == ["b", "c", "a"])
        #expect(new.servers[2].condition == .drain)
        #expect(new.servers[0].isHealthy == false)
        #expect(new.servers[0].totalRequests.load(ordering: .relaxed) == 1)
        #expect(new.servers[0].reportedLoad(now: clock.nowNanoseconds, maxAge: .max)?.load == 0.7)
        #expect(new.servers[0].config.weight == 5)
        // A request that started on the old snapshot ends on it: the new one sees it finish.
        #expect(new.servers[0].inFlightCount == 1)
        old.servers[1].requestFinished()
        #expect(new.servers[0].inFlightCount == 0)
        // A new server starts fresh.
        #expect(new.servers[1].condition == .up && new.servers[1].totalRequests.load(ordering: .relaxed) == 0)
    }

    @Test func aDrainTheConfigurationNoLongerHoldsEndsWithTheReload() {
        var drained = server("a", port: 1)
        drained.adminCondition = .drain
        let old = snapshot([drained])
        #expect(old.servers[0].condition == .drain)
        let new = snapshot([server("a", port: 1)], previous: old)
        #expect(new.servers[0].condition == .up)
    }

    @Test func aServerRemovedAndAddedAgainStartsFresh() {
        let first = snapshot([server("a", port: 1), server("b", port: 2)])
        first.servers[1].setAdminCondition(.maint)
        let second = snapshot([server("a", port: 1)], previous: first)
        let third = snapshot([server("a", port: 1), server("b", port: 2)], previous: second)
        #expect(third.servers[1].condition == .up)
    }

    @Test func aLendingMarkNamesAnOldPoolAndIsCleared() {
        let old = snapshot([server("a", port: 1)])
        old.servers[0].setLent(to: 0)
        let new = snapshot([server("a", port: 1)], previous: old)
        #expect(new.servers[0].lentTo == nil)
        #expect(new.servers[0].timesLent == 1)
    }
}
