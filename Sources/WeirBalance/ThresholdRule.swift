/// The source patent's rule (figure 2, steps S203–S209) as a pure function on plain numbers.
///
/// A request has a *home*. Keep it at home while home's load is below the first level (S203 → S204);
/// otherwise look at the other servers' loads (S205) and hand the request to the least-loaded
/// on-line one (S207–S209) when it is lighter than home by at least the second level (S206);
/// else keep it at home.
public enum ThresholdRule {
    /// Tolerance for comparing against the levels, so that 0.6 − 0.4 counts as "exactly 0.2".
    static let epsilon = 1e-9

    /// `home` is an index into `loads`; returns the chosen index. Keep home while
    /// `loads[home] < firstLevel`; otherwise take the least-loaded candidate if
    /// `loads[home] - loads[least] ≥ secondLevel`; else keep home. Ties between least-loaded
    /// candidates go to the lowest index. `loads` holds only on-line candidates (home included).
    public static func choose(home: Int, loads: [Double], firstLevel: Double, secondLevel: Double) -> Int {
        precondition(loads.indices.contains(home), "home must index loads")
        return loads.withUnsafeBufferPointer { buffer in
            choose(home: home, count: buffer.count, firstLevel: firstLevel, secondLevel: secondLevel) { buffer[$0] }
        }
    }

    /// The same rule over `count` candidates whose loads `load(i)` gives (no array needed).
    @inline(__always)
    static func choose(home: Int, count: Int, firstLevel: Double, secondLevel: Double, load: (Int) -> Double) -> Int {
        let homeLoad = load(home)
        if homeLoad < firstLevel - epsilon { return home }                   // S203: below the first level
        var least = -1
        var leastLoad = Double.infinity
        for i in 0..<count {
            let l = load(i)
            if least < 0 || l < leastLoad { least = i; leastLoad = l }         // strict: lowest index wins ties
        }
        if least != home, leastLoad < homeLoad, homeLoad - leastLoad >= secondLevel - epsilon { return least }   // S206 → S209
        return home                                                          // S206 → S204
    }
}
