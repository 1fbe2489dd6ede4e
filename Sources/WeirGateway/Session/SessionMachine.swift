import WeirHTTP

/// The protocol state of one client connection, as a value: `handle(_:into:)` takes an event and
/// appends the actions the shell (`ClientSession`) carries out. No I/O, no clock of its own, no
/// configuration beyond `SessionLimits`: every framing, retry and timeout rule is testable with
/// scripted events (see `Tests/WeirGatewayTests/SessionMachine*`).
///
/// One exchange is in flight at a time; pipelined requests wait in the client's input and are
/// parsed once the previous response is complete, so responses keep their order.
///
/// Phases: `awaitingHead` → `routing` → (`queued` →) `forwarding` → `awaitingHead` again, or
/// `answered` (a response Weir made itself, while the request body is dropped), `tunnel` (after
/// `101`), `closed`. Each phase carries the data only it has.
struct SessionMachine {
    /// The settings the rules depend on, in milliseconds and bytes.
    struct Limits {
        var parser: ParserLimits
        var clientHeaderMs: Int64
        var clientIdleMs: Int64
        var clientBodyMs: Int64
        var upstreamConnectMs: Int64
        var upstreamResponseMs: Int64
        var tunnelIdleMs: Int64
        /// Request body bytes dropped after a response Weir made itself, before closing instead.
        var discardBodyBytes: Int
        /// Interim (1xx) responses accepted per exchange, and their head bytes in all.
        var maxInterimResponses: Int = 16
        var maxInterimBytes: Int = 64 * 1024
    }

    /// One request and what has happened to it. (The head itself is `request`: the phases stay
    /// trivially copyable, so handling an event copies no reference.)
    struct Exchange {
        // Largest fields first and small integers: the phases are copied on every event.
        /// The request body still coming from the client.
        var body: BodyReader
        /// Body bytes moved to the server in the current attempt.
        var bodySent = 0
        private var attemptCount: Int16 = 0
        /// Facts of the request head.
        let isHEAD: Bool
        let isHTTP10: Bool
        let isUpgrade: Bool
        let isIdempotent: Bool
        /// The client connection closes after this exchange.
        var closeAfter: Bool
        /// Whether one stale pooled connection was met already.
        var reconnected = false

        init(isHEAD: Bool, isHTTP10: Bool, isUpgrade: Bool, isIdempotent: Bool, body: BodyReader, closeAfter: Bool) {
            self.isHEAD = isHEAD
            self.isHTTP10 = isHTTP10
            self.isUpgrade = isUpgrade
            self.isIdempotent = isIdempotent
            self.body = body
            self.closeAfter = closeAfter
        }

        /// Attempts made (servers tried), counting the current one.
        var attempts: Int {
            get { Int(attemptCount) }
            set { attemptCount = Int16(clamping: newValue) }
        }
    }

    /// The current server and where its response stands.
    struct Attempt {
        var response: ResponsePhase = .awaitingHead(interims: 0, interimBytes: 0)
        private let serverIndex: Int32
        private let retryBudget: Int16
        /// Whether an upstream connection is attached yet (the shell answered `.connect`).
        var attached = false
        var pooled = false
        /// Whether the TCP/TLS connect completed (always true for a pooled connection).
        var connected = false
        /// Whether the response deadline (upstream_response, to the final head) is armed.
        var deadlineArmed = false

        init(server: Int, retries: Int) {
            serverIndex = Int32(server)
            retryBudget = Int16(clamping: retries)
        }

        var server: Int { Int(serverIndex) }
        /// The pool's retry budget.
        var retries: Int { Int(retryBudget) }
    }

    enum ResponsePhase {
        /// No final head yet (interims so far, and their bytes).
        case awaitingHead(interims: Int, interimBytes: Int)
        /// The final head went to the client; its body is being relayed.
        case body(BodyReader, ResponsePlan)
    }

    enum Phase {
        /// Waiting for a request head. `idle`: a kept-alive connection before the first byte of the
        /// next request (client_idle runs); `partial`: some bytes of a head arrived.
        case awaitingHead(idle: Bool, partial: Bool)
        /// The head is parsed; the shell is finding where it goes.
        case routing(Exchange)
        /// Waiting for a server of the pool to free up.
        case queued(Exchange)
        case forwarding(Exchange, Attempt)
        /// Weir answered the request itself; the rest of its body is dropped (at most `budget` bytes).
        case answered(body: BodyReader, budget: Int, closeAfter: Bool)
        /// After 101: bytes relayed both ways until either side ends.
        case tunnel
        case closed
    }

    let limits: Limits
    private(set) var phase: Phase = .awaitingHead(idle: false, partial: false)
    /// The worker drains: no exchange after the current one.
    private(set) var draining = false
    /// The head of the exchange in flight, or of the last one until the parse of the next head
    /// starts (so the shell can still log it while it carries out the actions that end the
    /// exchange: the next head is always parsed in a later round, on a new client-bytes event).
    private(set) var request: RequestHead?
    /// The final or interim response head parsed last (what `.sendResponseHead` / `.sendInterimHead` send).
    private(set) var responseHead: ResponseHead?
    /// The buffers the heads above are parsed into, reused from one exchange to the next.
    private var requestStorage = HeadStorage()
    private var responseStorage = HeadStorage()
    /// The reason line of the last `.sendError`.
    private(set) var errorReason = ""
    /// The current server's id (for error texts) and the content types its pool rewrites.
    private var serverID = ""
    private var rewriteTypes: [String] = []
    /// A larger window is wanted for the next bytes of that side (a framing element did not fit).
    private(set) var clientWindowWanted = 256
    private(set) var upstreamWindowWanted = 256

    /// `requestStorage`/`responseStorage`: buffers to parse the heads into (from `HeadStorageShelf`).
    init(limits: Limits, requestStorage: HeadStorage = HeadStorage(), responseStorage: HeadStorage = HeadStorage()) {
        self.limits = limits
        self.requestStorage = requestStorage
        self.responseStorage = responseStorage
    }

    /// Hands the head buffers over for another session (`HeadStorageShelf`) and leaves empty ones.
    /// Precondition: the session is closed (no head is parsed any more). The heads still held here
    /// keep their bytes: the buffers are shared with them until they go (copy on write).
    mutating func surrenderStorage() -> (request: HeadStorage, response: HeadStorage) {
        precondition(isClosed, "head storage surrendered by a session that is not closed")
        defer { requestStorage = HeadStorage(); responseStorage = HeadStorage() }
        return (requestStorage, responseStorage)
    }

    /// The server of the current attempt, if any.
    var server: Int? {
        if case .forwarding(_, let a) = phase { return a.server }
        return nil
    }

    /// Whether the current exchange closes the client connection after its response.
    var closeAfterResponse: Bool {
        switch phase {
        case .routing(let e), .queued(let e), .forwarding(let e, _): return e.closeAfter || draining
        case .answered(_, _, let close): return close || draining
        default: return draining
        }
    }

    /// How many bytes of client input the next `.clientBytes` window should cover: a head's worth
    /// while a head is awaited, chunk framing's worth in a chunked body, none otherwise (a length
    /// body or a tunnel is moved by count, and making bytes contiguous costs a copy).
    var clientWindow: Int {
        switch phase {
        case .awaitingHead: return limits.parser.maxHeaderBytes + 1
        case .forwarding(let e, _): return e.body.isChunked ? clientWindowWanted : 0
        case .answered(let body, _, _): return body.isChunked ? clientWindowWanted : 0
        default: return 0
        }
    }

    /// How many bytes of server input the next `.upstreamBytes` window should cover (as `clientWindow`).
    var upstreamWindow: Int {
        guard case .forwarding(_, let a) = phase else { return 0 }
        switch a.response {
        case .awaitingHead: return limits.parser.maxHeaderBytes + 1
        case .body(let reader, _): return reader.isChunked ? upstreamWindowWanted : 0
        }
    }

    /// Whether the client may be read from now: false while routing or queued, once closed, and while
    /// the response to a whole request is awaited on a connection that closes after it (nothing
    /// the client could still send is wanted, and not reading saves registering its socket; bytes
    /// that arrive meanwhile are found before the close, which then lingers over them).
    var readsClient: Bool {
        switch phase {
        case .queued, .routing, .closed: return false
        case .forwarding(let e, _): return !(e.closeAfter && e.body.isComplete && !e.isUpgrade)
        default: return true
        }
    }

    /// Whether client bytes are consumed in this phase (a head, a body, a tunnel); otherwise they
    /// wait (pipelined requests) and the shell stops reading once they pile up.
    var consumesClientBytes: Bool {
        switch phase {
        case .awaitingHead, .answered, .tunnel: return true
        case .forwarding(let e, let a): return !e.body.isComplete && a.attached
        default: return false
        }
    }

    /// How many bytes of the response body may still go from the server's socket straight to the
    /// client's (`.upstreamBodySpliced`): the rest of a Content-Length body passed on as received
    /// (not rewritten, not de-chunked); 0 otherwise.
    var spliceableResponseBytes: Int {
        guard case .forwarding(_, let a) = phase, case .body(let reader, let plan) = a.response,
              plan.framing == .asReceived, !plan.rewrite, !plan.dataOnly else { return 0 }
        return reader.remainingLength ?? 0
    }

    /// Whether the session is in a tunnel.
    var isTunnel: Bool { if case .tunnel = phase { return true } else { return false } }

    var isClosed: Bool { if case .closed = phase { return true } else { return false } }

    /// Kept alive between exchanges: the last one is over and no byte of the next head has come.
    var awaitsNextRequest: Bool { if case .awaitingHead(true, false) = phase { return true } else { return false } }

    // MARK: - Events

    /// Handles one event, appending actions to `actions`. The machine reads no clock: every time
    /// rule is a timer it arms for a duration (`.armTimer`, `.setClientTimeouts`, ...) and an event
    /// when that time has passed, so a test is its manual clock.
    mutating func handle(_ event: SessionEvent, into actions: inout SessionActions) {
        switch event {
        case .clientBytes(let window, let available): clientBytes(window, available, &actions)
        case .upstreamBytes(let window, let available): upstreamBytes(window, available, &actions)
        case .upstreamBodySpliced(let n): responseBodySpliced(n, &actions)
        case .clientEndOfStream: clientEnded(failed: false, &actions)
        case .clientFailed(let handshake):
            if handshake, case .awaitingHead = phase { actions.append(.count(.tlsHandshakeFailure)) }
            clientEnded(failed: true, &actions)
        case .clientReadTimeout: clientBodyTimedOut(&actions)
        case .clientWriteTimeout: clientGone(&actions)
        case .upstreamAttached(let pooled): upstreamAttached(pooled: pooled, &actions)
        case .upstreamConnected: upstreamConnected(&actions)
        case .upstreamEndOfStream: upstreamEnded(&actions)
        case .upstreamFailed(let reason): upstreamFailed(reason, &actions)
        case .upstreamReadTimeout: upstreamReadTimedOut(&actions)
        case .upstreamWriteTimeout: upstreamWriteTimedOut(&actions)
        case .timerFired(let handshaking): timerFired(handshaking: handshaking, &actions)
        case .routed(let routing): routed(routing, &actions)
        case .queueRetry(let timedOut): queueRetry(timedOut: timedOut, &actions)
        case .drain: drain(&actions)
        }
    }

    // MARK: - Request head

    private mutating func clientBytes(_ window: UnsafeRawBufferPointer, _ available: Int, _ actions: inout SessionActions) {
        guard available > 0 else { return }
        switch phase {
        case .awaitingHead(let idle, _):
            if idle { actions.append(.armTimer(milliseconds: limits.clientHeaderMs)) }
            phase = .awaitingHead(idle: false, partial: true)
            parseRequestHead(window, &actions)
        case .forwarding(var e, let a):
            guard a.attached, !e.body.isComplete else { return }
            let (moved, outcome) = relayBody(&e.body, window, available, drop: false, side: .client, &actions)
            e.bodySent += moved
            phase = .forwarding(e, a)
            switch outcome {
            case .error(let error):
                actions.append(.count(.badRequest))
                if case .body = a.response {
                    // The server already answered (its head is out): no second answer, the client sees the end.
                    abortExchange(&actions)
                } else {
                    abandonAttempt(&actions)
                    reject(status: 400, reason: error.reason, &actions)
                }
            case .complete:
                requestBodyComplete(&actions)
            case .more:
                break
            }
        case .answered(var body, var budget, let closeAfter):
            let limit = min(available, budget)
            let (dropped, outcome) = relayBody(&body, UnsafeRawBufferPointer(rebasing: window.prefix(limit)), limit,
                                               drop: true, side: .client, &actions)
            budget -= dropped
            phase = .answered(body: body, budget: budget, closeAfter: closeAfter)
            switch outcome {
            case .complete: awaitNextRequest(closeAfter: closeAfter, &actions)
            case .error: close(flush: true, &actions)
            case .more:
                // Larger than Weir is willing to read: the answer is out; close after it.
                if budget <= 0 { close(flush: true, &actions) }
            }
        case .tunnel:
            actions.append(.moveClientToUpstream(available))
        case .routing, .queued, .closed:
            break
        }
    }

    private mutating func parseRequestHead(_ window: UnsafeRawBufferPointer, _ actions: inout SessionActions) {
        // The previous exchange is over and its actions were carried out: dropping its head lets
        // the parser reuse the buffers (no allocation per request).
        request = nil
        switch RequestHeadParser.parse(window, limits: limits.parser, storage: &requestStorage) {
        case .needMore:
            return
        case .error(let error):
            actions.append(.count(.badRequest))
            actions.append(.logUnparsed(status: error.status))
            sendError(error.status, error.reason, keepAlive: false, &actions)
            close(flush: true, &actions)
        case .complete(let head, let consumed):
            actions.append(.dropClient(consumed))
            actions.append(.cancelTimer)
            actions.append(.count(.request))
            let exchange = Exchange(isHEAD: head.isHEAD, isHTTP10: head.version == .http10, isUpgrade: head.isUpgrade,
                                    isIdempotent: head.methodIsIdempotent, body: BodyReader(head.framing),
                                    closeAfter: !head.keepAlive || draining)
            request = head   // the last use: moved in, not copied
            phase = .routing(exchange)
            actions.append(.route(retry: false))
        }
    }

    // MARK: - Routing

    private mutating func routed(_ routing: Routing, _ actions: inout SessionActions) {
        let exchange: Exchange
        let retry: Bool
        switch phase {
        case .routing(let e): exchange = e; retry = false
        case .forwarding(let e, _): exchange = e; retry = true
        default: return
        }
        switch routing {
        case .forward(let target):
            var e = exchange
            e.attempts += 1
            e.bodySent = 0
            if retry { actions.append(.count(.retry)) }
            serverID = target.id
            rewriteTypes = target.rewriteTypes
            phase = .forwarding(e, Attempt(server: target.server, retries: target.retries))
            actions.append(.beginAttempt(server: target.server))
            actions.append(.connect(server: target.server, allowPooled: true))
        case .answered(let status, let keepAlive):
            actions.append(.endExchange(status: status, server: nil))
            let closeAfter = exchange.closeAfter || draining || !keepAlive
            if exchange.body.isComplete {
                awaitNextRequest(closeAfter: closeAfter, &actions)
            } else {
                phase = .answered(body: exchange.body, budget: limits.discardBodyBytes, closeAfter: closeAfter)
                actions.append(.readClientAgain)
            }
        case .reject(let status, let reason, let retryAfter):
            if status == 503 { actions.append(.count(.unavailable)) }
            reject(status: status, reason: reason, retryAfter: retryAfter, &actions)
        case .queued:
            phase = .queued(exchange)
        case .noAlternative:
            // Only a retry asks; the failure that caused it is answered (see `failAttempt`).
            guard case .forwarding(_, let a) = phase else { return }
            answerFailure(pendingFailure ?? .closedBeforeResponse, server: a.server, &actions)
        }
    }

    /// The failure whose retry is being routed (answered if no other server can take the request).
    private var pendingFailure: UpstreamFailure?

    private mutating func queueRetry(timedOut: Bool, _ actions: inout SessionActions) {
        guard case .queued(let e) = phase else { return }
        if timedOut {
            actions.append(.count(.unavailable))
            phase = .routing(e)
            reject(status: 503, reason: "no server of the pool freed up in time", retryAfter: 1, &actions)
            return
        }
        phase = .routing(e)
        actions.append(.route(retry: false))
    }

    // MARK: - Upstream connection

    private mutating func upstreamAttached(pooled: Bool, _ actions: inout SessionActions) {
        guard case .forwarding(let e, var a) = phase, !a.attached else { return }
        a.attached = true
        a.pooled = pooled
        a.connected = pooled
        phase = .forwarding(e, a)
        if pooled {
            actions.append(.setUpstreamTimeouts(read: nil, write: limits.upstreamResponseMs))
        } else {
            // Until the handshake completes, the write timeout is the connect timeout.
            actions.append(.setUpstreamTimeouts(read: nil, write: limits.upstreamConnectMs))
        }
        if e.body.isComplete {
            if pooled { armResponseDeadline(&actions) }
        } else {
            actions.append(.setClientTimeouts(read: limits.clientBodyMs, write: limits.clientIdleMs))
            actions.append(.readClientAgain)
        }
    }

    private mutating func upstreamConnected(_ actions: inout SessionActions) {
        guard case .forwarding(let e, var a) = phase, a.attached, !a.connected else { return }
        a.connected = true
        phase = .forwarding(e, a)
        actions.append(.setUpstreamTimeouts(read: nil, write: limits.upstreamResponseMs))
        if e.body.isComplete { armResponseDeadline(&actions) }
    }

    /// The whole request body is with the server (in its output): the response deadline starts, and
    /// the client's body idle timeout ends.
    private mutating func requestBodyComplete(_ actions: inout SessionActions) {
        guard case .forwarding(let e, let a) = phase else { return }
        actions.append(.setClientTimeouts(read: nil, write: limits.clientIdleMs))
        if case .body(let reader, _) = a.response, reader.isComplete {
            finishExchange(upstreamLeftover: false, &actions)
            return
        }
        _ = e
        if a.connected { armResponseDeadline(&actions) }
    }

    private mutating func armResponseDeadline(_ actions: inout SessionActions) {
        guard case .forwarding(let e, var a) = phase, case .awaitingHead = a.response, !a.deadlineArmed else { return }
        a.deadlineArmed = true
        phase = .forwarding(e, a)
        actions.append(.armTimer(milliseconds: limits.upstreamResponseMs))
    }

    // MARK: - Response

    private mutating func upstreamBytes(_ window: UnsafeRawBufferPointer, _ available: Int, _ actions: inout SessionActions) {
        guard available > 0 else { return }
        switch phase {
        case .forwarding(var e, var a):
            switch a.response {
            case .awaitingHead(let interims, let interimBytes):
                // An earlier head (interim, or the last exchange's) was sent in an earlier round.
                responseHead = nil
                switch ResponseHeadParser.parse(window, requestWasHEAD: e.isHEAD, limits: limits.parser,
                                                storage: &responseStorage) {
                case .needMore:
                    return
                case .error(let error):
                    failAttempt(.invalidResponse("invalid response from server \(serverID): \(error.reason)"), &actions)
                case .complete(let head, let consumed):
                    actions.append(.dropUpstream(consumed))
                    let status = head.status, framing = head.framing, serverKeepAlive = head.keepAlive
                    let isInterim = head.isInterim, isUpgrade = head.isUpgrade
                    responseHead = head   // the last use of `head`: moved in, not copied
                    if isInterim {
                        let count = interims + 1, bytes = interimBytes + consumed
                        if count > limits.maxInterimResponses || bytes > limits.maxInterimBytes {
                            failAttempt(.invalidResponse("server \(serverID) sent more than \(limits.maxInterimResponses) interim responses or \(limits.maxInterimBytes) bytes of them"), &actions)
                            return
                        }
                        a.response = .awaitingHead(interims: count, interimBytes: bytes)
                        phase = .forwarding(e, a)
                        if !e.isHTTP10 { actions.append(.sendInterimHead) }
                        actions.append(.readUpstreamAgain)
                        return
                    }
                    if isUpgrade && !e.isUpgrade {
                        failAttempt(.invalidResponse("server \(serverID) switched protocols unasked"), &actions)
                        return
                    }
                    if a.deadlineArmed { actions.append(.cancelTimer); a.deadlineArmed = false }
                    let plan = ResponsePlan.make(.init(
                        status: status, framing: framing, serverKeepAlive: serverKeepAlive,
                        isUpgrade: isUpgrade, clientIsHTTP10: e.isHTTP10,
                        closeRequested: e.closeAfter, requestComplete: e.body.isComplete, draining: draining,
                        rewriteWanted: !rewriteTypes.isEmpty && responseHead.map { rewriteApplies($0, rewriteTypes) } == true))
                    actions.append(.sendResponseHead(plan))
                    if isUpgrade {
                        phase = .forwarding(e, a)
                        startTunnel(&actions)
                        return
                    }
                    e.closeAfter = plan.closeAfter
                    a.response = .body(BodyReader(framing), plan)
                    phase = .forwarding(e, a)
                    // From here on the read timeout is the server's silence in the middle of a body.
                    actions.append(.setUpstreamTimeouts(read: limits.upstreamResponseMs, write: limits.upstreamResponseMs))
                    if case .body(let reader, _) = a.response, reader.isComplete {
                        if e.body.isComplete || plan.closeAfter {
                            finishExchange(upstreamLeftover: available > consumed, &actions)
                        }
                    } else if available > consumed {
                        // The body's first bytes came with the head: relay them in the same step.
                        let rest = consumed < window.count ? UnsafeRawBufferPointer(rebasing: window[consumed...])
                                                           : UnsafeRawBufferPointer(start: nil, count: 0)
                        relayResponseBody(rest, available - consumed, &actions)
                    }
                }
            case .body:
                relayResponseBody(window, available, &actions)
            }
        case .tunnel:
            actions.append(.moveUpstreamToClient(available))
        default:
            break
        }
    }

    /// Relays what is buffered of the response body (phase: forwarding, response in `.body`).
    private mutating func relayResponseBody(_ window: UnsafeRawBufferPointer, _ available: Int,
                                            _ actions: inout SessionActions) {
        guard case .forwarding(let e, var a) = phase, case .body(var reader, let plan) = a.response else { return }
        let (_, outcome) = relayBody(&reader, window, available, drop: false, dataOnly: plan.dataOnly, side: .upstream, &actions)
        a.response = .body(reader, plan)
        phase = .forwarding(e, a)
        switch outcome {
        case .error:
            actions.append(.serverFailed(server: a.server))
            abortExchange(&actions)
        case .complete(let leftover):
            if plan.rewrite { actions.append(.endResponseBody) }
            if e.body.isComplete || plan.closeAfter {
                finishExchange(upstreamLeftover: leftover, &actions)
            }
        case .more:
            break
        }
    }

    /// `n` body bytes went from socket to socket: the reader steps over them as if relayed.
    private mutating func responseBodySpliced(_ n: Int, _ actions: inout SessionActions) {
        guard n > 0, n <= spliceableResponseBytes,
              case .forwarding(let e, var a) = phase, case .body(var reader, let plan) = a.response else { return }
        guard case .data(n) = reader.next(UnsafeRawBufferPointer(start: nil, count: 0), available: n) else { return }
        a.response = .body(reader, plan)
        phase = .forwarding(e, a)
        if reader.isComplete && (e.body.isComplete || plan.closeAfter) {
            finishExchange(upstreamLeftover: false, &actions)
        }
    }

    private func rewriteApplies(_ head: ResponseHead, _ types: [String]) -> Bool {
        guard let type = head.value(of: "content-type") else { return false }
        return BodyRewriter.applies(to: head.string(type), types: types)
    }

    /// The response is complete (and the request too, or the connection closes anyway): account,
    /// give the upstream connection back, go on with the client.
    private mutating func finishExchange(upstreamLeftover: Bool, _ actions: inout SessionActions) {
        guard case .forwarding(let e, let a) = phase, case .body(_, let plan) = a.response else { return }
        if plan.upstreamReusable && e.body.isComplete && !upstreamLeftover {
            actions.append(.parkUpstream)
        } else {
            actions.append(.closeUpstream)
        }
        actions.append(.endAttempt(server: a.server))
        actions.append(.endExchange(status: responseHead?.status ?? 0, server: a.server))
        if plan.closeAfter || !e.body.isComplete || draining {
            close(flush: true, clean: e.body.isComplete, &actions)
        } else {
            awaitNextRequest(closeAfter: false, &actions)
        }
    }

    /// Back to reading heads on a kept-alive connection.
    private mutating func awaitNextRequest(closeAfter: Bool, _ actions: inout SessionActions) {
        if closeAfter || draining {
            close(flush: true, clean: true, &actions)
            return
        }
        phase = .awaitingHead(idle: true, partial: false)
        actions.append(.armTimer(milliseconds: limits.clientIdleMs))
        actions.append(.readClientAgain)
    }

    // MARK: - Bodies

    enum Side { case client, upstream }

    enum RelayOutcome {
        case more
        /// The body ended; `leftover`: bytes after it are already buffered.
        case complete(leftover: Bool)
        case error(HTTPParseError)
    }

    /// Steps `reader` over the buffered bytes of `side`, appending moves (or drops, with `drop`) of
    /// what it accepts; chunk framing is dropped when `dataOnly`. Returns the bytes moved or dropped.
    private mutating func relayBody(_ reader: inout BodyReader, _ window: UnsafeRawBufferPointer, _ available: Int,
                                    drop: Bool, dataOnly: Bool = false, side: Side,
                                    _ actions: inout SessionActions) -> (Int, RelayOutcome) {
        var offset = 0
        var wanted = 256
        defer { if side == .client { clientWindowWanted = wanted } else { upstreamWindowWanted = wanted } }
        while offset < available {
            let rest = offset < window.count ? UnsafeRawBufferPointer(rebasing: window[offset...])
                                             : UnsafeRawBufferPointer(start: nil, count: 0)
            let step = reader.next(rest, available: available - offset)
            switch step {
            case .needMore:
                if reader.isChunked && rest.count < available - offset {
                    // The framing element lies (partly) beyond this window: feed again, with a larger one
                    // if it began within it.
                    if offset == 0 { wanted = BodyReader.maxFramingBytes }
                    actions.append(side == .client ? .readClientAgain : .readUpstreamAgain)
                }
                return (offset, reader.isComplete ? .complete(leftover: offset < available) : .more)
            case .data(let n):
                actions.append(move(side, n, drop: drop))
                offset += n
            case .framing(let n):
                actions.append(move(side, n, drop: drop || dataOnly))
                offset += n
            case .error(let error):
                return (offset, .error(error))
            }
            if reader.isComplete { return (offset, .complete(leftover: offset < available)) }
            if offset > window.count || actions.isNearlyFull {
                // Past the window (chunk data moved beyond it) or the action list is full: feed again.
                if offset < available { actions.append(side == .client ? .readClientAgain : .readUpstreamAgain) }
                return (offset, .more)
            }
        }
        return (offset, .more)
    }

    private func move(_ side: Side, _ n: Int, drop: Bool) -> SessionAction {
        switch (side, drop) {
        case (.client, false): return .moveClientToUpstream(n)
        case (.client, true): return .dropClient(n)
        case (.upstream, false): return .moveUpstreamToClient(n)
        case (.upstream, true): return .dropUpstream(n)
        }
    }

    // MARK: - Upstream failures

    private mutating func upstreamEnded(_ actions: inout SessionActions) {
        switch phase {
        case .tunnel:
            endTunnel(&actions)
        case .forwarding(let e, var a):
            switch a.response {
            case .awaitingHead:
                failAttempt(.closedBeforeResponse, &actions)
            case .body(var reader, let plan):
                if reader.endOfStream() {
                    // A close-delimited body: the server's FIN is the end of the response.
                    a.response = .body(reader, plan)
                    phase = .forwarding(e, a)
                    if plan.rewrite { actions.append(.endResponseBody) }
                    finishExchange(upstreamLeftover: true, &actions)
                } else {
                    actions.append(.serverFailed(server: a.server))
                    abortExchange(&actions)
                }
            }
        default:
            break
        }
    }

    private mutating func upstreamFailed(_ reason: String, _ actions: inout SessionActions) {
        switch phase {
        case .tunnel:
            endTunnel(&actions)
        case .forwarding(_, let a):
            switch a.response {
            case .awaitingHead:
                if !a.attached {
                    failAttempt(.connectFailed("cannot connect to server \(serverID): \(reason)"), &actions)
                } else if !a.connected {
                    failAttempt(.connectFailed("server \(serverID) failed before answering (\(reason))"), &actions)
                } else {
                    failAttempt(.failedBeforeResponse("server \(serverID) failed before answering (\(reason))"), &actions)
                }
            case .body:
                actions.append(.serverFailed(server: a.server))
                abortExchange(&actions)
            }
        default:
            break
        }
    }

    private mutating func upstreamReadTimedOut(_ actions: inout SessionActions) {
        switch phase {
        case .tunnel: endTunnel(&actions)
        case .forwarding(_, let a):
            actions.append(.serverFailed(server: a.server))
            if case .body = a.response { abortExchange(&actions) } else { failAttempt(.responseTimeout, &actions, counted: true) }
        default: break
        }
    }

    private mutating func upstreamWriteTimedOut(_ actions: inout SessionActions) {
        switch phase {
        case .tunnel: endTunnel(&actions)
        case .forwarding(_, let a):
            if case .body = a.response {
                actions.append(.serverFailed(server: a.server))
                abortExchange(&actions)
            } else {
                failAttempt(a.connected ? .requestStalled : .connectTimeout, &actions)
            }
        default: break
        }
    }

    /// An attempt failed before its final response head: retry per `RetryPolicy`, or answer.
    private mutating func failAttempt(_ failure: UpstreamFailure, _ actions: inout SessionActions, counted: Bool = false) {
        guard case .forwarding(var e, var a) = phase else { return }
        var sawInterim = false
        if case .awaitingHead(let interims, _) = a.response { sawInterim = interims > 0 }
        let decision = RetryPolicy.decide(failure, .init(
            pooled: a.pooled, reconnected: e.reconnected, bodyBytesSent: e.bodySent, idempotent: e.isIdempotent,
            attempts: e.attempts, retries: a.retries, sawInterim: sawInterim))
        if a.deadlineArmed { actions.append(.cancelTimer); a.deadlineArmed = false }
        switch decision {
        case .reconnect:
            actions.append(.count(.retriedOnStaleConnection))
            actions.append(.closeUpstream)
            e.reconnected = true
            phase = .forwarding(e, Attempt(server: a.server, retries: a.retries))
            actions.append(.connect(server: a.server, allowPooled: false))
        case .tryAnotherServer:
            if !counted { actions.append(.serverFailed(server: a.server)) }
            actions.append(.closeUpstream)
            actions.append(.endAttempt(server: a.server))
            pendingFailure = failure
            phase = .forwarding(e, Attempt(server: a.server, retries: a.retries))
            actions.append(.route(retry: true))
        case .answer:
            if !counted { actions.append(.serverFailed(server: a.server)) }
            actions.append(.closeUpstream)
            actions.append(.endAttempt(server: a.server))
            phase = .forwarding(e, a)
            answerFailure(failure, server: a.server, &actions)
        }
    }

    /// Answers a failure before any response byte: 502 or 504 with its reason. The client
    /// connection stays open when the request was read completely and may be kept.
    private mutating func answerFailure(_ failure: UpstreamFailure, server: Int, _ actions: inout SessionActions) {
        guard case .forwarding(let e, _) = phase else { return }
        let status = RetryPolicy.status(of: failure)
        actions.append(.count(status == 504 ? .gatewayTimeout : .badGateway))
        let reason: String
        switch failure {
        case .connectFailed(let text), .failedBeforeResponse(let text), .invalidResponse(let text): reason = text
        case .closedBeforeResponse: reason = "server \(serverID) closed the connection before answering"
        case .connectTimeout: reason = "no connect to server \(serverID) within \(limits.upstreamConnectMs / 1000) s"
        case .responseTimeout, .requestStalled: reason = "no answer from server \(serverID) within \(limits.upstreamResponseMs / 1000) s"
        }
        pendingFailure = nil
        let keep = e.body.isComplete && !e.closeAfter && !draining
        sendError(status, reason, keepAlive: keep, &actions)
        actions.append(.endExchange(status: status, server: server))
        if keep {
            awaitNextRequest(closeAfter: false, &actions)
        } else {
            close(flush: true, &actions)
        }
    }

    /// The response was partly sent and cannot be completed: the client must see the connection end.
    private mutating func abortExchange(_ actions: inout SessionActions) {
        guard case .forwarding(_, let a) = phase else { return }
        actions.append(.count(.abortedResponse))
        actions.append(.closeUpstream)
        actions.append(.endAttempt(server: a.server))
        actions.append(.endExchange(status: responseHead?.status ?? 0, server: a.server))
        close(flush: true, &actions)
    }

    /// Closes the upstream side of the current attempt, if any (the caller answers or closes the client).
    private mutating func abandonAttempt(_ actions: inout SessionActions) {
        guard case .forwarding(let e, let a) = phase else { return }
        if a.deadlineArmed { actions.append(.cancelTimer) }
        actions.append(.closeUpstream)
        actions.append(.endAttempt(server: a.server))
        phase = .routing(e)
    }

    // MARK: - Client side ends and timers

    private mutating func clientEnded(failed: Bool, _ actions: inout SessionActions) {
        switch phase {
        case .awaitingHead:
            // A client that ended its side between requests may not have read the last response
            // yet: what waits of it is sent (a reset loses it anyway).
            close(flush: !failed, clean: true, &actions)
        case .answered:
            close(flush: true, &actions)
        case .tunnel:
            endTunnel(&actions)
        case .routing, .queued:
            clientGone(&actions)
        case .forwarding(var e, let a):
            if !failed && e.body.isComplete && !e.isUpgrade {
                // The client half-closed after sending its request: answer, then close.
                e.closeAfter = true
                phase = .forwarding(e, a)
                return
            }
            clientGone(&actions)
        case .closed:
            break
        }
    }

    /// The client is gone (or stopped reading): drop the exchange without an answer.
    private mutating func clientGone(_ actions: inout SessionActions) {
        switch phase {
        case .queued:
            actions.append(.dequeue)
            actions.append(.endExchange(status: 499, server: nil))
        case .routing:
            actions.append(.endExchange(status: 499, server: nil))
        case .forwarding(_, let a):
            if a.deadlineArmed { actions.append(.cancelTimer) }
            actions.append(.closeUpstream)
            actions.append(.endAttempt(server: a.server))
            var status = 499
            if case .body = a.response { status = responseHead?.status ?? 499 }
            actions.append(.endExchange(status: status, server: a.server))
        case .tunnel:
            endTunnel(&actions)
            return
        default:
            break
        }
        close(flush: false, &actions)
    }

    /// The client stopped sending its request body for client_body: 408, without blaming the server.
    private mutating func clientBodyTimedOut(_ actions: inout SessionActions) {
        switch phase {
        case .forwarding(let e, let a) where !e.body.isComplete:
            if case .body = a.response { abortExchange(&actions); return }   // the answer is already under way
            abandonAttempt(&actions)
            reject(status: 408, reason: "request body not received within \(limits.clientBodyMs / 1000) s", &actions)
        case .tunnel:
            endTunnel(&actions)
        default:
            break
        }
    }

    private mutating func timerFired(handshaking: Bool, _ actions: inout SessionActions) {
        switch phase {
        case .awaitingHead(_, let partial):
            if handshaking {
                actions.append(.count(.tlsHandshakeTimeout))
                close(flush: false, &actions)
            } else if !partial {
                close(flush: false, &actions)   // an idle connection: just close
            } else {
                actions.append(.logUnparsed(status: 408))
                sendError(408, "request head not received within \(limits.clientHeaderMs / 1000) s", keepAlive: false, &actions)
                close(flush: true, &actions)
            }
        case .forwarding(_, var a):
            guard a.deadlineArmed, case .forwarding(let e, _) = phase else { return }
            a.deadlineArmed = false
            phase = .forwarding(e, a)
            actions.append(.serverFailed(server: a.server))
            failAttempt(.responseTimeout, &actions, counted: true)
        default:
            break
        }
    }

    private mutating func drain(_ actions: inout SessionActions) {
        draining = true
        // Only a kept-alive connection between requests closes now. A connection accepted just
        // before the drain (its TLS handshake or first request still on the way: after a binary
        // upgrade's hand-over, the last ones the old process took) gets its first exchange,
        // answered with Connection: close, within client_header; closing it would reset it.
        // Between requests the last response may still wait in the client's output (a slow reader,
        // or one written this loop pass): it is sent before the FIN. A clean end: the close lingers
        // only over bytes the client sent meanwhile (a request racing the close).
        if case .awaitingHead(true, false) = phase { close(flush: true, clean: true, &actions) }
    }

    // MARK: - Tunnel and end

    private mutating func startTunnel(_ actions: inout SessionActions) {
        guard case .forwarding(_, let a) = phase else { return }
        actions.append(.endAttempt(server: a.server))
        actions.append(.endExchange(status: 101, server: a.server))
        actions.append(.setClientTimeouts(read: limits.tunnelIdleMs, write: limits.tunnelIdleMs))
        actions.append(.setUpstreamTimeouts(read: limits.tunnelIdleMs, write: limits.tunnelIdleMs))
        actions.append(.startTunnel)
        phase = .tunnel
        actions.append(.readUpstreamAgain)
        actions.append(.readClientAgain)
    }

    private mutating func endTunnel(_ actions: inout SessionActions) {
        actions.append(.flushTunnel)
        close(flush: true, &actions)
    }

    /// Answers the current request with a response Weir made itself and closes after it.
    private mutating func reject(status: Int, reason: String, retryAfter: Int? = nil, _ actions: inout SessionActions) {
        sendError(status, reason, retryAfter: retryAfter, keepAlive: false, &actions)
        actions.append(.endExchange(status: status, server: nil))
        close(flush: true, &actions)
    }

    private mutating func sendError(_ status: Int, _ reason: String, retryAfter: Int? = nil, keepAlive: Bool,
                                    _ actions: inout SessionActions) {
        errorReason = reason
        actions.append(.sendError(status: status, retryAfter: retryAfter, keepAlive: keepAlive))
    }

    /// Whether the session closed at the clean end of an exchange (the client asked for it, or the
    /// response was close-delimited), so nothing more is expected from the client.
    private(set) var closedCleanly = false

    private mutating func close(flush: Bool, clean: Bool = false, _ actions: inout SessionActions) {
        guard !isClosed else { return }
        closedCleanly = clean
        actions.append(.cancelTimer)
        actions.append(.closeClient(flush: flush))
        phase = .closed
    }
}
