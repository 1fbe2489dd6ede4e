import WeirConfig

/// Per-worker mutable state of the balancing policies (round-robin positions, least-load rotation,
/// the p2c random source, scratch buffers). Owned by one thread; not thread-safe.
public struct PolicyState {
    /// Smooth weighted round-robin current weights, per pool, per server position.
    private var currentWeights: [[Int]]
    /// Least-load tie rotation, per pool.
    private var rotation: [Int]
    /// The p2c random source (deterministic for a given seed).
    private var random: SplitMix64
    /// Eligible server positions of the pool being picked from, and their loads (reused, no allocation).
    private var candidates: [Int] = []
    private var loads: [Double] = []

    /// Round-robin weights are scaled by this so that slow start can ramp even a weight-1 server
    /// (smooth weighted round-robin is scale-invariant, so unscaled servers keep their exact shares).
    static let weightScale = 16

    /// `seed` drives p2c's random choices; give each worker its own (e.g. its index) so that their
    /// choices are independent.
    public init(snapshot: RoutingSnapshot, seed: UInt64 = 0x5745_4952_0000_0001) {
        currentWeights = snapshot.pools.map { [Int](repeating: 0, count: $0.members.count) }
        rotation = [Int](repeating: 0, count: snapshot.pools.count)
        random = SplitMix64(seed: seed)
    }

    private init(snapshot: RoutingSnapshot, random: SplitMix64) {
        self.init(snapshot: snapshot)
        self.random = random
    }

    /// Result of picking within one pool.
    enum Pick {
        /// A server index into `RoutingSnapshot.servers`.
        case server(Int)
        /// Servers are available but every one is at max_conns.
        case full
        /// No server is available.
        case none
    }

    /// Picks a server of pool `pool` for `request` by the pool's policy. Servers lent to the pool
    /// (`CompiledPool.lendable` whose mark says this pool) are candidates beside its own active group
    /// for requests in their `can_serve`; one atomic load per lendable server, none when there is none.
    mutating func pick(pool: Int, request: RequestFacts, snapshot: RoutingSnapshot, now: UInt64) -> Pick {
        // Only the parts this reads: copying the whole CompiledPool (its config included) costs a
        // dozen reference counts per request. Positions below `ownCount` are the pool's own servers.
        let compiledServers = snapshot.pools[pool].members
        let ownCount = snapshot.pools[pool].servers.count
        let policy = snapshot.pools[pool].policy
        let servers = snapshot.servers
        if pool >= rotation.count || currentWeights[pool].count != compiledServers.count {
            self = PolicyState(snapshot: snapshot, random: random)   // built for another snapshot: start over
        }
        let excluded = request.excluded
        @inline(__always) func isExcluded(_ server: Int) -> Bool { !excluded.isEmpty && excluded.contains(server) }
        if pool == snapshot.peerPool, let local = snapshot.localServer {
            return peerPick(pool: pool, local: local, request: request, snapshot: snapshot, now: now)
        }

        // Drain keeps pinned work: a draining pinned server still takes its own requests.
        var pinnedPosition: Int? = nil
        if let pin = request.pinnedServer, let position = compiledServers.firstIndex(of: pin), !isExcluded(pin) {
            pinnedPosition = position
            let state = servers[pin]
            if state.condition == .drain, !state.isFull { return .server(pin) }
        }

        // The active priority group: the lowest with an up, non-excluded server.
        var group = Int.max
        for server in compiledServers[..<ownCount] {
            let state = servers[server]
            if state.config.group < group, !isExcluded(server), state.condition == .up { group = state.config.group }
        }
        guard group != Int.max || ownCount < compiledServers.count else { return .none }

        candidates.removeAll(keepingCapacity: true)
        var lentUp = false
        for (position, server) in compiledServers.enumerated() {
            let state = servers[server]
            if position < ownCount {
                guard state.config.group == group else { continue }
            } else {
                guard state.isLent(to: pool), state.condition == .up, !isExcluded(server),
                      Self.lentServerTakes(request.path, snapshot.pools[pool].lendablePatterns[position - ownCount]) else { continue }
                lentUp = true
            }
            guard !isExcluded(server), state.condition == .up, !state.isFull else { continue }
            candidates.append(position)
        }
        guard !candidates.isEmpty else { return group == Int.max && !lentUp ? .none : .full }
        if candidates.count == 1 {
            // Keep round-robin positions moving as if the others were skipped; the rest need no state.
            if policy == .roundRobin { return smoothWeightedRoundRobin(pool: pool, snapshot: snapshot, now: now) }
            return .server(compiledServers[candidates[0]])
        }

        switch policy {
        case .roundRobin:
            return smoothWeightedRoundRobin(pool: pool, snapshot: snapshot, now: now)
        case .leastLoad:
            fillLoads(snapshot.pools[pool], snapshot, now)
            return .server(compiledServers[candidates[leastLoaded(pool: pool)]])
        case .p2c:
            fillLoads(snapshot.pools[pool], snapshot, now)
            let n = candidates.count
            let a = random.next(below: n)
            var b = random.next(below: n - 1)
            if b >= a { b += 1 }
            return .server(compiledServers[candidates[loads[b] < loads[a] ? b : a]])
        case .hash:
            let key = Self.keyHash(request, snapshot.pools[pool].config.hashKey)
            return .server(compiledServers[candidates[rendezvous(key: key, snapshot.pools[pool])]])
        case .threshold:
            var home = -1
            if let pinnedPosition { home = candidates.firstIndex(of: pinnedPosition) ?? -1 }
            if home < 0 { home = rendezvous(key: Self.keyHash(request, snapshot.pools[pool].config.hashKey), snapshot.pools[pool]) }
            fillLoads(snapshot.pools[pool], snapshot, now)
            let chosen = loads.withUnsafeBufferPointer { loads in
                ThresholdRule.choose(home: home, count: loads.count, firstLevel: snapshot.pools[pool].config.firstLevel,
                                     secondLevel: snapshot.pools[pool].config.secondLevel) { loads[$0] }
            }
            return .server(compiledServers[candidates[chosen]])
        }
    }

    /// Figure 2 at a peer (source patent, first embodiment): home is the local application. Only
    /// servers that serve the request's path are candidates (URI dedication, 2nd and 3rd
    /// embodiments). Home below the first level keeps the request; otherwise the least-loaded
    /// on-line peer takes it when lighter by the second level. When the local application is not a
    /// candidate (down, excluded, or not serving the path) the least-loaded candidate takes it.
    private mutating func peerPick(pool: Int, local: Int, request: RequestFacts, snapshot: RoutingSnapshot, now: UInt64) -> Pick {
        let compiledServers = snapshot.pools[pool].servers
        let servers = snapshot.servers
        candidates.removeAll(keepingCapacity: true)
        var anyUp = false
        for (position, server) in compiledServers.enumerated() {
            let state = servers[server]
            guard state.condition == .up, !request.excluded.contains(server), state.serves(path: request.path) else { continue }
            anyUp = true
            if !state.isFull { candidates.append(position) }
        }
        guard !candidates.isEmpty else { return anyUp ? .full : .none }
        fillLoads(snapshot.pools[pool], snapshot, now)
        if let home = candidates.firstIndex(where: { compiledServers[$0] == local }) {
            let levels = snapshot.peerLevels
            let first = levels.first, second = levels.second
            let chosen = loads.withUnsafeBufferPointer { loads in
                ThresholdRule.choose(home: home, count: loads.count, firstLevel: first, secondLevel: second) { loads[$0] }
            }
            return .server(compiledServers[candidates[chosen]])
        }
        return .server(compiledServers[candidates[leastLoaded(pool: pool)]])
    }

    /// Whether a lent server takes `path`: it lies in one of the server's `can_serve` patterns.
    private static func lentServerTakes(_ path: UnsafeRawBufferPointer, _ patterns: [[UInt8]]) -> Bool {
        patterns.contains { CompiledRoute.takes(path, pattern: $0) }
    }

    /// Loads of the candidates as the policies compare them: effective load divided by the slow start
    /// factor, so that a ramping server looks busier than it is.
    private mutating func fillLoads(_ pool: CompiledPool, _ snapshot: RoutingSnapshot, _ now: UInt64) {
        loads.removeAll(keepingCapacity: true)
        for position in candidates {
            let state = snapshot.servers[pool.members[position]]
            loads.append(state.effectiveLoad(now: now) / state.slowStartFactor(now: now))
        }
    }

    /// The candidate with the least load; among equal loads, the next one in a per-pool rotation so
    /// that equally loaded servers share requests evenly.
    private mutating func leastLoaded(pool: Int) -> Int {
        var least = Double.infinity
        for load in loads where load < least { least = load }
        var ties = 0
        for load in loads where load <= least { ties += 1 }
        var turn = rotation[pool] % ties
        rotation[pool] = rotation[pool] &+ 1
        if rotation[pool] < 0 { rotation[pool] = 0 }
        for (i, load) in loads.enumerated() where load <= least {
            if turn == 0 { return i }
            turn -= 1
        }
        return 0
    }

    /// Rendezvous (highest-random-weight) hashing: the candidate whose score for `key` is highest.
    /// Adding or removing a server only moves the keys that it wins or won.
    private func rendezvous(key: UInt64, _ pool: CompiledPool) -> Int {
        var best = 0
        var bestScore: UInt64 = 0
        for (i, position) in candidates.enumerated() {
            let score = BalanceHash.score(key: key, server: pool.memberHashes[position])
            if i == 0 || score > bestScore { best = i; bestScore = score }
        }
        return best
    }

    /// Hash of the request's value for the pool's hash key; a missing header or cookie falls back to
    /// the client address. `path` hashes the path without its query.
    static func keyHash(_ request: RequestFacts, _ key: HashKey) -> UInt64 {
        switch key {
        case .source:
            return BalanceHash.hash(request.clientAddress)
        case .header(let name):
            return BalanceHash.hash(request.header(name) ?? request.clientAddress)
        case .cookie(let name):
            return BalanceHash.hash(request.cookie(name) ?? request.clientAddress)
        case .path:
            let path = request.path
            let end = path.firstIndex(of: UInt8(ascii: "?")) ?? path.count
            return BalanceHash.hash(UnsafeRawBufferPointer(rebasing: path[0..<end]))
        }
    }

    /// nginx's smooth weighted round-robin over the candidates: each pick adds every candidate's
    /// weight to its current weight, takes the largest, and subtracts the total from it. Over a cycle
    /// each server is picked weight/total of the time, interleaved rather than in bursts. Weights are
    /// scaled by `weightScale` × the slow start factor (at least 1).
    private mutating func smoothWeightedRoundRobin(pool: Int, snapshot: RoutingSnapshot, now: UInt64) -> Pick {
        let servers = snapshot.pools[pool].members
        var total = 0
        var best = -1
        for position in candidates {
            let state = snapshot.servers[servers[position]]
            let factor = state.slowStartFactor(now: now)
            let scaled = state.config.weight * Self.weightScale
            let weight = factor >= 1 ? scaled : max(1, Int((Double(scaled) * factor).rounded()))
            currentWeights[pool][position] += weight
            total += weight
            if best < 0 || currentWeights[pool][position] > currentWeights[pool][best] { best = position }
        }
        guard best >= 0 else { return .none }
        currentWeights[pool][best] -= total
        return .server(servers[best])
    }
}
