import WeirBalance
import WeirConfig
import WeirIO

/// One worker thread's world: its event loop, its own SO_REUSEPORT listening sockets, its client
/// sessions, its idle upstream connections and its policy state. Nothing here is shared with other
/// workers except the snapshot's atomics and the stats, so the request path takes no locks.
final class Worker {
    let index: Int
    let loop: EventLoop
    let settings: Settings
    let stats: GatewayStats
    let accessLog: AccessLog
    private(set) var snapshot: RoutingSnapshot
    var policy: PolicyState
    let upstreamPool: UpstreamPool
    /// Per server: the URL prefixes under which the server knows itself (for Location rewriting).
    let serverPrefixes: [[[UInt8]]]
    private var listeners: [ListeningSocket] = []
    private var listenerLimits: [Int] = []
    private var pausedListeners = false
    private var sessions: [ObjectIdentifier: ClientSession] = [:]
    private(set) var isDraining = false
    private var housekeeping: LoopTimer?
    private var onStopped: (() -> Void)?

    /// Binds this worker's listeners. Throws an `IOError` naming the address when one cannot be bound.
    init(index: Int, configuration: WeirConfiguration, snapshot: RoutingSnapshot, stats: GatewayStats,
         logSink: OutputFile?) throws {
        self.index = index
        loop = try EventLoop()
        settings = Settings(configuration)
        self.stats = stats
        self.snapshot = snapshot
        policy = PolicyState(snapshot: snapshot)
        accessLog = AccessLog(sink: logSink)
        upstreamPool = UpstreamPool(servers: snapshot.servers.count, maxPerServer: settings.idlePerServer,
                                    idleTimeoutMs: settings.upstreamIdleMs)
        serverPrefixes = snapshot.servers.map { server in
            var prefixes = [Array("http://\(server.config.address.description)".utf8)]
            if let url = server.config.publicURL {
                prefixes.append(Array((url.hasSuffix("/") ? String(url.dropLast()) : url).utf8))
            }
            return prefixes
        }
        for (i, listener) in configuration.listeners.enumerated() {
            let bound = try ListeningSocket(loop: loop, host: listener.address.host, port: Int(listener.address.port)) { [unowned self] fd, peer in
                self.accept(fd: fd, peer: peer, listener: i)
            }
            listeners.append(bound)
            listenerLimits.append(listener.maxConnections)
        }
    }

    /// Runs the loop on the calling thread until the worker has drained. `onStopped` runs on this thread at the end.
    func run(onStopped: @escaping () -> Void) {
        self.onStopped = onStopped
        housekeeping = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.tick() }
        housekeeping?.schedule(milliseconds: 100)
        loop.run()
        accessLog.flush()
        upstreamPool.closeAll()
        housekeeping = nil
        onStopped()
    }

    private func accept(fd: Int32, peer: PeerAddress, listener: Int) {
        let open = stats.openConnections.wrappingIncrementThenLoad(ordering: .relaxed)
        let openHere = stats.openPerListener[listener].wrappingIncrementThenLoad(ordering: .relaxed)
        if open > settings.maxConnections || openHere > listenerLimits[listener] {
            // Over a limit: refuse this one and stop accepting until connections close; the
            // kernel's backlog holds the rest.
            stats.openConnections.wrappingDecrement(ordering: .relaxed)
            stats.openPerListener[listener].wrappingDecrement(ordering: .relaxed)
            stats.connectionsRefusedAtLimit.wrappingIncrement(ordering: .relaxed)
            if let c = Connection.accepted(loop: loop, fd: fd, peer: peer) {
                ErrorResponse.write(status: 503, reason: "too many connections", retryAfter: 1, to: c.output)
                c.closeAfterFlush()
            }
            pauseListeners()
            return
        }
        guard let connection = Connection.accepted(loop: loop, fd: fd, peer: peer) else {
            stats.openConnections.wrappingDecrement(ordering: .relaxed)
            stats.openPerListener[listener].wrappingDecrement(ordering: .relaxed)
            return
        }
        let session = ClientSession(worker: self, client: connection, listenerIndex: listener)
        sessions[ObjectIdentifier(session)] = session
    }

    /// Called by a session once its client connection is closed.
    func sessionEnded(_ session: ClientSession) {
        guard sessions.removeValue(forKey: ObjectIdentifier(session)) != nil else { return }
        stats.openConnections.wrappingDecrement(ordering: .relaxed)
        stats.openPerListener[session.listenerIndex].wrappingDecrement(ordering: .relaxed)
        stopIfDrained()
    }

    /// During a drain: ends the loop once no session is left and every last response has been
    /// sent (connections closing after a flush are waited for; `tick` checks again).
    private func stopIfDrained() {
        if isDraining && sessions.isEmpty && loop.flushingConnections == 0 { loop.stop() }
    }

    private func pauseListeners() {
        guard !pausedListeners else { return }
        pausedListeners = true
        for l in listeners { l.pause() }
    }

    /// Every 100 ms: flush the access log, resume accepting once below the connection limits.
    private func tick() {
        accessLog.flush()
        stopIfDrained()
        if pausedListeners && !isDraining && stats.openConnections.load(ordering: .relaxed) < settings.maxConnections {
            pausedListeners = false
            for l in listeners { l.resume() }
        }
    }

    /// Stops accepting, closes idle connections and lets the rest finish; the loop ends when the
    /// last session is gone. Call on this worker's thread.
    func beginDrain() {
        guard !isDraining else { return }
        isDraining = true
        for l in listeners { l.close() }
        listeners.removeAll()
        upstreamPool.closeAll()
        for session in Array(sessions.values) { session.closeIfIdle() }
        stopIfDrained()
    }

    /// Ends the loop now, whatever is in flight (drain timeout).
    func stopNow() {
        loop.stop()
    }
}
