import WeirConfig

/// Per-worker mutable state of the balancing policies (round-robin positions). Owned by one thread.
public struct PolicyState {
    /// Smooth weighted round-robin current weights, per pool, per server position.
    private var currentWeights: [[Int]]

    public init(snapshot: RoutingSnapshot) {
        currentWeights = snapshot.pools.map { [Int](repeating: 0, count: $0.servers.count) }
    }

    /// Picks a server of pool `pool` by its policy, skipping `excluding`; nil when none is eligible.
    mutating func pick(pool: Int, servers: [Int], snapshot: RoutingSnapshot, excluding: [Int]) -> Int? {
        switch snapshot.pools[pool].policy {
        case .roundRobin:
            return smoothWeightedRoundRobin(pool: pool, servers: servers, snapshot: snapshot, excluding: excluding)
        }
    }

    /// nginx's smooth weighted round-robin: each pick adds every eligible server's weight to its
    /// current weight, takes the largest, and subtracts the total from it. Over a cycle each server
    /// is picked weight/total of the time, interleaved rather than in bursts.
    private mutating func smoothWeightedRoundRobin(pool: Int, servers: [Int], snapshot: RoutingSnapshot, excluding: [Int]) -> Int? {
        var total = 0
        var best = -1
        for position in servers.indices {
            let server = servers[position]
            if !excluding.isEmpty, excluding.contains(server) { continue }
            let weight = snapshot.servers[server].config.weight
            currentWeights[pool][position] += weight
            total += weight
            if best < 0 || currentWeights[pool][position] > currentWeights[pool][best] { best = position }
        }
        guard best >= 0 else { return nil }
        currentWeights[pool][best] -= total
        return servers[best]
    }
}
