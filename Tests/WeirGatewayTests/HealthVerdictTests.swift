import Testing
@testable import WeirGateway
import WeirIO

/// `weir health`'s verdict from the facts: listener probes, worker heartbeat ages, pool availability.
@Suite struct HealthVerdictTests {
    let up = [HealthVerdict.PoolAvailability(name: "api", available: 2, servers: 2)]
    let accepting = [HealthVerdict.ListenerProbe(name: "public", address: "127.0.0.1:8080", accepted: true)]

    @Test func allGoodIsHealthy() {
        #expect(HealthVerdict.evaluate(listeners: accepting, workerAges: [40, 90], pools: up) == .healthy)
        #expect(HealthVerdict.healthy.line == "ok")
    }

    @Test func listenerThatRefusesNamesItself() {
        let refused = accepting + [.init(name: "tls", address: "127.0.0.1:8443", accepted: false, error: "Connection refused")]
        let verdict = HealthVerdict.evaluate(listeners: refused, workerAges: [10], pools: up)
        #expect(verdict == .unhealthy("listener tls (127.0.0.1:8443): does not accept: Connection refused"))
    }

    @Test func unprobedListenerDoesNotCount() {
        let unprobed = [HealthVerdict.ListenerProbe(name: "any", address: "127.0.0.1:0", accepted: nil)]
        #expect(HealthVerdict.evaluate(listeners: unprobed, workerAges: [10], pools: up) == .healthy)
    }

    @Test func staleHeartbeatNamesTheWorker() {
        let verdict = HealthVerdict.evaluate(listeners: accepting, workerAges: [20, 1500], pools: up)
        #expect(verdict == .unhealthy("worker weir-worker-1: loop has not turned for 1500 ms"))
        // The limit is the caller's: a looser one accepts the same age.
        #expect(HealthVerdict.evaluate(listeners: accepting, workerAges: [20, 1500], pools: up, staleMilliseconds: 2000) == .healthy)
        // At the limit is still turning.
        #expect(HealthVerdict.evaluate(listeners: accepting, workerAges: [1000], pools: up) == .healthy)
    }

    @Test func finishedWorkersAreIgnoredButNoneRunningIsNotHealthy() {
        #expect(HealthVerdict.evaluate(listeners: accepting, workerAges: [nil, 30], pools: up) == .healthy)
        #expect(HealthVerdict.evaluate(listeners: accepting, workerAges: [nil, nil], pools: up)
                == .unhealthy("no worker loop is running (the gateway is stopping)"))
        #expect(HealthVerdict.evaluate(listeners: accepting, workerAges: [], pools: up) != .healthy)
    }

    @Test func poolWithoutServerUpIsNamed() {
        let pools = up + [.init(name: "static", available: 0, servers: 3)]
        let verdict = HealthVerdict.evaluate(listeners: accepting, workerAges: [5], pools: pools)
        #expect(verdict == .unhealthy("pool static: no server available (3 configured, none up)"))
        #expect(HealthVerdict.evaluate(listeners: accepting, workerAges: [5], pools: []) == .healthy)
    }

    @Test func firstFailureWinsInOrderListenersWorkersPools() {
        let refused = [HealthVerdict.ListenerProbe(name: "public", address: "127.0.0.1:8080", accepted: false)]
        let down = [HealthVerdict.PoolAvailability(name: "api", available: 0, servers: 1)]
        #expect(HealthVerdict.evaluate(listeners: refused, workerAges: [5000], pools: down).line
                == "listener public (127.0.0.1:8080): does not accept")
        #expect(HealthVerdict.evaluate(listeners: accepting, workerAges: [5000], pools: down).line.hasPrefix("worker weir-worker-0"))
    }

    @Test func heartbeatAgeFollowsTheBeat() {
        let beat = WorkerHeartbeat()
        beat.beat(worker: 0)
        let now = MonotonicTime.nanoseconds()
        #expect(beat.ageMilliseconds(now: now + 250_000_000).map { (250...251).contains($0) } == true)
        beat.finish()
        #expect(beat.ageMilliseconds(now: now) == nil)
    }
}
