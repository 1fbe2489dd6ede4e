import Foundation
import WeirBalance
import WeirConfig
import WeirIO

/// The gateway process: binds every listener on every worker, runs the workers on their own
/// threads, and runs the control loop (signals, probes, admin, reloads, drain) on the calling thread.
public final class Gateway {
    private let configuration: WeirConfiguration
    private let log: (String) -> Void
    private let services: [ControlService]
    private let reader: (() throws -> WeirConfiguration)?
    private let runtimeState: RuntimeStateStore?

    /// `log` receives operational messages (one line each); the access log goes where the configuration says.
    /// `services` run on the control thread (a peer group's beacons, see `ControlService`).
    /// `reader` reads conf.d again for a reload (SIGHUP, `POST /reload`), as `ConfigLoader` validates
    /// it; nil: reloads are refused. `runtimeState`: where the admin API keeps runtime changes; its
    /// state is already laid over `configuration`, and is laid over every configuration `reader` reads.
    public init(configuration: WeirConfiguration, log: @escaping (String) -> Void, services: [ControlService] = [],
                reader: (() throws -> WeirConfiguration)? = nil, runtimeState: RuntimeStateStore? = nil) {
        self.runtimeState = runtimeState
        self.configuration = configuration
        self.log = log
        self.services = services
        self.reader = reader
    }

    /// Loads every certificate and key the configuration names (as `run` would), binding nothing.
    /// Throws an error naming the file and OpenSSL's reason for the first one that cannot be used.
    public static func checkCertificates(_ configuration: WeirConfiguration) throws {
        _ = try TLSSetup(configuration)
    }

    /// Number of worker threads: the configured count, or one per core when it is 0.
    public var workerCount: Int {
        configuration.global.workers > 0 ? configuration.global.workers : max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// Binds, serves until SIGTERM or SIGINT, drains, and returns the process exit status (0 after
    /// a drain, also when the drain timeout cut requests short; it says so in the log).
    /// Throws when a listener cannot be bound or the access log cannot be opened; nothing is served then.
    public func run() throws -> Int32 {
        ProcessSetup.ignoreSIGPIPE()
        let clock = MonotonicClock()
        let stats = GatewayStats()
        let sink = try AccessLogFile.open(configuration.global.accessLog)
        let sticky = StickyContext(key: try StickySecret.resolve(configuration, log: log),
                                   capacity: configuration.sticky.sourceTableSize,
                                   unconfirmedCapacity: configuration.sticky.unconfirmedTableSize,
                                   unconfirmedIdleMs: Int64(configuration.sticky.unconfirmedTimeout.weirNanoseconds / 1_000_000))
        let snapshot = RoutingSnapshot(configuration: configuration, clock: clock)
        let slots = configuration.listeners.map(ListenerSlot.init)
        // Binary upgrade: a process started by `weir upgrade` takes the sockets it inherited (UpgradeChild.swift).
        let handOver = try UpgradeChild.adopt(workers: workerCount, log: log)
        let sockets = try ListenerBinding.bind(slots, workers: workerCount, freebind: configuration.peer != nil)
        let first = SharedGeneration(number: 1, configuration: configuration, snapshot: snapshot, tls: try TLSSetup(configuration),
                                     modes: ListenerModes(configuration.listeners),
                                     peer: services.lazy.compactMap { $0.peerContext(snapshot: snapshot) }.first, slots: slots,
                                     metrics: GenerationMetrics(snapshot: snapshot, listeners: configuration.listeners,
                                                                workers: workerCount))
        var workers: [Worker] = []
        for i in 0..<workerCount {
            workers.append(try Worker(index: i, generation: first, sockets: sockets[i], stats: stats, logSink: sink,
                                      clock: clock, log: log, sticky: sticky))
        }
        let control = try EventLoop()
        let upgrade = UpgradeControl(loop: control, log: log)
        let plane = ControlPlane(loop: control, clock: clock, log: log, services: services, workers: workers,
                                 current: first, stats: stats, reader: reader)
        // systemd: READY/RELOADING/STOPPING/STATUS and the watchdog over the workers' heartbeats.
        let systemd = SystemdService(loop: control, heartbeats: workers.map(\.heartbeat), log: log,
                                     snapshot: { plane.current.snapshot })
        plane.systemd = systemd
        // SIGHUP reloads conf.d (a broken one keeps the old one serving, and says why).
        let hup = SignalWatcher(loop: control, signal: SIGHUP) { _ = plane.reload(trigger: "SIGHUP") }
        // SIGUSR1 reopens the access log (logrotate's postrotate).
        let usr1 = SignalWatcher(loop: control, signal: SIGUSR1) { self.reopenAccessLog(workers) }
        var admin: AdminServer? = nil
        for service in services {
            service.shareUsers(UserExchange(sticky))
            try service.start(loop: control, snapshot: snapshot, clock: clock)
        }
        let adminUnixSocket = configuration.admin.unixSocket
        if configuration.admin.address != nil || adminUnixSocket != nil {
            var api = AdminAPI(generation: { plane.current }, stats: stats, sticky: sticky,
                               clock: { clock.nowNanoseconds }, wallMs: { control.wallClockMilliseconds }, log: log)
            let services = self.services
            api.groupStatus = { services.lazy.compactMap { $0.groupStatus() }.first }
            api.groupService = services.first { $0.beaconIntervalMilliseconds != nil }
            api.monitorStatus = { plane.monitorStatus(now: $0) }
            api.runtimeState = runtimeState
            api.reload = { plane.reload(trigger: "admin POST /reload") }
            api.lastReload = { plane.lastReload }
            api.lastReloadSeconds = { plane.lastReloadSeconds }
            api.upgrade = upgrade
            api.heartbeats = workers.map(\.heartbeat)
            api.startToken = try AdminToken.resolve(configuration, log: log)
            if let address = configuration.admin.address {
                api.openReads = AdminToken.isLoopback(address)
                admin = try AdminServer(loop: control, host: address.host, port: Int(address.port), api: api)
            } else if let path = adminUnixSocket {
                api.overUnixSocket = true
                admin = try AdminServer(loop: control, unixPath: path, mode: configuration.admin.socketMode,
                                        replaceLive: handOver != nil, api: api)
            }
        }
        let remaining = ManagedCounter(workers.count)
        for worker in workers {
            let box = UncheckedBox(worker)
            let name = "weir-worker-\(worker.index)"
            let thread = Thread {
                // The kernel-level name (top -H, /proc/PID/task/*/comm): Foundation's `name` does not set it on Linux.
                ThreadName.setCurrent(name)
                box.value.run {
                    if remaining.decrement() == 0 { control.execute { control.stop() } }
                }
            }
            thread.name = name
            thread.stackSize = 1 << 20
            thread.start()
        }
        plane.startTasks()
        var drainStartedMs: Int64 = 0
        var drainTimer: LoopTimer?
        let startDrain = { (signal: String) in
            if plane.draining {
                // The same stop often arrives twice at once (a terminal's Ctrl-C reaches the whole
                // process group, and a wrapper script passes it on): only a later one means "now".
                guard control.monotonicMilliseconds - drainStartedMs >= 1000 else { return }
                self.log(LogLevel.notice.tag + "weir: \(signal) again: stopping now")
                for w in workers { let box = UncheckedBox(w); w.loop.execute { box.value.stopNow() } }
                return
            }
            plane.draining = true
            drainStartedMs = control.monotonicMilliseconds
            systemd.stopping()
            upgrade.drainBegins()
            plane.stopTasks()
            for service in self.services { service.stop() }
            admin?.close()
            let drain = Settings(plane.current.configuration)
            self.log(LogLevel.notice.tag + "weir: \(signal): draining (up to \(plane.current.configuration.global.drainTimeout))")
            for w in workers { let box = UncheckedBox(w); w.loop.execute { box.value.beginDrain() } }
            drainTimer = LoopTimer(loop: control) {
                self.log(LogLevel.warning.tag + "weir: drain timeout reached: closing remaining connections")
                for w in workers { let box = UncheckedBox(w); w.loop.execute { box.value.stopNow() } }
            }
            drainTimer?.schedule(milliseconds: drain.drainMs)
        }
        let term = SignalWatcher(loop: control, signal: SIGTERM) { startDrain("SIGTERM") }
        let int = SignalWatcher(loop: control, signal: SIGINT) { startDrain("SIGINT") }
        upgrade.activate(workerLoops: workers.map(\.loop), drain: { startDrain("upgrade") }, isDraining: { plane.draining })
        // Said only now that every signal is watched: a SIGUSR2 or SIGTERM sent on this line (by
        // the old process of an upgrade, systemd, a test) must not meet the default action.
        let addresses = configuration.listeners.map { "\($0.name)=\($0.address)" }.joined(separator: " ")
        let adminNote = admin.map { _ in " (admin on \(configuration.admin.address.map { "\($0)" } ?? "unix:\(adminUnixSocket ?? "")"))" } ?? ""
        log(LogLevel.notice.tag + "weir: serving \(addresses) with \(workers.count) workers\(adminNote)")
        handOver?.serving(loop: control)
        systemd.ready()
        // What start-up alone needed of the code goes back; the serving code returns page by page.
        TextPages.releaseStartupPages()
        control.run()
        _ = (term, int, drainTimer, hup, usr1, systemd)
        log(LogLevel.notice.tag + "weir: stopped; \(stats.summary)")
        return 0
    }
}

extension Gateway {
    /// SIGUSR1: opens the access log's path again (after logrotate moved the file away); each
    /// worker, on its own loop, writes what it has pending to the old file and then writes to the
    /// new one, so no line is lost. When the path cannot be opened the old file stays in use.
    private func reopenAccessLog(_ workers: [Worker]) {
        let fresh: OutputFile?
        do {
            fresh = try AccessLogFile.reopen(configuration.global.accessLog)
        } catch {
            log(LogLevel.error.tag + "weir: SIGUSR1: \(error); still writing to the old file")
            return
        }
        for w in workers {
            let box = UncheckedBox(w)
            w.loop.execute { if let fresh { box.value.accessLog.reopen(fresh) } else { box.value.accessLog.flush() } }
        }
        log(LogLevel.notice.tag + (fresh == nil ? "weir: SIGUSR1: access log flushed (nothing to reopen)" : "weir: SIGUSR1: access log reopened"))
    }
}

/// A thread-safe countdown.
private final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int
    init(_ value: Int) { self.value = value }
    func decrement() -> Int { lock.lock(); defer { lock.unlock() }; value -= 1; return value }
}

/// Hands a worker to its own thread (it is used only there afterwards, or through its loop's `execute`).
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
