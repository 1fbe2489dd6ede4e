import WeirIO

/// A stream connection and the `ClientSession` on it, serving one HTTP/2 stream after another the
/// way an HTTP/1.1 keep-alive connection serves one request after another: a stream borrows an
/// idle lane of its HTTP/2 connection (or a new one), and gives it back once the exchange is over
/// (the response parsed out, the request taken in, the session waiting for its next head). Making
/// the connection, its buffers, the session and its timer per stream was most of what an HTTP/2
/// request cost beyond an HTTP/1.1 one.
///
/// The lane is the stream connection's endpoint for its whole life; it passes what the session
/// does to the stream it serves, and tells its HTTP/2 connection when the session closed an idle
/// lane (its `client_idle` timer, a drain).
final class HTTP2Lane: StreamEndpoint {
    /// unowned(unsafe): the connection ends (and closes) its idle lanes and cancels its streams, which
    /// let go of theirs, before it goes; a checked reference costs atomic operations at every use.
    unowned(unsafe) let owner: HTTP2Connection
    private(set) var connection: Connection!
    /// Made at the first stream's start (a stream the client resets before it starts never needs one).
    var session: ClientSession?
    /// The stream served now; nil while the lane is idle. Cleared by the stream when it lets go
    /// (`HTTP2Stream.releaseLane`), which breaks the reference cycle.
    var stream: HTTP2Stream?
    /// The session closed the connection: the lane is never used again.
    private(set) var isClosed = false
    /// When the lane last became idle (the connection closes lanes idle too long).
    var idleSinceMs: Int64 = 0

    deinit {
        // A queued session may still hold the connection and itself.
        connection.detachStreamEndpoint()
        session?.http2Lane = nil
    }

    init(owner: HTTP2Connection, client: Connection) {
        self.owner = owner
        connection = Connection.stream(loop: owner.worker.loop, peer: client.peer, local: client.localAddress,
                                       secure: client.isTLS, tlsVersion: client.tlsVersionName, endpoint: self)
    }

    /// Whether the lane can serve another stream: the session is alive, waits for a head, and both
    /// buffers are empty.
    var isReusable: Bool {
        guard !isClosed, let session, session.awaitsNextRequest else { return false }
        return connection.input.isEmpty && connection.output.isEmpty
    }

    /// Ends an idle lane: its session closes (and the lane hears `streamClosed`).
    func close() {
        guard !isClosed else { return }
        if let session { session.closeIfIdle() }
        if !isClosed { connection.close() }
    }

    // MARK: - StreamEndpoint

    func streamOutputGrew(_ connection: Connection) {
        if let stream { stream.streamOutputGrew(connection) } else { connection.output.drainAll() }
    }

    func streamReadingChanged(_ connection: Connection) { stream?.streamReadingChanged(connection) }

    func streamInputTaken(_ connection: Connection, count: Int) { stream?.streamInputTaken(connection, count: count) }

    func streamClosed(_ connection: Connection, flushed: Bool) {
        isClosed = true
        session?.http2Lane = nil
        session = nil
        if let stream { stream.streamClosed(connection, flushed: flushed) } else { owner.laneClosed(self) }
    }
}
