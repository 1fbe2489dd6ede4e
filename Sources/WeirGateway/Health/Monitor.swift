import WeirBalance
import WeirConfig
import WeirIO

/// Polls each pool's `[pool.monitor]` on the control thread's loop (like the prober: no worker ever
/// waits) and records each server's load and state from a good answer as a report. A monitor that
/// fails is counted, logged (rate-limited) and ignored: probes and passive health still rule, its
/// loads age out by `max_age`, and the states it set are cleared once its last good answer is older
/// than that. It never marks a server down by failing, nor the whole pool down (an answer saying
/// every server is down, while probes reach one, counts as a failure and its states are ignored).
final class Monitor {
    private let loop: EventLoop
    private let snapshot: RoutingSnapshot
    private let clock: BalanceClock
    private let log: (String) -> Void
    private var targets: [Target] = []
    /// The largest answer read (Weir's own /status of a large configuration fits).
    static let maxAnswerBytes = 1 << 20
    /// At most one "still failing" line per this many nanoseconds per monitor.
    static let logEveryNanoseconds: UInt64 = 30_000_000_000

    private final class Target {
        let pool: Int
        let config: PoolMonitor
        let servers: [String: ServerState]
        let maxAge: UInt64
        var timer: LoopTimer?
        var inFlight = false
        var lastSuccess: UInt64?
        var polls = 0
        var failures = 0
        var unknownIDs = 0
        var lastError: String?
        var lastLog: UInt64?
        var failingSinceLog = 0
        /// Servers this monitor gave a state other than up, and when (cleared when it goes stale).
        var statesSet: [Int: UInt64] = [:]
        init(pool: Int, config: PoolMonitor, servers: [String: ServerState]) {
            self.pool = pool
            self.config = config
            self.servers = servers
            maxAge = config.effectiveMaxAge.weirNanoseconds
        }
    }

    init(loop: EventLoop, snapshot: RoutingSnapshot, clock: BalanceClock, log: @escaping (String) -> Void) {
        self.loop = loop
        self.snapshot = snapshot
        self.clock = clock
        self.log = log
    }

    /// Starts polling every pool that has a monitor: the first poll at once, then every interval.
    func start() {
        for (index, pool) in snapshot.configuration.pools.enumerated() {
            guard let config = pool.monitor else { continue }
            var servers: [String: ServerState] = [:]
            for s in snapshot.pools[index].servers { servers[snapshot.servers[s].config.id] = snapshot.servers[s] }
            let target = Target(pool: index, config: config, servers: servers)
            target.timer = LoopTimer(loop: loop, repeating: true) { [unowned self, unowned target] in self.tick(target) }
            target.timer?.schedule(milliseconds: max(1, config.interval.milliseconds))
            targets.append(target)
            tick(target)
        }
    }

    /// Stops every timer; a poll in flight finishes without effect.
    func stop() {
        for t in targets { t.timer?.cancel(); t.timer = nil }
        targets.removeAll()
    }

    /// Per pool index with a monitor: what `/status` shows about it.
    func status(now: UInt64) -> [Int: StatusDocument.MonitorEntry] {
        var out: [Int: StatusDocument.MonitorEntry] = [:]
        for t in targets {
            let age = t.lastSuccess.map { Int((now > $0 ? now - $0 : 0) / 1_000_000) }
            out[t.pool] = StatusDocument.MonitorEntry(url: t.config.url, last_success_age_ms: age, polls: t.polls,
                                                      failures: t.failures, unknown_ids: t.unknownIDs,
                                                      last_error: t.lastError)
        }
        return out
    }

    private func tick(_ target: Target) {
        expireStates(target, now: clock.nowNanoseconds)
        guard !target.inFlight else { return }
        target.inFlight = true
        poll(target)
    }

    private func poll(_ target: Target) {
        let config = target.config
        let request = Array("GET \(config.path) HTTP/1.1\r\nHost: \(config.address.description)\r\nUser-Agent: weir-monitor\r\nAccept: application/json\r\nConnection: close\r\n\r\n".utf8)
        _ = HTTPExchange(loop: loop, host: config.address.host, port: Int(config.address.port), request: request,
                         timeoutMilliseconds: max(1, config.timeout.milliseconds),
                         maxBody: Self.maxAnswerBytes) { [weak self, weak target] outcome in
            guard let self, let target else { return }
            target.inFlight = false
            self.evaluate(outcome, for: target)
        }
    }

    private func evaluate(_ outcome: HTTPExchange.Outcome, for target: Target) {
        target.polls += 1
        switch outcome {
        case .connected:
            failed(target, "no answer")
        case .failed(let why):
            failed(target, why)
        case .response(let head, let body):
            guard head.status == 200 else { failed(target, "status \(head.status)"); return }
            switch MonitorAnswer.parse(body) {
            case .failure(let failure): failed(target, failure.reason)
            case .success(let answer) where answer.saysEveryServerDown(of: target.servers.keys)
                                             && target.servers.values.contains(where: \.isHealthy):
                // Probes still reach some server: the monitor's view is the one in doubt.
                record(answer.withoutStates, to: target, now: clock.nowNanoseconds)
                failed(target, "it says every server is down while probes reach some; its states are ignored")
            case .success(let answer): apply(answer, to: target)
            }
        }
    }

    /// A good answer: each known server's load and state become its report.
    private func apply(_ answer: MonitorAnswer, to target: Target) {
        let now = clock.nowNanoseconds
        if target.lastError != nil {
            log(LogLevel.notice.tag + "weir: monitor \(target.config.url) of pool \(poolName(target)) answers again")
        }
        target.lastSuccess = now
        target.lastError = nil
        target.lastLog = nil
        target.failingSinceLog = 0
        record(answer, to: target, now: now)
    }

    /// Each known server's load and state from `answer` become its report; unknown ids are counted.
    private func record(_ answer: MonitorAnswer, to target: Target, now: UInt64) {
        for (id, report) in answer.reports {
            guard let server = target.servers[id] else { target.unknownIDs += 1; continue }
            server.recordReport(load: report.load, state: report.state, now: now)
            if let state = report.state {
                if state == .up { target.statesSet[server.index] = nil } else { target.statesSet[server.index] = now }
            }
        }
    }

    /// A failed poll: counted and logged at most every 30 s; the reports age out on their own.
    private func failed(_ target: Target, _ why: String) {
        let now = clock.nowNanoseconds
        target.failures += 1
        target.lastError = why
        target.failingSinceLog += 1
        if let last = target.lastLog, now - last < Self.logEveryNanoseconds { return }
        let more = target.failingSinceLog > 1 ? " (\(target.failingSinceLog) failed polls)" : ""
        log(LogLevel.warning.tag + "weir: monitor \(target.config.url) of pool \(poolName(target)) failed: \(why)\(more); ignored, probes decide")
        target.lastLog = now
        target.failingSinceLog = 0
    }

    /// Once the last good answer is older than max_age, the drain/maint/down states it gave are cleared.
    private func expireStates(_ target: Target, now: UInt64) {
        guard !target.statesSet.isEmpty else { return }
        for (index, since) in target.statesSet where now > since && now - since > target.maxAge {
            snapshot.servers[index].recordReport(load: nil, state: .up, now: now)
            target.statesSet[index] = nil
            log("weir: monitor \(target.config.url): its state for server \(snapshot.servers[index].config.id) expired")
        }
    }

    private func poolName(_ target: Target) -> String { snapshot.configuration.pools[target.pool].name }
}
