import Atomics
import WeirBalance
import WeirConfig

/// What `GET /metrics` shows, gathered on the control thread at scrape time: the per-worker
/// counters and histograms of the generation in force (summed over the workers' stripes), the
/// live server state of its snapshot (health, load, in-flight: the figures /status shows), the
/// process-wide counters, the sticky register, reloads, certificates and the peer group.
struct MetricsScrape {
    var generation: SharedGeneration
    var stats: GatewayStats
    var sticky: StickyContext
    /// Balancer-clock nanoseconds and wall-clock milliseconds now.
    var now: UInt64
    var wallMs: Int64
    var group: GroupStatus? = nil
    var lastReload: ReloadResult? = nil
    /// Unix seconds of the last reload, 0 before the first.
    var lastReloadSeconds: Int64 = 0
    /// Per certificate: the listener, the file and its notAfter (Unix seconds).
    var certificates: [(listener: String, file: String, notAfter: Int64)] = []

    /// The exposition text.
    func render() -> [UInt8] {
        let snapshot = generation.snapshot
        var text = PrometheusText(capacity: 4096 + snapshot.servers.count * 8192)
        process(&text)
        listeners(&text)
        pools(&text, snapshot)
        servers(&text, snapshot)
        if let group { peer(&text, group) }
        return text.bytes
    }

    // MARK: - Process-wide

    private func process(_ t: inout PrometheusText) {
        func counter(_ name: String, _ help: String, _ value: Int) {
            t.family(name, .counter, help)
            t.sample(name, .int(Int64(value)))
        }
        func load(_ a: AtomicCount) -> Int { a.load(ordering: .relaxed) }
        counter("weir_requests_total", "Request heads parsed, all listeners.", load(stats.requests))
        counter("weir_bad_requests_total", "Requests answered 400 (unparsable or refused heads).", load(stats.badRequests))
        counter("weir_aborted_responses_total", "Responses cut short after their head was sent.", load(stats.abortedResponses))
        counter("weir_stale_connection_retries_total", "Requests sent again on a new connection after a pooled one turned out closed.",
                load(stats.retriedOnStaleConnection))
        counter("weir_spliced_bytes_total", "Response body bytes moved socket to socket with splice(2).", load(stats.splicedBytes))
        counter("weir_connections_refused_total", "Client connections answered 503 at max_connections.",
                load(stats.connectionsRefusedAtLimit))
        t.family("weir_open_connections", .gauge, "Open client connections, all listeners.")
        t.sample("weir_open_connections", .int(Int64(load(stats.openConnections))))
        counter("weir_tls_handshakes_total", "Client TLS handshakes completed.", load(stats.tlsHandshakes))
        counter("weir_http2_connections_total", "Client connections that spoke HTTP/2.", load(stats.http2Connections))
        counter("weir_http2_streams_total", "HTTP/2 request streams served.", load(stats.http2Streams))
        counter("weir_http2_guard_closes_total", "HTTP/2 connections closed with GOAWAY(ENHANCE_YOUR_CALM) by the attack guard.",
                load(stats.http2GuardCloses))
        counter("weir_tls_resumed_handshakes_total", "Client TLS handshakes that resumed a session.", load(stats.tlsResumedHandshakes))
        t.family("weir_tls_handshake_failures_total", .counter, "Client TLS handshakes that failed, by reason.")
        t.sample("weir_tls_handshake_failures_total", PrometheusText.labels(["reason": "error"]), .int(Int64(load(stats.tlsHandshakeFailures))))
        t.sample("weir_tls_handshake_failures_total", PrometheusText.labels(["reason": "timeout"]), .int(Int64(load(stats.tlsHandshakeTimeouts))))
        if !certificates.isEmpty {
            t.family("weir_tls_certificate_expiry_timestamp_seconds", .gauge, "When each listener certificate expires (notAfter, Unix time).")
            for c in certificates {
                t.sample("weir_tls_certificate_expiry_timestamp_seconds",
                         PrometheusText.labels(["listener": c.listener, "file": c.file]), .int(c.notAfter))
            }
        }
        counter("weir_peer_hops_received_total", "Requests that arrived with a valid peer hop token.", load(stats.peerHopsReceived))
        counter("weir_peer_hops_refused_total", "Peer hop markers refused (removed and ignored).", load(stats.peerHopsRefused))
        t.family("weir_reloads_total", .counter, "Configuration reloads, by result.")
        t.sample("weir_reloads_total", PrometheusText.labels(["result": "ok"]), .int(Int64(load(stats.reloads))))
        t.sample("weir_reloads_total", PrometheusText.labels(["result": "failed"]), .int(Int64(load(stats.reloadsFailed))))
        t.family("weir_last_reload_success", .gauge, "1 when the last reload took effect, 0 when it was refused (absent before the first).")
        if let lastReload { t.sample("weir_last_reload_success", .int(lastReload.ok ? 1 : 0)) }
        t.family("weir_last_reload_timestamp_seconds", .gauge, "When the last reload was tried (Unix time; 0 before the first).")
        t.sample("weir_last_reload_timestamp_seconds", .int(lastReloadSeconds))
        t.family("weir_configuration_generation", .gauge, "Number of the configuration in force (1 at start, +1 per reload).")
        t.sample("weir_configuration_generation", .int(Int64(generation.number)))
        counter("weir_pins_moved_total", "Sticky pins moved to another server (theirs was off-line).", load(sticky.movedPins))
        counter("weir_pins_rejected_total", "Sticky pins refused (bad signature, unknown or expired).", load(sticky.rejectedPins))
        t.family("weir_pins_unconfirmed", .gauge, "Sticky pins handed out and not presented back yet.")
        t.sample("weir_pins_unconfirmed", .int(Int64(sticky.unconfirmed.counts(nowMs: wallMs).values.reduce(0, +))))
    }


    // MARK: - Listeners

    private func listeners(_ t: inout PrometheusText) {
        let config = generation.configuration.listeners
        let labels = config.map { PrometheusText.labels(["listener": $0.name]) }
        let blocks = generation.metrics.listeners
        func counter(_ name: String, _ help: String, _ slot: Int) {
            t.family(name, .counter, help)
            for (i, block) in blocks.enumerated() { t.sample(name, labels[i], count: block.total(slot)) }
        }
        counter("weir_listener_requests_total", "Request heads parsed on the listener.", ListenerSlots.requests)
        t.family("weir_listener_responses_total", .counter, "Responses on the listener by status class (Weir's own answers included).")
        for (i, block) in blocks.enumerated() {
            let counts = block.totals(ListenerSlots.responses ..< ListenerSlots.responses + 6)
            for c in ExchangeSlots.classes.indices {
                t.sample("weir_listener_responses_total", labels[i], Self.codeLabels[c], count: counts[c])
            }
        }
        counter("weir_listener_request_bytes_total", "Request bytes (head and body) read from clients.", ListenerSlots.bytesIn)
        counter("weir_listener_response_bytes_total", "Response bytes written to clients.", ListenerSlots.bytesOut)
        counter("weir_listener_retries_total", "Requests sent to another server after a failure.", ListenerSlots.retries)
        counter("weir_listener_redirects_total", "Redirect-mode answers.", ListenerSlots.redirects)
        counter("weir_listener_connections_total", "Client connections accepted.", ListenerSlots.connections)
        t.family("weir_listener_open_connections", .gauge, "Open client connections on the listener.")
        for (i, slot) in generation.slots.enumerated() {
            t.sample("weir_listener_open_connections", labels[i], .int(Int64(slot.open.load(ordering: .relaxed))))
        }
        t.family("weir_listener_redirect_mode", .gauge, "1 while the listener is in redirect mode, 0 in proxy mode.")
        for i in config.indices {
            t.sample("weir_listener_redirect_mode", labels[i], .int(generation.modes.mode(i) == .redirect ? 1 : 0))
        }
    }

    private static let codeLabels = ExchangeSlots.classes.map { PrometheusText.labels(["code": $0]) }

    // MARK: - Pools and servers

    /// The families pools and servers share, `prefix` "weir_pool" or "weir_server": `totals(i, slots)`
    /// gives entry i's slots summed over the workers (a pool's: with its servers'), `labels[i]` its labels.
    private func exchangeFamilies(_ t: inout PrometheusText, prefix: String, labels: [[UInt8]], what: String,
                                  totals: (Int, Range<Int>) -> [UInt64]) {
        let responses = prefix + "_responses_total"
        t.family(responses, .counter, "Responses from the \(what) by status class (other: none before the exchange ended).")
        for i in labels.indices {
            let counts = totals(i, ExchangeSlots.responses ..< ExchangeSlots.responses + 6)
            for c in counts.indices { t.sample(responses, labels[i], Self.codeLabels[c], count: counts[c]) }
        }
        func counter(_ suffix: String, _ help: String, _ slot: Int) {
            let name = prefix + suffix
            t.family(name, .counter, help)
            for i in labels.indices { t.sample(name, labels[i], count: totals(i, slot ..< slot + 1)[0]) }
        }
        counter("_request_bytes_total", "Request bytes read from clients for exchanges the \(what) answered.", ExchangeSlots.bytesIn)
        counter("_response_bytes_total", "Response bytes written to clients for exchanges the \(what) answered.", ExchangeSlots.bytesOut)
        counter("_retries_total", "Requests sent elsewhere after failing on the \(what).", ExchangeSlots.retries)
        let connections = prefix + "_upstream_connections_total"
        t.family(connections, .counter, "Requests sent to the \(what) on a new connection or an idle pooled one.")
        for i in labels.indices {
            let counts = totals(i, ExchangeSlots.connectionsOpened ..< ExchangeSlots.connectionsReused + 1)
            t.sample(connections, labels[i], Self.newLabel, count: counts[0])
            t.sample(connections, labels[i], Self.reusedLabel, count: counts[1])
        }
        func histogram(_ suffix: String, _ help: String, _ first: Int) {
            let name = prefix + suffix
            t.family(name, .histogram, help)
            for i in labels.indices {
                let slots = totals(i, first ..< first + LatencyBuckets.slots)
                t.histogram(name, labels[i], counts: Array(slots[0..<LatencyBuckets.buckets]), sumMicroseconds: slots[LatencyBuckets.sumSlot])
            }
        }
        histogram("_request_duration_seconds", "Exchanges the \(what) answered, from the request head to the end of the response.",
                  ExchangeSlots.duration)
        histogram("_upstream_connect_seconds", "Time to open a new connection to the \(what).", ExchangeSlots.connect)
        histogram("_first_byte_seconds", "From the request being sent to the \(what) to its final response head.", ExchangeSlots.firstByte)
    }

    private static let newLabel = PrometheusText.labels(["connection": "new"])
    private static let reusedLabel = PrometheusText.labels(["connection": "reused"])

    private func pools(_ t: inout PrometheusText, _ snapshot: RoutingSnapshot) {
        let labels = snapshot.pools.map { PrometheusText.labels(["pool": $0.name]) }
        let metrics = generation.metrics
        // A pool's 5xx include the 503s Weir answered for it when none of its servers could take a request.
        let fiveXX = ExchangeSlots.responses + 4
        exchangeFamilies(&t, prefix: "weir_pool", labels: labels, what: "pool") { p, range in
            var sums = metrics.poolTotals(p, range)
            if range.contains(fiveXX) { sums[fiveXX - range.lowerBound] &+= metrics.pools[p].total(ExchangeSlots.unavailable) }
            return sums
        }
        t.family("weir_pool_unavailable_total", .counter,
                 "Requests answered 503 because no server of the pool could take them (none available, queue full or timed out).")
        for (p, block) in metrics.pools.enumerated() {
            t.sample("weir_pool_unavailable_total", labels[p], count: block.total(ExchangeSlots.unavailable))
        }
        t.family("weir_pool_queued_requests", .gauge, "Requests waiting for a server below its max_conns.")
        for (p, block) in generation.metrics.pools.enumerated() {
            t.sample("weir_pool_queued_requests", labels[p], .int(Int64(bitPattern: block.total(ExchangeSlots.queued))))
        }
        t.family("weir_pool_in_flight", .gauge, "Requests being forwarded to the pool's servers.")
        for (p, pool) in snapshot.pools.enumerated() {
            let sum = pool.servers.reduce(0) { $0 + snapshot.servers[$1].inFlightCount }
            t.sample("weir_pool_in_flight", labels[p], .int(Int64(sum)))
        }
        t.family("weir_pool_servers", .gauge, "The pool's servers by state.")
        for (p, pool) in snapshot.pools.enumerated() {
            var counts = [0, 0, 0, 0]
            for s in pool.servers { counts[Self.stateIndex(snapshot.servers[s].condition)] += 1 }
            for (i, label) in Self.stateLabels.enumerated() { t.sample("weir_pool_servers", labels[p], label, .int(Int64(counts[i]))) }
        }
    }

    private static let states: [ServerCondition] = [.up, .drain, .down, .maint]
    private static let stateLabels = states.map { PrometheusText.labels(["state": $0.description]) }
    private static func stateIndex(_ c: ServerCondition) -> Int { states.firstIndex(of: c) ?? 2 }

    private func servers(_ t: inout PrometheusText, _ snapshot: RoutingSnapshot) {
        var poolName = [String](repeating: "", count: snapshot.servers.count)
        for pool in snapshot.pools { for s in pool.servers { poolName[s] = pool.name } }
        let labels = snapshot.servers.map { PrometheusText.labels(["pool": poolName[$0.index], "server": $0.config.id]) }
        let blocks = generation.metrics.servers
        exchangeFamilies(&t, prefix: "weir_server", labels: labels, what: "server") { blocks[$0].totals($1) }
        func gauge(_ name: String, _ help: String, _ value: (ServerState) -> PrometheusText.Value?) {
            t.family(name, .gauge, help)
            for s in snapshot.servers { if let v = value(s) { t.sample(name, labels[s.index], v) } }
        }
        func counter(_ name: String, _ help: String, _ value: (ServerState) -> Int) {
            t.family(name, .counter, help)
            for s in snapshot.servers { t.sample(name, labels[s.index], .int(Int64(value(s)))) }
        }
        gauge("weir_server_in_flight", "Requests being forwarded to the server (all workers).") { .int(Int64($0.inFlightCount)) }
        gauge("weir_server_in_flight_elsewhere", "Requests the other gateways of the group have in flight to the server (share_load).") { .int(Int64($0.remoteInFlightCount)) }
        counter("weir_server_requests_total", "Attempts sent to the server (a retried request counts at each server).") {
            $0.totalRequests.load(ordering: .relaxed)
        }
        counter("weir_server_failures_total", "Failed attempts (connect refused, reset, timeout).") { $0.failures.load(ordering: .relaxed) }
        counter("weir_server_redirects_total", "Redirect-mode answers that sent a client to the server.") { $0.redirected.load(ordering: .relaxed) }
        counter("weir_server_health_transitions_total", "Health changes (up to down, down to up).") { $0.healthTransitions }
        gauge("weir_server_up", "1 while health checks and passive checks hold the server up.") { .int($0.isHealthy ? 1 : 0) }
        t.family("weir_server_state", .gauge, "The server's effective state (1 for the state it is in).")
        for s in snapshot.servers {
            let current = Self.stateIndex(s.condition)
            for (i, label) in Self.stateLabels.enumerated() { t.sample("weir_server_state", labels[s.index], label, .int(i == current ? 1 : 0)) }
        }
        gauge("weir_server_effective_load", "The load balanced on: max(fresh report, in-flight / capacity).") { .double($0.effectiveLoad(now: now)) }
        gauge("weir_server_reported_load", "The load the server last reported, while the report is fresh.") {
            $0.reportedLoad(now: now, maxAge: $0.settings.reportMaxAgeNanoseconds).map { .double($0.load) }
        }
        gauge("weir_server_capacity", "Concurrent requests the server is meant to carry (reported or configured).") { .int(Int64($0.effectiveCapacity)) }
        gauge("weir_server_weight", "The server's configured weight.") { .int(Int64($0.config.weight)) }
        gauge("weir_server_consecutive_failures", "Consecutive failed attempts (passive health).") { .int(Int64($0.consecutivePassiveFailures)) }
        let pins = sticky.register.counts(nowMs: wallMs)
        gauge("weir_server_pins_active", "Confirmed sticky sessions pinned to the server.") { .int(Int64(pins[$0.index] ?? 0)) }
        let elsewhere = sticky.remoteUsers()
        gauge("weir_server_pins_elsewhere", "Confirmed sticky sessions the other gateways of the group pin to the server (share_users).") { .int(Int64(elsewhere[$0.index] ?? 0)) }
    }

    // MARK: - Peer group

    private func peer(_ t: inout PrometheusText, _ g: GroupStatus) {
        t.family("weir_peer_beacons_sent_total", .counter, "Beacons this process sent to its group.")
        t.sample("weir_peer_beacons_sent_total", .int(Int64(g.beacons_sent)))
        t.family("weir_peer_beacons_received_total", .counter, "Beacons received, accepted or refused by reason.")
        t.sample("weir_peer_beacons_received_total", PrometheusText.labels(["result": "accepted"]), .int(Int64(g.beacons_accepted)))
        for (reason, n) in g.beacons_refused.sorted(by: { $0.key < $1.key }) {
            t.sample("weir_peer_beacons_received_total", PrometheusText.labels(["result": reason]), .int(Int64(n)))
        }
        t.family("weir_peer_takeovers_total", .counter, "Addresses of off-line peers taken over.")
        t.sample("weir_peer_takeovers_total", .int(Int64(g.takeovers)))
        t.family("weir_peer_releases_total", .counter, "Addresses given back to their peers.")
        t.sample("weir_peer_releases_total", .int(Int64(g.releases)))
        t.family("weir_peer_isolated", .gauge, "1 while this process hears no member of its group.")
        t.sample("weir_peer_isolated", .int(g.isolated ? 1 : 0))
        let labels = g.members.map { PrometheusText.labels(["member": $0.id, "role": $0.role]) }
        t.family("weir_peer_member_online", .gauge, "1 while the member's beacons arrive (failure detector).")
        for (i, m) in g.members.enumerated() { t.sample("weir_peer_member_online", labels[i], .int(m.online ? 1 : 0)) }
        t.family("weir_peer_member_state", .gauge, "The state the member's last beacon said (1 for it).")
        for (i, m) in g.members.enumerated() {
            for state in ["up", "drain", "down", "maint"] {
                t.sample("weir_peer_member_state", labels[i], PrometheusText.labels(["state": state]), .int(m.state == state ? 1 : 0))
            }
        }
        t.family("weir_peer_member_load", .gauge, "The load the member's last beacon reported.")
        for (i, m) in g.members.enumerated() { if let load = m.load { t.sample("weir_peer_member_load", labels[i], .double(load)) } }
        t.family("weir_peer_member_effective_load", .gauge, "The member's load as balanced on (report plus requests routed since).")
        for (i, m) in g.members.enumerated() {
            if let load = m.effective_load { t.sample("weir_peer_member_effective_load", labels[i], .double(load)) }
        }
        t.family("weir_peer_member_beacon_age_seconds", .gauge, "Time since the member's last valid beacon.")
        for (i, m) in g.members.enumerated() {
            if let age = m.last_beacon_age_ms { t.sample("weir_peer_member_beacon_age_seconds", labels[i], .double(Double(age) / 1000)) }
        }
        t.family("weir_peer_member_routed_total", .counter, "Requests this process routed to the member.")
        for (i, m) in g.members.enumerated() { t.sample("weir_peer_member_routed_total", labels[i], .int(Int64(m.routed))) }
    }
}

typealias AtomicCount = UnsafeAtomic<Int>
