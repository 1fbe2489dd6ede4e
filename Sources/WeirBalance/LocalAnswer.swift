import WeirConfig

/// A discovery request Weir answers itself (`Verdict.local`), with the data of its JSON document;
/// the gateway only encodes it.
public enum LocalAnswer: Sendable, Equatable {
    /// The server list of a route's pool and spill pool (source document 001).
    case serverList([ServerListEntry])
    /// The server a client should talk to directly (source document 004).
    case assignment(Assignment)
    /// Whether a server is available now (source document 004, `alive?server=ID`).
    case alive(ServerAvailability)
}

/// A `LocalAnswer.alive`: the server's id, whether it is up, and its condition ("up", "drain", ...).
public struct ServerAvailability: Sendable, Equatable {
    public var id: String
    public var available: Bool
    public var state: String

    public init(id: String, available: Bool, state: String) {
        self.id = id
        self.available = available
        self.state = state
    }
}

/// One server of a `LocalAnswer.serverList`.
public struct ServerListEntry: Sendable, Equatable {
    public var id: String
    /// The server's `public_url`, or "http://address".
    public var publicURL: String
    /// The server is up (not down, draining or in maintenance).
    public var available: Bool
    /// Effective load, rounded to 3 decimals.
    public var load: Double
    /// Pinned sessions in the register plus requests in flight.
    public var users: Int
    public var group: Int
    /// Lending: the pool this server is lent from (it is another pool's, lent to this route's), or the
    /// pool it is lent to (one of this route's, lent out); nil when not lent.
    public var lentFrom: String?
    public var lentTo: String?

    public init(id: String, publicURL: String, available: Bool, load: Double, users: Int, group: Int,
                lentFrom: String? = nil, lentTo: String? = nil) {
        self.lentFrom = lentFrom
        self.lentTo = lentTo
        self.id = id
        self.publicURL = publicURL
        self.available = available
        self.load = load
        self.users = users
        self.group = group
    }
}

/// A `LocalAnswer.assignment`: the chosen server and, when the route has a sticky rule, a pin for
/// the client to present (as the cookie `cookie`) and the register entry that pin needs.
public struct Assignment: Sendable, Equatable {
    /// Index into `RoutingSnapshot.servers`.
    public var server: Int
    public var id: String
    public var publicURL: String
    /// The signed pin, nil when the route has no sticky rule (then `cookie`, `lifetimeSeconds` and
    /// `register` are nil too).
    public var token: String?
    public var cookie: String?
    public var lifetimeSeconds: Int64?
    /// The register entry to record for the pin's session.
    public var register: RegisterChange?
    /// The server the client reported with `failed=` (excluded for it, counted, probed), if any.
    public var failed: Int?

    public init(server: Int, id: String, publicURL: String, token: String? = nil, cookie: String? = nil,
                lifetimeSeconds: Int64? = nil, register: RegisterChange? = nil) {
        self.server = server
        self.id = id
        self.publicURL = publicURL
        self.token = token
        self.cookie = cookie
        self.lifetimeSeconds = lifetimeSeconds
        self.register = register
    }
}

extension ServerState {
    /// Where clients reach the server directly: its `public_url`, or "http://address".
    public var publicURL: String { config.publicURL ?? "http://\(config.address)" }
}

/// Query strings, without Foundation.
public enum QueryString {
    /// The percent-decoded value of the first `name=value` pair called `name` in `query` (the part
    /// after "?", pairs separated by "&"); "" for a bare `name`; nil when absent. A value whose
    /// percent-encoding is invalid, or that does not decode to UTF-8, is returned as sent.
    public static func value(_ name: String, in query: Substring) -> String? {
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv[0] == name else { continue }
            return kv.count > 1 ? percentDecoded(kv[1]) ?? String(kv[1]) : ""
        }
        return nil
    }

    /// `text` with every "%XX" decoded, or nil when a "%" is not followed by two hex digits or the
    /// result is not UTF-8. "+" stays "+" (this is a URL query, not a form body).
    public static func percentDecoded(_ text: Substring) -> String? {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let high = hex(bytes[i + 1]), let low = hex(bytes[i + 2]) else { return nil }
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - 55
        default: return nil
        }
    }
}
