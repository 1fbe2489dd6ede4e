import Foundation
import Atomics
import WeirBalance

/// The JSON document of `GET /status` (and what `weir status` reads back).
public struct StatusDocument: Codable, Sendable {
    public struct ServerEntry: Codable, Sendable {
        public var id: String
        public var address: String
        public var state: String
        public var healthy: Bool
        public var load: Double
        public var reported_load: Double?
        public var report_age_ms: Int?
        public var in_flight: Int
        public var requests: Int
        public var failures: Int
        public var passive_failures: Int
        public var group: Int
        public var weight: Int
        public var capacity: Int
        public var slow_start: Double
        /// Clients' `assign?failed=` reports about this server (they exclude it for the reporting client
        /// and have it probed at once; they never take it down). Absent in documents of older versions.
        public var client_reports: Int? = nil
        /// Lending: the pool the server is lent to now (null when none) and how many times it was lent.
        public var lent_to: String?
        public var times_lent: Int?
        /// `[group] share_load`: requests the other gateways have in flight here (counted in `load`).
        /// Absent in documents of older versions.
        public var in_flight_elsewhere: Int? = nil

        /// Every key is always present; a missing report is `null`, not an absent key.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(address, forKey: .address)
            try c.encode(state, forKey: .state)
            try c.encode(healthy, forKey: .healthy)
            try c.encode(load, forKey: .load)
            try c.encode(reported_load, forKey: .reported_load)
            try c.encode(report_age_ms, forKey: .report_age_ms)
            try c.encode(in_flight, forKey: .in_flight)
            try c.encode(requests, forKey: .requests)
            try c.encode(failures, forKey: .failures)
            try c.encode(passive_failures, forKey: .passive_failures)
            try c.encode(group, forKey: .group)
            try c.encode(weight, forKey: .weight)
            try c.encode(capacity, forKey: .capacity)
            try c.encode(slow_start, forKey: .slow_start)
            try c.encode(client_reports ?? 0, forKey: .client_reports)
            try c.encode(lent_to, forKey: .lent_to)
            try c.encode(times_lent, forKey: .times_lent)
            try c.encode(in_flight_elsewhere ?? 0, forKey: .in_flight_elsewhere)
        }
    }
    public struct PoolEntry: Codable, Sendable {
        public var name: String
        public var policy: String
        public var servers: [ServerEntry]
        /// The pool's `[pool.monitor]`, when it has one (absent otherwise).
        public var monitor: MonitorEntry?
        /// Lending: ids of the servers of other pools lent to this pool now, and of its own servers lent out.
        public var lent_in: [String]? = nil
        public var lent_out: [String]? = nil
    }
    /// A pool's monitoring endpoint as the control thread last saw it.
    public struct MonitorEntry: Codable, Sendable {
        public var url: String
        /// Milliseconds since its last good answer; nil before the first.
        public var last_success_age_ms: Int?
        /// Polls made, failed ones (refused, timeout, non-200, not JSON, wrong shape) among them, and
        /// report entries naming no server of the pool (ignored).
        public var polls: Int
        public var failures: Int
        public var unknown_ids: Int
        /// Why the last poll failed; nil when it succeeded.
        public var last_error: String?

        /// Every key is always present (`null` when there is no value).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(url, forKey: .url)
            try c.encode(last_success_age_ms, forKey: .last_success_age_ms)
            try c.encode(polls, forKey: .polls)
            try c.encode(failures, forKey: .failures)
            try c.encode(unknown_ids, forKey: .unknown_ids)
            try c.encode(last_error, forKey: .last_error)
        }
    }
    public struct Totals: Codable, Sendable {
        public var requests: Int
        public var open_connections: Int
        public var status_400: Int
        public var status_502: Int
        public var status_503: Int
        public var status_504: Int
        public var retries: Int
        public var aborted: Int
        /// Response body bytes moved socket to socket (splice) instead of through the buffers.
        public var spliced_bytes: Int
        /// Client TLS handshakes completed, and how many of them resumed a session.
        public var tls_handshakes: Int
        public var tls_resumed: Int
    }
    /// The configuration in force: its number (1 at start, +1 per reload that took effect), the
    /// reloads so far, and the last one's outcome.
    public struct ConfigurationEntry: Codable, Sendable {
        public var number: Int
        public var reloads: Int
        public var reloads_failed: Int
        public var last_reload_ok: Bool?
        public var last_reload: String?
    }
    public var pools: [PoolEntry]
    public var totals: Totals
    /// Absent in documents of Weir versions before reloads of conf.d.
    public var configuration: ConfigurationEntry?
    /// The peer group as this process sees it (`weir peer`, or a gateway listening to beacons); absent otherwise.
    public var group: GroupStatus?

    /// Renders the document as JSON bytes (stable key order).
    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8)) + [10]
    }

    /// Parses what `GET /status` returned.
    public static func decode(_ bytes: [UInt8]) throws -> StatusDocument {
        try JSONDecoder().decode(StatusDocument.self, from: Data(bytes))
    }
}

extension StatusDocument {
    /// The document for the live state of `snapshot` at `now`, with the process-wide counters.
    init(snapshot: RoutingSnapshot, stats: GatewayStats, now: UInt64, group: GroupStatus? = nil,
         monitors: [Int: MonitorEntry] = [:]) {
        self.group = group
        pools = snapshot.status(now: now).enumerated().map { poolIndex, pool in
            PoolEntry(name: pool.name, policy: pool.policy, servers: zip(snapshot.pools[poolIndex].servers, pool.servers).map { index, s in
                ServerEntry(id: s.id, address: s.address, state: s.condition, healthy: s.healthy, load: s.effectiveLoad,
                            reported_load: s.reportedLoad, report_age_ms: s.reportAgeMs, in_flight: s.inFlight,
                            requests: s.totalRequests, failures: s.failures, passive_failures: s.consecutivePassiveFailures,
                            group: s.group, weight: s.weight, capacity: s.capacity, slow_start: s.slowStartFactor,
                            client_reports: snapshot.failureReports.count(server: index),
                            in_flight_elsewhere: s.inFlightElsewhere)
            }, monitor: monitors[poolIndex])
        }
        totals = Totals(requests: stats.requests.load(ordering: .relaxed),
                        open_connections: stats.openConnections.load(ordering: .relaxed),
                        status_400: stats.badRequests.load(ordering: .relaxed),
                        status_502: stats.badGateway.load(ordering: .relaxed),
                        status_503: stats.unavailable.load(ordering: .relaxed),
                        status_504: stats.gatewayTimeout.load(ordering: .relaxed),
                        retries: stats.retries.load(ordering: .relaxed),
                        aborted: stats.abortedResponses.load(ordering: .relaxed),
                        spliced_bytes: stats.splicedBytes.load(ordering: .relaxed),
                        tls_handshakes: stats.tlsHandshakes.load(ordering: .relaxed),
                        tls_resumed: stats.tlsResumedHandshakes.load(ordering: .relaxed))
        addLending(snapshot)
    }
}

extension StatusDocument {
    /// Fills the lending fields: per server its lent-to pool and lend count, per pool its lent-in and
    /// lent-out servers. (`RoutingSnapshot.status` lists pools and their servers in snapshot order.)
    mutating func addLending(_ snapshot: RoutingSnapshot) {
        for (p, pool) in snapshot.pools.enumerated() where p < pools.count {
            var lentOut: [String] = []
            for (position, index) in pool.servers.enumerated() where position < pools[p].servers.count {
                let s = snapshot.servers[index]
                pools[p].servers[position].lent_to = s.lentTo.map { snapshot.pools[$0].name }
                pools[p].servers[position].times_lent = s.timesLent
                if s.lentTo != nil { lentOut.append(s.config.id) }
            }
            pools[p].lent_out = lentOut
            pools[p].lent_in = pool.lendable.filter { snapshot.servers[$0].isLent(to: p) }.map { snapshot.servers[$0].config.id }
        }
    }
}
