/// The other gateways' view per server, as their beacons report it: requests in flight
/// (`[group] share_load`) and confirmed users, the pins of their registers (`[group] share_users`).
/// Pure (the caller passes the monotonic time), used on the control thread only.
///
/// Both are summed the same way. A gateway's report counts while it is fresh: younger than
/// `maxAgeNanoseconds` (dead_after × interval, the failure detector's deadline). A silent gateway
/// therefore stops counting at its deadline, and counts again with its next beacon. A restarted
/// gateway (a larger incarnation) replaces its old report; a report older than the one held
/// (smaller incarnation, or the same one with a sequence not above it) is ignored. This gateway's
/// own beacons are never recorded: its own counts are read without delay from its own atomics and
/// register, and must not be added a second time.
public struct SharedLoad: Sendable, Equatable {
    struct Report: Sendable, Equatable {
        var incarnation: UInt64
        var sequence: UInt64
        var heardAt: UInt64
        var inFlight: [String: Int]
        var users: [String: Int]
    }

    /// How long a report counts, in nanoseconds (≥ 1).
    public let maxAgeNanoseconds: UInt64
    /// This gateway's id (`[group] id`): beacons signed with it are not recorded.
    public let selfID: String
    private var reports: [String: Report] = [:]

    /// `maxAgeNanoseconds`: dead_after × interval (0 is taken as 1); `selfID`: this gateway's id.
    public init(maxAgeNanoseconds: UInt64, selfID: String) {
        self.maxAgeNanoseconds = max(1, maxAgeNanoseconds)
        self.selfID = selfID
    }

    /// Records `beacon`'s in-flight and user counts heard at monotonic time `now` (a beacon without
    /// a list says "none" for it). Returns false, changing nothing, when the beacon is this
    /// gateway's own or older than the report held for its sender.
    @discardableResult
    public mutating func record(_ beacon: Beacon, now: UInt64) -> Bool {
        if beacon.sender == selfID { return false }
        if let held = reports[beacon.sender],
           (beacon.incarnation, beacon.sequence) <= (held.incarnation, held.sequence) {
            return false
        }
        reports[beacon.sender] = Report(incarnation: beacon.incarnation, sequence: beacon.sequence, heardAt: now,
                                        inFlight: Self.perServer(beacon.inFlight), users: Self.perServer(beacon.users))
        return true
    }

    /// Whether `sender`'s report counts at `now`.
    public func isFresh(_ sender: String, now: UInt64) -> Bool {
        guard let report = reports[sender] else { return false }
        return now < report.heardAt || now - report.heardAt < maxAgeNanoseconds
    }

    /// Server id → requests in flight summed over the gateways whose reports are fresh at `now`
    /// (servers with none are left out).
    public func sums(now: UInt64) -> [String: Int] { sum(\.inFlight, now: now) }

    /// Server id → confirmed users summed over the gateways whose reports are fresh at `now`
    /// (servers with none are left out).
    public func userSums(now: UInt64) -> [String: Int] { sum(\.users, now: now) }

    /// `sender`'s in-flight counts as last reported (fresh or not); nil before any.
    public func counts(of sender: String) -> [String: Int]? { reports[sender]?.inFlight }

    private func sum(_ list: KeyPath<Report, [String: Int]>, now: UInt64) -> [String: Int] {
        var sums: [String: Int] = [:]
        for (sender, report) in reports where isFresh(sender, now: now) {
            for (server, count) in report[keyPath: list] { sums[server, default: 0] += count }
        }
        return sums
    }

    /// A beacon list as server id → count (positive counts only; a repeated id adds up).
    private static func perServer(_ entries: [Beacon.UserCount]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for entry in entries where entry.count > 0 { counts[entry.server, default: 0] += entry.count }
        return counts
    }
}
