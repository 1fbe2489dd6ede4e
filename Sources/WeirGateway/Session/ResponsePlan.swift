import WeirHTTP

/// How a final response goes on to the client: its framing, its `Connection` field, whether the
/// client connection and the upstream connection survive it. Made by `ResponsePlan.make`, a pure
/// function of the two heads and the session's situation.
struct ResponsePlan: Equatable {
    /// How the body is framed towards the client.
    var framing: HeadRewriter.ClientFraming
    /// The `Connection` field to send: "close", "keep-alive", "upgrade" or none.
    var connection: ConnectionField
    /// Whether the client connection closes once this response is out.
    var closeAfter: Bool
    /// Whether the server's chunked framing is dropped (only data bytes go on: de-chunked, or
    /// handed to the body rewriter, which frames its output itself).
    var dataOnly: Bool
    /// Whether the body goes through the URL rewriter.
    var rewrite: Bool
    /// Whether the upstream connection may be pooled once the body is complete.
    var upstreamReusable: Bool

    enum ConnectionField: Equatable { case none, close, keepAlive, upgrade }

    /// The facts a plan is made from.
    struct Facts {
        /// The response's status, framing and keep-alive as the server sent them.
        var status: Int
        var framing: BodyFraming
        var serverKeepAlive: Bool
        var isUpgrade: Bool
        /// The request's version, and whether the client asked to close (or the session must close).
        var clientIsHTTP10: Bool
        var closeRequested: Bool
        /// Whether the whole request body has been read from the client.
        var requestComplete: Bool
        /// Whether the worker is draining.
        var draining: Bool
        /// Whether the pool rewrites this response's body (content type listed, a client host known).
        var rewriteWanted: Bool
    }

    /// The plan for a final (non-1xx) response.
    ///
    /// - An upgrade (101) keeps `Connection: upgrade`; the connection becomes a tunnel.
    /// - A chunked body for an HTTP/1.0 client is de-chunked and delimited by the close.
    /// - A close-delimited body closes the client connection after it.
    /// - A rewritten body is re-chunked for HTTP/1.1 and close-delimited for HTTP/1.0.
    /// - The client connection also closes when the client asked, the worker drains, or the
    ///   request body was not read completely (its rest cannot be told from the next request).
    /// - HTTP/1.0 clients that keep the connection hear `Connection: keep-alive`.
    static func make(_ f: Facts) -> ResponsePlan {
        if f.isUpgrade {
            return ResponsePlan(framing: .asReceived, connection: .upgrade, closeAfter: false, dataOnly: false,
                                rewrite: false, upstreamReusable: false)
        }
        var framing = HeadRewriter.ClientFraming.asReceived
        var closeAfter = f.closeRequested || f.draining || !f.requestComplete
        var dataOnly = false
        switch f.framing {
        case .chunked where f.clientIsHTTP10:
            framing = .dechunked
            dataOnly = true
            closeAfter = true
        case .untilClose:
            closeAfter = true
        default:
            break
        }
        let rewrite = f.rewriteWanted && f.framing != .none
        if rewrite {
            dataOnly = f.framing == .chunked
            if f.clientIsHTTP10 {
                framing = .closeDelimited
                closeAfter = true
            } else {
                framing = .rechunked
            }
        }
        let connection: ConnectionField = closeAfter ? .close : (f.clientIsHTTP10 ? .keepAlive : .none)
        return ResponsePlan(framing: framing, connection: connection, closeAfter: closeAfter, dataOnly: dataOnly,
                            rewrite: rewrite, upstreamReusable: f.serverKeepAlive && f.requestComplete)
    }
}
