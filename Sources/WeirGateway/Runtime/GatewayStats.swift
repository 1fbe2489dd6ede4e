import Atomics

/// Process-wide counters, shared by all workers (relaxed atomics: they are for reading, not for decisions).
/// `UnsafeAtomic`s, freed in `deinit`: a `ManagedAtomic` is an object, and each count of one cost a
/// retain and a release on the request path.
final class GatewayStats: Sendable {
    let requests = UnsafeAtomic<Int>.create(0)
    let badRequests = UnsafeAtomic<Int>.create(0)
    let badGateway = UnsafeAtomic<Int>.create(0)
    let unavailable = UnsafeAtomic<Int>.create(0)
    let gatewayTimeout = UnsafeAtomic<Int>.create(0)
    let retriedOnStaleConnection = UnsafeAtomic<Int>.create(0)
    /// Requests sent to another server after a failure before any response byte.
    let retries = UnsafeAtomic<Int>.create(0)
    let abortedResponses = UnsafeAtomic<Int>.create(0)
    /// Response body bytes moved socket to socket with splice(2) (not through Weir's buffers).
    let splicedBytes = UnsafeAtomic<Int>.create(0)
    /// TLS handshakes that failed (garbage, plain HTTP on a TLS port, refused versions) or timed out.
    let tlsHandshakeFailures = UnsafeAtomic<Int>.create(0)
    let tlsHandshakeTimeouts = UnsafeAtomic<Int>.create(0)
    /// Completed client TLS handshakes (counted at the connection's first request), and how many of
    /// them resumed a session (ticket or cache) instead of a full handshake.
    let tlsHandshakes = UnsafeAtomic<Int>.create(0)
    let tlsResumedHandshakes = UnsafeAtomic<Int>.create(0)
    /// HTTP/2 client connections accepted (ALPN h2 or h2c prior knowledge), and the request streams they carried.
    let http2Connections = UnsafeAtomic<Int>.create(0)
    let http2Streams = UnsafeAtomic<Int>.create(0)
    /// HTTP/2 connections the attack guard closed with GOAWAY(ENHANCE_YOUR_CALM).
    let http2GuardCloses = UnsafeAtomic<Int>.create(0)
    /// Redirect-mode answers.
    let redirects = UnsafeAtomic<Int>.create(0)
    /// Peer mode: requests that arrived with a valid hop token (routed here by another peer), and
    /// requests whose hop marker was not valid (removed and ignored: from a client, forged or stale).
    let peerHopsReceived = UnsafeAtomic<Int>.create(0)
    let peerHopsRefused = UnsafeAtomic<Int>.create(0)
    let connectionsRefusedAtLimit = UnsafeAtomic<Int>.create(0)
    /// Connections to a `proxy_protocol` listener closed before any request: from a source outside
    /// `proxy_protocol_from`, or without a valid PROXY header in time (see ProxyProtocolAccept.swift).
    let proxyProtocolRefused = UnsafeAtomic<Int>.create(0)
    /// Open client connections, all listeners (per listener: `ListenerSlot.open`).
    let openConnections = UnsafeAtomic<Int>.create(0)
    /// Reloads that took effect, and those refused (the previous configuration kept serving).
    let reloads = UnsafeAtomic<Int>.create(0)
    let reloadsFailed = UnsafeAtomic<Int>.create(0)

    init() {}

    deinit {
        _ = requests.destroy()
        _ = badRequests.destroy()
        _ = badGateway.destroy()
        _ = unavailable.destroy()
        _ = gatewayTimeout.destroy()
        _ = retriedOnStaleConnection.destroy()
        _ = retries.destroy()
        _ = abortedResponses.destroy()
        _ = splicedBytes.destroy()
        _ = tlsHandshakeFailures.destroy()
        _ = tlsHandshakeTimeouts.destroy()
        _ = tlsHandshakes.destroy()
        _ = tlsResumedHandshakes.destroy()
        _ = http2Connections.destroy()
        _ = http2Streams.destroy()
        _ = http2GuardCloses.destroy()
        _ = redirects.destroy()
        _ = peerHopsReceived.destroy()
        _ = peerHopsRefused.destroy()
        _ = connectionsRefusedAtLimit.destroy()
        _ = proxyProtocolRefused.destroy()
        _ = openConnections.destroy()
        _ = reloads.destroy()
        _ = reloadsFailed.destroy()
    }

    /// One line for the log at shutdown.
    var summary: String {
        "requests=\(requests.load(ordering: .relaxed)) 400=\(badRequests.load(ordering: .relaxed)) "
            + "502=\(badGateway.load(ordering: .relaxed)) 503=\(unavailable.load(ordering: .relaxed)) "
            + "504=\(gatewayTimeout.load(ordering: .relaxed)) retried-stale=\(retriedOnStaleConnection.load(ordering: .relaxed)) "
            + "retried-elsewhere=\(retries.load(ordering: .relaxed)) "
            + "tls-handshake-failures=\(tlsHandshakeFailures.load(ordering: .relaxed)) tls-handshake-timeouts=\(tlsHandshakeTimeouts.load(ordering: .relaxed)) "
            + "aborted=\(abortedResponses.load(ordering: .relaxed)) refused-at-limit=\(connectionsRefusedAtLimit.load(ordering: .relaxed)) "
            + "tls-handshakes=\(tlsHandshakes.load(ordering: .relaxed)) tls-resumed=\(tlsResumedHandshakes.load(ordering: .relaxed)) "
            + "spliced-bytes=\(splicedBytes.load(ordering: .relaxed))"
            + " proxy-protocol-refused=\(proxyProtocolRefused.load(ordering: .relaxed))"
    }
}
