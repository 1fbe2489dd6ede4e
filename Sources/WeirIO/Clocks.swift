import Glibc

/// Wall-clock time: what a calendar says. For times that mean a date (log lines, a sticky pin's
/// expiry, which must survive a restart); it jumps when the system clock is set, so never for
/// durations or timeouts (`MonotonicTime`).
public enum WallClock {
    /// Current UTC time as "2026-11-22T04:37:18.123Z" (CLOCK_REALTIME).
    public static func iso8601Now() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }

    /// Milliseconds since the Unix epoch (CLOCK_REALTIME).
    public static func milliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    /// Monotonic nanoseconds; kept for callers written before `MonotonicTime` (same value).
    @available(*, deprecated, renamed: "MonotonicTime.nanoseconds()")
    public static func monotonicNanoseconds() -> UInt64 { MonotonicTime.nanoseconds() }
}

/// Monotonic time: CLOCK_MONOTONIC, from an arbitrary origin (boot), never set back, not
/// counting suspend. For durations, timeouts and deadlines; the balancer's clock. Read fresh
/// each time (the vDSO makes it a few nanoseconds, no system call).
public enum MonotonicTime {
    /// Nanoseconds on CLOCK_MONOTONIC.
    public static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Milliseconds on CLOCK_MONOTONIC (the same origin as `nanoseconds()`).
    public static func milliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
