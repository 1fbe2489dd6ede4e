/// Services moved to meet capacity (source document 000, Grex; the third embodiment of 002): a
/// server dedicated to one URI space (its pool) that `can_serve` another is lent to that space's
/// pool while the pool stays loaded, and given back when the load has fallen (with hysteresis).
///
/// The rule is pure: the caller gives it, at each evaluation, every pool that may borrow and every
/// server that may be lent, with their loads at `now`; it keeps the timers and the lent set and
/// returns the moves to carry out. The time conditions use only `now` (a manual clock in tests).
///
/// * A pool is *loaded* when the least-loaded up server of its own active group is at or above its
///   lend level (every one is), or when none is up. Loaded without a break for `lendAfter`, it
///   borrows one server: the least-loaded up candidate that can serve it, is not lent, and is
///   below its own pool's first level. The time condition then starts again, so a second server
///   comes only after another `lendAfter` of load.
/// * A pool is *calm* when that least load is below its return level (lower than the lend level).
///   Calm without a break for `lendAfter`, it gives back the server it borrowed last; again one per
///   `lendAfter`.
/// * A lent server that is no longer up, or whose own load reaches its pool's first level, is given
///   back at once (its own space comes first).
public struct LendingRule: Sendable {
    /// A pool that may borrow servers (some server `can_serve` a route to it), as seen at `now`.
    public struct Borrower: Sendable, Equatable {
        /// Index into `RoutingSnapshot.pools`.
        public var pool: Int
        /// The least effective load among the up servers of the pool's own active group (lent
        /// servers not counted); nil when none is up (then the pool counts as loaded).
        public var load: Double?
        public var lendLevel: Double
        public var returnLevel: Double
        public var lendAfterNanoseconds: UInt64

        public init(pool: Int, load: Double?, lendLevel: Double, returnLevel: Double, lendAfterNanoseconds: UInt64) {
            self.pool = pool
            self.load = load
            self.lendLevel = lendLevel
            self.returnLevel = returnLevel
            self.lendAfterNanoseconds = lendAfterNanoseconds
        }
    }

    /// A server that may be lent, as seen at `now`.
    public struct Candidate: Sendable, Equatable {
        /// Index into `RoutingSnapshot.servers`.
        public var server: Int
        /// Its effective load (lent traffic included).
        public var load: Double
        /// The first level of its own pool: lent only below it, given back at it.
        public var firstLevel: Double
        /// Condition `.up`.
        public var up: Bool
        /// The pools it can be lent to (indices into `RoutingSnapshot.pools`).
        public var pools: [Int]

        public init(server: Int, load: Double, firstLevel: Double, up: Bool = true, pools: [Int]) {
            self.server = server
            self.load = load
            self.firstLevel = firstLevel
            self.up = up
            self.pools = pools
        }
    }

    /// Why a lent server went back to its own pool.
    public enum ReturnReason: String, Sendable, Equatable {
        /// The borrowing pool stayed below its return level for lend_after.
        case poolCalm = "load fell"
        /// The lent server's own load reached its pool's first level.
        case serverLoaded = "server loaded"
        /// The lent server is no longer up.
        case serverNotUp = "server not up"
    }

    /// One move to carry out.
    public enum Move: Sendable, Equatable {
        case lend(server: Int, to: Int)
        case giveBack(server: Int, from: Int, reason: ReturnReason)
    }

    /// Lent servers (server index → pool index), in the order they were lent.
    public private(set) var lent: [(server: Int, pool: Int)] = []
    /// Per pool: since when it has been loaded / calm without a break (restarted by each move).
    private var loadedSince: [Int: UInt64] = [:]
    private var calmSince: [Int: UInt64] = [:]

    public init() {}

    /// The pool `server` is lent to, or nil.
    public func pool(lentServer server: Int) -> Int? {
        lent.first { $0.server == server }?.pool
    }

    /// Updates the timers with the loads at `now` and returns the moves due, give-backs first.
    /// Candidates absent from `candidates` keep their state; borrowers absent keep their timers.
    public mutating func evaluate(borrowers: [Borrower], candidates: [Candidate], now: UInt64) -> [Move] {
        var moves = giveBackUnfit(candidates)
        for borrower in borrowers {
            if let move = step(borrower, candidates: candidates, now: now) { moves.append(move) }
        }
        return moves
    }

    /// Gives back every lent server that is not up or has reached its own first level.
    private mutating func giveBackUnfit(_ candidates: [Candidate]) -> [Move] {
        var moves: [Move] = []
        for entry in lent {
            guard let c = candidates.first(where: { $0.server == entry.server }) else { continue }
            let reason: ReturnReason? = !c.up ? .serverNotUp : c.load >= c.firstLevel ? .serverLoaded : nil
            guard let reason else { continue }
            moves.append(.giveBack(server: entry.server, from: entry.pool, reason: reason))
        }
        for case .giveBack(let server, _, _) in moves { lent.removeAll { $0.server == server } }
        return moves
    }

    /// One pool's timers and its move, if one is due.
    private mutating func step(_ b: Borrower, candidates: [Candidate], now: UInt64) -> Move? {
        let load = b.load ?? .infinity
        loadedSince[b.pool] = load >= b.lendLevel ? (loadedSince[b.pool] ?? now) : nil
        calmSince[b.pool] = load < b.returnLevel ? (calmSince[b.pool] ?? now) : nil
        if let since = calmSince[b.pool], now - since >= b.lendAfterNanoseconds,
           let last = lent.lastIndex(where: { $0.pool == b.pool }) {
            let server = lent.remove(at: last).server
            calmSince[b.pool] = now
            return .giveBack(server: server, from: b.pool, reason: .poolCalm)
        }
        guard let since = loadedSince[b.pool], now - since >= b.lendAfterNanoseconds,
              let server = lender(for: b.pool, candidates) else { return nil }
        lent.append((server, b.pool))
        loadedSince[b.pool] = now
        return .lend(server: server, to: b.pool)
    }

    /// The least-loaded candidate that can serve `pool`, is up, not lent and below its first level
    /// (the lower index among equal loads).
    private func lender(for pool: Int, _ candidates: [Candidate]) -> Int? {
        var best: Candidate? = nil
        for c in candidates where c.up && c.load < c.firstLevel && c.pools.contains(pool) {
            guard !lent.contains(where: { $0.server == c.server }) else { continue }
            if best == nil || c.load < best!.load || (c.load == best!.load && c.server < best!.server) { best = c }
        }
        return best?.server
    }
}

extension RoutingSnapshot {
    /// Every pool some server may be lent to, with its load and levels at `now` (the rule's input).
    public func lendingBorrowers(now: UInt64) -> [LendingRule.Borrower] {
        pools.indices.filter { !pools[$0].lendable.isEmpty }.map { p in
            let config = pools[p].config
            return LendingRule.Borrower(pool: p, load: leastActiveLoad(pool: p, now: now),
                                        lendLevel: config.effectiveLendLevel, returnLevel: config.effectiveReturnLevel,
                                        lendAfterNanoseconds: config.lendAfter.weirNanoseconds)
        }
    }

    /// Every server that may be lent, with its load at `now` and the pools it may be lent to.
    public func lendingCandidates(now: UInt64) -> [LendingRule.Candidate] {
        var targets: [Int: [Int]] = [:]
        for (p, pool) in pools.enumerated() { for server in pool.lendable { targets[server, default: []].append(p) } }
        return targets.keys.sorted().map { index in
            let s = servers[index]
            let own = pools.first { $0.servers.contains(index) }
            return LendingRule.Candidate(server: index, load: s.effectiveLoad(now: now),
                                         firstLevel: own?.config.firstLevel ?? 0.5, up: s.condition == .up,
                                         pools: targets[index] ?? [])
        }
    }

    /// The least effective load among the up servers of the pool's own active priority group; nil
    /// when none is up.
    public func leastActiveLoad(pool: Int, now: UInt64) -> Double? {
        let own = pools[pool].servers.map { servers[$0] }.filter { $0.condition == .up }
        guard let group = own.map(\.config.group).min() else { return nil }
        return own.filter { $0.config.group == group }.map { $0.effectiveLoad(now: now) }.min()
    }
}
