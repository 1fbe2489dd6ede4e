// PLACEHOLDER (lead): the types of /work/peer-spec.md, replaced by the peer-config slice's file at merge.

public enum PeerRouting: String, Sendable, Equatable, CaseIterable { case proxy, redirect }
public enum LoadSource: String, Sendable, Equatable, CaseIterable { case probes, beacons }
public enum MemberRole: String, Sendable, Equatable, CaseIterable { case peer, listener }

public struct InterfaceAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var address: String
    public var prefixLength: Int
    public var device: String
    public var isIPv6: Bool
    public var cidr: String { "\(address)/\(prefixLength)" }
    public var description: String { "\(cidr) dev \(device)" }
    public init(address: String, prefixLength: Int, device: String, isIPv6: Bool = false) {
        self.address = address; self.prefixLength = prefixLength; self.device = device; self.isIPv6 = isIPv6
    }
}

public struct PeerSettings: Sendable, Equatable {
    public var id: String
    public var app: SocketAddress
    public var capacity: Int = 100
    public var routeBy: PeerRouting = .proxy
    public var firstLevel: Double = 0.5
    public var secondLevel: Double = 0.2
    public var publicURL: String?
    public var serves: [String] = []
    public var addresses: [InterfaceAddress] = []
    public var redirectStatus: Int = 307
    public var health: HealthCheck = HealthCheck()
    public init(id: String, app: SocketAddress) { self.id = id; self.app = app }
}

public struct GroupSettings: Sendable, Equatable {
    public var beacon: SocketAddress
    public var interval: Duration = .milliseconds(500)
    public var deadAfter: Int = 3
    public var rise: Int = 2
    public var secret: String?
    public var secretFile: String?
    public var members: [GroupMember] = []
    public init(beacon: SocketAddress) { self.beacon = beacon }
}

public struct GroupMember: Sendable, Equatable {
    public var id: String
    public var beacon: SocketAddress
    public var role: MemberRole = .peer
    public var address: SocketAddress?
    public var publicURL: String?
    public var capacity: Int = 100
    public var takeover: [InterfaceAddress] = []
    public init(id: String, beacon: SocketAddress) { self.id = id; self.beacon = beacon }
}
