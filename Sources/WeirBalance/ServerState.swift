import Atomics
import Synchronization
import WeirConfig

/// One backend server as the balancer sees it: its configuration, its pool's settings, and live
/// state shared by all workers (atomics, no locks). Created per configuration snapshot.
///
/// Writers: worker threads update `inFlight`, `totalRequests`, `failures` and the passive-failure
/// counter; the control thread (health checks, reports, operator) updates health, reports and the
/// admin condition. Everything else only reads.
public final class ServerState: Sendable {
    /// The pool settings a server needs to judge itself, taken from its `[[pool]]` at construction.
    public struct PoolSettings: Sendable, Equatable {
        /// `passive_failures`: consecutive failed attempts that mark the server down; 0 = off.
        public var passiveFailures: Int
        /// `slow_start`, in nanoseconds; 0 = off.
        public var slowStartNanoseconds: UInt64
        /// How long a load report counts as fresh: 3 × the pool's probe interval.
        public var reportMaxAgeNanoseconds: UInt64
        /// Reports come from beacons: requests routed to the server since its last report are added
        /// to that report until the next one (so a burst is not all sent to the same server).
        public var herding: Bool

        public init(passiveFailures: Int, slowStartNanoseconds: UInt64, reportMaxAgeNanoseconds: UInt64, herding: Bool = false) {
            self.passiveFailures = max(0, passiveFailures)
            self.slowStartNanoseconds = slowStartNanoseconds
            self.reportMaxAgeNanoseconds = reportMaxAgeNanoseconds
            self.herding = herding
        }

        /// The settings of `pool`: its passive_failures, slow_start and 3 × health.interval (or its
        /// monitor's max_age).
        public init(pool: Pool) {
            let interval = pool.health.interval.weirNanoseconds
            var (maxAge, overflow) = interval.multipliedReportingOverflow(by: 3)
            // A pool with a monitor: its reports count for the monitor's max_age.
            if let monitor = pool.monitor { (maxAge, overflow) = (monitor.effectiveMaxAge.weirNanoseconds, false) }
            self.init(passiveFailures: pool.passiveFailures,
                      slowStartNanoseconds: pool.slowStart.weirNanoseconds,
                      reportMaxAgeNanoseconds: overflow ? .max : maxAge,
                      herding: pool.loadSource == .beacons)
        }

        /// The settings of a pool whose reports are beacons: a report counts as fresh for
        /// `deadAfter` intervals (after that the member is off-line anyway).
        public init(pool: Pool, group: GroupSettings) {
            self.init(pool: pool)
            let (maxAge, overflow) = group.interval.weirNanoseconds.multipliedReportingOverflow(by: UInt64(max(1, group.deadAfter)))
            reportMaxAgeNanoseconds = overflow ? .max : maxAge
        }

        /// The settings of a pool with every key at its default.
        public static var defaults: PoolSettings { PoolSettings(pool: Pool(name: "", servers: [])) }
    }

    public let config: Server
    /// Index of this server in `RoutingSnapshot.servers`.
    public let index: Int
    public let settings: PoolSettings
    /// What a server's state object carries from one configuration to the next: everything that
    /// changes at run time (counters, health, reports, the operator's condition, slow start, lending).
    /// A reload that keeps a server's id in the same pool hands its `Live` to the new `ServerState`,
    /// so requests in flight on the old snapshot and new ones on the new count in the same place.
    ///
    /// The atomics are `UnsafeAtomic`s (a pointer each, freed in `deinit`), not `ManagedAtomic`s:
    /// a `ManagedAtomic` is an object of its own, and every read of one on the request path cost a
    /// retain and a release of it.
    public final class Live: Sendable {
        let inFlight = UnsafeAtomic<Int>.create(0)
        /// Requests the other gateways of the group have in flight here (`[group] share_load`),
        /// summed over their fresh beacons; written by the control thread, read by the workers.
        let remoteInFlight = UnsafeAtomic<Int>.create(0)
        let totalRequests = UnsafeAtomic<Int>.create(0)
        let redirected = UnsafeAtomic<Int>.create(0)
        let failures = UnsafeAtomic<Int>.create(0)
        let healthUp = UnsafeAtomic<Bool>.create(true)
        let adminCondition = UnsafeAtomic<UInt8>.create(ServerState.noCondition)
        let reportCondition = UnsafeAtomic<UInt8>.create(ServerState.noCondition)
        let reportLoadBits = UnsafeAtomic<UInt64>.create(0)
        let reportTime = UnsafeAtomic<UInt64>.create(ServerState.never)
        /// When the current slow start began; `never` when there is none (up from the start, or off).
        let slowStartSince = UnsafeAtomic<UInt64>.create(ServerState.never)
        let passiveFailureCount = UnsafeAtomic<Int>.create(0)
        let passiveDownPending = UnsafeAtomic<Bool>.create(false)
        /// Requests routed here since the last load report (beacon pools only; see `PoolSettings.herding`).
        let routedSinceReport = UnsafeAtomic<Int>.create(0)
        /// The capacity the server last reported (0: none, use the configured one).
        let reportedCapacity = UnsafeAtomic<Int>.create(0)
        /// The path patterns the server serves (empty: every path), from the configuration or its beacons.
        let servedPatterns = Mutex<[[UInt8]]>([])
        let servesEveryPath = UnsafeAtomic<Bool>.create(true)

        /// The pool this server is lent to (index into `RoutingSnapshot.pools`), -1 when none.
        let lentPool = UnsafeAtomic<Int>.create(-1)
        let lendCount = UnsafeAtomic<Int>.create(0)
        /// Health changes (up → down or down → up, by probes or passive failures), for /metrics.
        let healthTransitions = UnsafeAtomic<Int>.create(0)

        public init() {}

        deinit {
            _ = inFlight.destroy()
            _ = remoteInFlight.destroy()
            _ = totalRequests.destroy()
            _ = redirected.destroy()
            _ = failures.destroy()
            _ = healthUp.destroy()
            _ = adminCondition.destroy()
            _ = reportCondition.destroy()
            _ = reportLoadBits.destroy()
            _ = reportTime.destroy()
            _ = slowStartSince.destroy()
            _ = passiveFailureCount.destroy()
            _ = passiveDownPending.destroy()
            _ = routedSinceReport.destroy()
            _ = reportedCapacity.destroy()
            _ = servesEveryPath.destroy()
            _ = lentPool.destroy()
            _ = lendCount.destroy()
            _ = healthTransitions.destroy()
        }
    }

    /// The run-time state, shared with the server's state objects of earlier snapshots.
    public let live: Live
    /// Requests currently being forwarded to this server, summed over workers (and snapshots).
    @inline(__always) public var inFlight: UnsafeAtomic<Int> { live.inFlight }
    /// Requests sent to this server since it was first configured.
    public var totalRequests: UnsafeAtomic<Int> { live.totalRequests }
    /// Redirect-mode answers that sent a client to this server.
    public var redirected: UnsafeAtomic<Int> { live.redirected }
    /// Failed attempts (connect refused, reset, timeout).
    public var failures: UnsafeAtomic<Int> { live.failures }

    fileprivate static let noCondition: UInt8 = 0xFF
    fileprivate static let never: UInt64 = .max

    /// `live`: the run-time state of this server's object in the previous snapshot (a reload), or nil
    /// for a server new to the process.
    public init(config: Server, index: Int, settings: PoolSettings = .defaults, live: Live? = nil) {
        self.live = live ?? Live()
        self.config = config
        self.index = index
        self.settings = settings
    }

    // MARK: - Load

    /// Worker threads: a request is being sent to this server (in-flight +1, total +1).
    public func requestStarted() {
        inFlight.wrappingIncrement(ordering: .relaxed)
        totalRequests.wrappingIncrement(ordering: .relaxed)
    }

    /// Worker threads: a request sent here has finished, successfully or not (in-flight −1).
    public func requestFinished() {
        inFlight.wrappingDecrement(ordering: .relaxed)
    }

    /// Current in-flight requests (a plain read of `inFlight`).
    public var inFlightCount: Int { inFlight.load(ordering: .relaxed) }

    /// Requests the other gateways of the group have in flight here (0 unless `[group] share_load`).
    public var remoteInFlightCount: Int { live.remoteInFlight.load(ordering: .relaxed) }

    /// This gateway's in-flight requests plus the other gateways' (the group's view).
    public var groupInFlightCount: Int { inFlightCount + remoteInFlightCount }

    /// Control thread: what the other gateways' fresh beacons report in flight here (≥ 0).
    public func setRemoteInFlight(_ count: Int) {
        let value = max(0, count)
        if live.remoteInFlight.load(ordering: .relaxed) != value { live.remoteInFlight.store(value, ordering: .relaxed) }
    }

    /// In-flight requests as a fraction of capacity: this gateway's own count (no delay) plus what
    /// the other gateways of the group report (`share_load`; 0 otherwise).
    public var load: Double {
        Double(inFlight.load(ordering: .relaxed) &+ live.remoteInFlight.load(ordering: .relaxed)) / Double(max(config.capacity, 1))
    }

    /// The load to balance on: the larger of a fresh report (younger than 3 probe intervals) and
    /// in-flight / capacity. For beacon reports (`settings.herding`) the report is first corrected by
    /// the requests routed here since it was sent: each adds 1 / the reported capacity.
    public func effectiveLoad(now: UInt64) -> Double {
        let own = load
        guard let report = reportedLoad(now: now, maxAge: settings.reportMaxAgeNanoseconds) else { return own }
        guard settings.herding else { return max(report.load, own) }
        let corrected = Herding.correctedLoad(reported: report.load, capacity: effectiveCapacity,
                                              routedSinceReport: live.routedSinceReport.load(ordering: .relaxed))
        return max(corrected, own)
    }

    /// Worker threads: a request was routed here (forwarded or redirected); counted against the last
    /// report until the next one (herding correction). A no-op unless `settings.herding`.
    public func requestRouted() {
        guard settings.herding else { return }
        live.routedSinceReport.wrappingIncrement(ordering: .relaxed)
    }

    /// Requests routed here since the last report (what the herding correction adds).
    public var routedSinceLastReport: Int { live.routedSinceReport.load(ordering: .relaxed) }

    /// Control thread: a beacon's capacity (≥ 1; other values are ignored).
    public func recordCapacity(_ capacity: Int) {
        if capacity >= 1 { live.reportedCapacity.store(capacity, ordering: .relaxed) }
    }

    /// The capacity loads are relative to: the reported one, else the configured one.
    public var effectiveCapacity: Int {
        let reported = live.reportedCapacity.load(ordering: .relaxed)
        return reported > 0 ? reported : config.capacity
    }

    // MARK: - Paths served

    /// Sets the path patterns the server serves ("/banking/*" globs or "/api/" prefixes, as route
    /// paths); empty means every path. Any thread.
    public func setServedPaths(_ patterns: [String]) {
        let bytes = patterns.map { Array($0.utf8) }
        live.servedPatterns.withLock { $0 = bytes }
        live.servesEveryPath.store(patterns.isEmpty, ordering: .releasing)
    }

    /// The patterns set by `setServedPaths` (empty: every path).
    public var servedPaths: [String] {
        live.servedPatterns.withLock { $0.map { String(decoding: $0, as: UTF8.self) } }
    }

    /// Whether the server serves `path` (origin-form, query included), by the route path rules.
    public func serves(path: UnsafeRawBufferPointer) -> Bool {
        if live.servesEveryPath.load(ordering: .acquiring) { return true }
        return live.servedPatterns.withLock { patterns in patterns.contains { CompiledRoute.takes(path, pattern: $0) } }
    }

    /// Records a probe response's load report (`Weir-Load` header or JSON body). `load` is a fraction
    /// of capacity, clamped to 0...∞ (NaN is ignored). `state` nil leaves the reported state as it was
    /// (initially: nothing reported, i.e. up); `.up` clears an earlier drain/maint/down report.
    public func recordReport(load: Double?, state: ServerCondition?, now: UInt64) {
        if let load, !load.isNaN {
            live.reportLoadBits.store(max(0, load).bitPattern, ordering: .relaxed)
            live.reportTime.store(now, ordering: .releasing)
            if settings.herding { live.routedSinceReport.store(0, ordering: .relaxed) }
        }
        if let state {
            live.reportCondition.store(state == .up ? Self.noCondition : state.rawValue, ordering: .relaxed)
        }
    }

    /// The last reported load and its age; nil when there is none or it is older than `maxAge`.
    /// (A reader racing the control thread may pair a new load with the previous time or the reverse,
    /// for one decision; both are recent values.)
    public func reportedLoad(now: UInt64, maxAge: UInt64) -> (load: Double, ageNanoseconds: UInt64)? {
        let time = live.reportTime.load(ordering: .acquiring)
        guard time != Self.never else { return nil }
        let age = now > time ? now - time : 0
        guard age <= maxAge else { return nil }
        return (Double(bitPattern: live.reportLoadBits.load(ordering: .relaxed)), age)
    }

    // MARK: - Condition

    /// Effective condition: the most restrictive of health (up/down), the operator's condition and
    /// the last reported state (up < drain < down < maint).
    public var condition: ServerCondition {
        var worst: UInt8 = live.healthUp.load(ordering: .relaxed) ? ServerCondition.up.rawValue : ServerCondition.down.rawValue
        let admin = live.adminCondition.load(ordering: .relaxed)
        if admin != Self.noCondition, admin > worst { worst = admin }
        let reported = live.reportCondition.load(ordering: .relaxed)
        if reported != Self.noCondition, reported > worst { worst = reported }
        return ServerCondition(rawValue: worst) ?? .down
    }

    /// The probe/passive view: false after health checks or passive failures took it down.
    public var isHealthy: Bool { live.healthUp.load(ordering: .relaxed) }

    /// Control thread, after a `HealthMachine` transition. Coming up (from down) starts slow start at
    /// `now`, clears the passive-failure counter and forgets a state the server reported before it
    /// went down (its next report says it again if it still holds).
    public func setHealth(up: Bool, now: UInt64) {
        let wasUp = live.healthUp.exchange(up, ordering: .relaxed)
        if wasUp != up { live.healthTransitions.wrappingIncrement(ordering: .relaxed) }
        guard up, !wasUp else { return }
        live.passiveFailureCount.store(0, ordering: .relaxed)
        live.passiveDownPending.store(false, ordering: .relaxed)
        live.reportCondition.store(Self.noCondition, ordering: .relaxed)
        live.slowStartSince.store(settings.slowStartNanoseconds == 0 ? Self.never : now, ordering: .relaxed)
    }

    /// An operator's condition (drain or maint; `.down` also works), nil = none.
    public func setAdminCondition(_ condition: ServerCondition?) {
        let value = condition.map { $0 == .up ? Self.noCondition : $0.rawValue } ?? Self.noCondition
        live.adminCondition.store(value, ordering: .relaxed)
    }

    /// The operator's condition, nil when none.
    public var adminConditionValue: ServerCondition? {
        let value = live.adminCondition.load(ordering: .relaxed)
        return value == Self.noCondition ? nil : ServerCondition(rawValue: value)
    }

    // MARK: - Slow start

    /// A factor 0 < f ≤ 1 that ramps linearly from `minimumSlowStartFactor` to 1 over the pool's
    /// slow_start after the server came up; 1 when slow start is off or over.
    public func slowStartFactor(now: UInt64) -> Double {
        let since = live.slowStartSince.load(ordering: .relaxed)
        let span = settings.slowStartNanoseconds
        guard since != Self.never, span > 0 else { return 1 }
        let elapsed = now > since ? now - since : 0
        guard elapsed < span else { return 1 }
        return max(Self.minimumSlowStartFactor, Double(elapsed) / Double(span))
    }

    /// The factor right after coming up (so that it is never 0).
    public static let minimumSlowStartFactor = 0.01

    // MARK: - Passive failures

    /// Worker threads: one more consecutive failed attempt. Returns true when this one reached the
    /// pool's passive_failures and marked the server down; the control thread then sees
    /// `takePassiveDown()` and calls `HealthMachine.forceDown()`. Always false when passive_failures is 0.
    @discardableResult
    public func recordPassiveFailure() -> Bool {
        let limit = settings.passiveFailures
        guard limit > 0 else { return false }
        let count = live.passiveFailureCount.wrappingIncrementThenLoad(ordering: .relaxed)
        guard count == limit else { return false }          // exactly one thread sees the crossing
        guard live.healthUp.compareExchange(expected: true, desired: false, ordering: .relaxed).exchanged else { return false }
        live.healthTransitions.wrappingIncrement(ordering: .relaxed)
        live.passiveDownPending.store(true, ordering: .releasing)
        return true
    }

    /// Worker threads: a successful attempt resets the consecutive-failure counter.
    public func recordPassiveSuccess() {
        if live.passiveFailureCount.load(ordering: .relaxed) != 0 { live.passiveFailureCount.store(0, ordering: .relaxed) }
    }

    /// Control thread: true once after a passive mark-down (then call `HealthMachine.forceDown()`).
    public func takePassiveDown() -> Bool {
        live.passiveDownPending.exchange(false, ordering: .acquiring)
    }

    public var consecutivePassiveFailures: Int { live.passiveFailureCount.load(ordering: .relaxed) }

    /// Health changes since the server was first configured (up → down and down → up).
    public var healthTransitions: Int { live.healthTransitions.load(ordering: .relaxed) }

    // MARK: - Lending

    // The pool a server is lent to is written by the control thread's lending service and read
    // (one atomic load) by every pick of that pool.

    /// The pool this server is lent to, nil when it serves only its own.
    public var lentTo: Int? {
        let pool = live.lentPool.load(ordering: .relaxed)
        return pool < 0 ? nil : pool
    }

    /// Whether the server is lent to `pool` now (the per-request check of a lent candidate).
    @inline(__always)
    public func isLent(to pool: Int) -> Bool { live.lentPool.load(ordering: .relaxed) == pool }

    /// Control thread: lends the server to `pool` (counted), or gives it back (nil).
    public func setLent(to pool: Int?) {
        live.lentPool.store(pool ?? -1, ordering: .relaxed)
        if pool != nil { live.lendCount.wrappingIncrement(ordering: .relaxed) }
    }

    /// A reload: the lending mark of a carried-over server names a pool of the old snapshot.
    static func clearLending(_ live: Live) { live.lentPool.store(-1, ordering: .relaxed) }

    /// How many times the server was lent since the snapshot was made.
    public var timesLent: Int { live.lendCount.load(ordering: .relaxed) }

    // MARK: - max_conns

    /// True when the server has `maxConns` requests in flight (false when unlimited).
    public var isFull: Bool {
        guard let maxConns = config.maxConns else { return false }
        return inFlight.load(ordering: .relaxed) >= maxConns
    }
}
