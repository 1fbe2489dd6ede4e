import WeirHTTP
import Glibc
import WeirBalance
import WeirConfig
import WeirIO

/// One worker thread's world: its event loop, its own SO_REUSEPORT listening sockets, its client
/// sessions, its idle upstream connections and its policy state. Nothing here is shared with other
/// workers except the snapshot's atomics and the stats, so the request path takes no locks.
final class Worker {
    let index: Int
    let loop: EventLoop
    let stats: GatewayStats
    let accessLog: AccessLog
    /// The configuration load new exchanges start on (see `Generation`); replaced by `install`.
    private(set) var generation: Generation
    let clock: BalanceClock
    let log: (String) -> Void
    let sticky: StickyContext
    /// Where sessions build a response head before it is copied to the client's output (used and
    /// emptied within one action, so one buffer serves every session of the loop).
    var responseHeadScratch: [UInt8] = []
    /// The response head of an HTTP/2 stream as fields, built again for each (nghttp2 copies them).
    var http2ResponseFields = HTTP2ResponseFields()
    /// Head buffers of ended sessions for new ones (see `HeadStorageShelf`).
    var headStorages = HeadStorageShelf()
    /// Action lists and byte buffers of ended sessions for new ones (see `SessionShelf`).
    var sessionShelf = SessionShelf()
    /// Empty pipes for splicing response bodies (see BodySplicer.swift).
    let splicePipes = SplicePipePool()
    /// Generations with requests waiting in their queues (the current one, and older ones whose
    /// queued requests started before a reload).
    private var queuedGenerations: [Generation] = []
    private var queueTimer: LoopTimer?
    /// This worker's listening sockets, one per listener slot.
    private var listeners: [(slot: ListenerSlot, socket: ListeningSocket)] = []
    private var sessions: [ObjectIdentifier: ClientSession] = [:]
    /// HTTP/2 client connections (their streams' sessions are theirs, not in `sessions`).
    private var http2Connections: [ObjectIdentifier: HTTP2Connection] = [:]
    private(set) var isDraining = false
    private var housekeeping: LoopTimer?
    private var onStopped: (() -> Void)?
    /// Bumped every tick; the control thread's watchdog checks it moves.
    let heartbeat = WorkerHeartbeat()

    /// Requests queued in every generation.
    var queuedCount: Int { queuedGenerations.reduce(0) { $0 + $1.queuedCount } }
    /// Whether any request is queued (checked at the end of every exchange).
    var hasQueued: Bool { !queuedGenerations.isEmpty }

    /// Starts accepting on `sockets` (this worker's listening socket of each slot, bound by the gateway;
    /// owned from now on). Throws an `IOError` when one cannot be put on the loop.
    init(index: Int, generation shared: SharedGeneration, sockets: [(ListenerSlot, Int32)], stats: GatewayStats,
         logSink: OutputFile?, clock: BalanceClock, log: @escaping (String) -> Void, sticky: StickyContext) throws {
        self.index = index
        self.sticky = sticky
        self.clock = clock
        self.log = log
        loop = try EventLoop()
        self.stats = stats
        generation = Generation(shared, worker: index)
        accessLog = AccessLog(sink: logSink, format: shared.configuration.global.accessLogFormat)
        try adopt(sockets)
    }

    private func adopt(_ sockets: [(ListenerSlot, Int32)]) throws {
        for (slot, fd) in sockets {
            // handOver: a binary upgrade passes it to the new process (UpgradeControl.swift).
            let socket = try ListeningSocket(loop: loop, adopting: fd, handOver: true) { [unowned self, unowned slot] fd, peer in
                self.accept(fd: fd, peer: peer, slot: slot)
            }
            listeners.append((slot, socket))
        }
    }

    /// A reload (on this worker's thread): new exchanges start on `shared` from now on; the sockets of
    /// new listener slots start accepting, those of slots it no longer has stop (their connections
    /// finish); idle upstream connections move over where their server stays the same.
    func install(_ shared: SharedGeneration, adding sockets: [(ListenerSlot, Int32)]) {
        let older = generation
        let newer = Generation(shared, worker: index)
        newer.takeIdleConnections(from: older)
        generation = newer
        for (i, entry) in listeners.enumerated().reversed() where !shared.slots.contains(where: { $0 === entry.slot }) {
            entry.socket.close()
            listeners.remove(at: i)
        }
        // HTTP/2 connections of a listener the reload removed: a graceful GOAWAY (the others take the
        // new generation for their next streams).
        for connection in http2Connections.values where !shared.slots.contains(where: { $0 === connection.slot }) {
            connection.goAway()
        }
        if isDraining {
            for (_, fd) in sockets { Glibc.close(fd) }
            return
        }
        do { try adopt(sockets) } catch { log(LogLevel.error.tag + "weir: worker \(index): \(error)") }
    }

    /// Runs the loop on the calling thread until the worker has drained. `onStopped` runs on this thread at the end.
    func run(onStopped: @escaping () -> Void) {
        self.onStopped = onStopped
        housekeeping = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.tick() }
        housekeeping?.schedule(milliseconds: 100)
        loop.run()
        heartbeat.finish()
        accessLog.flush()
        generation.upstreamPool.closeAll()
        housekeeping = nil
        onStopped()
    }

    private func accept(fd: Int32, peer: PeerAddress, slot: ListenerSlot) {
        let generation = self.generation
        guard let listener = generation.listenerIndex(of: slot) else { Glibc.close(fd); return }
        if let allowed = generation.proxyProtocolFrom[listener] {
            readProxyHeader(fd: fd, peer: peer, slot: slot, listener: listener, allowed: allowed)
            return
        }
        admit(fd: fd, peer: peer, slot: slot, generation: generation, listener: listener)
    }

    /// Connections reading their PROXY protocol header (ProxyProtocolAccept.swift).
    var proxyHeaderReaders: [ObjectIdentifier: PrefaceReader] = [:]
    /// When a refused PROXY connection was last logged, and how many were not logged since.
    var proxyRefusalLog = (lastMs: Int64.min, unlogged: 0)

    /// Starts a session on an accepted socket of `slot`, listener `listener` of `generation` (the current
    /// one); `local`: the address the client connected to, when a PROXY header stated it.
    func admit(fd: Int32, peer: PeerAddress, slot: ListenerSlot, generation: Generation, listener: Int,
               local: PeerAddress? = nil) {
        let open = stats.openConnections.wrappingIncrementThenLoad(ordering: .relaxed)
        let openHere = slot.open.wrappingIncrementThenLoad(ordering: .relaxed)
        let tls = generation.tls.listeners[listener]
        if open > generation.settings.maxConnections || openHere > generation.configuration.listeners[listener].maxConnections {
            // Over a limit: every such connection is accepted, answered 503 and closed at once, so
            // clients learn it promptly instead of waiting in the kernel's backlog.
            stats.openConnections.wrappingDecrement(ordering: .relaxed)
            slot.open.wrappingDecrement(ordering: .relaxed)
            stats.connectionsRefusedAtLimit.wrappingIncrement(ordering: .relaxed)
            stats.unavailable.wrappingIncrement(ordering: .relaxed)
            if let c = Connection.accepted(loop: loop, fd: fd, peer: peer, tls: tls) {
                ErrorResponse.write(status: 503, reason: "too many connections", retryAfter: 1, to: c.output)
                c.closeAfterFlush()
            }
            return
        }
        guard let connection = Connection.accepted(loop: loop, fd: fd, peer: peer, tls: tls, local: local) else {
            stats.openConnections.wrappingDecrement(ordering: .relaxed)
            slot.open.wrappingDecrement(ordering: .relaxed)
            return
        }
        let session = ClientSession(worker: self, generation: generation, client: connection, listenerIndex: listener, slot: slot)
        sessions[ObjectIdentifier(session)] = session
        generation.meters.listeners[listener].add(ListenerSlots.connections)
    }

    // MARK: - Waiting for a server (max_conns)

    /// Queues `session` for pool `pool` of its generation until `deadline` (nil: now + the pool's
    /// queue_timeout, for a request queued the first time); false when this worker's queue for the
    /// pool is full. Returns the deadline in force through `deadline`.
    func enqueue(_ session: ClientSession, pool: Int, deadline: inout UInt64?) -> Bool {
        let generation = session.generation
        let settings = generation.configuration.pools[pool]
        guard generation.queues[pool].count < settings.maxQueue else { return false }
        let due = deadline ?? clock.nowNanoseconds + UInt64(settings.queueTimeout.milliseconds) * 1_000_000
        deadline = due
        generation.queues[pool].append((session, due))
        generation.queuedCount += 1
        generation.meters.pools[pool].add(ExchangeSlots.queued)
        if !queuedGenerations.contains(where: { $0 === generation }) { queuedGenerations.append(generation) }
        if queueTimer == nil {
            queueTimer = LoopTimer(loop: loop, repeating: true) { [unowned self] in self.serveQueues() }
        }
        if queueTimer?.isPending == false { queueTimer?.schedule(milliseconds: 5) }
        return true
    }

    /// Removes a queued session (its client went away).
    func dequeue(_ session: ClientSession) {
        let generation = session.generation
        for p in generation.queues.indices {
            if let i = generation.queues[p].firstIndex(where: { $0.session === session }) {
                generation.queues[p].remove(at: i)
                generation.queuedCount -= 1
                generation.meters.pools[p].subtract(ExchangeSlots.queued)
            }
        }
        forgetEmptyQueues()
    }

    /// Gives every queued request, oldest first, another chance at a server (a request that still
    /// finds every server full goes back to the end of the queue, keeping the order).
    func serveQueues() {
        let now = clock.nowNanoseconds
        for generation in queuedGenerations {
            for p in generation.queues.indices where !generation.queues[p].isEmpty {
                let waiting = generation.queues[p]
                generation.queues[p].removeAll(keepingCapacity: true)
                generation.queuedCount -= waiting.count
                generation.meters.pools[p].subtract(ExchangeSlots.queued, UInt64(waiting.count))
                for entry in waiting { entry.session.retryFromQueue(timedOut: now >= entry.deadline) }
            }
        }
        forgetEmptyQueues()
    }

    private func forgetEmptyQueues() {
        queuedGenerations.removeAll { $0.queuedCount == 0 }
        if queuedGenerations.isEmpty { queueTimer?.cancel() }
    }

    /// Called by a session once its client connection is closed.
    func sessionEnded(_ session: ClientSession) {
        guard sessions.removeValue(forKey: ObjectIdentifier(session)) != nil else { return }
        stats.openConnections.wrappingDecrement(ordering: .relaxed)
        session.slot.open.wrappingDecrement(ordering: .relaxed)
        stopIfDrained()
    }

    /// `session`'s client speaks HTTP/2: an `HTTP2Connection` takes `client` over (the connection
    /// stays counted as open until it ends); the session is let go.
    func handOverToHTTP2(_ session: ClientSession, client: Connection, generation: Generation, listenerIndex: Int) {
        guard sessions.removeValue(forKey: ObjectIdentifier(session)) != nil else { return }
        guard let h2 = HTTP2Connection(worker: self, client: client, generation: generation, listenerIndex: listenerIndex,
                                       slot: session.slot) else {
            client.close()
            stats.openConnections.wrappingDecrement(ordering: .relaxed)
            session.slot.open.wrappingDecrement(ordering: .relaxed)
            return
        }
        http2Connections[ObjectIdentifier(h2)] = h2
        if isDraining { h2.goAway() }
    }

    /// Called by an HTTP/2 connection once its client connection is closed.
    func http2Ended(_ connection: HTTP2Connection) {
        guard http2Connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        stats.openConnections.wrappingDecrement(ordering: .relaxed)
        connection.slot.open.wrappingDecrement(ordering: .relaxed)
        stopIfDrained()
    }

    /// During a drain: ends the loop once no session is left and every last response has been
    /// sent (connections closing after a flush are waited for; `tick` checks again).
    private func stopIfDrained() {
        if isDraining && sessions.isEmpty && http2Connections.isEmpty && loop.flushingConnections == 0 { loop.stop() }
    }

    /// Every 100 ms: flush the access log; end the loop when a drain is done.
    private func tick() {
        heartbeat.beat(worker: index)
        accessLog.flush()
        stopIfDrained()
    }

    /// Stops accepting, closes idle connections and lets the rest finish; the loop ends when the
    /// last session is gone. Call on this worker's thread.
    func beginDrain() {
        guard !isDraining else { return }
        isDraining = true
        for l in listeners { l.socket.close() }
        listeners.removeAll()
        for reader in proxyHeaderReaders.values { reader.cancel() }
        proxyHeaderReaders.removeAll()
        generation.upstreamPool.closeAll()
        for session in Array(sessions.values) { session.closeIfIdle() }
        for connection in Array(http2Connections.values) { connection.goAway() }
        stopIfDrained()
    }

    /// Ends the loop now, whatever is in flight (drain timeout).
    func stopNow() {
        loop.stop()
    }
}
