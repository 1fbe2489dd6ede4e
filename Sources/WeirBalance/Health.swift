/// A server's effective state for new requests.
/// - `up`: takes new requests.
/// - `down`: takes nothing (health checks or passive failures decided it, or a report said so).
/// - `drain`: keeps pinned work (sticky sessions), gets no new requests.
/// - `maint`: takes nothing (an operator or the server itself put it in maintenance).
public enum ServerCondition: UInt8, Sendable, CustomStringConvertible, CaseIterable {
    case up = 0, drain = 1, down = 2, maint = 3

    /// "up", "down", "drain", "maint".
    public var description: String {
        switch self {
        case .up: "up"
        case .down: "down"
        case .drain: "drain"
        case .maint: "maint"
        }
    }

    /// Parses "up", "down", "drain", "maint" (any case; "ready" is also "up", "maintenance" "maint").
    public init?(name: String) {
        switch name.lowercased() {
        case "up", "ready": self = .up
        case "down", "fail", "stopped": self = .down
        case "drain": self = .drain
        case "maint", "maintenance": self = .maint
        default: return nil
        }
    }

    /// How restrictive: up < drain < down < maint. Combining sources keeps the most restrictive.
    var severity: UInt8 { rawValue }
}

/// Rise/fall state machine (HAProxy's model) for one server: `rise` consecutive good probes bring a
/// down server up, `fall` consecutive bad ones take an up server down. Owned by the control thread
/// (a value, not thread-safe); its transitions are published with `ServerState.setHealth(up:now:)`.
public struct HealthMachine: Sendable {
    public let rise: Int
    public let fall: Int
    public private(set) var isUp: Bool
    /// Consecutive outcomes that point away from the current state (successes while down, failures while up).
    public private(set) var streak: Int = 0

    public init(rise: Int, fall: Int, startUp: Bool = true) {
        self.rise = max(1, rise)
        self.fall = max(1, fall)
        self.isUp = startUp
    }

    /// Records one probe outcome; returns true when `isUp` changed.
    public mutating func record(success: Bool) -> Bool {
        if success == isUp {
            streak = 0           // an outcome that agrees with the state breaks any opposite streak
            return false
        }
        streak += 1
        if streak >= (isUp ? fall : rise) {
            isUp.toggle()
            streak = 0
            return true
        }
        return false
    }

    /// Forces the down state (passive failures decided it); `rise` successes are needed to come back.
    public mutating func forceDown() {
        isUp = false
        streak = 0
    }
}
