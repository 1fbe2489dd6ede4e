import Foundation
import WeirBalance
import WeirIO

/// What the gateway tells systemd, in one place on the control thread: `READY=1` once serving,
/// `RELOADING=1`/`READY=1` around a reload, `STOPPING=1` at the drain, a `STATUS=` line refreshed
/// every few seconds, and the watchdog (`ServiceWatchdog`). Everything is a no-op outside systemd.
final class SystemdService {
    /// How often the STATUS line is refreshed (servers going up and down show within this time).
    static let statusIntervalMs: Int64 = 5_000

    let notifier: ServiceNotifier
    private let snapshot: () -> RoutingSnapshot
    private var lastReload: String?
    private var statusTimer: LoopTimer?
    private var watchdog: ServiceWatchdog?

    /// `snapshot` is read at every refresh (the one in force after a reload).
    init(loop: EventLoop, heartbeats: [WorkerHeartbeat], log: @escaping (String) -> Void,
         snapshot: @escaping () -> RoutingSnapshot, notifier: ServiceNotifier = ServiceNotifier()) {
        self.notifier = notifier
        self.snapshot = snapshot
        _ = TestFault.current   // parsed (and announced) before any worker ticks
        guard notifier.isEnabled else { return }
        watchdog = ServiceWatchdog(loop: loop, notifier: notifier, heartbeats: heartbeats, log: log)
        statusTimer = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.notifier.status(self.statusLine()) }
    }

    /// Listeners bound, workers running.
    func ready() {
        guard notifier.isEnabled else { return }
        notifier.ready(status: statusLine())
        statusTimer?.schedule(milliseconds: Self.statusIntervalMs)
    }

    /// A reload begins.
    func reloading() { notifier.reloading() }

    /// A reload ended: `outcome` (e.g. "ok (configuration 3)") shows in STATUS from now on.
    func reloaded(_ outcome: String) {
        guard notifier.isEnabled else { return }
        lastReload = outcome
        notifier.readyAfterReload(status: statusLine())
    }

    /// The drain begins. The watchdog keeps pinging while the workers still draining turn (one
    /// that has finished no longer counts), in case systemd still watches during the stop.
    func stopping() {
        statusTimer?.cancel()
        notifier.stopping()
    }

    /// "serving 2 listeners, 3 of 4 servers up; last reload ok: ..."
    func statusLine() -> String {
        let snapshot = self.snapshot()
        let servers = snapshot.servers, listeners = snapshot.configuration.listeners.count
        let up = servers.lazy.filter { $0.condition == .up }.count
        let base = "serving \(listeners) listener\(listeners == 1 ? "" : "s"), \(up) of \(servers.count) servers up"
        return lastReload.map { "\(base); last reload \($0)" } ?? base
    }
}
