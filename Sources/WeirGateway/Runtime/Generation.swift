import Atomics
import WeirBalance
import WeirConfig
import WeirIO

/// One listener as the process knows it across reloads: the same name on the same address (and
/// with or without TLS) is the same slot, and keeps its listening sockets and its connection count.
/// Shared by the workers; the count is the only thing that changes.
final class ListenerSlot: Sendable {
    let name: String
    let address: SocketAddress
    let isTLS: Bool
    /// Open client connections accepted on it (all workers, all generations); freed in `deinit`.
    let open = UnsafeAtomic<Int>.create(0)

    init(_ listener: Listener) {
        name = listener.name
        address = listener.address
        isTLS = listener.tls != nil
    }

    deinit {
        _ = open.destroy()
    }

    /// Whether `listener` (of a new configuration) is served by this slot's sockets.
    func serves(_ listener: Listener) -> Bool {
        listener.name == name && listener.address == address && (listener.tls != nil) == isTLS
    }
}

/// What one configuration load gives every worker alike (built once on the control thread):
/// the configuration, its routing snapshot, certificates, listeners and modes.
final class SharedGeneration: Sendable {
    /// 1 for the configuration the process started with, +1 per successful reload.
    let number: Int
    let configuration: WeirConfiguration
    let snapshot: RoutingSnapshot
    let tls: TLSSetup
    let modes: ListenerModes
    let peer: PeerContext?
    /// Per listener index of `configuration.listeners`.
    let slots: [ListenerSlot]
    /// The counters of its servers, pools and listeners, one stripe per worker (GenerationMetrics.swift).
    let metrics: GenerationMetrics

    /// `metrics` nil: new blocks with one stripe (for one worker, index 0).
    init(number: Int, configuration: WeirConfiguration, snapshot: RoutingSnapshot, tls: TLSSetup, modes: ListenerModes,
         peer: PeerContext?, slots: [ListenerSlot], metrics: GenerationMetrics? = nil) {
        self.metrics = metrics ?? GenerationMetrics(snapshot: snapshot, listeners: configuration.listeners, workers: 1)
        self.number = number
        self.configuration = configuration
        self.snapshot = snapshot
        self.tls = tls
        self.modes = modes
        self.peer = peer
        self.slots = slots
    }
}

/// A worker's view of one configuration load: the shared parts and the worker's own state for
/// them (policy counters, idle upstream connections, queues). A session takes the worker's current
/// generation when a new exchange starts and keeps it until the exchange ends, so a request in
/// flight finishes on the configuration it started with. Used on its worker's thread only.
final class Generation {
    let shared: SharedGeneration
    let settings: Settings
    var policy: PolicyState
    let upstreamPool: UpstreamPool
    /// Per server: the URL prefixes under which the servers of its pool know themselves,
    /// rewritten to the gateway in response heads and the listed body types.
    let serverPrefixes: [[[UInt8]]]
    /// Per server: the index of its pool.
    let poolOfServer: [Int]
    /// Per listener: the Strict-Transport-Security field (with CRLF) its responses carry, or empty.
    let hstsFields: [[UInt8]]
    /// Per listener: its TLS handshake timeout in milliseconds (0 for plain listeners).
    let handshakeTimeoutsMs: [Int64]
    /// Per listener: the networks allowed to send a PROXY protocol header, nil when `proxy_protocol` is off.
    let proxyProtocolFrom: [[NetworkPrefix]?]
    /// Per server: the PROXY protocol version its pool sends (`send_proxy`), nil for none.
    let sendProxyOfServer: [SendProxy?]
    /// Per server: whether its pool adds a `Forwarded` field (`forwarded = true`).
    let forwardedOfServer: [Bool]
    /// Requests waiting for a server below its max_conns, per pool, oldest first, with their deadlines.
    var queues: [[(session: ClientSession, deadline: UInt64)]]
    var queuedCount = 0
    /// This worker's stripes of `shared.metrics`.
    let meters: WorkerMeters

    var snapshot: RoutingSnapshot { shared.snapshot }
    var configuration: WeirConfiguration { shared.configuration }
    var tls: TLSSetup { shared.tls }
    var peer: PeerContext? { shared.peer }
    var modes: ListenerModes { shared.modes }

    init(_ shared: SharedGeneration, worker index: Int) {
        self.shared = shared
        let configuration = shared.configuration
        let snapshot = shared.snapshot
        settings = Settings(configuration)
        policy = PolicyState(snapshot: snapshot, seed: UInt64(index &+ 1) &* 0x9E37_79B9_7F4A_7C15)
        upstreamPool = UpstreamPool(servers: snapshot.servers.count, maxPerServer: settings.idlePerServer,
                                    idleTimeoutMs: settings.upstreamIdleMs)
        var poolOfServer = [Int](repeating: 0, count: snapshot.servers.count)
        for (p, pool) in snapshot.pools.enumerated() { for s in pool.servers { poolOfServer[s] = p } }
        self.poolOfServer = poolOfServer
        serverPrefixes = Self.poolPrefixes(snapshot)
        hstsFields = configuration.listeners.map { l in l.tls?.hsts.map { Array("Strict-Transport-Security: \($0)\r\n".utf8) } ?? [] }
        handshakeTimeoutsMs = configuration.listeners.map { $0.tls?.handshakeTimeout.milliseconds ?? 0 }
        queues = Array(repeating: [], count: snapshot.pools.count)
        proxyProtocolFrom = configuration.listeners.map { $0.proxyProtocol ? $0.proxyProtocolFrom : nil }
        sendProxyOfServer = poolOfServer.map { configuration.pools[$0].sendProxy }
        forwardedOfServer = poolOfServer.map { configuration.pools[$0].forwarded }
        meters = WorkerMeters(shared.metrics, worker: index)
    }

    /// The index of `slot` among this generation's listeners, nil when it has none there (removed).
    func listenerIndex(of slot: ListenerSlot) -> Int? {
        shared.slots.firstIndex { $0 === slot }
    }

    /// Moves the idle upstream connections of `older` to this generation: a server of both (same id)
    /// whose address and transport did not change keeps its connections, the others are closed.
    /// `older` then closes whatever its sessions still park (they finish their exchange first).
    func takeIdleConnections(from older: Generation) {
        let old = older.snapshot, new = snapshot
        let newIndex = Dictionary(new.servers.map { ($0.config.id, $0.index) }, uniquingKeysWith: { a, _ in a })
        older.upstreamPool.retire(mapping: { oldServer in
            guard let index = newIndex[old.servers[oldServer].config.id] else { return nil }
            let before = old.servers[oldServer].config, after = new.servers[index].config
            let sameTransport = older.configuration.pools[older.poolOfServer[oldServer]].tls
                == configuration.pools[poolOfServer[index]].tls
            return before.address == after.address && sameTransport ? index : nil
        }, into: upstreamPool)
    }

    /// Per server: the prefixes of every server of its pool ("http://address", "https://address" for a
    /// TLS pool, and the public URL without its trailing "/"), without repeats. One array per pool,
    /// shared by its servers (the order does not matter: a match must end at a URL boundary).
    static func poolPrefixes(_ snapshot: RoutingSnapshot) -> [[[UInt8]]] {
        var perServer = [[[UInt8]]](repeating: [], count: snapshot.servers.count)
        for (p, pool) in snapshot.pools.enumerated() {
            let tls = snapshot.configuration.pools[p].tls?.enabled == true
            var list: [[UInt8]] = []
            for server in pool.servers {
                for prefix in prefixes(of: snapshot.servers[server].config, tls: tls) where !list.contains(prefix) {
                    list.append(prefix)
                }
            }
            for server in pool.servers { perServer[server] = list }
        }
        return perServer
    }

    /// The URL prefixes under which one server knows itself.
    private static func prefixes(of server: Server, tls: Bool) -> [[UInt8]] {
        var prefixes = [Array("http://\(server.address.description)".utf8)]
        if tls { prefixes.append(Array("https://\(server.address.description)".utf8)) }
        if let url = server.publicURL {
            prefixes.append(Array((url.hasSuffix("/") ? String(url.dropLast()) : url).utf8))
        }
        return prefixes
    }
}
