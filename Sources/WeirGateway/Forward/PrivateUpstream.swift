import WeirIO

/// A session's idle connection to a `send_proxy` server, kept for the same client's next request.
///
/// The connection began with this client's PROXY header, so it must never carry another client's
/// request (HAProxy keeps such connections private to their session too); the worker's shared
/// `UpstreamPool` is not for it. Like a pooled connection, anything the server does while it is idle
/// (closes, sends, stays silent past the idle timeout) ends it. One per session, made the first time
/// it is needed and reused: keeping a connection allocates nothing.
final class PrivateUpstream: ConnectionHandler {
    private var connection: Connection?
    private var server = -1
    /// The configuration load whose server index `server` is (a reload may renumber servers).
    private var generation: Generation?

    /// Keeps `connection` (open, with nothing in flight) to `server` of `generation`, closing the one kept
    /// before, if any. A connection with unread input is closed instead.
    func keep(_ connection: Connection, server: Int, generation: Generation, idleMs: Int64) {
        drop()
        guard connection.isOpen, connection.input.isEmpty else { connection.close(); return }
        self.connection = connection
        self.server = server
        self.generation = generation
        connection.handler = self
        connection.setTimeouts(readMilliseconds: idleMs, writeMilliseconds: nil)
        connection.setReading(true)
    }

    /// The kept connection when it goes to `server` of `generation` and is still open (the caller becomes its
    /// handler), else nil; a kept connection to another server is closed.
    func take(server: Int, generation: Generation) -> Connection? {
        guard let connection else { return nil }
        guard server == self.server, generation === self.generation, connection.isOpen else { drop(); return nil }
        forget()
        return connection
    }

    /// Closes the kept connection, if any (the session ends, or it is replaced).
    func drop() {
        connection?.close()
        forget()
    }

    private func forget() {
        connection = nil
        generation = nil
        server = -1
    }

    func connectionReadable(_ connection: Connection) { drop() }
    func connectionWritable(_ connection: Connection) {}
    func connection(_ connection: Connection, event: ConnectionEvent) { drop() }
}
