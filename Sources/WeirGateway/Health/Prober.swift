import WeirBalance
import WeirConfig
import WeirHTTP
import WeirIO

/// Active health checks, run on the control thread's loop so no worker ever waits for one: per
/// server, every `interval`, an HTTP request (or a TCP connect) with a `timeout`; the outcome feeds
/// the server's rise/fall `HealthMachine`, and a load report in the response feeds its load.
/// Passive mark-downs made by workers are folded into the machines at each tick, so such a server
/// needs `rise` good probes to come back.
final class Prober {
    private let loop: EventLoop
    private let snapshot: RoutingSnapshot
    private let clock: BalanceClock
    private let log: (String) -> Void
    private var targets: [Target] = []

    private final class Target {
        let server: ServerState
        let check: HealthCheck
        var machine: HealthMachine
        var timer: LoopTimer?
        var inFlight = false
        var lastFailure = ""
        var tls: TLSClientContext?
        var serverName = ""
        /// The PROXY header without addresses (v1 UNKNOWN, v2 LOCAL) when the pool has `send_proxy`, else empty.
        var proxyPreface: [UInt8] = []
        /// When `probeNow` last probed it (control loop monotonic ms).
        var lastRequested: Int64?
        /// Probes still to make soon after a requested one failed (see `probeNow`), and their timer.
        var confirmations = 0
        var confirmTimer: LoopTimer?
        init(server: ServerState, check: HealthCheck) {
            self.server = server
            self.check = check
            machine = HealthMachine(rise: check.rise, fall: check.fall, startUp: true)
        }
    }

    private let tls: TLSSetup

    init(loop: EventLoop, snapshot: RoutingSnapshot, clock: BalanceClock, log: @escaping (String) -> Void, tls: TLSSetup) {
        self.tls = tls
        self.loop = loop
        self.snapshot = snapshot
        self.clock = clock
        self.log = log
    }

    /// Starts every probed server's timer (a peer group's member servers are judged by their
    /// beacons instead, see WeirPeer), spread over the first interval so probes do not come in bursts.
    func start() {
        for (poolIndex, pool) in snapshot.configuration.pools.enumerated() {
            let servers = snapshot.pools[poolIndex].servers
            for (position, serverIndex) in servers.enumerated() where snapshot.servers[serverIndex].config.probed {
                let target = Target(server: snapshot.servers[serverIndex], check: pool.health)
                target.tls = tls.pools[poolIndex]
                target.serverName = tls.serverNames[serverIndex]
                if let version = pool.sendProxy {
                    target.proxyPreface = ProxyHeaderWriter.header(version == .v1 ? .v1 : .v2, source: nil, destination: nil)
                }
                let intervalMs = max(1, pool.health.interval.milliseconds)
                target.timer = LoopTimer(loop: loop, repeating: true) { [unowned self, unowned target] in self.tick(target) }
                target.timer?.schedule(milliseconds: intervalMs)
                // The first probe comes early, staggered across the pool.
                let first = LoopTimer(loop: loop) { [unowned self, unowned target] in self.tick(target) }
                first.schedule(milliseconds: 1 + Int64(position) * intervalMs / Int64(max(servers.count, 1)) / 4)
                firstTimers.append(first)
                targets.append(target)
            }
        }
    }

    private var firstTimers: [LoopTimer] = []

    /// Stops every timer; probes in flight finish without effect.
    func stop() {
        for t in targets { t.timer?.cancel(); t.timer = nil; t.confirmTimer?.cancel(); t.confirmTimer = nil }
        firstTimers.removeAll()
        targets.removeAll()
    }

    /// A client reported `server` (an index into the snapshot's servers) as not answering: probe it
    /// now instead of at its next tick. Nothing happens when a probe of it is in flight, when it was
    /// probed on request less than `minimumRequestGapMs` ago (clients cannot flood it), or when it has
    /// no active check. The outcome counts like any probe: only `fall` failed probes take it down, so
    /// a server that answers its probes stays up whatever clients say. When this probe fails, up to
    /// `fall - 1` more follow, `minimumRequestGapMs` apart, so a server that really stopped is known
    /// down in a fraction of a second instead of `fall` intervals.
    func probeNow(server: Int) {
        guard let target = targets.first(where: { $0.server.index == server }), target.check.kind != .none,
              !target.inFlight else { return }
        let now = loop.monotonicMilliseconds
        if let last = target.lastRequested, now - last < Self.minimumRequestGapMs { return }
        target.lastRequested = now
        target.confirmations = max(0, target.check.fall - 1)
        log("weir: server \(target.server.config.id) reported by a client (assign?failed=): probing it now")
        target.inFlight = true
        probe(target)
    }

    static let minimumRequestGapMs: Int64 = 100

    /// After a failed probe that a client's report started: the next confirming probe, if one is due.
    private func confirmIfDue(_ target: Target, failed: Bool) {
        guard failed, target.confirmations > 0, target.machine.isUp else {
            target.confirmations = 0
            return
        }
        target.confirmations -= 1
        let timer = LoopTimer(loop: loop) { [unowned self, unowned target] in
            guard !target.inFlight, target.timer != nil else { return }
            target.inFlight = true
            self.probe(target)
        }
        timer.schedule(milliseconds: Self.minimumRequestGapMs)
        target.confirmTimer = timer
    }

    private func tick(_ target: Target) {
        let server = target.server
        if server.takePassiveDown() {
            target.machine.forceDown()
            target.lastFailure = "\(server.consecutivePassiveFailures) consecutive failures on client traffic"
            log(LogLevel.warning.tag + "weir: server \(server.config.id) is down: \(target.lastFailure)")
        }
        switch target.check.kind {
        case .none:
            // No active check: a server taken down by passive failures gets traffic again one interval later.
            if !server.isHealthy {
                server.setHealth(up: true, now: clock.nowNanoseconds)
                log(LogLevel.notice.tag + "weir: server \(server.config.id) is back (no health check configured; retried after passive failures)")
            }
        case .tcp, .http:
            guard !target.inFlight else { return }
            target.inFlight = true
            probe(target)
        }
    }

    private func probe(_ target: Target) {
        let server = target.server
        let check = target.check
        let address = server.config.address
        var request: [UInt8]? = nil
        if check.kind == .http {
            let host = check.host ?? address.description
            request = Array("\(check.method) \(check.path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: weir-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n".utf8)
        }
        _ = HTTPExchange(loop: loop, host: address.host, port: Int(address.port), request: request,
                         tls: check.kind == .http ? target.tls : nil, serverName: target.serverName,
                         requestWasHEAD: check.method == "HEAD", preface: target.proxyPreface,
                         timeoutMilliseconds: max(1, check.timeout.milliseconds)) { [weak self, weak target] outcome in
            guard let self, let target else { return }
            target.inFlight = false
            self.evaluate(outcome, for: target)
        }
    }

    private func evaluate(_ outcome: HTTPExchange.Outcome, for target: Target) {
        let now = clock.nowNanoseconds
        var failure: String? = nil
        switch outcome {
        case .connected:
            break
        case .failed(let why):
            failure = why
        case .response(let head, let body):
            let check = target.check
            if !check.expectStatus.contains(where: { $0.contains(head.status) }) {
                failure = "status \(head.status)"
            } else if let expected = check.expectBody, !String(decoding: body, as: UTF8.self).contains(expected) {
                failure = "body does not contain \"\(expected)\""
            }
            let report = LoadReport(head: head, body: body)
            if failure == nil, !report.isEmpty {
                target.server.recordReport(load: report.load, state: report.state, now: now)
            }
        }
        if target.machine.record(success: failure == nil) {
            target.server.setHealth(up: target.machine.isUp, now: now)
            if target.machine.isUp {
                log(LogLevel.notice.tag + "weir: server \(target.server.config.id) is up (\(target.check.rise) good probes)")
            } else {
                log(LogLevel.warning.tag + "weir: server \(target.server.config.id) is down: \(failure ?? "probe failed") (\(target.check.fall) failed probes)")
            }
        }
        if let failure { target.lastFailure = failure }
        confirmIfDue(target, failed: failure != nil)
    }
}
