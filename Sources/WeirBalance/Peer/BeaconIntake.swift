/// The receiving path of one beacon datagram, in the order that matters:
/// 1. `BeaconCodec.decode` (size, magic, version, MAC, fields);
/// 2. the sender must be a configured member other than this process — strangers are refused
///    here, before `ReplayGuard`, so they cannot take room in its table;
/// 3. `ReplayGuard.admit` (replayed / stale);
/// 4. `FailureDetector.heard`.
/// The shell (GroupRuntime) owns one, feeds it every datagram, and logs/counts the outcome.
public struct BeaconIntake: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// A fresh beacon from a member, and the detector transitions it caused.
        case accepted(Beacon, [FailureDetector.Transition])
        /// The datagram itself was refused.
        case rejected(BeaconCodec.Rejection)
        /// A valid beacon whose sender is not a member (or is this process itself).
        case unknownSender(String)
        /// A valid member beacon refused by the replay guard.
        case refused(String, ReplayGuard.Verdict)
    }

    public let selfID: String
    public let members: Set<String>
    public var replay: ReplayGuard
    public var detector: FailureDetector

    /// `members` excludes `selfID`; the detector should know the same members.
    public init(selfID: String, members: Set<String>, replay: ReplayGuard, detector: FailureDetector) {
        self.selfID = selfID
        self.members = members.subtracting([selfID])
        self.replay = replay
        self.detector = detector
    }

    /// Runs `datagram` through the path above at monotonic time `now` and wall time `nowWallMs`.
    public mutating func receive(_ datagram: [UInt8], now: UInt64, nowWallMs: Int64, mac: ([UInt8]) -> [UInt8]) -> Outcome {
        let beacon: Beacon
        switch BeaconCodec.decode(datagram, mac: mac) {
        case .failure(let rejection): return .rejected(rejection)
        case .success(let decoded): beacon = decoded
        }
        guard members.contains(beacon.sender) else { return .unknownSender(beacon.sender) }
        let verdict = replay.admit(beacon, nowWallMs: nowWallMs)
        guard verdict == .fresh else { return .refused(beacon.sender, verdict) }
        return .accepted(beacon, detector.heard(beacon.sender, now: now))
    }
}
