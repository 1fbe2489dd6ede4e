import Atomics
import Foundation
import WeirConfig
import WeirIO

/// One worker's sign of life: its 100 ms housekeeping timer (`Worker.tick`) bumps the count, the
/// control thread reads it. A worker whose loop has ended (drain) is `finished` and no longer
/// holds the watchdog back.
public final class WorkerHeartbeat: Sendable {
    private let count = ManagedAtomic<UInt64>(0)
    private let done = ManagedAtomic<Bool>(false)
    /// CLOCK_MONOTONIC at the last beat (start: creation), for `GET /health`'s heartbeat age.
    private let lastBeatNanoseconds = ManagedAtomic<UInt64>(MonotonicTime.nanoseconds())

    public init() {}

    /// Worker thread, every housekeeping tick. Also where the test-only fault switch blocks a worker.
    public func beat(worker: Int) {
        TestFault.current?.blockIfDue(worker: worker)
        count.wrappingIncrement(ordering: .relaxed)
        lastBeatNanoseconds.store(MonotonicTime.nanoseconds(), ordering: .relaxed)
    }

    /// Worker thread, once its loop has ended.
    public func finish() { done.store(true, ordering: .relaxed) }

    /// The count, or nil once the worker has finished.
    var reading: UInt64? { done.load(ordering: .relaxed) ? nil : count.load(ordering: .relaxed) }

    /// Milliseconds since the last beat at `now` (CLOCK_MONOTONIC ns), or nil once the worker has finished.
    func ageMilliseconds(now: UInt64) -> Int64? {
        guard !done.load(ordering: .relaxed) else { return nil }
        let last = lastBeatNanoseconds.load(ordering: .relaxed)
        return now > last ? Int64((now - last) / 1_000_000) : 0
    }
}

/// `WatchdogSec=`: pings `WATCHDOG=1` at half the period systemd sets in `$WATCHDOG_USEC`, but
/// only while every worker's event loop has turned since the previous check. A worker stuck in a
/// loop or a blocking call stops the pings, and systemd restarts the service: a hung gateway is
/// treated like a dead one. Runs on the control thread.
final class ServiceWatchdog {
    private let notifier: ServiceNotifier
    private let heartbeats: [WorkerHeartbeat]
    private let log: (String) -> Void
    private let intervalMs: Int64
    private var last: [UInt64?]
    private var timer: LoopTimer?
    private var withholding = false

    /// Nil when systemd asked for no watchdog (or for another process's, `$WATCHDOG_PID`).
    init?(loop: EventLoop, notifier: ServiceNotifier, heartbeats: [WorkerHeartbeat], log: @escaping (String) -> Void,
          environment: [String: String] = ProcessInfo.processInfo.environment) {
        guard notifier.isEnabled,
              let periodUs = Self.periodMicroseconds(environment: environment, pid: getpid()) else { return nil }
        self.notifier = notifier
        self.heartbeats = heartbeats
        self.log = log
        // Two housekeeping ticks (100 ms) at least between checks, or a healthy worker could look stuck.
        intervalMs = max(200, periodUs / 2_000)
        last = heartbeats.map { $0.reading }
        timer = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.check() }
        timer?.schedule(milliseconds: intervalMs)
        log("weir: systemd watchdog: WATCHDOG=1 every \(intervalMs) ms while every worker's loop turns")
    }

    /// `$WATCHDOG_USEC` when it is a positive number and `$WATCHDOG_PID`, if set, is `pid`.
    static func periodMicroseconds(environment: [String: String], pid: Int32) -> Int64? {
        guard let text = environment["WATCHDOG_USEC"], let period = Int64(text), period > 0 else { return nil }
        if let owner = environment["WATCHDOG_PID"], Int32(owner) != pid { return nil }
        return period
    }

    /// Workers whose count has not moved between two readings (a finished worker never counts).
    static func stalled(previous: [UInt64?], current: [UInt64?]) -> [Int] {
        current.indices.filter { i in current[i] != nil && current[i] == previous[i] }
    }

    private func check() {
        let now = heartbeats.map { $0.reading }
        let stuck = Self.stalled(previous: last, current: now)
        last = now
        if stuck.isEmpty {
            if withholding { log(LogLevel.notice.tag + "weir: systemd watchdog: every worker turns again: pinging") }
            withholding = false
            notifier.watchdog()
        } else if !withholding {
            withholding = true
            let names = stuck.map { "weir-worker-\($0)" }.joined(separator: ", ")
            log(LogLevel.error.tag + "weir: systemd watchdog: \(names) did not turn for \(intervalMs) ms: WATCHDOG=1 withheld")
        }
    }

    func stop() { timer?.cancel() }
}
