import Foundation
import WeirBalance
import WeirHTTP

/// The JSON documents of the discovery endpoints on the client listeners: the server list of a
/// route's pool (source document 001: each server's availability, users and priority group) and a
/// session assignment (source document 004: the server a client should talk to directly).
enum LocalEndpoints {
    struct ServerEntry: Codable {
        var id: String
        var public_url: String
        var available: Bool
        var load: Double
        var users: Int
        var group: Int
    }

    struct Assignment: Codable {
        var id: String
        var public_url: String
        var token: String?
        var cookie: String?
        var lifetime_s: Int64?
    }

    /// Every server of the route's pool (and its spill pool): `users` is its pinned sessions plus
    /// its requests in flight.
    static func serverList(route: CompiledRoute, snapshot: RoutingSnapshot, users: [Int: Int], now: UInt64) -> [UInt8] {
        var pools = [route.pool]
        if let spill = route.spillPool { pools.append(spill) }
        let entries = pools.flatMap { snapshot.pools[$0].servers }.map { index -> ServerEntry in
            let s = snapshot.servers[index]
            return ServerEntry(id: s.config.id, public_url: publicURL(s), available: s.condition == .up,
                               load: (s.effectiveLoad(now: now) * 1000).rounded() / 1000,
                               users: (users[index] ?? 0) + s.inFlightCount, group: s.config.group)
        }
        return encode(["servers": entries])
    }

    /// The assignment for one client.
    static func assignment(server: ServerState, token: String?, cookie: String?, lifetime: Int64?) -> [UInt8] {
        encode(Assignment(id: server.config.id, public_url: publicURL(server), token: token, cookie: token == nil ? nil : cookie,
                          lifetime_s: lifetime))
    }

    /// The complete 200 answer carrying a discovery document `body` (JSON): the body is left out
    /// for a HEAD request (its Content-Length stays); `keepAlive` false adds `Connection: close`.
    static func response(body: [UInt8], isHEAD: Bool, keepAlive: Bool) -> [UInt8] {
        var head = ResponseHeadWriter(status: 200)
        head.field("Content-Type", "application/json")
        head.field("Cache-Control", "no-store")
        head.contentLength(body.count)
        head.connection(keepAlive: keepAlive)
        var out = head.finish()
        if !isHEAD { out += body }
        return out
    }

    static func publicURL(_ s: ServerState) -> String { s.config.publicURL ?? "http://\(s.config.address)" }

    /// The percent-decoded value of `name` in a query string, or nil.
    static func queryValue(_ name: String, in query: String) -> String? {
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if kv.first.map(String.init) == name {
                return kv.count > 1 ? String(kv[1]).removingPercentEncoding ?? String(kv[1]) : ""
            }
        }
        return nil
    }

    private static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8)) + [10]
    }
}
