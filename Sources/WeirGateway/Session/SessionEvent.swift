/// What happened to a client session, as the shell (`ClientSession`) tells the `SessionMachine`.
///
/// Byte events carry a contiguous view (`window`) of the first buffered bytes of that side and how
/// many are buffered in all (`available` ≥ `window.count`); the view is valid only during the call.
enum SessionEvent {
    /// Bytes are buffered from the client.
    case clientBytes(UnsafeRawBufferPointer, available: Int)
    /// Bytes are buffered from the server.
    case upstreamBytes(UnsafeRawBufferPointer, available: Int)
    /// This many bytes of the response body went from the server's socket to the client's without
    /// passing through the buffers (splice); only while `SessionMachine.spliceableResponseBytes` > 0,
    /// and at most that many.
    case upstreamBodySpliced(Int)
    /// The client closed its side (FIN). Whatever it sent before was delivered first.
    case clientEndOfStream
    /// The client connection failed; `handshake` when it was the TLS handshake.
    case clientFailed(handshake: Bool)
    /// No byte from the client within the client read timeout (set by `.setClientTimeouts`).
    case clientReadTimeout
    /// The client did not take our output within the client write timeout.
    case clientWriteTimeout
    /// The shell attached a connection for `.connect`: a pooled one (already open) or a new one (connecting).
    case upstreamAttached(pooled: Bool)
    /// A new upstream connection completed its handshake.
    case upstreamConnected
    /// The server closed its side. Whatever it sent before was delivered first.
    case upstreamEndOfStream
    /// The upstream connection failed (refused, reset, or could not even be started), with the reason.
    case upstreamFailed(String)
    /// No byte from the server within the upstream read timeout.
    case upstreamReadTimeout
    /// The server did not take our output (or the connect did not complete) within the write timeout.
    case upstreamWriteTimeout
    /// The session timer armed by `.armTimer` fired; `clientHandshaking` tells whether the client's
    /// TLS handshake is still running.
    case timerFired(clientHandshaking: Bool)
    /// The answer to `.route`.
    case routed(Routing)
    /// A queued request gets another chance (`timedOut`: its queue deadline passed).
    case queueRetry(timedOut: Bool)
    /// The worker started draining: idle sessions end now, busy ones after their exchange.
    case drain
}

/// Where the shell sent the current request (its answer to `.route`).
enum Routing {
    /// To this server.
    case forward(ForwardTarget)
    /// The shell answered the request itself (redirect, discovery endpoint, HTTPS redirect) with
    /// `status`; the request's body, if any, is to be read and dropped. `keepAlive`: the answer
    /// kept the connection open (false: it said `Connection: close`).
    case answered(status: Int, keepAlive: Bool)
    /// Refused with this status and one-line reason (404 no route, 503 nothing available or queue full, 400 bad path=).
    case reject(status: Int, reason: String, retryAfter: Int?)
    /// Every eligible server is full: the shell queued the request (`.queueRetry` follows).
    case queued
    /// A retry was asked for, but no other server can take the request.
    case noAlternative
}

/// The server a request is forwarded to, and what the machine needs to know of its pool.
struct ForwardTarget {
    /// Index of the server in the routing snapshot.
    var server: Int
    /// The server's id, for error texts.
    var id: String
    /// The pool's retry budget (how many other servers may be tried after a failure).
    var retries: Int
    /// Whether the pool rewrites server URLs in bodies of these content types (empty: never).
    var rewriteTypes: [String]
}
