import WeirBalance
import WeirConfig
import WeirIO

/// The control thread's hold on the configuration in force: the current generation, the work
/// that runs per routing snapshot (health probes, monitors, lending, ticket-key rotation), and the
/// reload that replaces them all. Used on the control thread only.
final class ControlPlane {
    private let loop: EventLoop
    private let clock: MonotonicClock
    private let log: (String) -> Void
    private let services: [ControlService]
    private let workers: [Worker]
    private let reader: (() throws -> WeirConfiguration)?
    private let stats: GatewayStats
    /// The generation new exchanges start on.
    private(set) var current: SharedGeneration
    private var tasks: SnapshotTasks?
    /// Set when the drain begins: a reload is refused from then on.
    var draining = false
    /// The outcome of the last reload, nil before the first.
    private(set) var lastReload: ReloadResult?
    /// When the last reload was tried (Unix seconds), 0 before the first: for /metrics.
    private(set) var lastReloadSeconds: Int64 = 0
    /// Told when a reload begins and ends (RELOADING=1, READY=1 and the STATUS line under systemd).
    var systemd: SystemdService?

    init(loop: EventLoop, clock: MonotonicClock, log: @escaping (String) -> Void, services: [ControlService],
         workers: [Worker], current: SharedGeneration, stats: GatewayStats, reader: (() throws -> WeirConfiguration)?) {
        self.loop = loop
        self.clock = clock
        self.log = log
        self.services = services
        self.workers = workers
        self.current = current
        self.stats = stats
        self.reader = reader
    }

    /// Starts the per-snapshot work for the current generation (once the workers run).
    func startTasks() {
        tasks = SnapshotTasks(loop: loop, generation: current, clock: clock, log: log)
        tasks?.start()
    }

    /// Stops it (the drain begins).
    func stopTasks() {
        tasks?.stop()
        tasks = nil
    }

    /// Per pool index, its `[pool.monitor]` status, for /status.
    func monitorStatus(now: UInt64) -> [Int: StatusDocument.MonitorEntry] {
        tasks?.monitor.status(now: now) ?? [:]
    }

    /// Reads the configuration again and, when it is valid and its certificates load and its new
    /// listeners bind, makes it the current generation: workers start new exchanges on it, and the
    /// ones in flight finish on the one they started with. Otherwise nothing changes. Either way the
    /// result says what happened, and the log has it (`trigger` names what asked).
    func reload(trigger: String) -> ReloadResult {
        systemd?.reloading()
        let result = attemptReload()
        systemd?.reloaded(result.ok ? "ok (configuration \(current.number))" : "failed: \(result.message)")
        lastReload = result
        lastReloadSeconds = WallClock.milliseconds() / 1000
        (result.ok ? stats.reloads : stats.reloadsFailed).wrappingIncrement(ordering: .relaxed)
        log((result.ok ? LogLevel.notice : LogLevel.error).tag + "weir: \(trigger): " + result.message)
        return result
    }

    private func attemptReload() -> ReloadResult {
        guard !draining else { return ReloadResult(ok: false, message: "reload refused: the gateway is draining") }
        guard let reader else { return ReloadResult(ok: false, message: "reload refused: this process cannot read its configuration again") }
        let keep = "reload FAILED, still serving the previous configuration: "
        let old = current
        let configuration: WeirConfiguration
        let tls: TLSSetup
        do {
            configuration = try reader()
            tls = try TLSSetup(configuration)
        } catch {
            return ReloadResult(ok: false, message: keep + "\(error)")
        }
        let changes = ConfigurationChanges(from: old.configuration, to: configuration)
        // Listeners: a slot that serves the same listener keeps its sockets; new ones are bound now.
        let slots = configuration.listeners.map { listener in old.slots.first { $0.serves(listener) } ?? ListenerSlot(listener) }
        let fresh = slots.filter { slot in !old.slots.contains { $0 === slot } }
        let sockets: [[(ListenerSlot, Int32)]]
        do {
            sockets = try ListenerBinding.bind(fresh, workers: workers.count, freebind: configuration.peer != nil)
        } catch {
            return ReloadResult(ok: false, message: keep + "\(error)")
        }
        let snapshot = RoutingSnapshot(configuration: configuration, clock: clock, previous: old.snapshot)
        let next = SharedGeneration(
            number: old.number + 1, configuration: configuration, snapshot: snapshot, tls: tls,
            modes: ListenerModes(configuration.listeners, previous: old.modes, previousListeners: old.configuration.listeners),
            peer: services.lazy.compactMap { $0.peerContext(snapshot: snapshot) }.first,
            slots: slots,
            metrics: GenerationMetrics(snapshot: snapshot, listeners: configuration.listeners, workers: workers.count,
                                       previous: old.metrics))
        current = next
        for service in services { service.adopt(snapshot: snapshot) }
        tasks?.stop()
        tasks = SnapshotTasks(loop: loop, generation: next, clock: clock, log: log)
        tasks?.start()
        for (i, worker) in workers.enumerated() {
            let box = UncheckedBox(worker), adding = UncheckedBox(sockets[i])
            worker.loop.execute { box.value.install(next, adding: adding.value) }
        }
        return ReloadResult(ok: true, message: "reloaded (configuration \(next.number)): \(changes.summary)")
    }
}

/// The control thread's work for one routing snapshot: health probes (and the immediate probe a
/// client's failure report asks for), `[pool.monitor]` sources, lending, and the rotation of the
/// TLS listeners' ticket keys. A reload stops one and starts the next.
final class SnapshotTasks {
    let prober: Prober
    let monitor: Monitor
    let lending: LendingService
    private var snapshot: RoutingSnapshot { generation.snapshot }
    private let loop: EventLoop
    private let generation: SharedGeneration
    private var rotations: [LoopTimer] = []

    init(loop: EventLoop, generation: SharedGeneration, clock: MonotonicClock, log: @escaping (String) -> Void) {
        self.loop = loop
        self.generation = generation
        let snapshot = generation.snapshot
        prober = Prober(loop: loop, snapshot: snapshot, clock: clock, log: log, tls: generation.tls)
        monitor = Monitor(loop: loop, snapshot: snapshot, clock: clock, log: log)
        lending = LendingService(loop: loop, snapshot: snapshot, clock: clock, log: log)
    }

    func start() {
        prober.start()
        // A client's `assign?failed=ID` (on a worker) has the server probed at once, on this thread.
        let proberBox = UncheckedBox(prober), loop = self.loop
        snapshot.failureReports.setProbeHook { server in loop.execute { proberBox.value.probeNow(server: server) } }
        monitor.start()
        lending.start()
        for (i, listener) in generation.configuration.listeners.enumerated() {
            guard let context = generation.tls.listeners[i], let every = listener.tls?.ticketRotation else { continue }
            let timer = LoopTimer(loop: loop, repeating: true) { context.rotateTicketKeys() }
            timer.schedule(milliseconds: max(60_000, every.milliseconds))
            rotations.append(timer)
        }
    }

    func stop() {
        snapshot.failureReports.setProbeHook(nil)
        prober.stop()
        monitor.stop()
        lending.stop()
        for timer in rotations { timer.cancel() }
        rotations.removeAll()
    }
}
