import WeirBalance
import WeirIO

/// Work that runs on the gateway's control thread beside the probes and the admin listener: the
/// peer group's beacons (`WeirPeer`). The gateway calls, in this order and on its control thread:
/// `peerContext` after building each routing snapshot (before a worker uses it), `start` once the
/// workers run, `adopt` after each reload, `groupStatus` for each `GET /status`, and `stop` when
/// draining begins.
public protocol ControlService: AnyObject {
    /// The peer context the workers need (a peer process), or nil (a gateway listening to beacons).
    func peerContext(snapshot: RoutingSnapshot) -> PeerContext?
    /// Starts the service on `loop` (the control loop). Throws an error that says what could not be
    /// done (e.g. a UDP address that cannot be bound); the gateway then does not serve.
    func start(loop: EventLoop, snapshot: RoutingSnapshot, clock: any BalanceClock) throws
    /// The service's section of `GET /status`, or nil.
    func groupStatus() -> GroupStatus?
    /// Draining begins: say goodbye (e.g. a last beacon saying "drain") and stop the timers.
    func stop()
    /// The beacon interval in force, in milliseconds (nil: the service sends none).
    var beaconIntervalMilliseconds: Int64? { get }
    /// Changes the beacon interval at run time (and the off-line deadline with it).
    /// Precondition: 50...60 000 ms (the admin API checks what an operator sent).
    func setBeaconInterval(milliseconds: Int64)
    /// Hands the service the register of users before `start` (`[group] share_users`).
    func shareUsers(_ exchange: UserExchange)
    /// A reload replaced the routing snapshot (after `start`; [peer] and [group] are the same): work
    /// on `snapshot` from now on. Its servers carry the run-time state of those with the same id.
    func adopt(snapshot: RoutingSnapshot)
}

extension ControlService {
    /// Most services have nothing to do with the register of users.
    public func shareUsers(_ exchange: UserExchange) {}
}

/// The `group` section of `GET /status`: the peer group as this process sees it.
public struct GroupStatus: Codable, Sendable, Equatable {
    public struct Member: Codable, Sendable, Equatable {
        public var id: String
        /// "peer" or "listener".
        public var role: String
        /// On-line by the failure detector (its beacons arrive).
        public var online: Bool
        /// What its last beacon said: "up", "drain", "maint" or "down"; nil before the first.
        public var state: String?
        /// Load its last beacon reported, and the capacity it is relative to; nil before the first.
        public var load: Double?
        public var capacity: Int?
        /// The load this process balances on: the report plus requests routed there since (herding).
        public var effective_load: Double?
        /// Milliseconds since its last valid beacon; nil when none was heard.
        public var last_beacon_age_ms: Int?
        /// Requests this process routed to it (forwarded or redirected).
        public var routed: Int
        /// The paths it serves (empty: every path) and the addresses it holds for others.
        public var serves: [String]
        public var holding: [String]
        public init(id: String, role: String, online: Bool, state: String?, load: Double?, capacity: Int?,
                    effective_load: Double?, last_beacon_age_ms: Int?, routed: Int, serves: [String], holding: [String]) {
            self.id = id; self.role = role; self.online = online; self.state = state; self.load = load
            self.capacity = capacity; self.effective_load = effective_load; self.last_beacon_age_ms = last_beacon_age_ms
            self.routed = routed; self.serves = serves; self.holding = holding
        }
    }
    /// This process's id in the group, and its role ("peer", or "listener" for a gateway).
    public var id: String
    public var role: String
    /// The local application's load and state as this peer advertises them (nil for a listener).
    public var load: Double?
    public var state: String?
    /// Requests processed by the local application (nil for a listener).
    public var routed_local: Int?
    /// True while this process hears no member at all: it then takes over nothing.
    public var isolated: Bool
    /// Addresses this process holds for off-line peers.
    public var holding: [String]
    public var members: [Member]
    /// Beacons sent, accepted, and refused by reason ("bad_mac", "replayed", "unknown_sender", ...).
    public var beacons_sent: Int
    public var beacons_accepted: Int
    public var beacons_refused: [String: Int]
    /// Requests that arrived with a valid hop token, and hop markers refused (removed and ignored).
    public var hops_received: Int
    public var hops_refused: Int
    /// Address takeovers and releases since start.
    public var takeovers: Int
    public var releases: Int

    public init(id: String, role: String, load: Double?, state: String?, routed_local: Int?, isolated: Bool,
                holding: [String], members: [Member], beacons_sent: Int, beacons_accepted: Int,
                beacons_refused: [String: Int], hops_received: Int, hops_refused: Int, takeovers: Int, releases: Int) {
        self.id = id; self.role = role; self.load = load; self.state = state; self.routed_local = routed_local
        self.isolated = isolated; self.holding = holding; self.members = members; self.beacons_sent = beacons_sent
        self.beacons_accepted = beacons_accepted; self.beacons_refused = beacons_refused
        self.hops_received = hops_received; self.hops_refused = hops_refused; self.takeovers = takeovers; self.releases = releases
    }
}
