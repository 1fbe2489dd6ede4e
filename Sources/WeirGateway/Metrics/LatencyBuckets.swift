/// The fixed bucket boundaries of every latency histogram, in seconds as Prometheus shows them and
/// in microseconds as the workers count them. Fixed, so that an observation is a few comparisons
/// and two stores, and histograms of different servers and processes can be added up.
enum LatencyBuckets {
    /// Upper bounds (`le`), inclusive: 0.5 ms ... 10 s; one more bucket (+Inf) takes the rest.
    static let boundsMicroseconds: [UInt64] = [500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000,
                                               250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000]
    /// The `le` label of each bound (the +Inf bucket is `"+Inf"`).
    static let labels = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
                         "0.25", "0.5", "1", "2.5", "5", "10"]
    /// Buckets including +Inf.
    static let buckets = 15
    /// Where a histogram keeps its sum (µs), after its buckets.
    static let sumSlot = 15
    /// Slots a histogram takes in a `MeterBlock`.
    static let slots = 16

    /// The bucket of `us` microseconds: the first whose bound is ≥ us; 14 (+Inf) beyond 10 s.
    /// Written as comparisons with constants: no table is read on the request path.
    @inline(__always)
    static func index(microseconds us: UInt64) -> Int {
        if us <= 10_000 {
            if us <= 1_000 { return us <= 500 ? 0 : 1 }
            return us <= 2_500 ? 2 : (us <= 5_000 ? 3 : 4)
        }
        if us <= 250_000 {
            if us <= 50_000 { return us <= 25_000 ? 5 : 6 }
            return us <= 100_000 ? 7 : 8
        }
        if us <= 1_000_000 { return us <= 500_000 ? 9 : 10 }
        if us <= 5_000_000 { return us <= 2_500_000 ? 11 : 12 }
        return us <= 10_000_000 ? 13 : 14
    }
}
