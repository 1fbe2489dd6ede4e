/// What the `SessionMachine` asks the shell to do, in order. Trivially copyable (no references),
/// so lists of them cost no reference counting.
enum SessionAction: Equatable {
    // Bytes.
    /// Consume (drop) the first N client bytes: a parsed request head or a discarded body.
    case dropClient(Int)
    /// Move the first N client bytes to the server.
    case moveClientToUpstream(Int)
    /// Move the first N server bytes to the client (through the body rewriter when one is active).
    case moveUpstreamToClient(Int)
    /// Consume (drop) the first N server bytes: a parsed response head or de-chunked framing.
    case dropUpstream(Int)
    /// Feed the buffered client bytes again (a new phase wants them, or a step stopped early).
    case readClientAgain
    /// Feed the buffered server bytes again.
    case readUpstreamAgain

    // Routing and the upstream connection.
    /// Find where `machine.request` goes and answer with `.routed`. `retry`: after a failure of the
    /// current server, which must not be chosen again (and never a redirect).
    case route(retry: Bool)
    /// A new attempt at `server` begins: count it in flight, build the request head for it.
    case beginAttempt(server: Int)
    /// The attempt at `server` ended (response complete, failure, client gone): no longer in flight.
    case endAttempt(server: Int)
    /// Attach an upstream connection to the attempt's server (a pooled one when `allowPooled` and one
    /// is idle, else a new one), write the request head; answer with `.upstreamAttached` or `.upstreamFailed`.
    case connect(server: Int, allowPooled: Bool)
    /// Give the upstream connection back to the idle pool.
    case parkUpstream
    /// Close the upstream connection now.
    case closeUpstream
    /// Passive health: the server failed this request. (Its success is the final head: see `.sendResponseHead`.)
    case serverFailed(server: Int)

    // Responses.
    /// Relay the interim (1xx) response head just parsed (`machine.responseHead`) as it is.
    case sendInterimHead
    /// Send the final response head just parsed, rewritten as `plan` says; a final head is the
    /// attempt's server answering properly (passive health counts it as a success).
    case sendResponseHead(ResponsePlan)
    /// The rewritten response body ended: flush what the body rewriter holds (and its last chunk).
    case endResponseBody
    /// Write a response Weir makes itself: status, the one-line reason `machine.errorReason`, optional
    /// Retry-After; with `keepAlive` false it says `Connection: close` (and `.closeClient` follows).
    case sendError(status: Int, retryAfter: Int?, keepAlive: Bool)
    /// The exchange is over with `status`: write its access-log line (`server` is the one that answered, if any).
    case endExchange(status: Int, server: Int?)
    /// Log a request that never became an exchange (unparsable or timed-out head) with `status`.
    case logUnparsed(status: Int)

    // Timers and timeouts.
    /// (Re)arm the session timer for `milliseconds`; `.timerFired` follows unless re-armed or cancelled.
    case armTimer(milliseconds: Int64)
    case cancelTimer
    /// Set the client connection's read and write timeouts (nil: none).
    case setClientTimeouts(read: Int64?, write: Int64?)
    /// Set the upstream connection's read and write timeouts (nil: none).
    case setUpstreamTimeouts(read: Int64?, write: Int64?)

    // Queue, tunnel, end.
    /// Take the session out of its pool queue (its client went away).
    case dequeue
    /// The exchange became a tunnel: relay both ways with the tunnel idle timeout.
    case startTunnel
    /// Move whatever is still buffered on either side of the tunnel to the other.
    case flushTunnel
    /// Close the client connection (after sending what was written, when `flush`), the upstream
    /// connection with it (after its output when `flush`), and leave the worker. Always the last action.
    case closeClient(flush: Bool)
    /// Count an event in the gateway's statistics.
    case count(SessionCounter)
}

extension SessionAction {
    /// The actions `SessionActions.append` merges with a preceding one of the same kind.
    @inline(__always)
    var isByteMove: Bool {
        switch self {
        case .moveClientToUpstream, .moveUpstreamToClient, .dropClient, .dropUpstream: return true
        default: return false
        }
    }
}

/// The statistics a session reports.
enum SessionCounter: Equatable {
    case request, badRequest, badGateway, unavailable, gatewayTimeout, retriedOnStaleConnection, retry,
         abortedResponse, tlsHandshakeFailure, tlsHandshakeTimeout
}

/// A reusable list of actions: filled by one `SessionMachine.handle` call, carried out by the
/// shell, then cleared keeping its storage, so the keep-alive path allocates nothing per event.
struct SessionActions {
    /// The first `count` elements are the list; the rest are stale ones the next appends overwrite
    /// (clearing the array itself, several times per request, costs more than the actions in it).
    private var storage: [SessionAction] = []
    private(set) var count = 0

    init() { storage.reserveCapacity(Self.capacity) }

    /// An empty list with room for `count` actions before it grows (0: no storage yet).
    init(reserving count: Int) { if count > 0 { storage.reserveCapacity(count) } }

    /// A machine step that would go past this many actions stops early and asks to be fed again.
    static let capacity = 24

    var isNearlyFull: Bool { count >= Self.capacity - 8 }

    /// The actions in order.
    var items: ArraySlice<SessionAction> { storage[..<count] }

    subscript(i: Int) -> SessionAction {
        @inline(__always) get { storage[i] }
    }

    @inline(__always)
    mutating func append(_ action: SessionAction) {
        // Consecutive byte moves of the same kind merge into one. (Inlined: for the other actions,
        // constants at nearly every call site, the check folds away.)
        if action.isByteMove, count > 0, let merged = Self.merge(storage[count - 1], action) {
            storage[count - 1] = merged
            return
        }
        if count < storage.count { storage[count] = action } else { storage.append(action) }
        count &+= 1
    }

    /// `last` and `next` as one action, when both move or drop bytes of the same kind.
    private static func merge(_ last: SessionAction, _ next: SessionAction) -> SessionAction? {
        switch (last, next) {
        case (.moveClientToUpstream(let a), .moveClientToUpstream(let b)): return .moveClientToUpstream(a + b)
        case (.moveUpstreamToClient(let a), .moveUpstreamToClient(let b)): return .moveUpstreamToClient(a + b)
        case (.dropClient(let a), .dropClient(let b)): return .dropClient(a + b)
        case (.dropUpstream(let a), .dropUpstream(let b)): return .dropUpstream(a + b)
        default: return nil
        }
    }

    mutating func removeAll() { count = 0 }
}
