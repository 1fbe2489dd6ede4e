/// Refuses replayed and out-of-date beacons, per sender.
///
/// A beacon is fresh when its (incarnation, sequence) is strictly greater than the last pair
/// accepted from its sender (lexicographically: a restarted sender has a larger incarnation — its
/// start time in unix ms — and starts its sequence again) and its `sentAtMs` is within
/// `maxClockSkewMs` of the receiver's wall clock. So the peers' wall clocks must agree within
/// `maxClockSkewMs` (default 120 s; NTP does far better), or their beacons are all stale.
///
/// Only members get here: the caller refuses a beacon whose sender is not a configured member
/// *before* `admit` (so strangers cannot fill the table); the table is still bounded by
/// `maximumSenders`, and once full a new sender is refused as `.stale`.
public struct ReplayGuard: Sendable {
    public enum Verdict: Sendable, Equatable {
        /// Newer than anything accepted from its sender, and in the clock window: use it.
        case fresh
        /// Its (incarnation, sequence) is not above the last accepted one: a copy or an old beacon.
        case replayed
        /// Sent too far from now (clock skew or a delayed copy), or the table is full.
        case stale
    }

    public let maxClockSkewMs: Int64
    public let maximumSenders: Int
    private var last: [String: (incarnation: UInt64, sequence: UInt64)] = [:]

    public init(maxClockSkewMs: Int64 = 120_000, maximumSenders: Int = 1024) {
        self.maxClockSkewMs = max(0, maxClockSkewMs)
        self.maximumSenders = max(1, maximumSenders)
    }

    /// The verdict on `b` at wall time `nowWallMs`; records its pair when fresh.
    public mutating func admit(_ b: Beacon, nowWallMs: Int64) -> Verdict {
        let (skew, overflow) = b.sentAtMs.subtractingReportingOverflow(nowWallMs)
        if overflow || skew.magnitude > UInt64(maxClockSkewMs) { return .stale }
        if let previous = last[b.sender] {
            guard (b.incarnation, b.sequence) > (previous.incarnation, previous.sequence) else { return .replayed }
        } else if last.count >= maximumSenders {
            return .stale
        }
        last[b.sender] = (b.incarnation, b.sequence)
        return .fresh
    }

    /// The last accepted (incarnation, sequence) of `sender`, for status.
    public func lastAccepted(_ sender: String) -> (incarnation: UInt64, sequence: UInt64)? { last[sender] }

    /// Forgets a sender (it left the configuration).
    public mutating func forget(_ sender: String) { last[sender] = nil }
}
