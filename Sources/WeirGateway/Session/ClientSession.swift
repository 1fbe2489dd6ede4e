import WeirBalance
import WeirConfig
import WeirHTTP
import WeirIO

/// The shell around one client connection's `SessionMachine`: turns Connection callbacks into
/// `SessionEvent`s, carries out the `SessionAction`s the machine returns, and keeps what is not
/// protocol state: the connections, the session timer, backpressure, the routing data of the
/// exchange (`ClientSession+Routing.swift`) and the byte counts for the access log.
final class ClientSession: ConnectionHandler, LoopTimerOwner {
    /// Strong, though the worker owns its sessions (the cycle ends when the session ends and the
    /// worker lets go of it): every use of an `unowned(unsafe)` reference is a retain and a release,
    /// while a `let` of `self` is only borrowed.
    let worker: Worker
    let client: Connection
    /// The listener the connection came in on: its index in `generation`'s configuration, and the
    /// slot (the same across reloads; it counts the connection).
    private(set) var listenerIndex: Int
    let slot: ListenerSlot
    /// The configuration load the exchange in flight runs on; a new exchange takes the worker's
    /// current one (`adoptCurrentGeneration`), so a reload applies to keep-alive connections too.
    private(set) var generation: Generation
    // Only this shell touches them, on its loop's thread: no run-time exclusivity checks.
    @exclusivity(unchecked) private(set) var machine: SessionMachine
    @exclusivity(unchecked) private var actions: SessionActions
    private var timer: LoopTimer!
    private(set) var upstream: Connection?
    /// Whether actions are being carried out (events raised meanwhile wait in `followUp`).
    private var running = false
    private var followUp: FollowUp = .none
    private var timerChange: TimerChange = .none

    // Routing data of the exchange in flight (see ClientSession+Routing.swift).
    var snapshot: RoutingSnapshot
    var clientView = HeadRewriter.ClientView(clientAddress: "", scheme: "http", host: [])
    var target: TargetParts?
    /// Servers that failed this request (not tried again for it).
    var excluded: [Int] = []
    /// A Set-Cookie field (with CRLF) the current response must carry, or empty.
    var setCookie: [UInt8] = []
    /// The server (index) a redirect sent the client to (for the access log; an index, not its id,
    /// so that setting it retains nothing).
    var redirectedServer: Int?
    /// Access log (json only): what the sticky rule did, and the connect time of the current
    /// attempt (see ClientSession+AccessLog.swift).
    var pinOutcome: PinOutcome?
    var connectStartedMs: Int64 = 0
    var upstreamConnectMs: Int64?
    /// When a queued request gives up (set when it is first queued; kept while it waits again).
    var queueDeadline: UInt64?
    /// The request head's bytes while `decide` runs (what the `RequestFieldSource` lookups point into).
    var headBytesDuringDecision = UnsafeRawBufferPointer(start: nil, count: 0)
    /// The server the request was last sent to (excluded when it is retried elsewhere).
    var routedServer: Int?
    /// Peer mode: the request carries a valid hop token (another peer routed it here).
    var hopped = false

    // Forwarding data of the exchange and attempt in flight.
    /// Set when a request head was parsed, until it is routed the first time.
    var exchangeIsNew = false
    /// The server of the current attempt.
    private var currentServer: Int?
    /// The request head for the server (kept for a retry; sized once for typical heads).
    private var upstreamHead: [UInt8]
    private var rewriter: BodyRewriter?
    /// The pipe of a response body being spliced socket to socket (see BodySplicer.swift).
    var splicePipe: SplicePipe?
    private var bytesToClient = 0
    /// The idle connection to a `send_proxy` server this client may use again (nil until one is kept).
    private var privateUpstream: PrivateUpstream?
    /// Times and request bytes of the exchange for the metrics (Metrics/ExchangeMeter.swift).
    var meter = ExchangeMeter()

    /// Follow-up events raised while actions run, handled right after.
    fileprivate enum FollowUp { case none, clientBytes, upstreamBytes, both, event(SessionEvent) }

    /// `http2Lane`: the client connection is that lane's, serving HTTP/2 streams (`HTTP2Stream`) one
    /// after another: their TLS handshake counted by the HTTP/2 connection, "HTTP/2.0" in the access
    /// log, response heads handed to the stream as fields.
    init(worker: Worker, generation: Generation, client: Connection, listenerIndex: Int, slot: ListenerSlot,
         http2Lane: HTTP2Lane? = nil) {
        self.worker = worker
        let http2Stream = http2Lane != nil
        self.http2Lane = http2Lane
        isHTTP2Stream = http2Stream
        countedHandshake = http2Stream
        self.generation = generation
        self.client = client
        self.listenerIndex = listenerIndex
        self.slot = slot
        actions = worker.sessionShelf.takeActions()
        upstreamHead = worker.sessionShelf.takeBytes()
        let settings = generation.settings
        machine = SessionMachine(limits: .init(
            parser: settings.parserLimits, clientHeaderMs: settings.clientHeaderMs, clientIdleMs: settings.clientIdleMs,
            clientBodyMs: settings.clientBodyMs, upstreamConnectMs: settings.upstreamConnectMs,
            upstreamResponseMs: settings.upstreamResponseMs, tunnelIdleMs: settings.tunnelIdleMs,
            discardBodyBytes: settings.redirectBodyBytes),
            requestStorage: worker.headStorages.take(), responseStorage: worker.headStorages.take())
        snapshot = generation.snapshot
        var address = worker.sessionShelf.takeBytes()
        address.append(contentsOf: client.peer.host.utf8)
        clientView.clientAddress = address
        clientView.scheme = client.isTLS ? "https" : "http"
        awaitsHTTP2Preface = !http2Stream && !client.isTLS && generation.configuration.listeners[listenerIndex].h2c
        timer = LoopTimer(loop: worker.loop, owner: self)
        client.handler = self
        client.setWriteLowWatermark(settings.bufferBytes / 2)
        // A client that stops reading our output for this long is gone.
        client.setTimeouts(readMilliseconds: nil, writeMilliseconds: settings.clientIdleMs)
        // A TLS client first has handshake_timeout to finish its handshake.
        let handshakeMs = generation.handshakeTimeoutsMs[listenerIndex]
        timer.schedule(milliseconds: client.isTLS && handshakeMs > 0 ? handshakeMs : settings.clientHeaderMs)
    }

    // MARK: - Connection callbacks → events

    func loopTimerFired() {
        handle(.timerFired(clientHandshaking: client.isHandshaking))
    }

    func connectionReadable(_ connection: Connection) {
        if connection === client {
            feedClient()
        } else if connection === upstream {
            if splicePipe != nil { spliceStep() } else { feedUpstream() }
        }
    }

    func connectionWritable(_ connection: Connection) {
        // The side we write to drained: resume reading the other side, and feed what it buffered.
        if connection === client, splicePipe != nil {
            spliceStep()
        } else if connection === client, let upstream {
            upstream.setReading(true)
            feedUpstream()
        } else if connection === upstream {
            updateReading()
            feedClient()
        }
    }

    func connection(_ connection: Connection, event: ConnectionEvent) {
        if connection === client {
            // What the client sent before it ended is handled first.
            if !client.input.isEmpty && machine.consumesClientBytes { feedClient() }
            guard connection === client, !machine.isClosed else { return }
            switch event {
            case .endOfStream: handle(.clientEndOfStream)
            case .failed(let error): handle(.clientFailed(handshake: error.operation.hasPrefix("tls handshake")))
            case .readTimeout: handle(.clientReadTimeout)
            case .writeTimeout: handle(.clientWriteTimeout)
            case .connected: if client.negotiatedHTTP2 { handOverToHTTP2() }
            }
        } else if connection === upstream {
            if event.endsInput, !connection.input.isEmpty { feedUpstream() }
            guard connection === upstream else { return }
            switch event {
            case .connected:
                if worker.accessLog.needsDetail { upstreamConnectMs = worker.loop.monotonicMilliseconds - connectStartedMs }
                meterConnected(server: currentServer)
                handle(.upstreamConnected)
            case .endOfStream: handle(.upstreamEndOfStream)
            case .failed(let error): handle(.upstreamFailed("\(error)"))
            case .readTimeout: handle(.upstreamReadTimeout)
            case .writeTimeout: handle(.upstreamWriteTimeout)
            }
        }
    }

    /// At the start of an exchange: after a reload, take the worker's new generation, unless the
    /// connection's listener is gone from it (the connection then finishes on the old one).
    func adoptCurrentGeneration() {
        let current = worker.generation
        guard current !== generation, let index = current.listenerIndex(of: slot) else { return }
        generation = current
        listenerIndex = index
    }

    /// Called by the worker for a queued request: try again, or give up after the pool's queue timeout.
    func retryFromQueue(timedOut: Bool) { handle(.queueRetry(timedOut: timedOut)) }

    /// Ends an idle keep-alive session at once (drain); an active one finishes its exchange first.
    func closeIfIdle() { handle(.drain) }

    /// Whether the session is kept alive between exchanges (see `SessionMachine.awaitsNextRequest`).
    var awaitsNextRequest: Bool { !running && machine.awaitsNextRequest }

    private func feedClient() {
        let input = client.input
        guard !input.isEmpty, !machine.isClosed else { return }
        if awaitsHTTP2Preface {
            switch input.withContiguousPrefix(HTTP2Preface.bytes.count, { HTTP2Preface.match($0) }) {
            case .needMore: return
            case .http2: handOverToHTTP2(); return
            case .other: awaitsHTTP2Preface = false
            }
        }
        if running { followUp = followUp.adding(client: true); return }
        let available = input.count
        input.withContiguousPrefix(machine.clientWindow) { window in
            machine.handle(.clientBytes(window, available: available), into: &actions)
        }
        run()
    }

    private func feedUpstream() {
        guard let upstream, !upstream.input.isEmpty, !machine.isClosed else { return }
        if running { followUp = followUp.adding(client: false); return }
        let input = upstream.input
        let available = input.count
        input.withContiguousPrefix(machine.upstreamWindow) { window in
            machine.handle(.upstreamBytes(window, available: available), into: &actions)
        }
        run()
    }

    /// The client speaks HTTP/2 (ALPN h2, or the h2c preface): an `HTTP2Connection` takes the
    /// connection over, with what it sent so far; this session ends without touching it.
    private func handOverToHTTP2() {
        guard !machine.isClosed, !running else { return }
        timer.cancel()
        awaitsHTTP2Preface = false
        worker.handOverToHTTP2(self, client: client, generation: generation, listenerIndex: listenerIndex)
    }

    /// Hands an event from outside a run (the splicer's) to the machine.
    func deliverEvent(_ event: SessionEvent) { handle(event) }

    private func handle(_ event: SessionEvent) {
        guard !machine.isClosed else { return }
        if running { followUp = .event(event); return }
        machine.handle(event, into: &actions)
        run()
    }

    // MARK: - Actions

    /// Carries out the pending actions, then any follow-up event they raised, until none is left.
    private func run() {
        running = true
        defer { meter.passUs = 0 }   // the metrics' clock reading is good for this run only (one callback)
        var rounds = 0
        while true {
            var i = 0
            while i < actions.count { perform(actions[i]); i += 1 }
            actions.removeAll()
            // Taken, not copied: an event's payload (a routing answer) holds references.
            var next = FollowUp.none
            swap(&next, &followUp)
            rounds += 1
            // Each round consumes bytes or changes phase; the bound only guards against a rule bug.
            guard !machine.isClosed, rounds < 10_000 else { break }
            switch next {
            case .none:
                running = false
                applyTimerChange()
                if splicePipe == nil { considerSplice() }
                updateReading()
                return
            case .event(let event):
                machine.handle(event, into: &actions)
            case .clientBytes, .both:
                if next.includesUpstream { followUp = .upstreamBytes }
                let input = client.input
                guard !input.isEmpty else { continue }
                let available = input.count
                input.withContiguousPrefix(machine.clientWindow) { window in
                    machine.handle(.clientBytes(window, available: available), into: &actions)
                }
            case .upstreamBytes:
                guard let input = upstream?.input, !input.isEmpty else { continue }
                let available = input.count
                input.withContiguousPrefix(machine.upstreamWindow) { window in
                    machine.handle(.upstreamBytes(window, available: available), into: &actions)
                }
            }
        }
        running = false
        actions.removeAll()
        followUp = .none
        timerChange = .none
        if machine.isClosed && http2Lane == nil { giveBuffersBack() }
    }

    /// The session is over and its actions were carried out: its head buffers, action list and
    /// byte buffers serve the worker's next sessions (`HeadStorageShelf`, `SessionShelf`). Not for
    /// an HTTP/2 lane's session, whose buffers serve the lane's next stream.
    private func giveBuffersBack() {
        let storage = machine.surrenderStorage()
        worker.headStorages.put(storage.request)
        worker.headStorages.put(storage.response)
        worker.sessionShelf.keep(&actions)
        worker.sessionShelf.keep(&upstreamHead)
        worker.sessionShelf.keep(&clientView.clientAddress)
    }

    /// Timer changes of one run are applied once at its end: a cancel followed by an arm (a head
    /// parsed, then the response deadline) costs one timer operation, not two.
    private enum TimerChange { case none, arm(Int64), cancel }

    private func applyTimerChange() {
        switch timerChange {
        case .none: break
        case .arm(let ms): timer.schedule(milliseconds: ms)
        case .cancel: timer.cancel()
        }
        timerChange = .none
    }

    @inline(__always)
    private func perform(_ action: SessionAction) {
        switch action {
        case .dropClient(let n):
            client.input.drain(n)
        case .moveClientToUpstream(let n):
            guard let upstream else { client.input.drain(n); return }
            _ = client.input.move(n, to: upstream.output)
            meter.bytesIn &+= n
        case .moveUpstreamToClient(let n):
            guard let upstream else { return }
            if let rewriter {
                _ = upstream.input.move(n, to: rewriter.scratch.buffer)
                bytesToClient += rewriter.flush(into: client.output)
            } else {
                bytesToClient += upstream.input.move(n, to: client.output)
            }
        case .dropUpstream(let n):
            upstream?.input.drain(n)
        case .readClientAgain:
            if !client.input.isEmpty { followUp = followUp.adding(client: true) }
        case .readUpstreamAgain:
            if upstream?.input.isEmpty == false { followUp = followUp.adding(client: false) }
        case .route(let retry):
            followUp = .event(.routed(route(retry: retry)))
        case .beginAttempt(let server):
            beginAttempt(server)
        case .endAttempt(let server):
            snapshot.servers[server].inFlight.wrappingDecrement(ordering: .relaxed)
        case .connect(let server, let allowPooled):
            connect(server, allowPooled: allowPooled)
        case .parkUpstream:
            stopSplicing()
            if let upstream, let server = currentServer {
                // A connection that began with this client's PROXY header is kept for this client only.
                if generation.sendProxyOfServer[server] != nil { keepPrivately(upstream, server: server) }
                else { generation.upstreamPool.park(upstream, server: server) }
            }
            upstream = nil
        case .closeUpstream:
            stopSplicing()
            upstream?.close()
            upstream = nil
        case .serverFailed(let server):
            serverFailed(server)
        case .sendInterimHead:
            guard let head = machine.responseHead else { return }
            writeResponseHead(head, framing: .asReceived, connection: nil, final: false)
        case .sendResponseHead(let plan):
            guard let head = machine.responseHead, let server = currentServer else { return }
            snapshot.servers[server].recordPassiveSuccess()
            meterFirstByte(server: server)
            if worker.accessLog.isEnabled { responseHeadMs = worker.loop.monotonicMilliseconds - exchangeStartedMs }
            if plan.rewrite {
                var replacement = Array(clientView.scheme.description.utf8) + Array("://".utf8)
                replacement += clientView.host
                rewriter = BodyRewriter(prefixes: generation.serverPrefixes[server], replacement: replacement,
                                        chunked: plan.framing == .rechunked)
            }
            let connection: StaticString?
            switch plan.connection {
            case .none: connection = nil
            case .close: connection = "close"
            case .keepAlive: connection = "keep-alive"
            case .upgrade: connection = "upgrade"
            }
            writeResponseHead(head, framing: plan.framing, connection: connection, final: true)
        case .endResponseBody:
            if let rewriter { bytesToClient += rewriter.end(into: client.output) }
            rewriter = nil
        case .sendError(let status, let retryAfter, let keepAlive):
            let before = client.output.count
            ErrorResponse.write(status: status, reason: machine.errorReason, retryAfter: retryAfter,
                                extraFields: generation.hstsFields[listenerIndex], keepAlive: keepAlive, to: client.output)
            bytesToClient += client.output.count - before
        case .endExchange(let status, let server):
            endExchange(status: status, server: server)
        case .logUnparsed(let status):
            if worker.accessLog.isEnabled {
                let line = client.input.copyPrefix(min(client.input.count, 200))
                logUnparsed(line.prefix { $0 != 13 && $0 != 10 }, status: status)
            }
        case .armTimer(let ms):
            timerChange = .arm(ms)
        case .cancelTimer:
            timerChange = .cancel
        case .setClientTimeouts(let read, let write):
            client.setTimeouts(readMilliseconds: read, writeMilliseconds: write)
        case .setUpstreamTimeouts(let read, let write):
            upstream?.setTimeouts(readMilliseconds: read, writeMilliseconds: write)
        case .dequeue:
            worker.dequeue(self)
        case .startTunnel:
            break   // timeouts are set by the actions around it; the relay runs on byte events
        case .flushTunnel:
            if let upstream {
                upstream.input.moveAll(to: client.output)
                client.input.moveAll(to: upstream.output)
            }
        case .closeClient(let flush):
            stopSplicing()
            timer.cancel()
            privateUpstream?.drop()
            if let upstream {
                if flush && machine.isTunnel == false { upstream.close() } else if flush { upstream.closeAfterFlush() } else { upstream.close() }
            }
            upstream = nil
            // A clean end lingers only if the client sent more than its request (pipelined bytes).
            if flush { client.closeAfterFlush(linger: !machine.closedCleanly) } else { client.close() }
            worker.sessionEnded(self)   // its buffers go back to the worker once the run ends (`run`)
        case .count(let counter):
            count(counter)
        }
    }

    /// Reading on both sides follows the phase and the other side's backlog (the watermarks);
    /// while splicing, the server is read only when the pipe and the client's output are empty.
    func updateReading() {
        guard !machine.isClosed else { return }
        let limit = generation.settings.bufferBytes
        if let upstream {
            if let pipe = splicePipe {
                upstream.setReading(pipe.isEmpty && client.output.isEmpty)
            } else {
                upstream.setReading(client.output.count < limit)
            }
            client.setReading(machine.readsClient && upstream.output.count < limit && client.input.count < limit)
        } else {
            client.setReading(machine.readsClient && client.input.count < limit)
        }
    }

    // MARK: - Attempts

    private func beginAttempt(_ server: Int) {
        // Only the path of the target: binding the whole parts would copy them.
        guard let head = machine.request, let path = target?.path else { return }
        currentServer = server
        let state = snapshot.servers[server]
        upstreamHead.removeAll(keepingCapacity: true)
        upstreamHead.reserveCapacity(head.bytes.count + 256)   // the forwarding fields it adds
        let hop = generation.peer.map { $0.isMemberServer[server] ? $0.hopField(nowWallMs: worker.loop.wallClockMilliseconds) : [] } ?? []
        HeadRewriter.upstreamRequest(head, path: path, client: clientView,
                                     fallbackHost: state.config.address.description, extraFields: hop,
                                     forwarded: generation.forwardedOfServer[server], into: &upstreamHead)
        state.requestRouted()
        state.inFlight.wrappingIncrement(ordering: .relaxed)
        state.totalRequests.wrappingIncrement(ordering: .relaxed)
    }

    /// Attaches a pooled connection when allowed and available, else a new one, and writes the
    /// request head; tells the machine which (or that the connection could not even be started).
    private func connect(_ server: Int, allowPooled: Bool) {
        let sendProxy = generation.sendProxyOfServer[server]
        if allowPooled, let pooled = sendProxy == nil ? generation.upstreamPool.take(server: server)
            : privateUpstream?.take(server: server, generation: generation) {
            pooled.handler = self
            upstream = pooled
            meterAttached(server: server, pooled: true)
            pooled.setReading(true)
            upstreamHead.withUnsafeBytes { pooled.output.append($0) }
            followUp = .event(.upstreamAttached(pooled: true))
            return
        }
        let config = snapshot.servers[server].config
        if worker.accessLog.needsDetail { connectStartedMs = worker.loop.monotonicMilliseconds }
        do {
            let pool = generation.poolOfServer[server]
            let c = try Connection.connect(loop: worker.loop, host: config.address.host, port: Int(config.address.port),
                                           handler: self, tls: generation.tls.pools[pool], serverName: generation.tls.serverNames[server],
                                           preface: sendProxy.map(proxyHeader) ?? [])
            upstream = c
            meterAttached(server: server, pooled: false)
            c.setWriteLowWatermark(generation.settings.bufferBytes / 2)
            c.setReading(true)
            upstreamHead.withUnsafeBytes { c.output.append($0) }
            followUp = .event(.upstreamAttached(pooled: false))
        } catch {
            upstream = nil
            followUp = .event(.upstreamFailed("\(error)"))
        }
    }

    /// Keeps a `send_proxy` server's connection for this client's next request (see PrivateUpstream.swift).
    private func keepPrivately(_ connection: Connection, server: Int) {
        let kept = privateUpstream ?? PrivateUpstream()
        privateUpstream = kept
        kept.keep(connection, server: server, generation: generation, idleMs: generation.settings.upstreamIdleMs)
    }

    /// The PROXY protocol header for a new connection to a `send_proxy` pool: this client's address
    /// (after an inbound PROXY header, the one it stated) and the address it connected to.
    private func proxyHeader(_ version: SendProxy) -> [UInt8] {
        let source = ProxyAddress(host: client.peer.host, port: client.peer.port)
        let destination = client.localAddress.flatMap { ProxyAddress(host: $0.host, port: $0.port) }
        return ProxyHeaderWriter.header(version == .v1 ? .v1 : .v2, source: source, destination: destination)
    }

    /// Counts a failure against `server`; enough in a row take it down (passive health).
    private func serverFailed(_ server: Int) {
        let state = snapshot.servers[server]
        state.failures.wrappingIncrement(ordering: .relaxed)
        if state.recordPassiveFailure() {
            worker.log(LogLevel.warning.tag + "weir: server \(state.config.id) marked down after \(state.consecutivePassiveFailures) consecutive failures on client traffic")
        }
    }

    private func writeResponseHead(_ head: ResponseHead, framing: HeadRewriter.ClientFraming, connection: StaticString?,
                                   final: Bool) {
        guard let server = currentServer else { return }
        if let lane = http2Lane, !head.isUpgrade, let stream = lane.stream, stream.acceptsResponseHead {
            HeadRewriter.clientResponseFields(head, framing: framing, client: clientView,
                                              serverPrefixes: generation.serverPrefixes[server],
                                              extraFields: final ? generation.hstsFields[listenerIndex] : [],
                                              setCookie: final ? setCookie : [], into: &worker.http2ResponseFields)
            bytesToClient += worker.http2ResponseFields.http1HeadSize(reasonCount: head.reason.count)
            stream.responseHead(status: head.status, fields: worker.http2ResponseFields,
                                framing: HeadRewriter.clientBodyFraming(head, framing))
            return
        }
        worker.responseHeadScratch.removeAll(keepingCapacity: true)
        worker.responseHeadScratch.reserveCapacity(head.bytes.count + 256)
        HeadRewriter.clientResponse(head, framing: framing, connection: connection, client: clientView,
                                    serverPrefixes: generation.serverPrefixes[server],
                                    extraFields: final ? generation.hstsFields[listenerIndex] : [],
                                    setCookie: final ? setCookie : [], into: &worker.responseHeadScratch)
        bytesToClient += worker.responseHeadScratch.count
        worker.responseHeadScratch.withUnsafeBytes { client.output.append($0) }
    }

    private func endExchange(status: Int, server: Int?) {
        if worker.accessLog.isEnabled, let request = machine.request {
            logExchange(request, status: status, server: server, bytes: bytesToClient,
                        totalMs: worker.loop.monotonicMilliseconds - exchangeStartedMs, upstreamMs: responseHeadMs)
        }
        meterExchangeEnded(status: status, server: server, bytesOut: bytesToClient)
        bytesToClient = 0
        redirectedServer = nil
        currentServer = nil
        // They slice the request's bytes: let go, so the next head reuses its buffer.
        target = nil
        clientView.host = []
        if worker.hasQueued { worker.serveQueues() }
    }

    private func count(_ counter: SessionCounter) {
        let stats = worker.stats
        switch counter {
        case .request:
            stats.requests.wrappingIncrement(ordering: .relaxed)
            if client.isTLS && !countedHandshake {
                // The handshake is complete by the first request: count it, and whether it resumed a session.
                countedHandshake = true
                stats.tlsHandshakes.wrappingIncrement(ordering: .relaxed)
                if client.tlsSessionReused { stats.tlsResumedHandshakes.wrappingIncrement(ordering: .relaxed) }
            }
            if worker.accessLog.isEnabled { exchangeStartedMs = worker.loop.monotonicMilliseconds }
            meterRequestStarted()
            exchangeIsNew = true
            responseHeadMs = nil
            if worker.accessLog.needsDetail { resetAccessLogDetail() }
        case .badRequest: stats.badRequests.wrappingIncrement(ordering: .relaxed)
        case .badGateway: stats.badGateway.wrappingIncrement(ordering: .relaxed)
        case .unavailable: stats.unavailable.wrappingIncrement(ordering: .relaxed)
        case .gatewayTimeout: stats.gatewayTimeout.wrappingIncrement(ordering: .relaxed)
        case .retriedOnStaleConnection: stats.retriedOnStaleConnection.wrappingIncrement(ordering: .relaxed)
        case .retry: stats.retries.wrappingIncrement(ordering: .relaxed); meterRetry()
        case .abortedResponse: stats.abortedResponses.wrappingIncrement(ordering: .relaxed)
        case .tlsHandshakeFailure: stats.tlsHandshakeFailures.wrappingIncrement(ordering: .relaxed)
        case .tlsHandshakeTimeout: stats.tlsHandshakeTimeouts.wrappingIncrement(ordering: .relaxed)
        }
    }

    /// Counts bytes of a response written to the client outside the actions (local answers).
    func countBytesToClient(_ n: Int) { bytesToClient += n }

    private var exchangeStartedMs: Int64 = 0
    private var countedHandshake: Bool
    /// The client connection is one HTTP/2 stream (see `init`).
    let isHTTP2Stream: Bool
    /// The HTTP/2 lane this session serves (nil on an HTTP/1.1 connection). unowned(unsafe): the lane
    /// owns the session and clears this when it lets go of it (`HTTP2Lane.streamClosed`, its deinit).
    unowned(unsafe) var http2Lane: HTTP2Lane?
    /// An `h2c` listener: the first bytes are checked for the HTTP/2 preface.
    private var awaitsHTTP2Preface = false
    private var responseHeadMs: Int64?
}

extension ClientSession.FollowUp {
    /// This follow-up plus feeding the client's (`client`) or the server's buffered bytes.
    func adding(client: Bool) -> Self {
        switch self {
        case .none: return client ? .clientBytes : .upstreamBytes
        case .clientBytes: return client ? .clientBytes : .both
        case .upstreamBytes: return client ? .both : .upstreamBytes
        case .both: return .both
        case .event: return self   // an event comes first; it asks for bytes again if it needs them
        }
    }

    var includesUpstream: Bool {
        switch self {
        case .upstreamBytes, .both: return true
        default: return false
        }
    }
}

private extension ConnectionEvent {
    /// Whether the event ends the peer's input (its buffered bytes are handled first).
    var endsInput: Bool {
        switch self {
        case .endOfStream, .failed: return true
        default: return false
        }
    }
}
