// The peer group (issue 10, `weir peer`): `[peer]` (this host's peer module), `[group]` with its
// `[[group.member]]`s (the beacon group), and the values they are made of. A directory with `[peer]` is run by
// `weir peer`; the loader then synthesizes the pool `group` (and a default route) from these tables, so the
// gateway balances among the peers with its ordinary machinery.

/// `[peer] route_by`: how a peer hands a request to another peer. Default `.proxy`.
public enum PeerRouting: String, Sendable, Equatable, CaseIterable {
    /// `"proxy"` (the default): the request is forwarded to the other peer's `address`.
    case proxy
    /// `"redirect"`: the client is redirected to the other peer's public URL with `[peer] redirect_status`.
    case redirect
}

/// `[[pool]] load_source`: where a pool's servers' load and state come from. Default `.probes`.
public enum LoadSource: String, Sendable, Equatable, CaseIterable {
    /// `"probes"` (the default): the gateway's own count of requests in flight and its health checks.
    case probes
    /// `"beacons"`: the beacons of the `[[group.member]]` whose id equals the server id (needs `[group]`).
    case beacons
}

/// `[[group.member]] role`: what a member does in the group. Default `.peer`.
public enum MemberRole: String, Sendable, Equatable, CaseIterable {
    /// `"peer"` (the default): a server that takes requests (it is a server of the pool `group`).
    case peer
    /// `"listener"`: a process that only listens to beacons (e.g. a gateway with a `load_source = "beacons"` pool).
    case listener
}

/// An address a host assumes on one of its network devices, written `"198.51.100.1/24 dev eth0"` (the form of
/// `ip address add`): a numeric IPv4 or IPv6 address (no brackets, no zone), its prefix length (0...32 for IPv4,
/// 0...128 for IPv6) and a device name (1...15 of `[A-Za-z0-9._-@]`).
public struct InterfaceAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The numeric IP address, e.g. `"198.51.100.1"` (IPv6 in RFC 5952 form, e.g. `"2001:db8::1"`).
    public var address: String
    /// The prefix length, e.g. 24.
    public var prefixLength: Int
    /// The network device, e.g. `"eth0"`.
    public var device: String
    /// Whether `address` is IPv6.
    public var isIPv6: Bool

    public init(address: String, prefixLength: Int, device: String, isIPv6: Bool) {
        self.address = address
        self.prefixLength = prefixLength
        self.device = device
        self.isIPv6 = isIPv6
    }

    /// `"198.51.100.1/24"`: what beacons carry.
    public var cidr: String { "\(address)/\(prefixLength)" }
    /// `"198.51.100.1/24 dev eth0"`.
    public var description: String { "\(cidr) dev \(device)" }

    /// Parses `"198.51.100.1/24 dev eth0"`; nil when it is not of that form (the loader says why).
    public static func parse(_ text: String) -> InterfaceAddress? {
        if case .success(let address) = ValueRules.parseInterfaceAddress(text) { return address }
        return nil
    }
}

/// `[peer]` (with `[peer.health]`): this host's peer module. The whole table is written in one file. A directory
/// with `[peer]` needs a `[group]`; the loader then appends the pool `group` (see `PeerSettings.poolName`).
public struct PeerSettings: Sendable, Equatable {
    /// `id` (required): this host's name in the group, 1...64 of `[A-Za-z0-9._-]`, e.g. `"peer-a"`. Not the id of
    /// a `[[group.member]]` (the members are the other hosts). It is the id of the local app's server in pool `group`.
    public var id: String
    /// `app` (required): numeric address and port of the local application, e.g. `127.0.0.1:8000`. Port 0 is
    /// rejected.
    public var app: SocketAddress
    /// `capacity`: concurrent requests the app is meant to carry (its load is in flight / capacity).
    /// Range 1...1_000_000. Default 100.
    public var capacity: Int
    /// `route_by`: `"proxy"` or `"redirect"`: how a request is handed to another peer. Default `.proxy`.
    public var routeBy: PeerRouting
    /// `first_level`: the threshold policy's first level (same range and forms as `[[pool]] first_level`).
    /// Default 0.5.
    public var firstLevel: Double
    /// `second_level`: the threshold policy's second level (same range and forms as `[[pool]] second_level`).
    /// Default 0.2.
    public var secondLevel: Double
    /// `public_url`: an `http://` or `https://` URL (no path beyond `"/"`) under which this peer is reached
    /// directly (redirect routing). Default nil: the synthesized server gets `"http://<first listener address>"`
    /// (`https://` when that listener has TLS).
    public var publicURL: String?
    /// `serves`: the path patterns this peer's app serves, each a path prefix such as `"/api/"` or a prefix ending
    /// in `"*"` such as `"/banking/*"` (starting with `"/"`; no spaces, `"?"` or `"#"`; no other `"*"`).
    /// Default `[]`: every path.
    public var serves: [String]
    /// `addresses`: this peer's own service addresses, e.g. `["198.51.100.10/24 dev eth0"]` (added at start and
    /// announced in its beacons, so a stand-in knows what to take over). Default `[]`.
    public var addresses: [InterfaceAddress]
    /// `redirect_status`: the status of the redirects with `route_by = "redirect"`: 307 or 308. Default 307.
    public var redirectStatus: Int
    /// `[peer.health]`: the health check of the local app; the same keys and defaults as `[pool.health]`.
    public var health: HealthCheck

    public init(id: String, app: SocketAddress, capacity: Int = 100, routeBy: PeerRouting = .proxy,
                firstLevel: Double = 0.5, secondLevel: Double = 0.2, publicURL: String? = nil, serves: [String] = [],
                addresses: [InterfaceAddress] = [], redirectStatus: Int = 307, health: HealthCheck = HealthCheck()) {
        self.id = id
        self.app = app
        self.capacity = capacity
        self.routeBy = routeBy
        self.firstLevel = firstLevel
        self.secondLevel = secondLevel
        self.publicURL = publicURL
        self.serves = serves
        self.addresses = addresses
        self.redirectStatus = redirectStatus
        self.health = health
    }

    /// `"group"`: the name of the pool the loader synthesizes in peer mode (reserved there).
    public static let poolName = "group"
    /// `"peer"`: the name of the route the loader synthesizes when a peer directory has no `[[route]]`.
    public static let defaultRouteName = "peer"
    /// The accepted `redirect_status` values: 307, 308 (the method and body are kept).
    public static let redirectStatuses = [307, 308]
    /// The accepted `capacity` values.
    public static let capacityRange = 1...1_000_000
}

/// `[group]` (with its `[[group.member]]`s): the beacon group this process belongs to (a peer, or a gateway that
/// listens). The whole table is written in one file.
///
/// Secret resolution as for `[sticky]`: `secret` holds the effective secret, written inline or read from
/// `secret_file` at load time (trimmed, at least 32 bytes); `secretFile` keeps the file's path. Both nil: the
/// process generates one into `global.stateDirectory` (`"group.secret"`), which must then be copied to every member.
public struct GroupSettings: Sendable, Equatable {
    /// `beacon` (required): the numeric UDP address this process binds for beacons, e.g. `198.51.100.1:7946`.
    /// Port 0 is rejected. Not the beacon of a member.
    public var beacon: SocketAddress
    /// `interval`: how often a beacon is sent to every member. Range 50ms...60s. Default 500 ms.
    public var interval: Duration
    /// `dead_after`: intervals of silence after which a member is off-line. Range 2...100. Default 3
    /// (1.5 s with the default interval).
    public var deadAfter: Int
    /// `rise`: consecutive valid beacons that bring an off-line member back on-line. Range 1...100. Default 2.
    public var rise: Int
    /// The effective HMAC-SHA256 key of the beacons: `secret`, or the trimmed contents of `secret_file`; at least
    /// 32 characters. `secret` and `secret_file` are mutually exclusive. Default nil (generated at first start).
    public var secret: String?
    /// `secret_file`: the path the secret was read from; nil when written inline or not configured. Default nil.
    public var secretFile: String?
    /// `[[group.member]]`: the other hosts, in declaration order. Ids and beacon addresses are unique. Default `[]`.
    public var members: [GroupMember]
    /// `share_users` (gateways only): this gateway sends beacons of its own to the members with role
    /// "listener" (the other gateways), carrying its confirmed users per server, and adds theirs to its server
    /// list. Needs `id`. Default false.
    public var shareUsers: Bool
    /// `share_load` (gateways only): this gateway sends beacons of its own to the members with role
    /// "listener" carrying its requests in flight per server, and balances on its own count plus the
    /// sum the other gateways' fresh beacons report. Needs `id`; every gateway of the group must read
    /// beacon version 3. Default false.
    public var shareLoad: Bool
    /// `id`: this gateway's member id in the beacons it sends (`share_users`, `share_load`); the others list it as a
    /// `[[group.member]]` with role "listener". Default nil.
    public var id: String?

    public init(beacon: SocketAddress, interval: Duration = .milliseconds(500), deadAfter: Int = 3, rise: Int = 2,
                secret: String? = nil, secretFile: String? = nil, members: [GroupMember] = [],
                shareUsers: Bool = false, id: String? = nil, shareLoad: Bool = false) {
        self.shareUsers = shareUsers
        self.shareLoad = shareLoad
        self.id = id
        self.beacon = beacon
        self.interval = interval
        self.deadAfter = deadAfter
        self.rise = rise
        self.secret = secret
        self.secretFile = secretFile
        self.members = members
    }

    /// The accepted `interval` values: 50 ms ... 60 s.
    public static let intervalRange: ClosedRange<Duration> = .milliseconds(50) ... .seconds(60)
    /// `"group.secret"`: the file in `global.stateDirectory` a generated secret is kept in.
    public static let generatedSecretFile = "group.secret"
}

/// `[[group.member]]`: another host of the group (never this host itself).
public struct GroupMember: Sendable, Equatable {
    /// `id` (required): the member's `[peer] id`, 1...64 of `[A-Za-z0-9._-]`; unique, and not this host's peer id.
    public var id: String
    /// `beacon` (required): the numeric UDP address its beacons are sent to (its own `[group] beacon`).
    public var beacon: SocketAddress
    /// `role`: `"peer"` (the default) or `"listener"`.
    public var role: MemberRole
    /// `address`: its public HTTP address (where proxied requests go). Required for role `"peer"`, refused for
    /// role `"listener"`. Port 0 is rejected.
    public var address: SocketAddress?
    /// `public_url`: where redirected clients go; nil = `"http://<address>"`. Refused for role `"listener"`.
    public var publicURL: String?
    /// `capacity`: its capacity until its first beacon says otherwise. Range 1...1_000_000. Default 100.
    public var capacity: Int
    /// `takeover`: its addresses THIS host may assume while it is off-line, with this host's device, e.g.
    /// `["198.51.100.11/24 dev eth0"]`. Refused for role `"listener"`. Default `[]`.
    public var takeover: [InterfaceAddress]

    public init(id: String, beacon: SocketAddress, role: MemberRole = .peer, address: SocketAddress? = nil,
                publicURL: String? = nil, capacity: Int = 100, takeover: [InterfaceAddress] = []) {
        self.id = id
        self.beacon = beacon
        self.role = role
        self.address = address
        self.publicURL = publicURL
        self.capacity = capacity
        self.takeover = takeover
    }
}
