import WeirIO

/// A worker's idle keep-alive connections to its servers, per server, newest first out (the one
/// most likely still open). An idle connection is closed when the server closes it, sends anything
/// unasked, or stays unused past the idle timeout. One per worker: no locks.
final class UpstreamPool {
    private var idle: [[Connection]]
    private let maxPerServer: Int
    private let idleTimeoutMs: Int64
    /// One handler per server for its parked connections (made once: parking allocates nothing).
    private var watchers: [IdleWatcher] = []
    /// Set when a reload replaced this pool: connections parked afterwards are closed.
    private var retired = false

    init(servers: Int, maxPerServer: Int, idleTimeoutMs: Int64) {
        idle = Array(repeating: [], count: servers)
        self.maxPerServer = maxPerServer
        self.idleTimeoutMs = idleTimeoutMs
        watchers = (0..<servers).map { IdleWatcher(pool: self, server: $0) }
    }

    /// Takes an idle connection to `server`, or nil when there is none. The caller becomes its handler.
    func take(server: Int) -> Connection? {
        while let connection = idle[server].popLast() {
            if connection.isOpen { return connection }
        }
        return nil
    }

    /// Parks `connection` (open, with nothing in flight) for reuse, or closes it when the pool is full.
    func park(_ connection: Connection, server: Int) {
        guard !retired, connection.isOpen, maxPerServer > 0, connection.input.isEmpty else { connection.close(); return }
        if idle[server].count >= maxPerServer {
            idle[server].removeFirst().close()
        }
        connection.handler = watchers[server]
        connection.setTimeouts(readMilliseconds: idleTimeoutMs, writeMilliseconds: nil)
        connection.setReading(true)
        idle[server].append(connection)
    }

    /// Closes every idle connection (drain, shutdown).
    func closeAll() {
        for list in idle { for c in list { c.close() } }
        idle = idle.map { _ in [] }
    }

    /// A reload: moves each idle connection to `successor` under the server index `map` gives (nil:
    /// closed), and closes connections parked here from now on.
    func retire(mapping map: (Int) -> Int?, into successor: UpstreamPool) {
        retired = true
        for (server, list) in idle.enumerated() {
            let target = map(server)
            for c in list where c.isOpen {
                if let target { successor.park(c, server: target) } else { c.close() }
            }
        }
        idle = idle.map { _ in [] }
    }

    fileprivate func discard(_ connection: Connection, server: Int) {
        idle[server].removeAll { $0 === connection }
        connection.close()
    }

    /// Handler of a parked connection: anything that happens on it ends it.
    private final class IdleWatcher: ConnectionHandler {
        unowned let pool: UpstreamPool
        let server: Int
        init(pool: UpstreamPool, server: Int) {
            self.pool = pool
            self.server = server
        }
        func connectionReadable(_ connection: Connection) { pool.discard(connection, server: server) }
        func connectionWritable(_ connection: Connection) {}
        func connection(_ connection: Connection, event: ConnectionEvent) { pool.discard(connection, server: server) }
    }
}
