import WeirBalance
import WeirConfig

/// The slots of a server's or a pool's `MeterBlock`.
enum ExchangeSlots {
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx, then "other" (no status: an exchange that
    /// ended before any response head).
    static let responses = 0
    static let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"]
    /// Request bytes read from clients (head and body), response bytes written to them.
    static let bytesIn = 6
    static let bytesOut = 7
    /// Requests sent to another server after failing on this one (pool: retries of its requests).
    static let retries = 8
    /// Upstream connections opened, and requests sent over an idle pooled one instead.
    static let connectionsOpened = 9
    static let connectionsReused = 10
    /// Pools: requests waiting for a server below max_conns (a gauge: + when queued, − when taken out).
    static let queued = 11
    /// Pools: requests answered 503 because none of its servers could take them (none available,
    /// queue full, queue timeout). Written by the workers in the pool's own block.
    static let unavailable = 12
    /// Latency histograms (`LatencyBuckets.slots` each): the whole exchange; connecting a new
    /// upstream connection; from the request being sent to the server's final response head.
    static let duration = 16
    static let connect = 32
    static let firstByte = 48
    static let count = 64
    /// The slots that count exchanges (everything but the queue gauge).
    static let exchangeCounts = Array(0..<queued) + Array(duration..<count)
}

/// The slots of a listener's `MeterBlock`.
enum ListenerSlots {
    static let responses = 0      // six classes, as ExchangeSlots
    static let bytesIn = 6
    static let bytesOut = 7
    static let retries = 8
    static let requests = 9
    static let connections = 10
    static let redirects = 11
    static let count = 16
}

/// The counters of one configuration load, one `MeterBlock` per server, pool and listener, built
/// on the control thread with the generation. A server that keeps its id in the same pool across a
/// reload keeps its block (and so its counts), as do pools and listeners that keep their names;
/// the blocks of removed ones are dropped with the last generation that uses them.
///
/// Workers count exchanges per server only: a pool's figures are its block (the counts of servers
/// that left it, added when they left, and its queue gauge) plus its servers' blocks, summed at
/// scrape time, so a request costs one set of writes, and a pool's counters never go backwards
/// when a server leaves (what a removed server counts after the reload, for requests still in
/// flight on the old configuration, is not added).
final class GenerationMetrics: @unchecked Sendable {
    let workers: Int
    /// Per server index of the snapshot, per pool index, per listener index of the configuration.
    let servers: [MeterBlock]
    let pools: [MeterBlock]
    let listeners: [MeterBlock]
    /// Per pool: the indices of its servers.
    let poolServers: [[Int]]
    /// What a block is found by in the next generation: "pool\u{0}server", pool name, listener name.
    private let serverKeys: [String]
    private let poolNames: [String]
    private let listenerNames: [String]
    /// Per worker, its stripes of `servers`, `pools` and `listeners` in one buffer (see `WorkerMeters`).
    private let stripeTables: [UnsafeMutablePointer<MeterStripe>]

    /// Blocks for `snapshot` and `listeners` with `workers` stripes each, taken from `previous` where
    /// the key is the same there (and its stripe count is), new ones elsewhere.
    init(snapshot: RoutingSnapshot, listeners: [Listener], workers: Int, previous: GenerationMetrics? = nil) {
        self.workers = workers
        var poolOfServer = [String](repeating: "", count: snapshot.servers.count)
        for pool in snapshot.pools { for s in pool.servers { poolOfServer[s] = pool.name } }
        serverKeys = snapshot.servers.map { poolOfServer[$0.index] + "\u{0}" + $0.config.id }
        poolNames = snapshot.pools.map(\.name)
        poolServers = snapshot.pools.map(\.servers)
        listenerNames = listeners.map(\.name)
        let kept = previous?.workers == workers ? previous : nil
        var leaving: [String: MeterBlock] = [:]
        if let kept { for (k, b) in zip(kept.serverKeys, kept.servers) { leaving[k] = b } }
        servers = serverKeys.map { leaving.removeValue(forKey: $0) ?? MeterBlock(workers: workers, slots: ExchangeSlots.count) }
        pools = Self.blocks(poolNames, from: kept.map { ($0.poolNames, $0.pools) }, workers: workers, slots: ExchangeSlots.count)
        self.listeners = Self.blocks(listenerNames, from: kept.map { ($0.listenerNames, $0.listeners) }, workers: workers,
                                     slots: ListenerSlots.count)
        for (key, block) in leaving {
            // A server that left its pool: the pool keeps what it counted.
            let pool = String(key[..<(key.firstIndex(of: "\u{0}") ?? key.endIndex)])
            if let p = poolNames.firstIndex(of: pool) { pools[p].absorb(block, slots: ExchangeSlots.exchangeCounts) }
        }
        let (servers, pools, listenerBlocks) = (self.servers, self.pools, self.listeners)
        stripeTables = (0..<workers).map { w in
            let table = UnsafeMutablePointer<MeterStripe>.allocate(capacity: max(1, servers.count + pools.count + listenerBlocks.count))
            for (i, b) in (servers + pools + listenerBlocks).enumerated() { (table + i).initialize(to: b.stripe(worker: w)) }
            return table
        }
    }

    deinit {
        for table in stripeTables { table.deallocate() }   // MeterStripe is trivial: nothing to deinitialize
    }

    /// Worker `worker`'s stripe table: servers, then pools, then listeners.
    fileprivate func table(worker: Int) -> UnsafeMutablePointer<MeterStripe> {
        precondition(worker >= 0 && worker < workers, "worker \(worker) has no stripes in metrics for \(workers)")
        return stripeTables[worker]
    }

    /// Slots `range` of pool `pool`: its own block plus every server of it, summed over the workers.
    func poolTotals(_ pool: Int, _ range: Range<Int>) -> [UInt64] {
        var sums = pools[pool].totals(range)
        for s in poolServers[pool] {
            for (i, v) in servers[s].totals(range).enumerated() { sums[i] &+= v }
        }
        return sums
    }

    private static func blocks(_ keys: [String], from old: (keys: [String], blocks: [MeterBlock])?, workers: Int,
                               slots: Int) -> [MeterBlock] {
        var byKey: [String: MeterBlock] = [:]
        if let old { for (k, b) in zip(old.keys, old.blocks) { byKey[k] = b } }
        return keys.map { byKey.removeValue(forKey: $0) ?? MeterBlock(workers: workers, slots: slots) }
    }
}

/// One worker's stripes of a generation's blocks, by the same indices (server, pool, listener):
/// plain pointers into a table the `GenerationMetrics` owns (kept alive by the generation), so a
/// lookup on the request path costs no reference counting and no bounds check (the indices come
/// from the same snapshot). Used on that worker's thread only.
struct WorkerMeters {
    let servers: UnsafeMutablePointer<MeterStripe>
    let pools: UnsafeMutablePointer<MeterStripe>
    let listeners: UnsafeMutablePointer<MeterStripe>

    init(_ metrics: GenerationMetrics, worker: Int) {
        let table = metrics.table(worker: worker)
        servers = table
        pools = table + metrics.servers.count
        listeners = pools + metrics.pools.count
    }

    /// The response-class slot offset of `status` (0 ... 5, see `ExchangeSlots.classes`).
    @inline(__always)
    static func statusClass(_ status: Int) -> Int {
        let hundreds = status / 100
        return hundreds >= 1 && hundreds <= 5 ? hundreds - 1 : 5
    }
}
