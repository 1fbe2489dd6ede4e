import Atomics
import WeirConfig

/// One backend server as the balancer sees it: its configuration and live counters shared by all
/// workers (atomics, no locks). Created per configuration snapshot.
public final class ServerState: Sendable {
    public let config: Server
    /// Index of this server in `RoutingSnapshot.servers`.
    public let index: Int
    /// Requests currently being forwarded to this server, summed over workers.
    public let inFlight = ManagedAtomic<Int>(0)
    /// Requests sent to this server since the snapshot was made.
    public let totalRequests = ManagedAtomic<Int>(0)
    /// Failed attempts (connect refused, reset, timeout) since the snapshot was made.
    public let failures = ManagedAtomic<Int>(0)

    public init(config: Server, index: Int) {
        self.config = config
        self.index = index
    }

    /// Effective load as a fraction of capacity, from what the gateway itself knows (in-flight / capacity).
    public var load: Double {
        Double(inFlight.load(ordering: .relaxed)) / Double(max(config.capacity, 1))
    }
}
