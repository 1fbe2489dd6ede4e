import WeirConfig

/// A sticky rule compiled for matching: the stateful path's entry point and its completion paths
/// (source patent, fifth embodiment: requests of a transaction stay on one server until a
/// "transaction complete" request).
public struct CompiledSticky: Sendable {
    /// The rule as configured.
    public let rule: StickyRule
    /// The entry point: the rule's path without the trailing "*" ("/banking/").
    public let entry: [UInt8]
    let completes: [(pattern: [UInt8], isGlob: Bool)]
    /// Idle lifetime of a pin in seconds (renewed by each request of the transaction).
    public let idleSeconds: Int64

    init(_ rule: StickyRule) {
        self.rule = rule
        entry = Array(rule.path.utf8.dropLast())
        completes = rule.complete.map { (Array($0.utf8), $0.contains("*")) }
        idleSeconds = max(1, rule.idleTimeout.components.seconds)
    }

    /// The role of a request for `path` (query ignored) under this rule, or nil when the rule does not concern it.
    public func role(of path: UnsafeRawBufferPointer) -> StickyRole? {
        let end = path.firstIndex(of: UInt8(ascii: "?")) ?? path.count
        let bare = UnsafeRawBufferPointer(rebasing: path[0..<end])
        guard bare.count >= entry.count, bare.starts(with: entry) else { return nil }
        if bare.count == entry.count { return .entry }
        for complete in completes {
            let hit = complete.isGlob ? CompiledRoute.globMatches(bare, pattern: complete.pattern)
                                      : bare.elementsEqual(complete.pattern)
            if hit { return .complete }
        }
        return .transaction
    }
}

/// Where a request stands in a sticky transaction.
public enum StickyRole: Sendable, Equatable {
    /// The entry point itself: balanced as usual, and the chosen server becomes the pin.
    case entry
    /// Further down the stateful path: goes to the pinned server (a new pin when there is none).
    case transaction
    /// A "transaction complete" path: goes to the pinned server; its response releases the pin.
    case complete
}

/// The signed value of a pin cookie: `1.<server id>.<session>.<expiry>.<MAC>` (id, session and MAC in
/// base64url; expiry in unix seconds). The MAC (HMAC-SHA256 truncated to 128 bits, computed by the
/// caller's `mac` function so this stays free of C) covers everything before it and the rule's path,
/// so a pin cannot be forged, extended or moved to another sticky path, and any gateway with the
/// same secret can check it. The session id stays the same while a transaction lasts (the register
/// of users counts sessions by it).
public enum PinToken {
    /// Why a presented pin was not honoured. `decode` gives the first three; `unknownServer` (a valid
    /// pin naming a server id the configuration does not have) comes from `StickyPlan.make`.
    public enum Rejection: String, Error, Sendable { case malformed, tampered, expired, unknownServer }

    /// A checked pin.
    public struct Pin: Sendable, Equatable {
        public var serverID: String
        public var session: String
        public var expires: Int64

        public init(serverID: String, session: String, expires: Int64) {
            self.serverID = serverID
            self.session = session
            self.expires = expires
        }
    }

    /// Encodes a pin for the sticky path `scope`.
    public static func encode(_ pin: Pin, scope: String, mac: ([UInt8]) -> [UInt8]) -> String {
        let body = "1.\(Base64URL.encode(Array(pin.serverID.utf8))).\(pin.session).\(pin.expires)"
        return body + "." + Base64URL.encode(Array(mac(Array((body + "|" + scope).utf8)).prefix(16)))
    }

    /// Checks a presented pin; returns it, or why it is rejected.
    public static func decode(_ token: [UInt8], scope: String, now: Int64, mac: ([UInt8]) -> [UInt8]) -> Result<Pin, Rejection> {
        let parts = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].elementsEqual("1".utf8),
              let idBytes = Base64URL.decode(Array(parts[1])), !idBytes.isEmpty,
              Base64URL.decode(Array(parts[2])) != nil, !parts[2].isEmpty,
              let expires = Int64(String(decoding: parts[3], as: UTF8.self)),
              let presented = Base64URL.decode(Array(parts[4])), presented.count == 16 else { return .failure(.malformed) }
        let macEnd = token.count - parts[4].count - 1
        let expected = Array(mac(Array(token[0..<macEnd]) + Array("|\(scope)".utf8)).prefix(16))
        var difference: UInt8 = 0
        for i in 0..<16 { difference |= expected[i] ^ presented[i] }
        guard difference == 0 else { return .failure(.tampered) }
        guard expires > now else { return .failure(.expired) }
        return .success(Pin(serverID: String(decoding: idBytes, as: UTF8.self),
                            session: String(decoding: parts[2], as: UTF8.self), expires: expires))
    }

    /// A new session id from `random` bytes (base64url).
    public static func session(from random: [UInt8]) -> String { Base64URL.encode(random) }
}

/// base64url without padding (RFC 4648 §5): safe in cookie values and URLs.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i < bytes.count {
            let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
            out.append(alphabet[b0 >> 2])
            out.append(alphabet[((b0 & 3) << 4) | (b1 >> 4)])
            if i + 1 < bytes.count { out.append(alphabet[((b1 & 15) << 2) | (b2 >> 6)]) }
            if i + 2 < bytes.count { out.append(alphabet[b2 & 63]) }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: [UInt8]) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.count)
        for c in text {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(c - 65)
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(c - 71)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(c + 4)
            case UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "_"): values.append(63)
            default: return nil
            }
        }
        if values.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        var i = 0
        while i < values.count {
            let n = min(4, values.count - i)
            let v0 = values[i], v1 = values[i + 1], v2 = n > 2 ? values[i + 2] : 0, v3 = n > 3 ? values[i + 3] : 0
            out.append(v0 << 2 | v1 >> 4)
            if n > 2 { out.append((v1 & 15) << 4 | v2 >> 2) }
            if n > 3 { out.append((v2 & 3) << 6 | v3) }
            i += 4
        }
        return out
    }
}
