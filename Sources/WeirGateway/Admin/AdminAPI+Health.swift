import Foundation
import WeirBalance

/// `GET /health`: the facts `weir health` decides on (HealthVerdict.swift), read from atomics on
/// the control thread without touching a worker: the listener addresses to probe, each worker's
/// heartbeat age, each pool's available servers, and the verdict on all but the listeners (the
/// caller connects to those itself). 200 when that verdict is healthy, 503 otherwise, so a plain
/// HTTP check can use it too
/// (`?report=1`: always 200).
extension AdminAPI {
    func healthDocument() -> HealthReport {
        let now = clock()
        let ages = heartbeats.map { $0.ageMilliseconds(now: now) }
        let snapshot = self.snapshot
        let pools = snapshot.pools.map { pool in
            HealthReport.Pool(name: pool.name, available: pool.servers.filter { snapshot.servers[$0].condition == .up }.count,
                                servers: pool.servers.count)
        }
        let listeners = generation().configuration.listeners.map {
            HealthReport.Listener(name: $0.name, address: $0.address.host, port: Int($0.address.port))
        }
        let verdict = HealthVerdict.evaluate(
            listeners: [], workerAges: ages,
            pools: pools.map { HealthVerdict.PoolAvailability(name: $0.name, available: $0.available, servers: $0.servers) })
        return HealthReport(ok: verdict == .healthy, reason: verdict.line, listeners: listeners,
                              worker_heartbeat_age_ms: ages, pools: pools)
    }

    /// `report=1` (what `weir health` sends): 200 whatever the verdict, the document says it.
    func healthAnswer(query: String) -> Answer {
        let document = healthDocument()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = Array(((try? encoder.encode(document)) ?? Data("{}".utf8)) + Data("\n".utf8))
        return Answer(status: document.ok || LocalEndpoints.queryValue("report", in: query) == "1" ? 200 : 503, body: body)
    }
}

/// The JSON document of `GET /health` (decoded by `weir health`).
public struct HealthReport: Codable, Sendable {
    public struct Listener: Codable, Sendable { public var name: String; public var address: String; public var port: Int }
    public struct Pool: Codable, Sendable { public var name: String; public var available: Int; public var servers: Int }
    /// The verdict on workers and pools (listeners are for the caller to probe).
    public var ok: Bool
    /// "ok" or the first failing check.
    public var reason: String
    public var listeners: [Listener]
    /// Per worker the milliseconds since its last heartbeat; nil once its loop has ended.
    public var worker_heartbeat_age_ms: [Int64?]
    public var pools: [Pool]
}
