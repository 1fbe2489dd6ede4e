import Testing
import WeirBalance
import WeirConfig

@Suite struct HealthMachineTests {
    @Test func fallConsecutiveFailuresTakeItDownAndRiseSuccessesBringItUp() {
        var m = HealthMachine(rise: 2, fall: 3)
        #expect(m.isUp)
        #expect(m.record(success: false) == false)
        #expect(m.record(success: false) == false)
        #expect(m.isUp)
        #expect(m.record(success: false) == true)
        #expect(!m.isUp)
        #expect(m.record(success: false) == false)
        #expect(m.record(success: true) == false)
        #expect(!m.isUp)
        #expect(m.record(success: true) == true)
        #expect(m.isUp)
        #expect(m.record(success: true) == false)
    }

    @Test func startDownNeedsRiseSuccesses() {
        var m = HealthMachine(rise: 3, fall: 1, startUp: false)
        #expect(!m.isUp)
        #expect(m.record(success: true) == false)
        #expect(m.record(success: true) == false)
        #expect(m.record(success: true) == true)
        #expect(m.record(success: false) == true)       // fall 1
        #expect(!m.isUp)
    }

    @Test func flappingNeverChangesState() {
        var up = HealthMachine(rise: 2, fall: 2)
        var down = HealthMachine(rise: 2, fall: 2, startUp: false)
        for i in 0..<40 {
            #expect(up.record(success: i % 2 == 1) == false)
            #expect(down.record(success: i % 2 == 0) == false)
        }
        #expect(up.isUp)
        #expect(!down.isUp)
    }

    @Test func aSuccessBreaksAFailureStreak() {
        var m = HealthMachine(rise: 1, fall: 3)
        for _ in 0..<5 {
            _ = m.record(success: false)
            _ = m.record(success: false)
            #expect(m.record(success: true) == false)
        }
        #expect(m.isUp)
    }

    @Test func forceDownThenRise() {
        var m = HealthMachine(rise: 2, fall: 3)
        _ = m.record(success: true)
        m.forceDown()
        #expect(!m.isUp)
        #expect(m.record(success: true) == false)
        #expect(m.record(success: false) == false)     // breaks the rise streak
        #expect(m.record(success: true) == false)
        #expect(m.record(success: true) == true)
        #expect(m.isUp)
    }
}

@Suite struct ReportTests {
    let clock = ManualClock()

    func snapshot(interval: Duration = .seconds(1), policy: PolicyName = .leastLoad) -> RoutingSnapshot {
        RoutingSnapshot(configuration: configuration(
            pools: [pool("p", policy, [server("a", port: 1), server("b", port: 2)]) { $0.health.interval = interval }],
            routes: [Route(name: "r", pool: "p")]), clock: clock)
    }

    @Test func aFreshReportDominatesInFlight() {
        let snap = snapshot()
        let a = snap.servers[0]
        a.recordReport(load: 0.9, state: nil, now: clock.nowNanoseconds)
        #expect(a.effectiveLoad(now: clock.nowNanoseconds) == 0.9)
        // In-flight above the report wins: the report is corrected by what happened since.
        for _ in 0..<95 { a.requestStarted() }
        #expect(a.effectiveLoad(now: clock.nowNanoseconds) == 0.95)
    }

    @Test func aReportOlderThanThreeIntervalsIsIgnored() {
        let snap = snapshot(interval: .seconds(1))
        let a = snap.servers[0]
        for _ in 0..<20 { a.requestStarted() }
        a.recordReport(load: 0.9, state: nil, now: clock.nowNanoseconds)
        clock.advance(milliseconds: 3000)
        #expect(a.effectiveLoad(now: clock.nowNanoseconds) == 0.9)
        #expect(a.reportedLoad(now: clock.nowNanoseconds, maxAge: 3_000_000_000)?.ageNanoseconds == 3_000_000_000)
        clock.advance(milliseconds: 1)
        #expect(a.effectiveLoad(now: clock.nowNanoseconds) == 0.2)
        #expect(a.reportedLoad(now: clock.nowNanoseconds, maxAge: 3_000_000_000) == nil)
        // The admin view still shows the stale report, with its age.
        let status = snap.status(now: clock.nowNanoseconds)[0].servers[0]
        #expect(status.reportedLoad == 0.9)
        #expect(status.reportAgeMs == 3001)
        #expect(status.effectiveLoad == 0.2)
    }

    @Test func reportedLoadIsClampedAndNaNIgnored() {
        let a = snapshot().servers[0]
        a.recordReport(load: -3, state: nil, now: clock.nowNanoseconds)
        #expect(a.reportedLoad(now: clock.nowNanoseconds, maxAge: .max)?.load == 0)
        a.recordReport(load: 2.5, state: nil, now: clock.nowNanoseconds)
        a.recordReport(load: .nan, state: nil, now: clock.nowNanoseconds)
        #expect(a.effectiveLoad(now: clock.nowNanoseconds) == 2.5)
    }

    @Test func reportedStateMakesTheServerIneligibleUntilAnUpReport() {
        for state in [ServerCondition.drain, .maint, .down] {
            let snap = snapshot(policy: .roundRobin)
            var policy = PolicyState(snapshot: snap)
            snap.servers[0].recordReport(load: nil, state: state, now: clock.nowNanoseconds)
            #expect(snap.servers[0].condition == state)
            #expect(snap.servers[0].isHealthy)
            for _ in 0..<10 { #expect(decide(snap, &policy, now: clock.nowNanoseconds) == .forward(server: 1)) }
            // A report with a load but no state leaves the state as it was.
            snap.servers[0].recordReport(load: 0.1, state: nil, now: clock.nowNanoseconds)
            #expect(snap.servers[0].condition == state)
            snap.servers[0].recordReport(load: 0.1, state: .up, now: clock.nowNanoseconds)
            #expect(snap.servers[0].condition == .up)
            let picks = (0..<10).map { _ in decide(snap, &policy, now: clock.nowNanoseconds) }
            #expect(picks.contains(.forward(server: 0)))
        }
    }

    @Test func conditionCombinesHealthAdminAndReport() {
        let s = snapshot().servers[0]
        s.setAdminCondition(.drain)
        #expect(s.condition == .drain)
        s.setHealth(up: false, now: clock.nowNanoseconds)
        #expect(s.condition == .down)
        s.setAdminCondition(.maint)
        #expect(s.condition == .maint)
        s.setAdminCondition(nil)
        #expect(s.condition == .down)
        s.setHealth(up: true, now: clock.nowNanoseconds)
        #expect(s.condition == .up)
        s.recordReport(load: nil, state: .drain, now: clock.nowNanoseconds)
        s.setAdminCondition(.maint)
        #expect(s.condition == .maint)
        s.setAdminCondition(nil)
        #expect(s.condition == .drain)
    }

    @Test func conditionNamesRoundTrip() {
        for c in ServerCondition.allCases { #expect(ServerCondition(name: c.description) == c) }
        #expect(ServerCondition(name: "DRAIN") == .drain)
        #expect(ServerCondition(name: "sideways") == nil)
    }
}

@Suite struct PassiveFailureTests {
    let clock = ManualClock()

    func state(passiveFailures: Int = 3) -> ServerState {
        RoutingSnapshot(configuration: configuration(
            pools: [pool("p", .roundRobin, [server("a", port: 1)]) { $0.passiveFailures = passiveFailures }],
            routes: [Route(name: "r", pool: "p")]), clock: clock).servers[0]
    }

    @Test func theNthConsecutiveFailureMarksItDown() {
        let s = state()
        #expect(s.recordPassiveFailure() == false)
        #expect(s.recordPassiveFailure() == false)
        #expect(s.isHealthy && s.condition == .up)
        #expect(s.consecutivePassiveFailures == 2)
        #expect(s.takePassiveDown() == false)
        #expect(s.recordPassiveFailure() == true)
        #expect(!s.isHealthy)
        #expect(s.condition == .down)
        #expect(s.recordPassiveFailure() == false)      // already down: no second mark-down
        #expect(s.takePassiveDown() == true)
        #expect(s.takePassiveDown() == false)
    }

    @Test func aSuccessInBetweenResetsTheCount() {
        let s = state()
        _ = s.recordPassiveFailure()
        _ = s.recordPassiveFailure()
        s.recordPassiveSuccess()
        #expect(s.consecutivePassiveFailures == 0)
        #expect(s.recordPassiveFailure() == false)
        #expect(s.recordPassiveFailure() == false)
        #expect(s.isHealthy)
        #expect(s.recordPassiveFailure() == true)
    }

    @Test func zeroTurnsPassiveChecksOff() {
        let s = state(passiveFailures: 0)
        for _ in 0..<100 { #expect(s.recordPassiveFailure() == false) }
        #expect(s.isHealthy)
    }

    @Test func theControlThreadForcesTheMachineDownAndRiseBringsItBack() {
        let s = state()
        var machine = HealthMachine(rise: 2, fall: 3)
        for _ in 0..<3 { _ = s.recordPassiveFailure() }
        if s.takePassiveDown() { machine.forceDown() }
        #expect(!machine.isUp)
        for _ in 0..<2 {
            if machine.record(success: true) { s.setHealth(up: machine.isUp, now: clock.nowNanoseconds) }
        }
        #expect(machine.isUp)
        #expect(s.isHealthy && s.condition == .up)
        #expect(s.consecutivePassiveFailures == 0)
        // A fresh streak is needed to mark it down again.
        #expect(s.recordPassiveFailure() == false)
    }
}

@Suite struct SlowStartTests {
    let clock = ManualClock()

    func snapshot(_ policy: PolicyName, slowStart: Duration = .seconds(10)) -> RoutingSnapshot {
        RoutingSnapshot(configuration: configuration(
            pools: [pool("p", policy, [server("a", port: 1, capacity: 10), server("b", port: 2, capacity: 10),
                                       server("c", port: 3, capacity: 10)]) { $0.slowStart = slowStart }],
            routes: [Route(name: "r", pool: "p")]), clock: clock)
    }

    @Test func theFactorRampsLinearlyToOne() {
        let s = snapshot(.leastLoad).servers[0]
        #expect(s.slowStartFactor(now: clock.nowNanoseconds) == 1)     // up from the start: no ramp
        s.setHealth(up: false, now: clock.nowNanoseconds)
        s.setHealth(up: true, now: clock.nowNanoseconds)
        let start = s.slowStartFactor(now: clock.nowNanoseconds)
        #expect(start > 0 && start <= 0.05)
        clock.advance(milliseconds: 2500)
        #expect(abs(s.slowStartFactor(now: clock.nowNanoseconds) - 0.25) < 1e-9)
        clock.advance(milliseconds: 2500)
        #expect(abs(s.slowStartFactor(now: clock.nowNanoseconds) - 0.5) < 1e-9)
        clock.advance(milliseconds: 4999)
        #expect(s.slowStartFactor(now: clock.nowNanoseconds) < 1)
        clock.advance(milliseconds: 1)
        #expect(s.slowStartFactor(now: clock.nowNanoseconds) == 1)
        // Being set up again while up does not restart the ramp.
        s.setHealth(up: true, now: clock.nowNanoseconds)
        #expect(s.slowStartFactor(now: clock.nowNanoseconds) == 1)
    }

    @Test func zeroSlowStartIsOff() {
        let s = snapshot(.leastLoad, slowStart: .zero).servers[0]
        s.setHealth(up: false, now: clock.nowNanoseconds)
        s.setHealth(up: true, now: clock.nowNanoseconds)
        #expect(s.slowStartFactor(now: clock.nowNanoseconds) == 1)
    }

    /// Runs `n` requests with at most `window` in flight (the oldest finishes first) and counts picks.
    func simulate(_ snap: RoutingSnapshot, n: Int, window: Int) -> [Int] {
        var state = PolicyState(snapshot: snap)
        var outstanding: [Int] = []
        var counts = [0, 0, 0]
        for _ in 0..<n {
            if outstanding.count == window { snap.servers[outstanding.removeFirst()].requestFinished() }
            guard case .forward(let s, _) = decide(snap, &state, now: clock.nowNanoseconds) else { Issue.record("no pick"); break }
            snap.servers[s].requestStarted()
            outstanding.append(s)
            counts[s] += 1
        }
        for s in outstanding { snap.servers[s].requestFinished() }
        return counts
    }

    @Test func leastLoadSendsFewerRequestsToTheRampingServer() {
        let snap = snapshot(.leastLoad)
        snap.servers[2].setHealth(up: false, now: clock.nowNanoseconds)
        snap.servers[2].setHealth(up: true, now: clock.nowNanoseconds)
        clock.advance(milliseconds: 2000)        // factor 0.2
        let c = simulate(snap, n: 3000, window: 15)
        #expect(c[2] * 3 < c[0], "counts \(c)")
        #expect(c[2] * 3 < c[1], "counts \(c)")
        #expect(c[2] > 0)
        // Ramp over: even shares.
        clock.advance(milliseconds: 8000)
        let after = simulate(snap, n: 3000, window: 15)
        for count in after { #expect(abs(count - 1000) <= 10, "counts \(after)") }
    }

    @Test func roundRobinScalesTheRampingServersWeight() {
        let snap = snapshot(.roundRobin)
        snap.servers[2].setHealth(up: false, now: clock.nowNanoseconds)
        snap.servers[2].setHealth(up: true, now: clock.nowNanoseconds)
        clock.advance(milliseconds: 2500)        // factor 0.25: weight 16 → 4 of 36
        var state = PolicyState(snapshot: snap)
        var c = [0, 0, 0]
        for _ in 0..<3600 { if case .forward(let s, _) = decide(snap, &state, now: clock.nowNanoseconds) { c[s] += 1 } }
        #expect(c == [1600, 1600, 400])
    }
}
