import Atomics

/// Monotonic time source, injected. WeirBalance never reads a real clock: the gateway passes a real
/// one, tests a `ManualClock`. Values are nanoseconds from an arbitrary origin and never go back.
public protocol BalanceClock: Sendable {
    var nowNanoseconds: UInt64 { get }
}

/// A clock that only moves when told to, for tests. Thread-safe (the time is an atomic).
public final class ManualClock: BalanceClock, @unchecked Sendable {
    private let time: ManagedAtomic<UInt64>

    /// Starts at `start` nanoseconds (1 s by default, so that "time 0" never means "now").
    public init(start: UInt64 = 1_000_000_000) {
        time = ManagedAtomic(start)
    }

    public var nowNanoseconds: UInt64 {
        get { time.load(ordering: .relaxed) }
        set { time.store(newValue, ordering: .relaxed) }
    }

    /// Moves the clock forward by `milliseconds` (negative values are ignored: the clock is monotonic).
    public func advance(milliseconds: Int) {
        guard milliseconds > 0 else { return }
        time.wrappingIncrement(by: UInt64(milliseconds) * 1_000_000, ordering: .relaxed)
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to 0 for negative durations and to `UInt64.max` on overflow.
    public var weirNanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (sum, overflow2) = whole.addingReportingOverflow(UInt64(attoseconds / 1_000_000_000))
        return overflow || overflow2 ? .max : sum
    }
}
