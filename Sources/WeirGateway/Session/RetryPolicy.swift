/// Why an attempt at a server failed before its final response head arrived.
enum UpstreamFailure: Equatable {
    /// The connection could not be made (refused, unreachable, or no socket).
    case connectFailed(String)
    /// The TCP (or TLS) connect did not complete within upstream_connect.
    case connectTimeout
    /// The server closed the connection before a final response head.
    case closedBeforeResponse
    /// The connection failed (reset...) before a final response head.
    case failedBeforeResponse(String)
    /// No final response head within upstream_response after the request was sent.
    case responseTimeout
    /// The server stopped taking the request (its body) within upstream_response.
    case requestStalled
    /// The response head was malformed, too many interim responses came, or a 101 nobody asked for.
    case invalidResponse(String)
}

/// What to do after an `UpstreamFailure`: Pingora's "retry is data" rule as a pure function.
enum RetryDecision: Equatable {
    /// The request met a pooled connection the server had already closed: the same server again on a
    /// new connection (not the request's fault, not counted against the server).
    case reconnect
    /// Another server may take it: ask the router, excluding this one.
    case tryAnotherServer
    /// Answer the client with this status.
    case answer(status: Int)
}

enum RetryPolicy {
    /// The facts of the failed attempt.
    struct Attempt {
        /// The connection came from the idle pool.
        var pooled: Bool
        /// This request already met one stale pooled connection.
        var reconnected: Bool
        /// Request body bytes already sent (they cannot be sent again).
        var bodyBytesSent: Int
        /// The method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS, TRACE).
        var idempotent: Bool
        /// Attempts made so far for this request, this one included (≥ 1).
        var attempts: Int
        /// The pool's retry budget.
        var retries: Int
        /// An interim response already came on this connection (the server did get the request).
        var sawInterim: Bool
    }

    /// The status a failure is answered with when it is not retried: 504 for the timeouts, else 502.
    static func status(of failure: UpstreamFailure) -> Int {
        switch failure {
        case .connectTimeout, .responseTimeout, .requestStalled: return 504
        default: return 502
        }
    }

    /// Decides what follows `failure`.
    ///
    /// - A pooled connection that closes or fails before any response byte, with no body byte sent,
    ///   is stale: reconnect once to the same server.
    /// - A server that never got the request (connect failed or timed out) can be replaced by another
    ///   while the pool's retry budget lasts and no body byte was consumed.
    /// - A server that got the request and closed or failed before answering can be replaced only for
    ///   an idempotent method with no body byte sent.
    /// - Timeouts after the request was sent, and invalid responses, are answered (504 / 502).
    static func decide(_ failure: UpstreamFailure, _ a: Attempt) -> RetryDecision {
        let answer = RetryDecision.answer(status: status(of: failure))
        guard a.bodyBytesSent == 0 else { return answer }
        switch failure {
        case .closedBeforeResponse, .failedBeforeResponse:
            if a.pooled && !a.reconnected && !a.sawInterim { return .reconnect }
            return a.idempotent && a.attempts <= a.retries ? .tryAnotherServer : answer
        case .connectFailed, .connectTimeout:
            return a.attempts <= a.retries ? .tryAnotherServer : answer
        case .responseTimeout, .requestStalled, .invalidResponse:
            return answer
        }
    }
}
