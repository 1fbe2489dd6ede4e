import Foundation
import WeirBalance
import WeirHTTP

/// The JSON documents of the discovery endpoints on the client listeners, encoded from the data
/// `Decision.answer` gives in `Verdict.local`: the server list of a route's pool (source document
/// 001: each server's availability, users and priority group) and a session assignment (source
/// document 004: the server a client should talk to directly).
enum LocalEndpoints {
    struct ServerEntry: Codable {
        var id: String
        var public_url: String
        var available: Bool
        var load: Double
        var users: Int
        var group: Int
        /// Lending (absent when not lent): the pool the server is lent from, or lent to.
        var lent_from: String? = nil
        var lent_to: String? = nil
    }

    struct AssignmentDocument: Codable {
        var id: String
        var public_url: String
        var token: String?
        var cookie: String?
        var lifetime_s: Int64?
    }

    struct AliveDocument: Codable {
        var server: String
        var available: Bool
        var state: String
    }

    /// The document for `answer`: JSON with sorted keys and a final newline.
    static func document(_ answer: LocalAnswer) -> [UInt8] {
        switch answer {
        case .serverList(let servers):
            return encode(["servers": servers.map {
                ServerEntry(id: $0.id, public_url: $0.publicURL, available: $0.available, load: $0.load,
                            users: $0.users, group: $0.group, lent_from: $0.lentFrom, lent_to: $0.lentTo)
            }])
        case .assignment(let a):
            return encode(AssignmentDocument(id: a.id, public_url: a.publicURL, token: a.token,
                                             cookie: a.token == nil ? nil : a.cookie, lifetime_s: a.lifetimeSeconds))
        case .alive(let a):
            return encode(AliveDocument(server: a.id, available: a.available, state: a.state))
        }
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

    /// The percent-decoded value of `name` in a query string, or nil (see `QueryString.value`).
    static func queryValue(_ name: String, in query: String) -> String? {
        QueryString.value(name, in: Substring(query))
    }

    private static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(value)) ?? Data("{}".utf8)) + [10]
    }
}
