/// Against herding: between two reports every peer sees the same "least-loaded" peer and would send
/// it everything. Each peer adds to a peer's reported load the requests it has itself sent there
/// since that report, as a share of the peer's capacity.
public enum Herding {
    /// `reported + routedSinceReport / max(capacity, 1)`.
    public static func correctedLoad(reported: Double, capacity: Int, routedSinceReport: Int) -> Double {
        reported + Double(routedSinceReport) / Double(max(capacity, 1))
    }
}
