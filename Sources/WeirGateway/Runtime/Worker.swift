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
    /// Per server: the URL prefixes under which the servers of its pool know themselves,
    /// rewritten to the gateway in response heads and the listed body types; built once per snapshot.
    let serverPrefixes: [[[UInt8]]]
    /// Per server: the index of its pool.
    let poolOfServer: [Int]
    let clock: BalanceClock
    let log: (String) -> Void
    let sticky: StickyContext
    let modes: ListenerModes
    let tls: TLSSetup
    /// Peer mode (`weir peer`): the group's members and hop tokens; nil in a gateway.
    let peer: PeerContext?
    /// Per listener: the Strict-Transport-Security field (with CRLF) its responses carry, or empty.
    let hstsFields: [[UInt8]]
    /// Per listener: its TLS handshake timeout in milliseconds (0 for plain listeners).
    let handshakeTimeoutsMs: [Int64]
    /// Where sessions build a response head before it is copied to the client's output (used and
    /// emptied within one action, so one buffer serves every session of the loop).
    var responseHeadScratch: [UInt8] = []
    /// Empty pipes for splicing response bodies (see BodySplicer.swift).
    let splicePipes = SplicePipePool()
    /// Requests waiting for a server below its max_conns, per pool, oldest first, with their deadlines.
    private var queues: [[(session: ClientSession, deadline: UInt64)]]
    private(set) var queuedCount = 0
    private var queueTimer: LoopTimer?
    private var listeners: [ListeningSocket] = []
    private var listenerLimits: [Int] = []
    private var sessions: [ObjectIdentifier: ClientSession] = [:]
    private(set) var isDraining = false
    private var housekeeping: LoopTimer?
    private var onStopped: (() -> Void)?
    /// systemd (sd-unit): bumped every tick; the control thread's watchdog checks it moves.
    let heartbeat = WorkerHeartbeat()

    /// Binds this worker's listeners. Throws an `IOError` naming the address when one cannot be bound.
    init(index: Int, configuration: WeirConfiguration, snapshot: RoutingSnapshot, stats: GatewayStats,
         logSink: OutputFile?, clock: BalanceClock, log: @escaping (String) -> Void,
         sticky: StickyContext, modes: ListenerModes, tls: TLSSetup, peer: PeerContext? = nil) throws {
        self.index = index
        self.peer = peer
        self.sticky = sticky
        self.modes = modes
        self.tls = tls
        hstsFields = configuration.listeners.map { l in l.tls?.hsts.map { Array("Strict-Transport-Security: \($0)\r\n".utf8) } ?? [] }
        handshakeTimeoutsMs = configuration.listeners.map { $0.tls?.handshakeTimeout.milliseconds ?? 0 }
        self.clock = clock
        self.log = log
        var poolOfServer = [Int](repeating: 0, count: snapshot.servers.count)
        for (p, pool) in snapshot.pools.enumerated() { for s in pool.servers { poolOfServer[s] = p } }
        self.poolOfServer = poolOfServer
        queues = Array(repeating: [], count: snapshot.pools.count)
        loop = try EventLoop()
        settings = Settings(configuration)
        self.stats = stats
        self.snapshot = snapshot
        policy = PolicyState(snapshot: snapshot, seed: UInt64(index &+ 1) &* 0x9E37_79B9_7F4A_7C15)
        accessLog = AccessLog(sink: logSink)
        upstreamPool = UpstreamPool(servers: snapshot.servers.count, maxPerServer: settings.idlePerServer,
                                    idleTimeoutMs: settings.upstreamIdleMs)
        serverPrefixes = Self.poolPrefixes(snapshot)
        for (i, listener) in configuration.listeners.enumerated() {
            // A peer may listen on an address it holds only while it stands in for another peer.
            let bound = try ListeningSocket(loop: loop, host: listener.address.host, port: Int(listener.address.port),
                                            freebind: peer != nil) { [unowned self] fd, peer in
                self.accept(fd: fd, peer: peer, listener: i)
            }
            listeners.append(bound)
            listenerLimits.append(listener.maxConnections)
        }
    }

    /// Per server: the prefixes of every server of its pool ("http://address", "https://address" for a
    /// TLS pool, and the public URL without its trailing "/"), without repeats. One array per pool,
    /// shared by its servers (the order does not matter: a match must end at a URL boundary).
    static func poolPrefixes(_ snapshot: RoutingSnapshot) -> [[[UInt8]]] {
        var perServer = [[[UInt8]]](repeating: [], count: snapshot.servers.count)
        for (p, pool) in snapshot.pools.enumerated() {
            let tls = snapshot.configuration.pools[p].tls?.enabled == true
            var list: [[UInt8]] = []
            for server in pool.servers {
                for prefix in prefixes(of: snapshot.servers[server].config, tls: tls) where !list.contains(prefix) {
                    list.append(prefix)
                }
            }
            for server in pool.servers { perServer[server] = list }
        }
        return perServer
    }

    /// The URL prefixes under which one server knows itself.
    private static func prefixes(of server: Server, tls: Bool) -> [[UInt8]] {
        var prefixes = [Array("http://\(server.address.description)".utf8)]
        if tls { prefixes.append(Array("https://\(server.address.description)".utf8)) }
        if let url = server.publicURL {
            prefixes.append(Array((url.hasSuffix("/") ? String(url.dropLast()) : url).utf8))
        }
        return prefixes
    }

    /// Runs the loop on the calling thread until the worker has drained. `onStopped` runs on this thread at the end.
    func run(onStopped: @escaping () -> Void) {
        self.onStopped = onStopped
        housekeeping = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.tick() }
        housekeeping?.schedule(milliseconds: 100)
        loop.run()
        heartbeat.finish()   // systemd (sd-unit)
        accessLog.flush()
        upstreamPool.closeAll()
        housekeeping = nil
        onStopped()
    }

    private func accept(fd: Int32, peer: PeerAddress, listener: Int) {
        let open = stats.openConnections.wrappingIncrementThenLoad(ordering: .relaxed)
        let openHere = stats.openPerListener[listener].wrappingIncrementThenLoad(ordering: .relaxed)
        if open > settings.maxConnections || openHere > listenerLimits[listener] {
            // Over a limit: every such connection is accepted, answered 503 and closed at once, so
            // clients learn it promptly instead of waiting in the kernel's backlog.
            stats.openConnections.wrappingDecrement(ordering: .relaxed)
            stats.openPerListener[listener].wrappingDecrement(ordering: .relaxed)
            stats.connectionsRefusedAtLimit.wrappingIncrement(ordering: .relaxed)
            stats.unavailable.wrappingIncrement(ordering: .relaxed)
            if let c = Connection.accepted(loop: loop, fd: fd, peer: peer, tls: tls.listeners[listener]) {
                ErrorResponse.write(status: 503, reason: "too many connections", retryAfter: 1, to: c.output)
                c.closeAfterFlush()
            }
            return
        }
        guard let connection = Connection.accepted(loop: loop, fd: fd, peer: peer, tls: tls.listeners[listener]) else {
            stats.openConnections.wrappingDecrement(ordering: .relaxed)
            stats.openPerListener[listener].wrappingDecrement(ordering: .relaxed)
            return
        }
        let session = ClientSession(worker: self, client: connection, listenerIndex: listener)
        sessions[ObjectIdentifier(session)] = session
    }

    // MARK: - Waiting for a server (max_conns)

    /// Queues `session` for pool `pool` until `deadline` (nil: now + the pool's queue_timeout, for a
    /// request queued the first time); false when this worker's queue for the pool is full.
    /// Returns the deadline in force through `deadline`.
    func enqueue(_ session: ClientSession, pool: Int, deadline: inout UInt64?) -> Bool {
        let settings = snapshot.configuration.pools[pool]
        guard queues[pool].count < settings.maxQueue else { return false }
        let due = deadline ?? clock.nowNanoseconds + UInt64(settings.queueTimeout.milliseconds) * 1_000_000
        deadline = due
        queues[pool].append((session, due))
        queuedCount += 1
        if queueTimer == nil {
            queueTimer = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.serveQueues() }
        }
        if queueTimer?.isPending == false { queueTimer?.schedule(milliseconds: 5) }
        return true
    }

    /// Removes a queued session (its client went away).
    func dequeue(_ session: ClientSession) {
        for p in queues.indices {
            if let i = queues[p].firstIndex(where: { $0.session === session }) {
                queues[p].remove(at: i)
                queuedCount -= 1
            }
        }
        if queuedCount == 0 { queueTimer?.cancel() }
    }

    /// Gives every queued request, oldest first, another chance at a server (a request that still
    /// finds every server full goes back to the end of the queue, keeping the order).
    func serveQueues() {
        guard queuedCount > 0 else { queueTimer?.cancel(); return }
        let now = clock.nowNanoseconds
        for p in queues.indices where !queues[p].isEmpty {
            let waiting = queues[p]
            queues[p].removeAll(keepingCapacity: true)
            queuedCount -= waiting.count
            for entry in waiting { entry.session.retryFromQueue(timedOut: now >= entry.deadline) }
        }
        if queuedCount == 0 { queueTimer?.cancel() }
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

    /// Every 100 ms: flush the access log; end the loop when a drain is done.
    private func tick() {
        heartbeat.beat(worker: index)   // systemd (sd-unit)
        accessLog.flush()
        stopIfDrained()
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
