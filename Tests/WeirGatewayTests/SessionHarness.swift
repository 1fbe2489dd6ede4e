@testable import WeirGateway
import WeirHTTP

/// Drives a `SessionMachine` the way `ClientSession` does, with byte arrays for the two connections'
/// buffers, scripted routing, and time as the test's own events (a timer fires when the test says so): every action is carried out on the arrays and
/// recorded, so a test reads what the client and the server received and which actions were taken.
struct SessionHarness {
    static let limits = SessionMachine.Limits(
        parser: ParserLimits(), clientHeaderMs: 10_000, clientIdleMs: 60_000, clientBodyMs: 60_000,
        upstreamConnectMs: 5_000, upstreamResponseMs: 30_000, tunnelIdleMs: 300_000, discardBodyBytes: 1024)

    var machine = SessionMachine(limits: SessionHarness.limits)
    /// Bytes buffered from the client / the server, not consumed yet.
    var clientInput: [UInt8] = []
    var serverInput: [UInt8] = []
    /// Bytes the machine moved to the server (request bodies, tunnel) and to the client (response bodies, tunnel).
    var sentToServer: [UInt8] = []
    var sentToClient: [UInt8] = []
    /// Every action except byte moves, in order.
    var actions: [SessionAction] = []
    /// Status and reason of every `.sendError`, in order.
    var errors: [(status: Int, reason: String)] = []
    /// Routing answers, taken in order (the last one repeats); `retry` routes use `retryRouting`.
    var routings: [Routing] = [.forward(SessionHarness.server(0))]
    var retryRouting: Routing = .noAlternative
    /// How `.connect` is answered.
    var attachPooled = false
    var connectFails: String? = nil
    /// Whether an upstream connection is attached, and how many `.connect`s were carried out.
    var upstreamOpen = false
    var connects = 0

    static func server(_ i: Int, retries: Int = 1, rewrite: [String] = []) -> ForwardTarget {
        ForwardTarget(server: i, id: "s\(i)", retries: retries, rewriteTypes: rewrite)
    }

    var isClosed: Bool { machine.isClosed }

    mutating func client(_ text: String) { clientInput += Array(text.utf8); send(.clientBytesFeed) }
    mutating func server(_ text: String) { serverInput += Array(text.utf8); send(.serverBytesFeed) }
    mutating func event(_ e: SessionEvent) { send(.event(e)) }

    enum Input { case event(SessionEvent), clientBytesFeed, serverBytesFeed }

    mutating func send(_ first: Input) {
        var queue = [first]
        var rounds = 0
        while !queue.isEmpty && !machine.isClosed {
            rounds += 1
            precondition(rounds < 10_000, "the machine keeps asking to be fed without progress")
            let input = queue.removeFirst()
            var list = SessionActions()
            switch input {
            case .event(let e):
                machine.handle(e, into: &list)
            case .clientBytesFeed:
                guard !clientInput.isEmpty else { continue }
                let available = clientInput.count
                let size = min(machine.clientWindow, available)
                clientInput.withUnsafeBytes { raw in
                    machine.handle(.clientBytes(UnsafeRawBufferPointer(rebasing: raw.prefix(size)), available: available),
                                   into: &list)
                }
            case .serverBytesFeed:
                guard !serverInput.isEmpty, upstreamOpen else { continue }
                let available = serverInput.count
                let size = min(machine.upstreamWindow, available)
                serverInput.withUnsafeBytes { raw in
                    machine.handle(.upstreamBytes(UnsafeRawBufferPointer(rebasing: raw.prefix(size)), available: available),
                                   into: &list)
                }
            }
            for action in list.items { perform(action, &queue) }
        }
    }

    private mutating func perform(_ action: SessionAction, _ queue: inout [Input]) {
        switch action {
        case .dropClient(let n):
            precondition(n <= clientInput.count, "dropped client bytes that were not there")
            clientInput.removeFirst(n)
        case .moveClientToUpstream(let n):
            precondition(n <= clientInput.count, "moved client bytes that were not there")
            sentToServer += clientInput.prefix(n)
            clientInput.removeFirst(n)
        case .moveUpstreamToClient(let n):
            precondition(n <= serverInput.count, "moved server bytes that were not there")
            sentToClient += serverInput.prefix(n)
            serverInput.removeFirst(n)
        case .dropUpstream(let n):
            precondition(n <= serverInput.count, "dropped server bytes that were not there")
            serverInput.removeFirst(n)
        case .readClientAgain:
            if !clientInput.isEmpty { queue.append(.clientBytesFeed) }
        case .readUpstreamAgain:
            if !serverInput.isEmpty { queue.append(.serverBytesFeed) }
        default:
            actions.append(action)
            switch action {
            case .sendError(let status, _, _):
                errors.append((status, machine.errorReason))
            case .route(let retry):
                let answer: Routing
                if retry { answer = retryRouting } else if routings.count > 1 { answer = routings.removeFirst() } else { answer = routings[0] }
                queue.insert(.event(.routed(answer)), at: 0)
            case .connect:
                connects += 1
                if let reason = connectFails {
                    queue.insert(.event(.upstreamFailed(reason)), at: 0)
                } else {
                    upstreamOpen = true
                    queue.insert(.event(.upstreamAttached(pooled: attachPooled)), at: 0)
                }
            case .closeUpstream, .parkUpstream:
                upstreamOpen = false
                serverInput.removeAll()
            default:
                break
            }
        }
    }

    // MARK: - Reading the record

    func count(where predicate: (SessionAction) -> Bool) -> Int { actions.filter(predicate).count }

    var errorsSent: [Int] { errors.map(\.status) }

    var exchangesEnded: [Int] {
        actions.compactMap { if case .endExchange(let status, _) = $0 { return status } else { return nil } }
    }

    var plans: [ResponsePlan] {
        actions.compactMap { if case .sendResponseHead(let plan) = $0 { return plan } else { return nil } }
    }

    var routes: [Bool] { actions.compactMap { if case .route(let retry) = $0 { return retry } else { return nil } } }

    var closedWith: Bool? {
        for a in actions.reversed() { if case .closeClient(let flush) = a { return flush } }
        return nil
    }

    func did(_ action: SessionAction) -> Bool { actions.contains(action) }

    var awaitingNextRequest: Bool {
        if case .awaitingHead(idle: true, _) = machine.phase { return true }
        return false
    }

    /// Balance of in-flight accounting: every beginAttempt has its endAttempt.
    var attemptsOpen: Int {
        count { if case .beginAttempt = $0 { return true } else { return false } }
            - count { if case .endAttempt = $0 { return true } else { return false } }
    }
}
