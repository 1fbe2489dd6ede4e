import WeirBalance
import WeirConfig
import WeirHTTP
import WeirIO

/// One client connection: reads request heads, asks the `Decision` where each goes, forwards the
/// request and streams the response back (or redirects, or answers a discovery request itself),
/// then waits for the next request (keep-alive, pipelining) or turns into a tunnel after
/// `101 Switching Protocols`.
///
/// Lifecycle: `readingHead` → (`queued` while every server is at max_conns) → `forwarding`, or
/// `discarding` (the body of a request Weir answered itself) → (`readingHead` again | `tunnel` |
/// `closed`).
/// Exactly one exchange is in flight at a time; pipelined requests wait in the client's input
/// buffer and are parsed when the previous response is complete, so responses keep their order.
final class ClientSession: ConnectionHandler {
    enum State { case readingHead, queued, forwarding, discarding, tunnel, closed }

    /// How much of a body remains to be moved.
    enum BodyProgress {
        case done
        case length(Int)
        case chunked(ChunkedDecoder)
        case untilClose
    }

    unowned let worker: Worker
    let client: Connection
    let listenerIndex: Int
    private(set) var state: State = .readingHead
    private var headTimer: LoopTimer!

    // The exchange in flight.
    private var request: RequestHead?
    private var clientView = HeadRewriter.ClientView(clientAddress: "", scheme: "http", host: [])
    private var upstreamHead: [UInt8] = []
    private var upstream: Connection?
    private var server = -1
    private var snapshot: RoutingSnapshot
    private var upstreamReused = false
    private var retried = false
    private var requestBody = BodyProgress.done
    private var requestBodyForwarded = 0
    private var responseBody = BodyProgress.done
    private var responseHeadSeen = false
    private var responseStatus = 0
    private var dechunk = false
    private var upstreamKeepAlive = false
    private var closeAfterResponse = false
    private var bytesToClient = 0
    private var startedMs: Int64 = 0
    private var responseHeadMs: Int64?
    private var awaitingIdle = false
    private var target: TargetParts?
    /// Servers that failed this request (not tried again for it) and how many were tried.
    private var excluded: [Int] = []
    private var attempts = 0
    /// Whether the current upstream connection ever completed its TCP handshake.
    private var upstreamConnected = false
    private let clientAddressBytes: [UInt8]
    /// A Set-Cookie field (with CRLF) the current response must carry, or empty.
    private var setCookie: [UInt8] = []
    /// The body of a request Weir answered itself, still to be read and dropped, and how many more
    /// bytes it may drop before it closes the connection instead.
    private var discardBody: BodyProgress = .done
    private var discardBudget = 0
    /// The server a redirect sent the client to (for the access log).
    private var redirectedTo: String?
    /// When a queued request gives up (set when it is first queued; kept while it waits again).
    private var queueDeadline: UInt64?
    /// Rewrites the current response body's server URLs, when the pool asks for it.
    private var rewriter: BodyRewriter?

    init(worker: Worker, client: Connection, listenerIndex: Int) {
        self.worker = worker
        self.client = client
        self.listenerIndex = listenerIndex
        snapshot = worker.snapshot
        clientView.clientAddress = client.peer.host
        clientView.scheme = client.isTLS ? "https" : "http"
        clientAddressBytes = Array(client.peer.host.utf8)
        headTimer = LoopTimer(loop: worker.loop) { [unowned self] in self.headTimerFired() }
        client.handler = self
        client.setWriteLowWatermark(worker.settings.bufferBytes / 2)
        // A client that stops reading our output for this long is gone.
        client.setTimeouts(readMilliseconds: nil, writeMilliseconds: worker.settings.clientIdleMs)
        // A TLS client first has handshake_timeout to finish its handshake.
        let handshakeMs = worker.handshakeTimeoutsMs[listenerIndex]
        headTimer.schedule(milliseconds: client.isTLS && handshakeMs > 0 ? handshakeMs : worker.settings.clientHeaderMs)
    }

    // MARK: - Callbacks

    func connectionReadable(_ connection: Connection) {
        if connection === client {
            switch state {
            case .readingHead: readRequestHead()
            case .forwarding: pumpRequestBody()
            case .tunnel: relayTunnel(from: client)
            case .discarding: discardRequestBody()
            case .queued, .closed: break
            }
        } else if connection === upstream {
            switch state {
            case .forwarding: readResponse()
            case .tunnel: relayTunnel(from: connection)
            default: break
            }
        }
    }

    func connectionWritable(_ connection: Connection) {
        // The side we write to drained: resume reading from the other side.
        if connection === client {
            guard let upstream else { return }
            if state == .forwarding {
                upstream.setReading(true)
                readResponse()
            } else if state == .tunnel {
                upstream.setReading(true)
                relayTunnel(from: upstream)
            }
        } else if connection === upstream {
            if state == .forwarding, !isDone(requestBody) {
                client.setReading(true)
                pumpRequestBody()
            } else if state == .tunnel {
                client.setReading(true)
                relayTunnel(from: client)
            }
        }
    }

    func connection(_ connection: Connection, event: ConnectionEvent) {
        if connection === client { clientEvent(event) } else if connection === upstream { upstreamEvent(event) }
    }

    // MARK: - Request head

    private func readRequestHead() {
        let input = client.input
        if input.isEmpty { return }
        if awaitingIdle {
            // First byte of the next request: the header deadline starts now.
            awaitingIdle = false
            headTimer.schedule(milliseconds: worker.settings.clientHeaderMs)
        }
        let limits = worker.settings.parserLimits
        let result = input.withContiguousPrefix(limits.maxHeaderBytes + 1) {
            RequestHeadParser.parse($0, limits: limits)
        }
        switch result {
        case .needMore:
            return
        case .error(let error):
            worker.stats.badRequests.wrappingIncrement(ordering: .relaxed)
            let line = input.copyPrefix(min(input.count, 200))
            rejectAndClose(status: error.status, reason: error.reason,
                           logLine: line.prefix { $0 != 13 && $0 != 10 })
        case .complete(let head, let consumed):
            input.drain(consumed)
            headTimer.cancel()
            startRequest(head)
        }
    }

    /// Routes and forwards a parsed request.
    private func startRequest(_ head: RequestHead) {
        worker.stats.requests.wrappingIncrement(ordering: .relaxed)
        startedMs = worker.loop.nowMilliseconds
        responseHeadMs = nil
        request = head
        snapshot = worker.snapshot
        closeAfterResponse = !head.keepAlive || worker.isDraining
        requestBody = progress(for: head.framing)
        requestBodyForwarded = 0
        retried = false
        bytesToClient = 0
        responseHeadSeen = false

        let target = TargetParts(head)
        clientView.host = target.hostWithPort
        self.target = target
        excluded.removeAll(keepingCapacity: true)
        attempts = 0
        setCookie.removeAll()
        queueDeadline = nil
        decideAndForward()
    }

    // MARK: - Decision (begin: the verdict comes from WeirBalance's pure `Decision.answer`)

    /// Asks `Decision.answer` what to do with the current request and carries out the verdict.
    private func decideAndForward() {
        guard let head = request, let target else { return }
        switch decide(head, target) {
        case .reject(let status, let reason):
            if status == 503 { worker.stats.unavailable.wrappingIncrement(ordering: .relaxed) }
            rejectAndClose(status: status, reason: reason, retryAfter: status == 503 ? 5 : nil)
        case .queue(let pool):
            // Every eligible server is at max_conns: wait (bounded) for one to free up.
            guard worker.enqueue(self, pool: pool, deadline: &queueDeadline) else {
                worker.stats.unavailable.wrappingIncrement(ordering: .relaxed)
                rejectAndClose(status: 503, reason: "every server of pool \(snapshot.pools[pool].name) is full and its queue is full",
                               retryAfter: 1)
                return
            }
            state = .queued
            client.setReading(false)
        case .forward(let server, let pin):
            setCookie = worker.sticky.apply(pin, nowMs: worker.loop.nowMilliseconds)
            forward(to: server)
        case .redirect(let server, let status, let pin):
            setCookie = worker.sticky.apply(pin, nowMs: worker.loop.nowMilliseconds)
            redirect(to: server, status: status)
        case .httpsRedirect(let location):
            redirectToHTTPS(location: location)
        case .local(let answer):
            localEndpoint(head, answer)
        }
    }

    /// Runs `Decision.answer` for the current request (with the servers in `excluded` left out).
    /// `mode` overrides the listener's run-time mode (a retry after a failure in proxy mode is
    /// never a redirect).
    private func decide(_ head: RequestHead, _ target: TargetParts, mode: Mode? = nil) -> Verdict {
        let listenerMode = mode ?? worker.modes.mode(listenerIndex)
        return head.bytes.withUnsafeBytes { raw in
            target.hostOnly.withUnsafeBytes { host in
                target.routingPath.withUnsafeBytes { path in
                    clientAddressBytes.withUnsafeBytes { address in
                        let facts = RequestFacts(
                            host: target.hostWithPort.isEmpty ? nil : host, path: path, listener: listenerIndex,
                            excluded: excluded, clientAddress: address,
                            header: { name in head.value(of: name).map { UnsafeRawBufferPointer(rebasing: raw[$0]) } },
                            cookie: { name in CookieLookup.value(named: name, in: head).map { UnsafeRawBufferPointer(rebasing: raw[$0]) } },
                            listenerMode: listenerMode, secure: client.isTLS)
                        return Decision.answer(facts, snapshot: snapshot, state: &worker.policy, services: worker.sticky,
                                               now: worker.clock.nowNanoseconds, wallMs: worker.loop.nowMilliseconds)
                    }
                }
            }
        }
    }

    // MARK: - Decision (end)

    /// Called by the worker for a queued request: try again, or give up after the pool's queue timeout.
    func retryFromQueue(timedOut: Bool) {
        guard state == .queued else { return }
        state = .readingHead
        if timedOut {
            worker.stats.unavailable.wrappingIncrement(ordering: .relaxed)
            rejectAndClose(status: 503, reason: "no server of the pool freed up in time", retryAfter: 1)
            return
        }
        client.setReading(true)
        decideAndForward()
    }

    /// Sends the current request to `server`.
    private func forward(to server: Int) {
        guard let head = request, let target else { return }
        self.server = server
        let state = snapshot.servers[server]
        upstreamHead.removeAll(keepingCapacity: true)
        HeadRewriter.upstreamRequest(head, path: target.path, client: clientView,
                                     fallbackHost: state.config.address.description, into: &upstreamHead)
        state.inFlight.wrappingIncrement(ordering: .relaxed)
        state.totalRequests.wrappingIncrement(ordering: .relaxed)
        attempts += 1
        retried = false
        self.state = .forwarding
        connectUpstream(allowPooled: true)
    }

    /// Attaches an upstream connection (pooled when allowed and available, else new), writes the
    /// request head and whatever body is already buffered.
    private func connectUpstream(allowPooled: Bool) {
        let config = snapshot.servers[server].config
        let settings = worker.settings
        if allowPooled, let pooled = worker.upstreamPool.take(server: server) {
            pooled.handler = self
            upstream = pooled
            upstreamReused = true
            upstreamConnected = true
        } else {
            do {
                let pool = worker.poolOfServer[server]
                upstream = try Connection.connect(loop: worker.loop, host: config.address.host,
                                                  port: Int(config.address.port), handler: self,
                                                  tls: worker.tls.pools[pool], serverName: worker.tls.serverNames[server])
                upstreamReused = false
                upstreamConnected = false
            } catch {
                upstream = nil
                serverFailed()
                failBeforeResponse(status: 502, reason: "cannot connect to server \(config.id): \(error)")
                return
            }
        }
        let upstream = upstream!
        // Until the response head arrives, the read timeout is the server's time to answer; the
        // write timeout covers the TCP connect and a server that stops reading our body.
        upstream.setTimeouts(readMilliseconds: settings.upstreamResponseMs,
                             writeMilliseconds: upstreamReused ? settings.upstreamResponseMs : settings.upstreamConnectMs)
        upstream.setWriteLowWatermark(settings.bufferBytes / 2)
        upstream.setReading(true)
        upstreamHead.withUnsafeBytes { upstream.output.append($0) }
        pumpRequestBody()
    }

    // MARK: - Request body

    private func pumpRequestBody() {
        guard let upstream, state == .forwarding else { return }
        let input = client.input
        switch requestBody {
        case .done:
            // Pipelined bytes wait for their turn; stop reading if they pile up.
            if input.count >= worker.settings.bufferBytes { client.setReading(false) }
            return
        case .length(let remaining):
            let moved = input.move(remaining, to: upstream.output)
            requestBodyForwarded += moved
            requestBody = remaining - moved == 0 ? .done : .length(remaining - moved)
        case .chunked(var decoder):
            let outcome = moveChunked(from: input, to: upstream.output, decoder: &decoder, keepFraming: true)
            requestBodyForwarded += outcome.moved
            switch outcome.end {
            case .more: requestBody = .chunked(decoder)
            case .finished: requestBody = .done
            case .malformed(let error):
                worker.stats.badRequests.wrappingIncrement(ordering: .relaxed)
                abandonUpstream()
                rejectAndClose(status: 400, reason: error.reason)
                return
            }
        case .untilClose:
            return
        }
        if isDone(requestBody) {
            if upstream.isOpen, !responseHeadSeen {
                upstream.setTimeouts(readMilliseconds: worker.settings.upstreamResponseMs,
                                     writeMilliseconds: worker.settings.upstreamResponseMs)
            }
        } else if upstream.output.count >= worker.settings.bufferBytes {
            client.setReading(false)   // resumed when the server drains what we sent
        }
    }

    // MARK: - Response

    private func readResponse() {
        guard let upstream, state == .forwarding else { return }
        while !responseHeadSeen || isInterimPending {
            if upstream.input.isEmpty { return }
            let limits = worker.settings.parserLimits
            let wasHEAD = request?.isHEAD ?? false
            let result = upstream.input.withContiguousPrefix(limits.maxHeaderBytes + 1) {
                ResponseHeadParser.parse($0, requestWasHEAD: wasHEAD, limits: limits)
            }
            switch result {
            case .needMore:
                return
            case .error(let error):
                serverFailed()
                failBeforeResponse(status: 502, reason: "invalid response from server \(serverID): \(error.reason)")
                return
            case .complete(let head, let consumed):
                upstream.input.drain(consumed)
                if !startResponse(head) { return }
            }
        }
        pumpResponseBody()
    }

    private var isInterimPending = false

    /// Sends the response head on. Returns false when the exchange ended or changed into a tunnel.
    private func startResponse(_ head: ResponseHead) -> Bool {
        guard let request else { return false }
        responseHeadSeen = true
        if responseHeadMs == nil { responseHeadMs = worker.loop.nowMilliseconds - startedMs }
        if head.isInterim {
            // 100 Continue and friends go to the client as they are; the final head follows.
            isInterimPending = true
            if request.version == .http11 { writeResponseHead(head, framing: .asReceived, connection: nil) }
            return true
        }
        isInterimPending = false
        snapshot.servers[server].recordPassiveSuccess()
        responseStatus = head.status
        upstreamKeepAlive = head.keepAlive
        if head.isUpgrade {
            guard request.isUpgrade else {
                serverFailed()
                failBeforeResponse(status: 502, reason: "server \(serverID) switched protocols unasked")
                return false
            }
            writeResponseHead(head, framing: .asReceived, connection: "upgrade")
            startTunnel()
            return false
        }
        dechunk = false
        switch head.framing {
        case .chunked where request.version == .http10:
            dechunk = true
            closeAfterResponse = true
        case .untilClose:
            closeAfterResponse = true
        default:
            break
        }
        var framing: HeadRewriter.ClientFraming = dechunk ? .dechunked : .asReceived
        rewriter = nil
        let rewriteTypes = snapshot.configuration.pools[worker.poolOfServer[server]].rewriteBodyTypes
        if !rewriteTypes.isEmpty, head.framing != .none, !clientView.host.isEmpty,
           let type = head.value(of: "content-type"), BodyRewriter.applies(to: head.string(type), types: rewriteTypes) {
            let chunkedOut = request.version == .http11
            var replacement = Array(clientView.scheme.description.utf8) + Array("://".utf8)
            replacement += clientView.host
            rewriter = BodyRewriter(prefixes: worker.serverPrefixes[server], replacement: replacement, chunked: chunkedOut)
            framing = chunkedOut ? .rechunked : .closeDelimited
            if !chunkedOut { closeAfterResponse = true }
            dechunk = true   // the data bytes go to the rewriter without the server's framing
        }
        if !isDone(requestBody) || worker.isDraining { closeAfterResponse = true }
        let connection: StaticString? = closeAfterResponse ? "close" : (request.version == .http10 ? "keep-alive" : nil)
        writeResponseHead(head, framing: framing, connection: connection)
        responseBody = progress(for: head.framing)
        // From here on the read timeout is the server's silence in the middle of a body.
        upstream?.setTimeouts(readMilliseconds: worker.settings.upstreamResponseMs, writeMilliseconds: worker.settings.upstreamResponseMs)
        return true
    }

    private func writeResponseHead(_ head: ResponseHead, framing: HeadRewriter.ClientFraming, connection: StaticString?) {
        var out: [UInt8] = []
        out.reserveCapacity(head.bytes.count + 64)
        HeadRewriter.clientResponse(head, framing: framing, connection: connection, client: clientView,
                                    serverPrefixes: worker.serverPrefixes[server],
                                    extraFields: head.isInterim ? [] : worker.hstsFields[listenerIndex] + setCookie,
                                    into: &out)
        bytesToClient += out.count
        out.withUnsafeBytes { client.output.append($0) }
    }

    private func pumpResponseBody() {
        guard let upstream, state == .forwarding, responseHeadSeen, !isInterimPending else { return }
        let input = upstream.input
        let output = rewriter?.scratch.buffer ?? client.output
        defer { if let rewriter { bytesToClient += rewriter.flush(into: client.output) } }
        switch responseBody {
        case .done:
            break
        case .length(let remaining):
            let moved = input.move(remaining, to: output)
            if rewriter == nil { bytesToClient += moved }
            responseBody = remaining - moved == 0 ? .done : .length(remaining - moved)
        case .chunked(var decoder):
            let outcome = moveChunked(from: input, to: output, decoder: &decoder, keepFraming: !dechunk)
            if rewriter == nil { bytesToClient += outcome.moved }
            switch outcome.end {
            case .more: responseBody = .chunked(decoder)
            case .finished: responseBody = .done
            case .malformed:
                serverFailed()
                abortExchange()
                return
            }
        case .untilClose:
            if rewriter == nil { bytesToClient += input.count }
            input.moveAll(to: output)
            if client.output.count >= worker.settings.bufferBytes { upstream.setReading(false) }
            return   // ends when the server closes
        }
        if isDone(responseBody) {
            if let rewriter { bytesToClient += rewriter.end(into: client.output); self.rewriter = nil }
            finishExchange()
        } else if client.output.count >= worker.settings.bufferBytes {
            upstream.setReading(false)   // resumed when the client drains (connectionWritable)
        }
    }

    /// The response is complete: account, give the upstream connection back, go on with the client.
    private func finishExchange() {
        let reusable = upstreamKeepAlive && isDone(requestBody) && upstream?.input.isEmpty == true
        if let upstream {
            if reusable { worker.upstreamPool.park(upstream, server: server) } else { upstream.close() }
        }
        upstream = nil
        endAccounting(status: responseStatus)
        request = nil
        if worker.queuedCount > 0 { worker.serveQueues() }
        if closeAfterResponse || !isDone(requestBody) || worker.isDraining {
            finish(flushFirst: true)
            return
        }
        awaitNextRequest()
    }

    /// Back to reading heads on a kept-alive connection: the idle timer while nothing has come,
    /// the header deadline as soon as a (pipelined) request is already there.
    private func awaitNextRequest() {
        state = .readingHead
        client.setReading(true)
        if client.input.isEmpty {
            awaitingIdle = true
            headTimer.schedule(milliseconds: worker.settings.clientIdleMs)
        } else {
            headTimer.schedule(milliseconds: worker.settings.clientHeaderMs)
            readRequestHead()
        }
    }

    private func endAccounting(status: Int) {
        if server >= 0 {
            snapshot.servers[server].inFlight.wrappingDecrement(ordering: .relaxed)
        }
        if worker.accessLog.isEnabled, let request {
            var end = 0
            let bytes = request.bytes
            while end < bytes.count && bytes[end] != 13 { end += 1 }
            worker.accessLog.record(client: client.peer.host, requestLine: bytes[0..<end], status: status,
                                    bytes: bytesToClient, server: server >= 0 ? serverID : redirectedTo.map { "->" + $0 },
                                    totalMs: worker.loop.nowMilliseconds - startedMs, upstreamMs: responseHeadMs)
        }
        server = -1
    }

    private var serverID: String { server >= 0 ? snapshot.servers[server].config.id : "-" }

    // MARK: - Failures

    private func upstreamEvent(_ event: ConnectionEvent) {
        guard state == .forwarding || state == .tunnel else { return }
        if state == .tunnel {
            finishTunnel()
            return
        }
        switch event {
        case .connected:
            upstreamConnected = true
            if !upstreamReused {
                upstream?.setTimeouts(readMilliseconds: worker.settings.upstreamResponseMs,
                                      writeMilliseconds: worker.settings.upstreamResponseMs)
            }
        case .endOfStream where responseHeadSeen:
            if case .untilClose = responseBody {
                // Close-delimited body: the server's FIN is the end of the response.
                readResponseTail()
                responseBody = .done
                finishExchange()
            } else {
                // Anything still buffered goes out first; then the client learns the body is cut.
                pumpResponseBody()
                if state == .forwarding, upstream != nil { serverFailed(); abortExchange() }
            }
        case .endOfStream, .failed:
            if !responseHeadSeen, upstreamReused, !retried, requestBodyForwarded == 0 {
                // A pooled connection the server had already closed: not the request's fault.
                retried = true
                worker.stats.retriedOnStaleConnection.wrappingIncrement(ordering: .relaxed)
                upstream?.close()
                upstream = nil
                connectUpstream(allowPooled: false)
                return
            }
            serverFailed()
            if responseHeadSeen {
                abortExchange()
                return
            }
            // Refused, or reset before any response byte: another server may take it.
            if retryElsewhere(connectFailed: !upstreamConnected) { return }
            if case .failed(let error) = event {
                failBeforeResponse(status: 502, reason: "server \(serverID) failed before answering (\(error))")
            } else {
                failBeforeResponse(status: 502, reason: "server \(serverID) closed the connection before answering")
            }
        case .readTimeout, .writeTimeout:
            serverFailed()
            if responseHeadSeen {
                abortExchange()
                return
            }
            let connecting = !upstreamConnected
            // A connect that timed out never reached the server: safe to try another.
            if connecting, retryElsewhere(connectFailed: true) { return }
            worker.stats.gatewayTimeout.wrappingIncrement(ordering: .relaxed)
            let seconds = (connecting ? worker.settings.upstreamConnectMs : worker.settings.upstreamResponseMs) / 1000
            let what = connecting ? "connect to" : "answer from"
            failBeforeResponse(status: 504, reason: "no \(what) server \(serverID) within \(seconds) s", counted: true)
        }
    }

    /// Sends the request to another server after a failure before any response byte, when that
    /// cannot duplicate it: no body byte was sent, and either the server never got the request
    /// (the connect failed) or the method is idempotent. At most the pool's `retries` times.
    /// Returns false when the request cannot be retried (the caller answers the client).
    private func retryElsewhere(connectFailed: Bool) -> Bool {
        guard let head = request, let target, server >= 0, requestBodyForwarded == 0,
              connectFailed || head.methodIsIdempotent else { return false }
        let pool = worker.poolOfServer[server]
        guard attempts <= snapshot.configuration.pools[pool].retries else { return false }
        excluded.append(server)
        // Only when another server is there to take it; otherwise the client hears about this failure.
        guard case .forward(let next, let pin) = decide(head, target, mode: .proxy) else {
            excluded.removeLast()
            return false
        }
        abandonUpstream()
        snapshot.servers[server].inFlight.wrappingDecrement(ordering: .relaxed)
        worker.stats.retries.wrappingIncrement(ordering: .relaxed)
        setCookie = worker.sticky.apply(pin, nowMs: worker.loop.nowMilliseconds)
        forward(to: next)
        return true
    }

    private func readResponseTail() {
        guard let upstream else { return }
        if let rewriter {
            upstream.input.moveAll(to: rewriter.scratch.buffer)
            bytesToClient += rewriter.end(into: client.output)
            self.rewriter = nil
            return
        }
        bytesToClient += upstream.input.count
        upstream.input.moveAll(to: client.output)
    }

    /// Counts a failure against the current server; enough in a row take it down (passive health).
    private func serverFailed() {
        guard server >= 0 else { return }
        let state = snapshot.servers[server]
        state.failures.wrappingIncrement(ordering: .relaxed)
        if state.recordPassiveFailure() {
            worker.log("weir: server \(state.config.id) marked down after \(state.consecutivePassiveFailures) consecutive failures on client traffic")
        }
    }

    /// The server failed before a response head: answer the client with `status` and close.
    private func failBeforeResponse(status: Int, reason: String, counted: Bool = false) {
        if status == 502 && !counted { worker.stats.badGateway.wrappingIncrement(ordering: .relaxed) }
        abandonUpstream()
        rejectAndClose(status: status, reason: reason, retryAfter: nil)
    }

    /// The response was partly sent and cannot be completed: the client must see the connection end.
    private func abortExchange() {
        worker.stats.abortedResponses.wrappingIncrement(ordering: .relaxed)
        abandonUpstream()
        endAccounting(status: responseStatus)
        request = nil
        finish(flushFirst: true)
    }

    private func abandonUpstream() {
        upstream?.close()
        upstream = nil
    }

    private func clientEvent(_ event: ConnectionEvent) {
        switch state {
        case .tunnel:
            finishTunnel()
        case .readingHead:
            if case .failed(let error) = event, error.operation.hasPrefix("tls handshake") {
                worker.stats.tlsHandshakeFailures.wrappingIncrement(ordering: .relaxed)
            }
            finish(flushFirst: false)
        case .discarding:
            finish(flushFirst: true)
        case .queued:
            worker.dequeue(self)
            endAccounting(status: 499)
            request = nil
            finish(flushFirst: false)
        case .forwarding:
            if case .endOfStream = event, isDone(requestBody) {
                // The client half-closed after sending its request: answer, then close.
                closeAfterResponse = true
                return
            }
            abandonUpstream()
            endAccounting(status: responseHeadSeen ? responseStatus : 499)
            request = nil
            finish(flushFirst: false)
        case .closed:
            break
        }
    }

    private func headTimerFired() {
        guard state == .readingHead else { return }
        if client.isHandshaking {
            worker.stats.tlsHandshakeTimeouts.wrappingIncrement(ordering: .relaxed)
            finish(flushFirst: false)
            return
        }
        if client.input.isEmpty {
            finish(flushFirst: false)   // idle keep-alive connection: just close
        } else {
            rejectAndClose(status: 408, reason: "request head not received within \(worker.settings.clientHeaderMs / 1000) s")
        }
    }

    /// Writes an error response (with a log line) and closes the client after it is sent.
    private func rejectAndClose(status: Int, reason: String, retryAfter: Int? = nil, logLine: ArraySlice<UInt8>? = nil) {
        ErrorResponse.write(status: status, reason: reason, retryAfter: retryAfter, extraFields: worker.hstsFields[listenerIndex],
                            to: client.output)
        if request != nil || server >= 0 {
            endAccounting(status: status)
        } else if worker.accessLog.isEnabled {
            worker.accessLog.record(client: client.peer.host, requestLine: logLine ?? [], status: status, bytes: 0,
                                    server: nil, totalMs: 0, upstreamMs: nil)
        }
        request = nil
        finish(flushFirst: true)
    }

    // MARK: - Tunnel (after 101)

    private func startTunnel() {
        guard let upstream else { return }
        state = .tunnel
        endAccounting(status: 101)
        request = nil
        let idle = worker.settings.tunnelIdleMs
        upstream.setTimeouts(readMilliseconds: idle, writeMilliseconds: idle)
        client.setTimeouts(readMilliseconds: idle, writeMilliseconds: idle)
        relayTunnel(from: upstream)
        relayTunnel(from: client)
    }

    private func relayTunnel(from source: Connection) {
        guard state == .tunnel, let upstream else { return }
        let destination = source === client ? upstream : client
        source.input.moveAll(to: destination.output)
        if destination.output.count >= worker.settings.bufferBytes { source.setReading(false) }
    }

    private func finishTunnel() {
        guard let upstream else { finish(flushFirst: true); return }
        relayTunnel(from: upstream)
        relayTunnel(from: client)
        upstream.closeAfterFlush()
        self.upstream = nil
        finish(flushFirst: true)
    }

    // MARK: - End

    /// Closes the client connection (after flushing what was written, when asked) and leaves the worker.
    private func finish(flushFirst: Bool) {
        guard state != .closed else { return }
        state = .closed
        headTimer.cancel()
        abandonUpstream()
        if flushFirst { client.closeAfterFlush() } else { client.close() }
        worker.sessionEnded(self)
    }

    /// Ends an idle keep-alive session at once (drain); an active one finishes its exchange first.
    func closeIfIdle() {
        if state == .readingHead && client.input.isEmpty { finish(flushFirst: false) }
    }

    // MARK: - Redirect mode (the IP redirector)

    /// Answers with a redirect to `server`'s own public URL plus the original path and query, so
    /// the client sends the request there itself; the server is picked exactly as in proxy mode.
    private func redirect(to server: Int, status: Int) {
        guard let head = request, let target else { return }
        let config = snapshot.servers[server].config
        let base = config.publicURL ?? "http://\(config.address)"
        var out: [UInt8] = []
        let keepAlive = !closeAfterResponse && head.version == .http11
        Redirector.response(status: status, base: base, path: target.path, setCookie: worker.hstsFields[listenerIndex] + setCookie,
                            keepAlive: keepAlive, into: &out)
        worker.stats.redirects.wrappingIncrement(ordering: .relaxed)
        if !keepAlive { closeAfterResponse = true }
        // The body was meant for the server: read and drop it, up to a limit.
        redirectedTo = config.id
        answerLocally(out, status: status)
        redirectedTo = nil
    }

    /// Sends a response Weir made itself for the current request (a redirect, a discovery
    /// document), then drops the request's body, if any, before reading the next request.
    private func answerLocally(_ response: [UInt8], status: Int) {
        bytesToClient += response.count
        client.output.append(response)
        responseStatus = status
        endAccounting(status: status)
        discardBody = requestBody
        requestBody = .done
        discardBudget = worker.settings.redirectBodyBytes
        state = .discarding
        discardRequestBody()
    }

    /// A plain listener with `https_redirect`: every request goes to the same host and path over
    /// HTTPS; `location` is the whole URL (`Decision.answer` builds it), so it goes in as the path.
    private func redirectToHTTPS(location: String) {
        var out: [UInt8] = []
        Redirector.response(status: 308, base: "", path: ArraySlice(location.utf8), setCookie: [], keepAlive: !closeAfterResponse,
                            into: &out)
        answerLocally(out, status: 308)
    }

    /// Drops what has arrived of a redirected request's body; back to reading heads once it is all
    /// gone, closing instead when it is larger than `redirect_body_bytes`.
    private func discardRequestBody() {
        guard state == .discarding else { return }
        let input = client.input
        switch discardBody {
        case .done, .untilClose:
            break
        case .length(let remaining):
            let n = min(remaining, input.count, discardBudget)
            input.drain(n)
            discardBudget -= n
            discardBody = remaining - n == 0 ? .done : .length(remaining - n)
        case .chunked(var decoder):
            let scratch = OwnedBuffer()
            let outcome = moveChunked(from: input, to: scratch.buffer, decoder: &decoder, keepFraming: false)
            discardBudget -= outcome.moved
            switch outcome.end {
            case .more: discardBody = .chunked(decoder)
            case .finished: discardBody = .done
            case .malformed: discardBody = .done; closeAfterResponse = true
            }
        }
        if case .done = discardBody {
            request = nil
            if closeAfterResponse || worker.isDraining { finish(flushFirst: true); return }
            awaitNextRequest()
        } else if discardBudget <= 0 {
            // Larger than we are willing to read: the response is out; close after it.
            request = nil
            finish(flushFirst: true)
        }
    }

    // MARK: - Local endpoints (server list, session assignment)

    /// Answers a discovery request with the document `Decision.answer` gave (recording an
    /// assignment's pin in the register first).
    private func localEndpoint(_ head: RequestHead, _ answer: LocalAnswer) {
        if case .assignment(let assignment) = answer {
            worker.sticky.apply(assignment.register, nowMs: worker.loop.nowMilliseconds)
        }
        let body = LocalEndpoints.document(answer)
        var out = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: \(body.count)\r\n".utf8)
        out += Array((closeAfterResponse ? "Connection: close\r\n\r\n" : "\r\n").utf8)
        if !head.isHEAD { out += body }
        answerLocally(out, status: 200)
    }

    // MARK: - Helpers

    private func progress(for framing: BodyFraming) -> BodyProgress {
        switch framing {
        case .none: return .done
        case .contentLength(let n): return n == 0 ? .done : .length(n)
        case .chunked: return .chunked(ChunkedDecoder())
        case .untilClose: return .untilClose
        }
    }

    private func isDone(_ progress: BodyProgress) -> Bool {
        if case .done = progress { return true }
        return false
    }
}

extension ConnectionEvent {
    var isRead: Bool {
        if case .readTimeout = self { return true }
        return false
    }
}
