/// Whether this gateway can take traffic, as `weir health` (keepalived's `track_script`) asks:
/// every listener accepts a connection, every worker loop turns, and every pool has at least one
/// server available for new requests. Pure: the caller gathers the facts (`GET /health` on the
/// admin listener, a connect to each listener address), this decides.
public enum HealthVerdict: Equatable, Sendable {
    case healthy
    /// The first failing check, as one line, e.g. "pool api: no server available".
    case unhealthy(String)

    /// One listener address and whether a connect to it succeeded (nil: not probed, e.g. GET /health alone).
    public struct ListenerProbe: Sendable {
        public var name: String
        public var address: String
        public var accepted: Bool?
        public var error: String?
        public init(name: String, address: String, accepted: Bool?, error: String? = nil) {
            self.name = name; self.address = address; self.accepted = accepted; self.error = error
        }
    }

    /// One pool: how many of its servers take new requests (condition up) out of how many.
    public struct PoolAvailability: Sendable {
        public var name: String
        public var available: Int
        public var servers: Int
        public init(name: String, available: Int, servers: Int) {
            self.name = name; self.available = available; self.servers = servers
        }
    }

    /// A worker counts as stuck when its heartbeat (a 100 ms housekeeping tick) is older than this.
    public static let defaultStaleMilliseconds: Int64 = 1000

    /// The verdict from the facts. `workerAges`: per worker the milliseconds since its last
    /// heartbeat, nil for a worker whose loop has ended (a drain); no worker turning at all is
    /// unhealthy. Checks in the order listeners, workers, pools; the reason names the first failure.
    public static func evaluate(listeners: [ListenerProbe], workerAges: [Int64?], pools: [PoolAvailability],
                                staleMilliseconds: Int64 = defaultStaleMilliseconds) -> HealthVerdict {
        for l in listeners where l.accepted == false {
            return .unhealthy("listener \(l.name) (\(l.address)): does not accept" + (l.error.map { ": \($0)" } ?? ""))
        }
        let running = workerAges.enumerated().compactMap { i, age in age.map { (i, $0) } }
        if running.isEmpty { return .unhealthy("no worker loop is running (the gateway is stopping)") }
        if let (i, age) = running.first(where: { $0.1 > staleMilliseconds }) {
            return .unhealthy("worker weir-worker-\(i): loop has not turned for \(age) ms")
        }
        if let pool = pools.first(where: { $0.available == 0 }) {
            return .unhealthy("pool \(pool.name): no server available (\(pool.servers) configured, none up)")
        }
        return .healthy
    }

    /// "ok" or the reason.
    public var line: String {
        switch self {
        case .healthy: "ok"
        case .unhealthy(let reason): reason
        }
    }
}
