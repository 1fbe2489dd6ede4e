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
    /// Latency histograms (`LatencyBuckets.slots` each): the whole exchange; connecting a new
    /// upstream connection; from the request being sent to the server's final response head.
    static let duration = 16
    static let connect = 32
    static let firstByte = 48
    static let count = 64
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
final class GenerationMetrics: Sendable {
    let workers: Int
    /// Per server index of the snapshot, per pool index, per listener index of the configuration.
    let servers: [MeterBlock]
    let pools: [MeterBlock]
    let listeners: [MeterBlock]
    /// What a block is found by in the next generation: "pool\u{0}server", pool name, listener name.
    private let serverKeys: [String]
    private let poolNames: [String]
    private let listenerNames: [String]

    /// Blocks for `snapshot` and `listeners` with `workers` stripes each, taken from `previous` where
    /// the key is the same there (and its stripe count is), new ones elsewhere.
    init(snapshot: RoutingSnapshot, listeners: [Listener], workers: Int, previous: GenerationMetrics? = nil) {
        self.workers = workers
        var poolOfServer = [String](repeating: "", count: snapshot.servers.count)
        for pool in snapshot.pools { for s in pool.servers { poolOfServer[s] = pool.name } }
        serverKeys = snapshot.servers.map { poolOfServer[$0.index] + "\u{0}" + $0.config.id }
        poolNames = snapshot.pools.map(\.name)
        listenerNames = listeners.map(\.name)
        let kept = previous?.workers == workers ? previous : nil
        servers = Self.blocks(serverKeys, from: kept.map { ($0.serverKeys, $0.servers) }, workers: workers, slots: ExchangeSlots.count)
        pools = Self.blocks(poolNames, from: kept.map { ($0.poolNames, $0.pools) }, workers: workers, slots: ExchangeSlots.count)
        self.listeners = Self.blocks(listenerNames, from: kept.map { ($0.listenerNames, $0.listeners) }, workers: workers,
                                     slots: ListenerSlots.count)
    }

    private static func blocks(_ keys: [String], from old: (keys: [String], blocks: [MeterBlock])?, workers: Int,
                               slots: Int) -> [MeterBlock] {
        var byKey: [String: MeterBlock] = [:]
        if let old { for (k, b) in zip(old.keys, old.blocks) { byKey[k] = b } }
        return keys.map { byKey.removeValue(forKey: $0) ?? MeterBlock(workers: workers, slots: slots) }
    }
}

/// One worker's stripes of a generation's blocks, by the same indices (server, pool, listener).
/// Used on that worker's thread only.
struct WorkerMeters {
    let servers: [MeterStripe]
    let pools: [MeterStripe]
    let listeners: [MeterStripe]

    init(_ metrics: GenerationMetrics, worker: Int) {
        servers = metrics.servers.map { $0.stripe(worker: worker) }
        pools = metrics.pools.map { $0.stripe(worker: worker) }
        listeners = metrics.listeners.map { $0.stripe(worker: worker) }
    }

    /// The response-class slot offset of `status` (0 ... 5, see `ExchangeSlots.classes`).
    @inline(__always)
    static func statusClass(_ status: Int) -> Int {
        let hundreds = status / 100
        return hundreds >= 1 && hundreds <= 5 ? hundreds - 1 : 5
    }
}
