/// Who takes over an off-line member's addresses: of the on-line members that say (in their beacon)
/// they stand in for it, the one with the highest rendezvous score of (owner, candidate). Every
/// peer that sees the same candidates reaches the same answer, in any order, without talking.
public enum TakeoverRule {
    /// The stand-in for `owner` among `candidates` (on-line member ids, self included, each standing
    /// in for `owner`); nil when there is none. Equal scores (a 64-bit collision) go to the smaller id.
    public static func standIn(for owner: String, candidates: [String]) -> String? {
        let key = BalanceHash.hash(owner)
        var best: (id: String, score: UInt64)?
        for candidate in candidates where candidate != owner {
            let score = BalanceHash.score(key: key, server: BalanceHash.hash(candidate))
            if let current = best, score < current.score || (score == current.score && candidate >= current.id) { continue }
            best = (candidate, score)
        }
        return best?.id
    }
}

/// Which addresses this peer should hold for others right now. The shell diffs the answer against
/// what it holds: adds the new ones, releases the rest.
public enum TakeoverPlan {
    /// What a member's last beacon said, as far as takeover is concerned.
    public struct MemberView: Sendable, Equatable {
        public var standsInFor: [String]
        public var addresses: [String]
        public init(standsInFor: [String], addresses: [String]) {
            self.standsInFor = standsInFor
            self.addresses = addresses
        }
    }

    /// The addresses (CIDR text, as in `assume`) `selfID` should hold for others now.
    ///
    /// - `isolated`: `FailureDetector.isIsolated` — then nothing.
    /// - `online`: the on-line members (self need not be in it; self counts as on-line here).
    /// - `members`: each member's last beacon view (members never heard may be missing).
    /// - `assume`: owner id → the addresses this host is configured to assume for it; self stands in
    ///   for exactly the owners with a non-empty list (its beacon's `standsInFor` must say so).
    ///
    /// An owner on-line holds its own addresses, so nobody else does. For an off-line owner the
    /// stand-in is `TakeoverRule.standIn` among self and the on-line members standing in for it. An
    /// address some on-line member announces as its own is never taken, whoever is off-line.
    public static func addressesToHold(selfID: String, isolated: Bool, online: Set<String>,
                                       members: [String: MemberView], assume: [String: [String]]) -> Set<String> {
        if isolated { return [] }
        let others = online.subtracting([selfID])
        let claimed = Set(others.flatMap { members[$0]?.addresses ?? [] })
        var hold: Set<String> = []
        for (owner, addresses) in assume where !addresses.isEmpty && owner != selfID && !online.contains(owner) {
            let rivals = others.filter { members[$0]?.standsInFor.contains(owner) ?? false }
            guard TakeoverRule.standIn(for: owner, candidates: [selfID] + rivals) == selfID else { continue }
            hold.formUnion(addresses.filter { !claimed.contains($0) })
        }
        return hold
    }
}
