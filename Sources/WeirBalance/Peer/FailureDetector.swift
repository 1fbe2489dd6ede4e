/// Which members are on-line, from the beacons heard (the beacon is the heartbeat). A value on a
/// manual clock: time is passed in, nanoseconds from any monotonic origin.
///
/// * Members start off-line (never heard).
/// * Off-line → on-line after `rise` consecutive valid beacons, each arriving less than
///   `deadAfter × interval` after the previous one (a longer gap starts the count again).
/// * On-line → off-line when silent for ≥ `deadAfter × interval` (500 ms × 3: silent 1.499 s is
///   still on-line, 1.5 s is off-line), found by `tick` or by the next `heard`.
/// * Isolated: this process has members, has been running for at least `deadAfter × interval`, and
///   has heard no valid beacon from any member for that long. An isolated peer is most likely the
///   one cut off, so it must stand back (take over nothing).
///
/// Feed it only beacons that passed `BeaconCodec.decode`, the member check and `ReplayGuard`.
public struct FailureDetector: Sendable {
    /// A member changed state; the caller logs and counts it.
    public struct Transition: Sendable, Equatable {
        public var id: String
        public var online: Bool
        public init(id: String, online: Bool) { self.id = id; self.online = online }
    }

    struct Member: Sendable {
        var online = false
        var streak = 0
        var lastHeard: UInt64?
    }

    public let intervalNanoseconds: UInt64
    public let deadAfter: Int
    public let rise: Int
    /// `deadAfter × interval`: the silence that takes a member off-line.
    public let deadlineNanoseconds: UInt64
    public let startedNanoseconds: UInt64
    private var members: [String: Member]
    private var lastHeardAny: UInt64?

    /// `members` excludes this process itself; `start` is now on the same clock as later calls.
    public init(members: [String], intervalNanoseconds: UInt64, deadAfter: Int, rise: Int, start: UInt64) {
        self.intervalNanoseconds = max(1, intervalNanoseconds)
        self.deadAfter = max(1, deadAfter)
        self.rise = max(1, rise)
        let (deadline, overflow) = self.intervalNanoseconds.multipliedReportingOverflow(by: UInt64(self.deadAfter))
        deadlineNanoseconds = overflow ? .max : deadline
        startedNanoseconds = start
        self.members = Dictionary(members.map { ($0, Member()) }, uniquingKeysWith: { first, _ in first })
    }

    /// The member ids, sorted.
    public var memberIDs: [String] { members.keys.sorted() }

    /// Records a valid beacon from `id` at `now`; returns the transitions it caused (an on-line
    /// member silent past the deadline goes off-line first; then maybe on-line). Unknown ids are ignored.
    @discardableResult
    public mutating func heard(_ id: String, now: UInt64) -> [Transition] {
        guard var member = members[id] else { return [] }
        var transitions: [Transition] = []
        if let last = member.lastHeard, silence(since: last, now: now) < deadlineNanoseconds {
            member.streak += 1
        } else {
            if member.online { member.online = false; transitions.append(Transition(id: id, online: false)) }
            member.streak = 1
        }
        member.lastHeard = now
        if !member.online, member.streak >= rise {
            member.online = true
            transitions.append(Transition(id: id, online: true))
        }
        members[id] = member
        lastHeardAny = max(lastHeardAny ?? now, now)
        return transitions
    }

    /// Declares off-line every on-line member silent for ≥ the deadline (and resets the rise count
    /// of off-line ones that went silent); returns the transitions, sorted by id.
    @discardableResult
    public mutating func tick(now: UInt64) -> [Transition] {
        var transitions: [Transition] = []
        for id in memberIDs {
            guard var member = members[id], let last = member.lastHeard,
                  silence(since: last, now: now) >= deadlineNanoseconds else { continue }
            if member.online { transitions.append(Transition(id: id, online: false)) }
            member.online = false
            member.streak = 0
            members[id] = member
        }
        return transitions
    }

    /// Whether `id` is an on-line member (as of the last `heard`/`tick`).
    public func isOnline(_ id: String) -> Bool { members[id]?.online ?? false }

    /// The on-line members.
    public var onlineIDs: Set<String> { Set(members.compactMap { $0.value.online ? $0.key : nil }) }

    /// True when this process must stand back: see the type's comment.
    public func isIsolated(now: UInt64) -> Bool {
        guard !members.isEmpty, silence(since: startedNanoseconds, now: now) >= deadlineNanoseconds else { return false }
        guard let last = lastHeardAny else { return true }
        return silence(since: last, now: now) >= deadlineNanoseconds
    }

    /// When `id`'s last valid beacon arrived (clock of the calls), nil when never heard or unknown.
    public func lastHeardNanoseconds(_ id: String) -> UInt64? { members[id]?.lastHeard }

    /// How long `id` has been silent at `now`, for status; nil when never heard or unknown.
    public func silenceNanoseconds(_ id: String, now: UInt64) -> UInt64? {
        members[id]?.lastHeard.map { silence(since: $0, now: now) }
    }

    /// `now − since`, 0 when the clock values are out of order.
    private func silence(since: UInt64, now: UInt64) -> UInt64 { now >= since ? now - since : 0 }
}
