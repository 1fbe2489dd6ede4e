import WeirBalance
import WeirIO

/// The balancer's clock in a running gateway: CLOCK_MONOTONIC (`MonotonicTime`).
struct MonotonicClock: BalanceClock {
    var nowNanoseconds: UInt64 { MonotonicTime.nanoseconds() }
}
